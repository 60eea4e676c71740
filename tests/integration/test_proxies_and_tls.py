"""The hooks' transport as the HTTP provider sets it from a connection: a real forward proxy on loopback
(absolute-form for http, CONNECT for https, with proxy credentials), emulators served over TLS by a private
CA (CA bundle, verify off, client certificates), and the messages when either fails.

The emulators are renamed ``lazada.test`` and ``vod.test``, names only the proxy resolves: a request that
bypassed the proxy could not even find them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from media_upload.hooks.huawei_vod import HuaweiVodHook, HuaweiVodTransportError, UploadedPart
from media_upload.hooks.lazada import LazadaHook, LazadaTransportError
from media_upload.protocols.huawei_vod import md5_base64
from tests.proxy import ForwardProxy, forward_proxy, unused_port
from tests.tls import PrivateCa, private_ca

COVER = "https://sg-live-02.slatic.net/p/cover.png"
PROXY_CREDENTIALS = ("egress", "proxy-p@ss/word")
NAMES = {"lazada.test": "127.0.0.1", "vod.test": "127.0.0.1", "shopee.test": "127.0.0.1"}
#: Extras of the connections that HttpHook would have sent as headers had it seen them.
NOT_HEADERS = {
    "access_token",
    "refresh_token",
    "seller_id",
    "project_id",
    "region",
    "shop_id",
    "proxies",
    "verify",
}


@pytest.fixture(autouse=True)
def _no_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test names: no proxy or CA bundle from the machine's environment."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name in NAMES:
        try:
            socket.getaddrinfo(name, 80)
        except socket.gaierror:
            continue
        pytest.fail(f"{name} resolves on this machine, so a request could bypass the test proxy unseen")


@pytest.fixture
def ca(tmp_path) -> PrivateCa:
    return private_ca(tmp_path / "ca", names=list(NAMES))


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with forward_proxy(hosts=NAMES, credentials=PROXY_CREDENTIALS) as running:
        yield running


def behind_proxy(sandbox: Any, name: str) -> str:
    """Address the emulator as ``name``; returns the ``host:port`` the proxy should see. Its direct URL is
    kept for the test's own inspection calls."""
    sandbox.direct_url = sandbox.url
    scheme, _, port = sandbox.url.replace("://", ":").split(":")
    sandbox.backend.public_url = f"{scheme}://{name}:{port}"
    return f"{name}:{port}"


def connect(setter: Any, sandbox: Any, **transport: Any) -> None:
    """Point the default connection at ``sandbox`` with these transport extras and quick retries."""
    extra = sandbox.airflow_connection()["extra"]
    setter(sandbox, extra={**extra, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05, **transport})


def assert_no_secret_headers(proxy: ForwardProxy, *secrets: str) -> None:
    """Requests the proxy saw in the clear carry no Basic auth, no secret, no extra turned into a header."""
    seen = [r for r in proxy.relayed if r.method != "CONNECT"]
    assert seen, "the proxy saw no request in the clear"
    assert not [r for r in seen if r.carries(*secrets)]
    assert not [r for r in seen if NOT_HEADERS & set(r.headers)]


# ------------------------------------------------------------------------------ proxy


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_lazada_upload_goes_through_the_proxy_and_only_through_it(
    scheme, make_lazada_sandbox, lazada_connection, proxy, ca, sample_video
):
    sandbox = make_lazada_sandbox(**({"tls": ca.server} if scheme == "https" else {}))
    target = behind_proxy(sandbox, "lazada.test")
    connect(lazada_connection, sandbox, proxies=proxy.url(), verify=str(ca.ca))
    hook = LazadaHook()
    data = sample_video(400_000).read_bytes()
    blocks = [data[i : i + 100_000] for i in range(0, len(data), 100_000)]

    upload_id = hook.init_create_video("v.mp4", len(data))
    with ThreadPoolExecutor(4) as pool:
        tags = list(pool.map(lambda n: hook.upload_video_block(upload_id, n, 4, blocks[n]), range(4)))
    parts = [{"partNumber": n + 1, "eTag": tag} for n, tag in enumerate(tags)]
    video_id = hook.complete_create_video(upload_id, parts, "t", COVER)
    expire = f"{sandbox.direct_url}/_sandbox/lazada/tokens/expire"
    requests.post(expire, verify=str(ca.ca), timeout=10).raise_for_status()
    assert hook.get_video(video_id)["title"] == "t"  # renews the token first
    assert asyncio.run(LazadaHook().aget_video(video_id))["state"]

    log = sandbox.backend.request_log
    apis = [entry["api"] for entry in log]
    assert apis.count("/media/video/block/upload") == 4 and "/auth/token/refresh" in apis
    assert all(r.allowed for r in proxy.relayed) and proxy.targets() == {target}
    if scheme == "http":  # every request in the clear at the proxy, one for one with the emulator's log
        assert [r.path.split("?")[0] for r in proxy.relayed] == [f"/rest{api}" for api in apis]
        config = sandbox.config
        assert_no_secret_headers(proxy, config.app_secret, config.access_token, config.refresh_token)
    else:  # tunnels, kept in the pool: fewer than the calls
        assert {r.method for r in proxy.relayed} == {"CONNECT"} and len(proxy.relayed) < len(log)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_vod_upload_goes_through_the_proxy_and_only_through_it(
    scheme, make_huawei_vod_sandbox, huawei_vod_connection, proxy, ca, sample_video
):
    sandbox = make_huawei_vod_sandbox(**({"tls": ca.server} if scheme == "https" else {}))
    target = behind_proxy(sandbox, "vod.test")
    connect(huawei_vod_connection, sandbox, proxies={scheme: proxy.url()}, verify=str(ca.ca))
    hook = HuaweiVodHook()
    data = sample_video(500_000).read_bytes()

    asset = hook.create_asset(
        title="t", video_name="v.mp4", video_type="MP4", video_md5=md5_base64(data), auto_publish=True
    )
    bucket, key = asset["target"]["bucket"], asset["target"]["object"]
    assert asset["video_upload_url"].startswith(f"{scheme}://{target}/")
    upload_id = hook.initiate_multipart_upload(bucket, key, "video/mp4")
    halves = [data[:250_000], data[250_000:]]
    with ThreadPoolExecutor(2) as pool:
        tags = list(pool.map(lambda n: hook.upload_part(bucket, key, upload_id, n + 1, halves[n]), range(2)))
    hook.complete_multipart_upload(
        bucket, key, upload_id, [UploadedPart(n + 1, t) for n, t in enumerate(tags)]
    )
    hook.confirm_asset_upload(asset["asset_id"])
    assert asyncio.run(HuaweiVodHook().ashow_asset_meta(asset["asset_id"]))["status"] in (
        "CREATED",
        "PUBLISHED",
    )

    log = sandbox.backend.request_log
    operations = {entry["operation"] for entry in log}
    assert {"CreateAsset", "UploadPart", "CompleteMultipartUpload", "ShowAssetMeta"} <= operations
    assert all(r.allowed for r in proxy.relayed) and proxy.targets() == {target}
    if scheme == "http":
        assert len(proxy.relayed) == len(log)
        assert_no_secret_headers(proxy, sandbox.config.sk)
    else:
        assert {r.method for r in proxy.relayed} == {"CONNECT"} and len(proxy.relayed) < len(log)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_shopee_upload_goes_through_the_proxy_and_only_through_it(
    scheme, make_shopee_sandbox, monkeypatch, proxy, ca, sample_video
):
    import hashlib

    from media_upload.hooks.shopee import ShopeeHook
    from media_upload.protocols.shopee import PART_BYTES
    from media_upload.sandbox.shopee.products import sample_item
    from tests.conftest import _connection_setter

    sandbox = make_shopee_sandbox(transcode_seconds=0, **({"tls": ca.server} if scheme == "https" else {}))
    target = behind_proxy(sandbox, "shopee.test")
    connect(
        _connection_setter(monkeypatch, "shopee_default"), sandbox, proxies=proxy.url(), verify=str(ca.ca)
    )
    hook = ShopeeHook()
    data = sample_video(PART_BYTES + 300_000, duration_seconds=12).read_bytes()
    upload_id = hook.init_video_upload(hashlib.md5(data).hexdigest(), len(data))
    with ThreadPoolExecutor(2) as pool:
        list(
            pool.map(
                lambda n: hook.upload_video_part(upload_id, n, data[n * PART_BYTES : (n + 1) * PART_BYTES]),
                range(2),
            )
        )
    hook.complete_video_upload(upload_id, [0, 1], 100)
    assert asyncio.run(ShopeeHook().aget_video_upload_result(upload_id))["status"] in (
        "TRANSCODING",
        "SUCCEEDED",
    )
    item = requests.post(
        f"{sandbox.direct_url}/_sandbox/shopee/items", json=sample_item("p"), verify=str(ca.ca), timeout=10
    )
    hook.set_item_video(item.json()["item_id"], upload_id)

    calls = [entry for entry in sandbox.backend.request_log if entry.get("api", "").startswith("/api/v2")]
    assert sum(entry["api"].endswith("upload_video_part") for entry in calls) == 2
    assert all(r.allowed for r in proxy.relayed) and proxy.targets() == {target}
    if scheme == "http":
        assert len(proxy.relayed) == len(calls)
        config = sandbox.config
        assert_no_secret_headers(proxy, config.partner_key, config.access_token, config.refresh_token)
    else:
        assert {r.method for r in proxy.relayed} == {"CONNECT"} and len(proxy.relayed) < len(calls)


def test_the_connection_s_proxy_wins_over_the_environment_s(
    make_lazada_sandbox, lazada_connection, proxy, monkeypatch
):
    sandbox = make_lazada_sandbox()
    target = behind_proxy(sandbox, "lazada.test")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{unused_port()}")
    connect(lazada_connection, sandbox, proxies=proxy.url())
    assert LazadaHook().get_video_quota()["capacity_size"] > 0
    assert asyncio.run(LazadaHook().acall("/media/video/quota/get"))["code"] == "0"
    assert proxy.targets() == {target} and len(proxy.relayed) == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_refused_proxy_is_named_masked_and_retried(mode, lazada_sandbox, lazada_connection, monkeypatch):
    port = unused_port()
    connect(
        lazada_connection,
        lazada_sandbox,
        proxies=f"http://egress:s3cret-proxy@127.0.0.1:{port}",
        max_attempts=3,
    )
    hook = LazadaHook()
    tries: list[str] = []
    send, asend = hook._send, hook._asend

    def counted(api, *args):
        tries.append(api)
        return send(api, *args)

    async def acounted(api, *args):
        tries.append(api)
        return await asend(api, *args)

    monkeypatch.setattr(hook, "_send", counted)
    monkeypatch.setattr(hook, "_asend", acounted)
    with pytest.raises(LazadaTransportError) as failure:
        if mode == "sync":
            hook.get_video("1")
        else:
            asyncio.run(hook.aget_video("1"))
    assert str(failure.value) == (
        f"Lazada /media/video/get failed: connection 'lazada_default': the proxy http://***@127.0.0.1:{port} "
        "named in its extra (proxies) refused the connection"
    )
    assert not failure.value.sent and len(tries) == 3
    assert lazada_sandbox.backend.request_log == type(lazada_sandbox.backend.request_log)()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_tunnel_the_proxy_refuses_is_named_and_not_retried(
    mode, make_huawei_vod_sandbox, huawei_vod_connection, proxy, ca
):
    sandbox = make_huawei_vod_sandbox(tls=ca.server)
    behind_proxy(sandbox, "vod.test")
    connect(
        huawei_vod_connection, sandbox, proxies=proxy.url(("egress", "not-the-password")), verify=str(ca.ca)
    )
    with pytest.raises(HuaweiVodTransportError) as failure:
        if mode == "sync":
            HuaweiVodHook().show_asset_meta("a")
        else:
            asyncio.run(HuaweiVodHook().ashow_asset_meta("a"))
    assert str(failure.value).endswith(
        f"connection 'huawei_vod_default': the proxy http://***@127.0.0.1:{proxy.port} named in its extra "
        "(proxies) refused the tunnel: 407 Proxy Authentication Required"
    )
    assert "not-the-password" not in str(failure.value)
    assert [r.allowed for r in proxy.relayed] == [False]


# -------------------------------------------------------------------------------- TLS


def _quota(mode: str) -> dict[str, Any]:
    if mode == "sync":
        return LazadaHook().get_video_quota()
    return asyncio.run(LazadaHook().acall("/media/video/quota/get"))


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # verify: false, meant
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_private_ca_needs_the_connection_s_ca_bundle(mode, make_lazada_sandbox, lazada_connection, ca):
    sandbox = make_lazada_sandbox(tls=ca.server)
    host = sandbox.url.split("://")[1]
    connect(lazada_connection, sandbox)
    with pytest.raises(LazadaTransportError) as failure:
        _quota(mode)
    assert str(failure.value) == (
        f"Lazada /media/video/quota/get failed: connection 'lazada_default': the TLS certificate of {host} is "
        "not trusted (unable to get local issuer certificate); give the connection the CA bundle that signed "
        'it (extra "verify": "/path/to/ca.pem")'
    )
    assert not failure.value.retryable and len(sandbox.backend.request_log) == 0

    connect(lazada_connection, sandbox, verify=str(ca.ca))
    assert _quota(mode)["capacity_size"] > 0
    connect(lazada_connection, sandbox, verify="false")
    assert _quota(mode)["capacity_size"] > 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_client_certificate_from_the_connection(mode, make_lazada_sandbox, lazada_connection, ca):
    sandbox = make_lazada_sandbox(tls=ca.server, tls_client_ca=str(ca.ca))
    connect(lazada_connection, sandbox, verify=str(ca.ca), max_attempts=1)
    with pytest.raises(LazadaTransportError):
        _quota(mode)
    assert len(sandbox.backend.request_log) == 0
    connect(
        lazada_connection, sandbox, verify=str(ca.ca), cert=[str(ca.client_certificate), str(ca.client_key)]
    )
    assert _quota(mode)["capacity_size"] > 0
