"""
### Upload a video to Huawei Cloud VOD

Creates a VOD media asset, uploads the file (one PUT under 20 MB, otherwise an OBS multipart upload with
one mapped task per chunk of parts, each sending several at once), confirms it, and waits in the
triggerer until the asset is ready. The upload ledger keeps what OBS acknowledged, so a retried or new run
resumes; if the upload cannot be resumed, `cancel_upload` confirms the asset `CANCELLED`.

The final task's XCom is `{"asset_id", "status", "play_url"}`. The `huawei_vod_default` connection (type
`huawei_vod`) says which endpoint, AK/SK and project.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param

from media_upload.protocols.huawei_vod import MAX_PART_BYTES
from media_upload.task_groups.huawei_vod import huawei_vod_upload

SAMPLE_VIDEO = Path(__file__).resolve().parents[1] / "include" / "media" / "product-demo.mp4"

with DAG(
    dag_id="huawei_vod_upload",
    description="Upload a video to Huawei Cloud VOD and wait until it is ready",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=8,
    tags=["huawei-vod", "media-upload"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "video_path": Param(
            str(SAMPLE_VIDEO) if SAMPLE_VIDEO.exists() else None,  # the sample, in this project's checkout
            type="string",
            minLength=1,
            title="Video",
            description="Local path or URL (file://, s3://, gs://, http(s)://) of an MP4 or MOV file.",
        ),
        "title": Param("Product video", type="string", minLength=1, maxLength=128, title="Title"),
        "description": Param("", type="string", maxLength=1024, title="Description"),
        "category_id": Param(
            -1,
            type="integer",
            title="Category id",
            description="VOD media category; -1 is the preset 'Other'.",
        ),
        "auto_publish": Param(
            True,
            type="boolean",
            title="Publish when ready",
            description="Publish the asset once it is processed.",
        ),
        "product": Param(
            "",
            type="string",
            title="Product",
            description="What the video is for (a SKU...): the same content is never uploaded twice for it.",
        ),
        "part_size": Param(
            0,
            type="integer",
            minimum=0,
            maximum=MAX_PART_BYTES,
            title="Part size (bytes)",
            description="Bytes per OBS part (at least 102,400) for files of 20 MB or more; 0 means equal "
            "parts of at most the 20 MB VOD recommends.",
        ),
    },
) as dag:
    huawei_vod_upload(
        source="{{ params.video_path }}",
        title="{{ params.title }}",
        description="{{ params.description }}",
        category_id="{{ params.category_id }}",
        auto_publish="{{ params.auto_publish }}",
        product="{{ params.product }}",
        part_size="{{ params.part_size }}",
        deferrable=True,
    )
