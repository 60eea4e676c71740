"""Catalog manifests: one row per product video, as CSV (with a header) or JSON Lines.

Columns: ``seller_sku`` or ``item_id`` (+ optional ``sku_id``, comma-separated), ``video`` (a path,
relative to the manifest, or a URL), ``title``, ``cover_url``; optional per-row overrides ``block_size``
and ``video_usage``. Every bad row is reported with its line number, field and reason, and skipped; the
good rows go on.

A manifest is untrusted input: it is read only from where the deployment's source policy allows, up to
``[media_upload] max_manifest_bytes``, and its videos are checked against the same policy. Messages quote
a row's values (shortened, control characters escaped) but never the file's other content.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from media_upload.masking import printable
from media_upload.protocols.lazada import MAX_BLOCK_BYTES, VIDEO_USAGES, check_video_metadata
from media_upload.transfer.source import Source, SourceError

#: The largest manifest read unless ``[media_upload] max_manifest_bytes`` says otherwise.
MAX_MANIFEST_BYTES = 50_000_000

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


def _lines(data: bytes) -> tuple[list[str], list[RowProblem]]:
    """The file's lines as text (a UTF-8 BOM dropped, CRLF or LF), each decoded on its own: a line that is
    not UTF-8 is a problem naming its line and the byte, and reads as empty so the others keep their numbers."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    lines: list[str] = []
    problems: list[RowProblem] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.rstrip(b"\r").decode("utf-8") + "\n")
        except UnicodeDecodeError as exc:
            problems.append(
                RowProblem(
                    number,
                    "(row)",
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); save the manifest as UTF-8",
                )
            )
            lines.append("\n")
    return lines, problems


def _records(
    lines: list[str], kind: str, problems: list[RowProblem]
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(line, record)`` pairs; a line or row that cannot be read becomes a problem instead."""
    if kind == "jsonl":
        for line, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(
                    RowProblem(line, "(row)", f"not valid JSON ({exc.msg} at column {exc.colno})")
                )
                continue
            if isinstance(record, dict):
                yield line, record
            else:
                problems.append(RowProblem(line, "(row)", "not a JSON object"))
        return
    reader = csv.reader(lines)
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(RowProblem(start, "(row)", f"unreadable CSV ({exc}); is a quote left open?"))
            continue
        end = reader.line_num
        if header is None:
            if any(value.strip() for value in values):
                header = [value.strip() for value in values]
                _check_header(header)
            continue
        if not any(value.strip() for value in values):
            continue
        if end > start and any("\n" in value for value in values):
            problems.append(
                RowProblem(
                    start,
                    "(row)",
                    f"a quote opened on line {start} closes only on line {end}, so lines {start}–{end} read as "
                    "one row; fix the stray quote",
                )
            )
            continue
        if len(values) > len(header):
            problems.append(RowProblem(start, "(row)", "more values than header columns"))
            continue
        yield start, dict(zip(header, values, strict=False))


def _check_header(header: list[str]) -> None:
    missing = [
        name
        for name, present in (
            ("video", "video" in header),
            ("seller_sku or item_id", bool({"seller_sku", "item_id"} & set(header))),
        )
        if not present
    ]
    if missing:
        raise ValueError(
            f"its first line is not a header with a {' and a '.join(missing)} column; see the sample "
            "include/catalog/products.csv"
        )


def quoted(value: str, limit: int = 60) -> str:
    """A row's value as a message quotes it: shortened, control characters escaped."""
    text = printable(value)
    return repr(text if len(text) <= limit else f"{text[:limit]}…")


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return "" if value is None else str(value).strip()


def _video_location(value: str, folder: str) -> str:
    """A URL or absolute path as it is; a relative path joined to the manifest's folder (the source
    policy resolves and checks the result)."""
    if "://" in value or value.startswith(("/", "~")):
        return value
    return f"{folder.rstrip('/')}/{value}"


def parse_row(line: int, record: Mapping[str, Any], folder: str) -> ManifestRow | RowProblem:
    """One record as a row, or the first problem found in it; ``folder`` is the manifest's."""
    for name in COLUMNS:
        if not _text(record, name).isprintable():
            return RowProblem(line, name, "contains control characters (a line break, tab or escape)")
    seller_sku, item_id, sku_id = (
        _text(record, "seller_sku"),
        _text(record, "item_id"),
        _text(record, "sku_id"),
    )
    if not seller_sku and not item_id:
        return RowProblem(line, "seller_sku/item_id", "one of them is required to name the product")
    if item_id and not item_id.isdigit():
        return RowProblem(line, "item_id", f"{quoted(item_id)} is not a number")
    sku_ids = tuple(part.strip() for part in sku_id.split(",") if part.strip())
    if sku_ids and not item_id:
        return RowProblem(line, "sku_id", "sku_id needs item_id (UpdateProduct names SKUs of one item)")
    if any(not part.isdigit() for part in sku_ids):
        return RowProblem(line, "sku_id", f"{quoted(sku_id)} is not a number or comma-separated numbers")
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
                line, "block_size", f"{quoted(raw)} is not a whole number of bytes in 1..{MAX_BLOCK_BYTES:,}"
            )
        block_size = int(raw)
    video_usage = _text(record, "video_usage") or None
    if video_usage and video_usage not in VIDEO_USAGES:
        return RowProblem(
            line, "video_usage", f"{quoted(video_usage)} is not one of {', '.join(VIDEO_USAGES)}"
        )
    return ManifestRow(
        line=line,
        video=_video_location(video, folder),
        title=title,
        cover_url=cover_url,
        seller_sku=seller_sku or None,
        item_id=item_id or None,
        sku_ids=sku_ids,
        block_size=block_size,
        video_usage=video_usage,
    )


def read_manifest(
    manifest: str, conn_id: str | None = None
) -> tuple[list[ManifestRow], list[RowProblem], list[str]]:
    """Rows, problems (one per bad row) and unknown column names of a ``.csv`` or ``.jsonl`` manifest.

    Any bytes give per-row problems with their line: text that is not UTF-8, a field too long, a stray
    quote; a BOM and CRLF line ends are fine. A product named twice keeps its first row; the later ones
    are problems. Raises :class:`SourceError` (a ``ValueError``) for a manifest that may not be read (the
    source policy), is missing or too large, or cannot be one at all (wrong kind, no ``video`` column).
    ``conn_id`` reads a remote manifest, and its videos.
    """
    from airflow.sdk import conf

    source = Source.of(manifest, conn_id)
    name = source.name.lower()
    kind = "jsonl" if name.endswith((".jsonl", ".ndjson")) else "csv" if name.endswith(".csv") else None
    if kind is None:
        raise SourceError(f"manifest {source} must be a .csv or .jsonl file")
    limit = conf.getint("media_upload", "max_manifest_bytes", fallback=MAX_MANIFEST_BYTES)
    lines, problems = _lines(source.read_capped(limit, "the manifest"))
    rows: list[ManifestRow] = []
    unknown: set[str] = set()
    first_line: dict[str, int] = {}
    try:
        records = list(_records(lines, kind, problems))
    except ValueError as exc:
        raise SourceError(f"manifest {source}: {exc}") from None
    for line, record in records:
        unknown.update(printable(str(key))[:40] for key in record if key not in COLUMNS)
        parsed = parse_row(line, record, source.folder)
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
    problems.sort(key=lambda problem: problem.line)
    return rows, problems, sorted(unknown)
