"""One operator per Lazada API step, thin wiring between the Airflow context and :class:`LazadaHook`.

InitCreateVideo → UploadVideoBlock (mapped, one task per chunk of blocks, several blocks in flight) →
CompleteCreateVideo → (audit sensor) → UpdateProduct / CreateProduct. Each step goes through
:mod:`media_upload.steps.lazada`, which reads and writes the upload ledger. XCom carries ids, offsets and
e-tags, never bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import XComArg

from media_upload.hooks import LAZADA_CONN_ID
from media_upload.operators.base import (
    CHUNK_LABEL,
    PlatformOperator,
    UploadChunkMixin,
    check_map_length,
    optional_int,
    refuse,
)
from media_upload.protocols.lazada import BLOCK_RULES, MAX_FILE_BYTES, check_video_metadata
from media_upload.transfer.policy import shown

if TYPE_CHECKING:
    from airflow.sdk import Context

    from media_upload.hooks.lazada import LazadaHook
    from media_upload.steps.lazada import LazadaSteps


class LazadaBaseOperator(PlatformOperator):
    """The base of the Lazada operators (see :class:`~media_upload.operators.base.PlatformOperator`).

    :param lazada_conn_id: the ``lazada`` connection.
    :param account: names the seller in the upload ledger; defaults to the connection id.
    :param ledger_conn_id: the SQL connection of the upload ledger.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#fde8e0"
    platform = "lazada"
    conn_attr = "lazada_conn_id"
    hook: LazadaHook

    def __init__(self, *, lazada_conn_id: str = LAZADA_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lazada_conn_id = lazada_conn_id

    def steps(self, context: Context) -> LazadaSteps:
        steps: LazadaSteps = super().steps(context)
        return steps


class LazadaInitVideoUploadOperator(LazadaBaseOperator):
    """Check the source, plan its blocks and chunks, and start (or resume) the upload.

    The source is checked before any API call: it must exist, hold 1 to 99,999,999 bytes and be an
    MP4/MOV video (``ftyp`` box); its duration and resolution are logged. The title and cover are checked
    too, so a bad commit is refused before anything is uploaded. The ledger is read first: an upload of
    the same content for the same product resumes where it stopped (blocks Lazada acknowledged are not
    sent again), and content Lazada already has as a video is not uploaded at all.

    Returns the chunks, one small dict each, that :class:`LazadaUploadChunkOperator` expands over (none
    when nothing needs uploading), and pushes the job under XCom key ``job`` for the commit.

    :param source: local path or URL (``file://``, ``s3://``, ``gs://``, ``http(s)://``) of the video. (templated)
    :param title: the video title. (templated)
    :param cover_url: the cover image URL. (templated)
    :param product: the product the video is for, keying the ledger (``item:123``); empty keys it by
        content alone. (templated)
    :param block_size: bytes per block, at most 10,000,000; by default equal blocks under Lazada's
        recommended 3 MB. (templated)
    :param chunks: chunk tasks to use, at most one per block; by default one per 48 MB, at most 4. (templated)
    :param blocks_in_flight: blocks each chunk sends at once; by default the chunks share 8. (templated)
    :param video_usage: ``pro_main_video`` (product main video, the default) or ``im`` (chat). (templated)
    :param file_name: ``fileName`` sent to Lazada; defaults to the source's file name. (templated)
    :param source_conn_id: the connection that reads a remote source (``aws``, ``google_cloud_platform``,
        ``http``: an HTTP connection is used only for its own host); never taken from the URL. The
        deployment's ``[media_upload] allowed_sources`` says which folders and URL prefixes may be read.
    """

    template_fields: Sequence[str] = (
        *LazadaBaseOperator.template_fields,
        "source",
        "title",
        "cover_url",
        "product",
        "block_size",
        "chunks",
        "blocks_in_flight",
        "video_usage",
        "file_name",
    )

    def __init__(
        self,
        *,
        source: str,
        title: str,
        cover_url: str,
        product: str | None = None,
        block_size: int | str | None = None,
        chunks: int | str | None = None,
        blocks_in_flight: int | str | None = None,
        video_usage: str = "pro_main_video",
        file_name: str | None = None,
        source_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.source_conn_id = source_conn_id
        self.title = title
        self.cover_url = cover_url
        self.product = product
        self.block_size = block_size
        self.chunks = chunks
        self.blocks_in_flight = blocks_in_flight
        self.video_usage = video_usage
        self.file_name = file_name

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from media_upload.steps.common import Segment, UploadJob, chunk_payload
        from media_upload.steps.lazada import PLATFORM, UploadStopped
        from media_upload.transfer.plan import plan_upload
        from media_upload.transfer.source import Source, SourceError

        try:
            check_video_metadata(self.title, self.cover_url)
            source = Source.of(self.source, self.source_conn_id)
            info = source.inspect(max_bytes=MAX_FILE_BYTES, platform="Lazada")
            plan = plan_upload(
                str(source),
                info.size,
                BLOCK_RULES,
                block_size=optional_int("block_size", self.block_size),
                chunks=optional_int("chunks", self.chunks),
                blocks_in_flight=optional_int("blocks_in_flight", self.blocks_in_flight),
            )
        except SourceError as exc:
            raise refuse(exc) from None
        except ValueError as exc:
            raise refuse(f"{shown(self.source)}: {exc}") from None
        check_map_length(str(source), len(plan.chunks))
        self.report_source(info.uri)
        self.log.info(
            "Source %s: %s bytes, %s; %d block(s) of up to %s bytes in %d chunk(s), %d in flight each",
            source,
            f"{info.size:,}",
            info.media.describe(),
            plan.blocks.count,
            f"{plan.blocks.block_size:,}",
            len(plan.chunks),
            plan.blocks_in_flight,
        )
        job = UploadJob(
            platform=PLATFORM,
            account=self.seller,
            product=str(self.product or ""),
            content_sha256=source.sha256(),
            label=str(self.product or info.name),
            source=info.uri,
            source_conn_id=source.conn_id,
            name=self.file_name or info.name,
            size=info.size,
            block_size=plan.blocks.block_size,
            title=self.title,
            cover_url=self.cover_url,
            video_usage=self.video_usage,
        )
        try:
            job = self.steps(context).begin(job)
        except UploadStopped as exc:
            raise refuse(exc) from None
        context["ti"].xcom_push(key="job", value=job.as_xcom())
        if job.video_id:
            self.log.info("Nothing to upload: Lazada already has this content as video %s", job.video_id)
            return []
        if job.block_size != plan.blocks.block_size:  # resumed with the blocks the upload started with
            plan = plan_upload(
                info.uri, info.size, BLOCK_RULES, block_size=job.block_size, chunks=len(plan.chunks)
            )
        return [
            chunk_payload(
                chunk.index, chunk.count, [Segment(job, chunk.first, chunk.last)], plan.blocks_in_flight
            )
            for chunk in plan.chunks
        ]


class LazadaUploadChunkOperator(UploadChunkMixin, LazadaBaseOperator):
    """UploadVideoBlock for one chunk's blocks, several at once; meant to be mapped, one task per chunk.

    Reads only each block's byte range, just before sending it, so memory
    stays near blocks in flight times the block size. Blocks Lazada acknowledged before (an earlier try, an earlier
    run) are not sent again; each acknowledgement is kept in the ledger as soon as it arrives. Logs
    progress every few seconds. Returns ``{upload_id: [{"partNumber", "eTag"}, ...]}`` for the commit.
    Instances are labelled ``chunk 2/4 · blocks 9–16 · 24 MB``.

    :param chunk: one chunk from the init (or catalog plan) task.
    """

    def __init__(self, *, chunk: Mapping[str, Any], **kwargs: Any) -> None:
        kwargs.setdefault("map_index_template", CHUNK_LABEL)
        super().__init__(**kwargs)
        self.chunk = chunk

    def execute(self, context: Context) -> dict[str, list[dict[str, Any]]]:
        return self.upload_with(self.steps(context))


class LazadaCommitVideoOperator(LazadaBaseOperator):
    """CompleteCreateVideo: joins the blocks into a video and returns its id.

    The commit is claimed in the ledger before it is sent. If its answer is lost (timeout, reset, a
    gateway error page), Lazada is asked again before anything else: a video id in the answer is adopted,
    and otherwise the ledger marks the upload *needs attention* and the task fails without uploading
    anything again. A job that already has a video (the init found it) passes straight through.

    :param job: the init task's ``job`` XCom. (templated)
    :param parts: the chunk tasks' outputs. (templated)
    """

    template_fields: Sequence[str] = (*LazadaBaseOperator.template_fields, "job", "parts")

    def __init__(
        self,
        *,
        job: Mapping[str, Any] | XComArg,
        parts: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "none_failed")  # no chunk task runs when nothing is uploaded
        super().__init__(**kwargs)
        self.job = job
        self.parts = parts

    def execute(self, context: Context) -> str:
        from media_upload.steps.common import UploadJob
        from media_upload.steps.lazada import UploadStopped

        job = UploadJob.from_xcom(self.job)  # type: ignore[arg-type]  # rendered by now
        if job.video_id:
            self.report_jobs([job])
            return job.video_id
        parts = [part for chunk in (self.parts or []) for part in chunk.get(job.upload_id or "", [])]
        try:
            check_video_metadata(job.title, job.cover_url)
            committed = self.steps(context).commit(job, parts)
        except (UploadStopped, ValueError) as exc:
            raise refuse(exc) from None
        if committed is None or not committed.video_id:
            raise refuse(f"{job.label}: upload {job.upload_id} has no video after its commit")
        self.report_jobs([committed])
        return committed.video_id


class LazadaRecordAuditOperator(LazadaBaseOperator):
    """Records a failed audit in the ledger (``rejected``), so no run uploads that content again.

    Runs only when the audit wait failed (``trigger_rule="one_failed"``); it reads the video's state once.
    It pulls what it needs itself, so a run whose upload never started skips it instead of failing.

    :param init_task_id: the init task, whose ``job`` XCom names the upload.
    :param commit_task_id: the commit task, whose XCom is the video id.
    """

    def __init__(self, *, init_task_id: str, commit_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "one_failed")
        super().__init__(**kwargs)
        self.init_task_id = init_task_id
        self.commit_task_id = commit_task_id

    def execute(self, context: Context) -> str:
        from airflow.sdk.exceptions import AirflowSkipException

        from media_upload.protocols.lazada import FAILED_VIDEO_STATES
        from media_upload.steps.common import UploadJob

        ti = context["ti"]
        value = ti.xcom_pull(task_ids=self.init_task_id, key="job")
        video_id = ti.xcom_pull(task_ids=self.commit_task_id)
        if not value or not video_id:
            raise AirflowSkipException("No video was committed, so no audit to record")
        job = UploadJob.from_xcom(value).with_(video_id=str(video_id))
        state = str(self.hook.get_video(str(video_id))["state"])
        if state in FAILED_VIDEO_STATES:
            self.steps(context).audited(job, state)
            self.log.info("Video %s ended in %s; the ledger now says rejected", video_id, state)
        return state


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
        if video_id:
            result = self.steps(context).attach_video(str(self.item_id), video_id, _id_list(self.sku_ids))
        else:
            result = self.hook.set_product_video(self.item_id, None, _id_list(self.sku_ids))
        self.report_attached([{"platform": self.platform, "video_id": video_id, "item_id": self.item_id}])
        return {key: value for key, value in result.items() if key not in ("changed", "item_id")}


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
        self.report_attached(
            [{"platform": self.platform, "video_id": self.video_id, "item_id": data.get("item_id")}]
        )
        self.log.info("CreateProduct made item %s with SKUs %s", data.get("item_id"), data.get("sku_list"))
        return data
