"""One operator per Shopee step, thin over :mod:`media_upload.steps.shopee`.

init_video_upload → upload_video_part (mapped, one task per chunk of 4 MB parts, several in flight) →
complete_video_upload → (the wait for ``SUCCEEDED``) → update_item, with a clean-up task that cancels an
upload that cannot be resumed. The ledger is read first everywhere: a retried or new run resumes, and the
same content is never uploaded twice for the same item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import XComArg

from media_upload.hooks import SHOPEE_CONN_ID
from media_upload.operators.base import (
    CHUNK_LABEL,
    PlatformOperator,
    UploadChunkMixin,
    check_map_length,
    optional_int,
    refuse,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from media_upload.hooks.shopee import ShopeeHook
    from media_upload.steps.shopee import ShopeeSteps


class ShopeeBaseOperator(PlatformOperator):
    """The base of the Shopee operators (see :class:`~media_upload.operators.base.PlatformOperator`).

    :param shopee_conn_id: the ``shopee`` connection.
    :param account: names the shop in the upload ledger; defaults to the connection id.
    :param ledger_conn_id: the SQL connection of the upload ledger.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#fee9e2"
    platform = "shopee"
    conn_attr = "shopee_conn_id"
    hook: ShopeeHook

    def __init__(self, *, shopee_conn_id: str = SHOPEE_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shopee_conn_id = shopee_conn_id

    def steps(self, context: Context) -> ShopeeSteps:
        steps: ShopeeSteps = super().steps(context)
        return steps


class ShopeeInitVideoUploadOperator(ShopeeBaseOperator):
    """Check the source and the item, plan the parts, and start (or resume) the upload.

    Before any call that uploads: the source must be an MP4 of 1 to 30,000,000 bytes, 10 to 60 seconds
    long, at most 1280 pixels wide and high (Shopee checks these only after transcoding, so a bad video
    would fail an hour later), and the item must exist. The ledger is read first: an upload of the same
    content for the same item resumes where it stopped, and content Shopee already has is not uploaded.

    Returns the chunks :class:`ShopeeUploadChunkOperator` expands over (none when nothing needs
    uploading), and pushes the job under XCom key ``job``.

    :param source: local path or URL of the video. (templated)
    :param item_id: the Shopee item the video is for; it keys the ledger. (templated)
    :param chunks: chunk tasks; by default one per 48 MB (one for any Shopee video). (templated)
    :param parts_in_flight: parts each chunk sends at once; by default 8. (templated)
    :param source_conn_id: the connection that reads a remote source (an HTTP connection only for its own
        host); never taken from the URL. ``[media_upload] allowed_sources`` says what may be read.
    """

    template_fields: Sequence[str] = (
        *ShopeeBaseOperator.template_fields,
        "source",
        "item_id",
        "chunks",
        "parts_in_flight",
    )

    def __init__(
        self,
        *,
        source: str,
        item_id: str | int | None = None,
        chunks: int | str | None = None,
        parts_in_flight: int | str | None = None,
        source_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.item_id = item_id
        self.chunks = chunks
        self.parts_in_flight = parts_in_flight
        self.source_conn_id = source_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from media_upload.protocols.shopee import MAX_FILE_BYTES_DECIMAL, part_rules
        from media_upload.steps.common import Segment, TargetRefused, UploadJob, UploadStopped, chunk_payload
        from media_upload.steps.shopee import PLATFORM
        from media_upload.transfer.plan import plan_upload
        from media_upload.transfer.source import Source, SourceError

        item_id = str(self.item_id or "").strip()
        if item_id and not item_id.isdigit():
            raise refuse(f"item_id {item_id!r} is not a Shopee item id (a number)")
        steps = self.steps(context)
        part_size = self.hook.credentials.part_size
        rules = part_rules(part_size)
        try:
            source = Source.of(self.source, self.source_conn_id)
            info = source.inspect(max_bytes=MAX_FILE_BYTES_DECIMAL + 1, platform="Shopee")
            steps.check_video(source, info)
            plan = plan_upload(
                str(source),
                info.size,
                rules,
                block_size=part_size,
                chunks=optional_int("chunks", self.chunks),
                blocks_in_flight=optional_int("parts_in_flight", self.parts_in_flight),
            )
        except SourceError as exc:
            raise refuse(exc) from None
        check_map_length(str(source), len(plan.chunks))
        self.report_source(info.uri)
        try:
            if item_id:
                steps.check_item(item_id, "item_id")
        except TargetRefused as exc:
            raise refuse(exc.reason) from None
        digests = source.digests("sha256", "md5")
        self.log.info(
            "Source %s: %s bytes, %s; %d part(s) of %s bytes in %d chunk(s)",
            source,
            f"{info.size:,}",
            info.media.describe(),
            plan.blocks.count,
            f"{plan.blocks.block_size:,}",
            len(plan.chunks),
        )
        job = UploadJob(
            platform=PLATFORM,
            account=self.seller,
            product=f"item:{item_id}" if item_id else "",
            content_sha256=digests["sha256"].hexdigest(),
            label=f"item {item_id}" if item_id else info.name,
            source=info.uri,
            source_conn_id=source.conn_id,
            name=info.name,
            size=info.size,
            block_size=plan.blocks.block_size,
            title=info.name,
            item_id=item_id or None,
            details={"file_md5": digests["md5"].hexdigest()},
        )
        try:
            job = steps.begin(job)
        except UploadStopped as exc:
            raise refuse(exc) from None
        context["ti"].xcom_push(key="job", value=job.as_xcom())
        if job.video_id:
            self.log.info("Nothing to upload: Shopee already has this content as upload %s", job.video_id)
            return []
        return [
            chunk_payload(
                chunk.index,
                chunk.count,
                [Segment(job, chunk.first, chunk.last)],
                plan.blocks_in_flight,
                "parts",
            )
            for chunk in plan.chunks
        ]


class ShopeeUploadChunkOperator(UploadChunkMixin, ShopeeBaseOperator):
    """upload_video_part for one chunk's parts, several at once, each with its MD5; mapped, one task per
    chunk. Parts Shopee acknowledged before are not sent again; the chunk that delivers the last part
    also completes the upload, and its label says so. Instances are labelled ``chunk 1/1 · parts 1–3 · 10 MB``.

    :param chunk: one chunk from the init task.
    """

    def __init__(self, *, chunk: Mapping[str, Any], **kwargs: Any) -> None:
        kwargs.setdefault("map_index_template", CHUNK_LABEL)
        super().__init__(**kwargs)
        self.chunk = chunk

    def execute(self, context: Context) -> dict[str, list[dict[str, Any]]]:
        return self.upload_with(self.steps(context))


class ShopeeCompleteUploadOperator(ShopeeBaseOperator):
    """Settles the upload: the chunk task that delivered the last part normally completed it already (this
    task then only reads the ledger); otherwise complete_video_upload here, and a complete whose answer was
    lost is settled by asking Shopee. Returns the ``video_upload_id`` to wait for.

    :param job: the init task's ``job`` XCom. (templated)
    """

    template_fields: Sequence[str] = (*ShopeeBaseOperator.template_fields, "job")

    def __init__(self, *, job: Mapping[str, Any] | XComArg, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "none_failed")  # no chunk task runs when nothing is uploaded
        super().__init__(**kwargs)
        self.job = job

    def execute(self, context: Context) -> str:
        from media_upload.steps.common import UploadJob, UploadStopped

        job = UploadJob.from_xcom(self.job)  # type: ignore[arg-type]  # rendered by now
        if job.video_id:
            self.report_jobs([job])
            return job.video_id
        try:
            completed = self.steps(context).finish(job)
        except UploadStopped as exc:
            raise refuse(exc) from None
        if completed is None or not completed.video_id:
            raise refuse(f"{job.label}: upload {job.upload_id} is not complete")
        self.report_jobs([completed])
        return completed.video_id


class ShopeeCleanUpOperator(ShopeeBaseOperator):
    """After a failed run: cancel an upload that cannot be resumed (cancel_video_upload), and record a video
    Shopee failed (``FAILED`` or ``CANCELLED``) as rejected, so no run uploads that content again. An upload
    the next run can resume is kept. Runs only when something upstream failed.

    :param init_task_id: the init task, whose ``job`` XCom names the upload.
    :param complete_task_id: the complete task, whose XCom is the ``video_upload_id``.
    """

    def __init__(self, *, init_task_id: str, complete_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "one_failed")
        super().__init__(**kwargs)
        self.init_task_id = init_task_id
        self.complete_task_id = complete_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from media_upload.steps.common import UploadJob

        ti = context["ti"]
        value = ti.xcom_pull(task_ids=self.init_task_id, key="job")
        if not value:
            raise AirflowSkipException("No upload was started, so there is nothing to clean up")
        steps = self.steps(context)
        job = UploadJob.from_xcom(value)
        completed = ti.xcom_pull(task_ids=self.complete_task_id)
        if completed:
            status = str(self.hook.get_video_upload_result(str(completed))["status"])
            steps.audited(job.with_(video_id=str(completed)), status)
            return {"video_upload_id": completed, "status": status, "cancelled": False}
        cancelled = steps.give_up(job)
        self.log.info(
            "Upload %s %s", job.upload_id, "cancelled" if cancelled else "kept: the next run resumes it"
        )
        return {"video_upload_id": job.upload_id, "cancelled": cancelled}


class ShopeeUpdateItemVideoOperator(ShopeeBaseOperator):
    """update_item with ``video_upload_id``: put a succeeded video on an item, or remove the item's video.

    :param item_id: the item to update. (templated)
    :param video_upload_id: an upload in ``SUCCEEDED``, of the same shop. (templated)
    :param remove_video: remove the item's video instead (sends a blank ``video_upload_id``).
    """

    template_fields: Sequence[str] = (*ShopeeBaseOperator.template_fields, "item_id", "video_upload_id")

    def __init__(
        self,
        *,
        item_id: str | int,
        video_upload_id: str | XComArg | None = None,
        remove_video: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.item_id = item_id
        self.video_upload_id = video_upload_id
        self.remove_video = remove_video

    def execute(self, context: Context) -> dict[str, Any]:
        item_id = str(self.item_id).strip()
        if not item_id.isdigit():
            raise refuse(f"item_id {item_id!r} is not a Shopee item id (a number)")
        video = None if self.remove_video else self.video_upload_id
        if self.remove_video:
            result = self.hook.set_item_video(item_id, None)
        elif not video:
            raise refuse("no video_upload_id to attach; pass remove_video=True to remove the item's video")
        else:
            result = self.steps(context).attach_video(item_id, str(video))
        self.report_attached([{"platform": self.platform, "video_id": video, "item_id": item_id}])
        return result
