"""``catalog_upload``: every video of a manifest to every marketplace its rows name, in one task group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, AssetAlias, TaskGroup, XComArg

from media_upload.catalog.operators import (
    DEFAULT_CONNECTIONS,
    CatalogAttachOperator,
    CatalogPlanOperator,
    CatalogSettleOperator,
    CatalogUploadChunkOperator,
)
from media_upload.catalog.report import (
    CatalogNextBatchOperator,
    CatalogReportOperator,
    CatalogVerdictOperator,
)
from media_upload.ledger import DEFAULT_CONN_ID
from media_upload.operators.base import CHUNK_LABEL


def catalog_upload(
    manifest: str,
    *,
    platforms: Sequence[str] = ("lazada", "shopee", "huawei_vod"),
    connections: Mapping[str, str] | None = None,
    accounts: Mapping[str, str] | None = None,
    block_size: int | str | None = None,
    after_line: int | str = 0,
    fail_on_video_errors: bool | str = True,
    upload_again_needs_attention: bool | str = False,
    source_conn_id: str | None = None,
    ledger_conn_id: str = DEFAULT_CONN_ID,
    outlets: Sequence[Asset | AssetAlias] = (),
    chunks: int = 4,
    blocks_in_flight: int | None = None,
    pool: str | None = None,
    chunk_retries: int = 3,
    poke_interval: float = 30,
    audit_timeout: timedelta = timedelta(hours=24),
    late_after: timedelta | None = timedelta(minutes=15),
    group_id: str = "catalog",
) -> XComArg:
    """Upload every new or changed video of a manifest to each marketplace its rows name, and put each on
    its product; returns the run summary's XComArg.

    Tasks in group ``group_id``: ``plan`` (manifest, sources, products on every platform and the ledger
    checked; each platform's init call) → ``upload_chunk`` (mapped over ``chunks`` chunk tasks of about
    equal bytes, mixing platforms, each sending ``blocks_in_flight`` blocks at once and committing each
    video as its last block goes up; the label says how many it committed) → ``settle`` (commits what the
    chunks could not, settles lost answers) → ``wait_and_attach`` (deferred; puts each video on its product
    the moment its own audit passes; one event on each Asset of ``outlets`` for the run, one per video on
    each AssetAlias) → ``report`` → ``catalog_verdict`` (fails the run when a video failed, if
    ``fail_on_video_errors``) and ``next_batch`` (a run for the rows past ``[core] max_map_length``).
    Videos still in review ``late_after`` the wait began go to ``wait_and_attach_late`` (deferred, beside
    the report), which attaches them as they pass and adds their own event: a slow review holds back
    neither the run's event, nor its report, nor the next batch. ``late_after=None`` waits for all in one.

    ``platforms`` the catalog uploads to, with their ``connections`` (by default each platform's default
    connection); ``source_conn_id`` reads a remote manifest and its videos. ``pool`` shares an API budget
    with other DAGs.
    """
    connections = {
        platform: (connections or {}).get(platform, DEFAULT_CONNECTIONS[platform]) for platform in platforms
    }
    common: dict[str, Any] = {
        "connections": connections,
        "accounts": dict(accounts or {}),
        "ledger_conn_id": ledger_conn_id,
    }
    limits: dict[str, Any] = {"pool": pool} if pool else {}
    with TaskGroup(
        group_id=group_id, tooltip="Upload a catalog's videos to every marketplace and attach them"
    ):
        plan = CatalogPlanOperator(
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
        uploads = CatalogUploadChunkOperator.partial(
            task_id="upload_chunk",
            map_index_template=CHUNK_LABEL,
            retries=chunk_retries,
            retry_delay=timedelta(seconds=10),
            **common,
            **limits,
        ).expand(chunk=plan.output)
        settle = CatalogSettleOperator(task_id="settle", plan_task_id=plan.task_id, **common, **limits)
        plan >> uploads >> settle
        attach = CatalogAttachOperator(
            task_id="wait_and_attach",
            settle_task_id=settle.task_id,
            poke_interval=poke_interval,
            timeout=audit_timeout.total_seconds(),
            late_after=late_after.total_seconds() if late_after is not None else None,
            outlets=list(outlets),
            **common,
            **limits,
        )
        settle >> attach
        late = CatalogAttachOperator(
            task_id="wait_and_attach_late",
            settle_task_id=settle.task_id,
            late_from=attach.task_id,
            poke_interval=poke_interval,
            timeout=audit_timeout.total_seconds(),
            outlets=list(outlets),
            **common,
            **limits,
        )
        attach >> late
        report = CatalogReportOperator(task_id="report", plan_task_id=plan.task_id, **common)
        attach >> report
        verdict = CatalogVerdictOperator(
            task_id="catalog_verdict",
            report_task_id=report.task_id,
            fail_on_video_errors=fail_on_video_errors,
        )
        report >> verdict
        next_batch = CatalogNextBatchOperator(
            task_id="next_batch", plan_task_id=plan.task_id, manifest=manifest, block_size=block_size
        )
        report >> next_batch
    return report.output
