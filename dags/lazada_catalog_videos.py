"""
### Upload a catalog's product videos to Lazada

Reads a manifest (CSV or JSON Lines, one row per product video), skips what the upload ledger says is
already done, uploads every new or changed video in blocks, waits for each audit in the triggerer, puts
each video on its product, and emits one `lazada://<account>/product-videos` Asset event per attached
video for product-sync DAGs (see `lazada_product_sync`).

Airflow cannot map tasks inside a mapped task group, so the run is not one group per video: each step is
mapped over the videos of the run, the blocks of all videos are flattened into one mapped task, and small
`all_done` tasks regroup what succeeded between steps. A failing video fails only its own task instances;
the `report` task lists every row with its state, and `catalog_verdict` fails the run when one failed.

A batch holds at most `[core] max_map_length` videos and blocks; a larger catalog continues in a new run
(`next_batch`) from the first line the batch could not hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param

from media_upload.catalog.lazada import product_videos_asset
from media_upload.protocols.lazada import DEFAULT_BLOCK_BYTES, MAX_BLOCK_BYTES
from media_upload.task_groups.lazada_catalog import lazada_catalog_upload

SAMPLE_MANIFEST = Path(__file__).resolve().parents[1] / "include" / "catalog" / "products.csv"
#: API work in flight per run; share a budget across DAGs with a pool instead (``pool=`` below).
MAX_PARALLEL_VIDEOS = 8
MAX_PARALLEL_BLOCKS = 8

with DAG(
    dag_id="lazada_catalog_videos",
    description="Upload a catalog's product videos to Lazada and attach them, skipping what is done",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["lazada", "media-upload", "catalog"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "manifest": Param(
            str(SAMPLE_MANIFEST),
            type="string",
            minLength=1,
            title="Manifest",
            description="Path or URL of a .csv or .jsonl manifest: seller_sku or item_id (+ sku_id), video, "
            "title, cover_url; optional block_size and video_usage per row.",
        ),
        "block_size": Param(
            DEFAULT_BLOCK_BYTES,
            type="integer",
            minimum=1,
            maximum=MAX_BLOCK_BYTES,
            title="Block size (bytes)",
            description="Default bytes per block; a row's block_size column overrides it.",
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
    },
) as dag:
    lazada_catalog_upload(
        manifest="{{ params.manifest }}",
        block_size="{{ params.block_size }}",
        after_line="{{ params.after_line }}",
        fail_on_video_errors="{{ params.fail_on_video_errors }}",
        outlets=[product_videos_asset()],
        max_parallel_videos=MAX_PARALLEL_VIDEOS,
        max_parallel_blocks=MAX_PARALLEL_BLOCKS,
    )
