"""Catalog manifests: one row per product video, as CSV (with a header) or JSON Lines.

Columns: ``seller_sku`` or ``item_id`` (+ optional ``sku_id``, comma-separated), ``video`` (a path,
relative to the manifest, or a URL), ``title``, ``cover_url``; optional per-row overrides ``block_size``
and ``video_usage``. Every bad row is reported with its line number, field and reason, and skipped; the
good rows go on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_upload.protocols.lazada import MAX_BLOCK_BYTES, VIDEO_USAGES, check_video_metadata
from media_upload.transfer.source import source_path

COLUMNS = ("seller_sku", "item_id", "sku_id", "video", "title", "cover_url", "block_size", "video_usage")


@dataclass(frozen=True)
class RowProblem:
    """Why a manifest row is skipped: its line in the file, the field at fault and the reason."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.reason}"


@dataclass(frozen=True)
class ManifestRow:
    line: int
    video: str
    title: str
    cover_url: str
    seller_sku: str | None = None
    item_id: str | None = None
    sku_ids: tuple[str, ...] = ()
    block_size: int | None = None
    video_usage: str | None = None

    @property
    def product(self) -> str:
        """The ledger's product key: ``item:<item_id>`` or ``sku:<seller_sku>``."""
        return f"item:{self.item_id}" if self.item_id else f"sku:{self.seller_sku}"

    @property
    def label(self) -> str:
        """How the row is named in logs and in the UI's task labels."""
        return self.seller_sku or f"item {self.item_id}"


def _records(text: str, kind: str) -> Iterator[tuple[int, Mapping[str, Any] | str]]:
    """``(line, record)`` pairs; a record that cannot be read is the reason why, as a string."""
    if kind == "jsonl":
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield line, f"not valid JSON ({exc.msg})"
                continue
            yield line, record if isinstance(record, dict) else "not a JSON object"
        return
    reader = csv.DictReader(io.StringIO(text))
    for record in reader:
        if None in record:
            yield reader.line_num, "more values than header columns"
        elif any(value not in (None, "") for value in record.values()):
            yield reader.line_num, record


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return "" if value is None else str(value).strip()


def _video_location(value: str, manifest: str) -> str:
    """A URL or absolute path as it is; a relative path against the manifest's folder."""
    if "://" in value or value.startswith(("/", "~")):
        return value
    if "://" in manifest:
        return f"{manifest.rsplit('/', 1)[0]}/{value}"
    return str(Path(manifest).expanduser().resolve().parent / value)


def parse_row(line: int, record: Mapping[str, Any], manifest: str) -> ManifestRow | RowProblem:
    """One record as a row, or the first problem found in it."""
    seller_sku, item_id, sku_id = (
        _text(record, "seller_sku"),
        _text(record, "item_id"),
        _text(record, "sku_id"),
    )
    if not seller_sku and not item_id:
        return RowProblem(line, "seller_sku/item_id", "one of them is required to name the product")
    if item_id and not item_id.isdigit():
        return RowProblem(line, "item_id", f"{item_id!r} is not a number")
    sku_ids = tuple(part.strip() for part in sku_id.split(",") if part.strip())
    if sku_ids and not item_id:
        return RowProblem(line, "sku_id", "sku_id needs item_id (UpdateProduct names SKUs of one item)")
    if any(not part.isdigit() for part in sku_ids):
        return RowProblem(line, "sku_id", f"{sku_id!r} is not a number or comma-separated numbers")
    video = _text(record, "video")
    if not video:
        return RowProblem(line, "video", "the video path or URL is missing")
    title, cover_url = _text(record, "title"), _text(record, "cover_url")
    try:
        check_video_metadata(title, cover_url)
    except ValueError as exc:
        return RowProblem(line, "title" if not title else "cover_url", str(exc))
    block_size = None
    if raw := _text(record, "block_size"):
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_BLOCK_BYTES:
            return RowProblem(
                line, "block_size", f"{raw!r} is not a whole number of bytes in 1..{MAX_BLOCK_BYTES:,}"
            )
        block_size = int(raw)
    video_usage = _text(record, "video_usage") or None
    if video_usage and video_usage not in VIDEO_USAGES:
        return RowProblem(line, "video_usage", f"{video_usage!r} is not one of {', '.join(VIDEO_USAGES)}")
    return ManifestRow(
        line=line,
        video=_video_location(video, manifest),
        title=title,
        cover_url=cover_url,
        seller_sku=seller_sku or None,
        item_id=item_id or None,
        sku_ids=sku_ids,
        block_size=block_size,
        video_usage=video_usage,
    )


def read_manifest(manifest: str) -> tuple[list[ManifestRow], list[RowProblem], list[str]]:
    """Rows, problems (one per bad row) and unknown column names of a ``.csv`` or ``.jsonl`` manifest.

    A product named twice keeps its first row; the later ones are problems.
    """
    path = source_path(manifest)
    if not path.exists():
        raise FileNotFoundError(f"manifest {manifest} does not exist")
    name = path.name.lower()
    kind = "jsonl" if name.endswith((".jsonl", ".ndjson")) else "csv" if name.endswith(".csv") else None
    if kind is None:
        raise ValueError(f"manifest {manifest} must be a .csv or .jsonl file")
    text = path.read_text(encoding="utf-8-sig")
    rows: list[ManifestRow] = []
    problems: list[RowProblem] = []
    unknown: set[str] = set()
    first_line: dict[str, int] = {}
    for line, record in _records(text, kind):
        if isinstance(record, str):
            problems.append(RowProblem(line, "(row)", record))
            continue
        unknown.update(str(key) for key in record if key not in COLUMNS)
        parsed = parse_row(line, record, manifest)
        if isinstance(parsed, RowProblem):
            problems.append(parsed)
        elif parsed.product in first_line:
            problems.append(
                RowProblem(
                    line,
                    "seller_sku/item_id",
                    f"{parsed.label} is already on line {first_line[parsed.product]}",
                )
            )
        else:
            first_line[parsed.product] = line
            rows.append(parsed)
    return rows, problems, sorted(unknown)
