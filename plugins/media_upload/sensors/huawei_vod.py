"""Wait until a Huawei Cloud VOD asset is ready (created, transcoded or published); any mode."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue, XComArg
from airflow.sdk.exceptions import AirflowFailException

from media_upload.hooks import HUAWEI_VOD_CONN_ID
from media_upload.protocols.huawei_vod import FAILED_ASSET_STATUSES, AssetStatus, play_url
from media_upload.sensors.base import PlatformStatusSensor

if TYPE_CHECKING:
    from airflow.sdk import Context

    from media_upload.hooks.huawei_vod import HuaweiVodHook
    from media_upload.triggers.huawei_vod import HuaweiVodAssetTrigger


class HuaweiVodAssetSensor(PlatformStatusSensor):
    """Wait for an asset to reach its ready status; returns ``{asset_id, status, play_url}``.

    Failed statuses (``TRANSCODE_FAILED``, ``UPLOAD_FAILED``, ``SERVER_ERROR``, ``CANCELLED``, ``DELETED``...)
    fail the task at once, without retries. Modes, ``timeout`` and ``soft_fail``: see
    :class:`~media_upload.sensors.base.PlatformStatusSensor`.

    :param asset: an asset id, or the create task's output, whose ``ready_statuses`` then apply. (templated)
    :param ready_statuses: what "ready" means, e.g. ``("PUBLISHED",)`` (see
        :func:`media_upload.protocols.huawei_vod.ready_statuses`); by default the asset's own, else ``PUBLISHED``.
    :param ledger_conn_id: with the create task's output as ``asset``, the upload ledger where VOD's
        verdict is recorded (``audited`` or ``rejected``), as a catalog records it.
    """

    template_fields: Sequence[str] = ("asset",)
    ui_color = "#e8eefc"

    def __init__(
        self,
        *,
        asset: str | dict[str, Any] | XComArg,
        ready_statuses: Sequence[str] | None = None,
        huawei_vod_conn_id: str = HUAWEI_VOD_CONN_ID,
        ledger_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.explicit_ready_statuses = list(ready_statuses) if ready_statuses else None
        self.huawei_vod_conn_id = huawei_vod_conn_id
        self.ledger_conn_id = ledger_conn_id

    @property
    def asset_id(self) -> str:
        return str(self.asset["asset_id"] if isinstance(self.asset, dict) else self.asset)

    @property
    def ready_statuses(self) -> list[str]:
        if self.explicit_ready_statuses:
            return [str(status) for status in self.explicit_ready_statuses]
        if isinstance(self.asset, dict) and self.asset.get("ready_statuses"):
            return [str(status) for status in self.asset["ready_statuses"]]
        return [AssetStatus.PUBLISHED.value]

    @cached_property
    def hook(self) -> HuaweiVodHook:
        from media_upload.hooks.huawei_vod import HuaweiVodHook

        return HuaweiVodHook(self.huawei_vod_conn_id)

    def _failed(self, status: str, reason: str = "") -> AirflowFailException:
        detail = f": {reason}" if reason else ""
        return AirflowFailException(f"Huawei VOD asset {self.asset_id} ended in {status}{detail}")

    def looks_first(self, context: Context) -> bool:
        """With notifications on, the wait needs no first look: the end of the asset's processing is
        notified (a notification that came before the wait began is kept and read). An upload the ledger
        already has a verdict for is looked at, as its notifications are no longer kept."""
        if not self.hook.credentials.push:
            return True
        job = self.asset.get("job") if isinstance(self.asset, dict) else None
        if not job or not self.ledger_conn_id:
            return True
        from media_upload.ledger import AUDITED, REJECTED, UploadLedger
        from media_upload.steps.common import UploadJob

        entry = UploadLedger(self.ledger_conn_id).get(*UploadJob.from_xcom(job).key)
        return entry is None or entry.state in (AUDITED, REJECTED)

    def record(self, context: Context, status: str) -> None:
        """VOD's verdict on the asset in the upload ledger, when the sensor knows the upload's row."""
        job = self.asset.get("job") if isinstance(self.asset, dict) else None
        if not job or not self.ledger_conn_id:
            return
        from media_upload.ledger import UploadLedger
        from media_upload.platforms import steps_class
        from media_upload.steps.common import RunInfo, UploadJob

        upload = UploadJob.from_xcom(job)
        steps = steps_class("huawei_vod")(
            self.hook, UploadLedger(self.ledger_conn_id), RunInfo.of(context), self.log, upload.account
        )
        if steps.audited(
            upload.with_(details={**upload.details, "ready_statuses": self.ready_statuses}), status
        ):
            self.log.info("Asset %s is %s; the upload ledger records it", self.asset_id, status)

    def poke(self, context: Context) -> PokeReturnValue:
        info = self.hook.show_asset_meta(self.asset_id)
        status = str(info.get("status"))
        self.log.info("Asset %s is %s", self.asset_id, status)
        if status in FAILED_ASSET_STATUSES:
            self.record(context, status)
            raise self._failed(status, str(info.get("description") or ""))
        result = {"asset_id": self.asset_id, "status": status, "play_url": play_url(info)}
        done = status in self.ready_statuses
        if done:
            self.record(context, status)
        return PokeReturnValue(is_done=done, xcom_value=result)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        if event.get("status") in ("success", "failed"):
            self.record(context, str(event.get("asset_status")))
        return super().execute_complete(context, event)

    def trigger(self) -> HuaweiVodAssetTrigger:
        from media_upload.triggers.huawei_vod import HuaweiVodAssetTrigger

        return HuaweiVodAssetTrigger(
            asset_id=self.asset_id,
            ready_statuses=self.ready_statuses,
            huawei_vod_conn_id=self.huawei_vod_conn_id,
            poll_interval=self.poke_interval,
        )

    def outcome(self, event: dict[str, Any]) -> dict[str, Any] | AirflowFailException:
        if event["status"] == "failed":
            return self._failed(str(event.get("asset_status")))
        self.log.info("Asset %s is %s", event["asset_id"], event["asset_status"])
        return {
            "asset_id": event["asset_id"],
            "status": event["asset_status"],
            "play_url": event.get("play_url"),
        }
