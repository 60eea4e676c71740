"""The transfer engine with fake send and read functions: bounded parallelism, every block once, acks
on the calling thread, per-upload failures, bounded memory."""

from __future__ import annotations

import gc
import hashlib
import os
import threading
import tracemalloc
from collections import Counter

import pytest

from media_upload.transfer.engine import BlockTask, Progress, ordered_parts, send_blocks
from media_upload.transfer.plan import BlockPlan
from media_upload.transfer.source import Source

#: Not a time limit on the code under test: only how long a fake waits for its peers before the test
#: gives up instead of hanging.
PATIENCE = 30


def tasks_of(upload: str, size: int, block_size: int, source: str = "/unused") -> list[BlockTask]:
    return [BlockTask(upload, Source(source), block) for block in BlockPlan(size, block_size).blocks]


def fake_read(task: BlockTask) -> bytes:
    return bytes([task.block.number % 256]) * task.block.length


def tag_of(task: BlockTask) -> str:
    return f"{task.upload}-{task.block.part_number}"


class InFlight:
    """Counts blocks between their read and the end of their send; the first ``parties`` sends wait for
    each other at a barrier, so the engine must really run that many at once for the test to go on."""

    def __init__(self, parties: int) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.barrier = threading.Barrier(parties, timeout=PATIENCE)
        self.sent: Counter[tuple[str, int]] = Counter()
        self.threads: set[int] = set()

    def read(self, task: BlockTask) -> bytes:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        return fake_read(task)

    def send(self, task: BlockTask, data: bytes) -> str:
        try:
            assert len(data) == task.block.length
            self.threads.add(threading.get_ident())
            self.barrier.wait()
            with self.lock:
                self.sent[(task.upload, task.block.number)] += 1
            return tag_of(task)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.parametrize(("in_flight", "blocks"), [(1, 5), (3, 12), (4, 4), (5, 20)])
def test_never_more_than_in_flight_blocks_at_once(in_flight, blocks):
    """The barrier needs ``in_flight`` sends together, so the engine reaches its bound; the counter shows
    it never passes it."""
    meter = InFlight(in_flight)
    tasks = tasks_of("u", blocks * 1_000, 1_000)
    outcome = send_blocks(tasks, meter.send, in_flight=in_flight, read=meter.read)
    assert outcome.failures == {}
    assert meter.most == in_flight
    assert meter.now == 0
    if in_flight > 1:
        assert len(meter.threads) > 1  # on worker threads, not one after another


def test_every_block_sent_once_and_tags_by_upload_and_part_number():
    meter = InFlight(1)
    tasks = tasks_of("a", 10_500, 1_000) + tasks_of("b", 3_000, 1_000) + tasks_of("c", 1, 1_000)
    outcome = send_blocks(tasks, meter.send, in_flight=4, read=meter.read)
    assert meter.sent == Counter({(t.upload, t.block.number): 1 for t in tasks})
    assert outcome.tags == {(t.upload, t.block.part_number): tag_of(t) for t in tasks}
    assert len(outcome.tags) == 11 + 3 + 1
    assert outcome.failures == {}
    assert ordered_parts(outcome.tags, "b", [3, 1, 2]) == [
        {"partNumber": 1, "eTag": "b-1"},
        {"partNumber": 2, "eTag": "b-2"},
        {"partNumber": 3, "eTag": "b-3"},
    ]


def test_each_block_reads_its_own_range():
    seen: dict[int, tuple[int, int]] = {}

    def read(task: BlockTask) -> bytes:
        seen[task.block.number] = (task.block.offset, task.block.length)
        return fake_read(task)

    send_blocks(tasks_of("u", 2_500, 1_000), lambda task, data: "t", in_flight=2, read=read)
    assert seen == {0: (0, 1_000), 1: (1_000, 1_000), 2: (2_000, 500)}


def test_acknowledge_gets_every_ack_on_the_calling_thread():
    caller = threading.get_ident()
    acked: list[tuple[str, int, str]] = []
    threads: set[int] = set()

    def acknowledge(acks):
        threads.add(threading.get_ident())
        acked.extend((ack.task.upload, ack.task.block.part_number, ack.tag) for ack in acks)

    meter = InFlight(3)
    tasks = tasks_of("a", 9_000, 1_000) + tasks_of("b", 3_000, 1_000)
    outcome = send_blocks(tasks, meter.send, in_flight=3, read=meter.read, acknowledge=acknowledge)
    assert threads == {caller}
    assert sorted(acked) == sorted((t.upload, t.block.part_number, tag_of(t)) for t in tasks)
    assert len(acked) == len(set(acked))  # each once
    assert {(upload, number): tag for upload, number, tag in acked} == outcome.tags


def test_acks_arrive_as_blocks_finish_not_at_the_end():
    """The ledger write that makes resume possible happens as blocks finish: with one in flight, one
    acknowledge call per block, in order, and by the time block n is sent every block before n-1 is
    acknowledged (block n-1's ack may race block n's start; the engine only promises it comes before
    the next completion is counted)."""
    acked: list[int] = []
    calls: list[list[int]] = []
    seen_when_sent: dict[int, list[int]] = {}

    def send(task, data):
        seen_when_sent[task.block.number] = list(acked)
        return "t"

    def acknowledge(acks):
        calls.append([ack.task.block.number for ack in acks])
        acked.extend(ack.task.block.number for ack in acks)

    send_blocks(tasks_of("u", 6_000, 1_000), send, in_flight=1, read=fake_read, acknowledge=acknowledge)
    assert calls == [[n] for n in range(6)]
    for number, seen in seen_when_sent.items():
        assert seen[: max(number - 1, 0)] == list(range(max(number - 1, 0)))


def test_a_failed_block_stops_its_upload_only():
    """One in flight makes the order certain: a's third block fails, a's later blocks are never sent,
    b (after a in the same call) still goes up whole, and the failure is reported for a."""
    boom = RuntimeError("block 2 of a refused")
    sent: list[tuple[str, int]] = []
    acked: list[tuple[str, int]] = []

    def send(task, data):
        sent.append((task.upload, task.block.number))
        if (task.upload, task.block.number) == ("a", 2):
            raise boom
        return tag_of(task)

    tasks = tasks_of("a", 6_000, 1_000) + tasks_of("b", 6_000, 1_000)
    outcome = send_blocks(
        tasks,
        send,
        in_flight=1,
        read=fake_read,
        acknowledge=lambda acks: acked.extend((a.task.upload, a.task.block.number) for a in acks),
    )
    assert outcome.failures == {"a": boom}
    assert sent == [("a", 0), ("a", 1), ("a", 2)] + [("b", n) for n in range(6)]
    assert acked == [("a", 0), ("a", 1)] + [("b", n) for n in range(6)]
    assert set(outcome.tags) == {("a", 1), ("a", 2)} | {("b", n) for n in range(1, 7)}
    assert outcome.progress.done == 8_000


def test_a_failed_block_among_many_in_flight_spares_the_other_uploads():
    """Interleaved uploads, several in flight: the failing upload stops early, the others all finish."""
    sent: Counter[str] = Counter()
    lock = threading.Lock()

    def send(task, data):
        with lock:
            sent[task.upload] += 1
        if (task.upload, task.block.number) == ("b", 1):
            raise OSError("connection reset")
        return tag_of(task)

    by_upload = {name: tasks_of(name, 40_000, 1_000) for name in "abc"}
    tasks = [task for row in zip(*by_upload.values(), strict=True) for task in row]
    outcome = send_blocks(tasks, send, in_flight=3, read=fake_read)
    assert list(outcome.failures) == ["b"] and isinstance(outcome.failures["b"], OSError)
    assert sent["a"] == sent["c"] == 40
    assert sent["b"] < 40
    assert all((name, n) in outcome.tags for name in "ac" for n in range(1, 41))
    assert ("b", 2) not in outcome.tags


class TrackedBytes(bytes):
    """Bytes that tell the meter when the last reference to them goes."""

    meter: MemoryMeter

    def __del__(self) -> None:
        self.meter.release(len(self))


class MemoryMeter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blocks = self.bytes = 0
        self.most_blocks = self.most_bytes = 0

    def read(self, task: BlockTask) -> bytes:
        data = TrackedBytes(fake_read(task))
        data.meter = self
        with self.lock:
            self.blocks += 1
            self.bytes += len(data)
            self.most_blocks = max(self.most_blocks, self.blocks)
            self.most_bytes = max(self.most_bytes, self.bytes)
        return data

    def release(self, size: int) -> None:
        with self.lock:
            self.blocks -= 1
            self.bytes -= size


@pytest.mark.parametrize("in_flight", [1, 2, 4])
def test_block_data_is_released_after_its_send(in_flight):
    """The bytes of a block live from its read until its send returns: never more than ``in_flight``
    blocks' data at once, whatever the number of blocks."""
    meter = MemoryMeter()
    barrier = threading.Barrier(in_flight, timeout=PATIENCE)

    def send(task, data):
        hashlib.sha256(data).digest()
        barrier.wait()  # all in flight hold their data together
        return "t"

    tasks = tasks_of("u", 64 * 10_000, 10_000)
    outcome = send_blocks(tasks, send, in_flight=in_flight, read=meter.read)
    gc.collect()
    assert outcome.failures == {}
    assert meter.most_blocks == in_flight
    assert meter.most_bytes <= in_flight * 10_000
    assert meter.blocks == 0 and meter.bytes == 0


def test_memory_meter_sees_data_that_is_kept():
    """The meter itself: a send that keeps the bytes makes it count them all."""
    meter = MemoryMeter()
    kept: list[bytes] = []
    send_blocks(
        tasks_of("u", 20_000, 1_000), lambda t, d: kept.append(d) or "t", in_flight=2, read=meter.read
    )
    assert meter.most_blocks == 20


BLOCK = 1_000_000
FILE_SIZE = 20_000_000
IN_FLIGHT = 2
#: Allowed above the block buffers: the thread pool, futures, tags and tracemalloc's own bookkeeping.
MARGIN = 300_000


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("engine") / "big.mp4"
    with open(path, "wb") as handle:
        for n in range(FILE_SIZE // BLOCK):
            handle.write(hashlib.sha256(str(n).encode()).digest() * (BLOCK // 32) + b"\0" * (BLOCK % 32))
    return str(path)


def traced_peak(path: str, read=None) -> tuple[int, dict[int, str]]:
    digests: dict[int, str] = {}

    def send(task, data):
        digests[task.block.number] = hashlib.sha256(data).hexdigest()
        return "t"

    tasks = tasks_of("u", FILE_SIZE, BLOCK, source=path)
    tasks[0].source.read(0, 1)  # imports what a read needs (Airflow's configuration) before counting
    gc.collect()
    tracemalloc.start()
    try:
        outcome = send_blocks(tasks, send, in_flight=IN_FLIGHT, read=read)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.failures == {}
    return peak, digests


def test_a_20_mb_file_is_sent_with_memory_near_in_flight_blocks(big_file):
    """Reading the real file through the default reader: the peak stays near ``in_flight`` blocks, far
    below the file, and every block's bytes are the file's bytes at its offset."""
    peak, digests = traced_peak(big_file)
    assert peak < 2 * IN_FLIGHT * BLOCK + MARGIN, f"peak {peak:,} bytes"
    with open(big_file, "rb") as handle:
        expected = {n: hashlib.sha256(handle.read(BLOCK)).hexdigest() for n in range(FILE_SIZE // BLOCK)}
    assert digests == expected
    assert os.path.getsize(big_file) == FILE_SIZE


def test_the_memory_bound_catches_an_engine_that_reads_the_whole_file(big_file):
    """The same measurement with a reader that loads the file and slices it goes far over the bound, so
    the bound above is a real check."""

    def greedy(task):
        with open(task.source.location, "rb") as handle:
            whole = handle.read()
        return whole[task.block.offset : task.block.offset + task.block.length]

    peak, _ = traced_peak(big_file, read=greedy)
    assert peak > 2 * IN_FLIGHT * BLOCK + MARGIN


def test_report_at_the_end_with_everything_done():
    reports: list[tuple[int, int]] = []
    tasks = tasks_of("a", 7_500, 1_000) + tasks_of("b", 2_000, 1_000)
    outcome = send_blocks(
        tasks,
        lambda task, data: "t",
        in_flight=3,
        read=fake_read,
        report=lambda progress: reports.append((progress.done, progress.total)),
        report_every=3600,
    )
    assert reports == [(9_500, 9_500)]
    assert outcome.progress.done == outcome.progress.total == 9_500
    assert outcome.progress.sent == 9_500


def test_progress_carried_in_counts_earlier_bytes():
    """A resumed chunk passes the bytes acknowledged before; the end report shows the whole."""
    reports: list[int] = []
    progress = Progress(total=10_000, done=6_000)
    send_blocks(
        tasks_of("u", 4_000, 1_000),
        lambda task, data: "t",
        in_flight=2,
        read=fake_read,
        report=lambda p: reports.append(p.done),
        progress=progress,
        report_every=3600,
    )
    assert reports == [10_000]
    assert (progress.done, progress.sent) == (10_000, 4_000)


def test_nothing_to_send():
    reports: list[int] = []
    outcome = send_blocks([], lambda t, d: "t", in_flight=4, report=lambda p: reports.append(p.total))
    assert outcome.tags == {} and outcome.failures == {}
    assert reports == [0]
