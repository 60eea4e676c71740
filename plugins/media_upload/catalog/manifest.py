"""Catalog manifests: one row per product video, as CSV (with a header) or JSON Lines; a row may name the
product on several marketplaces, and the run uploads the video once to each.

Every row has ``video`` (a path, relative to the manifest, or a URL), and ``title``, ``cover_url`` and
``block_size`` where a platform uses them. Each platform reads its own columns (see each steps class's
``manifest_target``): Lazada ``seller_sku`` or ``item_id`` (+ ``sku_id``; also with a ``lazada_`` prefix)
and ``video_usage``, Shopee ``shopee_item_id``, Huawei VOD ``huawei_vod`` (the name the asset is kept
under). Every bad row, or bad marketplace of a row, is reported with its line number, field and reason,
and skipped; the rest goes on.

A manifest is untrusted input: it is read only from where the deployment's source policy allows, up to
``[media_upload] max_manifest_bytes``, and its videos are checked against the same policy. Messages quote
a row's values (shortened, control characters escaped) but never the file's other content.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from media_upload.masking import printable
from media_upload.platforms import STEPS, steps_class
from media_upload.transfer.source import Source, SourceError

#: The largest manifest read unless ``[media_upload] max_manifest_bytes`` says otherwise.
MAX_MANIFEST_BYTES = 50_000_000
#: Columns every platform shares.
COMMON = ("video", "title", "cover_url", "block_size")


#: The field of a problem that is not the row's fault: a check could not be made (the platform could not be
#: asked). The report counts it as a failure, not a bad row, and the next run checks again.
UNCHECKED = "(not checked)"


@dataclass(frozen=True)
class RowProblem:
    """Why a manifest row (or one marketplace of it) is skipped: its line, the field at fault, the reason."""

    line: int
    field: str
    reason: str
    #: The platform (as the ledger names it) the problem is about; blank for the whole row.
    platform: str = ""

    def __str__(self) -> str:
        where = f" ({steps_class(self.platform).title})" if self.platform else ""
        return f"line {self.line}, {self.field}{where}: {self.reason}"


@dataclass(frozen=True)
class Target:
    """A row's product on one platform: the ledger's product key, how it is named, and the platform's own
    fields (item and SKU ids...)."""

    platform: str
    product: str
    label: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ManifestRow:
    line: int
    video: str
    title: str = ""
    cover_url: str = ""
    block_size: int | None = None
    targets: tuple[Target, ...] = ()

    @property
    def label(self) -> str:
        """How the row is named in logs and in the UI's task labels: its first product."""
        return self.targets[0].label if self.targets else f"line {self.line}"


def text(record: Mapping[str, Any], name: str) -> str:
    """A column's value as text, stripped; empty when absent."""
    value = record.get(name)
    return "" if value is None else str(value).strip()


def quoted(value: str, limit: int = 60) -> str:
    """A row's value as a message quotes it: shortened, control characters escaped."""
    shown = printable(value)
    return repr(shown if len(shown) <= limit else f"{shown[:limit]}…")


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
    if "video" not in header:
        raise ValueError(
            "its first line is not a header with a video column; see the sample include/catalog/products.csv"
        )


def _video_location(value: str, folder: str) -> str:
    """A URL or absolute path as it is; a relative path joined to the manifest's folder (the source
    policy resolves and checks the result)."""
    if "://" in value or value.startswith(("/", "~")):
        return value
    return f"{folder.rstrip('/')}/{value}"


def columns(platforms: Sequence[str]) -> tuple[str, ...]:
    """Every column a manifest for ``platforms`` may have."""
    return COMMON + tuple(name for platform in platforms for name in steps_class(platform).manifest_columns)


def parse_row(
    line: int, record: Mapping[str, Any], folder: str, platforms: Sequence[str]
) -> tuple[ManifestRow | None, list[RowProblem]]:
    """One record as a row with a target per platform it names, and the problems found (a row whose
    every target is refused is no row at all)."""
    for name in columns(platforms):
        if not text(record, name).isprintable():
            return None, [RowProblem(line, name, "contains control characters (a line break, tab or escape)")]
    video = text(record, "video")
    if not video:
        return None, [RowProblem(line, "video", "the video path or URL is missing")]
    block_size = None
    if raw := text(record, "block_size"):
        if not raw.isdigit() or int(raw) < 1:
            return None, [RowProblem(line, "block_size", f"{quoted(raw)} is not a whole number of bytes")]
        block_size = int(raw)
    row = ManifestRow(
        line, _video_location(video, folder), text(record, "title"), text(record, "cover_url"), block_size
    )
    targets: list[Target] = []
    problems: list[RowProblem] = []
    for platform in platforms:
        found = steps_class(platform).manifest_target(row, record)
        if isinstance(found, RowProblem):
            problems.append(found)
        elif found is not None:
            targets.append(found)
    if not targets and not problems:
        named = ", ".join(steps_class(platform).manifest_hint for platform in platforms)
        problems.append(RowProblem(line, "(row)", f"names no product to put the video on: give {named}"))
    return (
        ManifestRow(row.line, row.video, row.title, row.cover_url, row.block_size, tuple(targets))
        if targets
        else None
    ), problems


def read_manifest(
    manifest: str, conn_id: str | None = None, platforms: Sequence[str] = tuple(STEPS)
) -> tuple[list[ManifestRow], list[RowProblem], list[str]]:
    """Rows, problems (one per bad row, or bad marketplace of a row) and unknown column names of a ``.csv``
    or ``.jsonl`` manifest, for a run that uploads to ``platforms``.

    Any bytes give per-row problems with their line: text that is not UTF-8, a field too long, a stray
    quote; a BOM and CRLF line ends are fine. A product named twice on a platform keeps its first row;
    the later ones are problems. Raises :class:`SourceError` (a ``ValueError``) for a manifest that may
    not be read (the source policy), is missing or too large, or cannot be one at all (wrong kind, no
    ``video`` column). ``conn_id`` reads a remote manifest, and its videos.
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
    known = set(columns(tuple(STEPS)))
    unknown: set[str] = set()
    first_line: dict[tuple[str, str], int] = {}
    try:
        records = list(_records(lines, kind, problems))
    except ValueError as exc:
        raise SourceError(f"manifest {source}: {exc}") from None
    for line, record in records:
        unknown.update(printable(str(key))[:40] for key in record if key not in known)
        row, found = parse_row(line, record, source.folder, platforms)
        problems += found
        if row is None:
            continue
        targets = []
        for target in row.targets:
            key = (target.platform, target.product)
            if key in first_line:
                problems.append(
                    RowProblem(
                        line, "(row)", f"{target.label} is already on line {first_line[key]}", target.platform
                    )
                )
            else:
                first_line[key] = line
                targets.append(target)
        if targets:
            rows.append(
                ManifestRow(row.line, row.video, row.title, row.cover_url, row.block_size, tuple(targets))
            )
    problems.sort(key=lambda problem: problem.line)
    return rows, problems, sorted(unknown)
