"""The "Media uploads" view in a real Airflow, as a person sees it through headless Chromium.

``include/stack.py`` starts Airflow on this machine (api-server, scheduler, dag-processor, triggerer,
LocalExecutor, PostgreSQL for metadata and ledger) with the Lazada emulator as its own process;
``lazada_catalog_videos`` uploads four generated videos to products made in the emulator. Chromium signs in
through Airflow's login page, opens the run's tab while the videos wait for their audit, then the view from
the nav once one was rejected and while ``huawei_vod_upload`` sends a larger video over a slow link (the row
moves on its own), filters, follows a link into a run, and saves ``docs/img/ui-run-tab.png`` and
``docs/img/ui-media-uploads.png``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from media_upload.sandbox.sample_media import write_sample_mp4

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "include"))

from samples import catalog_manifest  # noqa: E402
from stack import PASSWORD, USER, LocalStack  # noqa: E402

DAG, VOD_DAG = "lazada_catalog_videos", "huawei_vod_upload"
IMAGES = ROOT / "docs" / "img"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
VIDEOS = {"tee-001": 3_000_000, "tee-002": 5_500_000, "tee-003": 2_000_000, "tee-004": 7_000_000}
REJECTED_SKU = "tee-003"
LOOKBOOK = 60_000_000  # to Huawei VOD in 40 parts, 8 at a time at 0.25 MB/s each: about 30 s
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.fail(
            "Debian's chromium is not installed: run `make test-browser` (it installs it) or apt-get install chromium"
        )
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Airflow with both emulators: Lazada's audits take an hour unless the test ends them; VOD's link is slow."""
    home = tmp_path_factory.mktemp("stack")
    with LocalStack(
        home,
        executor="LocalExecutor",
        database="airflow_ui_browser",
        allowed_sources=(f"{tmp_path_factory.getbasetemp()}/",),  # the tests' videos and manifests
        sandboxes={
            "lazada": ["--audit-seconds", "3600"],
            "huawei-vod": ["--bandwidth-per-connection", "0.25", "--transcode-seconds", "2"],
        },
    ) as running:
        yield running


def catalog(stack: LocalStack, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Products in the emulator and a manifest of generated videos for them (as bench/speed.py does)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_LAZADA_DEFAULT", json.dumps(stack.running_sandboxes["lazada"].connection)
    )
    from media_upload.hooks.lazada import LazadaHook

    hook = LazadaHook()
    rows = [
        (sku, write_sample_mp4(folder / f"{sku}.mp4", size, seed=n), f"T-shirt {n} on a model")
        for n, (sku, size) in enumerate(VIDEOS.items(), start=1)
    ]
    return catalog_manifest(hook, folder / "catalog.csv", rows, hook.upload_image(PNG, "cover.png"))


def until(what: str, check: Callable[[], Any], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(1)


def sign_in(page: Page, stack: LocalStack) -> None:
    page.goto(stack.api_url + "/")
    page.get_by_label("Username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.api_url + "/")


@pytest.mark.timeout(1200)
def test_the_view_and_the_run_tab_in_a_real_airflow(stack, chromium, tmp_path, monkeypatch):
    manifest = catalog(stack, tmp_path, monkeypatch)
    stack.wait_for_dags(DAG)
    view = f"{stack.api_url}/media-uploads"
    assert (
        requests.get(f"{view}/api/uploads", timeout=30).status_code == 401
    )  # the api-server protects nothing
    assert requests.get(f"{view}/", timeout=30).status_code == 401  # of a plugin's: the view does

    def uploads(**params: Any) -> dict[str, Any]:
        response = requests.get(
            f"{view}/api/uploads",
            params=params,
            headers={"Authorization": f"Bearer {stack.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    run_id = stack.trigger(DAG, {"manifest": str(manifest)})
    run_rows = {"dag_id": DAG, "run_id": run_id}
    body = until(
        "every video committed and waiting for its audit",
        lambda: (
            (b := uploads(**run_rows))["total"] == 4
            and all(r["state"] == "auditing" for r in b["rows"])
            and b
        ),
    )
    rows = {row["label"]: row for row in body["rows"]}
    assert set(rows) == set(VIDEOS)
    for sku, row in rows.items():
        assert row["bytes"] == VIDEOS[sku] and row["progress"] == 100.0
        assert row["blocks"]["done"] == row["blocks"]["total"] >= 1 and row["video_id"]
        assert (
            row["waiting"] is not None and row["links"]["run"] == f"/dags/{DAG}/runs/{quote(run_id, safe='')}"
        )

    def chunk_tasks() -> list[dict[str, Any]]:
        return [t for t in stack.task_instances(DAG, run_id) if t["task_id"] == "catalog.upload_chunk"]

    # A chunk task commits the video it completes before it ends: wait until Airflow says every chunk is done.
    chunks = len(
        until(
            "chunk tasks done", lambda: all(t["state"] == "success" for t in chunk_tasks()) and chunk_tasks()
        )
    )
    (summary,) = uploads(**run_rows)["runs"]
    assert summary["chunks"] == {"done": chunks, "total": chunks}  # as Airflow's REST API says
    assert (summary["uploads"], summary["auditing"], summary["bytes_done"]) == (4, 4, sum(VIDEOS.values()))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 820})
        sign_in(page, stack)

        # The run's tab, while the audits go on: four rows waiting, refreshing by themselves.
        run_page = f"{stack.api_url}/dags/{DAG}/runs/{quote(run_id, safe='')}"
        page.goto(f"{run_page}/plugin/media-uploads-run")
        frame = page.frame_locator("iframe[title='Media uploads']")
        expect(frame.locator("tbody tr[data-state='auditing']")).to_have_count(4)
        expect(frame.locator("#run-filter")).to_be_hidden()  # the tab is one run's
        expect(frame.locator(".run")).to_contain_text("0 of 4 done")
        expect(frame.locator(".run")).to_contain_text("4 auditing")
        expect(frame.locator("#status")).to_contain_text("refreshing every 3 s")
        first = frame.locator("tbody tr").first
        expect(first).to_contain_text("waiting")
        before = first.locator("td").first.inner_text()
        expect(first.locator("td").first).not_to_have_text(
            before, timeout=15_000
        )  # the wait ticks on its own
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / "ui-run-tab.png"))

        # Lazada ends the audits: one video refused, three accepted; the run attaches them and fails.
        lazada = stack.running_sandboxes["lazada"].url
        for sku, row in rows.items():
            outcome = "AUDIT_FAILED" if sku == REJECTED_SKU else "AUDIT_SUCCESS"
            requests.post(
                f"{lazada}/_sandbox/lazada/videos/{row['video_id']}/outcome",
                json={"outcome": outcome, "finish_now": True}, timeout=30,
            ).raise_for_status()  # fmt: skip
        assert stack.wait(DAG, run_id, timeout=600)["state"] == "failed"  # catalog_verdict: a video failed

        # The view from the nav: every run's rows, the rejected one with its reason and a link to what failed.
        page.goto(f"{stack.api_url}/plugin/media-uploads")
        frame = page.frame_locator("iframe[title='Media uploads']")
        expect(frame.locator("tbody tr[data-state='attached']")).to_have_count(3)
        rejected = frame.locator("tbody tr[data-state='rejected']")
        expect(rejected).to_have_count(1)
        expect(rejected).to_contain_text(REJECTED_SKU)
        expect(rejected).to_contain_text("AUDIT_FAILED")
        expect(rejected.get_by_role("link", name="failed: catalog_verdict")).to_be_visible()
        expect(
            frame.locator("tbody tr[data-state='attached']").get_by_role(
                "link", name="failed: catalog_verdict"
            )
        ).to_have_count(0)
        expect(frame.locator(".run")).to_contain_text("3 of 4 done")
        expect(frame.locator(".run")).to_contain_text("1 failed")
        expect(frame.locator(".run")).to_contain_text(f"chunks {chunks}/{chunks}")
        expect(frame.locator("#status")).not_to_contain_text("refreshing every 3 s")  # nothing left to watch

        # A larger video to Huawei VOD over a slow link: its row moves while the page stays open.
        lookbook = write_sample_mp4(tmp_path / "lookbook.mp4", LOOKBOOK, seed=9)
        vod_run = stack.trigger(
            VOD_DAG,
            {
                "video_path": str(lookbook),
                "title": "Lookbook 2026",
                "product": "lookbook-2026",
                "part_size": 1_500_000,
            },
        )
        uploading = frame.locator("tbody tr[data-state='uploading']")
        expect(uploading).to_have_count(1, timeout=120_000)
        expect(uploading).to_contain_text("Huawei VOD")
        expect(uploading).to_contain_text("MB/s", timeout=60_000)  # blocks acknowledged in the last 10 s
        blocks = uploading.locator("td").nth(4)
        seen = blocks.inner_text()
        expect(blocks).not_to_have_text(seen, timeout=30_000)  # the page polls; nothing reloads it
        expect(frame.locator("#status")).to_contain_text("refreshing every 3 s")
        page.screenshot(path=str(IMAGES / "ui-media-uploads.png"))
        assert stack.wait(VOD_DAG, vod_run, timeout=600)["state"] == "success"
        (asset,) = uploads(dag_id=VOD_DAG, run_id=vod_run)["rows"]
        # The wait records VOD's verdict: the row ends audited, as a catalog's VOD rows do.
        assert asset["state"] == "audited" and asset["video_id"]
        assert asset["blocks"] == {"done": 40, "total": 40} and asset["chunks"] == {"done": 2, "total": 2}
        expect(frame.locator("tbody tr[data-state='audited']")).to_contain_text("chunks 2/2")

        # Filters run on the server: a state, a platform, a SKU.
        frame.locator("#state").select_option("rejected")
        expect(frame.locator("tbody tr")).to_have_count(1)
        expect(frame.locator("#range")).to_have_text("1–1 of 1")
        frame.locator("#state").select_option("")
        expect(frame.locator("tbody tr")).to_have_count(5)
        frame.locator("#platform").select_option("huawei_vod")
        expect(frame.locator("tbody tr")).to_have_count(1)
        expect(frame.locator("tbody tr")).to_contain_text("Lookbook 2026")
        frame.locator("#platform").select_option("")
        expect(frame.locator("tbody tr")).to_have_count(5)
        frame.locator("#sku").fill("TEE-00")
        expect(frame.locator("tbody tr")).to_have_count(4)
        frame.locator("#sku").fill("tee-003")
        expect(frame.locator("tbody tr")).to_have_count(1)
        expect(frame.locator("tbody tr")).to_contain_text("AUDIT_FAILED")

        # A row's run link opens the run in Airflow's own page, not inside the frame.
        frame.locator("tbody tr").first.get_by_role("link", name="run", exact=True).click()
        page.wait_for_url(run_page)
        expect(page.get_by_text("Task Instances").first).to_be_visible()
        assert page.locator("iframe[title='Media uploads']").count() == 0
        browser.close()
