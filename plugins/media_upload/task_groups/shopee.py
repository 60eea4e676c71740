"""``shopee_video_upload``: init → mapped part uploads → complete → deferred wait for ``SUCCEEDED``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import TaskGroup, XComArg

from media_upload.hooks import SHOPEE_CONN_ID
from media_upload.ledger import DEFAULT_CONN_ID
from media_upload.operators.base import CHUNK_LABEL
from media_upload.operators.shopee import (
    ShopeeCleanUpOperator,
    ShopeeCompleteUploadOperator,
    ShopeeInitVideoUploadOperator,
    ShopeeUploadChunkOperator,
)
from media_upload.sensors.shopee import ShopeeVideoUploadSensor
from media_upload.transfer.plan import DEFAULT_IN_FLIGHT


def shopee_video_upload(
    source: str,
    *,
    item_id: str | int | None = None,
    source_conn_id: str | None = None,
    shopee_conn_id: str = SHOPEE_CONN_ID,
    account: str | None = None,
    ledger_conn_id: str = DEFAULT_CONN_ID,
    chunks: int | str | None = None,
    parts_in_flight: int | str | None = None,
    max_parallel_chunks: int = DEFAULT_IN_FLIGHT,
    chunk_retries: int = 3,
    pool: str | None = None,
    deferrable: bool = True,
    poke_interval: float = 30,
    transcode_timeout: timedelta = timedelta(hours=24),
    group_id: str = "shopee_video",
) -> XComArg:
    """Upload one video to a shop's media space and wait for Shopee's transcoding; returns the succeeded
    ``video_upload_id`` as an ``XComArg`` (what ``update_item`` takes).

    Tasks, inside task group ``group_id``: ``init_upload`` (source and item checked, ledger,
    init_video_upload), ``upload_chunk`` (mapped; 4 MB parts, several in flight; the chunk that delivers the
    last part completes the upload and its label says so), ``complete`` (settles a complete the chunks could
    not send or whose answer was lost; usually it only reads the ledger), ``wait_for_transcode`` (deferrable)
    and ``clean_up``, which runs only when something failed: it cancels an upload that cannot be resumed and
    records a video Shopee failed. ``item_id`` keys the ledger, so the same content is never uploaded twice
    for the same item. ``source_conn_id`` names the connection that reads a remote source; the deployment's
    ``[media_upload] allowed_sources`` says where a source may come from.
    """
    common: dict[str, Any] = {
        "shopee_conn_id": shopee_conn_id,
        "account": account,
        "ledger_conn_id": ledger_conn_id,
    }
    if pool:
        common["pool"] = pool
    with TaskGroup(
        group_id=group_id, tooltip="Upload a video to a Shopee shop's media space and wait for it"
    ):
        init = ShopeeInitVideoUploadOperator(
            task_id="init_upload",
            source=source,
            item_id=item_id,
            chunks=chunks,
            parts_in_flight=parts_in_flight,
            source_conn_id=source_conn_id,
            **common,
        )
        uploads = ShopeeUploadChunkOperator.partial(
            task_id="upload_chunk",
            map_index_template=CHUNK_LABEL,
            max_active_tis_per_dagrun=max_parallel_chunks,
            retries=chunk_retries,
            retry_delay=timedelta(seconds=10),
            **common,
        ).expand(chunk=init.output)
        complete = ShopeeCompleteUploadOperator(task_id="complete", job=init.output["job"], **common)
        uploads >> complete
        wait = ShopeeVideoUploadSensor(
            task_id="wait_for_transcode",
            video_upload_id=complete.output,
            shopee_conn_id=shopee_conn_id,
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=transcode_timeout.total_seconds(),
        )
        clean_up = ShopeeCleanUpOperator(
            task_id="clean_up", init_task_id=init.task_id, complete_task_id=complete.task_id, **common
        )
        [init, uploads, complete, wait] >> clean_up
    return wait.output
