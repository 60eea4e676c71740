"""The audit trigger (serialisation and run loop) and LazadaVideoAuditSensor in every mode."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta

import pytest
import requests
from airflow.jobs.triggerer_job_runner import TriggerRunner
from airflow.models.trigger import Trigger
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from media_upload.hooks.lazada import LazadaHook
from media_upload.sensors.lazada import LazadaVideoAuditSensor
from media_upload.triggers import lazada as trigger_module
from media_upload.triggers.lazada import LazadaVideoAuditTrigger
from tests.integration.conftest import LazopDriver


@pytest.fixture
def fast_polls(monkeypatch):
    """Hooks built by the trigger back off in milliseconds, so error budgets run out quickly."""
    fast = functools.partial(
        LazadaHook, backoff_seconds=0.01, backoff_max_seconds=0.02, throttle_pause_seconds=0.01
    )
    monkeypatch.setattr(trigger_module, "LazadaHook", fast)


@pytest.fixture
def driver(lazop, lazada_sandbox, lazada_connection):
    lazada_connection(lazada_sandbox)
    return LazopDriver(lazop, lazada_sandbox)


def first_event(trigger: LazadaVideoAuditTrigger, timeout: float = 10) -> dict:
    async def run() -> dict:
        event = await asyncio.wait_for(trigger.run().__anext__(), timeout)
        return event.payload

    return asyncio.run(run())


def quick_trigger(video_id: str, **options) -> LazadaVideoAuditTrigger:
    return LazadaVideoAuditTrigger(video_id, poll_interval=0.05, first_poll_interval=0.01, **options)


# ------------------------------------------------------------------------------- trigger


def test_serialize_is_exact():
    trigger = LazadaVideoAuditTrigger("30073704787", "lazada_my", poll_interval=15, max_consecutive_errors=3)
    assert trigger.serialize() == (
        "media_upload.triggers.lazada.LazadaVideoAuditTrigger",
        {
            "video_id": "30073704787",
            "lazada_conn_id": "lazada_my",
            "poll_interval": 15.0,
            "max_consecutive_errors": 3,
            "first_poll_interval": 2.0,
        },
    )


def test_serialization_round_trip_through_the_trigger_table():
    trigger = LazadaVideoAuditTrigger("30073704787", poll_interval=12.5)
    row = Trigger.from_object(trigger)
    rebuilt = TriggerRunner().get_trigger_by_classpath(row.classpath)(**row.kwargs)
    assert rebuilt.serialize() == trigger.serialize()


def test_trigger_reports_success(driver, sample_video):
    video_id = driver.upload(sample_video(3000))
    assert first_event(quick_trigger(video_id)) == {
        "status": "success",
        "video_id": video_id,
        "state": "AUDIT_SUCCESS",
    }


@pytest.mark.parametrize("marker", ["AUDIT_FAILED", "TRANSCODE_FAILED"])
def test_trigger_reports_rejection(driver, sample_video, marker):
    video_id = driver.upload(sample_video(3000), title=f"clip [{marker}]")
    assert first_event(quick_trigger(video_id)) == {"status": "failed", "video_id": video_id, "state": marker}


def test_trigger_reports_deletion(driver, sample_video):
    video_id = driver.upload(sample_video(3000))
    driver.call("/media/video/remove", {"videoId": video_id})
    assert first_event(quick_trigger(video_id))["state"] == "DELETED"


def test_trigger_only_reads(driver, sample_video, lazada_sandbox):
    video_id = driver.upload(sample_video(3000))
    before = dict(lazada_sandbox.backend.request_counts)
    first_event(quick_trigger(video_id))
    after = dict(lazada_sandbox.backend.request_counts)
    assert {api for api in after if after[api] != before.get(api)} == {"/media/video/get"}


def test_trigger_gives_up_at_once_on_permanent_errors(lazada_sandbox, lazada_connection, fast_polls):
    lazada_connection(lazada_sandbox, password="wrong")
    event = first_event(quick_trigger("31234567890"))
    assert event["status"] == "error" and "IncompleteSignature" in event["message"]
    assert lazada_sandbox.backend.request_counts["/media/video/get"] == 1


def test_trigger_tolerates_passing_errors_then_gives_up(driver, sample_video, lazada_sandbox, fast_polls):
    video_id = driver.upload(sample_video(3000))
    fault = {"kind": "ServiceTimeout", "api": "/media/video/get", "count": 5 * 2}
    requests.post(f"{lazada_sandbox.url}/_sandbox/lazada/faults", json=fault)
    assert first_event(quick_trigger(video_id, max_consecutive_errors=3))["status"] == "success"

    requests.post(f"{lazada_sandbox.url}/_sandbox/lazada/faults", json={**fault, "count": 100})
    event = first_event(quick_trigger(video_id, max_consecutive_errors=2))
    assert event["status"] == "error" and "ServiceTimeout" in event["message"]


# -------------------------------------------------------------------------------- sensor


def sensor(video_id: str, **options) -> LazadaVideoAuditSensor:
    options.setdefault("poke_interval", 0.05)
    return LazadaVideoAuditSensor(task_id="wait", video_id=video_id, **options)


def test_deferrable_sensor_defers_to_the_trigger(lazop, make_lazada_sandbox, lazada_connection, sample_video):
    sandbox = make_lazada_sandbox(audit_seconds=3600)
    lazada_connection(sandbox)
    video_id = LazopDriver(lazop, sandbox).upload(sample_video(3000))
    with pytest.raises(TaskDeferred) as deferred:
        sensor(video_id, deferrable=True, timeout=600, poke_interval=20).execute({})
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=600)
    assert deferred.value.trigger.serialize()[1] == {
        "video_id": video_id,
        "lazada_conn_id": "lazada_default",
        "poll_interval": 20.0,
        "max_consecutive_errors": 5,
        "first_poll_interval": 2.0,
    }


def test_deferrable_sensor_returns_at_once_when_already_audited(
    lazop, make_lazada_sandbox, lazada_connection, sample_video
):
    sandbox = make_lazada_sandbox(audit_seconds=0)
    lazada_connection(sandbox)
    video_id = LazopDriver(lazop, sandbox).upload(sample_video(3000))
    assert sensor(video_id, deferrable=True).execute({}) == video_id


def test_execute_complete_outcomes():
    waiting = sensor("31234567890", deferrable=True)
    assert (
        waiting.execute_complete(
            {}, {"status": "success", "video_id": "31234567890", "state": "AUDIT_SUCCESS"}
        )
        == "31234567890"
    )
    with pytest.raises(AirflowFailException, match="31234567890 ended in AUDIT_FAILED"):
        waiting.execute_complete({}, {"status": "failed", "video_id": "31234567890", "state": "AUDIT_FAILED"})
    with pytest.raises(AirflowException) as error:
        waiting.execute_complete({}, {"status": "error", "video_id": "31234567890", "message": "boom"})
    assert not isinstance(error.value, AirflowFailException) and "boom" in str(error.value)


def test_poke_mode_waits_for_audit_success(driver, sample_video):
    video_id = driver.upload(sample_video(3000))
    assert sensor(video_id, deferrable=False, mode="poke").execute({}) == video_id


@pytest.mark.parametrize("marker", ["AUDIT_FAILED", "TRANSCODE_FAILED", "DELETED"])
def test_poke_mode_fails_rejected_videos_without_retry(driver, sample_video, marker):
    video_id = driver.upload(sample_video(3000), title=f"x [{marker}]")
    if marker == "DELETED":
        driver.call("/media/video/remove", {"videoId": video_id})
    with pytest.raises(AirflowFailException, match=f"{video_id} ended in {marker}"):
        sensor(video_id, deferrable=False).execute({})


def test_soft_fail_skips_rejected_videos(driver, sample_video):
    video_id = driver.upload(sample_video(3000), title="x [AUDIT_FAILED]")
    with pytest.raises(AirflowSkipException):
        sensor(video_id, deferrable=False, soft_fail=True).execute({})
    requests.post(
        f"{driver.sandbox.url}/_sandbox/lazada/videos/{video_id}/outcome",
        json={"outcome": "AUDIT_FAILED", "finish_now": True},
    )
    with pytest.raises(AirflowSkipException):
        sensor(video_id, deferrable=True, soft_fail=True).execute({})


class RescheduledTaskInstance:
    """The one call reschedule mode makes on the task instance."""

    def get_first_reschedule_date(self, context):
        return None


def test_reschedule_mode_frees_the_slot_between_pokes(
    lazop, make_lazada_sandbox, lazada_connection, sample_video
):
    sandbox = make_lazada_sandbox(audit_seconds=3600)
    lazada_connection(sandbox)
    driver = LazopDriver(lazop, sandbox)
    video_id = driver.upload(sample_video(3000))
    waiting = sensor(video_id, deferrable=False, mode="reschedule", poke_interval=60)
    with pytest.raises(AirflowRescheduleException) as rescheduled:
        waiting.execute({"ti": RescheduledTaskInstance()})
    assert rescheduled.value.reschedule_date > datetime.now(UTC) + timedelta(seconds=50)
    sandbox.backend.set_video_outcome(video_id, "AUDIT_SUCCESS", finish_now=True)
    assert waiting.execute({"ti": RescheduledTaskInstance()}) == video_id


def test_poke_mode_times_out(lazop, make_lazada_sandbox, lazada_connection, sample_video):
    sandbox = make_lazada_sandbox(audit_seconds=3600)
    lazada_connection(sandbox)
    video_id = LazopDriver(lazop, sandbox).upload(sample_video(3000))
    with pytest.raises(AirflowSensorTimeout):
        sensor(video_id, deferrable=False, timeout=0.2).execute({})
