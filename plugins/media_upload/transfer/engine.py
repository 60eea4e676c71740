"""The transfer engine: sends blocks through a platform hook, a bounded number at once.

Both platforms use it the same way (Lazada blocks and OBS parts are the same problem): a chunk task
hands it the blocks still to send, a ``send`` function (the hook call) and an ``acknowledge`` function
(the ledger write). Each worker thread reads its own byte range just before sending it, so memory stays
near ``in_flight`` times the block size whatever the file size. Per-block retries happen inside the hook, where
it knows a repeat is harmless. A block that still fails stops the other blocks of its upload, not those
of other uploads in the same chunk (a catalog chunk carries several videos).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from media_upload.transfer.plan import Block
from media_upload.transfer.source import Source

#: Seconds between progress lines (and progress records) while a chunk uploads.
PROGRESS_EVERY = 3.0


@dataclass(frozen=True)
class BlockTask:
    """One block to send: which upload it belongs to and where its bytes are."""

    upload: str
    source: Source
    block: Block


@dataclass(frozen=True)
class Ack:
    """The platform took a block: its tag (Lazada's ``eTag``, OBS's ``ETag``)."""

    task: BlockTask
    tag: str


@dataclass
class Progress:
    """Bytes acknowledged out of ``total``, and the rate since the first byte; safe across threads."""

    total: int
    done: int = 0
    sent: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, size: int) -> None:
        with self._lock:
            self.done += size
            self.sent += size

    @property
    def seconds(self) -> float:
        return max(time.monotonic() - self.started, 1e-6)

    @property
    def rate(self) -> float:
        """Bytes per second sent by this process (bytes acknowledged earlier do not count)."""
        return self.sent / self.seconds

    def eta(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None


@dataclass
class Outcome:
    """What a send achieved: every tag by ``(upload, part_number)``, and the uploads that failed."""

    tags: dict[tuple[str, int], str]
    failures: dict[str, BaseException]
    progress: Progress


def send_blocks(
    tasks: Sequence[BlockTask],
    send: Callable[[BlockTask, bytes], str],
    *,
    in_flight: int,
    acknowledge: Callable[[list[Ack]], None] = lambda acks: None,
    report: Callable[[Progress], None] = lambda progress: None,
    read: Callable[[BlockTask], bytes] | None = None,
    progress: Progress | None = None,
    report_every: float = PROGRESS_EVERY,
) -> Outcome:
    """Send ``tasks`` with at most ``in_flight`` blocks in the air; returns tags and per-upload failures.

    ``acknowledge`` gets each batch of acknowledged blocks as soon as they are known, from this thread,
    before the next completion is counted (the ledger write that makes resume possible). ``report`` gets
    the progress every ``report_every`` seconds and once at the end.
    """
    if read is None:

        def read(task: BlockTask) -> bytes:
            return task.source.read(task.block.offset, task.block.length)

    progress = progress or Progress(sum(task.block.length for task in tasks))
    tags: dict[tuple[str, int], str] = {}
    failures: dict[str, BaseException] = {}
    pending = list(reversed(tasks))  # pop() takes them in order
    running: dict[Future[str], BlockTask] = {}
    last_report = time.monotonic()

    def send_one(task: BlockTask) -> str:
        return send(task, read(task))

    def submit(pool: ThreadPoolExecutor) -> None:
        while pending and len(running) < in_flight:
            task = pending.pop()
            if task.upload in failures:
                continue
            running[pool.submit(send_one, task)] = task

    with ThreadPoolExecutor(max_workers=max(1, in_flight), thread_name_prefix="block") as pool:
        submit(pool)
        while running:
            finished, _ = wait(running, timeout=min(report_every, 1.0), return_when=FIRST_COMPLETED)
            acks: list[Ack] = []
            for future in finished:
                task = running.pop(future)
                try:
                    tag = future.result()
                except BaseException as exc:  # one upload's failure; the others go on
                    failures.setdefault(task.upload, exc)
                    continue
                tags[(task.upload, task.block.part_number)] = tag
                progress.add(task.block.length)
                acks.append(Ack(task, tag))
            if acks:
                acknowledge(acks)
            submit(pool)
            if time.monotonic() - last_report >= report_every:
                report(progress)
                last_report = time.monotonic()
    report(progress)
    return Outcome(tags, failures, progress)


def ordered_parts(
    tags: dict[tuple[str, int], str], upload: str, numbers: Iterable[int]
) -> list[dict[str, Any]]:
    """``[{"partNumber", "eTag"}]`` of ``upload`` for ``numbers``, ascending, as commits want them."""
    return [{"partNumber": number, "eTag": tags[(upload, number)]} for number in sorted(numbers)]
