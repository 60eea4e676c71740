"""Push, not poll, on a real Airflow: the Lazada emulator (its own process) posts video states to the
api-server's receiver, the triggerer's wait wakes on them, and ``lazada_catalog_videos`` attaches every
video without one GetVideo; with the receiver out of reach, the same run finishes by polling GetVideo."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from media_upload.sandbox.sample_media import write_sample_mp4
from media_upload.triggers.base import HAND_BACK_SECONDS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "include"))

from samples import catalog_manifest  # noqa: E402
from stack import LocalStack  # noqa: E402

DAG = "lazada_catalog_videos"
VIDEOS = 6
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


@pytest.fixture(params=["receiver", "receiver unreachable"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalStack]:
    """Push on in the connection; the emulator posts to the api-server, or to a port nobody listens on.
    The fallback poll is long with the receiver (any poll would show) and short without it."""
    reachable = request.param == "receiver"
    arguments = ["--audit-seconds", "6"]
    if not reachable:
        arguments += ["--push-url", "http://127.0.0.1:9/media-uploads/push/lazada/lazada_default"]
    with LocalStack(
        tmp_path / "airflow",
        executor="LocalExecutor",
        database="airflow_push",
        sandboxes={"lazada": arguments},
        lazada_push=True,
        connection_extras={"lazada_default": {"push_poll_seconds": 120 if reachable else 3}},
    ) as running:
        yield running


def lazada(stack: LocalStack, path: str) -> Any:
    return requests.get(f"{stack.running_sandboxes['lazada'].url}/_sandbox/lazada/{path}", timeout=30).json()


@pytest.mark.timeout(900)
def test_a_catalog_waits_on_pushed_states(stack, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LAZADA_DEFAULT", json.dumps(stack.connections()["lazada_default"]))
    from media_upload.hooks.lazada import LazadaHook

    hook = LazadaHook()
    folder = stack.media
    rows = [
        (f"push-{n}", write_sample_mp4(folder / f"push-{n}.mp4", 1_200_000, seed=n), f"Push video {n}")
        for n in range(VIDEOS)
    ]
    manifest = catalog_manifest(hook, folder / "catalog.csv", rows, hook.upload_image(PNG, "cover.png"))
    stack.wait_for_dags(DAG)
    run_id = stack.trigger(DAG, {"manifest": str(manifest)})
    assert stack.wait(DAG, run_id, timeout=600)["state"] == "success"

    state = lazada(stack, "state")
    videos = {video_id for video_id, video in state["videos"].items() if video["state"] == "AUDIT_SUCCESS"}
    attached = {product["attributes"].get("video") for product in state["products"].values()}
    assert len(videos) == VIDEOS and attached == videos  # every product shows its audited video

    asked = Counter(
        entry["params"]["videoId"]
        for entry in lazada(stack, "requests?limit=5000")
        if entry["api"] == "/media/video/get"
    )
    pushes = lazada(stack, "pushes?limit=5000")
    if stack.connections()["lazada_default"]["extra"]["push_poll_seconds"] > 60:
        # The catalog's wait takes no first look: the pushed states alone move it, and attach each video.
        assert asked == {}
        delivered = Counter(p["video_id"] for p in pushes if p["outcome"] == "HTTP 200")
        assert set(delivered) == videos and min(delivered.values()) >= 4  # each state of each video
    else:
        assert pushes and all(p["outcome"] == "ConnectionError" for p in pushes)
        assert set(asked) == videos  # with no message in push_poll_seconds, the wait polls GetVideo


#: How soon after its own AUDIT_SUCCESS each video is on its product: Airflow's hand-over (about 5 s), plus
#: the wait's hand-back floor when the audit ends just after the catalog's wait deferred again.
SOON = 5.0 + HAND_BACK_SECONDS


@pytest.mark.timeout(900)
def test_each_video_goes_on_its_product_within_seconds_of_its_own_audit(tmp_path, monkeypatch):
    """20 videos whose audits end 15 to 45 s after their commits, one much later: every other video is on
    its product within :data:`SOON` of its own AUDIT_SUCCESS, while the slow one is still being audited, and
    the wait is never retried (Airflow 3.3's race with the executor's report, which the floor prevents)."""
    import random
    import threading
    import time

    with LocalStack(
        tmp_path / "airflow",
        executor="LocalExecutor",
        database="airflow_push_each",
        sandboxes={"lazada": ["--audit-seconds", "3600"]},  # audits end when this test says
        lazada_push=True,
    ) as stack:
        monkeypatch.setenv("AIRFLOW_CONN_LAZADA_DEFAULT", json.dumps(stack.connections()["lazada_default"]))
        from media_upload.hooks.lazada import LazadaHook

        hook = LazadaHook()
        url = stack.running_sandboxes["lazada"].url
        rows = [
            (f"each-{n}", write_sample_mp4(stack.media / f"each-{n}.mp4", 300_000, seed=50 + n), f"Each {n}")
            for n in range(20)
        ]
        manifest = catalog_manifest(hook, stack.media / "each.csv", rows, hook.upload_image(PNG, "cover.png"))
        stack.wait_for_dags("catalog_videos")
        run_id = stack.trigger("catalog_videos", {"manifest": str(manifest)})

        dice, passed, slow = random.Random(20), {}, []
        done = threading.Event()

        def auditor() -> None:  # ends each audit at its moment, as Media Center would
            due: dict[str, float] = {}
            while not done.wait(0.2):
                for video_id, video in lazada(stack, "state")["videos"].items():
                    if video_id not in due and video_id not in passed:
                        if not slow:
                            slow.append(video_id)  # this one is still in audit when the test ends it
                            continue
                        if video_id != slow[0]:
                            due[video_id] = video["committed_at"] + dice.uniform(15, 45)
                for video_id, moment in list(due.items()):
                    if time.time() >= moment:
                        requests.post(
                            f"{url}/_sandbox/lazada/videos/{video_id}/outcome",
                            json={"outcome": "AUDIT_SUCCESS", "finish_now": True},
                            timeout=30,
                        ).raise_for_status()
                        passed[video_id] = time.time()
                        del due[video_id]

        thread = threading.Thread(target=auditor, daemon=True)
        thread.start()
        deadline = time.monotonic() + 300
        while len(passed) < 19 and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(SOON + 3)  # the last of them gets its time
        attached_at = {}
        for entry in lazada(stack, "requests?limit=5000"):
            if entry["api"] == "/product/update" and entry["code"] == "0":
                for video_id in passed:
                    if video_id in entry["params"].get("payload", ""):
                        attached_at[video_id] = entry["at"]
        assert stack.run("catalog_videos", run_id)["state"] == "running"  # the slow video holds nothing else
        done.set()
        thread.join()
        requests.post(
            f"{url}/_sandbox/lazada/videos/{slow[0]}/outcome",
            json={"outcome": "AUDIT_SUCCESS", "finish_now": True},
            timeout=30,
        ).raise_for_status()
        assert stack.wait("catalog_videos", run_id, timeout=300)["state"] == "success"
        waits = [
            t for t in stack.task_instances("catalog_videos", run_id) if "wait_and_attach" in t["task_id"]
        ]
        assert waits and all(t["try_number"] <= 1 for t in waits), waits  # never retried for nothing

    assert len(passed) == 19 and set(attached_at) == set(passed)
    delays = {video_id: attached_at[video_id] - moment for video_id, moment in passed.items()}
    print("audit to product update (s):", sorted(round(d, 1) for d in delays.values()))
    assert max(delays.values()) <= SOON, sorted(delays.values())
