"""Wait until Lazada has audited a video; poke, reschedule and deferrable modes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, XComArg, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from media_upload.hooks.lazada import LazadaHook
from media_upload.protocols.lazada import FAILED_VIDEO_STATES, VideoState
from media_upload.triggers.lazada import LazadaVideoAuditTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class LazadaVideoAuditSensor(BaseSensorOperator):
    """Wait for a video to reach ``AUDIT_SUCCESS`` and return its id (the ``return_value`` XCom).

    ``AUDIT_FAILED``, ``TRANSCODE_FAILED`` and ``DELETED`` fail the task at once, without retries,
    naming the video and the state. With ``deferrable=True`` (default: ``[operators] default_deferrable``)
    the wait holds no worker slot: after one check, a trigger polls GetVideo from the triggerer.
    ``poke_interval`` is the polling period in every mode; ``timeout`` (default one day) and ``soft_fail``
    behave as for any Airflow sensor.

    :param video_id: the video to wait for. (templated)
    :param lazada_conn_id: the ``lazada`` connection. (templated)
    :param deferrable: wait in the triggerer instead of a worker.
    """

    template_fields: Sequence[str] = ("video_id", "lazada_conn_id")
    ui_color = "#fde8e0"

    def __init__(
        self,
        *,
        video_id: str | XComArg,
        lazada_conn_id: str = LazadaHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", 24 * 3600)
        kwargs.setdefault("poke_interval", 30)
        super().__init__(**kwargs)
        self.video_id = video_id
        self.lazada_conn_id = lazada_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> LazadaHook:
        return LazadaHook(self.lazada_conn_id)

    def _rejected(self, state: str) -> AirflowFailException:
        return AirflowFailException(
            f"Lazada video {self.video_id} ended in {state}; it cannot be put on a product (upload a new video)"
        )

    def poke(self, context: Context) -> PokeReturnValue:
        state = str(self.hook.get_video(str(self.video_id))["state"])
        self.log.info("Video %s is %s", self.video_id, state)
        if state in FAILED_VIDEO_STATES:
            raise self._rejected(state)
        return PokeReturnValue(is_done=state == VideoState.AUDIT_SUCCESS, xcom_value=str(self.video_id))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        try:
            first = self.poke(context)
        except AirflowFailException as exc:
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(str(exc)) from None
            raise
        if first.is_done:
            return first.xcom_value
        self.defer(
            trigger=LazadaVideoAuditTrigger(
                video_id=str(self.video_id),
                lazada_conn_id=self.lazada_conn_id,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        status = event.get("status")
        if status == "success":
            self.log.info("Video %s passed Lazada's audit", event["video_id"])
            return str(event["video_id"])
        if status == "failed":
            raise self._rejected(str(event.get("state")))
        raise AirflowException(f"Waiting for Lazada video {self.video_id} failed: {event.get('message')}")
