"""What every platform's upload steps share: the job record, chunk payloads, sending a chunk, and the
template of each step (begin, finish, audit, attach) that a platform's steps fill in.

The operators of the single-video DAGs and of the catalog are thin wiring over these steps. A step
reads the ledger before it acts and writes it as soon as something is known, so a retried task, a
cleared task and a new run all start from what the platform already has.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from media_upload import metrics
from media_upload.hooks.retry import count_retries
from media_upload.ledger import (
    ATTACHED,
    AUDITED,
    COMMIT_UNKNOWN,
    COMMITTED,
    FAILED,
    PLANNED,
    REJECTED,
    UPLOADING,
    LedgerEntry,
    UploadLedger,
    now,
)
from media_upload.steps.rules import Action, Decision, decide
from media_upload.transfer.engine import Ack, BlockTask, Progress, send_blocks
from media_upload.transfer.plan import BlockPlan, Chunk, _mb
from media_upload.transfer.source import Source, SourceError, SourceInfo

if TYPE_CHECKING:
    from media_upload.catalog.manifest import ManifestRow, RowProblem, Target
    from media_upload.lineage import PlatformNaming

log = logging.getLogger(__name__)
#: Per-video calls a step makes at once (inits, commits, product look-ups and updates), over the hook's
#: pooled connections; the connection's call budget paces them.
API_CONCURRENCY = 16
T = TypeVar("T")
R = TypeVar("R")


def each(items: Sequence[T], work: Callable[[T], R]) -> list[R | BaseException]:
    """``work`` on every item, ``API_CONCURRENCY`` at once, results in order; an item's exception is its
    result (one video's failure stays its own)."""

    def guarded(item: T) -> R | BaseException:
        try:
            return work(item)
        except Exception as exc:
            return exc

    if len(items) <= 1:
        return [guarded(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(API_CONCURRENCY, len(items)), thread_name_prefix="calls") as pool:
        return list(pool.map(guarded, items))


@dataclass(frozen=True)
class UploadJob:
    """One video for one product: the ledger key, the source, how it is cut, and what the platform needs.

    Travels through XCom as a plain dict (:meth:`as_xcom`, :meth:`from_xcom`); it never holds bytes or
    secrets.
    """

    platform: str
    account: str
    product: str
    content_sha256: str
    label: str
    #: The checked source's real path or URL (credentials never travel in it: see the source policy).
    source: str
    name: str
    size: int
    block_size: int
    title: str
    upload_id: str | None = None
    video_id: str | None = None
    line: int | None = None
    #: The connection the DAG author named to read the source with.
    source_conn_id: str | None = None
    # Lazada
    cover_url: str | None = None
    video_usage: str | None = None
    seller_sku: str | None = None
    item_id: str | None = None
    sku_ids: tuple[str, ...] = ()
    # Huawei VOD (OBS object of the asset)
    bucket: str | None = None
    object_key: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.platform, self.account, self.product, self.content_sha256

    @property
    def plan(self) -> BlockPlan:
        return BlockPlan(self.size, self.block_size)

    def reader(self) -> Source:
        """The source, checked against the deployment's policy again where it is read."""
        return Source.of(self.source, self.source_conn_id)

    def as_xcom(self) -> dict[str, Any]:
        value = asdict(self)
        value["sku_ids"] = list(self.sku_ids)
        return value

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> UploadJob:
        known = {f.name for f in fields(cls)}
        data = {name: item for name, item in value.items() if name in known}
        data["sku_ids"] = tuple(data.get("sku_ids") or ())
        return cls(**data)

    def with_(self, **changes: Any) -> UploadJob:
        return replace(self, **changes)

    def entry(self, ledger: UploadLedger) -> LedgerEntry:
        """The job's ledger row as stored, or a fresh one describing it."""
        stored = ledger.get(*self.key)
        return stored or LedgerEntry(
            *self.key,
            state="planned",
            file_size=self.size,
            source=self.source,
            label=self.label,
            title=self.title,
            block_size=self.block_size,
            block_count=self.plan.count,
        )


class TargetRefused(Exception):
    """A catalog row cannot go to a platform as it is: ``field`` is the manifest column at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class UploadStopped(Exception):
    """The job cannot go on in this run; ``state`` is what the ledger now says and why."""

    def __init__(self, job: UploadJob, state: str, reason: str) -> None:
        super().__init__(f"{job.label}: {reason}")
        self.job = job
        self.state = state
        self.reason = reason


@dataclass(frozen=True)
class RunInfo:
    """The DAG run a step works for, written next to every ledger change."""

    dag_id: str | None = None
    run_id: str | None = None

    @classmethod
    def of(cls, context: Mapping[str, Any]) -> RunInfo:
        dag = context.get("dag")
        return cls(getattr(dag, "dag_id", None), context.get("run_id"))


@dataclass(frozen=True)
class Segment:
    """Blocks ``first..last`` (0-based, inclusive) of one job's upload, inside a chunk."""

    job: UploadJob
    first: int
    last: int

    @property
    def numbers(self) -> range:
        return range(self.first, self.last + 1)

    @property
    def size(self) -> int:
        return sum(self.job.plan.block(number).length for number in self.numbers)


def chunk_payload(
    index: int, count: int, segments: Sequence[Segment], in_flight: int, unit: str = "blocks"
) -> dict[str, Any]:
    """The XCom dict one mapped chunk task receives, with the label the UI shows for it."""
    if len(segments) == 1:
        job, segment = segments[0].job, segments[0]
        label = Chunk(index, count, segment.first, segment.last).label(job.plan, unit)
        if job.line is not None:  # a catalog names the product too
            label = f"{job.label} · {label}"
    else:
        names = (
            f"{segments[0].job.label} … {segments[-1].job.label}"
            if len(segments) > 2
            else (f"{segments[0].job.label}, {segments[1].job.label}")
        )
        size = sum(segment.size for segment in segments)
        label = f"chunk {index + 1}/{count} · {len(segments)} videos: {names} · {_mb(size)}"
    return {
        "index": index,
        "count": count,
        "label": label,
        "in_flight": in_flight,
        "segments": [
            {"job": segment.job.as_xcom(), "first": segment.first, "last": segment.last}
            for segment in segments
        ],
    }


def segments_of(chunk: Mapping[str, Any]) -> list[Segment]:
    return [
        Segment(UploadJob.from_xcom(item["job"]), item["first"], item["last"]) for item in chunk["segments"]
    ]


@dataclass
class ChunkResult:
    """Tags of every block of each segment (sent now or acknowledged before), and the failures."""

    parts: dict[str, list[dict[str, Any]]]
    failures: dict[str, BaseException]
    sent_bytes: int
    sent_blocks: int
    reused_blocks: int
    seconds: float
    #: Videos this chunk committed, by upload id (its blocks were the last ones in).
    videos: dict[str, str] = field(default_factory=dict)


class ProgressLog:
    """The progress lines of a chunk while it uploads: its own bytes, and its videos' as the ledger knows
    them (other chunks of the same video add theirs there)."""

    def __init__(self, name: str, jobs: Sequence[UploadJob], ledger: UploadLedger, logger: Any) -> None:
        self.name = name
        self.jobs = [job for job in jobs if job.upload_id]
        self.ledger = ledger
        self.logger = logger
        self.file_bytes = sum(job.size for job in self.jobs)

    def __call__(self, progress: Progress) -> None:
        eta = progress.eta()
        acked: dict[str, int] = {}
        for platform in {job.platform for job in self.jobs}:
            uploads = [job.upload_id or "" for job in self.jobs if job.platform == platform]
            acked.update(self.ledger.acked_bytes(platform, uploads))
        self.logger.info(
            "%s: %s of %s (%.0f%%) · %s %.0f%% · %.1f MB/s · ETA %s",
            self.name,
            _mb(progress.done) if progress.done else "0 MB",
            _mb(progress.total) if progress.total else "0 MB",
            100 * progress.done / max(progress.total, 1),
            "video" if len(self.jobs) == 1 else "videos",
            100 * sum(acked.values()) / max(self.file_bytes, 1),
            progress.rate / 1_000_000,
            f"{eta:.0f} s" if eta is not None else "?",
        )


def send_chunk(
    chunk: Mapping[str, Any],
    ledger: UploadLedger,
    send: Callable[[UploadJob, BlockTask, bytes], str],
    logger: Any,
    all_sent: Callable[[UploadJob], object] = lambda job: None,
) -> ChunkResult:
    """Send every block of the chunk the platform does not have yet, ``in_flight`` at once.

    Blocks the ledger holds acknowledgements for are not sent again; each new acknowledgement is written
    before the next completion is counted, and ``all_sent`` hears of each upload whose last block of this
    chunk is in. A source that changed since the plan fails its own job.
    """
    segments = segments_of(chunk)
    jobs = {segment.job.upload_id or "": segment.job for segment in segments}
    tasks: list[BlockTask] = []
    known: dict[str, dict[int, tuple[str, int]]] = {}
    failures: dict[str, BaseException] = {}
    for segment in segments:
        job = segment.job
        if not job.upload_id:
            raise ValueError(f"{job.label}: the chunk has no upload id to send to")
        known[job.upload_id] = ledger.acknowledged(job.platform, job.upload_id)
        try:
            source = _unchanged(job)
        except SourceError as exc:
            failures[job.upload_id] = exc
            continue
        for number in segment.numbers:
            if number + 1 not in known[job.upload_id]:
                tasks.append(BlockTask(job.upload_id, source, job.plan.block(number)))
    reused_blocks = sum(
        1
        for segment in segments
        for number in segment.numbers
        if number + 1 in known[segment.job.upload_id or ""]
    )
    report = ProgressLog(chunk["label"], [segment.job for segment in segments], ledger, logger)
    unsent = Counter(task.upload for task in tasks)

    def acknowledge(acks: list[Ack]) -> None:
        for platform in {jobs[ack.task.upload].platform for ack in acks}:  # a catalog chunk may mix them
            ledger.acknowledge(
                platform,
                [
                    (ack.task.upload, ack.task.block.part_number, ack.tag, ack.task.block.length)
                    for ack in acks
                    if jobs[ack.task.upload].platform == platform
                ],
            )
        for ack in acks:
            unsent[ack.task.upload] -= 1
            if not unsent[ack.task.upload]:
                all_sent(jobs[ack.task.upload])

    if reused_blocks:
        logger.info(
            "%s: %d block(s) were acknowledged before and are not sent again; %d to send",
            chunk["label"],
            reused_blocks,
            len(tasks),
        )
    started, start_rss = time.monotonic(), _rss()
    outcome = send_blocks(
        tasks,
        lambda task, data: send(jobs[task.upload], task, data),
        in_flight=int(chunk["in_flight"]),
        acknowledge=acknowledge,
        report=report,
        progress=Progress(sum(task.block.length for task in tasks)),
    )
    failures.update(outcome.failures)
    parts: dict[str, list[dict[str, Any]]] = {}
    for segment in segments:
        upload = segment.job.upload_id or ""
        if upload in failures:
            continue
        tags = {number: tag for number, (tag, _) in known[upload].items()}
        tags.update({number: tag for (owner, number), tag in outcome.tags.items() if owner == upload})
        parts[upload] = [{"partNumber": n + 1, "eTag": tags[n + 1]} for n in segment.numbers]
    seconds = time.monotonic() - started
    sent = outcome.progress.sent
    logger.info(
        "%s: sent %s in %d block(s) in %.1f s (%.1f MB/s), peak memory %.0f MiB (%.0f MiB at start)%s",
        chunk["label"],
        _mb(sent) if sent else "0 bytes",
        len(tasks) - sum(1 for task in tasks if task.upload in failures),
        seconds,
        sent / max(seconds, 1e-6) / 1_000_000,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        start_rss / 2**20,
        f"; {len(failures)} upload(s) failed" if failures else "",
    )
    return ChunkResult(parts, failures, sent, len(tasks), reused_blocks, seconds)


class PlatformSteps:
    """One platform's upload steps on top of the ledger; what every platform shares lives here.

    :meth:`begin` applies the shared rules (:func:`media_upload.steps.rules.decide`) and hands the
    platform's part to :meth:`start`, :meth:`resume`, :meth:`adopt` and :meth:`reconcile`;
    :func:`send_and_finish` sends a chunk's blocks through :meth:`send_block` and finishes (commits) each
    upload whose last block it delivered; :meth:`audited` records the platform's verdict; :meth:`attach`
    puts the video on its product. A platform subclass gives those methods and the facts below.
    """

    #: The ledger's name of the platform, and how messages name it.
    platform: str
    title: str
    #: The hook's "no usable answer" error (the request may or may not have taken effect).
    transport_error: type[Exception]
    #: The hook's "the platform answered no" error.
    api_error: type[Exception]
    #: What the platform calls a byte range in the labels: ``blocks`` or ``parts``.
    unit = "blocks"
    #: What a chunk's label says once it has finished an upload: ``committed video 123``...
    finish_verb = "committed"
    video_noun = "video"
    #: ``module.Class`` of the platform's hook, built from a connection id.
    hook_path: str
    #: ``module.Class`` of the :class:`~media_upload.triggers.base.StateReader` its waits read states with.
    state_reader_path: str
    #: Files must be smaller than this.
    max_file_bytes: int

    @classmethod
    def make_hook(cls, conn_id: str) -> Any:
        from media_upload.platforms import load

        return load(cls.hook_path)(conn_id)

    def __init__(self, hook: Any, ledger: UploadLedger, run: RunInfo, logger: Any, account: str) -> None:
        self.hook = hook
        self.ledger = ledger
        self.run = run
        self.log = logger
        self.account = account
        #: What :meth:`prepare` read in batches (products by SKU or id), for the row checks that follow.
        self.prepared: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A platform's own :meth:`reconcile` is marked, so a commit it settles counts as reconciled."""
        super().__init_subclass__(**kwargs)
        if "reconcile" in cls.__dict__:
            cls.reconcile = _reconciling(cls.__dict__["reconcile"])  # type: ignore[method-assign]

    @property
    def metric_tags(self) -> dict[str, Any]:
        """What this steps' metrics are tagged with: the platform and the connection (never the account)."""
        try:
            conn_id = self.hook.conn_id
        except Exception:  # a metric never stops an upload
            conn_id = None
        return {"platform": self.platform, "conn_id": conn_id}

    def _record(self, entry: LedgerEntry, **changes: Any) -> LedgerEntry:
        stored = self.ledger.record(entry, dag_id=self.run.dag_id, run_id=self.run.run_id, **changes)
        try:
            self._count(entry, stored)
        except Exception:  # a metric never stops an upload
            log.debug("metrics of %s not counted", stored.label, exc_info=True)
        return stored

    def _count(self, before: LedgerEntry, after: LedgerEntry) -> None:
        """The metrics of a row's change of state. Every step's ledger write passes here, so each commit,
        verdict and attachment is counted once, on the transition itself, whichever platform or path made
        it (a reused video has no ``committed_at`` of its own and makes no audit metric)."""
        if before.state == after.state:
            return
        tags = self.metric_tags
        if before.state == COMMIT_UNKNOWN and after.state == COMMITTED:
            metrics.incr(metrics.UPLOADS_COMMITTED, **tags)
            if getattr(_reconcile_calls, "depth", 0):
                metrics.incr(metrics.COMMITS_RECONCILED, **tags)
        if before.state in (COMMITTED, COMMIT_UNKNOWN) and after.committed_at:
            outcome = {AUDITED: "ready", ATTACHED: "ready", REJECTED: "rejected"}.get(after.state)
            if outcome is not None:
                metrics.incr(metrics.VIDEOS_MADE if outcome == "ready" else metrics.VIDEOS_REJECTED, **tags)
                metrics.timing(
                    metrics.AUDIT_WAIT, _since(after.committed_at), platform=self.platform, outcome=outcome
                )
        if after.state == ATTACHED:
            metrics.incr(metrics.VIDEOS_ATTACHED, **tags)

    def record(self, job: UploadJob, **changes: Any) -> LedgerEntry:
        return self._record(job.entry(self.ledger), **changes)

    # -------------------------------------------------------------------- begin

    def decision(self, job: UploadJob, *, upload_again: bool = False) -> Decision:
        """What the shared rules say for ``job``, from its ledger row and the account's rows of its bytes."""
        return decide(
            self.ledger.get(*job.key),
            self.ledger.with_content(self.platform, self.account, job.content_sha256),
            product=job.product,
            size=job.size,
            upload_again=upload_again,
            done_state=self.done_state,
        )

    def begin(self, job: UploadJob, *, upload_again: bool = False) -> UploadJob:
        """Start, resume, settle or skip the upload of ``job``. The returned job has an ``upload_id`` to send
        blocks to, or a ``video_id`` when the platform already has this content for this product.

        Raises :class:`UploadStopped` when the content was rejected before, or when what happened to an
        earlier upload is unknown (a person must choose; ``upload_again`` is that choice).
        """
        decision = self.decision(job, upload_again=upload_again)
        entry = job.entry(self.ledger)
        if decision.action in (Action.ATTACHED, Action.HAS_VIDEO):
            self.log.info(
                "%s: %s already has %s %s for this content (%s)",
                job.label,
                self.title,
                self.video_noun,
                entry.video_id,
                entry.state,
            )
            return self.adopt(job, entry)
        if decision.action == Action.STOP:
            raise UploadStopped(job, decision.state, decision.reason)
        if decision.action == Action.RECONCILE:
            return self.reconcile(self.resumed(job, entry))
        if decision.action == Action.REUSE and decision.entry is not None:
            twin = decision.entry
            self._record(entry, state=COMMITTED, video_id=twin.video_id, reason=decision.reason)
            self.log.info("%s %s", job.label, decision.reason)
            return self.adopt(job, twin)
        if decision.action == Action.RESUME and (resumed := self.resume(job, entry)) is not None:
            return resumed
        if entry.upload_id:
            self.ledger.forget_blocks(self.platform, entry.upload_id)
        return self.start(job, entry)

    def video_of(self, job: UploadJob) -> str | None:
        """The video (or asset) id when the platform has the job's whole video: nothing is left to send or
        commit."""
        entry = self.ledger.get(*job.key)
        return entry.made_video if entry is not None else None

    def start(self, job: UploadJob, entry: LedgerEntry) -> UploadJob:
        """A new upload: the platform's init call(s), recorded as ``uploading`` with its upload id."""
        raise NotImplementedError

    def resume(self, job: UploadJob, entry: LedgerEntry) -> UploadJob | None:
        """The job carrying the stopped upload of ``entry``, or None when the platform cannot resume it."""
        resumed = self.resumed(job, entry)
        self.log.info(
            "%s: resuming upload %s, %d of %d %s already acknowledged",
            job.label,
            entry.upload_id,
            len(self.ledger.acknowledged(self.platform, entry.upload_id or "")),
            resumed.plan.count,
            self.unit,
        )
        self._record(entry, reason=None)
        return resumed

    def resumed(self, job: UploadJob, entry: LedgerEntry) -> UploadJob:
        """``job`` with what the ledger keeps of its upload: ids, and the block size it was cut with."""
        return job.with_(
            upload_id=entry.upload_id, video_id=entry.video_id, block_size=entry.block_size or job.block_size
        )

    def adopt(self, job: UploadJob, entry: LedgerEntry) -> UploadJob:
        """``job`` with the video of ``entry`` (its own row, or another product's with the same bytes)."""
        return job.with_(video_id=entry.video_id, upload_id=entry.upload_id)

    def reconcile(self, job: UploadJob) -> UploadJob:
        """Find out what a finish whose answer was lost did, and settle the row."""
        raise NotImplementedError

    def uploading(self, job: UploadJob, entry: LedgerEntry, **changes: Any) -> LedgerEntry:
        """Record a new upload of ``job``: everything that describes it, and when it started."""
        return self._record(
            entry,
            state=UPLOADING,
            reason=None,
            source=job.source,
            label=job.label,
            title=job.title,
            block_size=job.block_size,
            block_count=job.plan.count,
            upload_started_at=now(),
            **changes,
        )

    # ------------------------------------------------------------------ catalog

    #: The ledger state that ends a video's work here: on its product, or audited on a platform whose
    #: videos go on no product.
    done_state: str = ATTACHED
    #: How OpenLineage names the platform's videos and products (:mod:`media_upload.lineage`); None: unnamed.
    lineage_naming: PlatformNaming | None = None
    #: Whether every path records the end of the audit (``audited``, ``attached`` or ``rejected``), so a
    #: ``committed`` row is one being audited (the view says "auditing").
    records_audit: bool = True
    #: The manifest columns that name a product on this platform, and how a message names them.
    manifest_columns: tuple[str, ...] = ()
    manifest_hint: str = ""

    @classmethod
    def manifest_target(cls, row: ManifestRow, record: Mapping[str, Any]) -> Target | RowProblem | None:
        """The row's product on this platform from its columns; a problem naming the field; None when the
        row does not name one here."""
        raise NotImplementedError

    def prepare(self, targets: Sequence[Target]) -> None:
        """Before a catalog's rows are checked one by one: read what can be read in batches (products by the
        fifty), so checking a row costs no call of its own. A platform without batch reads does nothing."""

    def catalog_job(
        self,
        row: ManifestRow,
        target: Target,
        source: Source,
        info: SourceInfo,
        digests: Mapping[str, Any],
        block_size: int | None,
    ) -> UploadJob:
        """The upload of ``row``'s video to ``target``, with every check this platform makes before an upload
        (limits, the product exists). Raises :class:`TargetRefused` or :class:`SourceError` naming the field."""
        raise NotImplementedError

    def row_job(
        self,
        row: ManifestRow,
        target: Target,
        source: Source,
        info: SourceInfo,
        digests: Mapping[str, Any],
        block_size: int,
        **fields: Any,
    ) -> UploadJob:
        """What every platform's upload of a manifest row holds (its key, source and size), plus ``fields``."""
        return UploadJob(
            platform=target.platform,
            account=self.account,
            product=target.product,
            content_sha256=digests["sha256"].hexdigest(),
            label=target.label,
            source=source.location,
            source_conn_id=source.conn_id,
            name=info.name,
            size=info.size,
            block_size=block_size,
            line=row.line,
            **fields,
        )

    # --------------------------------------------------------------------- send

    def send_block(self, job: UploadJob, task: BlockTask, data: bytes) -> str:
        raise NotImplementedError

    def finish(self, job: UploadJob, *, settle: bool = True) -> UploadJob | None:
        """The commit (or complete and confirm) once per upload, claimed in the ledger first. With
        ``settle=False`` (a chunk task right after the last block) nothing happens unless every block is
        acknowledged, and a finish another task claimed is left to it: returns None then."""
        raise NotImplementedError

    def stop_unless_open(self, job: UploadJob, entry: LedgerEntry) -> None:
        """Raise :class:`UploadStopped` unless the row is still being uploaded, by this job's upload (a task
        of an older run, cleared and run again, must not finish an upload a newer run replaced)."""
        if entry.state not in (UPLOADING, PLANNED):
            raise UploadStopped(
                job, entry.state, f"the ledger says {entry.state}: {entry.reason or 'no reason given'}"
            )
        if job.upload_id and entry.upload_id and entry.upload_id != job.upload_id:
            raise UploadStopped(
                job,
                entry.state,
                f"upload {job.upload_id} was replaced by upload {entry.upload_id} of a newer run; that run finishes it",
            )

    def claim_finish(self, entry: LedgerEntry) -> LedgerEntry | None:
        """Mark the row ``commit_unknown`` before the call that makes the video, so a lost answer is asked
        about and the call is never sent blind again; None when another task claimed it first."""
        return self.ledger.transition(
            entry,
            [UPLOADING, PLANNED],
            state=COMMIT_UNKNOWN,
            committed_at=now(),
            dag_id=self.run.dag_id,
            run_id=self.run.run_id,
        )

    def upload_gone(self, job: UploadJob, exc: BaseException) -> bool:
        """Whether ``exc`` says the platform no longer has the upload (it expired or was aborted)."""
        return False

    def send(self, chunk: Mapping[str, Any]) -> ChunkResult:
        """:func:`send_and_finish` for a chunk of this platform's uploads."""
        return send_and_finish(chunk, {self.platform: self}, self.log)

    def stopped(self, job: UploadJob, exc: BaseException) -> None:
        """Record why a job failed in this run, unless the ledger already knows something more precise."""
        entry = job.entry(self.ledger)
        if entry.state in (PLANNED, UPLOADING):
            self._record(entry, state=FAILED, reason=str(exc)[:1000])

    # ------------------------------------------------------------ audit, attach

    def verdict(self, job: UploadJob, state: str) -> str | None:
        """``ready`` when the platform's state lets the video go on a product, ``failed`` when it never
        will, None while it may still change."""
        raise NotImplementedError

    def final_states(self, job: UploadJob) -> list[str]:
        """The states after which ``job``'s video never changes (a wait ends on them)."""
        raise NotImplementedError

    #: How much each pushed state decides when a video has several (:func:`media_upload.push.latest_states`).
    push_weight: Callable[[str], int] | None = None

    def push_account(self) -> tuple[str, str] | None:
        """Where the connection's pushed states are filed, when it turns push on; None otherwise (and for a
        platform that does not push)."""
        return None

    def pushed_states(self, jobs: Sequence[UploadJob]) -> dict[str, str]:
        """The states the platform already pushed for these jobs' videos (by video id), read from the ledger
        without waiting; none when the connection does not take pushes."""
        if not jobs:  # before the connection: a catalog without this platform's rows may not have one
            return {}
        account = self.push_account()
        if account is None:
            return {}
        from media_upload.push import latest_states

        pushed = self.ledger.pushed_states(video_ids=[job.video_id or "" for job in jobs])
        return latest_states([state for state in pushed if state.account == account], self.push_weight)

    def audited(self, job: UploadJob, state: str) -> str | None:
        """Record the platform's verdict on ``state`` (audited, or rejected with the state); returns it."""
        verdict = self.verdict(job, state)
        entry = job.entry(self.ledger)
        if verdict == "ready" and entry.state not in (AUDITED, ATTACHED):
            self._record(entry, state=AUDITED, reason=None)
        elif verdict == "failed":
            self._record(entry, state=REJECTED, reason=self.rejection(state), finished_at=now())
        return verdict

    def rejection(self, state: str) -> str:
        """The reason a rejected row gives (the report and the view show it)."""
        return f"{self.title} ended the video in {state}"

    def attach(self, job: UploadJob) -> dict[str, Any] | None:
        """Put the job's audited video on its product and record it; None for a platform without products."""
        return None

    def attached(self, job: UploadJob, **details: Any) -> None:
        """Record that the job's video is on its product; ``details`` (the item it went on) are kept."""
        entry = job.entry(self.ledger)
        self._record(
            entry, state=ATTACHED, reason=None, finished_at=now(), details={**entry.details, **details}
        )

    def stopped_attaching(self, job: UploadJob, exc: BaseException) -> None:
        """The product update failed: the row keeps its video (the next run attaches it), with the reason."""
        self.record(job, reason=f"the product update failed: {exc}"[:1000])


def send_and_finish(chunk: Mapping[str, Any], steps: Mapping[str, PlatformSteps], logger: Any) -> ChunkResult:
    """Every block of the chunk the platforms have not acknowledged yet, and the finish (commit) of each
    upload the moment its last block is in, so no video waits for its chunk, or a separate task, to start
    its audit.

    ``steps`` has each platform of the chunk (a catalog chunk may carry several). A source that changed,
    or an upload the platform no longer has, fails that job in the ledger; the next run starts it afresh.
    """
    ledger = next(iter(steps.values())).ledger
    segments = segments_of(chunk)
    entries = ledger.get_many(segment.job.key for segment in segments)
    done = {
        segment.job.upload_id or ""
        for segment in segments
        if (entry := entries.get(segment.job.key)) is not None and entry.made_video
    }
    if done:  # a retried or cleared chunk task: the platform made these videos already
        logger.info("%s: %d upload(s) already done; nothing to send for them", chunk["label"], len(done))
        segments = [s for s in chunk["segments"] if (s["job"].get("upload_id") or "") not in done]
        chunk = {**chunk, "segments": segments}
        if not segments:
            return ChunkResult({}, {}, 0, 0, 0, 0.0)
    videos: dict[str, str] = {}
    refused: dict[str, BaseException] = {}

    def finish(job: UploadJob) -> None:
        platform, upload = steps[job.platform], job.upload_id or ""
        try:
            finished = platform.finish(job, settle=False)
        except platform.transport_error as lost:  # the settling task asks again once every chunk is done
            logger.warning("%s: still no answer (%s); the settle step asks again", job.label, lost)
            return
        except (platform.api_error, UploadStopped) as exc:
            refused[upload] = exc
            return
        if finished is not None and finished.video_id:
            videos[upload] = finished.video_id

    # A video is committed the moment its last block is in, while the chunk's other blocks still go up
    # (several commits at once): its audit starts early, and commits share the call budget with blocks.
    jobs = list({segment.job.upload_id: segment.job for segment in segments_of(chunk)}.values())
    early: dict[str, Future[None]] = {}

    def send_block(job: UploadJob, task: BlockTask, data: bytes) -> str:
        platform = steps[job.platform]
        tags = platform.metric_tags
        with count_retries(metrics.BLOCKS_RETRIED, **tags):
            tag = platform.send_block(job, task, data)
        metrics.incr(metrics.BLOCKS_SENT, **tags)
        metrics.incr(metrics.BYTES_SENT, len(data), **tags)
        return tag

    with ThreadPoolExecutor(max_workers=API_CONCURRENCY, thread_name_prefix="finish") as pool:
        result = send_chunk(
            chunk,
            ledger,
            send_block,
            logger,
            all_sent=lambda job: early.setdefault(job.upload_id or "", pool.submit(finish, job)),
        )
    for future in early.values():
        future.result()
    for job in jobs:
        upload = job.upload_id or ""
        exc = result.failures.get(upload)
        if exc is not None:
            platform = steps[job.platform]
            if isinstance(exc, SourceError) or platform.upload_gone(job, exc):
                platform.stopped(job, exc)
                ledger.forget_blocks(job.platform, upload)
    late = [job for job in jobs if job.upload_id not in early and job.upload_id not in result.failures]
    for outcome in each(late, finish):  # blocks sent by an earlier try, or by another chunk
        if isinstance(outcome, BaseException):
            raise outcome
    result.failures.update(refused)
    result.videos.update(videos)
    return result


_reconcile_calls = threading.local()


def _reconciling(reconcile: Callable[..., R]) -> Callable[..., R]:
    """``reconcile`` marking its thread while it runs: the commit it records was one whose answer was lost."""

    @wraps(reconcile)
    def marked(*args: Any, **kwargs: Any) -> R:
        _reconcile_calls.depth = getattr(_reconcile_calls, "depth", 0) + 1
        try:
            return reconcile(*args, **kwargs)
        finally:
            _reconcile_calls.depth -= 1

    return marked


def _since(stamp: str) -> float:
    """Seconds from a ledger timestamp (ISO 8601, UTC) until now; 0 for one that cannot be read."""
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return 0.0
    return max((datetime.now(UTC) - then.astimezone(UTC)).total_seconds(), 0.0)


def _rss() -> int:
    """This process's resident memory in bytes now (Linux), 0 where that cannot be read."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _unchanged(job: UploadJob) -> Source:
    """The job's source, checked again and still of the size the upload was planned for."""
    source = job.reader()
    size = source.size()
    if size != job.size:
        raise SourceError(
            f"{source} is now {size:,} bytes but the upload was planned for {job.size:,}; "
            "it changed during the upload, so upload it again from the start"
        )
    return source
