"""The session a platform hook gets from HttpHook: the transport extras as the HTTP provider reads them,
keep-alive and pool size, and never the app secret or a token as Basic auth or a header."""

from __future__ import annotations

import json
import socket
import ssl

import pytest
from airflow.sdk.exceptions import AirflowFailException
from requests.adapters import HTTPAdapter

from media_upload.hooks.huawei_vod import HuaweiVodHook
from media_upload.hooks.lazada import LazadaHook
from media_upload.hooks.transport import KeepAliveAdapter
from tests.tls import private_ca

SECRETS = {
    "password": "app-secret-1234",
    "access_token": "access-token-1234",
    "refresh_token": "refresh-1234",
}


@pytest.fixture
def lazada(monkeypatch: pytest.MonkeyPatch):
    """``lazada(**extra)``: a LazadaHook whose connection has these extras beside its credentials; no proxy
    or CA bundle comes from the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)

    def make(**extra) -> LazadaHook:
        connection = {
            "conn_type": "lazada",
            "host": "https://api.lazada.sg/rest",
            "login": "100132",
            "password": SECRETS["password"],
            "extra": {
                "access_token": SECRETS["access_token"],
                "refresh_token": SECRETS["refresh_token"],
                **extra,
            },
        }
        monkeypatch.setenv("AIRFLOW_CONN_LAZADA_DEFAULT", json.dumps(connection))
        return LazadaHook()

    return make


def test_the_session_carries_no_credential(lazada):
    session = lazada(seller_id="S1", timeout=30).session
    assert session.auth is None
    assert set(session.headers) == {"User-Agent", "Accept-Encoding", "Accept", "Connection"}
    assert not any(secret in repr(dict(session.headers)) for secret in SECRETS.values())
    assert session.proxies == {} and session.verify is True and session.cert is None


def test_the_transport_extras_as_the_http_provider_reads_them(lazada, tmp_path):
    ca = private_ca(tmp_path)
    session = lazada(
        proxy="http://egress:pw-123456@proxy.example:3128",  # HttpHook's alias of proxies
        verify_ssl=str(ca.ca),  # ...and of verify
        extra__lazada__cert=json.dumps(
            [str(ca.client_certificate), str(ca.client_key)]
        ),  # as a form saves it
        trust_env="false",
        max_redirects="3",
    ).session
    assert session.proxies == {
        "http": "http://egress:pw-123456@proxy.example:3128",
        "https": "http://egress:pw-123456@proxy.example:3128",
    }
    assert session.verify == str(ca.ca)
    assert session.cert == (str(ca.client_certificate), str(ca.client_key))
    assert session.trust_env is False and session.max_redirects == 3


def test_proxies_by_scheme_and_verify_off(lazada):
    hook = lazada(proxies={"https": "http://proxy.example:3128"}, verify=False)
    assert hook.session.proxies == {"https": "http://proxy.example:3128"} and hook.session.verify is False
    assert hook.aiohttp_options("https://api.lazada.sg/rest/x") == {
        "proxy": "http://proxy.example:3128",
        "ssl": False,
    }
    assert hook.aiohttp_options("http://emulator:8787/rest/x") == {"proxy": None, "ssl": False}


def test_aiohttp_gets_the_ca_bundle_and_the_client_certificate(lazada, tmp_path):
    ca = private_ca(tmp_path)
    hook = lazada(verify=str(ca.ca), cert=[str(ca.client_certificate), str(ca.client_key)])
    context = hook.aiohttp_options("https://api.lazada.sg/rest/x")["ssl"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert any("media-upload test CA" in str(ca_cert["subject"]) for ca_cert in context.get_ca_certs())
    assert lazada().aiohttp_options("https://api.lazada.sg/rest/x") == {"proxy": None, "ssl": True}


def _keep_alive(adapter: HTTPAdapter) -> dict[int, int]:
    options = adapter.poolmanager.connection_pool_kw["socket_options"]
    return {name: value for level, name, value in options if level == socket.IPPROTO_TCP}


def test_keep_alive_on_the_provider_s_adapter_with_a_pool_for_the_blocks_in_flight(lazada):
    lazada()
    session = LazadaHook(tcp_keep_alive_idle=45, tcp_keep_alive_count=4).session
    adapter = session.get_adapter("https://api.lazada.sg")
    assert isinstance(adapter, KeepAliveAdapter) and session.get_adapter("http://x") is adapter
    assert adapter._pool_maxsize == 48 and adapter._pool_connections == 4
    assert _keep_alive(adapter)[socket.TCP_KEEPIDLE] == 45 and _keep_alive(adapter)[socket.TCP_KEEPCNT] == 4
    through_proxy = adapter.proxy_manager_for("http://proxy.example:3128")
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in through_proxy.connection_pool_kw["socket_options"]


def test_keep_alive_extras_win_and_can_turn_it_off(lazada):
    lazada(tcp_keep_alive_idle="30", tcp_keep_alive_interval=5)
    adapter = LazadaHook(tcp_keep_alive_idle=45).session.get_adapter("https://x")
    assert _keep_alive(adapter)[socket.TCP_KEEPIDLE] == 30 and _keep_alive(adapter)[socket.TCP_KEEPINTVL] == 5
    session = lazada(tcp_keep_alive=False).session
    adapter = session.get_adapter("https://x")
    assert type(adapter) is HTTPAdapter and adapter._pool_maxsize == 48
    assert session.get_adapter("http://x") is adapter


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"proxies": "proxy.example"}, "proxies: 'proxy.example' is not a proxy URL"),
        ({"proxies": "http://user:pw-123456@"}, "proxies: 'http://***@' is not a proxy URL"),
        ({"proxies": '{"https": 3128}'}, "proxies must be a proxy URL or a JSON object"),
        ({"verify": "/no/such/ca.pem"}, "verify names /no/such/ca.pem, which is not a file or folder"),
        ({"cert": "/secret/place/client.pem"}, "cert names a client certificate or key that is not a file"),
        ({"cert": "NOT_PEM"}, "cert names files that are not a readable PEM certificate and its key"),
        ({"verify": "NOT_PEM"}, "which is not a readable CA bundle (PEM)"),
        ({"tcp_keep_alive": "sometimes"}, "tcp_keep_alive must be true or false"),
        ({"tcp_keep_alive_idle": "soon"}, "tcp_keep_alive_idle must be a whole number"),
    ],
)
def test_settings_it_cannot_use_fail_the_task_with_a_reason(lazada, extra, message, tmp_path):
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    extra = {name: str(not_pem) if value == "NOT_PEM" else value for name, value in extra.items()}
    hook = lazada(**extra)
    assert hook.credentials.app_key == "100132"  # what the push receiver reads, on the api-server
    with pytest.raises(AirflowFailException, match="connection 'lazada_default': ") as failure:
        hook.session  # noqa: B018
    assert message in str(failure.value) and "/secret/place" not in str(failure.value)
    assert "pw-123456" not in str(failure.value)


def test_vod_reads_the_same_extras(monkeypatch):
    connection = {
        "conn_type": "huawei_vod",
        "host": "https://vod.cn-north-4.myhuaweicloud.com",
        "login": "AK",
        "password": "SK-secret-1234",
        "extra": {"project_id": "p1", "proxies": "http://proxy.example:3128", "tcp_keep_alive_idle": 50},
    }
    monkeypatch.setenv("AIRFLOW_CONN_HUAWEI_VOD_DEFAULT", json.dumps(connection))
    session = HuaweiVodHook().session
    assert session.auth is None and "project_id" not in session.headers
    assert session.proxies["https"] == "http://proxy.example:3128"
    assert _keep_alive(session.get_adapter("https://x"))[socket.TCP_KEEPIDLE] == 50
