"""The emulators' call limits: token buckets that answer as each platform throttles (Lazada's ApiCallLimit
with its ban, VOD's 429 APIG.0308, OBS's 503 SlowDown, Shopee's error_rate_limit), off unless configured."""

from __future__ import annotations

import time

import pytest

from media_upload.hooks.huawei_vod import HuaweiVodApiError, HuaweiVodHook
from media_upload.hooks.lazada import LazadaApiError, LazadaHook
from media_upload.hooks.shopee import ShopeeApiError, ShopeeHook
from tests.conftest import _connection_setter

ONCE = {"max_attempts": 1}


@pytest.fixture(autouse=True)
def ledger(ledger_connection):
    ledger_connection("sqlite")  # the hooks' call budgets live there


def test_lazada_bans_a_seller_who_empties_its_bucket(make_lazada_sandbox, lazada_connection):
    clock = [1000.0]
    sandbox = make_lazada_sandbox(
        clock=lambda: clock[0],
        seller_calls_per_second=2,
        call_burst=2,
        ban_seconds=3,
        timestamp_window=10**10,
    )
    lazada_connection(sandbox)
    hook = LazadaHook(**ONCE)
    hook.get_video_quota(), hook.get_video_quota()  # the burst
    with pytest.raises(LazadaApiError, match=r"ApiCallLimit.*this ban will last 3 seconds"):
        LazadaHook(**ONCE).get_video_quota()
    clock[0] += 2.2  # the bucket has refilled, the ban has not ended
    with pytest.raises(LazadaApiError, match="this ban will last 1 seconds"):
        LazadaHook(**ONCE).get_video_quota()
    clock[0] += 1.0
    assert LazadaHook(**ONCE).get_video_quota()["capacity_size"] > 0
    assert sandbox.backend.snapshot()["limited"] == {"seller 1001": 2}


def test_lazada_limits_are_off_by_default(lazada_sandbox, lazada_connection):
    lazada_connection(lazada_sandbox)
    hook = LazadaHook(**ONCE)
    for _ in range(30):
        hook.get_video_quota()
    assert lazada_sandbox.backend.snapshot()["limited"] == {}


def test_vod_throttles_a_project_over_its_calls_per_minute(make_huawei_vod_sandbox, huawei_vod_connection):
    sandbox = make_huawei_vod_sandbox(calls_per_minute=60)  # one call a second, none saved up

    def meta() -> dict:
        path = "/v1.0/{project_id}/asset/info"
        return HuaweiVodHook(**ONCE).vod_call("ShowAssetMeta", "GET", path, query=[("asset_id", "0" * 32)])

    huawei_vod_connection(sandbox)
    meta()
    with pytest.raises(HuaweiVodApiError, match=r"APIG\.0308") as throttled:
        meta()
    assert throttled.value.status == 429
    time.sleep(1.05)
    meta()
    assert sandbox.backend.snapshot()["limited"] == {f"project {sandbox.config.project_id}": 1}


def test_shopee_throttles_a_shop_over_its_calls(make_shopee_sandbox, monkeypatch):
    sandbox = make_shopee_sandbox(shop_calls_per_second=1)
    _connection_setter(monkeypatch, "shopee_default")(sandbox)
    ShopeeHook(**ONCE).get_items([1])
    with pytest.raises(ShopeeApiError, match="error_rate_limit"):
        ShopeeHook(**ONCE).get_items([1])
    assert sandbox.backend.snapshot()["limited"] == {"shop 600000": 1}
