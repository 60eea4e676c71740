"""
### React to new product videos

An example downstream DAG: scheduled on the `x-lazada://<account>/product-videos` Asset that
`lazada_catalog_videos` updates once per catalog run. Each event's `extra` is `{"run_id", "videos": [...]}`,
one entry per attached video with `{seller_sku, item_id, video_id, content_sha256}`; events queue up
between runs, so there may be several. Replace the task body with your product-sync logic.

Per-video events are there too, under the Asset alias `lazada_product_video_events__<account>`, for a
DAG that would rather run per product.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from media_upload.catalog.operators import product_videos_asset

PRODUCT_VIDEOS = product_videos_asset()

with DAG(
    dag_id="lazada_product_sync",
    description="Consume the product-video events of catalog runs",
    schedule=[PRODUCT_VIDEOS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["lazada", "media-upload", "catalog"],
    doc_md=__doc__,
) as dag:

    @task
    def sync_product_videos(*, triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """Every product that got a video since the last sync, from every triggering event."""
        synced = [
            video
            for event in triggering_asset_events[PRODUCT_VIDEOS]
            for video in event.extra.get("videos", [])
        ]
        for video in synced:
            print(f"Item {video['item_id']} ({video['seller_sku']}) now shows video {video['video_id']}")
        return synced

    sync_product_videos()
