"""
### Upload a catalog's product videos to every marketplace

Reads a manifest (CSV or JSON Lines, one row per product video) whose rows name each product on the
marketplaces it is listed on: `seller_sku` or `item_id` for Lazada, `shopee_item_id` for Shopee,
`huawei_vod` for a Huawei VOD asset. Every row, video and product is checked before the first upload;
what the upload ledger says is done is skipped; each video goes up once per marketplace (a few mapped
chunk tasks carry the blocks of all of them, several in flight each); each video is put on its product
the moment its own audit passes, and one `x-media-upload://catalog/product-videos` Asset event per run
names every attached video by marketplace.

Each step is one task for the whole batch; inside it every video, on every marketplace, is on its own:
one that fails is recorded with its reason and the others go on. The `report` task lists every row on
every marketplace, and `catalog_verdict` fails the run when a video failed.

Nothing runs until you say so: there is no schedule and no default manifest. Trigger it with a manifest
(the sample is `include/catalog/products.csv`). The connections `lazada_default`, `shopee_default` and
`huawei_vod_default` say where each marketplace is.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from media_upload.catalog.operators import catalog_videos_asset
from media_upload.task_groups.catalog import catalog_upload

#: Chunk tasks per run, each sending 8 / CHUNKS blocks at once; share a budget across DAGs with a pool.
CHUNKS = 4

with DAG(
    dag_id="catalog_videos",
    description="Upload a catalog's product videos to Lazada, Shopee and Huawei VOD, and attach them",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["lazada", "shopee", "huawei-vod", "media-upload", "catalog"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "manifest": Param(
            type="string",
            minLength=1,
            title="Manifest",
            description="Path or URL of a .csv or .jsonl manifest: video, title, cover_url, and per marketplace "
            "seller_sku or item_id (+ sku_id) for Lazada, shopee_item_id for Shopee, huawei_vod for VOD.",
        ),
        "block_size": Param(
            0,
            type="integer",
            minimum=0,
            maximum=10_000_000,
            title="Lazada block size (bytes)",
            description="Bytes per Lazada block; 0 means equal blocks under the 3 MB Lazada recommends. Shopee's "
            "parts are 4 MB and VOD's at most 20 MB whatever this says.",
        ),
        "after_line": Param(
            0,
            type="integer",
            minimum=0,
            title="Start after line",
            description="Process rows after this manifest line; the next-batch run sets it.",
        ),
        "fail_on_video_errors": Param(
            True,
            type="boolean",
            title="Fail the run when a video fails",
            description="The report lists failures either way; this decides the run's state.",
        ),
        "upload_again_needs_attention": Param(
            False,
            type="boolean",
            title="Upload again videos that need attention",
            description="A video whose earlier commit's answer was lost, and that the marketplace could not "
            "confirm, is skipped until you choose this (check the marketplace first: it may already be there).",
        ),
    },
) as dag:
    catalog_upload(
        manifest="{{ params.manifest }}",
        block_size="{{ params.block_size }}",
        after_line="{{ params.after_line }}",
        fail_on_video_errors="{{ params.fail_on_video_errors }}",
        upload_again_needs_attention="{{ params.upload_again_needs_attention }}",
        outlets=[catalog_videos_asset()],
        chunks=CHUNKS,
    )
