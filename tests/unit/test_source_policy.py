"""The deployment's source policy: whoever names a source (run conf, manifest row), only allowed folders and
URL prefixes are read, no credential rides in a URL, and an HTTP connection goes only to its own host."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from media_upload.transfer.policy import SourcePolicy
from media_upload.transfer.source import Source, SourceError

LIMIT = 100_000_000
SETTING = "AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES"


@pytest.fixture
def media(tmp_path, monkeypatch) -> Path:
    """An allowed folder, with a folder beside it that is not allowed."""
    allowed = tmp_path / "media"
    allowed.mkdir()
    (tmp_path / "private").mkdir()
    monkeypatch.setenv(SETTING, f"{allowed}/, s3://seller-videos/catalog/, https://cdn.example.com/videos")
    return allowed


def refused(source: str, conn_id: str | None = None, **kwargs) -> str:
    with pytest.raises(SourceError) as caught:
        Source.of(source, conn_id, **kwargs).inspect(max_bytes=LIMIT, platform="Lazada")
    return str(caught.value)


def test_a_video_in_an_allowed_folder_is_read(media, sample_video):
    video = sample_video(50_000, name="media/shoe.mp4")
    assert Source.of(str(video)).inspect(max_bytes=LIMIT, platform="Lazada").size == 50_000
    assert Source.of(f"file://{video}").location == str(video)


def test_default_is_the_deployments_media_folder_and_nothing_remote(monkeypatch, tmp_path):
    monkeypatch.delenv(SETTING)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    policy = SourcePolicy.current()
    assert policy.folders == (f"{tmp_path}/media/",) and policy.prefixes == ()
    message = refused("/etc/passwd")
    assert f"allows {tmp_path}/media/" in message


def test_a_refusal_names_the_setting_the_value_and_what_to_do(media):
    message = refused("/etc/passwd")
    assert message.startswith("/etc/passwd: not inside an allowed folder")
    assert "[media_upload] allowed_sources (AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES) allows" in message
    assert str(media) in message and "ask the deployment's administrators" in message


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("{private}/x.mp4", "not inside an allowed folder"),
        ("{media}/../private/x.mp4", "not inside an allowed folder"),
        ("{media}/%2e%2e/x.mp4", "no such file"),  # a local path is taken literally
        ("~/x.mp4", "'~' is not expanded"),
        ("media/x.mp4", "a relative path"),
        ("file://other-host/{media}/x.mp4", "must name a local path"),
        ("{media}/x\n.mp4", "control characters"),
        ("{media}-evil/x.mp4", "not inside an allowed folder"),
    ],
)
def test_local_paths_are_resolved_before_they_are_checked(media, source, why):
    (media.parent / "media-evil").mkdir()
    assert why in refused(source.format(media=media, private=media.parent / "private"))


def test_links_are_followed_before_the_check(media, sample_video, tmp_path):
    outside = sample_video(40_000, name="private/secret.mp4")
    (media / "link.mp4").symlink_to(outside)
    (media / "folder").symlink_to(tmp_path / "private")
    assert "not inside an allowed folder" in refused(str(media / "link.mp4"))
    assert "not inside an allowed folder" in refused(str(media / "folder" / "secret.mp4"))
    inside = sample_video(40_000, name="media/real.mp4")
    (media / "alias.mp4").symlink_to(inside)
    assert Source.of(str(media / "alias.mp4")).location == str(inside)


def test_a_link_swapped_in_after_the_check_is_caught_when_opened(media, sample_video):
    video = sample_video(40_000, name="media/v.mp4")
    outside = sample_video(40_000, name="private/secret.mp4")
    source = Source.of(str(video))
    video.unlink()
    video.symlink_to(outside)
    with pytest.raises(SourceError, match=r"cannot be opened|not inside an allowed folder"):
        source.read(0, 10)
    os.unlink(video)
    (media / "sub").mkdir()
    (media / "sub" / "v.mp4").write_bytes(b"x" * 10)
    source = Source.of(str(media / "sub" / "v.mp4"))
    (media / "sub").rename(media / "old")
    (media / "sub").symlink_to(outside.parent)  # the folder, swapped for a link to a private one
    os.rename(outside, outside.parent / "v.mp4")
    with pytest.raises(SourceError, match="not inside an allowed folder"):
        source.read(0, 10)


def test_only_regular_files_are_opened(media):
    os.mkfifo(media / "pipe.mp4")  # would block a plain open() forever
    assert "not a regular file" in refused(str(media / "pipe.mp4"))
    (media / "folder.mp4").mkdir()
    assert "not a regular file" in refused(str(media / "folder.mp4"))


def test_errors_never_show_the_files_bytes(media):
    (media / "passwd.mp4").write_bytes(b"root:x:0:0:SECRET-LINE:/root:/bin/bash\n" * 4)
    (media / "notes.mp4").write_bytes(b"\x00\x00\x00\x10ftypABCDEFGHsecretsecret")
    for name in ("passwd.mp4", "notes.mp4"):
        message = refused(str(media / name))
        assert "is not an MP4/MOV video" in message
        for fragment in ("root", ":x:0", "SECRET", "ABCD", "secret"):
            assert fragment not in message.replace(str(media), "")


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("http://lazada_default@127.0.0.1:9/v.mp4", "carries a user part"),
        ("https://huawei_vod_default@cdn.example.com/videos/v.mp4", "carries a user part"),
        ("https://user:password@cdn.example.com/videos/v.mp4", "carries a user part"),
        ("s3://media_upload_ledger@seller-videos/catalog/v.mp4", "carries a user part"),
        ("http://169.254.169.254/latest/meta-data/iam/", "not under an allowed URL prefix"),
        ("https://cdn.example.com/videos-private/v.mp4", "not under an allowed URL prefix"),
        ("http://cdn.example.com/videos/v.mp4", "not under an allowed URL prefix"),
        ("https://cdn.example.com:8443/videos/v.mp4", "not under an allowed URL prefix"),
        ("s3://seller-videos/private/v.mp4", "not under an allowed URL prefix"),
        ("gs://seller-videos/catalog/v.mp4", "not under an allowed URL prefix"),
        ("https://cdn.example.com/videos/../admin/v.mp4", "a '.' or '..' segment"),
        ("https://cdn.example.com/videos/%2E%2E/admin/v.mp4", "a '.' or '..' segment"),
        ("https://cdn.example.com/videos/a%2Fb.mp4", "an encoded slash"),
        (
            "https://cdn.example.com/videos/v.mp4?X-Amz-Signature=abc&X-Amz-Credential=k",
            "carries a credential",
        ),
        ("https://cdn.example.com/videos/v.mp4?sig=abc", "carries a credential"),
        ("https://cdn.example.com/videos/v.mp4?token=abc", "carries a credential"),
    ],
)
def test_urls_must_be_under_a_prefix_and_carry_no_credential(media, source, why):
    message = refused(source)
    assert why in message
    for secret in ("password", "=abc"):
        assert secret not in message


def test_urls_are_compared_normalised(media):
    assert (
        Source.of("HTTPS://CDN.Example.com:443/videos/v.mp4").location
        == "https://cdn.example.com/videos/v.mp4"
    )
    assert Source.of("s3://seller-videos/catalog/a/b.mp4#x").location == "s3://seller-videos/catalog/a/b.mp4"


def test_an_http_connection_is_only_used_for_its_own_host(media, monkeypatch):
    monkeypatch.setenv(SETTING, "https://cdn.example.com/videos/, https://evil.example/")
    monkeypatch.setenv(
        "AIRFLOW_CONN_MEDIA_CDN",
        json.dumps(
            {"conn_type": "http", "host": "cdn.example.com", "schema": "https", "login": "u", "password": "p"}
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_NO_HOST", json.dumps({"conn_type": "http", "login": "u", "password": "p"})
    )
    assert Source.of("https://cdn.example.com/videos/v.mp4", "media_cdn").conn_id == "media_cdn"
    with pytest.raises(
        SourceError, match=r"connection 'media_cdn' is for host 'cdn.example.com', not 'evil.example'"
    ):
        Source.of("https://evil.example/v.mp4", "media_cdn")
    with pytest.raises(SourceError, match="connection 'no_host' is for host '\\(none\\)'"):
        Source.of("https://cdn.example.com/videos/v.mp4", "no_host")


def test_the_setting_itself_is_checked(monkeypatch):
    monkeypatch.setenv(SETTING, "media/, https://cdn.example.com/")
    with pytest.raises(SourceError, match=r"allowed_sources.*'media/' is not an absolute folder"):
        SourcePolicy.current()
    monkeypatch.setenv(SETTING, "https://user@cdn.example.com/")
    with pytest.raises(SourceError, match="carries a user part"):
        SourcePolicy.current()


def test_a_manifest_is_read_only_where_allowed_and_up_to_its_cap(media, monkeypatch, tmp_path):
    from media_upload.catalog.manifest import read_manifest

    private = tmp_path / "private" / "catalog.csv"
    private.write_text("seller_sku,video\nA,/etc/passwd\n")
    with pytest.raises(SourceError, match="not inside an allowed folder"):
        read_manifest(str(private))
    manifest = media / "catalog.csv"
    manifest.write_text("seller_sku,video,title,cover_url\n" + "A,a.mp4,T,https://x/c.png\n" * 100)
    monkeypatch.setenv("AIRFLOW__MEDIA_UPLOAD__MAX_MANIFEST_BYTES", "1000")
    with pytest.raises(
        SourceError, match=r"the manifest of 2,633 bytes is larger than the 1,000 bytes allowed"
    ):
        read_manifest(str(manifest))


def test_no_operator_lets_a_run_choose_a_connection():
    """Connections are the DAG author's: none is rendered, so no run conf can pick which credentials go where."""
    import inspect
    from importlib import import_module

    from airflow.sdk import BaseOperator

    modules = [
        "media_upload.operators.lazada",
        "media_upload.operators.shopee",
        "media_upload.operators.huawei_vod",
        "media_upload.catalog.operators",
        "media_upload.catalog.report",
        "media_upload.sensors.lazada",
        "media_upload.sensors.shopee",
        "media_upload.sensors.huawei_vod",
    ]
    checked = []
    for name in modules:
        for _, cls in inspect.getmembers(import_module(name), inspect.isclass):
            if issubclass(cls, BaseOperator) and cls.__module__ == name:
                rendered = [
                    name for name in cls.template_fields if "conn_id" in name or name == "connections"
                ]
                assert not rendered, (cls.__name__, rendered)
                if "source_conn_id" in inspect.signature(cls.__init__).parameters:
                    checked.append(cls.__name__)
    assert {"LazadaInitVideoUploadOperator", "ShopeeInitVideoUploadOperator", "CatalogPlanOperator"} <= set(
        checked
    )
