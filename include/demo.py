"""`make demo`: the lazada_product_video DAG against the Lazada emulator, on a fresh SQLite Airflow home.

1. start the Lazada emulator on a free loopback port and point ``AIRFLOW_CONN_LAZADA_DEFAULT`` at it;
2. create the product to attach to (cover image uploaded first, as Lazada wants hosted images);
3. ``airflow db migrate`` then ``airflow dags test lazada_product_video -c {...}`` in a fresh AIRFLOW_HOME;
4. print what happened, read back from the emulator and the run's task instances.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".airflow-demo"
SAMPLE = ROOT / "include" / "media" / "product-demo.mp4"
COVER = ROOT / "include" / "media" / "cover.png"
BLOCK_SIZE = 128 * 1024  # small on purpose: the 600 KB sample then shows five mapped block tasks

shutil.rmtree(HOME, ignore_errors=True)
HOME.mkdir()
os.environ.update(
    AIRFLOW_HOME=str(HOME),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{HOME}/airflow.db",
    AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
)

from media_upload.hooks.lazada import LazadaHook  # noqa: E402
from media_upload.sandbox.lazada import LazadaSandbox, LazadaSandboxConfig  # noqa: E402
from media_upload.sandbox.lazada.products import sample_product_payload  # noqa: E402

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def create_product(hook: LazadaHook) -> tuple[str, str, str]:
    """A listing to attach to: returns (item id, SKU id, Lazada-hosted cover URL)."""
    cover_url = hook.upload_image(COVER.read_bytes(), COVER.name)
    data = hook.create_product(sample_product_payload(cover_url, "demo-backpack-blue", name="Demo backpack"))
    return str(data["item_id"]), str(data["sku_list"][0]["sku_id"]), cover_url


def task_states(run_id: str) -> list[tuple[str, int, str | None, str]]:
    """The run's task instances, tasks in the order they started, mapped instances by index."""
    with sqlite3.connect(HOME / "airflow.db") as db:
        rows = db.execute(
            "SELECT task_id, map_index, rendered_map_index, state, start_date FROM task_instance WHERE run_id = ?",
            (run_id,),
        ).fetchall()
    first_start: dict[str, int] = {}
    for row in sorted(rows, key=lambda row: row[4] or ""):
        first_start.setdefault(row[0], len(first_start))
    rows.sort(key=lambda row: (first_start[row[0]], row[1]))
    return [row[:4] for row in rows]


def main() -> int:
    with LazadaSandbox(LazadaSandboxConfig(audit_seconds=4, data_dir=HOME / "lazada-sandbox")) as sandbox:
        os.environ["AIRFLOW_CONN_LAZADA_DEFAULT"] = json.dumps(sandbox.airflow_connection())
        print(f"Lazada emulator at {sandbox.gateway_url}")
        item_id, sku_id, cover_url = create_product(LazadaHook())
        print(f"Created item {item_id} (SKU {sku_id}) with cover {cover_url}")

        subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True)
        conf = {
            "video_path": str(SAMPLE),
            "title": "Demo backpack in 6 seconds",
            "cover_url": cover_url,
            "item_id": item_id,
            "sku_id": sku_id,
            "block_size": BLOCK_SIZE,
        }
        print(f"airflow dags test lazada_product_video -c '{json.dumps(conf)}'")
        started = time.monotonic()
        log_path = HOME / "dags-test.log"
        with log_path.open("w") as log:
            result = subprocess.run(
                [AIRFLOW, "dags", "test", "lazada_product_video", "-c", json.dumps(conf)],
                stdout=log,
                stderr=log,
            )
        elapsed = time.monotonic() - started
        output = log_path.read_text()

        state = sandbox.backend.snapshot()
        product = state["products"].get(item_id, {})
        video_id = product.get("attributes", {}).get("video")
        video = state["videos"].get(video_id or "", {})
        upload = next((u for u in state["uploads"].values() if u["video_id"] == video_id), {})
        run_id = next(
            (line.split("run_id=")[1].split(",")[0] for line in output.splitlines() if "run_id=" in line), ""
        )
        intact = video.get("md5") == hashlib.md5(SAMPLE.read_bytes()).hexdigest()

        print()
        for task_id, map_index, label, task_state in task_states(run_id):
            print(f"  {task_id:<30} {label or ('' if map_index < 0 else map_index)!s:<10} {task_state}")
        print()
        print(f"  video id          {video_id or '-'}")
        print(f"  final state       {video.get('state', '-')}")
        print(f"  product attached  {'yes' if video_id else 'NO'} (item {item_id}, SKU {sku_id})")
        print(
            f"  bytes             {video.get('size', 0):,} ({'MD5 matches the source' if intact else 'MD5 DIFFERS'})"
        )
        print(
            f"  blocks            {upload.get('block_count', 0)} of up to {BLOCK_SIZE:,} bytes, one mapped task each"
        )
        deferred = "[DAG TEST] running trigger in line" in output
        polls = state["request_counts"].get("/media/video/get", 0)
        print(
            f"  audit wait        {'deferred to a trigger' if deferred else 'NOT deferred'}, {polls} GetVideo calls"
        )
        print(
            f"  time              {elapsed:.1f} s for airflow dags test (log: {log_path.relative_to(ROOT)})"
        )
        ok = result.returncode == 0 and video.get("state") == "AUDIT_SUCCESS" and intact
        if not ok:
            print("\nThe run did not succeed; the end of its log:\n" + "\n".join(output.splitlines()[-40:]))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
