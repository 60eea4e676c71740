"""One operator per Huawei Cloud VOD upload step, thin over :class:`HuaweiVodHook`.

CreateAsset → initiate multipart → UploadPart (mapped, one task per part) → complete → ConfirmAssetUpload,
with a cleanup task that confirms ``CANCELLED`` (and aborts the OBS upload) when any step fails, so no
half-made asset is left behind. Files under 20 MB go up in one PUT inside the create task instead.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, XComArg, conf
from airflow.sdk.exceptions import AirflowSkipException

from media_upload.hooks.huawei_vod import HuaweiVodApiError, HuaweiVodHook, UploadedPart
from media_upload.operators.base import refuse
from media_upload.protocols.huawei_vod import (
    DEFAULT_PART_BYTES,
    MAX_PART_BYTES,
    MAX_PARTS,
    MIN_PART_BYTES,
    SINGLE_PUT_MAX_BYTES,
    VIDEO_TYPES,
    ready_statuses,
)
from media_upload.transfer.blocks import BlockPlan
from media_upload.transfer.source import (
    SourceError,
    file_digest,
    inspect_source,
    read_planned_range,
    read_range,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

PART_LABEL = "part {{ task.part_number }}/{{ task.part_count }}"


class HuaweiVodBaseOperator(BaseOperator):
    """Holds the connection id and builds the hook lazily, at execute time, once per task."""

    template_fields: Sequence[str] = ("huawei_vod_conn_id",)
    ui_color = "#e8eefc"

    def __init__(self, *, huawei_vod_conn_id: str = HuaweiVodHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.huawei_vod_conn_id = huawei_vod_conn_id

    @cached_property
    def hook(self) -> HuaweiVodHook:
        return HuaweiVodHook(self.huawei_vod_conn_id)


def _check_text(name: str, value: str | None, max_bytes: int, required: bool) -> None:
    if required and not (value or "").strip():
        raise refuse(f"the asset {name} is missing; CreateAsset requires one")
    if value and len(value.encode()) > max_bytes:
        raise refuse(
            f"the asset {name} is {len(value.encode())} bytes in UTF-8; VOD allows at most {max_bytes}"
        )


def _flag(value: bool | str) -> bool:
    """A boolean from a bool or a rendered template (``"True"``, ``"false"``, ``"1"``...)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise refuse(f"auto_publish {value!r} is not a boolean")
    return text in ("true", "1", "yes")


class HuaweiVodCreateAssetOperator(HuaweiVodBaseOperator):
    """Check the source, then CreateAsset; small files also go up here in one PUT.

    The source must exist, be an MP4/MOV video (its container picks ``video_type``) and fit in
    ``part_size`` times 10,000 bytes. The whole file's MD5 is sent as ``video_md5`` so OBS verifies the bytes.
    Files under ``single_put_max_bytes`` are PUT to CreateAsset's ``video_upload_url`` in this task: that URL
    is a credential, so it never travels through XCom. If that PUT fails, the asset is confirmed
    ``CANCELLED`` before the task fails.

    Returns ``{asset_id, bucket, object_key, source, file_size, video_type, content_type, mode, part_size,
    part_count, ready_statuses}`` where ``mode`` is ``single`` or ``multipart`` and ``ready_statuses`` are the
    statuses that will mean "done" for this asset (they follow ``auto_publish`` and the template group).

    :param source: local path or URL of the video. (templated)
    :param title: asset title, at most 128 bytes. (templated)
    :param description: at most 1,024 bytes. (templated)
    :param category_id: VOD category; -1 or None means "Other". (templated)
    :param auto_publish: publish once ready (always sent; VOD's default is disputed). (templated)
    :param template_group_name: transcode template group; empty means no transcoding. (templated)
    :param tags: comma-separated tags. (templated)
    :param part_size: bytes per multipart part, 102,400 to 5 GiB (VOD recommends at most 20 MB). (templated)
    :param single_put_max_bytes: files smaller than this use one PUT; 0 always uses multipart.
    :param verify_md5: send the file's MD5 for OBS to verify (one extra read of the source).
    """

    template_fields: Sequence[str] = (
        *HuaweiVodBaseOperator.template_fields,
        "source",
        "title",
        "description",
        "category_id",
        "template_group_name",
        "tags",
        "part_size",
        "auto_publish",
    )

    def __init__(
        self,
        *,
        source: str,
        title: str,
        description: str | None = None,
        category_id: int | str | None = None,
        auto_publish: bool | str = True,
        template_group_name: str | None = None,
        tags: str | None = None,
        part_size: int | str = DEFAULT_PART_BYTES,
        single_put_max_bytes: int = SINGLE_PUT_MAX_BYTES,
        verify_md5: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.title = title
        self.description = description
        self.category_id = category_id
        self.auto_publish = auto_publish
        self.template_group_name = template_group_name
        self.tags = tags
        self.part_size = part_size
        self.single_put_max_bytes = single_put_max_bytes
        self.verify_md5 = verify_md5

    def _plan(self, size: int, uri: str) -> tuple[int, int]:
        part_size = int(self.part_size)
        if not MIN_PART_BYTES <= part_size <= MAX_PART_BYTES:
            raise refuse(
                f"part_size {part_size:,} is outside {MIN_PART_BYTES:,}..{MAX_PART_BYTES:,} bytes (OBS's part limits)"
            )
        count = BlockPlan(size, part_size).count
        limit = min(MAX_PARTS, conf.getint("core", "max_map_length", fallback=1024))
        if count > limit:
            raise refuse(
                f"{uri}: {size:,} bytes in parts of {part_size:,} make {count} parts, more than {limit} "
                f"(OBS allows {MAX_PARTS}, [core] max_map_length caps mapped tasks); use parts of at least "
                f"{-(-size // limit):,} bytes"
            )
        return part_size, count

    def execute(self, context: Context) -> dict[str, Any]:
        _check_text("title", self.title, 128, required=True)
        auto_publish = _flag(self.auto_publish)
        _check_text("description", self.description, 1024, required=False)
        category = int(self.category_id) if self.category_id not in (None, "") else None
        try:
            info = inspect_source(
                self.source, max_bytes=int(self.part_size) * MAX_PARTS + 1, platform="Huawei VOD"
            )
        except SourceError as exc:
            raise refuse(exc) from None
        except ValueError:
            raise refuse(f"part_size {self.part_size!r} is not a whole number of bytes") from None
        part_size, part_count = self._plan(info.size, info.uri)
        video_type, content_type = VIDEO_TYPES[info.media.container]
        single = info.size < self.single_put_max_bytes
        self.log.info(
            "Source %s: %s bytes, %s; %s",
            info.uri,
            f"{info.size:,}",
            info.media.describe(),
            "one PUT" if single else f"{part_count} part(s) of up to {part_size:,} bytes",
        )
        video_md5 = (
            base64.b64encode(file_digest(info.uri, "md5").digest()).decode() if self.verify_md5 else None
        )
        asset = self.hook.create_asset(
            title=self.title,
            video_name=info.name,
            video_type=video_type,
            auto_publish=auto_publish,
            description=self.description,
            category_id=category,
            tags=self.tags,
            template_group_name=self.template_group_name,
            video_md5=video_md5,
        )
        asset_id, target = asset["asset_id"], asset["target"]
        self.log.info("CreateAsset gave asset %s (object %s)", asset_id, target["object"])
        if single:
            try:
                data = read_range(info.uri, 0, info.size)
                self.hook.put_object(asset["video_upload_url"], data, content_type, video_md5)
            except Exception:
                self.log.error("Single PUT of %s failed; confirming asset %s CANCELLED", info.uri, asset_id)
                self.hook.confirm_asset_upload(asset_id, "CANCELLED")
                raise
            self.log.info("Uploaded %s bytes in one PUT", f"{info.size:,}")
        return {
            "asset_id": asset_id,
            "bucket": target["bucket"],
            "object_key": target["object"],
            "source": info.uri,
            "file_size": info.size,
            "video_type": video_type,
            "content_type": content_type,
            "mode": "single" if single else "multipart",
            "part_size": part_size,
            "part_count": 1 if single else part_count,
            "ready_statuses": list(ready_statuses(auto_publish, bool(self.template_group_name))),
        }


class HuaweiVodInitiateMultipartOperator(HuaweiVodBaseOperator):
    """Authority + OBS initiate for a multipart asset; returns the part plan the mapped uploads expand over.

    One small dict per part (``bucket``, ``object_key``, ``upload_id``, ``source``, ``file_size``,
    ``part_number``, ``part_count``, ``offset``, ``length``); an empty list for a single-PUT asset.

    :param asset: the create task's output. (templated)
    """

    template_fields: Sequence[str] = (*HuaweiVodBaseOperator.template_fields, "asset")

    def __init__(self, *, asset: dict[str, Any] | XComArg, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset = asset

    def execute(self, context: Context) -> list[dict[str, Any]]:
        asset: dict[str, Any] = self.asset  # type: ignore[assignment]  # rendered by now
        if asset["mode"] == "single":
            self.log.info("Asset %s went up in one PUT; no multipart upload", asset["asset_id"])
            return []
        upload_id = self.hook.initiate_multipart_upload(
            asset["bucket"], asset["object_key"], asset["content_type"]
        )
        plan = BlockPlan(asset["file_size"], asset["part_size"])
        self.log.info("OBS upload %s for asset %s: %d part(s)", upload_id, asset["asset_id"], plan.count)
        return [
            {
                "bucket": asset["bucket"],
                "object_key": asset["object_key"],
                "upload_id": upload_id,
                "source": asset["source"],
                "file_size": asset["file_size"],
                "part_number": block.part_number,
                "part_count": plan.count,
                "offset": block.offset,
                "length": block.length,
            }
            for block in plan.blocks
        ]


class HuaweiVodUploadPartOperator(HuaweiVodBaseOperator):
    """One OBS part: its byte range, its MD5 signed into its own URL; mapped, one task per part.

    Returns ``{"PartNumber", "ETag"}``. Re-running it is safe (a re-sent part replaces the earlier one).
    Instances are labelled ``part 3/8``.
    """

    template_fields: Sequence[str] = (*HuaweiVodBaseOperator.template_fields, "source", "upload_id")

    def __init__(
        self,
        *,
        bucket: str,
        object_key: str,
        upload_id: str,
        source: str,
        part_number: int,
        part_count: int,
        offset: int,
        length: int,
        file_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("map_index_template", PART_LABEL)
        super().__init__(**kwargs)
        self.bucket = bucket
        self.object_key = object_key
        self.upload_id = upload_id
        self.source = source
        self.part_number = part_number
        self.part_count = part_count
        self.offset = offset
        self.length = length
        self.file_size = file_size

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            data = read_planned_range(self.source, self.offset, self.length, self.file_size)
        except SourceError as exc:
            raise refuse(exc) from None
        etag = self.hook.upload_part(self.bucket, self.object_key, self.upload_id, self.part_number, data)
        self.log.info(
            "Part %d/%d: %s bytes at offset %s uploaded, ETag %s",
            self.part_number,
            self.part_count,
            f"{self.length:,}",
            f"{self.offset:,}",
            etag,
        )
        return {"PartNumber": self.part_number, "ETag": etag}


class HuaweiVodCompleteMultipartOperator(HuaweiVodBaseOperator):
    """OBS complete with every part in ascending order (runs, and does nothing, for single-PUT assets).

    :param asset: the create task's output. (templated)
    :param parts: the mapped part tasks' outputs. (templated)
    """

    template_fields: Sequence[str] = (*HuaweiVodBaseOperator.template_fields, "asset", "plan", "parts")

    def __init__(
        self,
        *,
        asset: dict[str, Any] | XComArg,
        plan: Iterable[dict[str, Any]] | XComArg,
        parts: Iterable[dict[str, Any]] | XComArg | None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "none_failed")  # the part tasks are skipped for single-PUT assets
        super().__init__(**kwargs)
        self.asset = asset
        self.plan = plan
        self.parts = parts

    def execute(self, context: Context) -> str | None:
        asset: dict[str, Any] = self.asset  # type: ignore[assignment]
        plan = list(self.plan or [])  # type: ignore[arg-type]
        if not plan:
            self.log.info("Asset %s went up in one PUT; nothing to complete", asset["asset_id"])
            return None
        parts = [UploadedPart(int(p["PartNumber"]), str(p["ETag"])) for p in (self.parts or [])]  # type: ignore[union-attr]
        numbers = sorted(part.part_number for part in parts)
        count = int(plan[0]["part_count"])
        if numbers != list(range(1, count + 1)):
            raise refuse(
                f"OBS upload {plan[0]['upload_id']} has parts {numbers} but needs exactly 1..{count}"
            )
        etag = self.hook.complete_multipart_upload(
            asset["bucket"], asset["object_key"], plan[0]["upload_id"], parts
        )
        self.log.info("OBS joined %d part(s) of asset %s, ETag %s", count, asset["asset_id"], etag)
        return etag


class HuaweiVodConfirmUploadOperator(HuaweiVodBaseOperator):
    """ConfirmAssetUpload ``CREATED``: tells VOD the object is complete. Returns the asset id.

    A repeated confirm (``VOD.10126``) is accepted when the asset is no longer uploading, so a retried task
    does not fail on its own earlier success.

    :param asset: the create task's output, or an asset id. (templated)
    """

    template_fields: Sequence[str] = (*HuaweiVodBaseOperator.template_fields, "asset")

    def __init__(self, *, asset: dict[str, Any] | str | XComArg, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset = asset

    def execute(self, context: Context) -> str:
        asset_id = str(self.asset["asset_id"] if isinstance(self.asset, dict) else self.asset)
        try:
            self.hook.confirm_asset_upload(asset_id, "CREATED")
        except HuaweiVodApiError as exc:
            status = self.hook.show_asset_meta(asset_id).get("status") if exc.code == "VOD.10126" else None
            if status in (None, "CREATING", "CANCELLED", "UPLOAD_FAILED", "UNCREATED"):
                raise
            self.log.info("Asset %s was already confirmed (status %s)", asset_id, status)
            return asset_id
        self.log.info("Confirmed asset %s as uploaded", asset_id)
        return asset_id


class HuaweiVodCancelUploadOperator(HuaweiVodBaseOperator):
    """Cleanup after a failed upload: abort the OBS multipart upload and confirm the asset ``CANCELLED``.

    Meant to run with ``trigger_rule="one_failed"`` downstream of every upload step. It reads the create and
    initiate tasks' XComs itself, so it also works when those tasks failed before pushing anything.

    :param create_task_id: task id of the create step.
    :param initiate_task_id: task id of the initiate step.
    """

    def __init__(self, *, create_task_id: str, initiate_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "one_failed")
        super().__init__(**kwargs)
        self.create_task_id = create_task_id
        self.initiate_task_id = initiate_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        asset = ti.xcom_pull(task_ids=self.create_task_id)
        if not asset:
            raise AirflowSkipException("No asset was created, so there is nothing to cancel")
        plan = ti.xcom_pull(task_ids=self.initiate_task_id) or []
        if plan:
            try:
                self.hook.abort_multipart_upload(asset["bucket"], asset["object_key"], plan[0]["upload_id"])
                self.log.info("Aborted OBS upload %s", plan[0]["upload_id"])
            except HuaweiVodApiError as exc:
                self.log.warning("Could not abort OBS upload %s: %s", plan[0]["upload_id"], exc)
        try:
            self.hook.confirm_asset_upload(asset["asset_id"], "CANCELLED")
        except HuaweiVodApiError as exc:
            if exc.code != "VOD.10126":
                raise
            self.log.warning("Asset %s could not be cancelled: it was already confirmed", asset["asset_id"])
            return {"asset_id": asset["asset_id"], "cancelled": False}
        self.log.info("Confirmed asset %s CANCELLED; VOD discards what was uploaded", asset["asset_id"])
        return {"asset_id": asset["asset_id"], "cancelled": True}
