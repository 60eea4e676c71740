"""Failures classified by what they mean, and one token refresh for the whole deployment."""

from __future__ import annotations

import json
import threading

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException

from media_upload.hooks.lazada import LazadaHook, LazadaRefusal
from media_upload.operators.lazada import LazadaInitVideoUploadOperator
from tests.integration.conftest import COVER_URL


def init(context, source, **options):
    return LazadaInitVideoUploadOperator(
        task_id="init",
        source=str(source),
        title="Red dress",
        cover_url=COVER_URL,
        product="item:1",
        **options,
    ).execute(context)


def test_a_wrong_app_secret_fails_at_once_after_one_call(
    lazada_sandbox, lazada_connection, sample_video, task_context
):
    """The gateway's IncompleteSignature is final: no hook retry, no Airflow retry, and the message says
    what to check."""
    lazada_connection(lazada_sandbox, password="not-the-secret")
    with pytest.raises(LazadaRefusal) as refused:
        init(task_context(), sample_video(5_000))
    assert isinstance(refused.value, AirflowFailException)  # the task runner fails it without retries
    assert "IncompleteSignature" in str(refused.value) and "App Management" in str(refused.value)
    assert lazada_sandbox.backend.request_counts == {"/media/video/block/create": 1}
    assert "not-the-secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"host": "xx"}, "host 'xx' is not a Lazada region code (sg, my, th, ph, vn, id) nor a gateway URL"),
        ({"conn_type": "http"}, "is of type 'http'; LazadaHook needs a 'lazada' connection"),
        ({"host": ""}, "has no host"),
        ({"extra": {}}, "has no access_token"),
    ],
    ids=["unknown-region", "wrong-type", "no-host", "no-token"],
)
def test_a_connection_that_cannot_work_fails_before_any_call(
    lazada_sandbox, lazada_connection, sample_video, task_context, changes, fragment
):
    lazada_connection(lazada_sandbox, **changes)
    with pytest.raises(AirflowFailException, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        init(task_context(), sample_video(5_000))
    assert lazada_sandbox.backend.request_counts == {}


def test_a_region_code_resolves_to_its_gateway(lazada_sandbox, lazada_connection):
    lazada_connection(lazada_sandbox, host="MY")
    assert LazadaHook().credentials.gateway == "https://api.lazada.com.my/rest"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_tasks_that_meet_an_expired_token_at_once_refresh_it_once(
    lazada_sandbox, lazada_connection, ledger_connection, database
):
    """Six tasks find the access token expired at the same moment. The emulator revokes a refresh token
    once used (rotation), so a second refresh with it would fail: exactly one refresh happens, and every
    task goes on with the pair it stored."""
    ledger_connection(database)
    lazada_connection(lazada_sandbox)
    requests.post(f"{lazada_sandbox.url}/_sandbox/lazada/tokens/expire")
    hooks = [LazadaHook(max_attempts=1) for _ in range(6)]
    start, errors = threading.Barrier(len(hooks)), []

    def task(hook: LazadaHook) -> None:
        start.wait()
        try:
            hook.get_video_quota()
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=task, args=(hook,)) for hook in hooks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert lazada_sandbox.backend.request_counts["/auth/token/refresh"] == 1
    assert len({hook.credentials.access_token for hook in hooks}) == 1
    assert hooks[0].credentials.access_token != lazada_sandbox.config.access_token

    later = LazadaHook()  # a task started later: the connection's token is refused, the stored one works
    later.get_video_quota()
    assert later.credentials.access_token == hooks[0].credentials.access_token
    assert lazada_sandbox.backend.request_counts["/auth/token/refresh"] == 1


@pytest.fixture
def fernet_key(monkeypatch):
    """A deployment with ``[core] fernet_key`` set (Airflow caches its Fernet, so the cache is reset)."""
    from airflow.models.crypto import get_fernet
    from cryptography.fernet import Fernet

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    get_fernet.cache_clear()
    yield
    get_fernet.cache_clear()


def test_stored_tokens_are_encrypted_with_the_fernet_key(
    lazada_sandbox, lazada_connection, fernet_key, tmp_path
):
    lazada_connection(lazada_sandbox)
    requests.post(f"{lazada_sandbox.url}/_sandbox/lazada/tokens/expire")
    hook = LazadaHook()
    hook.get_video_quota()
    assert lazada_sandbox.backend.request_counts["/auth/token/refresh"] == 1
    database = b"".join(path.read_bytes() for path in tmp_path.glob("own-ledger.db*"))  # the WAL too
    assert b"media_upload_tokens" in database
    assert hook.credentials.access_token.encode() not in database
    assert hook.credentials.refresh_token.encode() not in database


def test_a_used_refresh_token_is_refused_by_the_emulator(lazada_sandbox):
    """The rotation the token store exists for: the same refresh token does not work twice."""
    from media_upload.sandbox.lazada.errors import ErrorReply

    backend = lazada_sandbox.backend
    first = backend.refresh_access_token({"refresh_token": backend.config.refresh_token})
    assert json.dumps(first)  # a new pair
    with pytest.raises(ErrorReply, match="IllegalRefreshToken"):
        backend.refresh_access_token({"refresh_token": backend.config.refresh_token})


def test_without_a_fernet_key_tokens_are_not_renewed_in_clear_text(
    lazada_sandbox, lazada_connection, monkeypatch
):
    """The refresh is refused before Lazada is asked (a refresh rotates the tokens), with what to set."""
    from airflow.models.crypto import get_fernet
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    get_fernet.cache_clear()
    try:
        lazada_connection(lazada_sandbox)
        requests.post(f"{lazada_sandbox.url}/_sandbox/lazada/tokens/expire")
        with pytest.raises(AirflowFailException) as refused:
            LazadaHook().get_video_quota()
    finally:
        get_fernet.cache_clear()
    assert "has no [core] fernet_key (AIRFLOW__CORE__FERNET_KEY)" in str(refused.value)
    assert lazada_sandbox.backend.request_counts["/auth/token/refresh"] == 0
