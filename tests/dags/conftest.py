"""End-to-end runs with ``dag.test()``: a migrated SQLite metadata DB and a product to attach to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 3.2, the oldest supported version (make test-oldest-airflow)
    from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

from media_upload.hooks.lazada import LazadaHook
from media_upload.sandbox.lazada.products import sample_product_payload

DAGS = Path(__file__).resolve().parents[2] / "dags"
SAMPLE = DAGS.parent / "include" / "media" / "product-demo.mp4"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Migrate the test AIRFLOW_HOME's SQLite database once per session."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture(scope="session")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def create_product(seller_sku: str = "e2e-1") -> dict[str, Any]:
    """An item in the emulator reachable through ``lazada_default``: item id, SKU id, hosted cover URL."""
    hook = LazadaHook()
    cover = hook.upload_image(PNG, "cover.png")
    data = hook.create_product(sample_product_payload(cover, seller_sku, name="E2E"))
    return {"item_id": str(data["item_id"]), "sku_id": str(data["sku_list"][0]["sku_id"]), "cover_url": cover}


def run_conf(product: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A full ``lazada_product_video`` conf: a test run leaves its conf in the DAG object's params, so every
    param is given each time (0 means "the default" for the sizes)."""
    return json.loads(
        json.dumps(
            {
                "video_path": str(SAMPLE),
                "title": "E2E video",
                "cover_url": product["cover_url"],
                "item_id": product["item_id"],
                "sku_id": product["sku_id"],
                "block_size": 200_000,
                "chunks": 0,
                "blocks_in_flight": 0,
                **changes,
            }
        )
    )
