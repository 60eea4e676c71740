"""Planning a catalog batch, without I/O: the videos of the checked rows + what the ledger says + limits →
what to do with each.

The plan operator reads the manifest, the sources, the products and the ledger; this module only decides,
with the rules every upload shares (:func:`media_upload.steps.rules.decide`), so every rule is tested on
plain values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from media_upload.ledger import ATTACHED, LedgerEntry
from media_upload.steps.common import Segment, UploadJob, chunk_payload
from media_upload.steps.rules import Action, decide
from media_upload.transfer.plan import BlockPlan, catalog_in_flight

#: A ledger row's key: (platform, account, product, content SHA-256); content rows: (platform, account, SHA).
Key = tuple[str, str, str, str]
ContentKey = tuple[str, str, str]


@dataclass(frozen=True)
class Skip:
    line: int
    label: str
    reason: str
    platform: str = ""


@dataclass
class Batch:
    """What one run does with the videos it holds (one per row and platform).

    ``uploads`` go up (begin decides between a new upload, resuming one and settling a lost commit);
    ``ready`` already have a video (an earlier run made it, or the same bytes are a video of another
    product) and only need the wait and the attach; ``followers`` are products whose bytes an upload of
    this batch carries, on the same platform.
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
    jobs: Sequence[UploadJob],
    stored: Mapping[Key, LedgerEntry],
    by_content: Mapping[ContentKey, Sequence[LedgerEntry]],
    *,
    limit: int,
    upload_again: bool = False,
    done_states: Mapping[str, str] | None = None,
) -> Batch:
    """Decide each video in manifest order until ``limit`` videos are held; the rows after are deferred
    (a row's videos stay together).

    :param stored: the ledger rows of the jobs' keys.
    :param by_content: every ledger row of each (platform, account, content hash) the jobs have.
    :param upload_again: upload content whose earlier upload needs attention (a person chose to).
    :param done_states: each platform's state that ends a video's work, when not ``attached``.
    """
    batch = Batch()
    leaders: dict[ContentKey, UploadJob] = {}
    lines = sorted({job.line or 0 for job in jobs})
    for line in lines:
        if batch.size >= limit:
            batch.deferred_lines = [later for later in lines if later >= line]
            break
        for job in (job for job in jobs if (job.line or 0) == line):
            content = (job.platform, job.account, job.content_sha256)
            decision = decide(
                stored.get(job.key),
                by_content.get(content, ()),
                product=job.product,
                size=job.size,
                upload_again=upload_again,
                done_state=(done_states or {}).get(job.platform, ATTACHED),
            )
            if decision.action in (Action.ATTACHED, Action.STOP):
                batch.skipped.append(Skip(line, job.label, decision.reason, job.platform))
            elif decision.action == Action.HAS_VIDEO and decision.entry is not None:
                batch.ready.append(job.with_(video_id=decision.entry.video_id))
            elif decision.action == Action.REUSE and decision.entry is not None:
                twin = decision.entry
                batch.ready.append(
                    job.with_(
                        video_id=twin.video_id, details={**job.details, "reuses": twin.label or twin.product}
                    )
                )
            elif content in leaders:
                batch.followers.append((job, leaders[content]))
            else:
                leaders[content] = job
                batch.uploads.append(job)
    return batch


def pack_chunks(jobs: Sequence[UploadJob], chunks: int, in_flight: int | None) -> list[dict[str, object]]:
    """The blocks of ``jobs`` (each with its ``upload_id``) in at most ``chunks`` chunk tasks of about equal
    bytes, in manifest order; a large video may span chunks, a small one shares a chunk with others. Each
    sends ``in_flight`` blocks at once (by default :func:`catalog_in_flight` for these blocks)."""
    blocks = [(job, block) for job in jobs for block in BlockPlan(job.size, job.block_size).blocks]
    if not blocks:
        return []
    count = min(chunks, len(blocks))
    in_flight = in_flight or catalog_in_flight([block.length for _, block in blocks], count)
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
