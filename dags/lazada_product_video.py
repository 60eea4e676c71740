"""
### Put a video on a Lazada product

Uploads one MP4/MOV to Lazada Media Center in blocks (one mapped task per chunk of blocks, each sending
several blocks at once), waits for the audit in the triggerer (no worker slot held), then puts the video id
on the item with UpdateProduct. The upload ledger keeps what Lazada acknowledged: a retried or new run
resumes instead of starting over, and the same video is never uploaded twice for the same item.

Trigger it with the form, or `airflow dags test lazada_product_video -c '{"video_path": ..., "title": ...,
"cover_url": ..., "item_id": ..., "sku_id": ...}'`. The `lazada_default` connection (type `lazada`) says
which gateway and seller.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param

from media_upload.operators.lazada import LazadaUpdateProductVideoOperator
from media_upload.protocols.lazada import MAX_BLOCK_BYTES
from media_upload.task_groups.lazada import lazada_video_upload

SAMPLE_VIDEO = Path(__file__).resolve().parents[1] / "include" / "media" / "product-demo.mp4"

with DAG(
    dag_id="lazada_product_video",
    description="Upload a product video to Lazada, wait for its audit, attach it to the product",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=8,
    tags=["lazada", "media-upload"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "video_path": Param(
            str(SAMPLE_VIDEO) if SAMPLE_VIDEO.exists() else None,  # the sample, in this project's checkout
            type="string",
            minLength=1,
            title="Video",
            description="Local path or URL (file://, s3://, gs://, http(s)://) of an MP4 or MOV file "
            "of 1 to 99,999,999 bytes.",
        ),
        "title": Param(
            "Product video", type="string", minLength=1, title="Title", description="Video title."
        ),
        "cover_url": Param(
            type="string",
            minLength=1,
            title="Cover image URL",
            description="URL of the cover image; Lazada expects a Lazada-hosted (slatic.net) image.",
        ),
        "item_id": Param(
            type=["string", "integer"], title="Item id", description="The Lazada item to update."
        ),
        "sku_id": Param(
            "",
            type=["string", "integer"],
            title="SKU id(s)",
            description="SKU ids of the item, comma-separated; empty means every SKU of the item.",
        ),
        "block_size": Param(
            0,
            type="integer",
            minimum=0,
            maximum=MAX_BLOCK_BYTES,
            title="Block size (bytes)",
            description="Bytes per uploaded block, up to 10,000,000; 0 means equal blocks under the 3 MB "
            "Lazada recommends.",
        ),
        "chunks": Param(
            0,
            type="integer",
            minimum=0,
            maximum=1000,
            title="Chunk tasks",
            description="Mapped upload tasks, each sending a run of blocks; 0 means one per 48 MB, at most 4.",
        ),
        "blocks_in_flight": Param(
            0,
            type="integer",
            minimum=0,
            maximum=64,
            title="Blocks in flight per chunk",
            description="Blocks each chunk task sends at once; 0 means the chunks share 8.",
        ),
    },
) as dag:
    video_id = lazada_video_upload(
        source="{{ params.video_path }}",
        title="{{ params.title }}",
        cover_url="{{ params.cover_url }}",
        product="item:{{ params.item_id }}",
        block_size="{{ params.block_size }}",
        chunks="{{ params.chunks }}",
        blocks_in_flight="{{ params.blocks_in_flight }}",
        deferrable=True,
    )
    LazadaUpdateProductVideoOperator(
        task_id="attach_video",
        item_id="{{ params.item_id }}",
        sku_ids="{{ params.sku_id }}",
        video_id=video_id,
    )
