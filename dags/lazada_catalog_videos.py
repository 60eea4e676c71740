"""
### Upload a catalog's product videos to Lazada

Reads a manifest (CSV or JSON Lines, one row per product video), checks every row, video and product
before the first upload, skips what the upload ledger says is done, uploads every new or changed video
in blocks (a few mapped chunk tasks carry the blocks of all videos, several in flight each), waits for
the audits in the triggerer, puts each video on its product, and emits one
`x-lazada://<account>/product-videos` Asset event per run listing every attached video (see
`lazada_product_sync`).

Each step is one task for the whole batch; inside it every video is on its own, so one that fails is
recorded with its reason and the others go on. The `report` task lists every row with its state, and
`catalog_verdict` fails the run when a video failed.

Nothing runs until you say so: there is no schedule and no default manifest. Trigger it with a manifest
(the sample is `include/catalog/products.csv`), or give the DAG a schedule and a default manifest of
your own. A batch holds at most `[core] max_map_length` videos; a larger catalog continues in a new run
(`next_batch`) from the first line the batch could not hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from media_upload.catalog.operators import product_video_events, product_videos_asset
from media_upload.protocols.lazada import MAX_BLOCK_BYTES
from media_upload.task_groups.lazada_catalog import lazada_catalog_upload

#: Chunk tasks per run, each sending 8 / CHUNKS blocks at once; share a budget across DAGs with a pool.
CHUNKS = 4

with DAG(
    dag_id="lazada_catalog_videos",
    description="Upload a catalog's product videos to Lazada and attach them, skipping what is done",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["lazada", "media-upload", "catalog"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "manifest": Param(
            type="string",
            minLength=1,
            title="Manifest",
            description="Path or URL of a .csv or .jsonl manifest: seller_sku or item_id (+ sku_id), video, "
            "title, cover_url; optional block_size and video_usage per row. On several workers, a path every "
            "worker sees (a shared volume) or object storage (s3://, gs://).",
        ),
        "block_size": Param(
            0,
            type="integer",
            minimum=0,
            maximum=MAX_BLOCK_BYTES,
            title="Block size (bytes)",
            description="Default bytes per block; 0 means equal blocks under the 3 MB Lazada recommends. "
            "A row's block_size column overrides it.",
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
            description="A video whose earlier commit's answer was lost, and that Lazada could not confirm, "
            "is skipped until you choose this (check Seller Center first: it may already be there).",
        ),
    },
) as dag:
    lazada_catalog_upload(
        manifest="{{ params.manifest }}",
        block_size="{{ params.block_size }}",
        after_line="{{ params.after_line }}",
        fail_on_video_errors="{{ params.fail_on_video_errors }}",
        upload_again_needs_attention="{{ params.upload_again_needs_attention }}",
        outlets=[product_videos_asset(), product_video_events()],
        chunks=CHUNKS,
    )
