"""
### React to new product videos

An example downstream DAG: scheduled on the `lazada://<account>/product-videos` Asset that
`lazada_catalog_videos` updates, it runs after each catalog run that attached videos and reads every
triggering event (events queue up between runs, so there may be several). Each event's `extra` is
`{seller_sku, item_id, video_id, content_sha256}`: replace the task body with your product-sync logic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from media_upload.catalog.lazada import product_videos_asset

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
        synced = [dict(event.extra) for event in triggering_asset_events[PRODUCT_VIDEOS]]
        for video in synced:
            print(f"Item {video['item_id']} ({video['seller_sku']}) now shows video {video['video_id']}")
        return synced

    sync_product_videos()
