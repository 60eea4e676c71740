"""``huawei_vod_upload``: create → multipart (or one PUT) → confirm → deferred status wait, cleanup on failure."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import TaskGroup, XComArg

from media_upload.hooks.huawei_vod import HuaweiVodHook
from media_upload.operators.huawei_vod import (
    PART_LABEL,
    HuaweiVodCancelUploadOperator,
    HuaweiVodCompleteMultipartOperator,
    HuaweiVodConfirmUploadOperator,
    HuaweiVodCreateAssetOperator,
    HuaweiVodInitiateMultipartOperator,
    HuaweiVodUploadPartOperator,
)
from media_upload.protocols.huawei_vod import DEFAULT_PART_BYTES, SINGLE_PUT_MAX_BYTES
from media_upload.sensors.huawei_vod import HuaweiVodAssetSensor


def huawei_vod_upload(
    source: str,
    title: str,
    *,
    description: str | None = None,
    category_id: int | str | None = None,
    auto_publish: bool | str = True,
    template_group_name: str | None = None,
    tags: str | None = None,
    huawei_vod_conn_id: str = HuaweiVodHook.default_conn_name,
    part_size: int | str = DEFAULT_PART_BYTES,
    single_put_max_bytes: int = SINGLE_PUT_MAX_BYTES,
    max_parallel_parts: int = 4,
    part_retries: int = 3,
    deferrable: bool = True,
    poke_interval: float = 30,
    ready_timeout: timedelta = timedelta(hours=24),
    group_id: str = "huawei_vod",
) -> XComArg:
    """Upload one video as a VOD asset and wait until it is ready; returns ``{asset_id, status, play_url}``.

    Tasks, inside task group ``group_id``: ``create_asset`` (source check, CreateAsset, and the single PUT
    for files under ``single_put_max_bytes``), ``initiate_upload``, ``upload_part`` (mapped, one per part,
    labelled ``part 3/8``, at most ``max_parallel_parts`` at once), ``complete_upload`` (never retried
    blindly: a second complete of the same upload fails), ``confirm_upload``
    (ConfirmAssetUpload ``CREATED``), ``wait_until_ready`` (deferrable) and ``cancel_upload``, which runs
    only when an upload step failed and confirms the asset ``CANCELLED``. "Ready" follows ``auto_publish``
    and ``template_group_name``: ``PUBLISHED``, ``TRANSCODE_SUCCEED`` or ``CREATED``. ``auto_publish`` may be
    a template such as ``"{{ params.auto_publish }}"``.
    """
    with TaskGroup(
        group_id=group_id, tooltip="Upload a video to Huawei Cloud VOD and wait until it is ready"
    ):
        create = HuaweiVodCreateAssetOperator(
            task_id="create_asset",
            source=source,
            title=title,
            description=description,
            category_id=category_id,
            auto_publish=auto_publish,
            template_group_name=template_group_name,
            tags=tags,
            part_size=part_size,
            single_put_max_bytes=single_put_max_bytes,
            huawei_vod_conn_id=huawei_vod_conn_id,
            retries=0,
        )
        initiate = HuaweiVodInitiateMultipartOperator(
            task_id="initiate_upload", asset=create.output, huawei_vod_conn_id=huawei_vod_conn_id
        )
        parts = HuaweiVodUploadPartOperator.partial(
            task_id="upload_part",
            huawei_vod_conn_id=huawei_vod_conn_id,
            map_index_template=PART_LABEL,
            max_active_tis_per_dagrun=max_parallel_parts,
            retries=part_retries,
            retry_delay=timedelta(seconds=10),
        ).expand_kwargs(initiate.output)
        complete = HuaweiVodCompleteMultipartOperator(
            task_id="complete_upload",
            asset=create.output,
            plan=initiate.output,
            parts=parts.output,
            huawei_vod_conn_id=huawei_vod_conn_id,
            retries=0,
        )
        confirm = HuaweiVodConfirmUploadOperator(
            task_id="confirm_upload", asset=create.output, huawei_vod_conn_id=huawei_vod_conn_id
        )
        complete >> confirm
        cancel = HuaweiVodCancelUploadOperator(
            task_id="cancel_upload",
            create_task_id=create.task_id,
            initiate_task_id=initiate.task_id,
            huawei_vod_conn_id=huawei_vod_conn_id,
        )
        [create, initiate, parts, complete, confirm] >> cancel
        ready = HuaweiVodAssetSensor(
            task_id="wait_until_ready",
            asset=create.output,
            huawei_vod_conn_id=huawei_vod_conn_id,
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=ready_timeout.total_seconds(),
        )
        confirm >> ready
    return ready.output
