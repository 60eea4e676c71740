"""Push, not poll: the emulator's signed video state messages, the plugin's receiver on a loopback server,
and the audit triggers woken by them (or polling when none come)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from media_upload.ledger import UploadLedger
from media_upload.protocols.lazada import push_signature, video_state_message
from media_upload.sandbox.lazada import LazadaSandbox
from media_upload.triggers.lazada import LazadaVideoAuditTrigger
from media_upload.triggers.videos import VideosSettledTrigger
from tests.integration.conftest import LazopDriver, first_event, wait_for

APP_KEY, SECRET, SELLER = "100132", "sandbox-app-secret", "1001"
STATES = ["READY_FOR_TRANSCODE", "TRANSCODING", "READY_FOR_AUDIT", "AUDIT_SUCCESS"]


@pytest.fixture(autouse=True)
def _fresh_accounts(monkeypatch):
    """The receiver reads each connection at most every few seconds; these tests change them at once."""
    from media_upload import push

    monkeypatch.setattr(push, "ACCOUNTS", push._Accounts(lambda conn_id: push._read_account(conn_id)))


@pytest.fixture
def receiver(plugin_app) -> str:
    """Lazada's receiver route on the plugin's app."""
    return plugin_app + "/push/lazada"


@pytest.fixture
def pushing(make_lazada_sandbox, lazada_connection, receiver) -> Callable[..., LazadaSandbox]:
    """``pushing(push_url=..., **config)``: an emulator pushing to the receiver (or ``push_url``), with
    ``lazada_default`` pointing at it, push on and a short fallback poll."""

    def make(push_poll_seconds: float = 30, **config: Any) -> LazadaSandbox:
        config.setdefault("push_url", f"{receiver}/lazada_default")
        config.setdefault("push_retry_seconds", 0.2)
        sandbox = make_lazada_sandbox(**config)
        extra = {**sandbox.airflow_connection()["extra"], "push_poll_seconds": push_poll_seconds}
        lazada_connection(sandbox, extra=extra)
        return sandbox

    return make


def kept(video_id: str | None = None) -> list[str]:
    return [s.state for s in UploadLedger().pushed_states() if video_id in (None, s.video_id)]


def signed(body: dict[str, Any] | bytes, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"Authorization": push_signature(APP_KEY, secret, raw), "Content-Type": "application/json"}


def message(
    video_id: str = "30000000001", state: str = "AUDIT_SUCCESS", seller: str = SELLER, age: float = 0
) -> dict:
    """A message type 7 sent ``age`` seconds ago."""
    at = time.time() - age
    return video_state_message(seller, video_id, state, at - 1, at, "lazada_sg")


def gets(sandbox: LazadaSandbox) -> int:
    return sandbox.backend.request_counts["/media/video/get"]


def upload(lazop, sandbox: LazadaSandbox, name: str, title: str = "hello") -> str:
    from media_upload.sandbox.sample_media import write_sample_mp4

    video = write_sample_mp4(sandbox.backend.data_dir / name, 300_000, seed=hash(name) % 1000)
    return LazopDriver(lazop, sandbox).upload(video, title=title)


# ------------------------------------------------------------------------------- wire


def test_message_is_shaped_and_signed_as_lazada_documents():
    body = video_state_message(
        "1001", "30023210009", "AUDIT_SUCCESS", 1_700_000_000, 1_700_000_000.5, "lazada_sg"
    )
    assert body == {
        "seller_id": "1001",
        "message_type": 7,
        "data": {"state": "AUDIT_SUCCESS", "timestamp": 1_700_000_000, "videoId": 30023210009},
        "timestamp": 1_700_000_000_500,
        "site": "lazada_sg",
    }
    # HEX(HMAC-SHA256(app_key + body, app_secret)), lowercase like Lazada's sample header.
    import hashlib
    import hmac

    raw = b'{"seller_id":"1001"}'
    expected = hmac.new(b"s3cret", b"100132" + raw, hashlib.sha256).hexdigest()
    assert push_signature("100132", "s3cret", raw) == expected == expected.lower()


# ------------------------------------------------------------------------------- emulator → receiver


def test_every_state_change_is_pushed_signed_and_kept_once(pushing, lazop):
    sandbox = pushing(audit_seconds=0.6)
    video_id = upload(lazop, sandbox, "in.mp4")
    assert wait_for(lambda: kept(video_id) == STATES or None)
    deliveries = sandbox.backend.push.log
    assert [(d["state"], d["outcome"]) for d in deliveries] == [(state, "HTTP 200") for state in STATES]
    stored = UploadLedger().pushed_states()
    assert {(s.app_key, s.seller_id, s.video_id) for s in stored} == {(APP_KEY, SELLER, video_id)}
    # RemoveVideo is a state change too.
    LazopDriver(lazop, sandbox).call("/media/video/remove", {"videoId": video_id})
    assert wait_for(lambda: kept(video_id)[-1:] == ["DELETED"] or None)


def test_unanswered_messages_are_delivered_again_then_given_up(pushing, lazop, receiver):
    # An unknown connection answers 401, so Lazada's schedule (here 2 retries, 0.2 s apart) runs out.
    sandbox = pushing(audit_seconds=0, push_url=f"{receiver}/no_such_connection", push_retries=2)
    video_id = upload(lazop, sandbox, "v.mp4")
    attempts = wait_for(lambda: [d for d in sandbox.backend.push.log if d["attempt"] == 3] or None)
    time.sleep(0.5)
    log = list(sandbox.backend.push.log)
    assert [(d["video_id"], d["state"], d["attempt"], d["outcome"]) for d in log] == [
        (video_id, "AUDIT_SUCCESS", attempt, "HTTP 401") for attempt in (1, 2, 3)
    ]
    assert attempts and kept() == []


# ------------------------------------------------------------------------------- the receiver


def test_receiver_keeps_good_messages_once_and_refuses_the_rest(pushing, receiver, caplog):
    pushing()
    url = f"{receiver}/lazada_default"
    caplog.set_level(logging.INFO)

    def post(body: bytes, headers: dict[str, str], target: str = url) -> requests.Response:
        return requests.post(target, data=body, headers=headers, timeout=5)

    good = signed(message())
    first, again = post(*good), post(*good)
    assert (first.status_code, first.json()["new"]) == (200, True)
    assert (again.status_code, again.json()["new"]) == (200, False)  # a redelivery changes nothing
    assert kept() == ["AUDIT_SUCCESS"]

    body, headers = signed(message(state="TRANSCODING"))
    assert post(body, {**headers, "Authorization": "0" * 64}).status_code == 401
    assert post(body, {"Content-Type": "application/json"}).status_code == 401
    assert post(*signed(message(state="TRANSCODING"), secret="another-app")).status_code == 401
    assert post(*signed(message(seller="999"))).status_code == 403
    assert post(*signed(b"{not json")).status_code == 400
    assert (
        post(*signed({**message(), "data": {"videoId": "x1", "state": "AUDIT_SUCCESS"}})).status_code == 400
    )
    assert post(*signed({**message(), "data": {**message()["data"], "state": "GONE"}})).status_code == 400
    assert post(*signed(b"x" * 70_000)).status_code == 413
    assert post(*good, target=f"{receiver}/unknown_conn").status_code == 401
    other_type = post(*signed({**message(), "message_type": 0}))
    assert (other_type.status_code, other_type.json()["kept"]) == (200, False)
    assert kept() == ["AUDIT_SUCCESS"]
    refusals = [r for r in caplog.records if "Refused a Lazada push" in r.getMessage()]
    assert len(refusals) == 9
    assert SECRET not in caplog.text and headers["Authorization"] not in caplog.text


def test_every_refusal_before_the_signature_holds_looks_the_same(pushing, receiver, monkeypatch):
    """Strangers learn nothing about which connections exist, their types or what they lack."""
    from media_upload import push

    sandbox = pushing()
    monkeypatch.setenv("AIRFLOW_CONN_SOME_HTTP", json.dumps({"conn_type": "http", "host": "x", "login": "u"}))
    no_secret = {**sandbox.airflow_connection(), "password": None}
    monkeypatch.setenv("AIRFLOW_CONN_NO_SECRET", json.dumps(no_secret))
    body, headers = signed(message(), secret="a-guess")
    answers = {
        target: requests.post(f"{receiver}/{target}", data=body, headers=headers, timeout=5)
        for target in ("lazada_default", "no_such_connection", "some_http", "no_secret", "bad%20id", "ledger")
    }
    assert {(a.status_code, a.text) for a in answers.values()} == {
        (401, json.dumps({"error": push.UNAUTHENTICATED}, separators=(",", ":")))
    }
    # A non-ASCII header is a wrong signature, not a server error.
    odd = requests.post(
        f"{receiver}/lazada_default", data=body, headers={"Authorization": "é".encode().decode("latin-1")}
    )
    assert (odd.status_code, odd.json()) == (401, {"error": push.UNAUTHENTICATED})


def test_missing_connections_are_looked_up_once_a_while(pushing, receiver, monkeypatch):
    from media_upload import push

    pushing()
    looked_up: list[str] = []
    real = push._read_account
    monkeypatch.setattr(push, "_read_account", lambda conn_id: looked_up.append(conn_id) or real(conn_id))
    body, headers = signed(message())
    for _ in range(5):
        assert requests.post(f"{receiver}/guess", data=body, headers=headers, timeout=5).status_code == 401
        assert requests.post(f"{receiver}/lazada_default", data=body, headers=headers).status_code == 200
    assert looked_up == ["guess", "lazada_default"]


def test_a_body_over_the_limit_is_refused_before_it_is_read(pushing, receiver):
    """A declared 3 GB body is answered at once, with nothing sent after the headers; a body sent without a
    length is cut off as soon as it passes the limit."""
    import socket
    from urllib.parse import urlsplit

    pushing()
    target = urlsplit(f"{receiver}/lazada_default")
    with socket.create_connection((target.hostname, target.port), timeout=5) as conn:
        conn.sendall(
            f"POST {target.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 3000000000\r\n\r\n".encode()
        )
        started = time.monotonic()
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 2

    def endless():
        for _ in range(1000):
            yield b"x" * 16_384

    chunked = requests.post(f"{receiver}/lazada_default", data=endless(), timeout=10)
    assert chunked.status_code == 413


def test_a_message_outside_the_freshness_window_is_not_kept(pushing, receiver):
    """Lazada's last redelivery (six hours after the first try) is kept; an older message is a replay."""
    from media_upload import push

    pushing()

    def post(video_id: str, age: float) -> requests.Response:
        body, headers = signed(message(video_id, age=age))
        return requests.post(f"{receiver}/lazada_default", data=body, headers=headers, timeout=5)

    last_retry, stale, ahead = (
        post("30000000001", 6.5 * 3600),
        post("30000000002", push.MAX_AGE_SECONDS + 60),
        post("30000000003", -3600),
    )
    assert (last_retry.status_code, last_retry.json()["kept"]) == (200, True)
    assert (stale.status_code, stale.json()["kept"]) == (200, False)
    assert ahead.status_code == 400
    assert {s.video_id for s in UploadLedger().pushed_states()} == {"30000000001"}


def test_receiver_refuses_a_connection_without_a_seller(pushing, lazada_connection, receiver, caplog):
    sandbox = pushing()
    extra = {k: v for k, v in sandbox.airflow_connection()["extra"].items() if k != "seller_id"}
    lazada_connection(sandbox, extra=extra)
    caplog.set_level(logging.INFO)
    body, headers = signed(message())
    answer = requests.post(f"{receiver}/lazada_default", data=body, headers=headers)
    assert answer.status_code == 401  # told to nobody outside...
    assert "no seller_id" in caplog.text  # ...but the deployment's log says why
    extra = {k: v for k, v in extra.items() if k != "push"}
    lazada_connection(sandbox, extra=extra)
    from media_upload import push

    push.ACCOUNTS.clear()
    body, headers = signed(message())
    answer = requests.post(f"{receiver}/lazada_default", data=body, headers=headers)
    assert answer.status_code == 403 and "seller_id" in answer.json()["error"]


# ------------------------------------------------------------------------------- triggers


def test_pushed_states_wake_the_trigger_without_a_single_poll(pushing, lazop):
    sandbox = pushing(audit_seconds=1.5)
    video_id = upload(lazop, sandbox, "a.mp4")
    before = gets(sandbox)
    started = time.monotonic()
    event = first_event(LazadaVideoAuditTrigger(video_id, poll_interval=30, first_poll_interval=30))
    assert event == {"status": "success", "state": "AUDIT_SUCCESS", "video_id": video_id}
    assert gets(sandbox) == before  # no GetVideo: the pushed states woke the trigger
    assert time.monotonic() - started < 10  # far less than the 30 s fallback poll


def test_a_state_pushed_before_the_trigger_waits_is_not_missed(pushing, lazop):
    sandbox = pushing(audit_seconds=0.3)
    video_id = upload(lazop, sandbox, "b.mp4", title="[AUDIT_FAILED] b")
    wait_for(lambda: "AUDIT_FAILED" in kept(video_id))
    before = gets(sandbox)
    event = first_event(LazadaVideoAuditTrigger(video_id, poll_interval=30))
    assert (event["status"], event["state"], gets(sandbox)) == ("failed", "AUDIT_FAILED", before)


def test_a_catalogs_wait_moves_on_pushes_alone(pushing, lazop):
    """The catalog's trigger, as its task re-defers for what is left, until every video settled."""
    sandbox = pushing(audit_seconds=1.2)
    video_ids = [upload(lazop, sandbox, f"c{n}.mp4") for n in range(4)]
    before = gets(sandbox)
    settled: dict[str, str] = {}
    while len(settled) < len(video_ids):
        videos = [
            {"platform": "lazada", "conn_id": "lazada_default", "video_id": v, "final": ["AUDIT_SUCCESS"]}
            for v in video_ids
            if f"lazada:{v}" not in settled
        ]
        event = first_event(VideosSettledTrigger(videos, poll_interval=30, first_poll_interval=30))
        assert event["status"] == "settled" and event["failed"] == {}
        settled.update({key: state for key, state in event["states"].items() if state == "AUDIT_SUCCESS"})
    assert gets(sandbox) == before


def test_with_the_receiver_unreachable_the_trigger_polls(pushing, lazop):
    # Push is on, but the messages go nowhere: after each fallback interval the trigger asks GetVideo.
    sandbox = pushing(audit_seconds=0.6, push_url="http://127.0.0.1:9/unreachable", push_poll_seconds=0.4)
    video_id = upload(lazop, sandbox, "d.mp4")
    before = gets(sandbox)
    event = first_event(LazadaVideoAuditTrigger(video_id, poll_interval=30))
    assert event["status"] == "success"
    assert gets(sandbox) > before
    assert kept() == []
    assert all(d["outcome"] == "ConnectionError" for d in sandbox.backend.push.log)


def test_push_needs_the_seller(make_lazada_sandbox, lazada_connection):
    from airflow.sdk.exceptions import AirflowFailException

    from media_upload.hooks.lazada import LazadaHook

    sandbox = make_lazada_sandbox()
    lazada_connection(sandbox, extra={"access_token": "t", "push": True})
    with pytest.raises(AirflowFailException, match="no seller_id"):
        assert LazadaHook().credentials is None


def test_a_fallback_poll_that_is_not_a_number_is_named(make_lazada_sandbox, lazada_connection):
    from airflow.sdk.exceptions import AirflowFailException

    from media_upload.hooks.lazada import LazadaHook

    sandbox = make_lazada_sandbox()
    extra = {**sandbox.airflow_connection()["extra"], "push": True, "push_poll_seconds": "five minutes"}
    lazada_connection(sandbox, extra=extra)
    with pytest.raises(AirflowFailException, match="push_poll_seconds 'five minutes' is not a number"):
        assert LazadaHook().credentials is None
