"""The OpenLineage graph of a real catalog run, drawn from its events: ``docs/img/lineage-graph.png``.

A ``catalog_videos`` run of three manifest rows (a Lazada product, a product on Lazada and Shopee, a
Huawei VOD asset with no product) goes through ``dag.test()`` against the three emulators on loopback,
in a fresh Airflow process with the OpenLineage provider's listener on and its file transport, exactly
as ``tests/integration/test_lineage.py`` runs it (its helpers do the run and read the events). The
COMPLETE events' inputs and outputs are drawn as they are: the datasets (``namespace · name``, long ids
shortened with an ellipsis) and the tasks that read or made them, one arrow per input → task and
task → output, each once. Nothing is drawn unless the run succeeded, its events name datasets, every video
and product the emulators hold is among them and no credential or signature is in any event.

    .venv/bin/python bench/lineage_graph.py [--out docs/img/lineage-graph.png] [--events FILE]

``--events`` draws an events file kept from an earlier run (``--keep``) instead of running the catalog.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The test suite's throwaway Airflow home and settings, set before anything imports Airflow.
import tests.conftest as suite  # noqa: E402
from tests.integration.test_lineage import (  # noqa: E402
    SIGNATURES,
    Events,
    credentials,
    host_of,
    run_with_openlineage,
)

DAG = "catalog_videos"
OUT = ROOT / "docs" / "img" / "lineage-graph.png"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
#: The manifest: (file, Lazada seller SKU, on Shopee too, Huawei VOD name).
ROWS = (
    ("red-dress.mp4", "red-dress", False, ""),
    ("blue-sneaker.mp4", "blue-sneaker", True, ""),
    ("spring-lookbook.mp4", "", False, "spring-lookbook"),
)
CAPTION = "Manifest rows: a Lazada product · a product on Lazada and Shopee · a VOD asset (no product)."
KINDS = {"FILE": 0, "VIDEO": 2, "PRODUCT": 4}
PLATFORM_ORDER = {"": 0, "lazada": 1, "shopee": 2, "huawei_vod": 3}
#: Fill and edge colour of a dataset box, by platform ("" for files), and of a task box.
COLOURS = {
    "": ("#eef1f5", "#7b8794"),
    "lazada": ("#e7eefc", "#3d5fc4"),
    "shopee": ("#fdeee7", "#e0572a"),
    "huawei_vod": ("#fbe9ea", "#c7000b"),
}
PLATFORM_NAMES = {"": "file", "lazada": "Lazada", "shopee": "Shopee", "huawei_vod": "Huawei VOD"}
TASK_FILL, TASK_EDGE = "#243b53", "#102a43"


class Failed(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"lineage-graph: {message}")


# ------------------------------------------------------------------------------------------- the run


def run_catalog(work: Path) -> tuple[Events, set[tuple[str, str]]]:
    """Run the catalog against the emulators; the events and the datasets the emulators say must be named."""
    import requests

    from media_upload.hooks.lazada import LazadaHook
    from media_upload.sandbox.huawei_vod import HuaweiVodSandbox, HuaweiVodSandboxConfig
    from media_upload.sandbox.lazada import LazadaSandbox, LazadaSandboxConfig
    from media_upload.sandbox.lazada.products import sample_product_payload
    from media_upload.sandbox.sample_media import write_sample_mp4
    from media_upload.sandbox.shopee import ShopeeSandbox, ShopeeSandboxConfig
    from media_upload.sandbox.shopee.products import sample_item

    migrated = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True
    )
    if migrated.returncode != 0:
        raise Failed(f"airflow db migrate failed:\n{migrated.stderr[-2000:]}")
    os.environ["AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER"] = "sqlite://" + str(work / "ledger.db").replace("/", "%2F")

    with ExitStack() as stack:
        started = []
        for sandbox, config, name, conn_id, option in (
            (LazadaSandbox, LazadaSandboxConfig, "lazada", "lazada_default", "audit_seconds"),
            (ShopeeSandbox, ShopeeSandboxConfig, "shopee", "shopee_default", "transcode_seconds"),
            (
                HuaweiVodSandbox,
                HuaweiVodSandboxConfig,
                "huawei-vod",
                "huawei_vod_default",
                "transcode_seconds",
            ),
        ):
            make = stack.enter_context(suite._sandboxes(work, sandbox, config, name, **{option: 0.3}))
            started.append(make())
            os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(started[-1].airflow_connection())
        lazada, shopee, vod = started

        hook = LazadaHook()
        cover = hook.upload_image(PNG, "cover.png")
        folder = work / "catalog"
        folder.mkdir()
        rows = []
        for n, (video, sku, on_shopee, vod_name) in enumerate(ROWS):
            write_sample_mp4(folder / video, 700_000 + 10_000 * n, seed=n, duration_seconds=12)
            row = {"video": video, "title": f"Video {video}", "cover_url": cover}
            if sku:
                hook.create_product(sample_product_payload(cover, sku, name=sku))
                row["seller_sku"] = sku
            if on_shopee:
                item = requests.post(f"{shopee.url}/_sandbox/shopee/items", json=sample_item(sku), timeout=10)
                item.raise_for_status()
                row["shopee_item_id"] = item.json()["item_id"]
            if vod_name:
                row["huawei_vod"] = vod_name
            rows.append(row)
        manifest = folder / "catalog.csv"
        with manifest.open("w", newline="") as handle:
            fields = ["seller_sku", "shopee_item_id", "huawei_vod", "video", "title", "cover_url"]
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        conf = {
            "manifest": str(manifest),
            "block_size": 300_000,
            "after_line": 0,
            "fail_on_video_errors": True,
            "upload_again_needs_attention": False,
        }
        print(f"running {DAG} on {len(rows)} rows against the emulators (dag.test, OpenLineage on)...")
        try:
            events = run_with_openlineage(
                work, {"file": str(ROOT / "dags" / f"{DAG}.py"), "dag_id": DAG, "conf": conf}
            )
        except AssertionError as exc:
            raise Failed(f"the catalog run failed: {str(exc)[-4000:]}") from None
        except FileNotFoundError as exc:
            raise Failed(f"the run wrote no OpenLineage events ({exc.filename})") from None
        try:
            events.assert_no_secret(*credentials(lazada, shopee, vod))
        except AssertionError as exc:
            raise Failed(f"refusing to draw: {exc}") from None

        # What the emulators hold, as lineage names it: every one must be in the events.
        lazada_state, shopee_state = lazada.backend.snapshot(), shopee.backend.snapshot()
        lazada_ns, shop = f"lazada://{host_of(lazada.url)}", f"shopee://{host_of(shopee.url)}"
        scope = f"shop/{shopee.config.shop_id}"
        vod_ns = f"huaweicloud-vod://{host_of(vod.url)}"
        expected = {(lazada_ns, f"video/{video}") for video in lazada_state["videos"]}
        expected |= {
            (lazada_ns, f"product/{item_id}")
            for item_id, product in lazada_state["products"].items()
            if product["attributes"].get("video")
        }
        for item_id, item in shopee_state["items"].items():
            if item.get("video_upload_id"):
                expected |= {
                    (shop, f"{scope}/video/{item['video_upload_id']}"),
                    (shop, f"{scope}/item/{item_id}"),
                }
        expected |= {
            (vod_ns, f"project/{vod.config.project_id}/asset/{asset}")
            for asset in vod.backend.snapshot()["assets"]
        }
        made = Counter(name.rsplit("/", 2)[-2] for _, name in expected)
        if (made["video"] + made["asset"], made["product"] + made["item"]) != (4, 3):
            raise Failed(f"the emulators hold {dict(made)}, not the 4 videos and 3 products of the manifest")
        expected |= {("file", os.path.realpath(manifest))}
        expected |= {("file", os.path.realpath(folder / video)) for video, *_ in ROWS}
        return events, expected


def read_events(path: Path) -> Events:
    if not path.is_file():
        raise Failed(f"no events file at {path}")
    return Events(path)


# ----------------------------------------------------------------------------------------- the graph


@dataclass
class Graph:
    """Datasets and tasks of the COMPLETE events, and each input → task and task → output edge once."""

    datasets: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # → (kind, platform)
    tasks: dict[str, int] = field(default_factory=dict)  # task id → COMPLETE events naming datasets
    edges: set[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=set)
    silent: list[str] = field(default_factory=list)  # tasks whose COMPLETE events name no dataset
    first_seen: dict[tuple[str, ...], int] = field(default_factory=dict)
    #: Per dataset: the datasets on the other side of the smallest event that names it (for the order).
    partners: dict[tuple[str, ...], set[tuple[str, ...]]] = field(default_factory=dict)
    #: Per task that reported nothing itself: the datasets only hook-level lineage gave it.
    hook_level: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    complete: int = 0
    odd: list[str] = field(default_factory=list)


def kind_of(dataset: dict[str, Any]) -> tuple[str, str] | None:
    """What the provider said a dataset is (``datasetType`` facet); None for one it did not report itself
    (hook-level lineage OpenLineage added for a task that reported nothing)."""
    facet = (dataset.get("facets") or {}).get("datasetType") or {}
    kind = facet.get("datasetType")
    return (kind, facet.get("subType") or "") if kind in KINDS else None


def build(events: Any) -> Graph:
    graph = Graph()
    complete = sorted(
        (
            e
            for e in events.events
            if e.get("eventType") == "COMPLETE" and e["job"]["name"].startswith(f"{DAG}.")
        ),
        key=lambda e: e.get("eventTime", ""),
    )
    graph.complete = len(complete)
    smallest: dict[tuple[str, ...], int] = {}
    for event in complete:
        task = event["job"]["name"][len(DAG) + 1 :]
        inputs, outputs = event.get("inputs") or [], event.get("outputs") or []
        job = ("task", task)
        ins, outs = [], []
        for side, found in ((ins, inputs), (outs, outputs)):
            for dataset in found:
                key, kind = (dataset["namespace"], dataset["name"]), kind_of(dataset)
                if kind is None:
                    graph.hook_level.setdefault(task, set()).add(key)
                    continue
                graph.datasets.setdefault(key, kind)
                node = ("dataset", *key)
                graph.first_seen.setdefault(node, len(graph.first_seen))
                side.append(node)
        if not ins and not outs:
            graph.silent += [task] if task not in graph.silent else []
            continue
        graph.tasks[task] = graph.tasks.get(task, 0) + 1
        graph.first_seen.setdefault(job, len(graph.first_seen))
        graph.edges |= {(node, job) for node in ins} | {(job, node) for node in outs}
        size = len(ins) + len(outs)
        for mine, theirs in ((ins, outs), (outs, ins)):
            for node in mine:
                if theirs and size < smallest.get(node, 1 << 30):
                    smallest[node], graph.partners[node] = size, set(theirs)
    graph.silent = [task for task in graph.silent if task not in graph.tasks]
    for task in set(graph.hook_level) & set(graph.tasks):  # beside datasets the task reported itself
        graph.odd.append(f"{task} names {len(graph.hook_level.pop(task))} datasets with no datasetType facet")
    if not graph.tasks:
        raise Failed(f"{graph.complete} COMPLETE events of {DAG}, none names a dataset the provider reported")
    return graph


def shorten(namespace: str, name: str) -> str:
    if namespace == "file":
        parts = name.split("/")
        return name if len(name) <= 30 else "…/" + "/".join(parts[-2:])

    def short(part: str) -> str:  # as the docs write them: 0a1b2c3d…, sg_42ae…_000001
        tail = "_" + part.rsplit("_", 1)[1] if "_" in part else ""
        return part if len(part) <= 16 else f"{part[:8]}…{tail if len(tail) <= 8 else ''}"

    return "/".join(short(part) for part in name.split("/"))


def columns(graph: Graph) -> list[list[tuple[str, ...]]]:
    """Datasets by kind (files, videos, products), each task beside what it reads; each column in an order
    that keeps a video near its source and a product near its video."""
    place: dict[tuple[str, ...], int] = {}
    for (namespace, name), (kind, _) in graph.datasets.items():
        place[("dataset", namespace, name)] = KINDS[kind]
    for task in graph.tasks:
        job = ("task", task)
        reads = [place[a] for a, b in graph.edges if b == job]
        makes = [place[b] for a, b in graph.edges if a == job]
        place[job] = max(reads) + 1 if reads else min(makes) - 1
    count = max(place.values()) + 1
    ordered: list[list[tuple[str, ...]]] = [[] for _ in range(count)]
    rank: dict[tuple[str, ...], float] = {}
    for column in range(count):
        nodes = [node for node, at in place.items() if at == column]

        def key(node: tuple[str, ...]) -> tuple[float, int, int]:
            platform = graph.datasets[node[1:]][1] if node[0] == "dataset" else ""
            near = [rank[p] for p in graph.partners.get(node, ()) if p in rank]
            return (
                sum(near) / len(near) if near else -1,
                PLATFORM_ORDER.get(platform, 9),
                graph.first_seen[node],
            )

        if column % 2 == 1:  # tasks: in the order they completed
            nodes.sort(key=lambda node: graph.first_seen[node])
        else:
            nodes.sort(key=key)
        ordered[column] = nodes
        rank.update({node: i for i, node in enumerate(nodes)})
    return ordered


def draw(graph: Graph, path: Path, caption: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as BezierPath

    ordered = columns(graph)
    notes = textwrap.wrap(not_drawn(graph), 200)
    width, row_height = 15.0, 0.95
    body = max(len(column) for column in ordered) * row_height
    height = 1.6 + 0.5 + body + 0.55 + 0.24 * len(notes) + 0.2
    figure = plt.figure(figsize=(width, height), dpi=96, facecolor="white")
    axis = figure.add_axes((0, 0, 1, 1))
    axis.set_xlim(0, width)
    axis.set_ylim(0, height)
    axis.axis("off")
    renderer = figure.canvas.get_renderer()
    inches = figure.dpi_scale_trans.inverted()

    def measure(text: Any) -> tuple[float, float]:
        box = text.get_window_extent(renderer).transformed(inches)
        return box.width, box.height

    # Labels first, at the origin, to measure them; the columns are as wide as their widest label.
    texts: dict[tuple[str, ...], Any] = {}
    for column in ordered:
        for node in column:
            if node[0] == "task":
                runs = graph.tasks[node[1]]
                label = node[1] + (f"\n{runs} mapped instances" if runs > 1 else "")
                texts[node] = axis.text(
                    0,
                    0,
                    label,
                    ha="center",
                    va="center",
                    color="white",
                    fontsize=10.5,
                    fontweight="bold",
                    linespacing=1.5,
                    zorder=4,
                )
            else:
                namespace, name = node[1:]
                texts[node] = axis.text(
                    0,
                    0,
                    f"{namespace} ·\n{shorten(namespace, name)}",
                    ha="center",
                    va="center",
                    color="#1f2933",
                    fontsize=9.5,
                    linespacing=1.45,
                    family="DejaVu Sans Mono",
                    zorder=4,
                )
    pad_x, pad_y = 0.14, 0.1
    widths = [max(measure(texts[node])[0] for node in column) + 2 * pad_x for column in ordered]
    gap = (width - 0.5 - sum(widths)) / (len(ordered) - 1)
    if gap < 0.45:
        raise Failed(f"the labels are too wide for {width} in ({gap:.2f} in between columns)")
    lefts = [0.25 + sum(widths[:i]) + gap * i for i in range(len(ordered))]
    top = height - 1.6 - 0.5
    boxes: dict[tuple[str, ...], tuple[float, float, float, float]] = {}  # x0, x1, y, half height
    for i, column in enumerate(ordered):
        half = max(measure(texts[node])[1] for node in column) / 2 + pad_y
        for j, node in enumerate(column):
            x0, y = lefts[i], top - body / len(column) * (j + 0.5)
            boxes[node] = (x0, x0 + widths[i], y, half)
            texts[node].set_position((x0 + widths[i] / 2, y))
            if node[0] == "task":
                fill, edge, style = TASK_FILL, TASK_EDGE, "square,pad=0"
            else:
                fill, edge = COLOURS.get(graph.datasets[node[1:]][1], COLOURS[""])
                style = "round,pad=0,rounding_size=0.12"
            axis.add_patch(
                FancyBboxPatch(
                    (x0, y - half),
                    widths[i],
                    2 * half,
                    boxstyle=style,
                    facecolor=fill,
                    edgecolor=edge,
                    linewidth=1.4,
                    zorder=3,
                )
            )

    # Each edge leaves and enters its box at a port of its own, spread over the box's side in the order
    # of the boxes at the other end, so arrows into one task do not pile up on one point.
    ports: dict[tuple[tuple[str, ...], tuple[str, ...], str], float] = {}
    for node, (_, _, y, half) in boxes.items():
        for side, ends in (
            ("out", sorted((b for a, b in graph.edges if a == node), key=lambda b: -boxes[b][2])),
            ("in", sorted((a for a, b in graph.edges if b == node), key=lambda a: -boxes[a][2])),
        ):
            for k, other in enumerate(ends):
                offset = (0.5 - (k + 0.5) / len(ends)) * 1.3 * half if len(ends) > 1 else 0.0
                ports[(node, other, side)] = y + offset
    for source, target in sorted(graph.edges):
        x0, y0 = boxes[source][1], ports[(source, target, "out")]
        x1, y1 = boxes[target][0], ports[(target, source, "in")]
        middle = (x0 + x1) / 2
        dataset = target if target[0] == "dataset" else source
        colour = COLOURS.get(graph.datasets[dataset[1:]][1], COLOURS[""])[1]
        curve = BezierPath(
            [(x0, y0), (middle, y0), (middle, y1), (x1, y1)],
            [BezierPath.MOVETO, BezierPath.CURVE4, BezierPath.CURVE4, BezierPath.CURVE4],
        )
        axis.add_patch(
            FancyArrowPatch(
                path=curve,
                arrowstyle="-|>",
                mutation_scale=12,
                color=colour,
                alpha=0.8,
                linewidth=1.2,
                zorder=2,
            )
        )

    headers = {0: "source files (FILE)", 2: "platform videos (VIDEO)", 4: "products (PRODUCT)"}
    for i in range(len(ordered)):
        axis.text(
            lefts[i] + widths[i] / 2,
            top + 0.22,
            headers.get(i, "Airflow tasks"),
            ha="center",
            va="bottom",
            fontsize=11,
            color="#52606d",
            fontweight="bold",
        )
    axis.text(
        0.25,
        height - 0.3,
        f"OpenLineage graph of one {DAG} run",
        ha="left",
        va="top",
        fontsize=15,
        fontweight="bold",
        color="#102a43",
    )
    axis.text(
        0.25,
        height - 0.72,
        "From the COMPLETE events of a dag.test() run against the Lazada, Shopee and Huawei VOD emulators: the "
        f"{sum(graph.tasks.values())} (of {graph.complete}) whose tasks report datasets of their own; "
        f"{len(graph.datasets)} datasets, {len(graph.tasks)} tasks, {len(graph.edges)} edges.\n{caption}",
        ha="left",
        va="top",
        fontsize=10.5,
        color="#52606d",
        linespacing=1.6,
    )

    # The key: one swatch per platform present and the task box; then what was left out, and why.
    y = top - body - 0.42
    present = sorted(
        {platform for _, platform in graph.datasets.values()}, key=lambda p: PLATFORM_ORDER.get(p, 9)
    )
    x = 0.25
    for platform in [*present, None]:
        fill, edge = COLOURS.get(platform, COLOURS[""]) if platform is not None else (TASK_FILL, TASK_EDGE)
        style = "round,pad=0,rounding_size=0.05" if platform is not None else "square,pad=0"
        axis.add_patch(
            FancyBboxPatch(
                (x, y - 0.1),
                0.32,
                0.2,
                boxstyle=style,
                facecolor=fill,
                edgecolor=edge,
                linewidth=1.2,
            )
        )
        text = "Airflow task (OpenLineage job)" if platform is None else f"{PLATFORM_NAMES[platform]} dataset"
        x += 0.42 + measure(axis.text(x + 0.42, y, text, va="center", fontsize=10))[0] + 0.35
    axis.text(
        x,
        y,
        "boxes read namespace · name; long ids are cut with …",
        va="center",
        fontsize=10,
        color="#7b8794",
    )
    for k, line in enumerate(notes):
        axis.text(0.25, y - 0.32 - 0.24 * k, line, va="center", fontsize=9.5, color="#7b8794")

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, facecolor="white")
    plt.close(figure)


def not_drawn(graph: Graph) -> str:
    """The tasks left out of the graph, and why."""
    hooked = [task for task in graph.silent if task in graph.hook_level]
    quiet = [task for task in graph.silent if task not in graph.hook_level]
    notes = []
    if hooked:
        notes.append(
            f"{', '.join(hooked)} report no datasets of their own; their COMPLETE events hold only hook-level"
            " inputs, the files earlier tasks read (dag.test runs every task in one process)"
        )
    if quiet:
        notes.append(f"{', '.join(quiet)}: no datasets in their COMPLETE events")
    return f"Not drawn: {'; '.join(notes)}." if notes else ""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=OUT, help="the PNG to write")
    parser.add_argument("--events", type=Path, help="draw this events file (JSON lines) instead of running")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (and its events file)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lineage-graph-"))
    try:
        if args.events:
            events, expected = read_events(args.events), set()
        else:
            events, expected = run_catalog(work)
        graph = build(events)
        missing = expected - set(graph.datasets)
        if missing:
            raise Failed("the events do not name " + ", ".join(" · ".join(m) for m in sorted(missing)))
        shown = json.dumps(sorted(graph.datasets)).lower()
        if any(mark in shown for mark in SIGNATURES):
            raise Failed("a dataset name looks like it carries a signature or a token")
        draw(graph, args.out, "" if args.events else CAPTION)
    finally:
        if args.keep and not args.events:
            print(f"kept {work} (events: {work / 'openlineage-events.jsonl'})")
        else:
            shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(suite._AIRFLOW_HOME, ignore_errors=True)  # the suite's throwaway Airflow home

    kinds = defaultdict(int)
    for kind, _ in graph.datasets.values():
        kinds[kind] += 1
    try:
        shown_path = args.out.resolve().relative_to(ROOT)
    except ValueError:
        shown_path = args.out
    print(
        f"wrote {shown_path}: {sum(graph.tasks.values())} of {graph.complete} task COMPLETE events drawn "
        f"({len(events.events)} events in all), "
        f"{len(graph.datasets)} datasets ({kinds['FILE']} files, {kinds['VIDEO']} videos, "
        f"{kinds['PRODUCT']} products), {len(graph.tasks)} tasks "
        f"({', '.join(f'{t} ×{n}' for t, n in graph.tasks.items())}), {len(graph.edges)} edges"
    )
    for task, found in sorted(graph.hook_level.items()):
        print(f"not drawn: {task} reported nothing itself; hook-level lineage gave it {len(found)} inputs")
    for odd in graph.odd:
        print(f"odd: {odd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
