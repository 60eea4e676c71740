"""Planning a catalog batch, without I/O: checked rows + what the ledger says + limits → what to do.

The plan operator reads the manifest, the sources, the products and the ledger; this module only
decides, so every rule is tested on plain values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from media_upload.catalog.manifest import ManifestRow
from media_upload.ledger import ATTACHED, HAS_VIDEO, NEEDS_ATTENTION, REJECTED, LedgerEntry
from media_upload.steps.common import Segment, UploadJob, chunk_payload
from media_upload.transfer.plan import BlockPlan
from media_upload.transfer.source import Source

PLATFORM = "lazada"


@dataclass(frozen=True)
class Candidate:
    """A manifest row whose video was checked and hashed and whose product was found on Lazada."""

    row: ManifestRow
    source: Source
    name: str
    size: int
    content_sha256: str
    block_size: int
    item_id: str
    sku_ids: tuple[str, ...]

    def job(self, account: str) -> UploadJob:
        row = self.row
        return UploadJob(
            platform=PLATFORM,
            account=account,
            product=row.product,
            content_sha256=self.content_sha256,
            label=row.label,
            source=self.source.location,
            source_conn_id=self.source.conn_id,
            name=self.name,
            size=self.size,
            block_size=self.block_size,
            title=row.title,
            line=row.line,
            cover_url=row.cover_url,
            video_usage=row.video_usage or "pro_main_video",
            seller_sku=row.seller_sku,
            item_id=self.item_id,
            sku_ids=self.sku_ids,
        )


@dataclass(frozen=True)
class Skip:
    line: int
    label: str
    reason: str


@dataclass
class Batch:
    """What one run does with the candidates it holds.

    ``uploads`` go up (begin decides between a new upload and resuming one); ``ready`` already have a
    video (an earlier run committed it, or the same bytes are a video of another product) and only need
    the audit and the attach; ``followers`` are products whose bytes an upload of this batch carries.
    """

    uploads: list[UploadJob] = field(default_factory=list)
    ready: list[UploadJob] = field(default_factory=list)
    followers: list[tuple[UploadJob, UploadJob]] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    deferred_lines: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.uploads) + len(self.ready) + len(self.followers)


def plan_batch(
    candidates: Sequence[Candidate],
    stored: Mapping[tuple[str, str, str, str], LedgerEntry],
    by_content: Mapping[str, Sequence[LedgerEntry]],
    *,
    account: str,
    limit: int,
    upload_again: bool = False,
) -> Batch:
    """Decide each candidate in manifest order until ``limit`` videos are held; the rest is deferred.

    :param stored: the ledger rows of the candidates' keys.
    :param by_content: every ledger row of the account, by content hash (for reuse across products).
    :param upload_again: upload content whose earlier upload needs attention (a person chose to).
    """
    batch = Batch()
    leaders: dict[str, UploadJob] = {}
    for index, candidate in enumerate(candidates):
        if batch.size >= limit:
            batch.deferred_lines = [later.row.line for later in candidates[index:]]
            break
        job = candidate.job(account)
        entry = stored.get(job.key)
        label = candidate.row.label
        if entry is not None and entry.state == ATTACHED:
            batch.skipped.append(Skip(candidate.row.line, label, f"already carries video {entry.video_id}"))
        elif entry is not None and entry.state == REJECTED:
            batch.skipped.append(
                Skip(
                    candidate.row.line,
                    label,
                    f"this content was rejected before ({entry.reason}); change the video",
                )
            )
        elif entry is not None and entry.state == NEEDS_ATTENTION and not upload_again:
            batch.skipped.append(Skip(candidate.row.line, label, f"needs attention: {entry.reason}"))
        elif entry is not None and entry.state in HAS_VIDEO and entry.video_id:
            batch.ready.append(job.with_(video_id=entry.video_id))
        elif (refused := _rejected_content(by_content.get(job.content_sha256, ()))) is not None:
            batch.skipped.append(
                Skip(
                    candidate.row.line,
                    label,
                    f"these bytes were rejected for {refused.label or refused.product} ({refused.reason}); change the video",
                )
            )
        elif (twin := _video_of_content(by_content.get(job.content_sha256, ()), job)) is not None:
            batch.ready.append(
                job.with_(video_id=twin.video_id, details={"reuses": twin.label or twin.product})
            )
        elif job.content_sha256 in leaders:
            batch.followers.append((job, leaders[job.content_sha256]))
        else:
            leaders[job.content_sha256] = job
            batch.uploads.append(job)
    return batch


def _rejected_content(entries: Sequence[LedgerEntry]) -> LedgerEntry | None:
    """A rejection of the same bytes for any product: the audit judges the video, so it would say no again."""
    return next((entry for entry in entries if entry.state == REJECTED), None)


def _video_of_content(entries: Sequence[LedgerEntry], job: UploadJob) -> LedgerEntry | None:
    for entry in entries:
        if entry.product != job.product and entry.video_id and entry.state in HAS_VIDEO:
            return entry
    return None


def pack_chunks(jobs: Sequence[UploadJob], chunks: int, in_flight: int) -> list[dict[str, object]]:
    """The blocks of ``jobs`` (each with its ``upload_id``) in at most ``chunks`` chunk tasks of about equal
    bytes, in manifest order; a large video may span chunks, a small one shares a chunk with others."""
    blocks = [(job, block) for job in jobs for block in BlockPlan(job.size, job.block_size).blocks]
    if not blocks:
        return []
    count = min(chunks, len(blocks))
    total = sum(block.length for _, block in blocks)
    payloads: list[list[Segment]] = [[] for _ in range(count)]
    filled = 0
    for job, block in blocks:
        index = min(count - 1, filled * count // total)
        filled += block.length
        segments = payloads[index]
        if segments and segments[-1].job is job and segments[-1].last == block.number - 1:
            segments[-1] = Segment(job, segments[-1].first, block.number)
        else:
            segments.append(Segment(job, block.number, block.number))
    used = [segments for segments in payloads if segments]
    return [chunk_payload(index, len(used), segments, in_flight) for index, segments in enumerate(used)]
