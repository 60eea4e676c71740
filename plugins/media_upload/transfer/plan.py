"""How a file is cut for upload: blocks (Lazada) or parts (OBS) under each platform's rules, in chunks.

A **block** is one byte range sent in one request (Lazada's ``blockNo``; OBS calls it a part). A
**chunk** is a run of consecutive blocks that one mapped task instance sends, several at once, so
Airflow's cost per task instance is paid per chunk, not per block. Every size and count check of an
upload lives here, once, for both platforms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from media_upload.transfer.errors import SourceError

MB = 1_000_000
#: Blocks are not cut smaller than this just to fill the parallel slots: every request costs a round trip
#: and counts against the seller's API limits.
SPLIT_FLOOR_BYTES = MB


def _mb(size: int) -> str:
    """Bytes as a person reads them in a label: ``24 MB``, ``2.9 MB``, ``512 KB``."""
    if size >= 10 * MB:
        return f"{size / MB:.0f} MB"
    if size >= MB:
        return f"{size / MB:.1f} MB"
    return f"{max(size // 1000, 1)} KB"


@dataclass(frozen=True)
class PartRules:
    """One platform's multipart rules: sizes in bytes, ``max_file_bytes`` exclusive.

    :param recommended_part_bytes: the largest block the platform recommends; default blocks are no larger.
    """

    platform: str
    unit: str
    max_file_bytes: int | None
    min_part_bytes: int
    max_part_bytes: int
    max_parts: int | None
    recommended_part_bytes: int

    def check_file(self, source: str, size: int) -> None:
        """Refuse an empty file or one over the platform's file limit, naming both."""
        if size < 1:
            raise SourceError(f"{source} is empty (0 bytes); {self.platform} needs at least 1 byte")
        if self.max_file_bytes is not None and size >= self.max_file_bytes:
            raise SourceError(
                f"{source} is {size:,} bytes; {self.platform} takes files under {self.max_file_bytes:,} bytes "
                f"(at most {self.max_file_bytes - 1:,})"
            )

    def check_part_size(self, source: str, size: int, part_size: int) -> None:
        """Refuse a part size outside the platform's limits, or one that makes too many parts."""
        smallest = self.min_part_bytes if part_size < size else 1  # only the last part may be smaller
        if not smallest <= part_size <= self.max_part_bytes:
            raise SourceError(
                f"{self.unit} size {part_size:,} is outside {smallest:,}..{self.max_part_bytes:,} bytes "
                f"({self.platform}'s limits per {self.unit} for a file of {size:,} bytes)"
            )
        count = -(-size // part_size)
        if self.max_parts is not None and count > self.max_parts:
            raise SourceError(
                f"{source}: {size:,} bytes in {self.unit}s of {part_size:,} make {count:,} {self.unit}s; "
                f"{self.platform} allows {self.max_parts:,}. Use {self.unit}s of at least "
                f"{-(-size // self.max_parts):,} bytes"
            )

    def default_part_size(self, size: int, parallel: int = 8) -> int:
        """Equal blocks under the recommended size, their count a multiple of ``parallel`` when that keeps
        them at least ``SPLIT_FLOOR_BYTES`` (and the platform's minimum), so the last wave of a parallel
        upload is as full as the first; never more blocks than the platform allows."""
        count = max(-(-size // self.recommended_part_bytes), 1)
        rounded = -(-count // parallel) * parallel
        if size // rounded >= max(self.min_part_bytes, SPLIT_FLOOR_BYTES):
            count = rounded
        if self.max_parts is not None:
            count = min(count, self.max_parts)
        part = -(-size // count)
        return max(part, min(self.min_part_bytes, size))


@dataclass(frozen=True)
class Block:
    """One byte range of the source; ``number`` is 0-based (Lazada's ``blockNo``; ``partNumber`` is +1)."""

    number: int
    offset: int
    length: int

    @property
    def part_number(self) -> int:
        return self.number + 1


@dataclass(frozen=True)
class BlockPlan:
    """A file of ``file_size`` bytes in blocks of ``block_size`` (the last may be shorter)."""

    file_size: int
    block_size: int

    def __post_init__(self) -> None:
        if self.file_size < 1:
            raise ValueError(f"cannot plan blocks for {self.file_size} bytes")
        if self.block_size < 1:
            raise ValueError(f"block size {self.block_size} must be at least 1 byte")

    @property
    def count(self) -> int:
        return -(-self.file_size // self.block_size)

    def block(self, number: int) -> Block:
        if not 0 <= number < self.count:
            raise IndexError(f"block {number} is outside 0..{self.count - 1}")
        offset = number * self.block_size
        return Block(number, offset, min(self.block_size, self.file_size - offset))

    @property
    def blocks(self) -> list[Block]:
        return [self.block(number) for number in range(self.count)]


@dataclass(frozen=True)
class Chunk:
    """Blocks ``first..last`` (0-based, inclusive) of an upload: what one mapped task instance sends."""

    index: int
    count: int
    first: int
    last: int

    def blocks(self, plan: BlockPlan) -> list[Block]:
        return [plan.block(number) for number in range(self.first, self.last + 1)]

    def size(self, plan: BlockPlan) -> int:
        end = min((self.last + 1) * plan.block_size, plan.file_size)
        return end - self.first * plan.block_size

    def label(self, plan: BlockPlan, unit: str = "blocks") -> str:
        """``chunk 2/4 · blocks 9–16 · 24 MB``, numbered from 1 as people count."""
        span = f"{self.first + 1}" if self.first == self.last else f"{self.first + 1}–{self.last + 1}"
        noun = unit if self.first != self.last else unit.rstrip("s")
        return f"chunk {self.index + 1}/{self.count} · {noun} {span} · {_mb(self.size(plan))}"


def plan_chunks(block_count: int, chunks: int) -> list[Chunk]:
    """At most ``chunks`` runs of consecutive blocks, as even as the count allows."""
    if block_count < 1 or chunks < 1:
        raise ValueError(f"cannot make {chunks} chunk(s) of {block_count} block(s)")
    count = min(chunks, block_count)
    bounds = [index * block_count // count for index in range(count + 1)]
    return [Chunk(index, count, bounds[index], bounds[index + 1] - 1) for index in range(count)]


#: In flight at once for one upload unless told otherwise: the link limit the benchmarks measure against.
DEFAULT_IN_FLIGHT = 8
#: A catalog of small videos keeps more blocks in the air, as many as fit in the bytes of eight 5 MB blocks
#: and at most this many: a small block's time is its round trip, not its bytes.
IN_FLIGHT_BYTES = 40 * MB
MAX_IN_FLIGHT = 32
#: Bytes per chunk task when the number of chunks is left to the planner. A chunk task costs about a
#: second of scheduling and start-up before its first byte (docs/benchmarks.md), so smaller files go in
#: fewer chunks; a 95 MB video gets two.
CHUNK_TARGET_BYTES = 48 * MB
MAX_AUTO_CHUNKS = 4


@dataclass(frozen=True)
class UploadPlan:
    """Blocks and chunks of one file under one platform's rules, and the blocks each chunk sends at once."""

    blocks: BlockPlan
    chunks: list[Chunk]
    blocks_in_flight: int


def plan_upload(
    source: str,
    size: int,
    rules: PartRules,
    *,
    block_size: int | None = None,
    chunks: int | None = None,
    blocks_in_flight: int | None = None,
) -> UploadPlan:
    """Check ``size`` against ``rules`` and cut the file into blocks and chunks.

    :param block_size: bytes per block; by default the platform's recommended size, split evenly so the
        last wave of parallel sends is as full as the first.
    :param chunks: chunk tasks to use (at most one per block); by default one per 48 MB, at most four.
    :param blocks_in_flight: blocks each chunk sends at once; by default the chunks share eight.

    Raises :class:`SourceError` naming the file, the value and the limit when the file or the block
    size does not fit the platform.
    """
    for name, value in (
        ("block_size", block_size),
        ("chunks", chunks),
        ("blocks_in_flight", blocks_in_flight),
    ):
        if value is not None and value < 1:
            raise SourceError(f"{name} {value} must be at least 1 (or left empty for the default)")
    rules.check_file(source, size)
    chunk_count = chunks or min(MAX_AUTO_CHUNKS, -(-size // CHUNK_TARGET_BYTES))
    in_flight = blocks_in_flight or max(1, DEFAULT_IN_FLIGHT // chunk_count)
    block_size = block_size or rules.default_part_size(size, chunk_count * in_flight)
    rules.check_part_size(source, size, block_size)
    blocks = BlockPlan(size, block_size)
    return UploadPlan(blocks, plan_chunks(blocks.count, chunk_count), in_flight)


def catalog_in_flight(block_lengths: Sequence[int], chunk_count: int) -> int:
    """Blocks each of ``chunk_count`` chunk tasks keeps in the air for blocks of these lengths: eight in all
    for blocks of 5 MB or more, up to :data:`MAX_IN_FLIGHT` for small ones (memory stays under 40 MB)."""
    average = sum(block_lengths) / max(len(block_lengths), 1)
    total = min(MAX_IN_FLIGHT, max(DEFAULT_IN_FLIGHT, int(IN_FLIGHT_BYTES // max(average, 1))))
    return max(1, total // max(chunk_count, 1))
