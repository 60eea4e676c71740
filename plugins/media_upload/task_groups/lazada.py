"""``lazada_video_upload``: init → mapped block uploads → commit → deferred audit wait, in one line."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import TaskGroup, XComArg

from media_upload.hooks.lazada import LazadaHook
from media_upload.operators.lazada import (
    BLOCK_LABEL,
    LazadaCommitVideoOperator,
    LazadaInitVideoUploadOperator,
    LazadaUploadVideoBlockOperator,
)
from media_upload.protocols.lazada import DEFAULT_BLOCK_BYTES
from media_upload.sensors.lazada import LazadaVideoAuditSensor


def lazada_video_upload(
    source: str,
    title: str,
    cover_url: str,
    *,
    lazada_conn_id: str = LazadaHook.default_conn_name,
    block_size: int | str = DEFAULT_BLOCK_BYTES,
    video_usage: str = "pro_main_video",
    max_parallel_blocks: int = 4,
    block_retries: int = 3,
    deferrable: bool = True,
    poke_interval: float = 30,
    audit_timeout: timedelta = timedelta(hours=24),
    group_id: str = "lazada_video",
) -> XComArg:
    """Upload one video and wait for its audit; returns the audited video id as an ``XComArg``.

    Tasks, inside task group ``group_id``: ``init_upload`` (source check + InitCreateVideo),
    ``upload_block`` (mapped, one instance per block, at most ``max_parallel_blocks`` at once, labelled
    ``block 3/34``), ``commit`` (CompleteCreateVideo, never retried blindly) and ``wait_for_audit``
    (deferrable sensor). ``source``, ``title``, ``cover_url`` and ``block_size`` may be templates.
    """
    with TaskGroup(group_id=group_id, tooltip="Upload a video to Lazada Media Center and wait for its audit"):
        init = LazadaInitVideoUploadOperator(
            task_id="init_upload",
            source=source,
            block_size=block_size,
            title=title,
            cover_url=cover_url,
            lazada_conn_id=lazada_conn_id,
        )
        blocks = LazadaUploadVideoBlockOperator.partial(
            task_id="upload_block",
            lazada_conn_id=lazada_conn_id,
            map_index_template=BLOCK_LABEL,
            max_active_tis_per_dagrun=max_parallel_blocks,
            retries=block_retries,
            retry_delay=timedelta(seconds=10),
        ).expand_kwargs(init.output)
        commit = LazadaCommitVideoOperator(
            task_id="commit",
            plan=init.output,
            parts=blocks.output,
            title=title,
            cover_url=cover_url,
            video_usage=video_usage,
            lazada_conn_id=lazada_conn_id,
            retries=0,
        )
        audit = LazadaVideoAuditSensor(
            task_id="wait_for_audit",
            video_id=commit.output,
            lazada_conn_id=lazada_conn_id,
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=audit_timeout.total_seconds(),
        )
    return audit.output
