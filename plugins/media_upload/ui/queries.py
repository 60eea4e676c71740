"""What the "Media uploads" view shows, read from the upload ledger: one page of rows at a time.

Every number comes from the ledger tables through :class:`~media_upload.ledger.UploadLedger` (the same
connection and driver the tasks use), in six statements whatever the ledger holds: a count, the rows of one
page (ordered by ``updated_at`` on its index, ``LIMIT``/``OFFSET``; a run's page on the ``(dag_id, run_id)``
index), the acknowledged blocks of that page's uploads only (on the blocks table's primary key), the totals
and recent acks of that page's runs (on the run index), and the runs the filter offers (from the most
recent rows). State, platform and SKU have no index of their own: those filters read the ledger through.
Text that could carry a credential (reason, source, title, details) is masked on the way out, although the
ledger is not meant to hold any.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from media_upload.ledger import (
    ATTACHED,
    AUDITED,
    BLOCKS_TABLE,
    COLUMNS,
    COMMIT_UNKNOWN,
    COMMITTED,
    FAILED,
    HAS_VIDEO,
    NEEDS_ATTENTION,
    PLANNED,
    REJECTED,
    TABLE,
    UPLOADING,
    LedgerEntry,
    UploadLedger,
    _entry,
)
from media_upload.masking import MASK, is_secret_name, mask_text, mask_url

#: A committed video whose audit the platform has not finished, as far as the ledger knows. Only platforms
#: whose steps record the audit's end (``audited`` / ``rejected``) can show it; elsewhere ``committed``
#: is all the ledger can say.
AUDITING = "auditing"
#: The states the view filters and shows: the ledger's, with ``auditing`` beside ``committed``.
VIEW_STATES = (
    PLANNED, UPLOADING, COMMIT_UNKNOWN, COMMITTED, AUDITING, AUDITED, ATTACHED, REJECTED, FAILED, NEEDS_ATTENTION,
)  # fmt: skip
STOPPED = frozenset({REJECTED, FAILED, NEEDS_ATTENTION})
#: MB/s is the bytes acknowledged in this many seconds before now.
RATE_WINDOW = 10.0
MAX_LIMIT = 500
RUN_CHOICES = 50
#: The run filter offers the runs of this many most recently changed rows.
RECENT_ROWS = 5000
_ORDER = " ORDER BY updated_at DESC, platform, account, product, content_sha256"


@dataclass(frozen=True)
class Filters:
    """What the reader asked for, and what they may see: ``dag_ids`` (None: every DAG)."""

    states: tuple[str, ...] = ()
    platform: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    sku: str | None = None
    dag_ids: frozenset[str] | None = None

    def where(self, p: str) -> tuple[str, list[Any]]:
        """The SQL condition (``p`` is the driver's placeholder) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.states:
            shown: list[str] = []
            recorded = _quoted(audit_recorded())
            for state in self.states:
                if state == AUDITING:
                    shown.append(f"(state = '{COMMITTED}' AND platform IN ({recorded}))")
                elif state == COMMITTED:
                    shown.append(f"(state = '{COMMITTED}' AND platform NOT IN ({recorded}))")
                else:
                    shown.append(f"state = {p}")
                    params.append(state)
            clauses.append("(" + " OR ".join(shown) + ")")
        for name in ("platform", "dag_id", "run_id"):
            if getattr(self, name):
                clauses.append(f"{name} = {p}")
                params.append(getattr(self, name))
        if self.sku:
            pattern = (
                "%" + self.sku.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            clauses.append(f"(LOWER(label) LIKE {p} ESCAPE '\\' OR LOWER(product) LIKE {p} ESCAPE '\\')")
            params += [pattern, pattern]
        if self.dag_ids is not None:
            if not self.dag_ids:
                clauses.append("1 = 0")
            else:
                # An expression, not the column: SQLite has no statistics and would otherwise read every row
                # of the readable DAGs through the run index and sort them, instead of walking the
                # updated_at index until the page is full.
                clauses.append(f"COALESCE(dag_id, '') IN ({', '.join([p] * len(self.dag_ids))})")
                params += sorted(self.dag_ids)
        return " AND ".join(clauses) or "1 = 1", params


@dataclass
class Progress:
    done: int
    total: int | None


@dataclass
class UploadRow:
    """One ledger row as the view shows it (bytes per second in ``rate``; seconds in ``waiting``)."""

    platform: str
    account: str
    product: str
    label: str | None
    title: str | None
    state: str
    ledger_state: str
    bytes: int | None
    bytes_done: int
    blocks: Progress
    progress: float | None
    rate: float
    waiting: float | None
    video_id: str | None
    reason: str | None
    source: str | None
    details: dict[str, Any]
    dag_id: str | None
    run_id: str | None
    updated_at: str
    committed_at: str | None
    chunks: Progress | None = None
    links: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSummary:
    """A run's rows in total: done (committed, audited or attached), auditing, failed (failed, rejected,
    needs attention) or still going (``active``); the bytes the platform has; the speed now (last 10 s)
    and on average (the bytes of the uploads that made a video, from the first start to the last commit)."""

    dag_id: str | None
    run_id: str | None
    uploads: int
    done: int
    auditing: int
    failed: int
    active: int
    bytes: int
    bytes_done: int
    rate: float
    average_rate: float | None
    started_at: str | None
    last_commit_at: str | None
    chunks: Progress | None = None
    links: dict[str, Any] = field(default_factory=dict)


@dataclass
class Page:
    now: str
    total: int
    limit: int
    offset: int
    rows: list[UploadRow]
    runs: list[RunSummary]
    run_choices: list[dict[str, Any]]


def view_state(platform: str, state: str) -> str:
    return AUDITING if state == COMMITTED and platform in audit_recorded() else state


def read_page(ledger: UploadLedger, filters: Filters, limit: int = 50, offset: int = 0) -> Page:
    """One page of upload rows (newest change first), with progress, speed and a summary of their runs."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    now = datetime.now(UTC)
    p = ledger.placeholder
    where, params = filters.where(p)
    (total,) = ledger._select(f"SELECT COUNT(*) FROM {TABLE} WHERE {where}", params)[0]
    entries = [_entry(row) for row in ledger._select(*page_query(filters, p, limit, offset))]
    blocks = _blocks(ledger, entries, now)
    rows = [_row(entry, blocks.get((entry.platform, entry.upload_id or "")), now) for entry in entries]
    runs = _summaries(ledger, {(row.dag_id, row.run_id) for row in rows if row.run_id}, now)
    return Page(
        now=_stamp(now),
        total=int(total),
        limit=limit,
        offset=offset,
        rows=rows,
        runs=runs,
        run_choices=run_choices(ledger, filters.dag_ids),
    )


def page_query(filters: Filters, p: str, limit: int, offset: int) -> tuple[str, list[Any]]:
    """The SELECT of one page: what :func:`read_page` runs and the tests ``EXPLAIN``."""
    where, params = filters.where(p)
    sql = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE {where}{_ORDER} LIMIT {p} OFFSET {p}"
    return sql, [*params, limit, offset]


def run_choices(ledger: UploadLedger, dag_ids: frozenset[str] | None) -> list[dict[str, Any]]:
    """The runs of the most recently changed rows (for the run filter), newest first."""
    p = ledger.placeholder
    where, params = Filters(dag_ids=dag_ids).where(p)
    rows = ledger._select(
        f"SELECT dag_id, run_id, MAX(updated_at) AS changed FROM (SELECT dag_id, run_id, updated_at FROM {TABLE} "
        f"WHERE run_id IS NOT NULL AND {where} ORDER BY updated_at DESC LIMIT {p}) recent "
        f"GROUP BY dag_id, run_id ORDER BY changed DESC LIMIT {p}",
        [*params, RECENT_ROWS, RUN_CHOICES],
    )
    return [{"dag_id": dag_id, "run_id": run_id, "updated_at": changed} for dag_id, run_id, changed in rows]


# ------------------------------------------------------------------------------------------ blocks


@dataclass
class _Acked:
    count: int
    bytes: int
    recent: int


def _blocks(
    ledger: UploadLedger, entries: Sequence[LedgerEntry], now: datetime
) -> dict[tuple[str, str], _Acked]:
    """Acknowledged blocks of the page's unfinished uploads: count, bytes, bytes in the rate window."""
    wanted: dict[str, set[str]] = {}
    for entry in entries:
        if entry.upload_id and not uploaded(entry):
            wanted.setdefault(entry.platform, set()).add(entry.upload_id)
    p = ledger.placeholder
    since = _stamp(now - timedelta(seconds=RATE_WINDOW))
    found: dict[tuple[str, str], _Acked] = {}
    for platform, upload_ids in sorted(wanted.items()):
        rows = ledger._select(
            f"SELECT upload_id, COUNT(*), SUM(bytes), SUM(CASE WHEN acked_at >= {p} THEN bytes ELSE 0 END) "
            f"FROM {BLOCKS_TABLE} WHERE platform = {p} AND upload_id IN ({', '.join([p] * len(upload_ids))}) "
            "GROUP BY upload_id",
            [since, platform, *sorted(upload_ids)],
        )
        for upload_id, count, size, recent in rows:
            found[(platform, str(upload_id))] = _Acked(int(count), int(size or 0), int(recent or 0))
    return found


def uploaded(entry: LedgerEntry) -> bool:
    """Every block reached the platform: a video was made, or its commit was sent (``committed_at``, claimed
    only once every block is acknowledged) whatever came of it (commit unknown, rejected, needs attention)."""
    return entry.state in HAS_VIDEO or (
        entry.committed_at is not None and entry.state not in (PLANNED, UPLOADING)
    )


def _row(entry: LedgerEntry, acked: _Acked | None, now: datetime) -> UploadRow:
    state = view_state(entry.platform, entry.state)
    if uploaded(entry):
        blocks = Progress(entry.block_count or 0, entry.block_count)
        done = entry.file_size or 0
    else:
        blocks = Progress(acked.count if acked else 0, entry.block_count)
        done = acked.bytes if acked else 0
    rate = 0.0
    if acked and acked.recent:
        started = _parse(entry.upload_started_at)
        span = RATE_WINDOW if started is None else (now - started).total_seconds()
        rate = acked.recent / max(1.0, min(RATE_WINDOW, span))
    committed = _parse(entry.committed_at)
    return UploadRow(
        platform=entry.platform,
        account=entry.account,
        product=entry.product,
        label=_masked(entry.label),
        title=_masked(entry.title),
        state=state,
        ledger_state=entry.state,
        bytes=entry.file_size,
        bytes_done=done,
        blocks=blocks,
        progress=round(100.0 * done / entry.file_size, 1) if entry.file_size else None,
        rate=rate,
        waiting=(now - committed).total_seconds() if state == AUDITING and committed else None,
        video_id=entry.video_id,
        reason=_masked(entry.reason),
        source=mask_text(mask_url(entry.source)) if entry.source else None,
        details=mask_details(entry.details),
        dag_id=entry.dag_id,
        run_id=entry.run_id,
        updated_at=entry.updated_at,
        committed_at=entry.committed_at,
    )


# -------------------------------------------------------------------------------------------- runs


def _summaries(
    ledger: UploadLedger, runs: Iterable[tuple[str | None, str | None]], now: datetime
) -> list[RunSummary]:
    """Totals of every run on the page, over all of its rows (not only those on the page)."""
    runs = sorted(runs, key=lambda run: (run[0] or "", run[1] or ""))
    if not runs:
        return []
    p = ledger.placeholder
    match = " OR ".join(f"(l.dag_id = {p} AND l.run_id = {p})" for _ in runs)
    keys = [part for run in runs for part in run]
    has_video = f"l.state IN ({_quoted(HAS_VIDEO)})"
    sent_all = (  # uploaded()
        f"({has_video} OR (l.committed_at IS NOT NULL AND l.state NOT IN ({_quoted((PLANNED, UPLOADING))})))"
    )
    auditing = f"(l.state = '{COMMITTED}' AND l.platform IN ({_quoted(audit_recorded())}))"
    totals = ledger._select(
        f"SELECT l.dag_id, l.run_id, COUNT(*), "
        f"SUM(CASE WHEN {has_video} THEN 1 ELSE 0 END), SUM(CASE WHEN {auditing} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN l.state IN ({_quoted(STOPPED)}) THEN 1 ELSE 0 END), "
        f"SUM(l.file_size), SUM(CASE WHEN {sent_all} THEN l.file_size ELSE 0 END), "
        f"MIN(l.upload_started_at), MAX(l.committed_at) "
        f"FROM {TABLE} l WHERE {match} GROUP BY l.dag_id, l.run_id",
        keys,
    )
    since = _stamp(now - timedelta(seconds=RATE_WINDOW))
    sent = {
        (dag_id, run_id): (int(size or 0), int(recent or 0))
        for dag_id, run_id, size, recent in ledger._select(
            f"SELECT l.dag_id, l.run_id, SUM(b.bytes), SUM(CASE WHEN b.acked_at >= {p} THEN b.bytes ELSE 0 END) "
            f"FROM {TABLE} l JOIN {BLOCKS_TABLE} b ON b.platform = l.platform AND b.upload_id = l.upload_id "
            f"WHERE ({match}) AND NOT {sent_all} GROUP BY l.dag_id, l.run_id",
            [since, *keys],
        )
    }
    summaries = []
    for dag_id, run_id, count, made, waiting, bad, size, sent_size, started_at, last_commit in totals:
        count, made, waiting, bad = int(count), int(made or 0), int(waiting or 0), int(bad or 0)
        acked, recent = sent.get((dag_id, run_id), (0, 0))
        start, end = _parse(started_at), _parse(last_commit)
        seconds = (end - start).total_seconds() if start and end else 0.0
        summaries.append(
            RunSummary(
                dag_id=dag_id,
                run_id=run_id,
                uploads=count,
                done=made - waiting,
                auditing=waiting,
                failed=bad,
                active=count - made - bad,
                bytes=int(size or 0),
                bytes_done=int(sent_size or 0) + acked,
                rate=recent / RATE_WINDOW,
                average_rate=int(sent_size or 0) / seconds if seconds > 0 else None,
                started_at=started_at,
                last_commit_at=last_commit,
            )
        )
    return summaries


# ---------------------------------------------------------------------------------------- helpers


def mask_details(value: Any) -> Any:
    """``details`` with every secret-named key's value and every ``name=secret`` in text masked."""
    if isinstance(value, Mapping):
        return {
            str(key): MASK if is_secret_name(str(key)) else mask_details(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_details(item) for item in value]
    if isinstance(value, str):
        return mask_text(mask_url(value))
    return value


def _quoted(states: Iterable[str]) -> str:
    """Our own state and platform names as SQL literals (constants, never user input)."""
    return ", ".join(f"'{state}'" for state in sorted(states))


def _masked(text: str | None) -> str | None:
    return mask_text(text) if text else text


def _stamp(moment: datetime) -> str:
    """The ledger's timestamp format (``media_upload.ledger.now``), so strings compare in time order."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@functools.cache
def audit_recorded() -> frozenset[str]:
    """The platforms whose steps record the end of an audit, so a committed row there is being audited."""
    from media_upload.platforms import STEPS, steps_class

    return frozenset(name for name in STEPS if steps_class(name).records_audit)


@functools.cache
def platform_titles() -> dict[str, str]:
    """Every platform's name in the ledger → its title, for the view's filter."""
    from media_upload.platforms import STEPS, steps_class

    return {name: steps_class(name).title for name in STEPS}
