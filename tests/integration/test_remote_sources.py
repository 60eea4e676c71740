"""Remote sources through the connection the DAG names: an HTTPS host with a private CA and Basic auth
gets that connection's credentials, and no other host ever does (not through a URL's user part, not
through a redirect, not through a connection meant for another host)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from media_upload.transfer.source import Source, SourceError
from tests.hosts import recording_host
from tests.tls import private_ca

LIMIT = 100_000_000
CDN_LOGIN, CDN_PASSWORD = "cdn-user", "cdn-password-7f3a"


@pytest.fixture
def cdn(tmp_path, sample_video, monkeypatch):
    """``https://127.0.0.1:<port>/videos/`` behind Basic auth, its certificate from a private CA, and the
    ``media_cdn`` connection for it (host, port, credentials, the CA bundle as ``verify``)."""
    ca = private_ca(tmp_path / "ca")
    folder = tmp_path / "cdn"
    (folder / "videos").mkdir(parents=True)
    sample_video(700_000, name="cdn/videos/shoe.mp4")
    with recording_host(folder, tls=ca.server, basic_auth=(CDN_LOGIN, CDN_PASSWORD)) as host:
        port = int(host.url.rsplit(":", 1)[1])
        monkeypatch.setenv(
            "AIRFLOW_CONN_MEDIA_CDN",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": port,
                    "schema": "https",
                    "login": CDN_LOGIN,
                    "password": CDN_PASSWORD,
                    "extra": {"verify": str(ca.ca)},
                }
            ),
        )
        monkeypatch.setenv("AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES", f"{host.url}/videos/, http://127.0.0.1/")
        yield host


def test_an_https_source_is_read_with_the_named_connection(cdn):
    source = Source.of(f"{cdn.url}/videos/shoe.mp4", "media_cdn")
    info = source.inspect(max_bytes=LIMIT, platform="Lazada")
    assert info.size == 700_000
    assert source.read(699_990, 10) == (Path(cdn.folder) / "videos/shoe.mp4").read_bytes()[-10:]
    assert cdn.requests and all(r["headers"]["authorization"].startswith("Basic ") for r in cdn.requests)


def test_without_the_connection_the_host_refuses_and_an_unknown_ca_is_not_trusted(cdn, monkeypatch):
    with pytest.raises(SourceError, match="certificate is not trusted; give the connection a CA bundle"):
        Source.of(f"{cdn.url}/videos/shoe.mp4").size()  # no CA bundle: the private CA is not trusted
    connection = json.loads(os.environ["AIRFLOW_CONN_MEDIA_CDN"])
    monkeypatch.setenv("AIRFLOW_CONN_MEDIA_CDN_WRONG", json.dumps({**connection, "password": "wrong"}))
    with pytest.raises(SourceError, match="HTTP 401: the host refused the request, made with connection"):
        Source.of(f"{cdn.url}/videos/shoe.mp4", "media_cdn_wrong").size()
    with pytest.raises(SourceError, match="no such file"):
        Source.of(f"{cdn.url}/videos/absent.mp4", "media_cdn").size()


def test_credentials_never_follow_a_redirect(tmp_path, sample_video, monkeypatch):
    """A host that redirects elsewhere gets no second request from us: redirects are not followed."""
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse

    from media_upload.sandbox.server import SandboxServer

    with recording_host(tmp_path / "elsewhere") as elsewhere:
        sample_video(50_000, name="elsewhere/v.mp4")  # the folder exists once the host serves it
        app = Starlette()
        app.add_route(
            "/videos/v.mp4", lambda request: RedirectResponse(f"{elsewhere.url}/v.mp4"), ["GET", "HEAD"]
        )
        server = SandboxServer(app)
        origin = server.start()
        try:
            monkeypatch.setenv("AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES", f"{origin}/videos/")
            host = origin.split("://")[1].split(":")[0]
            port = int(origin.rsplit(":", 1)[1])
            monkeypatch.setenv(
                "AIRFLOW_CONN_ORIGIN",
                json.dumps(
                    {"conn_type": "http", "host": host, "port": port, "login": "u", "password": "p-9"}
                ),
            )
            with pytest.raises(SourceError, match="HTTP 307: redirects are not followed"):
                Source.of(f"{origin}/videos/v.mp4", "origin").inspect(max_bytes=LIMIT, platform="Lazada")
        finally:
            server.stop()
        assert elsewhere.requests == []


def test_a_connection_is_never_sent_to_another_host(cdn, tmp_path, sample_video, monkeypatch):
    with recording_host(tmp_path / "foreign") as foreign:
        (tmp_path / "foreign" / "open").mkdir()
        sample_video(50_000, name="foreign/open/v.mp4")
        monkeypatch.setenv(
            "AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES", f"{cdn.url}/videos/, {foreign.url}/open/"
        )
        with pytest.raises(SourceError, match=r"connection 'media_cdn' is for host '127.0.0.1'"):
            Source.of(f"{foreign.url}/open/v.mp4", "media_cdn")
        with pytest.raises(SourceError, match="carries a user part"):
            Source.of(foreign.url.replace("://", "://media_cdn@") + "/open/v.mp4")
        assert foreign.requests == []
        # Allowed without a connection, the same file is read, and no credential goes with it.
        assert Source.of(f"{foreign.url}/open/v.mp4").size() == 50_000
        assert foreign.requests and foreign.carrying(CDN_LOGIN, CDN_PASSWORD) == []
