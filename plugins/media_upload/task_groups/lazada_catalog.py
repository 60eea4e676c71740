"""``lazada_catalog_upload``: a whole catalog run (plan, upload, audit, attach, report) in one line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, AssetAlias, TaskGroup, XComArg

from media_upload.catalog.operators import (
    LazadaCatalogAttachOperator,
    LazadaCatalogAuditSensor,
    LazadaCatalogCommitOperator,
    LazadaCatalogPlanOperator,
)
from media_upload.catalog.report import (
    LazadaCatalogNextBatchOperator,
    LazadaCatalogReportOperator,
    LazadaCatalogVerdictOperator,
)
from media_upload.hooks import LAZADA_CONN_ID
from media_upload.ledger import DEFAULT_CONN_ID
from media_upload.operators.base import CHUNK_LABEL
from media_upload.operators.lazada import LazadaUploadChunkOperator


def lazada_catalog_upload(
    manifest: str,
    *,
    block_size: int | str | None = None,
    after_line: int | str = 0,
    fail_on_video_errors: bool | str = True,
    upload_again_needs_attention: bool | str = False,
    source_conn_id: str | None = None,
    lazada_conn_id: str = LAZADA_CONN_ID,
    account: str | None = None,
    ledger_conn_id: str = DEFAULT_CONN_ID,
    outlets: Sequence[Asset | AssetAlias] = (),
    chunks: int = 4,
    blocks_in_flight: int | None = None,
    pool: str | None = None,
    chunk_retries: int = 3,
    poke_interval: float = 30,
    audit_timeout: timedelta = timedelta(hours=24),
    group_id: str = "catalog",
) -> XComArg:
    """Upload every new or changed video of a manifest and attach it; returns the run summary's XComArg.

    Tasks in group ``group_id``: ``plan`` (manifest, sources, products and ledger checked; InitCreateVideo
    for the batch) → ``upload_chunk`` (mapped over ``chunks`` chunk tasks of about equal bytes, each sending
    ``blocks_in_flight`` blocks at once and committing each video as its last block goes up; labelled with
    the SKUs) → ``commit`` (settles what the chunks could not) → ``wait_for_audit`` (one deferred wait for
    the batch) → ``attach`` (UpdateProduct per video; one event on each Asset of ``outlets`` for the batch,
    one per video on each AssetAlias) → ``report`` → ``catalog_verdict`` (fails the run when a video failed,
    if ``fail_on_video_errors``) and ``next_batch`` (a run for the rows past ``[core] max_map_length``).
    ``pool`` shares an API budget with other DAGs. ``source_conn_id`` names the connection that reads a
    remote manifest and its videos; ``[media_upload] allowed_sources`` says where they may come from.
    """
    common: dict[str, Any] = {
        "lazada_conn_id": lazada_conn_id,
        "account": account,
        "ledger_conn_id": ledger_conn_id,
    }
    limits: dict[str, Any] = {"pool": pool} if pool else {}
    with TaskGroup(group_id=group_id, tooltip="Upload a catalog's videos to Lazada and attach them"):
        plan = LazadaCatalogPlanOperator(
            task_id="plan",
            manifest=manifest,
            block_size=block_size,
            after_line=after_line,
            chunks=chunks,
            blocks_in_flight=blocks_in_flight,
            upload_again_needs_attention=upload_again_needs_attention,
            source_conn_id=source_conn_id,
            retries=0,
            **common,
            **limits,
        )
        uploads = LazadaUploadChunkOperator.partial(
            task_id="upload_chunk",
            map_index_template=CHUNK_LABEL,
            retries=chunk_retries,
            retry_delay=timedelta(seconds=10),
            **common,
            **limits,
        ).expand(chunk=plan.output)
        commit = LazadaCatalogCommitOperator(task_id="commit", plan_task_id=plan.task_id, **common, **limits)
        plan >> uploads >> commit
        audit = LazadaCatalogAuditSensor(
            task_id="wait_for_audit",
            videos=commit.output,
            lazada_conn_id=lazada_conn_id,
            poke_interval=poke_interval,
            timeout=audit_timeout.total_seconds(),
        )
        attach = LazadaCatalogAttachOperator(
            task_id="attach",
            commit_task_id=commit.task_id,
            audit_task_id=audit.task_id,
            outlets=list(outlets),
            **common,
            **limits,
        )
        audit >> attach
        report = LazadaCatalogReportOperator(task_id="report", plan_task_id=plan.task_id, **common)
        attach >> report
        verdict = LazadaCatalogVerdictOperator(
            task_id="catalog_verdict",
            report_task_id=report.task_id,
            fail_on_video_errors=fail_on_video_errors,
        )
        report >> verdict
        next_batch = LazadaCatalogNextBatchOperator(
            task_id="next_batch", plan_task_id=plan.task_id, manifest=manifest, block_size=block_size
        )
        report >> next_batch
    return report.output
