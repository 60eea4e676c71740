"""Block plans: how a file of ``file_size`` bytes is cut into byte ranges uploaded one task each."""

from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def blocks(self) -> list[Block]:
        return [
            Block(number, offset, min(self.block_size, self.file_size - offset))
            for number, offset in enumerate(range(0, self.file_size, self.block_size))
        ]
