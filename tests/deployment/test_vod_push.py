"""Huawei VOD's notifications on a real Airflow: the VOD emulator (its own process) posts signed MFS event
notifications to the api-server's receiver, and the triggerer's waits wake on them. A single upload looks
at its asset once (for the play URL), a catalog of VOD rows not at all, and the ledger records every
verdict. The deployment has no Lazada or Shopee connection: a VOD-only catalog needs none."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from media_upload.sandbox.sample_media import write_sample_mp4

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "include"))

from stack import POSTGRES, LocalStack  # noqa: E402

ASSETS = 5


def vod(stack: LocalStack, path: str) -> Any:
    url = stack.running_sandboxes["huawei-vod"].url
    return requests.get(f"{url}/_sandbox/huawei-vod/{path}", timeout=30).json()


def ledger_states(stack: LocalStack) -> dict[str, str]:
    import psycopg2

    with psycopg2.connect(f"postgresql://{POSTGRES}/{stack.database}") as conn, conn.cursor() as cursor:
        cursor.execute("SELECT video_id, state FROM media_upload_ledger WHERE platform = 'huawei_vod'")
        return {str(video_id): str(state) for video_id, state in cursor.fetchall()}


@pytest.mark.timeout(900)
def test_vod_waits_end_on_notifications(tmp_path):
    with LocalStack(
        tmp_path / "airflow",
        executor="LocalExecutor",
        database="airflow_vod_push",
        sandboxes={"huawei-vod": ["--transcode-seconds", "8"]},
        vod_push=True,
        # any look after the first would show: the fallback poll is far beyond the run
        connection_extras={"huawei_vod_default": {"push_poll_seconds": 600}},
    ) as stack:
        stack.wait_for_dags("huawei_vod_upload", "catalog_videos")
        video = write_sample_mp4(stack.media / "single.mp4", 1_000_000, seed=7)
        single = stack.trigger(
            "huawei_vod_upload", {"video_path": str(video), "title": "Single", "auto_publish": True}
        )
        rows = []
        for n in range(ASSETS):
            write_sample_mp4(stack.media / f"look-{n}.mp4", 600_000, seed=70 + n)
            rows.append(f"look-{n},look-{n}.mp4,Look {n}")
        manifest = stack.media / "vod.csv"
        manifest.write_text("huawei_vod,video,title\n" + "\n".join(rows) + "\n")
        assert stack.wait("huawei_vod_upload", single, timeout=600)["state"] == "success"
        catalog = stack.trigger("catalog_videos", {"manifest": str(manifest)})
        assert stack.wait("catalog_videos", catalog, timeout=600)["state"] == "success"

        assets = vod(stack, "state")["assets"]
        assert len(assets) == ASSETS + 1 and {a["status"] for a in assets.values()} == {"PUBLISHED"}
        assert ledger_states(stack) == dict.fromkeys(assets, "audited")  # every verdict recorded
        delivered = Counter(
            p["asset_id"] for p in vod(stack, "pushes?limit=1000") if p["outcome"] == "HTTP 200"
        )
        assert set(delivered) == set(assets)
        looks = Counter(
            asset_id
            for entry in vod(stack, "requests?limit=5000")
            if entry["operation"] == "ShowAssetMeta"
            for asset_id in assets
            if asset_id in entry["url"]
        )
        one = [asset_id for asset_id in assets if looks[asset_id]]
        # The single upload reads its published asset once, for the play URL; the catalog never looks.
        assert len(one) == 1 and looks[one[0]] == 1 and sum(looks.values()) == 1
