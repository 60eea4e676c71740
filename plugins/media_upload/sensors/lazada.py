"""Wait until Lazada has audited a video; poke, reschedule and deferrable modes."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue, XComArg
from airflow.sdk.exceptions import AirflowFailException

from media_upload.hooks import LAZADA_CONN_ID
from media_upload.protocols.lazada import FAILED_VIDEO_STATES, VideoState
from media_upload.sensors.base import PlatformStatusSensor

if TYPE_CHECKING:
    from airflow.sdk import Context

    from media_upload.hooks.lazada import LazadaHook
    from media_upload.triggers.lazada import LazadaVideoAuditTrigger


class LazadaVideoAuditSensor(PlatformStatusSensor):
    """Wait for a video to reach ``AUDIT_SUCCESS`` and return its id (the ``return_value`` XCom).

    ``AUDIT_FAILED``, ``TRANSCODE_FAILED`` and ``DELETED`` fail the task at once, without retries, naming
    the video and the state. Modes, ``timeout`` and ``soft_fail``: see
    :class:`~media_upload.sensors.base.PlatformStatusSensor`.

    :param video_id: the video to wait for. (templated)
    :param lazada_conn_id: the ``lazada`` connection.
    """

    template_fields: Sequence[str] = ("video_id",)
    ui_color = "#fde8e0"

    def __init__(
        self, *, video_id: str | XComArg, lazada_conn_id: str = LAZADA_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.video_id = video_id
        self.lazada_conn_id = lazada_conn_id

    @cached_property
    def hook(self) -> LazadaHook:
        from media_upload.hooks.lazada import LazadaHook

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

    def trigger(self) -> LazadaVideoAuditTrigger:
        from media_upload.triggers.lazada import LazadaVideoAuditTrigger

        return LazadaVideoAuditTrigger(
            video_id=str(self.video_id), lazada_conn_id=self.lazada_conn_id, poll_interval=self.poke_interval
        )

    def outcome(self, event: dict[str, Any]) -> str | AirflowFailException:
        if event["status"] == "failed":
            return self._rejected(str(event.get("state")))
        self.log.info("Video %s passed Lazada's audit", event["video_id"])
        return str(event["video_id"])
