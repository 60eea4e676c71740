"""``lazada_catalog_upload``: a whole catalog run (plan, upload, audit, attach, report) in one line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, TaskGroup, XComArg

from media_upload.catalog.lazada import (
    VIDEO_LABEL,
    LazadaCatalogAttachOperator,
    LazadaCatalogAuditSensor,
    LazadaCatalogCommitOperator,
    LazadaCatalogInitOperator,
    LazadaCatalogPlanOperator,
    LazadaCatalogReportOperator,
    catalog_blocks,
    catalog_verdict,
    complete_uploads,
    next_batch_conf,
    videos_to_attach,
    videos_to_audit,
)
from media_upload.hooks.lazada import LazadaHook
from media_upload.ledger import DEFAULT_CONN_ID
from media_upload.operators.lazada import BLOCK_LABEL, LazadaUploadVideoBlockOperator
from media_upload.protocols.lazada import DEFAULT_BLOCK_BYTES


def lazada_catalog_upload(
    manifest: str,
    *,
    block_size: int | str = DEFAULT_BLOCK_BYTES,
    after_line: int | str = 0,
    fail_on_video_errors: bool | str = True,
    lazada_conn_id: str = LazadaHook.default_conn_name,
    account: str | None = None,
    ledger_conn_id: str = DEFAULT_CONN_ID,
    outlets: Sequence[Asset] = (),
    max_parallel_videos: int = 8,
    max_parallel_blocks: int = 8,
    pool: str | None = None,
    poke_interval: float = 30,
    audit_timeout: timedelta = timedelta(hours=24),
    group_id: str = "catalog",
) -> XComArg:
    """Upload every new or changed video of a manifest and attach it; returns the run summary's XComArg.

    Tasks in group ``group_id``: ``plan`` → ``init_upload`` (mapped per video) → ``catalog_blocks`` →
    ``upload_block`` (mapped per block of every video, labelled ``SKU-1 block 2/3``) → ``complete_uploads`` →
    ``commit`` (mapped) → ``videos_to_audit`` → ``wait_for_audit`` (mapped, deferrable) →
    ``videos_to_attach`` → ``attach`` (mapped; one event on ``outlets`` per video) → ``report`` →
    ``catalog_verdict`` (fails the run when a video failed, if ``fail_on_video_errors``) and ``next_batch``
    (triggers a run for the rows this batch could not hold). ``max_parallel_videos`` and
    ``max_parallel_blocks`` cap concurrent API work per run; ``pool`` shares a budget across DAGs.
    """
    account = account or lazada_conn_id
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
            retries=0,
            **common,
        )
        init = LazadaCatalogInitOperator.partial(
            task_id="init_upload",
            map_index_template=VIDEO_LABEL,
            max_active_tis_per_dagrun=max_parallel_videos,
            **limits,
            **common,
        ).expand(job=plan.output)
        blocks = LazadaUploadVideoBlockOperator.partial(
            task_id="upload_block",
            lazada_conn_id=lazada_conn_id,
            map_index_template=BLOCK_LABEL,
            max_active_tis_per_dagrun=max_parallel_blocks,
            retries=3,
            retry_delay=timedelta(seconds=10),
            **limits,
        ).expand_kwargs(catalog_blocks(init.output))
        ready = complete_uploads(init.output, blocks.output, account=account, ledger_conn_id=ledger_conn_id)
        commit = LazadaCatalogCommitOperator.partial(
            task_id="commit",
            map_index_template=VIDEO_LABEL,
            max_active_tis_per_dagrun=max_parallel_videos,
            retries=0,
            **limits,
            **common,
        ).expand_kwargs(ready)
        audit = LazadaCatalogAuditSensor.partial(
            task_id="wait_for_audit",
            map_index_template=VIDEO_LABEL,
            deferrable=True,
            poke_interval=poke_interval,
            timeout=audit_timeout.total_seconds(),
            **common,
        ).expand(
            job=videos_to_audit(
                commit.output, plan.output["resume"], account=account, ledger_conn_id=ledger_conn_id
            )
        )
        attach = LazadaCatalogAttachOperator.partial(
            task_id="attach",
            map_index_template=VIDEO_LABEL,
            outlets=list(outlets),
            max_active_tis_per_dagrun=max_parallel_videos,
            **limits,
            **common,
        ).expand(job=videos_to_attach(audit.output))
        report = LazadaCatalogReportOperator(task_id="report", plan_task_id=plan.task_id, **common)
        attach >> report
        catalog_verdict(report.output, fail_on_video_errors)
        next_conf = next_batch_conf(plan.output["report"], manifest, block_size)
        report >> next_conf
        TriggerDagRunOperator(task_id="next_batch", trigger_dag_id="{{ dag.dag_id }}", conf=next_conf)
    return report.output
