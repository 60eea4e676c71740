"""VOD's pushed states: the emulator's signed MFS event notifications, the plugin's receiver on a loopback
server, and the VOD waits woken by them (or polling ShowAssetMeta when none come)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from media_upload.ledger import UploadLedger
from media_upload.protocols.huawei_vod import FAILED_ASSET_STATUSES, notification, notification_signature
from media_upload.protocols.huawei_vod import ready_statuses as ready_for
from media_upload.sandbox.huawei_vod import HuaweiVodSandbox
from media_upload.triggers.huawei_vod import HuaweiVodAssetTrigger
from media_upload.triggers.videos import VideosSettledTrigger
from tests.integration.conftest import VodDriver, first_event, wait_for

KEY = "vod-notification-key"


@pytest.fixture(autouse=True)
def _fresh_accounts(monkeypatch):
    """The receiver reads each connection at most every few seconds; these tests change them at once."""
    from media_upload import push

    monkeypatch.setattr(push, "VOD_ACCOUNTS", push._Accounts(lambda conn_id: push._read_vod_account(conn_id)))


@pytest.fixture
def receiver(plugin_app) -> str:
    """VOD's receiver route on the plugin's app."""
    return plugin_app + "/push/huawei-vod"


@pytest.fixture
def notifying(make_huawei_vod_sandbox, huawei_vod_connection, receiver) -> Callable[..., HuaweiVodSandbox]:
    """``notifying(**config)``: an emulator notifying the receiver, signed with :data:`KEY`, with
    ``huawei_vod_default`` pointing at it, push on and a long fallback poll (unless told otherwise)."""

    def make(push_poll_seconds: float = 30, **config: Any) -> HuaweiVodSandbox:
        config.setdefault("push_url", f"{receiver}/huawei_vod_default")
        config.setdefault("push_key", KEY)
        config.setdefault("push_retry_seconds", (0.2, 0.2))
        sandbox = make_huawei_vod_sandbox(**config)
        extra = {**sandbox.airflow_connection()["extra"], "push_poll_seconds": push_poll_seconds}
        huawei_vod_connection(sandbox, extra=extra)
        return sandbox

    return make


def kept(asset_id: str | None = None) -> list[str]:
    return [s.state for s in UploadLedger().pushed_states() if asset_id in (None, s.video_id)]


def upload(sandbox: HuaweiVodSandbox, sample_video, title: str = "clip", **fields: Any) -> str:
    """An asset made, uploaded and confirmed with the official client."""
    driver = VodDriver(sandbox)
    asset = driver.create(title=title, **fields)
    driver.upload(asset, sample_video(300_000).read_bytes())
    driver.confirm(asset.asset_id)
    return str(asset.asset_id)


def metas(sandbox: HuaweiVodSandbox) -> int:
    return sandbox.backend.request_counts["ShowAssetMeta"]


def signed(
    event_type: str, info: dict[str, Any], key: str = KEY, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    body, message = notification(event_type, info)
    stamp = str(int(time.time() if at is None else at))
    return body, {"auth_timestamp": stamp, "auth_sign": notification_signature(key, stamp, message)}


# ------------------------------------------------------------------------------- wire


def test_an_asset_without_transcoding_is_notified_once_created(notifying, sample_video):
    sandbox = notifying()
    asset_id = upload(sandbox, sample_video)
    wait_for(lambda: kept(asset_id))
    assert kept(asset_id) == ["createComplete:SUCCEED"]
    deliveries = wait_for(lambda: sandbox.backend.notify.log)
    assert [(d["event_type"], d["status"], d["outcome"]) for d in deliveries] == [
        ("createComplete", "SUCCEED", "HTTP 200")
    ]
    state = UploadLedger().pushed_states()[0]
    assert state.account == ("huawei_vod", sandbox.config.project_id)


def test_a_transcoded_asset_is_notified_created_then_transcoded(notifying, sample_video):
    sandbox = notifying(transcode_seconds=0.5)
    asset_id = upload(sandbox, sample_video, template_group_name="hd")
    wait_for(lambda: len(kept(asset_id)) == 2)
    assert kept(asset_id) == ["createComplete:SUCCEED", "transcodeComplete:SUCCEED"]
    failed = upload(sandbox, sample_video, title="[TRANSCODE_FAILED] x", template_group_name="hd")
    wait_for(lambda: "transcodeComplete:FAILED" in kept(failed))


def test_the_signature_and_the_message_are_vods(notifying, sample_video, receiver):
    """The body wraps the event in ``message``; ``auth_sign`` is over ``VOD_{auth_timestamp}_{message}``,
    and a body that is the event itself is accepted signed over the whole body."""
    notifying()
    body, headers = signed("createComplete", {"asset_id": "a1", "status": "SUCCEED"})
    assert json.loads(json.loads(body)["message"])["create_info"]["asset_id"] == "a1"
    first = requests.post(f"{receiver}/huawei_vod_default", data=body, headers=headers, timeout=5)
    again = requests.post(f"{receiver}/huawei_vod_default", data=body, headers=headers, timeout=5)
    assert (first.status_code, first.json()["new"], again.json()["new"]) == (200, True, False)
    bare = json.loads(json.loads(body)["message"]) | {"create_info": {"asset_id": "a2", "status": "SUCCEED"}}
    raw = json.dumps(bare).encode()
    stamp = str(int(time.time()))
    plain = {"auth_timestamp": stamp, "auth_sign": notification_signature(KEY, stamp, raw.decode())}
    assert requests.post(f"{receiver}/huawei_vod_default", data=raw, headers=plain, timeout=5).json()["kept"]
    assert sorted(s.video_id for s in UploadLedger().pushed_states()) == ["a1", "a2"]


def test_the_receiver_keeps_good_notifications_and_refuses_the_rest(notifying, receiver, caplog):
    notifying()
    caplog.set_level(logging.WARNING)
    url = f"{receiver}/huawei_vod_default"

    def post(message: tuple[bytes, dict[str, str]], target: str = url) -> requests.Response:
        return requests.post(target, data=message[0], headers=message[1], timeout=5)

    good = signed("transcodeComplete", {"asset_id": "a1", "status": "SUCCEED"})
    unauthenticated = [
        post((good[0], {**good[1], "auth_sign": "0" * 64})),
        post((good[0], {})),
        post((good[0], {"auth_sign": good[1]["auth_sign"]})),  # no timestamp
        post(signed("transcodeComplete", {"asset_id": "a1", "status": "SUCCEED"}, key="another-key")),
        post(good, target=f"{receiver}/unknown_conn"),
        post(good, target=f"{receiver}/bad%20id"),
    ]
    unauthenticated.append(post((b"[" * 60_000, good[1])))  # too deep to parse: refused, never a 500
    assert {r.status_code for r in unauthenticated} == {401}
    assert len({r.text for r in unauthenticated}) == 1  # one answer, whatever the cause
    assert post(signed("transcodeComplete", {"asset_id": "a1"})).status_code == 400  # no status
    assert post(signed("reviewComplete", {"asset_id": "a1", "status": "SUCCEED"})).status_code == 400
    assert post(signed("createComplete", {"asset_id": "../x", "status": "SUCCEED"})).status_code == 400
    assert (
        post(
            signed("createComplete", {"asset_id": "a9", "status": "SUCCEED"}, at=time.time() + 3600)
        ).status_code
        == 400
    )
    stale = post(signed("createComplete", {"asset_id": "a8", "status": "SUCCEED"}, at=time.time() - 8 * 3600))
    assert (stale.status_code, stale.json()["kept"]) == (200, False)
    assert post((b"x" * 70_000, good[1])).status_code == 413
    assert post(good).json()["kept"]
    blocked = post(signed("reviewComplete", {"asset_id": "a1", "status": "SUCCEED", "suggestion": "BLOCK"}))
    assert (
        blocked.json()["state"] == "reviewComplete:BLOCK" and "reviewComplete:BLOCK" in FAILED_ASSET_STATUSES
    )
    assert sorted(kept("a1")) == ["reviewComplete:BLOCK", "transcodeComplete:SUCCEED"]
    assert KEY not in caplog.text


def test_an_event_no_wait_listens_to_is_answered_and_not_kept(notifying, receiver):
    notifying()
    _, message = notification("createComplete", {"asset_id": "a1", "status": "SUCCEED"})
    message = message.replace("createComplete", "thumbnailComplete").replace("create_info", "thumbnail_info")
    stamp = str(int(time.time()))
    headers = {"auth_timestamp": stamp, "auth_sign": notification_signature(KEY, stamp, message)}
    answer = requests.post(
        f"{receiver}/huawei_vod_default", data=json.dumps({"message": message}), headers=headers, timeout=5
    )
    assert (answer.status_code, answer.json()["kept"], kept()) == (200, False, [])


def test_a_connection_without_its_secret_takes_no_notification(
    notifying, huawei_vod_connection, receiver, caplog
):
    """Push on needs the key; without it every notification is refused (and the log says why). With the key
    but push off, notifications are kept and the waits poll, as Lazada's messages are."""
    from airflow.sdk.exceptions import AirflowFailException

    from media_upload import push
    from media_upload.hooks.huawei_vod import HuaweiVodHook

    sandbox = notifying()
    extra = sandbox.airflow_connection()["extra"]
    huawei_vod_connection(sandbox, extra={k: v for k, v in extra.items() if k != "push_secret"})
    with pytest.raises(AirflowFailException, match="no push_secret"):
        _ = HuaweiVodHook().credentials
    caplog.set_level(logging.WARNING)
    huawei_vod_connection(sandbox, extra={k: v for k, v in extra.items() if k not in ("push", "push_secret")})
    body, headers = signed("createComplete", {"asset_id": "a1", "status": "SUCCEED"})
    answer = requests.post(f"{receiver}/huawei_vod_default", data=body, headers=headers, timeout=5)
    assert answer.status_code == 401 and "no push_secret" in caplog.text and kept() == []
    huawei_vod_connection(sandbox, extra={k: v for k, v in extra.items() if k != "push"})
    push.VOD_ACCOUNTS.clear()
    answer = requests.post(f"{receiver}/huawei_vod_default", data=body, headers=headers, timeout=5)
    assert answer.status_code == 200 and kept() == ["createComplete:SUCCEED"]


# ------------------------------------------------------------------------------- waits


def test_a_notification_ends_the_wait_without_a_show_asset_meta(notifying, sample_video):
    sandbox = notifying(transcode_seconds=1.0)
    asset_id = upload(sandbox, sample_video, auto_publish=0)
    before = metas(sandbox)
    started = time.monotonic()
    trigger = HuaweiVodAssetTrigger(
        asset_id, ready_for(False, False), poll_interval=30, first_poll_interval=30
    )
    event = first_event(trigger)
    assert event == {"status": "success", "asset_status": "CREATED", "play_url": None, "asset_id": asset_id}
    assert metas(sandbox) == before  # the notification woke the trigger
    assert time.monotonic() - started < 10  # far less than the 30 s fallback poll


def test_a_published_asset_is_read_once_for_its_play_url(notifying, sample_video):
    sandbox = notifying(transcode_seconds=0.5)
    asset_id = upload(sandbox, sample_video, template_group_name="hd")
    before = metas(sandbox)
    event = first_event(HuaweiVodAssetTrigger(asset_id, ready_for(True, True), poll_interval=30))
    assert (event["status"], event["asset_status"]) == ("success", "PUBLISHED")
    assert event["play_url"].endswith(f"/{asset_id}/index.mp4")
    assert metas(sandbox) == before + 1


def test_a_failed_transcode_ends_the_wait_as_failed(notifying, sample_video):
    sandbox = notifying(transcode_seconds=0.3)
    asset_id = upload(sandbox, sample_video, title="[TRANSCODE_FAILED] y", template_group_name="hd")
    wait_for(lambda: "transcodeComplete:FAILED" in kept(asset_id))  # before the trigger waits: not missed
    before = metas(sandbox)
    event = first_event(HuaweiVodAssetTrigger(asset_id, ready_for(True, True), poll_interval=30))
    assert (event["status"], event["asset_status"], metas(sandbox)) == (
        "failed",
        "transcodeComplete:FAILED",
        before,
    )


def test_a_catalogs_wait_moves_on_notifications_alone(notifying, sample_video):
    sandbox = notifying(transcode_seconds=1.0)
    asset_ids = [upload(sandbox, sample_video, title=f"c{n}") for n in range(4)]
    final = [*ready_for(True, False), *FAILED_ASSET_STATUSES]
    before = metas(sandbox)
    settled: dict[str, str] = {}
    while len(settled) < len(asset_ids):
        videos = [
            {"platform": "huawei_vod", "conn_id": "huawei_vod_default", "video_id": a, "final": final}
            for a in asset_ids
            if f"huawei_vod:{a}" not in settled
        ]
        event = first_event(VideosSettledTrigger(videos, poll_interval=30, first_poll_interval=30))
        settled.update({k: v for k, v in event["states"].items() if v in final})
    assert set(settled.values()) == {"createComplete:SUCCEED"} and metas(sandbox) == before


def test_without_notifications_the_wait_polls(notifying, sample_video, receiver):
    """A receiver that cannot be reached slows the wait to ``push_poll_seconds``; it never stops it."""
    sandbox = notifying(push_url="http://127.0.0.1:9/nowhere", push_poll_seconds=0.5)
    asset_id = upload(sandbox, sample_video)
    event = first_event(HuaweiVodAssetTrigger(asset_id, ready_for(True, False), poll_interval=30))
    assert (event["status"], event["asset_status"]) == ("success", "PUBLISHED") and metas(sandbox) >= 1
