"""The catalog's wait: a video or a marketplace whose states cannot be read is named in the event and left
out, while the others settle as usual."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from media_upload.triggers import videos
from media_upload.triggers.base import StateReader
from media_upload.triggers.videos import VideosSettledTrigger


class Refused(Exception):
    """Stands for a permanent error (refused credentials, an upload the platform does not know)."""


class Throttled(Exception):
    """Stands for the platform's "too many calls"."""


class FakeReader(StateReader):
    """States from a table; ids in ``refused`` (or every id when ``refused`` holds "*") raise ``Refused``,
    ``flaky`` raises a passing error that many times first, ``throttled`` a throttle answer."""

    table: dict[str, str] = {}
    refused: set[str] = set()
    flaky = 0
    throttled = 0
    calls: list[tuple[str, ...]] = []

    async def pause(self, video_ids: Sequence[str], seconds: float) -> None:
        await asyncio.sleep(0)

    async def states(self, video_ids: Sequence[str]) -> dict[str, str]:
        FakeReader.calls.append((self.conn_id, *video_ids))
        if FakeReader.throttled:
            FakeReader.throttled -= 1
            raise Throttled("too many calls")
        if FakeReader.flaky:
            FakeReader.flaky -= 1
            raise ConnectionError("reset")
        if "*" in self.refused or set(video_ids) & self.refused:
            raise Refused(f"refused {sorted(set(video_ids) & self.refused) or 'all'}")
        return {video_id: self.table[video_id] for video_id in video_ids}

    def is_permanent(self, exc: Exception) -> bool:
        return isinstance(exc, Refused)

    def is_throttled(self, exc: Exception) -> bool:
        return isinstance(exc, Throttled)


@pytest.fixture
def reader(monkeypatch):
    FakeReader.table, FakeReader.refused, FakeReader.flaky, FakeReader.calls = {}, set(), 0, []
    FakeReader.throttled = 0
    monkeypatch.setattr(videos, "load", lambda path: FakeReader)
    return FakeReader


def video(platform: str, video_id: str, conn_id: str | None = None) -> dict:
    return {"platform": platform, "conn_id": conn_id or platform, "video_id": video_id, "final": ["DONE"]}


def first_event(trigger: VideosSettledTrigger) -> dict:
    async def first() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return asyncio.run(asyncio.wait_for(first(), 10))


def trigger(*watched: dict) -> VideosSettledTrigger:
    return VideosSettledTrigger(list(watched), first_poll_interval=0, gather_seconds=0.05, echo={"n": 1})


def test_a_marketplace_that_refuses_is_named_and_the_other_settles(reader):
    reader.table = {"L1": "DONE"}
    reader.refused = {"S1", "S2"}
    event = first_event(trigger(video("lazada", "L1"), video("shopee", "S1"), video("shopee", "S2")))
    assert event["status"] == "settled" and event["echo"] == {"n": 1}
    assert event["states"] == {"lazada:L1": "DONE"}
    assert set(event["failed"]) == {"shopee:S1", "shopee:S2"}
    assert "Shopee" in event["failed"]["shopee:S1"] and "refused" in event["failed"]["shopee:S1"]


def test_one_bad_video_does_not_stop_its_siblings(reader):
    reader.table = {"S1": "DONE", "S2": "PROCESSING"}
    reader.refused = {"S3"}
    event = first_event(trigger(video("shopee", "S1"), video("shopee", "S2"), video("shopee", "S3")))
    assert event["states"] == {"shopee:S1": "DONE", "shopee:S2": "PROCESSING"}
    assert list(event["failed"]) == ["shopee:S3"]
    assert ("shopee", "S3") in reader.calls  # asked alone after the group's refusal


def test_passing_errors_are_retried_before_anything_is_given_up(reader):
    reader.table = {"L1": "DONE"}
    reader.flaky = 3
    event = first_event(trigger(video("lazada", "L1")))
    assert event["states"] == {"lazada:L1": "DONE"} and event["failed"] == {}
    assert len(reader.calls) == 4


def test_a_group_that_keeps_failing_is_given_up_after_its_budget(reader):
    reader.flaky = 100
    watched = VideosSettledTrigger(
        [video("lazada", "L1")], first_poll_interval=0, max_consecutive_errors=3, gather_seconds=0
    )
    event = first_event(watched)
    assert list(event["failed"]) == ["lazada:L1"] and "reset" in event["failed"]["lazada:L1"]
    assert len(reader.calls) == 3


def test_the_platform_s_call_limit_is_waited_out_however_long(reader):
    """Throttle answers are the platform asking to slow down (the hook has paused the connection): a
    wait that meets more of them than its error budget still settles, and names nothing as unreadable."""
    reader.table = {"L1": "DONE"}
    reader.throttled = 10
    watched = VideosSettledTrigger(
        [video("lazada", "L1")], first_poll_interval=0, max_consecutive_errors=3, gather_seconds=0
    )
    event = first_event(watched)
    assert event["states"] == {"lazada:L1": "DONE"} and event["failed"] == {}
    assert len(reader.calls) == 11


class OneByOne(StateReader):
    """Reads each video alone: "B" is throttled, "X" refused, the others done."""

    async def state(self, video_id: str) -> str:
        if video_id == "B":
            raise Throttled("too many calls")
        if video_id == "X":
            raise Refused("no such upload")
        return "DONE"

    def is_permanent(self, exc: Exception) -> bool:
        return isinstance(exc, Refused)


def test_a_read_that_fails_in_passing_leaves_only_its_own_video_for_the_next_look():
    reader = OneByOne("shopee_default")
    assert asyncio.run(reader.states(["A", "B", "C"])) == {"A": "DONE", "C": "DONE"}
    with pytest.raises(Throttled):  # nothing read at all: the look failed
        asyncio.run(reader.states(["B"]))
    with pytest.raises(Refused):  # a permanent error is told, so the video can be left out
        asyncio.run(reader.states(["A", "X"]))


def test_the_event_waits_for_the_executors_report_and_gathers_what_settles_meanwhile(reader, monkeypatch):
    """No event before ``trigger_hand_back_seconds`` from the trigger's start (Airflow 3.3 would take the
    deferring try's late report for a failure); another marketplace's video settling meanwhile comes along."""
    import time

    monkeypatch.setenv("AIRFLOW__MEDIA_UPLOAD__TRIGGER_HAND_BACK_SECONDS", "1.0")
    reader.table = {"A": "DONE", "B": "WAITING"}

    async def settle_b_later() -> dict:
        async def later() -> None:
            await asyncio.sleep(0.3)
            reader.table["B"] = "DONE"

        helper = asyncio.create_task(later())
        started = time.monotonic()
        async for event in trigger(video("lazada", "A"), video("shopee", "B")).run():
            await helper
            return {**event.payload, "after": time.monotonic() - started}
        raise AssertionError("no event")

    event = asyncio.run(asyncio.wait_for(settle_b_later(), 10))
    assert event["after"] >= 1.0
    assert event["states"] == {"lazada:A": "DONE", "shopee:B": "DONE"}
