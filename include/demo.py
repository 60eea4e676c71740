"""`make demo`: the DAGs against the emulators, on a fresh SQLite Airflow home.

1. start the Lazada, Shopee and Huawei VOD emulators on free loopback ports; point ``AIRFLOW_CONN_*`` at
   them;
2. create the products to attach to (on Lazada the cover image first, as Lazada wants hosted images);
3. ``airflow db migrate``, then ``airflow dags test`` for ``lazada_product_video`` (the sample video in
   five blocks carried by two mapped chunk tasks), ``shopee_product_video`` (a 15-second video in two
   4 MB parts), ``huawei_vod_upload`` (a generated 24 MB video in eight OBS parts, sent eight at once by
   one chunk task) and, twice, ``catalog_videos`` (a catalog listed on Lazada and Shopee with VOD assets,
   a rejected video and two bad rows; the second run uploads nothing);
4. print what happened, read back from the emulators, the runs' task instances and their summaries.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".airflow-demo"

shutil.rmtree(HOME, ignore_errors=True)
HOME.mkdir()
os.environ.update(
    AIRFLOW_HOME=str(HOME),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{HOME}/airflow.db",
    AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
    AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER="sqlite://" + str(HOME / "ledger.db").replace("/", "%2F"),
    # What runs may read (docs/security.md): the demo's media folder and the sample video.
    AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES=f"{HOME}/media/, {ROOT}/include/media/",
)

import samples  # noqa: E402
from samples import LAZADA_BLOCK, LAZADA_CHUNKS, SAMPLE  # noqa: E402

from media_upload.hooks.lazada import LazadaHook  # noqa: E402
from media_upload.sandbox.huawei_vod import HuaweiVodSandbox, HuaweiVodSandboxConfig  # noqa: E402
from media_upload.sandbox.lazada import LazadaSandbox, LazadaSandboxConfig  # noqa: E402
from media_upload.sandbox.shopee import ShopeeSandbox, ShopeeSandboxConfig  # noqa: E402

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def dags_test(
    dag_id: str, conf: dict[str, Any], log_name: str = "", show_tasks: bool = True
) -> tuple[bool, float, str, str]:
    """Run ``airflow dags test``; returns (succeeded, seconds, output, run id)."""
    print(f"\n$ airflow dags test {dag_id} -c '{json.dumps(conf)}'")
    log_path = HOME / f"{log_name or dag_id}.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        result = subprocess.run(
            [AIRFLOW, "dags", "test", dag_id, "-c", json.dumps(conf)], stdout=log, stderr=log
        )
    elapsed = time.monotonic() - started
    output = log_path.read_text()
    run_id = next(
        (line.split("run_id=")[1].split(",")[0] for line in output.splitlines() if "run_id=" in line), ""
    )
    for task_id, map_index, label, state in task_states(run_id):
        print(f"  {task_id:<32} {label or ('' if map_index < 0 else map_index)!s:<10} {state}")
    if result.returncode != 0:
        print(f"\n{dag_id} did not succeed; the end of {log_path}:\n" + "\n".join(output.splitlines()[-40:]))
    return result.returncode == 0, elapsed, output, run_id


def task_states(run_id: str) -> list[tuple[str, int, str | None, str]]:
    """The run's task instances, tasks in the order they started, mapped instances by index."""
    with sqlite3.connect(HOME / "airflow.db") as db:
        rows = db.execute(
            "SELECT task_id, map_index, rendered_map_index, state, start_date FROM task_instance WHERE run_id = ?",
            (run_id,),
        ).fetchall()
    first_start: dict[str, int] = {}
    for row in sorted(rows, key=lambda row: row[4] or "9999"):
        first_start.setdefault(row[0], len(first_start))
    rows.sort(key=lambda row: (first_start[row[0]], row[1]))
    return [row[:4] for row in rows]


def lazada(sandbox: LazadaSandbox) -> bool:
    hook = LazadaHook()
    conf = samples.product_video(hook, samples.cover_url(hook))
    item_id, sku_id = conf["item_id"], conf["sku_id"]
    print(f"Lazada emulator at {sandbox.gateway_url}; created item {item_id} (SKU {sku_id})")
    ok, elapsed, output, _ = dags_test("lazada_product_video", conf)
    state = sandbox.backend.snapshot()
    video_id = state["products"].get(item_id, {}).get("attributes", {}).get("video")
    video = state["videos"].get(video_id or "", {})
    upload = next((u for u in state["uploads"].values() if u["video_id"] == video_id), {})
    intact = video.get("md5") == md5_of(SAMPLE)
    deferred = "[DAG TEST] running trigger in line" in output
    polls = state["request_counts"].get("/media/video/get", 0)
    print(f"""
  video id          {video_id or "-"}
  final state       {video.get("state", "-")}
  product attached  {"yes" if video_id else "NO"} (item {item_id}, SKU {sku_id})
  bytes             {video.get("size", 0):,} ({"MD5 matches the source" if intact else "MD5 DIFFERS"})
  blocks            {upload.get("block_count", 0)} of up to {LAZADA_BLOCK:,} bytes in {LAZADA_CHUNKS} chunk tasks
  audit wait        {"deferred to a trigger" if deferred else "NOT deferred"}, {polls} GetVideo calls
  time              {elapsed:.1f} s for airflow dags test""")
    return ok and video.get("state") == "AUDIT_SUCCESS" and intact


def shopee(sandbox: ShopeeSandbox) -> bool:
    conf = samples.shopee_video(sandbox.url, HOME / "media")
    video = Path(conf["video_path"])
    print(f"\nShopee emulator at {sandbox.gateway_url} (partner {sandbox.config.partner_id}, shop "
          f"{sandbox.config.shop_id}); created item {conf['item_id']}")  # fmt: skip
    ok, elapsed, output, _ = dags_test("shopee_product_video", conf)
    state = sandbox.backend.snapshot()
    attached = state["items"].get(conf["item_id"], {}).get("video_upload_id")
    upload = state["uploads"].get(attached or "", {})
    intact = upload.get("video_md5") == md5_of(video)
    deferred = "[DAG TEST] running trigger in line" in output
    print(f"""
  video upload id   {attached or "-"}
  final status      {upload.get("status", "-")}
  item attached     {"yes" if attached else "NO"} (item {conf["item_id"]})
  bytes             {upload.get("file_size", 0):,} ({"MD5 matches the source" if intact else "MD5 DIFFERS"})
  parts             {len(upload.get("parts") or {})} parts of up to 4,194,304 bytes
  transcode wait    {"deferred to a trigger" if deferred else "NOT deferred"}
  time              {elapsed:.1f} s for airflow dags test""")
    return ok and upload.get("status") == "SUCCEEDED" and intact


def huawei_vod(sandbox: HuaweiVodSandbox) -> bool:
    conf = samples.vod_video(HOME / "media")
    video = Path(conf["video_path"])
    print(f"\nHuawei VOD emulator at {sandbox.endpoint} (project {sandbox.config.project_id})")
    ok, elapsed, output, _ = dags_test("huawei_vod_upload", conf)
    state = sandbox.backend.snapshot()
    asset_id, asset = next(iter(state["assets"].items()), ("-", {}))
    stored = asset.get("object") or {}
    intact = stored.get("md5") == md5_of(video)
    parts = state["request_counts"].get("UploadPart", 0)
    deferred = "[DAG TEST] running trigger in line" in output
    print(f"""
  asset id          {asset_id}
  final status      {asset.get("status", "-")}
  play URL          {sandbox.endpoint}/_sandbox/huawei-vod/play/{asset_id}/index.mp4
  bytes             {stored.get("size", 0):,} ({"MD5 matches the source" if intact else "MD5 DIFFERS"})
  parts             {parts} OBS parts of {stored.get("size", 0) // max(parts, 1):,} bytes, sent {parts} at once
  ready wait        {"deferred to a trigger" if deferred else "NOT deferred"}
  time              {elapsed:.1f} s for airflow dags test""")
    return ok and asset.get("status") == "PUBLISHED" and intact


def catalog(shopee_sandbox: ShopeeSandbox) -> bool:
    """Six products on Lazada and Shopee, a twin, a rejected video, two VOD assets, two bad rows; twice."""
    hook = LazadaHook()
    conf = samples.catalog(hook, HOME / "media" / "catalog", samples.cover_url(hook), shopee_sandbox.url)
    ok = True
    for attempt in ("first", "second"):
        succeeded, elapsed, output, _ = dags_test(
            "catalog_videos", conf, f"catalog-{attempt}", show_tasks=False
        )
        table = output.split("Catalog run summary", 1)[-1].split("[airflow.task", 1)[0].strip()
        print(f"  {attempt} run ({elapsed:.1f} s):\n    " + table.replace("\n", "\n    "))
        ok = ok and succeeded and "uploaded" in table
    with sqlite3.connect(HOME / "airflow.db") as db:
        by_uri = dict(
            db.execute(
                "SELECT asset.uri, count(*) FROM asset_event JOIN asset ON asset.id = asset_event.asset_id "
                "GROUP BY asset.uri"
            ).fetchall()
        )
    runs = sum(count for uri, count in by_uri.items() if uri.endswith("/product-videos"))
    print(
        f"\n  {runs} Asset event(s) for product-sync DAGs (one per catalog run that attached videos, listing them)"
    )
    return ok and "uploaded 0" in table


def main() -> int:
    lazada_config = LazadaSandboxConfig(audit_seconds=4, data_dir=HOME / "lazada-sandbox")
    shopee_config = ShopeeSandboxConfig(transcode_seconds=4, data_dir=HOME / "shopee-sandbox")
    vod_config = HuaweiVodSandboxConfig(transcode_seconds=4, data_dir=HOME / "huawei-vod-sandbox")
    with (
        LazadaSandbox(lazada_config) as lazada_sandbox,
        ShopeeSandbox(shopee_config) as shopee_sandbox,
        HuaweiVodSandbox(vod_config) as vod_sandbox,
    ):
        os.environ["AIRFLOW_CONN_LAZADA_DEFAULT"] = json.dumps(lazada_sandbox.airflow_connection())
        os.environ["AIRFLOW_CONN_SHOPEE_DEFAULT"] = json.dumps(shopee_sandbox.airflow_connection())
        os.environ["AIRFLOW_CONN_HUAWEI_VOD_DEFAULT"] = json.dumps(vod_sandbox.airflow_connection())
        subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True)
        results = {
            "Lazada": lazada(lazada_sandbox),
            "Shopee": shopee(shopee_sandbox),
            "Huawei VOD": huawei_vod(vod_sandbox),
            "Catalog": catalog(shopee_sandbox),
        }
    print("\n" + "   ".join(f"{name}: {'succeeded' if ok else 'FAILED'}" for name, ok in results.items()))
    print(f"Logs of the runs: {HOME.relative_to(ROOT)}/*.log")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
