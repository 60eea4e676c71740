"""The planner: every size and count limit of both platforms, default blocks, chunks and their labels."""

from __future__ import annotations

import random

import pytest

from media_upload.protocols.huawei_vod import PART_RULES
from media_upload.protocols.lazada import BLOCK_RULES
from media_upload.transfer.errors import SourceError
from media_upload.transfer.plan import SPLIT_FLOOR_BYTES, BlockPlan, Chunk, plan_chunks, plan_upload

MB = 1_000_000
RULES = pytest.mark.parametrize("rules", [BLOCK_RULES, PART_RULES], ids=["lazada", "obs"])


def lengths(plan) -> list[int]:
    return [block.length for block in plan.blocks.blocks]


def covered(chunks) -> list[int]:
    return [number for chunk in chunks for number in range(chunk.first, chunk.last + 1)]


# --- block lengths ------------------------------------------------------------------------------------


@RULES
@pytest.mark.parametrize(
    ("size", "block", "expected"),
    [
        (1_000_000, 300_000, [300_000, 300_000, 300_000, 100_000]),
        (1_000_001, 250_000, [250_000] * 4 + [1]),
        (1_000_000, 250_000, [250_000] * 4),
        (900_000, 900_000, [900_000]),
        (900_000, 5_000_000, [900_000]),
    ],
)
def test_last_block_is_the_remainder_and_exact_multiples_have_no_short_block(rules, size, block, expected):
    """Blocks are the given size and tile the file; only the last is shorter, and only when it must be."""
    plan = plan_upload("v.mp4", size, rules, block_size=block)
    assert lengths(plan) == expected
    assert [b.offset for b in plan.blocks.blocks] == [sum(expected[:i]) for i in range(len(expected))]
    assert sum(lengths(plan)) == size


@RULES
def test_a_one_byte_file_is_one_block_of_one_byte(rules):
    """The smallest file goes up as a single one-byte block, by default and when a size is given."""
    for block_size in (None, 1, 3_000_000):
        plan = plan_upload("tiny.mp4", 1, rules, block_size=block_size)
        assert lengths(plan) == [1]
        assert [(c.first, c.last) for c in plan.chunks] == [(0, 0)]


# --- Lazada's file and block limits --------------------------------------------------------------------


def test_lazada_takes_99_999_999_bytes():
    """ "Less than 100M" read strictly: the largest file allowed is one byte under 10**8."""
    plan = plan_upload("big.mp4", 99_999_999, BLOCK_RULES)
    assert sum(lengths(plan)) == 99_999_999
    assert max(lengths(plan)) < 3_000_000


@pytest.mark.parametrize("size", [100_000_000, 100_000_001])
def test_lazada_refuses_100_000_000_bytes_naming_file_and_limit(size):
    with pytest.raises(SourceError) as refused:
        plan_upload("/videos/big.mp4", size, BLOCK_RULES)
    message = str(refused.value)
    assert "/videos/big.mp4" in message
    assert f"{size:,} bytes" in message
    assert "under 100,000,000 bytes" in message and "99,999,999" in message


@RULES
def test_empty_file_is_refused(rules):
    with pytest.raises(SourceError, match=r"empty\.mp4 is empty"):
        plan_upload("empty.mp4", 0, rules)


def test_lazada_blocks_up_to_10_000_000_bytes():
    """ "Max 10 MB" per block read strictly as 10**7 bytes, inclusive; one more byte is refused."""
    plan = plan_upload("v.mp4", 45_000_000, BLOCK_RULES, block_size=10_000_000)
    assert lengths(plan) == [10_000_000] * 4 + [5_000_000]
    for size in (45_000_000, 5_000_000):  # a block larger than the whole file is still a block
        with pytest.raises(SourceError) as refused:
            plan_upload("v.mp4", size, BLOCK_RULES, block_size=10_000_001)
        assert "block size 10,000,001" in str(refused.value)
        assert "10,000,000" in str(refused.value) and "Lazada" in str(refused.value)


def test_lazada_has_no_minimum_block_or_block_count():
    plan = plan_upload("v.mp4", 2_000_000, BLOCK_RULES, block_size=1_000)
    assert plan.blocks.count == 2_000


# --- OBS part limits -----------------------------------------------------------------------------------


def test_obs_refuses_small_parts_that_are_not_the_last():
    """Every part but the last needs 100 KB (102,400 bytes)."""
    assert lengths(plan_upload("v.mp4", 300_000, PART_RULES, block_size=102_400)) == [
        102_400,
        102_400,
        95_200,
    ]
    with pytest.raises(SourceError) as refused:
        plan_upload("v.mp4", 300_000, PART_RULES, block_size=102_399)
    assert "part size 102,399" in str(refused.value)
    assert "102,400" in str(refused.value) and "OBS" in str(refused.value)


@pytest.mark.parametrize(("size", "part"), [(50_000, 50_000), (50_000, 80_000), (102_399, 102_399)])
def test_obs_takes_one_small_part(size, part):
    """A file smaller than the minimum part goes up as a single part: the last part may be small."""
    assert lengths(plan_upload("v.mp4", size, PART_RULES, block_size=part)) == [size]


def test_obs_refuses_parts_over_5_gib():
    with pytest.raises(SourceError, match="part size 5,368,709,121"):
        plan_upload("v.mp4", 20_000_000_000, PART_RULES, block_size=5 * 1024**3 + 1)


def test_obs_allows_exactly_10_000_parts():
    plan = plan_upload("huge.mp4", 10_000 * 102_400, PART_RULES, block_size=102_400)
    assert plan.blocks.count == 10_000
    assert plan.blocks.block(9_999).length == 102_400


def test_obs_refuses_10_001_parts_and_says_the_smallest_part_that_fits():
    size = 10_000 * 102_400 + 1
    with pytest.raises(SourceError) as refused:
        plan_upload("huge.mp4", size, PART_RULES, block_size=102_400)
    message = str(refused.value)
    assert "huge.mp4" in message and "10,001 parts" in message and "allows 10,000" in message
    assert "at least 102,401 bytes" in message
    # and the advice is right: that size fits, one byte less does not
    assert plan_upload("huge.mp4", size, PART_RULES, block_size=102_401).blocks.count == 10_000
    with pytest.raises(SourceError):
        plan_upload("huge.mp4", size, PART_RULES, block_size=102_400)


# --- default block sizes -------------------------------------------------------------------------------


SIZES = sorted(
    {1, 2, 999, 102_399, 102_401, 2_999_999, 3_000_000, 10_000_000, 48_000_001, 99_999_999}
    | {random.Random(7).randrange(1, 100_000_000) for _ in range(300)}
)


@pytest.mark.parametrize("size", SIZES)
def test_lazada_default_blocks_are_equal_and_under_3_mb(size):
    """Default blocks stay under the recommended 3 MB, are equal (only the last may be a few bytes short),
    and come in a multiple of the parallelism (so the last wave of sends is full) unless that would cut
    them under the 1 MB split floor."""
    plan = plan_upload("v.mp4", size, BLOCK_RULES)
    sizes = lengths(plan)
    assert sum(sizes) == size
    assert plan.blocks.block_size <= 2_999_999
    assert max(sizes) - min(sizes) < len(sizes)
    parallel = len(plan.chunks) * plan.blocks_in_flight
    if size // (-(-len(sizes) // parallel) * parallel) >= SPLIT_FLOOR_BYTES:
        assert len(sizes) % parallel == 0, (size, len(sizes), parallel)
    else:  # too small to split for parallelism: as few blocks as the 3 MB recommendation allows
        assert len(sizes) == -(-size // 2_999_999)


@pytest.mark.parametrize(
    ("size", "blocks", "block"),
    [
        (10_000_000, 8, 1_250_000),
        (95_000_000, 32, 2_968_750),
        (99_999_999, 36, 2_777_778),
    ],
)
def test_lazada_default_examples(size, blocks, block):
    plan = plan_upload("v.mp4", size, BLOCK_RULES)
    assert (plan.blocks.count, plan.blocks.block_size) == (blocks, block)


@pytest.mark.parametrize(
    "size", [1, 102_400, 19_999_999, 20_000_001, 95_000_000, 1_000_000_000, 7_777_777_777, 50_000_000_000]
)
def test_obs_default_parts_are_at_most_20_mb_and_fit_the_rules(size):
    plan = plan_upload("v.mp4", size, PART_RULES)
    sizes = lengths(plan) if plan.blocks.count < 20_000 else None
    assert plan.blocks.block_size <= 20_000_000
    assert plan.blocks.count <= 10_000
    if plan.blocks.count > 1:
        assert plan.blocks.block_size >= 102_400
    if sizes is not None:
        assert sum(sizes) == size


def test_obs_default_keeps_small_files_in_one_part():
    """Splitting a small file for parallelism would make parts under 100 KB: one part instead."""
    assert lengths(plan_upload("v.mp4", 500_000, PART_RULES)) == [500_000]


# --- chunks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "chunks"),
    [(1, 1), (1, 4), (7, 1), (7, 2), (7, 3), (8, 4), (32, 2), (33, 4), (10, 10), (10, 11), (10_000, 7)],
)
def test_plan_chunks_cover_every_block_once_evenly(blocks, chunks):
    planned = plan_chunks(blocks, chunks)
    assert covered(planned) == list(range(blocks))  # contiguous, in order, each block once
    assert len(planned) == min(blocks, chunks)
    assert [c.index for c in planned] == list(range(len(planned)))
    assert {c.count for c in planned} == {len(planned)}
    spans = [c.last - c.first + 1 for c in planned]
    assert min(spans) >= 1 and max(spans) - min(spans) <= 1


def test_one_block_per_chunk_when_chunks_equal_blocks():
    planned = plan_chunks(6, 6)
    assert [(c.first, c.last) for c in planned] == [(n, n) for n in range(6)]
    plan = plan_upload("v.mp4", 6_000_000, BLOCK_RULES, block_size=1_000_000, chunks=6)
    assert [(c.first, c.last) for c in plan.chunks] == [(n, n) for n in range(6)]


def test_never_more_chunks_than_blocks():
    plan = plan_upload("v.mp4", 3_000_000, BLOCK_RULES, block_size=1_000_000, chunks=10)
    assert len(plan.chunks) == 3


@pytest.mark.parametrize(("blocks", "chunks"), [(0, 1), (1, 0), (-1, 2), (3, -2)])
def test_plan_chunks_refuses_nonsense(blocks, chunks):
    with pytest.raises(ValueError):
        plan_chunks(blocks, chunks)


@pytest.mark.parametrize(
    ("size", "chunks", "in_flight"),
    [
        (1, 1, 8),
        (48_000_000, 1, 8),
        (48_000_001, 2, 4),
        (95_000_000, 2, 4),
        (96_000_000, 2, 4),
        (96_000_001, 3, 2),
        (99_999_999, 3, 2),
    ],
)
def test_auto_chunks_one_per_48_mb_sharing_eight_in_flight(size, chunks, in_flight):
    plan = plan_upload("v.mp4", size, BLOCK_RULES)
    assert (len(plan.chunks), plan.blocks_in_flight) == (chunks, in_flight)


@pytest.mark.parametrize(
    ("size", "chunks"), [(144_000_001, 4), (200_000_000, 4), (1_000_000_000, 4), (50_000_000_000, 4)]
)
def test_auto_chunks_stop_at_four(size, chunks):
    plan = plan_upload("v.mp4", size, PART_RULES)
    assert (len(plan.chunks), plan.blocks_in_flight) == (chunks, 2)


def test_a_95_mb_video_is_two_chunks_of_16_blocks_four_in_flight():
    plan = plan_upload("v.mp4", 95_000_000, BLOCK_RULES)
    assert plan.blocks.count == 32
    assert plan.blocks_in_flight == 4
    assert [(c.first, c.last) for c in plan.chunks] == [(0, 15), (16, 31)]


def test_explicit_values_win_over_defaults():
    plan = plan_upload("v.mp4", 95_000_000, BLOCK_RULES, block_size=5_000_000, chunks=3, blocks_in_flight=5)
    assert (plan.blocks.count, len(plan.chunks), plan.blocks_in_flight) == (19, 3, 5)
    assert covered(plan.chunks) == list(range(19))


@pytest.mark.parametrize("name", ["block_size", "chunks", "blocks_in_flight"])
@pytest.mark.parametrize("value", [0, -1])
def test_invalid_parameters_are_refused(name, value):
    for rules in (BLOCK_RULES, PART_RULES):
        with pytest.raises(SourceError) as refused:
            plan_upload("v.mp4", 10_000_000, rules, **{name: value})
        assert f"{name} {value}" in str(refused.value)


# --- labels --------------------------------------------------------------------------------------------


def test_label_of_a_chunk_of_many_blocks():
    plan = plan_upload("v.mp4", 96_000_000, BLOCK_RULES, block_size=3_000_000, chunks=4)
    labels = [chunk.label(plan.blocks) for chunk in plan.chunks]
    assert labels == [
        "chunk 1/4 · blocks 1–8 · 24 MB",
        "chunk 2/4 · blocks 9–16 · 24 MB",
        "chunk 3/4 · blocks 17–24 · 24 MB",
        "chunk 4/4 · blocks 25–32 · 24 MB",
    ]


def test_label_of_a_single_block():
    plan = plan_upload("v.mp4", 1_000, BLOCK_RULES, block_size=1_000)
    assert plan.chunks[0].label(plan.blocks) == "chunk 1/1 · block 1 · 1 KB"


def test_label_sizes_and_units():
    """Under 10 MB a decimal is shown, under 1 MB kilobytes; OBS counts parts, and a short last block
    counts as the bytes it holds."""
    plan = BlockPlan(10_500_000, 3_000_000)
    assert Chunk(0, 2, 0, 1).label(plan) == "chunk 1/2 · blocks 1–2 · 6.0 MB"
    assert Chunk(1, 2, 2, 3).label(plan, "parts") == "chunk 2/2 · parts 3–4 · 4.5 MB"
    assert Chunk(0, 1, 0, 0).label(BlockPlan(512_000, 512_000), "parts") == "chunk 1/1 · part 1 · 512 KB"
    assert Chunk(0, 1, 0, 0).label(BlockPlan(1, 1)) == "chunk 1/1 · block 1 · 1 KB"
