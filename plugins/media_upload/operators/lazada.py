"""One operator per Lazada API step, thin wiring between the Airflow context and :class:`LazadaHook`.

InitCreateVideo → UploadVideoBlock (mapped, one task per block) → CompleteCreateVideo → (audit sensor)
→ UpdateProduct / CreateProduct. XCom carries ids, offsets and e-tags, never bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, XComArg, conf

from media_upload.hooks.lazada import LazadaHook
from media_upload.operators.base import refuse
from media_upload.protocols.lazada import (
    DEFAULT_BLOCK_BYTES,
    MAX_BLOCK_BYTES,
    MAX_FILE_BYTES,
    check_video_metadata,
)
from media_upload.transfer.blocks import BlockPlan
from media_upload.transfer.source import SourceError, inspect_source, read_planned_range

if TYPE_CHECKING:
    from airflow.sdk import Context

BLOCK_LABEL = "{{ task.video_label ~ ' ' if task.video_label else '' }}block {{ task.block_no + 1 }}/{{ task.block_count }}"


class LazadaBaseOperator(BaseOperator):
    """Holds the connection id and builds the hook lazily, at execute time, once per task."""

    template_fields: Sequence[str] = ("lazada_conn_id",)
    ui_color = "#fde8e0"

    def __init__(self, *, lazada_conn_id: str = LazadaHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lazada_conn_id = lazada_conn_id

    @cached_property
    def hook(self) -> LazadaHook:
        return LazadaHook(self.lazada_conn_id)


class LazadaInitVideoUploadOperator(LazadaBaseOperator):
    """Check the source, plan its blocks and call InitCreateVideo.

    The source is checked before any API call: it must exist, hold 1 to 99,999,999 bytes and be an
    MP4/MOV video (``ftyp`` box); its duration and resolution are logged. When ``title`` and ``cover_url``
    are given they are checked too, so a bad commit is refused before anything is uploaded.

    Returns the block plan, one small dict per block (``upload_id``, ``source``, ``file_size``,
    ``block_no``, ``block_count``, ``offset``, ``length``), which
    :class:`LazadaUploadVideoBlockOperator` expands over with ``expand_kwargs``.

    :param source: local path or URL (``file://``, ``s3://``, ``gs://``, ``http(s)://``) of the video. (templated)
    :param block_size: bytes per block, at most 10,000,000; the default 2 MiB is under the recommended 3 MB. (templated)
    :param title: the title the commit will use, checked early when given. (templated)
    :param cover_url: the cover the commit will use, checked early when given. (templated)
    :param file_name: ``fileName`` sent to Lazada; defaults to the source's file name. (templated)
    """

    template_fields: Sequence[str] = (
        *LazadaBaseOperator.template_fields,
        "source",
        "block_size",
        "title",
        "cover_url",
        "file_name",
    )

    def __init__(
        self,
        *,
        source: str,
        block_size: int | str = DEFAULT_BLOCK_BYTES,
        title: str | None = None,
        cover_url: str | None = None,
        file_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.block_size = block_size
        self.title = title
        self.cover_url = cover_url
        self.file_name = file_name

    def execute(self, context: Context) -> list[dict[str, Any]]:
        block_size = int(self.block_size)
        if not 1 <= block_size <= MAX_BLOCK_BYTES:
            raise refuse(
                f"block_size {block_size:,} is outside 1..{MAX_BLOCK_BYTES:,} bytes, Lazada's limit per block"
            )
        if self.title is not None or self.cover_url is not None:
            try:
                check_video_metadata(self.title, self.cover_url)
            except ValueError as exc:
                raise refuse(f"{self.source}: {exc}") from None
        try:
            info = inspect_source(self.source, max_bytes=MAX_FILE_BYTES, platform="Lazada")
        except SourceError as exc:
            raise refuse(exc) from None
        plan = BlockPlan(info.size, block_size)
        max_map_length = conf.getint("core", "max_map_length", fallback=1024)
        if plan.count > max_map_length:
            raise refuse(
                f"{info.uri}: {info.size:,} bytes in blocks of {block_size:,} make {plan.count} blocks, more than "
                f"[core] max_map_length ({max_map_length}); use blocks of at least {-(-info.size // max_map_length):,} bytes"
            )
        self.log.info(
            "Source %s: %s bytes, %s; %d block(s) of up to %s bytes",
            info.uri,
            f"{info.size:,}",
            info.media.describe(),
            plan.count,
            f"{block_size:,}",
        )
        upload_id = self.hook.init_create_video(self.file_name or info.name, info.size)
        self.log.info("InitCreateVideo gave upload id %s", upload_id)
        return [
            {
                "upload_id": upload_id,
                "source": info.uri,
                "file_size": info.size,
                "block_no": block.number,
                "block_count": plan.count,
                "offset": block.offset,
                "length": block.length,
            }
            for block in plan.blocks
        ]


class LazadaUploadVideoBlockOperator(LazadaBaseOperator):
    """UploadVideoBlock for one byte range of the source; meant to be mapped, one task instance per block.

    Reads only ``length`` bytes at ``offset`` through ``ObjectStoragePath`` and returns
    ``{"partNumber": block_no + 1, "eTag": ..., "uploadId": ...}`` for the commit. Re-running it is safe: a
    re-sent block replaces the earlier one. Instances are labelled ``block 3/34`` in the UI, prefixed with
    ``video_label`` when one is given (a catalog maps the blocks of many videos in one task).

    :param upload_id: from InitCreateVideo. (templated)
    :param source: the same source the plan was made from. (templated)
    :param block_no: 0-based block number.
    :param block_count: number of blocks of the upload.
    :param offset: first byte of the block.
    :param length: bytes in the block.
    :param file_size: the size the plan was made for; a source of another size is refused.
    :param video_label: names the video in the UI label (``SKU-1 block 3/34``).
    """

    template_fields: Sequence[str] = (*LazadaBaseOperator.template_fields, "upload_id", "source")

    def __init__(
        self,
        *,
        upload_id: str,
        source: str,
        block_no: int,
        block_count: int,
        offset: int,
        length: int,
        file_size: int | None = None,
        video_label: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("map_index_template", BLOCK_LABEL)
        super().__init__(**kwargs)
        self.video_label = video_label
        self.upload_id = upload_id
        self.source = source
        self.block_no = block_no
        self.block_count = block_count
        self.offset = offset
        self.length = length
        self.file_size = file_size

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            data = read_planned_range(self.source, self.offset, self.length, self.file_size)
        except SourceError as exc:
            raise refuse(exc) from None
        e_tag = self.hook.upload_video_block(self.upload_id, self.block_no, self.block_count, data)
        self.log.info(
            "Block %d/%d: %s bytes at offset %s uploaded, eTag %s",
            self.block_no + 1,
            self.block_count,
            f"{self.length:,}",
            f"{self.offset:,}",
            e_tag,
        )
        return {"partNumber": self.block_no + 1, "eTag": e_tag, "uploadId": self.upload_id}


class LazadaCommitVideoOperator(LazadaBaseOperator):
    """CompleteCreateVideo: gathers the mapped block results in part order and returns the video id.

    It checks that every part ``1..N`` of the plan is present before calling Lazada. A commit is not
    repeated blindly (Lazada does not say a second commit is harmless): if it fails, run the upload again
    from InitCreateVideo.

    :param plan: the init task's output (the block plan). (templated)
    :param parts: the block tasks' outputs, ``{"partNumber", "eTag"}`` each. (templated)
    :param title: video title. (templated)
    :param cover_url: URL of the cover image, ideally Lazada-hosted. (templated)
    :param video_usage: ``pro_main_video`` (product main video, the default) or ``im`` (chat). (templated)
    """

    template_fields: Sequence[str] = (
        *LazadaBaseOperator.template_fields,
        "plan",
        "parts",
        "title",
        "cover_url",
        "video_usage",
    )

    def __init__(
        self,
        *,
        plan: Iterable[dict[str, Any]] | XComArg,
        parts: Iterable[dict[str, Any]] | XComArg,
        title: str,
        cover_url: str,
        video_usage: str = "pro_main_video",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.parts = parts
        self.title = title
        self.cover_url = cover_url
        self.video_usage = video_usage

    def execute(self, context: Context) -> str:
        try:
            check_video_metadata(self.title, self.cover_url)
        except ValueError as exc:
            raise refuse(exc) from None
        plan, parts = list(self.plan), list(self.parts)  # type: ignore[arg-type]  # rendered by now
        upload_id, count = plan[0]["upload_id"], int(plan[0]["block_count"])
        numbers = sorted(int(part["partNumber"]) for part in parts)
        if numbers != list(range(1, count + 1)):
            raise refuse(f"upload {upload_id} has parts {numbers} but needs exactly 1..{count}")
        video_id = self.hook.complete_create_video(
            upload_id, parts, self.title, self.cover_url, self.video_usage
        )
        self.log.info(
            "CompleteCreateVideo joined %d block(s) of upload %s into video %s", count, upload_id, video_id
        )
        return video_id


def _id_list(value: Any) -> list[str]:
    """SKU ids from a list, a single id or a comma-separated string (as a trigger form gives them)."""
    if value is None or value == "":
        return []
    if isinstance(value, str | int):
        return [part.strip() for part in str(value).split(",") if part.strip()]
    return [str(item) for item in value]


class LazadaUpdateProductVideoOperator(LazadaBaseOperator):
    """UpdateProduct with ``Attributes.video``: put a video on an item, or remove it.

    Reads the item first (GetProductItem): an item that already carries the video is left alone, and
    when no SKU ids are given every SKU of the item is named (UpdateProduct requires ``SkuId``).

    :param item_id: the item to update. (templated)
    :param video_id: the video to attach, in ``AUDIT_SUCCESS``. (templated)
    :param sku_ids: SKU ids of the item: a list, one id or a comma-separated string. (templated)
    :param remove_video: remove the item's video instead (sends ``remove_video: "Yes"``).
    """

    template_fields: Sequence[str] = (*LazadaBaseOperator.template_fields, "item_id", "video_id", "sku_ids")

    def __init__(
        self,
        *,
        item_id: str | int,
        video_id: str | XComArg | None = None,
        sku_ids: Any = None,
        remove_video: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.item_id = item_id
        self.video_id = video_id
        self.sku_ids = sku_ids
        self.remove_video = remove_video

    def execute(self, context: Context) -> dict[str, Any]:
        video_id = None if self.remove_video else (str(self.video_id) if self.video_id else None)
        if not self.remove_video and not video_id:
            raise refuse("no video_id to attach; pass remove_video=True to remove the item's video")
        if not str(self.item_id).strip():
            raise refuse("no item_id: UpdateProduct needs the item to change")
        result = self.hook.set_product_video(self.item_id, video_id, _id_list(self.sku_ids))
        return {key: value for key, value in result.items() if key != "changed"}


class LazadaCreateProductOperator(LazadaBaseOperator):
    """CreateProduct for a new listing, with the payload from the task's input and an optional video.

    :param payload: ``{"Request": {"Product": ...}}`` as a dict or JSON string, or an XML string. (templated)
    :param video_id: put into ``Attributes.video`` when given; it must be in ``AUDIT_SUCCESS``. (templated)
    """

    template_fields: Sequence[str] = (*LazadaBaseOperator.template_fields, "payload", "video_id")

    def __init__(self, *, payload: dict[str, Any] | str, video_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.payload = payload
        self.video_id = video_id

    def execute(self, context: Context) -> dict[str, Any]:
        payload: dict[str, Any] | str = self.payload
        if self.video_id:
            if isinstance(payload, str):
                if payload.lstrip().startswith("<"):
                    raise refuse(
                        "video_id can only be merged into a JSON payload; put <video> in the XML instead"
                    )
                payload = json.loads(payload)
            assert isinstance(payload, dict)
            product = payload.setdefault("Request", {}).setdefault("Product", {})
            product.setdefault("Attributes", {})["video"] = str(self.video_id)
        data = self.hook.create_product(payload)
        self.log.info("CreateProduct made item %s with SKUs %s", data.get("item_id"), data.get("sku_list"))
        return data
