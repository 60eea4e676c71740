"""LazadaHook against the emulator: signing, envelope, retries, token refresh, async path, masking."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time

import pytest
import requests
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException

from media_upload.hooks.lazada import (
    API_SPECS,
    ApiSpec,
    LazadaApiError,
    LazadaHook,
    LazadaTransportError,
    is_retryable,
)
from media_upload.protocols.lazada import AUTH_GATEWAY

COVER = "https://sg-live-02.slatic.net/p/cover.png"


def fast_hook(conn_id: str = "lazada_default", **options) -> LazadaHook:
    return LazadaHook(
        conn_id, backoff_seconds=0.01, backoff_max_seconds=0.05, throttle_pause_seconds=0.01, **options
    )


def inject(sandbox, kind: str, api: str = "*", count: int = 1, seconds: float = 0) -> None:
    reply = requests.post(
        f"{sandbox.url}/_sandbox/lazada/faults",
        json={"kind": kind, "api": api, "count": count, "seconds": seconds},
    )
    assert reply.status_code == 200, reply.text


@pytest.fixture
def hook(lazada_sandbox, lazada_connection) -> LazadaHook:
    lazada_connection(lazada_sandbox)
    return fast_hook()


def upload_bytes(hook: LazadaHook, data: bytes, block: int, title: str = "t") -> str:
    upload_id = hook.init_create_video("v.mp4", len(data))
    chunks = [data[i : i + block] for i in range(0, len(data), block)]
    parts = [
        {"partNumber": n + 1, "eTag": hook.upload_video_block(upload_id, n, len(chunks), chunk)}
        for n, chunk in enumerate(chunks)
    ]
    return hook.complete_create_video(upload_id, list(reversed(parts)), title, COVER)


# ------------------------------------------------------------------------------ signing


def test_signature_agrees_with_the_official_sdk(hook, lazop):
    spec = API_SPECS["/media/video/block/commit"]
    signed = hook.signed_params(
        "/media/video/block/commit",
        {"uploadId": "U", "parts": [{"partNumber": 1, "eTag": "E"}], "title": "caf\u00e9"},
        spec,
    )
    unsigned = {k: v for k, v in signed.items() if k != "sign"}
    assert signed["sign"] == lazop.sign(hook.credentials.app_secret, "/media/video/block/commit", unsigned)
    assert signed["parts"] == '[{"partNumber":1,"eTag":"E"}]'
    assert signed["sign_method"] == "sha256" and re.fullmatch(r"\d{13}", signed["timestamp"])
    assert signed["app_key"] == "100132" and signed["access_token"] == "sandbox-access-token"


def test_empty_values_are_never_sent(hook):
    signed = hook.signed_params(
        "/media/video/get",
        {"videoId": "1", "blank": "", "none": None, "flag": True},
        API_SPECS["/media/video/get"],
    )
    assert "blank" not in signed and "none" not in signed and signed["flag"] == "true"


def test_auth_calls_carry_no_access_token(hook):
    signed = hook.signed_params(
        "/auth/token/refresh", {"refresh_token": "r"}, API_SPECS["/auth/token/refresh"]
    )
    assert "access_token" not in signed


@pytest.mark.parametrize(
    ("host", "gateway", "auth"),
    [
        ("sg", "https://api.lazada.sg/rest", AUTH_GATEWAY),
        ("https://api.lazada.com.my/rest", "https://api.lazada.com.my/rest", AUTH_GATEWAY),
        ("http://127.0.0.1:9/rest", "http://127.0.0.1:9/rest", "http://127.0.0.1:9/rest"),
    ],
)
def test_connection_host_maps_to_gateways(lazada_sandbox, lazada_connection, host, gateway, auth):
    lazada_connection(lazada_sandbox, host=host)
    credentials = LazadaHook().credentials
    assert (credentials.gateway, credentials.auth_gateway) == (gateway, auth)


def test_prefixed_extra_fields_from_the_ui_form_are_read(lazada_sandbox, lazada_connection):
    lazada_connection(lazada_sandbox, extra={"extra__lazada__access_token": "from-form"})
    assert LazadaHook().credentials.access_token == "from-form"


# ---------------------------------------------------------------------------- a real flow


def test_upload_flow_and_product_calls(hook, lazada_sandbox, sample_video):
    data = sample_video(700_000, seed=5).read_bytes()
    assert hook.get_video_quota() == {"capacity_size": 1_024_000_000, "used_size": 0}
    video_id = upload_bytes(hook, data, 300_000)
    assert lazada_sandbox.backend.snapshot()["videos"][video_id]["md5"] == hashlib.md5(data).hexdigest()
    assert hook.get_video(video_id)["state"] in ("READY_FOR_TRANSCODE", "TRANSCODING")
    url = hook.upload_image(b"\x89PNG\r\n\x1a\n" + bytes(10), "c.png")
    assert "slatic.net" in url
    hook.remove_video(video_id)
    assert hook.get_video(video_id)["state"] == "DELETED"


def test_test_connection(hook, lazada_sandbox, lazada_connection):
    ok, message = hook.test_connection()
    assert ok and "bytes of video quota used" in message
    lazada_connection(lazada_sandbox, password="wrong-secret")
    ok, message = LazadaHook().test_connection()
    assert not ok and "IncompleteSignature" in message and "wrong-secret" not in message


# ------------------------------------------------------------------------------ envelope


def test_error_envelope_becomes_a_typed_exception(hook):
    with pytest.raises(LazadaApiError) as refused:
        hook.init_create_video("v.mp4", 100_000_000)
    error = refused.value
    assert error.code == "ILLEGAL_PARAMETER" and "fileBytes" in error.message and error.request_id
    assert error.api == "/media/video/block/create"
    assert str(error).startswith("Lazada /media/video/block/create failed: ILLEGAL_PARAMETER")


def test_result_code_failures_are_failures(make_lazada_sandbox, lazada_connection):
    lazada_connection(make_lazada_sandbox(failure_shape="result_code", success_as_string=True))
    hook = fast_hook()
    with pytest.raises(LazadaApiError) as refused:
        hook.init_create_video("v.mp4", 100_000_000)
    assert refused.value.code == "ILLEGAL_PARAMETER"
    assert hook.get_video_quota()["capacity_size"] == 1_024_000_000  # numbers as strings still parse


def test_parse_response_rules(hook):
    with pytest.raises(LazadaApiError, match="MissingResult"):
        hook.parse_response("/x", 200, {"code": "0", "request_id": "r"}, expect="upload_id")
    with pytest.raises(LazadaApiError, match="FAIL_TO_UPLOAD_BLOCK"):
        hook.parse_response(
            "/x", 200, {"code": "0", "success": "false", "result_code": "FAIL_TO_UPLOAD_BLOCK"}, None
        )
    with pytest.raises(LazadaTransportError) as not_json:
        hook.parse_response("/x", 502, ["not", "an", "envelope"], None)
    assert not_json.value.retryable
    assert (
        hook.parse_response("/x", 200, {"code": "0", "success": True, "e_tag": "E"}, "e_tag")["e_tag"] == "E"
    )


# ------------------------------------------------------------------------------- retries


@pytest.mark.parametrize(
    ("exc", "spec", "expected"),
    [
        (LazadaApiError("/a", "ApiCallLimit", ""), ApiSpec(idempotent=False), True),
        (LazadaApiError("/a", "901", ""), ApiSpec(idempotent=False), True),
        (LazadaApiError("/a", "4154", ""), ApiSpec(idempotent=True), True),
        (LazadaApiError("/a", "ServiceTimeout", ""), ApiSpec(idempotent=True), True),
        (LazadaApiError("/a", "ServiceTimeout", ""), ApiSpec(idempotent=False), False),
        (LazadaApiError("/a", "FAIL_TO_UPLOAD_BLOCK", ""), ApiSpec(idempotent=True), True),
        (LazadaApiError("/a", "IncompleteSignature", ""), ApiSpec(idempotent=True), False),
        (LazadaApiError("/a", "MissingParameter", ""), ApiSpec(idempotent=True), False),
        (LazadaApiError("/a", "ILLEGAL_PARAMETER", ""), ApiSpec(idempotent=True), False),
        (LazadaApiError("/a", "FAIL_TO_BLOCK_COMPLETE", ""), ApiSpec(idempotent=False), False),
        (LazadaTransportError("/a", "502", retryable=True), ApiSpec(idempotent=True), True),
        (LazadaTransportError("/a", "502", retryable=True), ApiSpec(idempotent=False), False),
        (LazadaTransportError("/a", "refused", retryable=True, sent=False), ApiSpec(idempotent=False), True),
        (LazadaTransportError("/a", "404 page", retryable=False), ApiSpec(idempotent=True), False),
        (ValueError("bug"), ApiSpec(idempotent=True), False),
    ],
)
def test_retry_classification(exc, spec, expected):
    assert is_retryable(exc, spec) is expected


@pytest.mark.parametrize(
    "kind", ["ApiCallLimit", "901", "4154", "ServiceTimeout", "http502", "drop", "FAIL_TO_UPLOAD_BLOCK"]
)
def test_transient_block_failures_are_retried(hook, lazada_sandbox, kind):
    upload_id = hook.init_create_video("v.mp4", 10)
    inject(lazada_sandbox, kind, "/media/video/block/upload", count=2)
    assert hook.upload_video_block(upload_id, 0, 1, bytes(10)) == hashlib.md5(bytes(10)).hexdigest().upper()
    assert lazada_sandbox.backend.request_counts["/media/video/block/upload"] == 3


def test_retries_stop_after_max_attempts(hook, lazada_sandbox):
    inject(lazada_sandbox, "ApiCallLimit", "/media/video/quota/get", count=10)
    with pytest.raises(LazadaApiError, match="ApiCallLimit"):
        hook.get_video_quota()
    assert lazada_sandbox.backend.request_counts["/media/video/quota/get"] == 5


def test_commit_is_not_retried_after_an_ambiguous_failure(hook, lazada_sandbox, sample_video):
    data = sample_video(2000).read_bytes()
    upload_id = hook.init_create_video("v.mp4", len(data))
    parts = [{"partNumber": 1, "eTag": hook.upload_video_block(upload_id, 0, 1, data)}]
    inject(lazada_sandbox, "ServiceTimeout", "/media/video/block/commit")
    with pytest.raises(LazadaApiError, match="ServiceTimeout"):
        hook.complete_create_video(upload_id, parts, "t", COVER)
    inject(lazada_sandbox, "http502", "/media/video/block/commit")
    with pytest.raises(LazadaTransportError, match="HTTP 502"):
        hook.complete_create_video(upload_id, parts, "t", COVER)
    assert lazada_sandbox.backend.request_counts["/media/video/block/commit"] == 2
    inject(lazada_sandbox, "ApiCallLimit", "/media/video/block/commit")  # refused before it ran: retried
    assert hook.complete_create_video(upload_id, parts, "t", COVER)


def test_signature_errors_are_not_retried(lazada_sandbox, lazada_connection):
    lazada_connection(lazada_sandbox, password="wrong")
    with pytest.raises(LazadaApiError, match="IncompleteSignature"):
        fast_hook().get_video_quota()
    assert lazada_sandbox.backend.request_counts["/media/video/quota/get"] == 1


def test_timeouts_are_retried_for_reads(hook, lazada_sandbox):
    hook.timeout = 0.3
    inject(lazada_sandbox, "delay", "/media/video/quota/get", seconds=1)
    started = time.monotonic()
    assert hook.get_video_quota()["used_size"] == 0
    assert time.monotonic() - started < 1  # the retry answered before the delayed first call did
    time.sleep(1)  # the delayed call is logged once its answer is sent
    assert lazada_sandbox.backend.request_counts["/media/video/quota/get"] == 2


def test_unreachable_gateway_is_a_transport_error(lazada_sandbox, lazada_connection):
    lazada_connection(lazada_sandbox, host="http://127.0.0.1:9/rest")
    hook = fast_hook(max_attempts=2)
    with pytest.raises(LazadaTransportError) as failed:
        hook.get_video_quota()
    assert not failed.value.sent
    assert "sandbox-access-token" not in str(failed.value)


# ------------------------------------------------------------------------- token refresh


def test_refused_token_is_renewed_once_and_logged_masked(hook, lazada_sandbox, capfd):
    requests.post(f"{lazada_sandbox.url}/_sandbox/lazada/tokens/expire")
    assert hook.get_video_quota()["used_size"] == 0
    assert hook.credentials.access_token != lazada_sandbox.config.access_token
    assert lazada_sandbox.backend.request_counts["/auth/token/refresh"] == 1
    logged = "".join(capfd.readouterr())
    assert "the new pair is kept in the ledger database" in logged
    assert hook.credentials.access_token not in logged and hook.credentials.refresh_token not in logged
    hook.get_video_quota()
    assert lazada_sandbox.backend.request_counts["/auth/token/refresh"] == 1


def test_refused_token_without_a_refresh_token_is_a_clear_error(lazada_sandbox, lazada_connection):
    lazada_connection(lazada_sandbox, extra={"access_token": lazada_sandbox.config.access_token})
    requests.post(f"{lazada_sandbox.url}/_sandbox/lazada/tokens/expire")
    with pytest.raises(LazadaApiError) as refused:
        fast_hook().get_video_quota()
    assert refused.value.code == "IllegalAccessToken"
    assert "has no refresh_token to renew it" in str(refused.value)


def test_expired_refresh_token_is_reported(make_lazada_sandbox, lazada_connection):
    sandbox = make_lazada_sandbox(refresh_token_ttl=0.01)
    lazada_connection(sandbox)
    requests.post(f"{sandbox.url}/_sandbox/lazada/tokens/expire")
    with pytest.raises(LazadaApiError, match="IllegalRefreshToken"):
        fast_hook().get_video_quota()


def test_missing_access_token_fails_before_any_call(lazada_sandbox, lazada_connection):
    lazada_connection(lazada_sandbox, extra={})
    with pytest.raises(AirflowException, match="no access_token"):
        fast_hook().get_video_quota()
    assert lazada_sandbox.backend.request_counts == {}


def test_unknown_connection(monkeypatch):
    with pytest.raises(AirflowNotFoundException, match="lazada_nowhere"):
        fast_hook("lazada_nowhere").get_video_quota()


# ------------------------------------------------------------------------------ async path


def test_async_reads_sign_the_same_way(hook, lazada_sandbox, sample_video):
    video_id = upload_bytes(hook, sample_video(3000).read_bytes(), 3000)
    body = asyncio.run(fast_hook().aget_video(video_id))
    assert body["state"] in ("READY_FOR_TRANSCODE", "TRANSCODING", "READY_FOR_AUDIT", "AUDIT_SUCCESS")
    assert lazada_sandbox.backend.request_log[-1]["code"] == "0"


def test_async_retries_and_refresh(hook, lazada_sandbox, sample_video):
    video_id = upload_bytes(hook, sample_video(3000).read_bytes(), 3000)
    inject(lazada_sandbox, "http502", "/media/video/get")
    requests.post(f"{lazada_sandbox.url}/_sandbox/lazada/tokens/expire")
    async_hook = fast_hook()
    assert asyncio.run(async_hook.aget_video(video_id))["state"]
    assert lazada_sandbox.backend.request_counts["/auth/token/refresh"] == 1


def test_async_errors_are_typed_and_masked(lazada_sandbox, lazada_connection):
    lazada_connection(lazada_sandbox, password="wrong")
    with pytest.raises(LazadaApiError, match="IncompleteSignature"):
        asyncio.run(fast_hook().aget_video("1"))


# ------------------------------------------------------------------------------- masking


def test_reprs_hold_no_secrets(hook, lazada_sandbox):
    text = f"{hook!r} {hook.credentials!r} {hook.credentials}"
    for secret in (
        lazada_sandbox.config.app_secret,
        lazada_sandbox.config.access_token,
        lazada_sandbox.config.refresh_token,
    ):
        assert secret not in text


def test_transport_errors_mask_tokens_in_urls(lazada_sandbox, lazada_connection):
    """requests puts the whole URL, token included, in its connection errors; the hook masks it."""
    lazada_connection(lazada_sandbox, host="http://127.0.0.1:9/rest")
    with pytest.raises(LazadaTransportError) as failed:
        fast_hook(max_attempts=1).get_video("123")
    assert "access_token=***" in str(failed.value) or "access_token" not in str(failed.value)
    assert lazada_sandbox.config.access_token not in str(failed.value)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


# ------------------------------------------------------------------------------ call limits


def quota_calls(hooks: list[LazadaHook], each: int) -> None:
    """``each`` quota calls from 8 threads per hook, as a catalog's tasks make them."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8 * len(hooks)) as pool:
        for future in [pool.submit(hook.get_video_quota) for hook in hooks for _ in range(each)]:
            future.result()


def test_the_connections_budget_keeps_calls_under_the_sellers_limit(
    make_lazada_sandbox, lazada_connection, ledger_connection
):
    sandbox = make_lazada_sandbox(seller_calls_per_second=10, call_burst=10, ban_seconds=2)
    ledger_connection("sqlite")
    connection = lazada_connection(sandbox)
    lazada_connection(sandbox, extra={**connection["extra"], "calls_per_second": 8, "call_burst": 8})
    quota_calls([fast_hook(), fast_hook()], 25)  # two tasks' hooks, one budget
    assert sandbox.backend.snapshot()["limited"] == {}
    assert sandbox.backend.request_counts["/media/video/quota/get"] == 50


def test_a_ban_lazada_names_pauses_every_hook_of_the_connection(
    lazada_sandbox, lazada_connection, ledger_connection
):
    """One task's call is answered ApiCallLimit "this ban will last 1 seconds" (and it gives up): another
    task's hook of the same connection, a new budget object, sends nothing until the ban is over."""
    ledger_connection("sqlite")
    lazada_connection(lazada_sandbox)
    inject(lazada_sandbox, "ApiCallLimit", "/media/video/quota/get")
    with pytest.raises(LazadaApiError, match="ApiCallLimit"):
        fast_hook(max_attempts=1).get_video_quota()
    refused_at = time.time()
    other = fast_hook()
    assert other.get_video_quota()["capacity_size"] > 0
    (sent,) = [
        entry["at"]
        for entry in requests.get(f"{lazada_sandbox.url}/_sandbox/lazada/requests", timeout=10).json()
        if entry["api"] == "/media/video/quota/get" and entry["code"] == "0"
    ]
    assert sent >= refused_at + 0.9 and other.budget.waited >= 0.9
