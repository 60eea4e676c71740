"""
### Put a video on a Shopee item

Uploads one MP4 to the shop's media space in 4 MB parts (one mapped task per chunk of parts, each sending
several at once), waits in the triggerer (no worker slot held) until Shopee has transcoded it
(`SUCCEEDED`), then puts the `video_upload_id` on the item with `update_item`. The video is checked
against Shopee's rules before anything is sent: MP4, at most 30 MB, 10 to 60 seconds, at most 1280 px.
The upload ledger keeps what Shopee acknowledged: a retried or new run resumes instead of starting over,
and the same video is never uploaded twice for the same item.

Trigger it with the form, or `airflow dags test shopee_product_video -c '{"video_path": ..., "item_id":
...}'`. The `shopee_default` connection (type `shopee`) says which host, partner and shop.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from media_upload.operators.shopee import ShopeeUpdateItemVideoOperator
from media_upload.task_groups.shopee import shopee_video_upload

with DAG(
    dag_id="shopee_product_video",
    description="Upload a product video to Shopee, wait for its transcoding, put it on the item",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=8,
    tags=["shopee", "media-upload"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "video_path": Param(
            type="string",
            minLength=1,
            title="Video",
            description="Local path or URL of an MP4 of at most 30,000,000 bytes, 10 to 60 s, at most 1280 px "
            "wide and high.",
        ),
        "item_id": Param(
            type=["string", "integer"], title="Item id", description="The Shopee item to update."
        ),
        "chunks": Param(
            0,
            type="integer",
            minimum=0,
            maximum=8,
            title="Chunk tasks",
            description="Mapped upload tasks, each sending a run of parts; 0 means one.",
        ),
        "parts_in_flight": Param(
            0,
            type="integer",
            minimum=0,
            maximum=16,
            title="Parts in flight per chunk",
            description="Parts each chunk task sends at once; 0 means 8.",
        ),
    },
) as dag:
    video_upload_id = shopee_video_upload(
        source="{{ params.video_path }}",
        item_id="{{ params.item_id }}",
        chunks="{{ params.chunks }}",
        parts_in_flight="{{ params.parts_in_flight }}",
    )
    ShopeeUpdateItemVideoOperator(
        task_id="attach_video", item_id="{{ params.item_id }}", video_upload_id=video_upload_id
    )
