"""OpenLineage: every upload names the source it read and the platform video and product it made.

The names themselves (sources as the OpenLineage naming spec says, platform outputs in the provider's own
namespaces); the operators without the OpenLineage provider; and real DAG runs against the emulators with
the provider's listener on, in a process of their own (the listener is registered when Airflow loads its
plugins), every event written by OpenLineage's file transport and read back here.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from media_upload.lineage import (
    FILE,
    PRODUCT,
    VIDEO,
    Lineage,
    Named,
    Place,
    asset_uri,
    operator_lineage,
    source,
)
from media_upload.sandbox.shopee.products import sample_item
from tests.dags.conftest import SAMPLE, airflow_db, create_product, run_conf  # noqa: F401  (airflow_db: fixture)
from tests.integration.test_remote_sources import cdn  # noqa: F401  (fixture)

DAGS = Path(__file__).resolve().parents[2] / "dags"
#: What a credential or a signature looks like wherever it could leak into an event.
SIGNATURES = ("sign=", "signature=", "x-amz-signature", "access_token=", "auth_key=", "token=")

# ----------------------------------------------------------------------------------------- the names


@pytest.mark.parametrize(
    ("location", "namespace", "name", "uri"),
    [
        ("s3://seller-videos/2026/red dress.mp4", "s3://seller-videos", "2026/red dress.mp4", None),
        ("gs://seller-videos/a/b.mp4", "gs://seller-videos", "a/b.mp4", "gs://seller-videos/a/b.mp4"),
        ("gcs://seller-videos/a/b.mp4", "gs://seller-videos", "a/b.mp4", "gs://seller-videos/a/b.mp4"),
        (  # no signature, token, user part or fragment ever reaches a name
            "https://uploader:hunter2@CDN.example.com/videos/a.mp4?X-Amz-Signature=abc&token=t0k#t=10",
            "https://cdn.example.com:443",
            "/videos/a.mp4",
            "https://cdn.example.com:443/videos/a.mp4",
        ),
        ("https://cdn.example.com:8443/v/a.mp4?sig=zz", "https://cdn.example.com:8443", "/v/a.mp4", None),
        ("http://media.internal/a.mp4", "http://media.internal:80", "/a.mp4", None),
    ],
)
def test_remote_sources_are_named_as_the_openlineage_spec_says(location, namespace, name, uri):
    named = source(location)
    assert (named.namespace, named.name, named.kind) == (namespace, name, FILE)
    assert asset_uri(location) == (uri or f"{namespace}/{name.lstrip('/')}")
    for secret in ("hunter2", "uploader", "abc", "t0k", "zz", "t=10"):
        assert secret not in f"{named.namespace} {named.name} {asset_uri(location)}"


def test_a_local_source_is_its_real_path_in_the_file_namespace(tmp_path):
    (tmp_path / "videos").mkdir()
    video = tmp_path / "videos" / "a b.mp4"
    video.write_bytes(b"x")
    (tmp_path / "latest.mp4").symlink_to(video)
    real = os.path.realpath(video)
    for location in (
        str(video),
        str(tmp_path / "videos" / ".." / "videos" / "a b.mp4"),
        f"file://{tmp_path}/videos/a%20b.mp4",
    ):
        assert source(location) == Named("file", real, FILE)
    assert source(str(tmp_path / "latest.mp4")).name == real  # as the source policy reads it: links resolved
    assert asset_uri(str(video)) == f"file://{real}"


def hook(**credentials: Any) -> SimpleNamespace:
    """A stand-in for a platform hook: lineage reads only ``hook.credentials``."""
    return SimpleNamespace(credentials=SimpleNamespace(**credentials))


def test_platform_outputs_are_named_by_api_host_and_account_never_by_secret():
    secrets = {"app_secret": "s3cr3t", "access_token": "tok3n", "partner_key": "k3y", "sk": "sk3y"}
    lazada = Place.of("lazada", hook(gateway="https://api.lazada.sg/rest", **secrets))
    assert lazada.video(30503869182) == Named("lazada://api.lazada.sg", "video/30503869182", VIDEO, "lazada")
    assert lazada.product("2045913599") == Named(
        "lazada://api.lazada.sg", "product/2045913599", PRODUCT, "lazada"
    )
    emulator = Place.of("lazada", hook(gateway="http://127.0.0.1:8081/rest"))
    assert emulator.namespace == "lazada://127.0.0.1:8081"  # a port only when not the scheme's default

    shopee = Place.of("shopee", hook(base_url="https://partner.shopeemobile.com", shop_id=600000, **secrets))
    assert (shopee.namespace, shopee.video("sg_42ae_000001").name, shopee.product(813976179).name) == (
        "shopee://partner.shopeemobile.com",
        "shop/600000/video/sg_42ae_000001",
        "shop/600000/item/813976179",
    )

    vod = Place.of(
        "huawei_vod", hook(endpoint="https://vod.cn-north-4.myhuaweicloud.com", project_id="0a1b", **secrets)
    )
    assert (vod.namespace, vod.video("66030f3c").name) == (
        "huaweicloud-vod://vod.cn-north-4.myhuaweicloud.com",
        "project/0a1b/asset/66030f3c",
    )
    assert vod.product("lookbook") is None  # a VOD asset goes on no product
    named = [lazada.video(1), lazada.product(2), shopee.video(3), shopee.product(4), vod.video(5)]
    assert not any(secret in f"{n.namespace}/{n.name}" for n in named for secret in secrets.values())


def test_operator_lineage_is_openlineage_datasets_each_once_with_its_type():
    from airflow.providers.openlineage.extractors import OperatorLineage

    place = Place.of("lazada", hook(gateway="https://api.lazada.sg/rest"))
    lineage = Lineage()
    lineage.add([source("s3://b/k.mp4"), None, source("s3://b/k.mp4")], [place.video(7), place.video(7)])
    lineage.add(outputs=[place.product(8), place.product(None)])
    found = operator_lineage(lineage)
    assert isinstance(found, OperatorLineage)
    assert [(d.namespace, d.name) for d in found.inputs] == [("s3://b", "k.mp4")]
    assert [(d.namespace, d.name) for d in found.outputs] == [
        ("lazada://api.lazada.sg", "video/7"),
        ("lazada://api.lazada.sg", "product/8"),
    ]
    types = [(d.facets["datasetType"].datasetType, d.facets["datasetType"].subType) for d in found.outputs]
    assert types == [(VIDEO, "lazada"), (PRODUCT, "lazada")]
    assert found.inputs[0].facets["datasetType"].datasetType == FILE
    empty = operator_lineage(None)  # what a task that recorded nothing hands the listener: no warning there
    assert isinstance(empty, OperatorLineage) and not empty.inputs and not empty.outputs


def test_hook_level_lineage_names_each_source_once_as_the_operators_do(monkeypatch, tmp_path):
    """Every source opened is an input Asset of the hook lineage collector, and OpenLineage's own translation
    of that Asset gives the name the operators report."""
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset
    from airflow.sdk import Asset
    from airflow.sdk.lineage import HookLineageCollector

    from media_upload import lineage
    from media_upload.transfer.source import Source

    collector = HookLineageCollector()
    monkeypatch.setattr(lineage, "_hook_lineage_collector", lambda: collector)
    video = tmp_path / "hooked.mp4"
    video.write_bytes(b"x")
    Source.of(str(video))
    Source.of(f"file://{video}")  # another object for the same file: still one input
    (found,) = collector.collected_assets.inputs
    assert found.asset.uri == f"file://{os.path.realpath(video)}" and found.count == 2
    for location in (str(video), "s3://seller-videos/2026/red.mp4"):
        translated = translate_airflow_asset(Asset(uri=asset_uri(location)), None)
        assert (translated.namespace, translated.name) == (source(location).namespace, source(location).name)


def test_an_https_source_read_with_a_connection_is_named_by_host_port_and_path(
    cdn,  # noqa: F811
    lazada_sandbox,
    lazada_connection,
    ledger_connection,
    task_context,
):
    """The init task reads a CDN video with the connection the DAG names; its lineage names the URL's host,
    port and path, never the connection's credentials nor the URL's query."""
    from media_upload.operators.lazada import LazadaInitVideoUploadOperator
    from tests.integration.conftest import COVER_URL
    from tests.integration.test_remote_sources import CDN_LOGIN, CDN_PASSWORD

    lazada_connection(lazada_sandbox)
    ledger_connection("sqlite")
    init = LazadaInitVideoUploadOperator(
        task_id="init",
        source=f"{cdn.url}/videos/shoe.mp4?v=2",
        source_conn_id="media_cdn",
        title="t",
        cover_url=COVER_URL,
    )
    assert init.execute(task_context())
    found = init.get_openlineage_facets_on_complete(None)
    port = cdn.url.rsplit(":", 1)[1]
    assert [(d.namespace, d.name) for d in found.inputs] == [
        (f"https://127.0.0.1:{port}", "/videos/shoe.mp4")
    ]
    assert not found.outputs
    shown = json.dumps([[d.namespace, d.name] for d in found.inputs])
    assert CDN_LOGIN not in shown and CDN_PASSWORD not in shown and "v=2" not in shown


# -------------------------------------------------------------------------- without the provider

LAZY = """
import sys
import media_upload.lineage, media_upload.operators.lazada, media_upload.operators.shopee
import media_upload.operators.huawei_vod, media_upload.catalog.operators, media_upload.transfer.source
loaded = [name for name in sys.modules if name.startswith(("openlineage", "airflow.providers.openlineage."))]
print(sorted(set(loaded) - {"airflow.providers.openlineage.get_provider_info"}))  # Airflow's provider list
"""


def test_the_provider_imports_no_openlineage_module():
    """OpenLineage is imported only when its listener asks, so the provider runs where it is not installed."""
    result = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_without_openlineage_the_operators_upload_and_report_nothing(
    monkeypatch, lazada_sandbox, lazada_connection, ledger_connection, task_context
):
    from media_upload.operators.lazada import (
        LazadaCommitVideoOperator,
        LazadaInitVideoUploadOperator,
        LazadaUploadChunkOperator,
    )
    from tests.integration.conftest import COVER_URL

    for name in [name for name in sys.modules if name.startswith("airflow.providers.openlineage")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage", None)
    lazada_connection(lazada_sandbox)
    ledger_connection("sqlite")
    context = task_context()

    init = LazadaInitVideoUploadOperator(task_id="init", source=str(SAMPLE), title="t", cover_url=COVER_URL)
    chunks = init.execute(context)
    uploads = [LazadaUploadChunkOperator(task_id="upload_chunk", chunk=chunk) for chunk in chunks]
    parts = [upload.execute(context) for upload in uploads]
    commit = LazadaCommitVideoOperator(task_id="commit", job=context["ti"].xcoms[(None, "job")], parts=parts)
    video_id = commit.execute(context)

    assert video_id in lazada_sandbox.backend.snapshot()["videos"]
    for operator in (init, *uploads, commit):
        assert operator._lineage is None  # nothing recorded: no connection read for lineage either
        assert operator.get_openlineage_facets_on_start() is None
        assert operator.get_openlineage_facets_on_complete(None) is None


# ---------------------------------------------------------------- DAG runs with the listener on

RUNNER = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
states = []
for run in json.loads(sys.argv[1]):
    dag = DagBag(dag_folder=run["file"]).dags[run["dag_id"]]
    state = dag.test(run_conf=run["conf"]).state
    states.append(getattr(state, "value", str(state)))
print("DAG RUN STATES " + json.dumps(states))
"""


class Events:
    """The OpenLineage events of the runs, by job (``{dag_id}.{task_id}``)."""

    def __init__(self, path: Path) -> None:
        self.text = path.read_text()
        self.events = [json.loads(line) for line in self.text.splitlines() if line.strip()]
        self.by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.events:
            self.by_job[event["job"]["name"]].append(event)

    def complete(self, job: str) -> list[dict[str, Any]]:
        found = [event for event in self.by_job[job] if event.get("eventType") == "COMPLETE"]
        assert found, f"no COMPLETE event for {job}; jobs: {sorted(self.by_job)}"
        return found

    def started_with(self, job: str) -> set[tuple[str, str]]:
        """The inputs of the job's START events: what its arguments name before it runs."""
        starts = [event for event in self.by_job[job] if event.get("eventType") == "START"]
        assert starts, f"no START event for {job}"
        return {(d["namespace"], d["name"]) for event in starts for d in event.get("inputs", [])}

    def inputs(self, job: str) -> set[tuple[str, str]]:
        return {(d["namespace"], d["name"]) for event in self.complete(job) for d in event.get("inputs", [])}

    def outputs(self, job: str) -> set[tuple[str, str]]:
        return {(d["namespace"], d["name"]) for event in self.complete(job) for d in event.get("outputs", [])}

    def all_outputs(self) -> set[tuple[str, str]]:
        return {(d["namespace"], d["name"]) for event in self.events for d in event.get("outputs", [])}

    def assert_no_secret(self, *secrets: str) -> None:
        lowered = self.text.lower()
        for secret in secrets:
            assert secret not in self.text, "a credential is in an OpenLineage event"
        for mark in SIGNATURES:
            assert mark not in lowered, f"{mark!r} is in an OpenLineage event"


def run_with_openlineage(tmp_path: Path, *runs: dict[str, Any]) -> Events:
    """``dag.test()`` of each run in a fresh Airflow process whose OpenLineage transport writes a file."""
    events = tmp_path / "openlineage-events.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "media-upload-tests",
    }
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(list(runs))],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    states = json.loads(result.stdout.rsplit("DAG RUN STATES ", 1)[1].splitlines()[0])
    assert states == ["success"] * len(runs), result.stdout[-5000:]
    return Events(events)


def host_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


def credentials(lazada, shopee, vod) -> list[str]:
    return [
        lazada.config.app_secret,
        lazada.config.access_token,
        lazada.config.refresh_token,
        shopee.config.partner_key,
        shopee.config.access_token,
        shopee.config.refresh_token,
        vod.config.ak,
        vod.config.sk,
    ]


def test_single_video_dags_name_the_source_the_video_and_the_product(
    marketplaces,
    airflow_db,  # noqa: F811
    tmp_path,
    sample_video,
):
    lazada, shopee, vod = marketplaces
    product = create_product("lineage-1")
    item = requests.post(
        f"{shopee.url}/_sandbox/shopee/items", json=sample_item("lineage"), timeout=10
    ).json()
    short = sample_video(1_500_000, seed=3, duration_seconds=12, width=720, height=1280)
    events = run_with_openlineage(
        tmp_path,
        {
            "file": str(DAGS / "lazada_product_video.py"),
            "dag_id": "lazada_product_video",
            "conf": run_conf(product),
        },
        {
            "file": str(DAGS / "shopee_product_video.py"),
            "dag_id": "shopee_product_video",
            "conf": {
                "video_path": str(short),
                "item_id": str(item["item_id"]),
                "chunks": 0,
                "parts_in_flight": 0,
            },
        },
        {
            "file": str(DAGS / "huawei_vod_upload.py"),
            "dag_id": "huawei_vod_upload",
            "conf": {
                "video_path": str(SAMPLE),
                "title": "Lineage asset",
                "description": "",
                "category_id": -1,
                "auto_publish": True,
                "product": "",
                "part_size": 8 * 1024 * 1024,
            },
        },
    )

    sample = ("file", os.path.realpath(SAMPLE))
    # Lazada: init read the source; the chunk committed the video; commit names it; attach put it on the item.
    snapshot = lazada.backend.snapshot()
    (video_id,) = snapshot["videos"]
    lazada_ns = f"lazada://{host_of(lazada.url)}"
    video, item_named = (lazada_ns, f"video/{video_id}"), (lazada_ns, f"product/{product['item_id']}")
    job = "lazada_product_video.lazada_video"
    assert events.inputs(f"{job}.init_upload") == {sample}
    assert events.outputs(f"{job}.init_upload") == set()
    assert (events.inputs(f"{job}.upload_chunk"), events.outputs(f"{job}.upload_chunk")) == (
        {sample},
        {video},
    )
    assert (events.inputs(f"{job}.commit"), events.outputs(f"{job}.commit")) == ({sample}, {video})
    attach = "lazada_product_video.attach_video"
    assert (events.inputs(attach), events.outputs(attach)) == ({video}, {item_named})
    assert snapshot["products"][product["item_id"]]["attributes"]["video"] == video_id
    for task in ("init_upload", "upload_chunk", "commit"):  # known before they run, from their arguments
        assert events.started_with(f"{job}.{task}") == {sample}

    # Shopee: the shop scopes the video and the item.
    (upload_id,) = shopee.backend.snapshot()["uploads"]
    shop = f"shopee://{host_of(shopee.url)}"
    shopee_video = (shop, f"shop/{shopee.config.shop_id}/video/{upload_id}")
    complete = "shopee_product_video.shopee_video.complete"
    assert (events.inputs(complete), events.outputs(complete)) == (
        {("file", os.path.realpath(short))},
        {shopee_video},
    )
    assert events.outputs("shopee_product_video.attach_video") == {
        (shop, f"shop/{shopee.config.shop_id}/item/{item['item_id']}")
    }
    assert events.inputs("shopee_product_video.attach_video") == {shopee_video}
    for task in ("init_upload", "upload_chunk", "complete"):
        assert events.started_with(f"shopee_product_video.shopee_video.{task}") == {
            ("file", os.path.realpath(short))
        }

    # Huawei VOD: the asset, in its project.
    (asset_id,) = vod.backend.snapshot()["assets"]
    confirm = "huawei_vod_upload.huawei_vod.confirm_upload"
    assert events.inputs(confirm) == {sample}
    assert events.outputs(confirm) == {
        (f"huaweicloud-vod://{host_of(vod.url)}", f"project/{vod.config.project_id}/asset/{asset_id}")
    }
    assert events.inputs("huawei_vod_upload.huawei_vod.create_asset") == {sample}
    events.assert_no_secret(*credentials(lazada, shopee, vod))


def test_a_catalog_run_names_every_source_video_and_product(
    marketplaces,
    airflow_db,  # noqa: F811
    tmp_path,
    sample_video,
):
    from media_upload.hooks.lazada import LazadaHook
    from media_upload.sandbox.lazada.products import sample_product_payload
    from tests.dags.conftest import PNG

    lazada, shopee, vod = marketplaces
    cover = LazadaHook().upload_image(PNG, "cover.png")
    folder = tmp_path / "catalog"
    folder.mkdir()
    rows, items = [], {}
    for n in range(3):
        sku = f"lineage-{n}"
        sample_video(700_000 + 10_000 * n, seed=n, name=f"catalog/{sku}.mp4", duration_seconds=12)
        LazadaHook().create_product(sample_product_payload(cover, sku, name=sku))
        items[sku] = requests.post(
            f"{shopee.url}/_sandbox/shopee/items", json=sample_item(sku), timeout=10
        ).json()
        rows.append({"seller_sku": sku, "shopee_item_id": items[sku]["item_id"], "video": f"{sku}.mp4"})
    rows.append({"huawei_vod": "lookbook", "video": "lineage-1.mp4"})
    manifest = folder / "catalog.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["seller_sku", "shopee_item_id", "huawei_vod", "video", "title", "cover_url"]
        )
        writer.writeheader()
        writer.writerows({**row, "title": f"Video {row['video']}", "cover_url": cover} for row in rows)
    conf = {
        "manifest": str(manifest),
        "block_size": 300_000,
        "after_line": 0,
        "fail_on_video_errors": True,
        "upload_again_needs_attention": False,
    }
    events = run_with_openlineage(
        tmp_path, {"file": str(DAGS / "catalog_videos.py"), "dag_id": "catalog_videos", "conf": conf}
    )

    # What the platforms hold: every video, on every product.
    lazada_state, shopee_state = lazada.backend.snapshot(), shopee.backend.snapshot()
    lazada_ns, shop = f"lazada://{host_of(lazada.url)}", f"shopee://{host_of(shopee.url)}"
    scope = f"shop/{shopee.config.shop_id}"
    lazada_products = {
        item_id: product["attributes"]["video"]
        for item_id, product in lazada_state["products"].items()
        if product["skus"][0]["SellerSku"].startswith("lineage-")
    }
    assert len(lazada_products) == 3 and all(lazada_products.values())
    shopee_items = {str(items[f"lineage-{n}"]["item_id"]) for n in range(3)}
    assert all(shopee_state["items"][item]["video_upload_id"] for item in shopee_items)
    (asset_id,) = vod.backend.snapshot()["assets"]
    videos = {
        *((lazada_ns, f"video/{video}") for video in lazada_products.values()),
        *((shop, f"{scope}/video/{shopee_state['items'][item]['video_upload_id']}") for item in shopee_items),
        (f"huaweicloud-vod://{host_of(vod.url)}", f"project/{vod.config.project_id}/asset/{asset_id}"),
    }
    products = {
        *((lazada_ns, f"product/{item_id}") for item_id in lazada_products),
        *((shop, f"{scope}/item/{item}") for item in shopee_items),
    }
    assert len(videos) == 7 and len(products) == 6

    # The plan read the manifest and every video; the chunks and settle made the videos from them; the
    # attach task put each on its product: every one is named.
    sources = {("file", os.path.realpath(folder / f"lineage-{n}.mp4")) for n in range(3)}
    assert events.inputs("catalog_videos.catalog.plan") == {("file", os.path.realpath(manifest)), *sources}
    assert events.inputs("catalog_videos.catalog.settle") == sources
    assert events.outputs("catalog_videos.catalog.settle") == videos
    assert events.outputs("catalog_videos.catalog.upload_chunk") == videos  # each committed by its last chunk
    assert events.inputs("catalog_videos.catalog.upload_chunk") == sources
    assert events.inputs("catalog_videos.catalog.wait_and_attach") == videos
    assert events.outputs("catalog_videos.catalog.wait_and_attach") == products
    assert videos | products <= events.all_outputs()
    events.assert_no_secret(*credentials(lazada, shopee, vod))
