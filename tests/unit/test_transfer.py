"""Block plans, source checks and byte-range reads (local, file:// and http:// sources)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from media_upload.sandbox.server import SandboxServer
from media_upload.transfer import source as source_module
from media_upload.transfer.plan import Block, BlockPlan
from media_upload.transfer.source import Source, SourceError, source_name

LIMIT = 100_000_000


@pytest.mark.parametrize(
    ("size", "block", "lengths"),
    [
        (1, 3, [1]),
        (8, 3, [3, 3, 2]),
        (9, 3, [3, 3, 3]),
        (8_000_000, 3_000_000, [3_000_000, 3_000_000, 2_000_000]),
    ],
)
def test_block_plan(size, block, lengths):
    plan = BlockPlan(size, block)
    assert [b.length for b in plan.blocks] == lengths
    assert plan.count == len(lengths)
    assert [b.offset for b in plan.blocks] == [sum(lengths[:i]) for i in range(len(lengths))]
    assert plan.blocks[-1].part_number == len(lengths)


def test_block_plan_refuses_nonsense():
    with pytest.raises(ValueError):
        BlockPlan(0, 10)
    with pytest.raises(ValueError):
        BlockPlan(10, 0)
    assert Block(0, 0, 1).part_number == 1


def inspect(source: str, conn_id: str | None = None):
    return Source.of(source, conn_id).inspect(max_bytes=LIMIT, platform="Lazada")


def test_inspect_a_good_source(sample_video):
    path = sample_video(123_456, duration_seconds=12, width=1920, height=1080)
    info = inspect(str(path))
    assert (info.size, info.name, info.media.width, info.media.height) == (123_456, path.name, 1920, 1080)
    assert info.uri == str(path.resolve())


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.mp4", None, "missing.mp4: no such file"),
        ("", None, "not a regular file"),
        ("empty.mp4", b"", "is empty (0 bytes); Lazada needs 1 to 99,999,999 bytes"),
        ("notes.mp4", b"hello", "is not an MP4/MOV video"),
    ],
)
def test_inspect_refuses_bad_sources(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError) as refused:
        inspect(str(path))
    assert fragment in str(refused.value)


@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1])
def test_inspect_refuses_files_of_100_million_bytes_or_more(tmp_path, size):
    big = tmp_path / "big.mp4"
    with big.open("wb") as handle:  # sparse: no disk used
        handle.truncate(size)
    with pytest.raises(SourceError) as refused:
        inspect(str(big))
    assert f"is {size:,} bytes; Lazada takes files under 100,000,000 bytes (at most 99,999,999)" in str(
        refused.value
    )
    assert str(big) in str(refused.value)


def test_read_reads_only_its_range(sample_video, monkeypatch):
    """A local block is one ``pread`` of exactly its bytes; fsspec is not involved."""
    path = sample_video(5_000_000)
    data = path.read_bytes()
    reads: list[tuple[int, int]] = []
    real_pread = source_module.os.pread

    def pread(descriptor, length, offset):
        reads.append((length, offset))
        return real_pread(descriptor, length, offset)

    monkeypatch.setattr(source_module.os, "pread", pread)
    monkeypatch.setattr(Source, "path", lambda self: pytest.fail("a local read went through fsspec"))
    assert Source.of(str(path)).read(1_000_000, 300_000) == data[1_000_000:1_300_000]
    assert Source.of(f"file://{path}").read(10, 5) == data[10:15]
    assert reads == [(300_000, 1_000_000), (5, 10)]


def test_short_read_means_the_source_changed(sample_video):
    path = sample_video(10_000)
    with pytest.raises(SourceError, match="changed or was truncated"):
        Source.of(str(path)).read(9_000, 2_000)


def test_file_urls_and_digests(sample_video):
    path = sample_video(20_000)
    assert Source.of(f"file://{path}").read(100, 10) == path.read_bytes()[100:110]
    assert Source.of(str(path)).sha256() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_source_name_comes_from_the_path(monkeypatch):
    assert (
        source_name("/data/videos/red.mp4") == source_name("https://cdn.example/red.mp4?sig=1") == "red.mp4"
    )
    with pytest.raises(SourceError, match="no source given"):
        Source.of("  ")
    monkeypatch.setenv("AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES", "ftp9://host/")
    with pytest.raises(SourceError, match=r"ftp9://host/a.mp4: .*no filesystem for 'ftp9'"):
        Source.of("ftp9://host/a.mp4").size()


@pytest.fixture
def http_files(tmp_path, monkeypatch) -> Iterator[str]:
    """A static file server on loopback (Starlette answers Range requests), allowed by the policy."""
    app = Starlette()
    app.mount("/media", StaticFiles(directory=tmp_path))
    server = SandboxServer(app)
    url = server.start()
    monkeypatch.setenv("AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES", f"{url}/media/")
    yield f"{url}/media"
    server.stop()


def test_http_sources_are_read_by_range(http_files, sample_video):
    path = sample_video(2_000_000, name="remote.mp4")
    url = f"{http_files}/remote.mp4"
    info = inspect(url)
    assert (info.size, info.name, info.uri) == (2_000_000, "remote.mp4", url)
    assert Source.of(url).read(1_500_000, 500_000) == path.read_bytes()[1_500_000:]
    with pytest.raises(SourceError, match="no such file"):
        inspect(f"{http_files}/absent.mp4")


@pytest.fixture
def s3_endpoint(monkeypatch) -> Iterator[str]:
    """moto's S3 server on loopback, reached through the Amazon provider's ``aws_default`` connection."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    yield endpoint
    server.stop()


def test_s3_sources_are_read_by_range(s3_endpoint, sample_video, monkeypatch):
    """Read through the connection the DAG names (``source_conn_id``), never one named in the URL."""
    import boto3

    path = sample_video(3_000_000, name="catalog.mp4")
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="videos")
    client.upload_file(str(path), "videos", "sku/catalog.mp4")
    monkeypatch.setenv("AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES", "s3://videos/sku/")
    url = "s3://videos/sku/catalog.mp4"
    info = inspect(url, "aws_default")
    assert (info.size, info.name, info.media.container) == (3_000_000, "catalog.mp4", "mp4")
    assert Source.of(url, "aws_default").read(2_500_000, 400_000) == path.read_bytes()[2_500_000:2_900_000]
    with pytest.raises(SourceError, match="no such file"):
        inspect("s3://videos/sku/absent.mp4", "aws_default")
    with pytest.raises(SourceError, match="carries a user part"):
        inspect("s3://aws_default@videos/sku/catalog.mp4")
