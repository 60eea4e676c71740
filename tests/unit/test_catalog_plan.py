"""Planning a catalog batch on plain values: what each ledger row means for a manifest row, the batch
limit, and how the blocks of many videos are packed into chunk tasks."""

from __future__ import annotations

import itertools

import pytest

from media_upload.catalog.plan import Skip, pack_chunks, plan_batch
from media_upload.ledger import (
    ATTACHED,
    AUDITED,
    COMMIT_UNKNOWN,
    COMMITTED,
    FAILED,
    NEEDS_ATTENTION,
    PLANNED,
    REJECTED,
    UPLOADING,
    LedgerEntry,
)
from media_upload.steps.common import UploadJob
from media_upload.transfer.plan import BlockPlan

PLATFORM = "lazada"
ACCOUNT = "seller-1"
COVER = "https://sg-live-01.slatic.net/p/cover.png"
MB = 1_000_000


def candidate(
    line: int,
    sku: str,
    content: str = "",
    size: int = 5 * MB,
    block_size: int = 3 * MB,
    platform: str = PLATFORM,
) -> UploadJob:
    """A checked row's video for one platform, as the plan operator makes it."""
    return UploadJob(
        platform=platform,
        account=ACCOUNT,
        product=f"sku:{sku}",
        content_sha256=content or f"sha-{sku}",
        label=sku,
        source=f"/videos/{sku}.mp4",
        name=f"{sku}.mp4",
        size=size,
        block_size=block_size,
        title=f"{sku} video",
        line=line,
        cover_url=COVER,
        video_usage="pro_main_video",
        seller_sku=sku,
        item_id=f"item-{sku}",
        sku_ids=(f"sku-id-{sku}",),
    )


def entry(c: UploadJob, state: str, **fields) -> LedgerEntry:
    return LedgerEntry(c.platform, ACCOUNT, c.product, c.content_sha256, state, label=c.label, **fields)


def plan(candidates, entries=(), *, limit=100, upload_again=False, others=()):
    """``entries`` are the candidates' own rows; ``others`` rows of other products of the account."""
    stored = {e.key: e for e in entries}
    by_content: dict[tuple[str, str, str], list[LedgerEntry]] = {}
    for e in (*entries, *others):
        by_content.setdefault((e.platform, e.account, e.content_sha256), []).append(e)
    return plan_batch(candidates, stored, by_content, limit=limit, upload_again=upload_again)


def labels(jobs) -> list[str]:
    return [job.label for job in jobs]


# --- decisions from the ledger -------------------------------------------------------------------------


def test_no_ledger_row_means_upload():
    a, b = candidate(2, "a"), candidate(3, "b")
    batch = plan([a, b])
    assert batch.uploads == [a, b]
    assert (batch.ready, batch.followers, batch.skipped, batch.deferred_lines) == ([], [], [], [])
    job = batch.uploads[0]
    assert job.key == (PLATFORM, ACCOUNT, "sku:a", "sha-a")
    assert (job.line, job.seller_sku, job.item_id, job.sku_ids) == (2, "a", "item-a", ("sku-id-a",))
    assert job.video_usage == "pro_main_video" and job.video_id is None


def test_attached_is_skipped_with_its_video():
    a = candidate(2, "a")
    batch = plan([a], [entry(a, ATTACHED, video_id="777")])
    assert batch.skipped == [Skip(2, "a", "already carries video 777", PLATFORM)]
    assert batch.size == 0


def test_rejected_is_skipped_with_the_reason():
    a = candidate(4, "a")
    batch = plan([a], [entry(a, REJECTED, video_id="5", reason="AUDIT_FAILED: logo")])
    assert len(batch.skipped) == 1
    skip = batch.skipped[0]
    assert (skip.line, skip.label) == (4, "a")
    assert "rejected" in skip.reason and "AUDIT_FAILED: logo" in skip.reason
    assert batch.size == 0


def test_needs_attention_is_skipped():
    a = candidate(2, "a")
    batch = plan([a], [entry(a, NEEDS_ATTENTION, upload_id="up-1", reason="commit answer lost twice")])
    assert batch.skipped == [Skip(2, "a", "needs attention: commit answer lost twice", PLATFORM)]
    assert batch.uploads == []


def test_needs_attention_is_uploaded_again_when_a_person_asks():
    a = candidate(2, "a")
    batch = plan([a], [entry(a, NEEDS_ATTENTION, reason="x")], upload_again=True)
    assert batch.skipped == []
    assert labels(batch.uploads) == ["a"]


@pytest.mark.parametrize("state", [ATTACHED, REJECTED])
def test_upload_again_does_not_touch_attached_or_rejected(state):
    a = candidate(2, "a")
    batch = plan([a], [entry(a, state, video_id="9", reason="r")], upload_again=True)
    assert [s.line for s in batch.skipped] == [2]
    assert batch.size == 0


@pytest.mark.parametrize("state", [COMMITTED, AUDITED])
def test_a_committed_or_audited_video_is_ready(state):
    """The video exists already: audit and attach only, nothing is sent."""
    a = candidate(2, "a")
    batch = plan([a], [entry(a, state, video_id="4242")])
    assert batch.uploads == [] and batch.skipped == []
    assert batch.ready == [a.with_(video_id="4242")]


@pytest.mark.parametrize("state", [PLANNED, UPLOADING, COMMIT_UNKNOWN, FAILED])
def test_unfinished_rows_are_uploads_for_begin_to_resume(state):
    a = candidate(2, "a")
    batch = plan([a], [entry(a, state, upload_id="up-1")])
    assert labels(batch.uploads) == ["a"]
    assert batch.ready == [] and batch.skipped == []


@pytest.mark.parametrize("state", [COMMITTED, AUDITED, ATTACHED])
def test_same_content_on_another_product_is_reused(state):
    """Another product of the account already has a video of these bytes: this one reuses it."""
    a = candidate(2, "a", content="same")
    other = LedgerEntry(PLATFORM, ACCOUNT, "sku:older", "same", state, video_id="31", label="older")
    batch = plan([a], others=[other])
    assert batch.uploads == []
    assert batch.ready == [a.with_(video_id="31", details={"reuses": "older"})]


def test_reuse_names_the_product_when_the_row_has_no_label():
    a = candidate(2, "a", content="same")
    other = LedgerEntry(PLATFORM, ACCOUNT, "item:99", "same", COMMITTED, video_id="31")
    assert plan([a], others=[other]).ready[0].details == {"reuses": "item:99"}


@pytest.mark.parametrize(
    "other",
    [
        LedgerEntry(PLATFORM, ACCOUNT, "sku:older", "same", UPLOADING, upload_id="u"),
        LedgerEntry(PLATFORM, ACCOUNT, "sku:older", "same", COMMITTED),  # no video id known
        LedgerEntry(PLATFORM, ACCOUNT, "sku:older", "same", NEEDS_ATTENTION, video_id="31"),
    ],
    ids=["uploading", "no-video", "needs-attention"],
)
def test_no_reuse_without_a_good_video(other):
    a = candidate(2, "a", content="same")
    batch = plan([a], others=[other])
    assert labels(batch.uploads) == ["a"] and batch.ready == []


def test_bytes_rejected_for_another_product_are_not_uploaded_again():
    """The audit judges the video, not the product: the same bytes would be refused again."""
    other = LedgerEntry(
        PLATFORM, ACCOUNT, "sku:older", "same", REJECTED, video_id="31", label="older", reason="no"
    )
    batch = plan([candidate(2, "a", content="same")], others=[other])
    assert batch.uploads == [] and batch.ready == []
    assert [(skip.label, skip.reason) for skip in batch.skipped] == [
        ("a", "these bytes were rejected for older (no); change the video")
    ]


def test_the_same_content_twice_in_a_batch_is_one_upload_and_a_follower():
    a, b, c = candidate(2, "a", content="same"), candidate(3, "b"), candidate(5, "c", content="same")
    batch = plan([a, b, c])
    assert labels(batch.uploads) == ["a", "b"]
    assert batch.followers == [(c, a)]
    assert batch.size == 3


def test_a_stored_video_beats_a_leader_of_the_same_content():
    """The first row of the content already has a video: the second reuses it instead of uploading."""
    a, b = candidate(2, "a", content="same"), candidate(3, "b", content="same")
    batch = plan([a, b], [entry(a, AUDITED, video_id="8")])
    assert [job.video_id for job in batch.ready] == ["8", "8"]
    assert batch.ready[1].details == {"reuses": "a"}
    assert batch.uploads == [] and batch.followers == []


# --- the limit -----------------------------------------------------------------------------------------


def test_videos_past_the_limit_are_deferred_in_manifest_order():
    cands = [candidate(line, f"p{line}") for line in (2, 3, 5, 8, 9, 12)]
    batch = plan(cands, limit=3)
    assert labels(batch.uploads) == ["p2", "p3", "p5"]
    assert batch.deferred_lines == [8, 9, 12]


def test_the_limit_counts_ready_and_followers_not_skipped_rows():
    a, b, c = candidate(2, "a"), candidate(3, "b"), candidate(4, "c", content="sha-a")
    d, e, f = candidate(5, "d"), candidate(6, "e"), candidate(7, "f")
    entries = [entry(b, ATTACHED, video_id="1"), entry(d, COMMITTED, video_id="2")]
    batch = plan([a, b, c, d, e, f], entries, limit=3)
    assert labels(batch.uploads) == ["a"]
    assert [follower.label for follower, _ in batch.followers] == ["c"]
    assert labels(batch.ready) == ["d"]
    assert [s.line for s in batch.skipped] == [3]
    assert batch.size == 3
    assert batch.deferred_lines == [6, 7]


def test_nothing_deferred_when_everything_fits():
    cands = [candidate(line, f"p{line}") for line in range(2, 6)]
    assert plan(cands, limit=4).deferred_lines == []


# --- packing blocks into chunks ------------------------------------------------------------------------


def jobs_of(*sizes: int, block_size: int = 3 * MB) -> list[UploadJob]:
    return [
        candidate(line, f"sku-{line}", size=size, block_size=block_size).with_(upload_id=f"up-{line}")
        for line, size in enumerate(sizes, start=2)
    ]


def blocks_in(payload) -> list[tuple[str, int]]:
    return [
        (segment["job"]["product"], number)
        for segment in payload["segments"]
        for number in range(segment["first"], segment["last"] + 1)
    ]


def bytes_in(payload) -> int:
    total = 0
    for segment in payload["segments"]:
        plan_ = BlockPlan(segment["job"]["size"], segment["job"]["block_size"])
        total += sum(plan_.block(n).length for n in range(segment["first"], segment["last"] + 1))
    return total


def all_blocks(jobs) -> list[tuple[str, int]]:
    return [(job.product, block.number) for job in jobs for block in job.plan.blocks]


@pytest.mark.parametrize(
    ("sizes", "chunks"),
    [
        ((95 * MB,), 4),
        ((95 * MB, 1 * MB, 2 * MB, 40 * MB), 4),
        ((1 * MB, 1 * MB, 1 * MB), 4),
        ((10 * MB, 500_000, 70 * MB, 3 * MB, 3 * MB, 25 * MB), 3),
        ((99_999_999,) * 5, 4),
        ((7 * MB, 7 * MB), 1),
        ((30 * MB,), 16),
    ],
)
def test_every_block_once_in_order_in_at_most_chunks_of_about_equal_bytes(sizes, chunks):
    jobs = jobs_of(*sizes)
    payloads = pack_chunks(jobs, chunks, in_flight=4)
    assert 1 <= len(payloads) <= chunks
    # every block of every job exactly once, in manifest order then block order
    assert [block for payload in payloads for block in blocks_in(payload)] == all_blocks(jobs)
    total = sum(sizes)
    biggest = max(job.block_size for job in jobs)
    for payload in payloads:
        assert abs(bytes_in(payload) - total / len(payloads)) <= biggest
    assert [p["index"] for p in payloads] == list(range(len(payloads)))
    assert {p["count"] for p in payloads} == {len(payloads)}
    assert {p["in_flight"] for p in payloads} == {4}


@pytest.mark.parametrize(
    ("size", "count", "block_size", "chunks", "in_flight"),
    [
        (300_000, 1_000, 3 * MB, 4, 8),  # small videos: 32 blocks in the air, whatever the chunk count
        (300_000, 1_000, 3 * MB, 1, 32),
        (3 * MB, 100, 3 * MB, 4, 3),  # 13 blocks of 3 MB in the air
        (30 * MB, 4, 5 * MB, 4, 2),  # full-size blocks: the chunks share eight, as a single upload's do
    ],
)
def test_small_blocks_go_more_at_once_within_the_same_memory(size, count, block_size, chunks, in_flight):
    payloads = pack_chunks(jobs_of(*[size] * count, block_size=block_size), chunks, in_flight=None)
    assert {payload["in_flight"] for payload in payloads} == {in_flight}
    assert in_flight * len(payloads) * min(size, block_size) <= 40 * MB


def test_segments_carry_the_whole_job():
    jobs = jobs_of(10 * MB)
    (payload,) = pack_chunks(jobs, 1, in_flight=8)
    assert [UploadJob.from_xcom(s["job"]) for s in payload["segments"]] == jobs
    assert payload["segments"][0]["job"]["upload_id"] == "up-2"


def test_a_big_video_spans_chunks():
    jobs = jobs_of(1 * MB, 90 * MB, 1 * MB)
    payloads = pack_chunks(jobs, 4, in_flight=2)
    spanned = [p for p in payloads if any(s["job"]["product"] == "sku:sku-3" for s in p["segments"])]
    assert len(spanned) == len(payloads) == 4
    # its segments in different chunks are consecutive runs that meet
    runs = [
        (s["first"], s["last"]) for p in spanned for s in p["segments"] if s["job"]["product"] == "sku:sku-3"
    ]
    assert runs[0][0] == 0 and runs[-1][1] == 29
    assert all(later[0] == earlier[1] + 1 for earlier, later in itertools.pairwise(runs))


def test_small_videos_share_one_chunk():
    jobs = jobs_of(1 * MB, 2 * MB, 500_000)
    payloads = pack_chunks(jobs, 1, in_flight=8)
    assert len(payloads) == 1
    assert [(s["job"]["label"], s["first"], s["last"]) for s in payloads[0]["segments"]] == [
        ("sku-2", 0, 0),
        ("sku-3", 0, 0),
        ("sku-4", 0, 0),
    ]


def test_a_video_is_one_segment_per_chunk():
    """Consecutive blocks of a job in one chunk are one segment, not one per block."""
    jobs = jobs_of(30 * MB, 3 * MB)
    (payload,) = pack_chunks(jobs, 1, in_flight=8)
    assert [(s["job"]["label"], s["first"], s["last"]) for s in payload["segments"]] == [
        ("sku-2", 0, 9),
        ("sku-3", 0, 0),
    ]


def test_never_more_chunks_than_blocks():
    payloads = pack_chunks(jobs_of(1 * MB, 1 * MB), 10, in_flight=1)
    assert len(payloads) == 2
    assert [blocks_in(p) for p in payloads] == [[("sku:sku-2", 0)], [("sku:sku-3", 0)]]


def test_labels_name_the_skus():
    one = pack_chunks(jobs_of(24 * MB, block_size=3 * MB), 1, in_flight=8)
    assert one[0]["label"] == "sku-2 · chunk 1/1 · blocks 1–8 · 24 MB"
    two = pack_chunks(jobs_of(1 * MB, 2 * MB), 1, in_flight=8)
    assert two[0]["label"] == "chunk 1/1 · 2 videos: sku-2, sku-3 · 3.0 MB"
    many = pack_chunks(jobs_of(1 * MB, 2 * MB, 500_000, 1 * MB), 1, in_flight=8)
    assert many[0]["label"] == "chunk 1/1 · 4 videos: sku-2 … sku-5 · 4.5 MB"
    spread = pack_chunks(jobs_of(95 * MB, block_size=2_968_750), 2, in_flight=4)
    assert [p["label"] for p in spread] == [
        "sku-2 · chunk 1/2 · blocks 1–16 · 48 MB",
        "sku-2 · chunk 2/2 · blocks 17–32 · 48 MB",
    ]


def test_no_payload_when_there_is_nothing_to_send():
    assert pack_chunks([], 4, in_flight=8) == []


def test_no_empty_chunk_task_when_one_block_outweighs_a_share():
    """A 10 MB block is more than a third of 12 MB: the share it jumps over is not sent as an empty task,
    and the chunks left are numbered without a gap."""
    big = candidate(2, "big", size=10 * MB, block_size=10 * MB)
    small = [candidate(line, f"s{line}", size=1 * MB, block_size=1 * MB) for line in (3, 4)]
    payloads = pack_chunks([big, *small], 3, in_flight=2)
    assert [blocks_in(p) for p in payloads] == [[("sku:big", 0)], [("sku:s3", 0), ("sku:s4", 0)]]
    assert [(p["index"], p["count"]) for p in payloads] == [(0, 2), (1, 2)]
    assert [p["label"] for p in payloads] == [
        "big · chunk 1/2 · block 1 · 10 MB",
        "chunk 2/2 · 2 videos: s3, s4 · 2.0 MB",
    ]


# --- several marketplaces ------------------------------------------------------------------------------


def test_the_same_bytes_go_to_each_marketplace_once():
    """A row listed on Lazada and Shopee is two uploads of the same bytes; a twin row follows on each."""
    a_l, a_s = candidate(2, "a", content="same"), candidate(2, "a", content="same", platform="shopee")
    b_l, b_s = candidate(3, "b", content="same"), candidate(3, "b", content="same", platform="shopee")
    batch = plan([a_l, a_s, b_l, b_s])
    assert [(job.platform, job.label) for job in batch.uploads] == [("lazada", "a"), ("shopee", "a")]
    assert [(f.platform, f.label, leader.platform) for f, leader in batch.followers] == [
        ("lazada", "b", "lazada"),
        ("shopee", "b", "shopee"),
    ]


def test_a_rejection_on_one_marketplace_does_not_stop_another():
    a_l, a_s = candidate(2, "a"), candidate(2, "a", platform="shopee")
    batch = plan([a_l, a_s], [entry(a_l, REJECTED, video_id="5", reason="AUDIT_FAILED")])
    assert [(s.platform, s.line) for s in batch.skipped] == [("lazada", 2)]
    assert [(job.platform, job.label) for job in batch.uploads] == [("shopee", "a")]


def test_a_rows_videos_stay_in_one_batch():
    """The limit counts videos on every platform, and never splits a row's marketplaces across batches."""
    rows = [
        (candidate(line, f"p{line}"), candidate(line, f"p{line}", platform="shopee")) for line in (2, 3, 4)
    ]
    batch = plan([job for pair in rows for job in pair], limit=3)
    assert [(job.line, job.platform) for job in batch.uploads] == [
        (2, "lazada"),
        (2, "shopee"),
        (3, "lazada"),
        (3, "shopee"),
    ]
    assert batch.deferred_lines == [4]
