"""HuaweiVodHook against the emulator: signing parity, the upload steps, retries, fresh URLs, masking."""

from __future__ import annotations

import asyncio
import hashlib
from urllib.parse import parse_qsl

import pytest
import requests
from airflow.sdk.exceptions import AirflowException

from media_upload.hooks.huawei_vod import (
    HuaweiVodApiError,
    HuaweiVodHook,
    HuaweiVodTransportError,
    UploadedPart,
    is_retryable,
)
from media_upload.protocols.huawei_vod import md5_base64


def fast_hook(conn_id: str = "huawei_vod_default", **options) -> HuaweiVodHook:
    return HuaweiVodHook(
        conn_id, backoff_seconds=0.01, backoff_max_seconds=0.05, throttle_pause_seconds=0.01, **options
    )


def inject(sandbox, kind: str, operation: str = "*", count: int = 1) -> None:
    reply = requests.post(
        f"{sandbox.endpoint}/_sandbox/huawei-vod/faults",
        json={"kind": kind, "operation": operation, "count": count},
    )
    assert reply.status_code == 200, reply.text


@pytest.fixture
def hook(huawei_vod_sandbox, huawei_vod_connection) -> HuaweiVodHook:
    huawei_vod_connection(huawei_vod_sandbox)
    return fast_hook()


def new_asset(hook: HuaweiVodHook, data: bytes, **fields) -> dict:
    fields.setdefault("auto_publish", True)
    return hook.create_asset(
        title="t", video_name="v.mp4", video_type="MP4", video_md5=md5_base64(data), **fields
    )


def multipart(
    hook: HuaweiVodHook, asset: dict, data: bytes, part_size: int = 200 * 1024
) -> list[UploadedPart]:
    bucket, key = asset["target"]["bucket"], asset["target"]["object"]
    upload_id = hook.initiate_multipart_upload(bucket, key, "video/mp4")
    parts = [
        UploadedPart(
            number, hook.upload_part(bucket, key, upload_id, number, data[offset : offset + part_size])
        )
        for number, offset in enumerate(range(0, len(data), part_size), start=1)
    ]
    hook.complete_multipart_upload(bucket, key, upload_id, list(reversed(parts)))
    return parts


def stored(sandbox, asset: dict) -> dict:
    return sandbox.backend.snapshot()["assets"][asset["asset_id"]]


def test_multipart_upload_confirm_and_status(hook, huawei_vod_sandbox, sample_video):
    data = sample_video(700_000, seed=2).read_bytes()
    asset = new_asset(hook, data)
    parts = multipart(hook, asset, data)
    assert [p.part_number for p in parts] == [1, 2, 3, 4] and all(p.etag.startswith('"') for p in parts)
    hook.confirm_asset_upload(asset["asset_id"])
    assert stored(huawei_vod_sandbox, asset)["object"]["md5"] == hashlib.md5(data).hexdigest()
    assert hook.show_asset_meta(asset["asset_id"])["status"] in ("CREATED", "PUBLISHED")
    assert hook.show_asset_detail(asset["asset_id"])["asset_id"] == asset["asset_id"]


def test_single_put_and_deletion(hook, huawei_vod_sandbox, sample_video):
    data = sample_video(50_000).read_bytes()
    asset = new_asset(hook, data, auto_publish=False)
    assert (
        hook.put_object(asset["video_upload_url"], data, "video/mp4", md5_base64(data))
        == f'"{hashlib.md5(data).hexdigest()}"'
    )
    hook.confirm_asset_upload(asset["asset_id"])
    assert hook.show_asset_meta(asset["asset_id"])["status"] == "CREATED"
    hook.delete_asset(asset["asset_id"])
    assert hook.show_asset_meta(asset["asset_id"])["status"] == "DELETED"


def test_list_parts_pages_through_every_part(hook, sample_video, monkeypatch):
    data = sample_video(700_000).read_bytes()
    asset = new_asset(hook, data)
    bucket, key = asset["target"]["bucket"], asset["target"]["object"]
    upload_id = hook.initiate_multipart_upload(bucket, key, "video/mp4")
    etags = [
        hook.upload_part(bucket, key, upload_id, n, data[(n - 1) * 110_000 : n * 110_000])
        for n in range(1, 7)
    ]
    assert hook.list_parts(bucket, key, upload_id) == [
        UploadedPart(n, e) for n, e in enumerate(etags, start=1)
    ]


def test_signed_requests_match_the_official_signer(hook, huawei_vod_sandbox):
    """The hook's Authorization header equals what huaweicloudsdkcore's Signer computes for the same request."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    url, headers, body = hook._vod_request(
        "POST", "/v1.0/{project_id}/asset", [("x", "1"), ("a", "b c")], {"title": "caf\u00e9"}
    )
    schema, rest = url.split("://", 1)
    host, path_and_query = rest.split("/", 1)
    path, query = f"/{path_and_query}".split("?", 1)
    sdk_headers = {k: v for k, v in headers.items() if k not in ("Authorization", "Host")}
    request = SdkRequest(
        method="POST",
        schema=schema,
        host=host,
        resource_path=path,
        query_params=parse_qsl(query),
        header_params=sdk_headers,
        body=body,
    )
    config = huawei_vod_sandbox.config
    signed = Signer(BasicCredentials(config.ak, config.sk, config.project_id)).sign(request)
    assert signed.header_params["Authorization"] == headers["Authorization"]


def test_test_connection(hook, huawei_vod_sandbox, huawei_vod_connection):
    ok, message = hook.test_connection()
    assert ok and "project" in message
    huawei_vod_connection(huawei_vod_sandbox, password="wrong-secret")
    ok, message = HuaweiVodHook().test_connection()
    assert not ok and "APIG.0301" in message and "wrong-secret" not in message


def test_connection_needs_a_project(huawei_vod_sandbox, huawei_vod_connection):
    huawei_vod_connection(huawei_vod_sandbox, extra={})
    with pytest.raises(AirflowException, match="no project_id"):
        fast_hook().show_asset_meta("x")
    huawei_vod_connection(huawei_vod_sandbox, host="", extra={"project_id": "p", "region": "cn-north-4"})
    assert HuaweiVodHook().credentials.endpoint == "https://vod.cn-north-4.myhuaweicloud.com"


# ------------------------------------------------------------------------------ errors


def test_vod_errors_are_typed(hook):
    with pytest.raises(HuaweiVodApiError) as refused:
        hook.create_asset(title="", video_name="v.mp4", video_type="MP4", auto_publish=True)
    assert (refused.value.status, refused.value.code) == (400, "VOD.10053")
    with pytest.raises(HuaweiVodApiError) as missing:
        hook.confirm_asset_upload("0" * 32)
    assert missing.value.code == "VOD.10062" and "0" * 32 in str(missing.value)


def test_obs_errors_are_typed(hook, sample_video):
    data = sample_video(300_000).read_bytes()
    asset = new_asset(hook, data)
    bucket, key = asset["target"]["bucket"], asset["target"]["object"]
    upload_id = hook.initiate_multipart_upload(bucket, key, "video/mp4")
    part = UploadedPart(1, hook.upload_part(bucket, key, upload_id, 1, data[:50_000]))
    second = UploadedPart(2, hook.upload_part(bucket, key, upload_id, 2, data[50_000:]))
    with pytest.raises(HuaweiVodApiError) as too_small:
        hook.complete_multipart_upload(bucket, key, upload_id, [part, second])
    assert (too_small.value.status, too_small.value.code) == (400, "EntityTooSmall")


@pytest.mark.parametrize(
    ("exc", "idempotent", "expected"),
    [
        (HuaweiVodApiError("x", 429, "APIG.0308", ""), False, True),
        (HuaweiVodApiError("x", 503, "SlowDown", ""), False, True),
        (HuaweiVodApiError("x", 500, "VOD.10051", ""), True, True),
        (HuaweiVodApiError("x", 500, "VOD.10051", ""), False, False),
        (HuaweiVodApiError("x", 500, "InternalError", ""), True, True),
        (HuaweiVodApiError("x", 401, "APIG.0301", ""), True, False),
        (HuaweiVodApiError("x", 400, "VOD.10053", ""), True, False),
        (HuaweiVodApiError("x", 403, "VOD.10126", ""), True, False),
        (HuaweiVodApiError("x", 400, "BadDigest", ""), True, False),
        (HuaweiVodTransportError("x", "reset", retryable=True), True, True),
        (HuaweiVodTransportError("x", "reset", retryable=True), False, False),
        (HuaweiVodTransportError("x", "refused", retryable=True, sent=False), False, True),
    ],
)
def test_retry_classification(exc, idempotent, expected):
    assert is_retryable(exc, idempotent) is expected


@pytest.mark.parametrize(
    ("kind", "operation"),
    [("APIG.0308", "ShowAssetMeta"), ("VOD.10051", "ShowAssetMeta"), ("VOD.10127", "ShowAssetMeta")],
)
def test_vod_reads_are_retried(hook, huawei_vod_sandbox, kind, operation):
    inject(huawei_vod_sandbox, kind, operation, count=2)
    assert hook.show_asset_meta("f" * 32)["status"] == "UNCREATED"
    assert huawei_vod_sandbox.backend.request_counts[operation] == 3


def test_create_asset_is_retried_only_when_refused_before_running(hook, huawei_vod_sandbox, sample_video):
    data = sample_video(5000).read_bytes()
    inject(huawei_vod_sandbox, "APIG.0308", "CreateAsset")
    assert new_asset(hook, data)["asset_id"]
    inject(huawei_vod_sandbox, "VOD.10051", "CreateAsset")
    with pytest.raises(HuaweiVodApiError, match=r"VOD\.10051"):
        new_asset(hook, data)
    assert len(huawei_vod_sandbox.backend.assets) == 1


@pytest.mark.parametrize("kind", ["SlowDown", "InternalError", "drop"])
def test_parts_survive_passing_obs_failures(hook, huawei_vod_sandbox, sample_video, kind):
    data = sample_video(300_000).read_bytes()
    asset = new_asset(hook, data)
    bucket, key = asset["target"]["bucket"], asset["target"]["object"]
    upload_id = hook.initiate_multipart_upload(bucket, key, "video/mp4")
    inject(huawei_vod_sandbox, kind, "UploadPart", count=2)
    etag = hook.upload_part(bucket, key, upload_id, 1, data)
    assert etag == f'"{hashlib.md5(data).hexdigest()}"'


def test_an_expired_signed_url_is_replaced_once(hook, huawei_vod_sandbox, sample_video, capfd):
    data = sample_video(300_000).read_bytes()
    asset = new_asset(hook, data)
    bucket, key = asset["target"]["bucket"], asset["target"]["object"]
    upload_id = hook.initiate_multipart_upload(bucket, key, "video/mp4")
    inject(huawei_vod_sandbox, "expired_sign", "ShowAssetTempAuthority")
    assert hook.upload_part(bucket, key, upload_id, 1, data)
    assert (
        huawei_vod_sandbox.backend.request_counts["ShowAssetTempAuthority"] == 3
    )  # initiate, stale part, fresh part
    assert "asking for a fresh one" in "".join(capfd.readouterr())
    inject(huawei_vod_sandbox, "expired_sign", "ShowAssetTempAuthority", count=2)
    with pytest.raises(HuaweiVodApiError, match="Request has expired"):
        hook.upload_part(bucket, key, upload_id, 1, data)


def test_wrong_secret_is_not_retried_and_not_shown(huawei_vod_sandbox, huawei_vod_connection):
    huawei_vod_connection(huawei_vod_sandbox, password="not-the-secret-key")
    with pytest.raises(HuaweiVodApiError) as refused:
        fast_hook().show_asset_meta("x")
    assert refused.value.code == "APIG.0301" and "not-the-secret-key" not in str(refused.value)
    assert huawei_vod_sandbox.backend.request_counts["ShowAssetMeta"] == 1


def test_transport_errors_mask_signed_urls(huawei_vod_sandbox, huawei_vod_connection):
    huawei_vod_connection(huawei_vod_sandbox)
    hook = fast_hook(max_attempts=1)
    url = "http://127.0.0.1:9/bucket/key?AWSAccessKeyId=AK&Expires=9&Signature=SECRETSIG"
    with pytest.raises(HuaweiVodTransportError) as failed:
        hook.put_object(url, b"x", "video/mp4", None)
    assert "SECRETSIG" not in str(failed.value) and failed.value.__cause__ is None


def test_reprs_hold_no_secret(hook, huawei_vod_sandbox):
    text = f"{hook!r} {hook.credentials!r}"
    assert huawei_vod_sandbox.config.sk not in text


# ------------------------------------------------------------------------------ async


def test_async_status_reads(hook, huawei_vod_sandbox, sample_video):
    data = sample_video(5000).read_bytes()
    asset = new_asset(hook, data)
    hook.put_object(asset["video_upload_url"], data, "video/mp4", md5_base64(data))
    hook.confirm_asset_upload(asset["asset_id"])
    inject(huawei_vod_sandbox, "APIG.0308", "ShowAssetMeta")
    info = asyncio.run(fast_hook().ashow_asset_meta(asset["asset_id"]))
    assert info["status"] in ("CREATED", "PUBLISHED")
    assert huawei_vod_sandbox.backend.request_counts["ShowAssetMeta"] == 2


def test_async_errors_are_typed(huawei_vod_sandbox, huawei_vod_connection):
    huawei_vod_connection(huawei_vod_sandbox, password="wrong")
    with pytest.raises(HuaweiVodApiError, match=r"APIG\.0301"):
        asyncio.run(fast_hook().ashow_asset_meta("x"))
