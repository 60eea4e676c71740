"""``lazada_video_upload``: init → mapped chunk uploads → commit → deferred audit wait, in one line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import TaskGroup, XComArg

from media_upload.hooks import LAZADA_CONN_ID
from media_upload.ledger import DEFAULT_CONN_ID
from media_upload.operators.base import CHUNK_LABEL
from media_upload.operators.lazada import (
    LazadaCommitVideoOperator,
    LazadaInitVideoUploadOperator,
    LazadaRecordAuditOperator,
    LazadaUploadChunkOperator,
)
from media_upload.sensors.lazada import LazadaVideoAuditSensor
from media_upload.transfer.plan import DEFAULT_IN_FLIGHT


def lazada_video_upload(
    source: str,
    title: str,
    cover_url: str,
    *,
    product: str | None = None,
    source_conn_id: str | None = None,
    lazada_conn_id: str = LAZADA_CONN_ID,
    account: str | None = None,
    ledger_conn_id: str = DEFAULT_CONN_ID,
    block_size: int | str | None = None,
    chunks: int | str | None = None,
    blocks_in_flight: int | str | None = None,
    max_parallel_chunks: int = DEFAULT_IN_FLIGHT,
    video_usage: str = "pro_main_video",
    chunk_retries: int = 3,
    pool: str | None = None,
    deferrable: bool = True,
    poke_interval: float = 30,
    audit_timeout: timedelta = timedelta(hours=24),
    group_id: str = "lazada_video",
) -> XComArg:
    """Upload one video and wait for its audit; returns the audited video id as an ``XComArg``.

    Tasks, inside task group ``group_id``: ``init_upload`` (source check, ledger, InitCreateVideo),
    ``upload_chunk`` (mapped, one instance per chunk of consecutive blocks, each sending several blocks
    at once, labelled ``chunk 2/4 · blocks 9–16 · 24 MB``), ``commit`` (CompleteCreateVideo, reconciled
    when its answer is lost), ``wait_for_audit`` (deferrable sensor) and ``record_audit``, which runs
    only when the audit failed and marks the content rejected in the ledger.

    By default a 95 MB video goes up as 2 chunks of 16 blocks with 4 in flight each (8 at once in all);
    ``chunks`` and ``blocks_in_flight`` change that (``chunks`` equal to the block count gives one task
    per block). ``product`` keys the ledger, so the same content for the same product is never uploaded
    twice; ``source``, ``title``, ``cover_url``, ``product`` and the sizes may be templates. ``pool``
    puts the tasks that call Lazada in an Airflow pool, to share an API budget with other DAGs.
    ``source_conn_id`` names the connection that reads a remote source; the deployment's
    ``[media_upload] allowed_sources`` says which folders and URL prefixes a source may come from.
    """
    common: dict[str, Any] = {
        "lazada_conn_id": lazada_conn_id,
        "account": account,
        "ledger_conn_id": ledger_conn_id,
    }
    if pool:
        common["pool"] = pool
    with TaskGroup(group_id=group_id, tooltip="Upload a video to Lazada Media Center and wait for its audit"):
        init = LazadaInitVideoUploadOperator(
            task_id="init_upload",
            source=source,
            title=title,
            cover_url=cover_url,
            product=product,
            block_size=block_size,
            chunks=chunks,
            blocks_in_flight=blocks_in_flight,
            video_usage=video_usage,
            source_conn_id=source_conn_id,
            **common,
        )
        uploads = LazadaUploadChunkOperator.partial(
            task_id="upload_chunk",
            map_index_template=CHUNK_LABEL,
            max_active_tis_per_dagrun=max_parallel_chunks,
            retries=chunk_retries,
            retry_delay=timedelta(seconds=10),
            **common,
        ).expand(chunk=init.output)
        commit = LazadaCommitVideoOperator(
            task_id="commit", job=init.output["job"], parts=uploads.output, **common
        )
        audit = LazadaVideoAuditSensor(
            task_id="wait_for_audit",
            video_id=commit.output,
            lazada_conn_id=lazada_conn_id,
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=audit_timeout.total_seconds(),
        )
        record = LazadaRecordAuditOperator(
            task_id="record_audit", init_task_id=init.task_id, commit_task_id=commit.task_id, **common
        )
        audit >> record
    return audit.output
