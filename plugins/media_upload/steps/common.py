"""What both platforms' upload steps share: the job record, chunk payloads, and sending a chunk.

The operators of both single-video DAGs and of the catalog are thin wiring over these steps. A step
reads the ledger before it acts and writes it as soon as something is known, so a retried task, a
cleared task and a new run all start from what the platform already has.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from media_upload.ledger import FAILED, HAS_VIDEO, PLANNED, UPLOADING, LedgerEntry, UploadLedger
from media_upload.transfer.engine import Ack, BlockTask, Progress, send_blocks
from media_upload.transfer.plan import BlockPlan, Chunk, _mb
from media_upload.transfer.source import Source, SourceError

log = logging.getLogger(__name__)


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
        acked = self.ledger.acked_bytes(self.jobs[0].platform, [job.upload_id or "" for job in self.jobs])
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
) -> ChunkResult:
    """Send every block of the chunk the platform does not have yet, ``in_flight`` at once.

    Blocks the ledger holds acknowledgements for are not sent again; each new acknowledgement is written
    before the next completion is counted. A source that changed since the plan fails its own job.
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
    platform = segments[0].job.platform
    report = ProgressLog(chunk["label"], [segment.job for segment in segments], ledger, logger)

    def acknowledge(acks: list[Ack]) -> None:
        ledger.acknowledge(
            platform,
            [(ack.task.upload, ack.task.block.part_number, ack.tag, ack.task.block.length) for ack in acks],
        )

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
    """What both platforms' steps share: the ledger write that names the run, and a chunk's send followed
    by the finish (commit, or complete and confirm) of each upload whose last block it delivered.

    Subclasses give :meth:`send_block`, :meth:`finish` and the hook's error types.
    """

    platform: str
    #: The hook's "no usable answer" error (the request may or may not have taken effect).
    transport_error: type[Exception]
    #: The hook's "the platform answered no" error.
    api_error: type[Exception]

    def __init__(self, hook: Any, ledger: UploadLedger, run: RunInfo, logger: Any, account: str) -> None:
        self.hook = hook
        self.ledger = ledger
        self.run = run
        self.log = logger
        self.account = account

    def _record(self, entry: LedgerEntry, **changes: Any) -> LedgerEntry:
        return self.ledger.record(entry, dag_id=self.run.dag_id, run_id=self.run.run_id, **changes)

    def send_block(self, job: UploadJob, task: BlockTask, data: bytes) -> str:
        raise NotImplementedError

    def finish(self, job: UploadJob, *, settle: bool = True) -> UploadJob | None:
        raise NotImplementedError

    def upload_gone(self, job: UploadJob, exc: BaseException) -> bool:
        """Whether ``exc`` says the platform no longer has the upload (it expired or was aborted)."""
        return False

    def send(self, chunk: Mapping[str, Any]) -> ChunkResult:
        """Every block of the chunk the platform has not acknowledged yet; then :meth:`finish` for each upload
        whose last block came in, so no video waits for a separate task to start. A source that changed, or
        an upload the platform no longer has, fails that job in the ledger; the next run starts it afresh.
        """
        done = {
            s.job.upload_id or "" for s in segments_of(chunk) if s.job.entry(self.ledger).state in HAS_VIDEO
        }
        if done:  # a retried or cleared chunk task: the platform made these videos already
            self.log.info(
                "%s: %d upload(s) already done; nothing to send for them", chunk["label"], len(done)
            )
            segments = [s for s in chunk["segments"] if (s["job"].get("upload_id") or "") not in done]
            chunk = {**chunk, "segments": segments}
            if not segments:
                return ChunkResult({}, {}, 0, 0, 0, 0.0)
        result = send_chunk(chunk, self.ledger, self.send_block, self.log)
        for job in {segment.job.upload_id: segment.job for segment in segments_of(chunk)}.values():
            upload = job.upload_id or ""
            exc = result.failures.get(upload)
            if exc is not None:
                if isinstance(exc, SourceError) or self.upload_gone(job, exc):
                    self.stopped(job, exc)
                    self.ledger.forget_blocks(self.platform, upload)
                continue
            try:
                finished = self.finish(job, settle=False)
            except self.transport_error as lost:  # the settling task asks again once every chunk is done
                self.log.warning("%s: still no answer (%s); the next step settles it", job.label, lost)
                continue
            except (self.api_error, UploadStopped) as refused:
                result.failures[upload] = refused
                continue
            if finished is not None and finished.video_id:
                result.videos[upload] = finished.video_id
        return result

    def stopped(self, job: UploadJob, exc: BaseException) -> None:
        """Record why a job failed in this run, unless the ledger already knows something more precise."""
        entry = job.entry(self.ledger)
        if entry.state in (PLANNED, UPLOADING):
            self._record(entry, state=FAILED, reason=str(exc)[:1000])


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
