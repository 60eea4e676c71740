"""One operator per Huawei Cloud VOD upload step, thin over :mod:`media_upload.steps.huawei_vod`.

CreateAsset and the OBS initiate → part uploads (mapped, one task per chunk of parts, several parts in
flight) → OBS complete and ConfirmAssetUpload, with a cleanup task that cancels an asset whose upload
cannot be resumed. Files under 20 MB go up in one PUT inside the create task instead. The upload ledger
is read first everywhere: a retried or new run resumes, and the same content is never uploaded twice.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import XComArg

from media_upload.hooks import HUAWEI_VOD_CONN_ID
from media_upload.operators.base import (
    CHUNK_LABEL,
    PlatformOperator,
    UploadChunkMixin,
    check_map_length,
    optional_int,
    refuse,
)
from media_upload.protocols.huawei_vod import (
    MAX_PART_BYTES,
    MAX_PARTS,
    PART_RULES,
    SINGLE_PUT_MAX_BYTES,
    VIDEO_TYPES,
    ready_statuses,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from media_upload.hooks.huawei_vod import HuaweiVodHook
    from media_upload.steps.huawei_vod import HuaweiVodSteps


class HuaweiVodBaseOperator(PlatformOperator):
    """The base of the Huawei VOD operators (see :class:`~media_upload.operators.base.PlatformOperator`).

    :param huawei_vod_conn_id: the ``huawei_vod`` connection.
    :param account: names the project in the upload ledger; defaults to the connection id.
    :param ledger_conn_id: the SQL connection of the upload ledger.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#e8eefc"
    platform = "huawei_vod"
    conn_attr = "huawei_vod_conn_id"
    hook: HuaweiVodHook

    def __init__(self, *, huawei_vod_conn_id: str = HUAWEI_VOD_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.huawei_vod_conn_id = huawei_vod_conn_id

    def steps(self, context: Context) -> HuaweiVodSteps:
        steps: HuaweiVodSteps = super().steps(context)
        return steps


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
    """Check the source, plan its parts, then CreateAsset and the OBS initiate (or resume, or reuse).

    The source must exist and be an MP4/MOV video (its container picks ``video_type``); title and
    description are checked against VOD's limits first. The whole file's MD5 is sent as ``video_md5`` so
    OBS verifies the bytes. Files under ``single_put_max_bytes`` are PUT to CreateAsset's
    ``video_upload_url`` in this task: that URL is a credential, so it never travels through XCom. The
    ledger is read first: the same content for the same ``product`` is never uploaded twice, and an
    upload that stopped resumes with the parts OBS already has.

    Returns the chunks the mapped part uploads expand over (none for a single PUT, or when VOD already
    has the content), and pushes the job under XCom key ``job``.

    :param source: local path or URL of the video. (templated)
    :param title: asset title, at most 128 bytes. (templated)
    :param product: what the video is for (a SKU...), keying the ledger with the content; empty keys it
        by content alone. (templated)
    :param description: at most 1,024 bytes. (templated)
    :param category_id: VOD category; -1 or None means "Other". (templated)
    :param auto_publish: publish once ready (always sent; VOD's default is disputed). (templated)
    :param template_group_name: transcode template group; empty means no transcoding. (templated)
    :param tags: comma-separated tags. (templated)
    :param part_size: bytes per OBS part, 102,400 to 5 GiB; by default equal parts of at most 20 MB, as
        VOD recommends. (templated)
    :param chunks: chunk tasks; by default one per 48 MB, at most 4. (templated)
    :param parts_in_flight: parts each chunk sends at once; by default the chunks share 8. (templated)
    :param single_put_max_bytes: files smaller than this use one PUT; 0 always uses multipart.
    :param verify_md5: send the file's MD5 for OBS to verify.
    :param source_conn_id: the connection that reads a remote source (an HTTP connection only for its own
        host); never taken from the URL. ``[media_upload] allowed_sources`` says what may be read.
    """

    template_fields: Sequence[str] = (
        *HuaweiVodBaseOperator.template_fields,
        "source",
        "title",
        "product",
        "description",
        "category_id",
        "template_group_name",
        "tags",
        "part_size",
        "chunks",
        "parts_in_flight",
        "auto_publish",
    )

    def __init__(
        self,
        *,
        source: str,
        title: str,
        product: str | None = None,
        description: str | None = None,
        category_id: int | str | None = None,
        auto_publish: bool | str = True,
        template_group_name: str | None = None,
        tags: str | None = None,
        part_size: int | str | None = None,
        chunks: int | str | None = None,
        parts_in_flight: int | str | None = None,
        single_put_max_bytes: int = SINGLE_PUT_MAX_BYTES,
        verify_md5: bool = True,
        source_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.source_conn_id = source_conn_id
        self.title = title
        self.product = product
        self.description = description
        self.category_id = category_id
        self.auto_publish = auto_publish
        self.template_group_name = template_group_name
        self.tags = tags
        self.part_size = part_size
        self.chunks = chunks
        self.parts_in_flight = parts_in_flight
        self.single_put_max_bytes = single_put_max_bytes
        self.verify_md5 = verify_md5

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from media_upload.steps.common import Segment, UploadJob, UploadStopped, chunk_payload
        from media_upload.steps.huawei_vod import PLATFORM
        from media_upload.transfer.plan import plan_upload
        from media_upload.transfer.source import Source, SourceError

        _check_text("title", self.title, 128, required=True)
        auto_publish = _flag(self.auto_publish)
        _check_text("description", self.description, 1024, required=False)
        category = optional_int("category_id", self.category_id) if self.category_id not in (-1, "-1") else -1
        try:
            source = Source.of(self.source, self.source_conn_id)
            info = source.inspect(max_bytes=MAX_PART_BYTES * MAX_PARTS + 1, platform="Huawei VOD")
            plan = plan_upload(
                str(source),
                info.size,
                PART_RULES,
                block_size=optional_int("part_size", self.part_size),
                chunks=optional_int("chunks", self.chunks),
                blocks_in_flight=optional_int("parts_in_flight", self.parts_in_flight),
            )
        except SourceError as exc:
            raise refuse(exc) from None
        check_map_length(str(source), len(plan.chunks))
        self.report_source(info.uri)
        single = info.size < self.single_put_max_bytes
        video_type, content_type = VIDEO_TYPES[info.media.container]
        self.log.info(
            "Source %s: %s bytes, %s; %s",
            source,
            f"{info.size:,}",
            info.media.describe(),
            "one PUT"
            if single
            else f"{plan.blocks.count} part(s) of up to {plan.blocks.block_size:,} bytes in {len(plan.chunks)} chunk(s)",
        )
        digests = source.digests("sha256", *(["md5"] if self.verify_md5 else []))
        video_md5 = base64.b64encode(digests["md5"].digest()).decode() if self.verify_md5 else None
        asset = {
            "title": self.title,
            "video_name": info.name,
            "video_type": video_type,
            "auto_publish": auto_publish,
            "description": self.description,
            "category_id": category if category != -1 else None,
            "tags": self.tags,
            "template_group_name": self.template_group_name,
            "video_md5": video_md5,
        }
        job = UploadJob(
            platform=PLATFORM,
            account=self.seller,
            product=str(self.product or ""),
            content_sha256=digests["sha256"].hexdigest(),
            label=str(self.product or info.name),
            source=info.uri,
            source_conn_id=source.conn_id,
            name=info.name,
            size=info.size,
            block_size=info.size if single else plan.blocks.block_size,
            title=self.title,
            details={
                "mode": "single" if single else "multipart",
                "content_type": content_type,
                "video_md5": video_md5,
                "ready_statuses": list(ready_statuses(auto_publish, bool(self.template_group_name))),
                "asset": asset,
            },
        )
        try:
            job = self.steps(context).begin(job)
        except UploadStopped as exc:
            raise refuse(exc) from None
        context["ti"].xcom_push(key="job", value=job.as_xcom())
        if job.details.get("mode") == "single" or job.details.get("confirmed"):
            return []
        if job.block_size != plan.blocks.block_size:  # resumed with the parts the upload started with
            plan = plan_upload(
                info.uri, info.size, PART_RULES, block_size=job.block_size, chunks=len(plan.chunks)
            )
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


class HuaweiVodUploadChunkOperator(UploadChunkMixin, HuaweiVodBaseOperator):
    """One chunk's OBS parts, several at once, each with its MD5 signed into its own URL; mapped, one task
    per chunk. Parts OBS acknowledged before are not sent again; the chunk that delivers the last part
    also completes the upload and confirms the asset. Returns ``{upload_id: [{"partNumber", "eTag"}]}``;
    instances are labelled ``chunk 2/4 · parts 3–4 · 24 MB``.

    :param chunk: one chunk from the create task.
    """

    def __init__(self, *, chunk: Mapping[str, Any], **kwargs: Any) -> None:
        kwargs.setdefault("map_index_template", CHUNK_LABEL)
        super().__init__(**kwargs)
        self.chunk = chunk

    def execute(self, context: Context) -> dict[str, list[dict[str, Any]]]:
        return self.upload_with(self.steps(context))


class HuaweiVodConfirmUploadOperator(HuaweiVodBaseOperator):
    """OBS complete and ConfirmAssetUpload ``CREATED``, unless the last chunk (or the single PUT) already
    did; an answer that was lost is settled by asking VOD and OBS. Returns ``{asset_id, ready_statuses}``
    for the readiness sensor.

    :param job: the create task's ``job`` XCom. (templated)
    """

    template_fields: Sequence[str] = (*HuaweiVodBaseOperator.template_fields, "job")

    def __init__(self, *, job: Mapping[str, Any] | XComArg, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "none_failed")  # no chunk task runs for a single PUT
        super().__init__(**kwargs)
        self.job = job

    def execute(self, context: Context) -> dict[str, Any]:
        from media_upload.steps.common import UploadJob, UploadStopped
        from media_upload.steps.huawei_vod import ready_job

        job = UploadJob.from_xcom(self.job)  # type: ignore[arg-type]  # rendered by now
        try:
            finished = self.steps(context).finish(job)
        except UploadStopped as exc:
            raise refuse(exc) from None
        self.report_jobs([finished or job])
        return ready_job(finished or job)


class HuaweiVodCancelUploadOperator(HuaweiVodBaseOperator):
    """After a failed upload: cancel the asset (abort OBS, confirm ``CANCELLED``) when its upload cannot be
    resumed; an upload the next run can resume is kept, and the log says so.

    Meant to run with ``trigger_rule="one_failed"`` downstream of every upload step.

    :param create_task_id: task id of the create step (its ``job`` XCom).
    """

    def __init__(self, *, create_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "one_failed")
        super().__init__(**kwargs)
        self.create_task_id = create_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from media_upload.steps.common import UploadJob

        value = context["ti"].xcom_pull(task_ids=self.create_task_id, key="job")
        if not value:
            raise AirflowSkipException("No asset was created, so there is nothing to cancel")
        job = UploadJob.from_xcom(value)
        cancelled = self.steps(context).give_up(job)
        if cancelled:
            self.log.info("Asset %s cancelled; VOD discards what was uploaded", job.video_id)
        else:
            self.log.info("Asset %s is kept: the next run resumes its upload", job.video_id)
        return {"asset_id": job.video_id, "cancelled": cancelled}
