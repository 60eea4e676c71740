"""``huawei_vod_upload``: create → mapped part uploads (or one PUT) → confirm → deferred status wait."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import TaskGroup, XComArg

from media_upload.hooks import HUAWEI_VOD_CONN_ID
from media_upload.ledger import DEFAULT_CONN_ID
from media_upload.operators.base import CHUNK_LABEL
from media_upload.operators.huawei_vod import (
    HuaweiVodCancelUploadOperator,
    HuaweiVodConfirmUploadOperator,
    HuaweiVodCreateAssetOperator,
    HuaweiVodUploadChunkOperator,
)
from media_upload.protocols.huawei_vod import SINGLE_PUT_MAX_BYTES
from media_upload.sensors.huawei_vod import HuaweiVodAssetSensor
from media_upload.transfer.plan import DEFAULT_IN_FLIGHT


def huawei_vod_upload(
    source: str,
    title: str,
    *,
    product: str | None = None,
    source_conn_id: str | None = None,
    description: str | None = None,
    category_id: int | str | None = None,
    auto_publish: bool | str = True,
    template_group_name: str | None = None,
    tags: str | None = None,
    huawei_vod_conn_id: str = HUAWEI_VOD_CONN_ID,
    account: str | None = None,
    ledger_conn_id: str = DEFAULT_CONN_ID,
    part_size: int | str | None = None,
    chunks: int | str | None = None,
    parts_in_flight: int | str | None = None,
    single_put_max_bytes: int = SINGLE_PUT_MAX_BYTES,
    max_parallel_chunks: int = DEFAULT_IN_FLIGHT,
    chunk_retries: int = 3,
    pool: str | None = None,
    deferrable: bool = True,
    poke_interval: float = 30,
    ready_timeout: timedelta = timedelta(hours=24),
    group_id: str = "huawei_vod",
) -> XComArg:
    """Upload one video as a VOD asset and wait until it is ready; returns ``{asset_id, status, play_url}``.

    Tasks, inside task group ``group_id``: ``create_asset`` (source check, ledger, CreateAsset, the OBS
    initiate, and the single PUT for files under ``single_put_max_bytes``), ``upload_chunk`` (mapped, one
    per chunk of consecutive parts, several in flight, labelled ``chunk 2/4 · parts 3–4 · 24 MB``; the
    chunk with the last part completes and confirms), ``confirm_upload`` (OBS complete and
    ConfirmAssetUpload ``CREATED`` unless done, settled with VOD when an answer was lost),
    ``wait_until_ready`` (deferrable) and ``cancel_upload``, which runs only when an upload step failed
    and cancels the asset unless the next run can resume it. "Ready" follows ``auto_publish`` and
    ``template_group_name``: ``PUBLISHED``, ``TRANSCODE_SUCCEED`` or ``CREATED``. ``auto_publish`` may be
    a template such as ``"{{ params.auto_publish }}"``. ``pool`` puts the tasks that call VOD and OBS
    in an Airflow pool. ``source_conn_id`` names the connection that reads a remote source; the
    deployment's ``[media_upload] allowed_sources`` says where a source may come from.
    """
    common: dict[str, Any] = {
        "huawei_vod_conn_id": huawei_vod_conn_id,
        "account": account,
        "ledger_conn_id": ledger_conn_id,
    }
    if pool:
        common["pool"] = pool
    with TaskGroup(
        group_id=group_id, tooltip="Upload a video to Huawei Cloud VOD and wait until it is ready"
    ):
        create = HuaweiVodCreateAssetOperator(
            task_id="create_asset",
            source=source,
            source_conn_id=source_conn_id,
            title=title,
            product=product,
            description=description,
            category_id=category_id,
            auto_publish=auto_publish,
            template_group_name=template_group_name,
            tags=tags,
            part_size=part_size,
            chunks=chunks,
            parts_in_flight=parts_in_flight,
            single_put_max_bytes=single_put_max_bytes,
            **common,
        )
        uploads = HuaweiVodUploadChunkOperator.partial(
            task_id="upload_chunk",
            map_index_template=CHUNK_LABEL,
            max_active_tis_per_dagrun=max_parallel_chunks,
            retries=chunk_retries,
            retry_delay=timedelta(seconds=10),
            **common,
        ).expand(chunk=create.output)
        confirm = HuaweiVodConfirmUploadOperator(task_id="confirm_upload", job=create.output["job"], **common)
        uploads >> confirm
        cancel = HuaweiVodCancelUploadOperator(
            task_id="cancel_upload", create_task_id=create.task_id, **common
        )
        [create, uploads, confirm] >> cancel
        ready = HuaweiVodAssetSensor(
            task_id="wait_until_ready",
            asset=confirm.output,
            huawei_vod_conn_id=huawei_vod_conn_id,
            ledger_conn_id=ledger_conn_id,
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=ready_timeout.total_seconds(),
        )
    return ready.output
