"""HuaweiVodAssetTrigger (serialisation, run loop) and HuaweiVodAssetSensor in every mode."""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta

import pytest
import requests
from airflow.jobs.triggerer_job_runner import TriggerRunner
from airflow.models.trigger import Trigger
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException, TaskDeferred

from media_upload.hooks.huawei_vod import HuaweiVodHook
from media_upload.sensors.huawei_vod import HuaweiVodAssetSensor
from media_upload.triggers import huawei_vod as trigger_module
from media_upload.triggers.huawei_vod import HuaweiVodAssetTrigger
from tests.integration.conftest import VodDriver


@pytest.fixture
def fast_polls(monkeypatch):
    fast = functools.partial(
        HuaweiVodHook, backoff_seconds=0.01, backoff_max_seconds=0.02, throttle_pause_seconds=0.01
    )
    monkeypatch.setattr(trigger_module, "HuaweiVodHook", fast)


@pytest.fixture
def uploaded(huawei_vod_sandbox, huawei_vod_connection, sample_video):
    """Make, upload and confirm an asset with the official client: ``uploaded(title=..., auto_publish=...)``."""
    huawei_vod_connection(huawei_vod_sandbox)
    driver = VodDriver(huawei_vod_sandbox)

    def make(title: str = "clip", confirm: bool = True, **fields) -> str:
        asset = driver.create(title=title, **fields)
        driver.upload(asset, sample_video(300_000).read_bytes())
        if confirm:
            driver.confirm(asset.asset_id)
        return asset.asset_id

    return make


def first_event(trigger: HuaweiVodAssetTrigger) -> dict:
    async def run() -> dict:
        return (await asyncio.wait_for(trigger.run().__anext__(), 10)).payload

    return asyncio.run(run())


def quick(asset_id: str, ready=("PUBLISHED",), **options) -> HuaweiVodAssetTrigger:
    return HuaweiVodAssetTrigger(
        asset_id, list(ready), poll_interval=0.05, first_poll_interval=0.01, **options
    )


def test_serialize_is_exact_and_round_trips():
    trigger = HuaweiVodAssetTrigger(
        "a" * 32, ["PUBLISHED"], "vod_eu", poll_interval=15, max_consecutive_errors=3
    )
    assert trigger.serialize() == (
        "media_upload.triggers.huawei_vod.HuaweiVodAssetTrigger",
        {
            "asset_id": "a" * 32,
            "ready_statuses": ["PUBLISHED"],
            "huawei_vod_conn_id": "vod_eu",
            "poll_interval": 15.0,
            "max_consecutive_errors": 3,
            "first_poll_interval": 2.0,
        },
    )
    row = Trigger.from_object(trigger)
    rebuilt = TriggerRunner().get_trigger_by_classpath(row.classpath)(**row.kwargs)
    assert rebuilt.serialize() == trigger.serialize()


def test_trigger_reports_the_ready_status_and_play_url(uploaded):
    asset_id = uploaded()
    event = first_event(quick(asset_id))
    assert event["status"] == "success" and event["asset_status"] == "PUBLISHED"
    assert event["play_url"].endswith(f"/play/{asset_id}/index.mp4")


@pytest.mark.parametrize("marker", ["TRANSCODE_FAILED", "UPLOAD_FAILED", "SERVER_ERROR"])
def test_trigger_reports_failures(uploaded, marker):
    asset_id = uploaded(title=f"clip [{marker}]")
    assert first_event(quick(asset_id)) == {
        "status": "failed",
        "asset_id": asset_id,
        "asset_status": marker,
        "play_url": None,
    }


def test_trigger_errors_at_once_on_refused_credentials(huawei_vod_sandbox, huawei_vod_connection, fast_polls):
    huawei_vod_connection(huawei_vod_sandbox, password="wrong")
    event = first_event(quick("a" * 32))
    assert event["status"] == "error" and "APIG.0301" in event["message"]
    assert huawei_vod_sandbox.backend.request_counts["ShowAssetMeta"] == 1


def test_trigger_tolerates_passing_errors(uploaded, huawei_vod_sandbox, fast_polls):
    asset_id = uploaded()
    requests.post(
        f"{huawei_vod_sandbox.endpoint}/_sandbox/huawei-vod/faults",
        json={"kind": "VOD.10051", "operation": "ShowAssetMeta", "count": 7},
    )
    assert first_event(quick(asset_id, max_consecutive_errors=3))["status"] == "success"


def sensor(asset, **options) -> HuaweiVodAssetSensor:
    options.setdefault("poke_interval", 0.05)
    return HuaweiVodAssetSensor(task_id="ready", asset=asset, **options)


def test_sensor_defers_with_the_assets_own_ready_statuses(uploaded):
    asset_id = uploaded(confirm=False)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(
            {"asset_id": asset_id, "ready_statuses": ["CREATED"]},
            deferrable=True,
            timeout=900,
            poke_interval=20,
        ).execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, HuaweiVodAssetTrigger) and trigger.ready_statuses == ["CREATED"]
    assert trigger.poll_interval == 20.0 and deferred.value.timeout == timedelta(seconds=900)
    assert deferred.value.method_name == "execute_complete"


def test_sensor_poke_mode_returns_the_final_xcom(uploaded):
    asset_id = uploaded()
    result = sensor(asset_id, deferrable=False).execute({})
    assert result["asset_id"] == asset_id and result["status"] == "PUBLISHED" and result["play_url"]


def test_sensor_fails_a_failed_asset_without_retry_or_skips_it(uploaded):
    asset_id = uploaded(title="clip [TRANSCODE_FAILED]")
    with pytest.raises(AirflowFailException, match=f"{asset_id} ended in TRANSCODE_FAILED"):
        sensor(asset_id, deferrable=False).execute({})
    with pytest.raises(AirflowSkipException):
        sensor(asset_id, deferrable=True, soft_fail=True).execute({})


def test_sensor_execute_complete():
    waiting = sensor("b" * 32, deferrable=True)
    done = waiting.execute_complete(
        {}, {"status": "success", "asset_id": "b" * 32, "asset_status": "PUBLISHED", "play_url": "u"}
    )
    assert done == {"asset_id": "b" * 32, "status": "PUBLISHED", "play_url": "u"}
    with pytest.raises(AirflowFailException, match="ended in CANCELLED"):
        waiting.execute_complete({}, {"status": "failed", "asset_id": "b" * 32, "asset_status": "CANCELLED"})
    with pytest.raises(AirflowException, match="boom"):
        waiting.execute_complete({}, {"status": "error", "asset_id": "b" * 32, "message": "boom"})


def test_explicit_ready_statuses_win():
    assert sensor(
        {"asset_id": "c", "ready_statuses": ["CREATED"]}, ready_statuses=["PUBLISHED"]
    ).ready_statuses == ["PUBLISHED"]
    assert sensor("c").ready_statuses == ["PUBLISHED"]
