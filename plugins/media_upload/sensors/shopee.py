"""Wait until Shopee has transcoded an uploaded video (``SUCCEEDED``); poke, reschedule and deferrable."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue, XComArg
from airflow.sdk.exceptions import AirflowFailException

from media_upload.hooks import SHOPEE_CONN_ID
from media_upload.protocols.shopee import VideoUploadStatus
from media_upload.sensors.base import PlatformStatusSensor

if TYPE_CHECKING:
    from airflow.sdk import Context

    from media_upload.hooks.shopee import ShopeeHook
    from media_upload.triggers.shopee import ShopeeVideoUploadTrigger

#: Statuses after which the upload never succeeds.
FAILED_STATUSES = frozenset({VideoUploadStatus.FAILED, VideoUploadStatus.CANCELLED})


class ShopeeVideoUploadSensor(PlatformStatusSensor):
    """Wait for an upload to reach ``SUCCEEDED`` and return its ``video_upload_id`` (what goes on items).

    ``FAILED`` fails the task at once, without retries, with Shopee's message ("Video is too short");
    ``CANCELLED`` too. Modes, ``timeout`` and ``soft_fail``: see
    :class:`~media_upload.sensors.base.PlatformStatusSensor`.

    :param video_upload_id: the upload to wait for. (templated)
    :param shopee_conn_id: the ``shopee`` connection.
    """

    template_fields: Sequence[str] = ("video_upload_id",)
    ui_color = "#fee9e2"

    def __init__(
        self, *, video_upload_id: str | XComArg, shopee_conn_id: str = SHOPEE_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.video_upload_id = video_upload_id
        self.shopee_conn_id = shopee_conn_id

    @cached_property
    def hook(self) -> ShopeeHook:
        from media_upload.hooks.shopee import ShopeeHook

        return ShopeeHook(self.shopee_conn_id)

    def _failed(self, status: str, message: str) -> AirflowFailException:
        return AirflowFailException(
            f"Shopee upload {self.video_upload_id} ended in {status}: {message or 'no message'}; it cannot go on "
            "an item (upload a video that meets Shopee's rules)"
        )

    def poke(self, context: Context) -> PokeReturnValue:
        result = self.hook.get_video_upload_result(str(self.video_upload_id))
        status = str(result.get("status"))
        self.log.info("Upload %s is %s", self.video_upload_id, status)
        if status in FAILED_STATUSES:
            raise self._failed(status, str(result.get("message") or ""))
        return PokeReturnValue(
            is_done=status == VideoUploadStatus.SUCCEEDED, xcom_value=str(self.video_upload_id)
        )

    def trigger(self) -> ShopeeVideoUploadTrigger:
        from media_upload.triggers.shopee import ShopeeVideoUploadTrigger

        return ShopeeVideoUploadTrigger(
            video_upload_id=str(self.video_upload_id),
            shopee_conn_id=self.shopee_conn_id,
            poll_interval=self.poke_interval,
        )

    def outcome(self, event: dict[str, Any]) -> str | AirflowFailException:
        if event["status"] == "failed":
            return self._failed(str(event.get("upload_status")), str(event.get("message") or ""))
        self.log.info("Upload %s SUCCEEDED", event["video_upload_id"])
        return str(event["video_upload_id"])
