"""Every documented rule of the Huawei Cloud VOD emulator (VOD API, APIG auth, the OBS bucket behind its
signed URLs), driven through the official ``huaweicloudsdkvod`` client where it can be and through raw
signed ``requests`` where the input has to be malformed. The rules and the emulator's choices are listed in
docs/huawei-vod-sandbox.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
from huaweicloudsdkcore.exceptions.exceptions import (
    ClientRequestException,
    ServerResponseException,
    ServiceResponseException,
)
from huaweicloudsdkvod.v1 import (
    DeleteAssetsRequest,
    ListAssetListRequest,
    ShowAssetDetailRequest,
    ShowAssetMetaRequest,
)

from media_upload.protocols.huawei_vod import md5_base64, obs_signed_url, sign_request
from media_upload.sandbox.huawei_vod import HuaweiVodSandbox, HuaweiVodSandboxConfig
from tests.integration.conftest import VodDriver

PART = 102_400  # the smallest non-last part OBS accepts at complete
HEX32 = re.compile(r"[0-9a-f]{32}")


class FakeClock:
    """Whole seconds, so that status steps computed from differences never land a hair short."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------------- helpers


def refused(call: Callable[[], Any], status: int, code: str, fragment: str = "") -> ServiceResponseException:
    """Run an official-client call that must fail; check the exception class, HTTP status and error code."""
    with pytest.raises(ServiceResponseException) as info:
        call()
    error = info.value
    assert (error.status_code, error.error_code) == (status, code), (error.status_code, error.error_code)
    assert fragment in error.error_msg, error.error_msg
    assert isinstance(error, ServerResponseException if status >= 500 else ClientRequestException)
    return error


def signed_vod(
    sandbox: Any,
    method: str,
    path: str,
    *,
    query: str = "",
    body: bytes = b"",
    secret: str | None = None,
    now: datetime | None = None,
    project_id: str | None = None,
    send_body: bytes | None = None,
) -> requests.Response:
    """A raw VOD call signed with ``sign_request`` (``{pid}`` in ``path`` is the project id)."""
    config = sandbox.config
    url = f"{sandbox.endpoint}{path.format(pid=project_id or config.project_id)}"
    if query:
        url += f"?{query}"
    headers = sign_request(
        config.ak, secret or config.sk, method, url, {"Content-Type": "application/json"}, body, now=now
    )
    return requests.request(method, url, headers=headers, data=body if send_body is None else send_body)


def assert_vod_reply(response: requests.Response, status: int, code: str, fragment: str = "") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == code and fragment in body["error_msg"], body
    assert response.headers["X-Request-Id"]
    return body


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml_fields(content: bytes) -> dict[str, str]:
    """The direct children of an XML document's root, namespace-agnostic."""
    return {local(child.tag): child.text or "" for child in ET.fromstring(content)}


def assert_obs_error(response: requests.Response, status: int, code: str, fragment: str = "") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert local(root.tag) == "Error"
    error = xml_fields(response.content)
    assert error["Code"] == code and fragment in error["Message"], error
    assert error["RequestId"] and error["RequestId"] == response.headers["x-obs-request-id"]
    return error


def inject(sandbox: Any, kind: str, operation: str = "*", count: int = 1) -> requests.Response:
    return requests.post(
        f"{sandbox.endpoint}/_sandbox/huawei-vod/faults",
        json={"kind": kind, "operation": operation, "count": count},
    )


def complete_body(parts: list[tuple[int, str]]) -> str:
    return (
        "<CompleteMultipartUpload>"
        + "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in parts)
        + "</CompleteMultipartUpload>"
    )


def put_parts(vod: VodDriver, asset: Any, upload_id: str, chunks: list[bytes]) -> list[tuple[int, str]]:
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        response = vod.put_part(asset, upload_id, number, chunk)
        assert response.status_code == 200, response.text
        parts.append((number, response.headers["ETag"]))
    return parts


def crafted(vod: VodDriver, asset: Any, verb: str, subs: list[tuple[str, str | None]], **signed: str) -> str:
    """A URL signed with the sandbox's own key, for inputs VOD would never authorise."""
    config = vod.sandbox.config
    return obs_signed_url(
        vod.sandbox.endpoint,
        asset.target.bucket,
        asset.target.object,
        config.ak,
        config.sk,
        verb,
        int(time.time()) + 600,
        sub_resources=subs,
        **signed,
    )


def meta(vod: VodDriver, asset_id: str) -> Any:
    return vod.client.show_asset_meta(ShowAssetMetaRequest(asset_id=[asset_id])).asset_info_array[0]


def stored(vod: VodDriver, asset_id: str) -> dict | None:
    return vod.sandbox.backend.snapshot()["assets"][asset_id]["object"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[VodDriver]:
    """One sandbox for the tests that only read the answers to their own requests (saves a server per case)."""
    config = HuaweiVodSandboxConfig(data_dir=tmp_path_factory.mktemp("huawei-vod-shared"))
    sandbox = HuaweiVodSandbox(config).start()
    yield VodDriver(sandbox)
    sandbox.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timed(make_huawei_vod_sandbox, clock) -> VodDriver:
    """A sandbox on a FakeClock whose assets take 30 s (three 10 s steps) after confirm."""
    return VodDriver(make_huawei_vod_sandbox(clock=clock, transcode_seconds=30))


@pytest.fixture
def instant(make_huawei_vod_sandbox) -> VodDriver:
    """A sandbox whose confirmed assets reach their final status at once."""
    return VodDriver(make_huawei_vod_sandbox(transcode_seconds=0))


@pytest.fixture
def video(sample_video) -> bytes:
    """A valid synthetic MP4 of three parts at the smallest part size (102,400 + 102,400 + 45,200)."""
    return sample_video(250_000, seed=3).read_bytes()


# ------------------------------------------------------------------------- VOD auth


def test_wrong_secret_key_is_apig_0301(huawei_vod_sandbox):
    forged = VodDriver(huawei_vod_sandbox, secret_key="not-the-secret")
    error = refused(forged.create, 401, "APIG.0301", "verify aksk signature fail")
    assert error.request_id
    assert huawei_vod_sandbox.backend.snapshot()["assets"] == {}


@pytest.mark.parametrize(("minutes", "accepted"), [(-16, False), (16, False), (-14, True), (14, True)])
def test_sdk_date_more_than_15_minutes_off_is_apig_0303(shared, minutes, accepted):
    when = datetime.now(UTC) + timedelta(minutes=minutes)
    response = signed_vod(shared.sandbox, "GET", "/v1.0/{pid}/asset/info", query="asset_id=x", now=when)
    if accepted:
        assert response.status_code == 200, response.text
    else:
        body = assert_vod_reply(response, 401, "APIG.0303", "signature expired")
        assert body["request_id"] == response.headers["X-Request-Id"]


def test_missing_or_malformed_authorization_is_apig_0301(shared):
    url = f"{shared.sandbox.endpoint}/v1.0/{shared.sandbox.config.project_id}/asset/list"
    assert_vod_reply(requests.get(url), 401, "APIG.0301")
    dated = {"X-Sdk-Date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")}
    assert_vod_reply(requests.get(url, headers=dated), 401, "APIG.0301")
    assert_vod_reply(
        requests.get(url, headers={**dated, "Authorization": "SDK-HMAC-SHA256 Access=x"}), 401, "APIG.0301"
    )


def test_body_changed_after_signing_is_apig_0301(shared):
    body = json.dumps({"title": "t", "video_name": "v.mp4", "video_type": "MP4"}).encode()
    response = signed_vod(
        shared.sandbox, "POST", "/v1.0/{pid}/asset", body=body, send_body=body.replace(b'"t"', b'"u"')
    )
    assert_vod_reply(response, 401, "APIG.0301")


def test_project_id_other_than_the_configured_one_is_apig_0301(huawei_vod_sandbox):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkvod.v1 import VodClient

    config = huawei_vod_sandbox.config
    other = "f" * 32
    client = (
        VodClient.new_builder()
        .with_credentials(BasicCredentials(config.ak, config.sk, other))
        .with_endpoint(huawei_vod_sandbox.endpoint)
        .build()
    )
    refused(lambda: client.list_asset_list(ListAssetListRequest()), 401, "APIG.0301", other)
    raw = signed_vod(huawei_vod_sandbox, "GET", "/v1.0/{pid}/asset/list", project_id=other)
    assert_vod_reply(raw, 401, "APIG.0301", other)


def test_x_auth_token_accepted_only_when_configured(make_huawei_vod_sandbox):
    with_token = make_huawei_vod_sandbox(auth_token="iam-token-0123456789")
    without = make_huawei_vod_sandbox()

    def call(sandbox, token: str, project_id: str | None = None) -> requests.Response:
        pid = project_id or sandbox.config.project_id
        return requests.get(f"{sandbox.endpoint}/v1.0/{pid}/asset/list", headers={"X-Auth-Token": token})

    accepted = call(with_token, "iam-token-0123456789")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["total"] == 0
    assert_vod_reply(call(with_token, "iam-token-9876543210"), 401, "APIG.0301")
    assert_vod_reply(call(with_token, "iam-token-0123456789", project_id="e" * 32), 401, "APIG.0301")
    assert_vod_reply(call(without, "iam-token-0123456789"), 401, "APIG.0301")
    assert_vod_reply(call(without, ""), 401, "APIG.0301")


# -------------------------------------------------------------------------- CreateAsset


def test_create_asset_response_shape(vod):
    config = vod.sandbox.config
    asset = vod.create(name="clip.mp4", title="clip")
    assert re.fullmatch(HEX32, asset.asset_id)
    assert asset.target.bucket == config.bucket
    assert asset.target.location == config.region
    assert re.fullmatch(rf"{config.project_id}/{asset.asset_id}/[0-9a-f]{{32}}\.mp4", asset.target.object)
    url = urlsplit(asset.video_upload_url)
    assert f"{url.scheme}://{url.netloc}" == vod.sandbox.endpoint
    assert url.path == f"/{asset.target.bucket}/{asset.target.object}"
    assert {name for name, _ in parse_qsl(url.query)} == {"AWSAccessKeyId", "Expires", "Signature"}
    assert asset.cover_upload_url is None and asset.subtitle_upload_urls == []
    second = vod.create()
    assert second.asset_id != asset.asset_id and second.target.object != asset.target.object


@pytest.mark.parametrize("missing", ["title", "video_name", "video_type"])
def test_required_fields(shared, missing):
    fields: dict[str, Any] = {"title": "t", "name": "v.mp4", "video_type": "MP4"}
    fields["name" if missing == "video_name" else missing] = None
    refused(lambda: shared.create(**fields), 400, "VOD.10053", missing)


@pytest.mark.parametrize(
    ("title", "accepted"),
    [
        pytest.param("a" * 128, True, id="128-ascii"),
        pytest.param("a" * 129, False, id="129-ascii"),
        pytest.param("é" * 64, True, id="64-chars-128-bytes"),
        pytest.param("é" * 65, False, id="65-chars-130-bytes"),
        pytest.param("视" * 42, True, id="42-cjk-126-bytes"),
        pytest.param("视" * 43, False, id="43-cjk-129-bytes"),
    ],
)
def test_title_limit_counts_utf8_bytes(shared, title, accepted):
    if accepted:
        assert shared.create(title=title).asset_id
    else:
        refused(lambda: shared.create(title=title), 400, "VOD.10053", "title")


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        pytest.param("video_name", "v" * 124 + ".mp4", True, id="video_name-128-bytes"),
        pytest.param("video_name", "视" * 43, False, id="video_name-43-cjk-129-bytes"),
        pytest.param("description", "d" * 1024, True, id="description-1024-bytes"),
        pytest.param("description", "d" * 1025, False, id="description-1025-bytes"),
    ],
)
def test_video_name_and_description_byte_limits(shared, field, value, accepted):
    fields = {"name": value} if field == "video_name" else {field: value}
    if accepted:
        assert shared.create(**fields).asset_id
    else:
        refused(lambda: shared.create(**fields), 400, "VOD.10053", field)


@pytest.mark.parametrize("video_type", ["MP4", "MOV", "MKV", "HLS", "WEBM", "MP3", "FLAC"])
def test_documented_video_types_are_accepted(shared, video_type):
    asset = shared.create(video_type=video_type)
    assert asset.target.object.endswith(f".{video_type.lower()}")


@pytest.mark.parametrize("video_type", ["MP5", "GIF", "MP4 ", "VIDEO"])
def test_bad_video_type(shared, video_type):
    refused(lambda: shared.create(video_type=video_type), 400, "VOD.10053", "video_type")


def test_category(vod):
    refused(lambda: vod.create(category_id=999), 403, "VOD.10064", "classification does not exist")
    assert vod.create(category_id=-1).asset_id
    assert vod.create(category_id=1).asset_id
    assert vod.create().asset_id  # absent: the preset "Other"
    snapshot = vod.sandbox.backend.snapshot()["assets"]
    assert sorted(a["category_id"] for a in snapshot.values()) == [-1, -1, 1]


@pytest.mark.parametrize("value", [2, -1])
def test_auto_publish_must_be_0_or_1(shared, value):
    refused(lambda: shared.create(auto_publish=value), 400, "VOD.10053", "auto_publish")


@pytest.mark.parametrize("value", ["1", True, 1.5])
def test_auto_publish_must_be_an_integer_on_the_wire(shared, value):
    body = json.dumps({"title": "t", "video_name": "v.mp4", "video_type": "MP4", "auto_publish": value})
    response = signed_vod(shared.sandbox, "POST", "/v1.0/{pid}/asset", body=body.encode())
    assert_vod_reply(response, 400, "VOD.10053", "auto_publish")


@pytest.mark.parametrize(
    ("tags", "accepted"),
    [
        pytest.param(",".join(f"t{i}" for i in range(16)), True, id="16-tags"),
        pytest.param(",".join(f"t{i}" for i in range(17)), False, id="17-tags"),
        pytest.param("x" * 16, True, id="tag-of-16-bytes"),
        pytest.param("x" * 17, False, id="tag-of-17-bytes"),
        pytest.param("标签标签标签", False, id="tag-of-6-cjk-18-bytes"),
        pytest.param("标签标签标", True, id="tag-of-5-cjk-15-bytes"),
    ],
)
def test_tag_limits(shared, tags, accepted):
    if accepted:
        assert shared.create(tags=tags).asset_id
    else:
        refused(lambda: shared.create(tags=tags), 400, "VOD.10053", "tags")


def test_video_md5_must_be_base64_of_the_raw_digest(shared):
    data = b"some video bytes"
    refused(lambda: shared.create(video_md5=hashlib.md5(data).hexdigest()), 400, "VOD.10053", "video_md5")
    assert shared.create(video_md5=md5_base64(data)).asset_id


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", b"[1, 2]", b'"title"', b"null"],
    ids=["broken-json", "not-utf8", "json-array", "json-string", "json-null"],
)
def test_unparseable_create_body_is_vod_10053_not_500(shared, body):
    response = signed_vod(shared.sandbox, "POST", "/v1.0/{pid}/asset", body=body)
    assert_vod_reply(response, 400, "VOD.10053")


# --------------------------------------------------------------- ShowAssetTempAuthority


def test_sign_str_is_a_full_path_style_url(make_huawei_vod_sandbox, clock):
    vod = VodDriver(make_huawei_vod_sandbox(clock=clock, sign_ttl=900))
    config = vod.sandbox.config
    asset = vod.create()
    prefix = f"{vod.sandbox.endpoint}/{asset.target.bucket}/{quote(asset.target.object, safe='/~')}?"

    initiate = vod.authority(asset, "POST", content_type="video/mp4")
    part = vod.authority(asset, "PUT", upload_id="ABC", part_number=7, content_md5=md5_base64(b"x"))
    listing = vod.authority(asset, "GET", upload_id="ABC")
    for url in (initiate, part, listing):
        assert url.startswith(prefix), url
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        assert query["AWSAccessKeyId"] == config.ak
        assert query["Expires"] == str(int(clock.now + 900))
        assert query["Signature"]
    assert urlsplit(initiate).query.startswith("uploads&")
    assert ("partNumber", "7") in parse_qsl(urlsplit(part).query)
    assert ("uploadId", "ABC") in parse_qsl(urlsplit(part).query)


@pytest.mark.parametrize("verb", ["PATCH", "HEAD", "post", None])
def test_authority_refuses_a_bad_http_verb(shared, verb):
    asset = shared.create()
    refused(lambda: shared.authority(asset, verb), 400, "VOD.10053", "http_verb")


def test_authority_refuses_an_object_no_asset_owns(shared):
    from huaweicloudsdkvod.v1 import ShowAssetTempAuthorityRequest

    asset = shared.create()

    def ask(bucket: str, key: str) -> Any:
        request = ShowAssetTempAuthorityRequest(
            http_verb="POST", bucket=bucket, object_key=key, content_type="video/mp4"
        )
        return shared.client.show_asset_temp_authority(request)

    refused(lambda: ask(asset.target.bucket, asset.target.object + "x"), 400, "VOD.10053", "object_key")
    refused(lambda: ask("other-bucket", asset.target.object), 400, "VOD.10053", "object_key")


@pytest.mark.parametrize("verb", ["PUT", "GET", "DELETE"])
def test_authority_needs_upload_id_except_for_initiate(shared, verb):
    asset = shared.create()
    refused(lambda: shared.authority(asset, verb, part_number=1), 400, "VOD.10053", "upload_id")


@pytest.mark.parametrize(("number", "accepted"), [(0, False), (10001, False), (1, True), (10000, True)])
def test_authority_part_number_range(shared, number, accepted):
    asset = shared.create()
    if accepted:
        assert f"partNumber={number}&" in shared.authority(asset, "PUT", upload_id="U", part_number=number)
    else:
        refused(
            lambda: shared.authority(asset, "PUT", upload_id="U", part_number=number),
            400,
            "VOD.10053",
            "part_number",
        )


def test_authority_put_needs_a_part_number(shared):
    asset = shared.create()
    refused(lambda: shared.authority(asset, "PUT", upload_id="U"), 400, "VOD.10053", "part_number")


def test_authority_after_confirm_is_vod_10135(vod, video):
    asset = vod.create()
    vod.upload(asset, video)
    vod.confirm(asset.asset_id)
    refused(
        lambda: vod.authority(asset, "POST", content_type="video/mp4"),
        403,
        "VOD.10135",
        "not in the uploading",
    )


def test_v10_authority_returns_only_the_query_and_works_when_the_client_builds_the_url(vod):
    asset = vod.create()
    config = vod.sandbox.config
    query = (
        f"http_verb=POST&bucket={asset.target.bucket}&object_key={quote(asset.target.object, safe='')}"
        "&content_type=video%2Fmp4"
    )
    response = signed_vod(vod.sandbox, "GET", "/v1.0/{pid}/asset/authority", query=query)
    assert response.status_code == 200, response.text
    sign_str = response.json()["sign_str"]
    assert [p.split("=")[0] for p in sign_str.split("&")] == ["AWSAccessKeyId", "Expires", "Signature"]
    assert f"AWSAccessKeyId={config.ak}&" in sign_str
    url = f"{vod.sandbox.endpoint}/{asset.target.bucket}/{asset.target.object}?uploads&{sign_str}"
    initiated = requests.post(url, headers={"Content-Type": "video/mp4"})
    assert initiated.status_code == 200, initiated.text
    assert re.fullmatch(r"[0-9A-F]{32}", xml_fields(initiated.content)["UploadId"])


# ------------------------------------------------------------------------- OBS: signature


@pytest.fixture
def part_upload(vod, video):
    """An initiated upload: (asset, upload_id, the first 102,400 bytes of the video)."""
    asset = vod.create(video_md5=md5_base64(video))
    return asset, vod.initiate(asset), video[:PART]


def test_initiate_with_another_content_type_does_not_match(vod):
    asset = vod.create()
    url = vod.authority(asset, "POST", content_type="video/mp4")
    assert_obs_error(
        requests.post(url, headers={"Content-Type": "video/quicktime"}), 403, "SignatureDoesNotMatch"
    )
    assert_obs_error(requests.post(url), 403, "SignatureDoesNotMatch")
    initiated = requests.post(url, headers={"Content-Type": "video/mp4"})
    assert initiated.status_code == 200
    result = ET.fromstring(initiated.content)
    assert local(result.tag) == "InitiateMultipartUploadResult"
    fields = xml_fields(initiated.content)
    assert (fields["Bucket"], fields["Key"]) == (asset.target.bucket, asset.target.object)
    assert re.fullmatch(r"[0-9A-F]{32}", fields["UploadId"])


@pytest.mark.parametrize(
    "change",
    [
        "content_type_video_mp4",
        "no_content_type",
        "other_content_md5",
        "no_content_md5",
        "part_number_tampered",
        "upload_id_tampered",
        "expires_tampered",
        "key_tampered",
        "signature_tampered",
    ],
)
def test_part_signature_does_not_match(vod, part_upload, change):
    asset, upload_id, data = part_upload
    md5 = md5_base64(data)
    url = vod.authority(asset, "PUT", upload_id=upload_id, part_number=1, content_md5=md5)
    headers = {"Content-Type": "application/octet-stream", "Content-MD5": md5}
    body = data
    expires = dict(parse_qsl(urlsplit(url).query))["Expires"]
    if change == "content_type_video_mp4":
        headers["Content-Type"] = "video/mp4"
    elif change == "no_content_type":
        del headers["Content-Type"]
    elif change == "other_content_md5":
        body = data[:-1] + b"!"
        headers["Content-MD5"] = md5_base64(body)
    elif change == "no_content_md5":
        del headers["Content-MD5"]
    elif change == "part_number_tampered":
        url = url.replace("partNumber=1&", "partNumber=2&")
    elif change == "upload_id_tampered":
        url = url.replace(upload_id, upload_id[:-1] + ("0" if upload_id[-1] != "0" else "1"))
    elif change == "expires_tampered":
        url = url.replace(f"Expires={expires}", f"Expires={int(expires) + 1}")
    elif change == "key_tampered":
        url = url.replace(asset.target.object, asset.target.object.replace(".mp4", ".mov"))
    else:
        url = re.sub(r"Signature=[^&]+", "Signature=AAAA", url)
    assert_obs_error(requests.put(url, data=body, headers=headers), 403, "SignatureDoesNotMatch")
    assert vod.sandbox.backend.snapshot()["uploads"][upload_id]["parts"] == {}
    assert vod.put_part(asset, upload_id, 1, data).status_code == 200  # the honest request still works


def test_unsigned_and_foreign_key_urls_are_refused(vod, part_upload):
    asset, upload_id, data = part_upload
    url = vod.authority(asset, "PUT", upload_id=upload_id, part_number=1)
    bare = url.split("&AWSAccessKeyId=")[0]
    assert_obs_error(
        requests.put(bare, data=data, headers={"Content-Type": "application/octet-stream"}),
        403,
        "AccessDenied",
    )
    foreign = url.replace(f"AWSAccessKeyId={vod.sandbox.config.ak}", "AWSAccessKeyId=SOMEONEELSE")
    assert_obs_error(
        requests.put(foreign, data=data, headers={"Content-Type": "application/octet-stream"}),
        403,
        "InvalidAccessKeyId",
    )


def test_expired_url_is_access_denied(make_huawei_vod_sandbox, clock, video):
    vod = VodDriver(make_huawei_vod_sandbox(clock=clock, sign_ttl=60))
    asset = vod.create()
    upload_id = vod.initiate(asset)
    listing = vod.authority(asset, "GET", upload_id=upload_id)
    clock.now += 60
    assert requests.get(listing).status_code == 200  # valid up to and including Expires
    clock.now += 1
    assert_obs_error(requests.get(listing), 403, "AccessDenied", "Request has expired")
    assert requests.get(vod.authority(asset, "GET", upload_id=upload_id)).status_code == 200


def test_expired_sign_fault_hands_out_an_expired_url_once(vod, part_upload):
    asset, upload_id, data = part_upload
    assert inject(vod.sandbox, "expired_sign", "ShowAssetTempAuthority").status_code == 200
    expired = vod.put_part(asset, upload_id, 1, data)
    assert_obs_error(expired, 403, "AccessDenied", "Request has expired")
    assert vod.put_part(asset, upload_id, 1, data).status_code == 200


# --------------------------------------------------------------------- OBS: multipart


def test_bad_digest_when_the_body_differs_from_the_signed_md5(vod, part_upload):
    asset, upload_id, data = part_upload
    md5 = md5_base64(data)
    url = vod.authority(asset, "PUT", upload_id=upload_id, part_number=1, content_md5=md5)
    response = requests.put(
        url, data=data[:-1] + b"!", headers={"Content-Type": "application/octet-stream", "Content-MD5": md5}
    )
    assert_obs_error(response, 400, "BadDigest")
    assert vod.sandbox.backend.snapshot()["uploads"][upload_id]["parts"] == {}


def test_part_etag_is_the_quoted_hex_md5(vod, part_upload):
    asset, upload_id, data = part_upload
    response = vod.put_part(asset, upload_id, 1, data)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'


def test_part_without_content_md5_when_none_was_signed(vod, part_upload):
    asset, upload_id, data = part_upload
    url = vod.authority(asset, "PUT", upload_id=upload_id, part_number=1)
    response = requests.put(url, data=data, headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("number", "accepted"), [("0", False), ("10001", False), ("x", False), ("10000", True)]
)
def test_obs_part_numbers_outside_1_to_10000(vod, part_upload, number, accepted):
    asset, upload_id, data = part_upload
    url = crafted(
        vod,
        asset,
        "PUT",
        [("partNumber", number), ("uploadId", upload_id)],
        content_type="application/octet-stream",
    )
    response = requests.put(url, data=data, headers={"Content-Type": "application/octet-stream"})
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert_obs_error(response, 400, "InvalidArgument", "10000")


def test_unknown_upload_id_is_no_such_upload(vod, part_upload):
    asset, _, data = part_upload
    response = vod.put_part(asset, "0" * 32, 1, data)
    assert_obs_error(response, 404, "NoSuchUpload")


def test_abort_then_every_operation_is_no_such_upload(vod, part_upload):
    asset, upload_id, data = part_upload
    parts = put_parts(vod, asset, upload_id, [data])
    aborted = requests.delete(vod.authority(asset, "DELETE", upload_id=upload_id))
    assert aborted.status_code == 204, aborted.text
    assert vod.sandbox.backend.snapshot()["uploads"][upload_id]["state"] == "aborted"
    assert_obs_error(vod.put_part(asset, upload_id, 2, data), 404, "NoSuchUpload")
    assert_obs_error(requests.get(vod.authority(asset, "GET", upload_id=upload_id)), 404, "NoSuchUpload")
    assert_obs_error(vod.complete(asset, upload_id, parts), 404, "NoSuchUpload")
    assert_obs_error(
        requests.delete(vod.authority(asset, "DELETE", upload_id=upload_id)), 404, "NoSuchUpload"
    )


def test_complete_twice_is_no_such_upload(vod, part_upload):
    asset, upload_id, data = part_upload
    parts = put_parts(vod, asset, upload_id, [data])
    assert vod.complete(asset, upload_id, parts).status_code == 200
    assert_obs_error(vod.complete(asset, upload_id, parts), 404, "NoSuchUpload")


@pytest.fixture
def three_parts(vod, video):
    """An upload with its three parts stored: (asset, upload_id, [(number, etag)], [chunks])."""
    asset = vod.create(video_md5=md5_base64(video))
    upload_id = vod.initiate(asset)
    chunks = [video[:PART], video[PART : 2 * PART], video[2 * PART :]]
    return asset, upload_id, put_parts(vod, asset, upload_id, chunks), chunks


def test_complete_requires_ascending_part_numbers(vod, three_parts):
    asset, upload_id, parts, _ = three_parts
    assert_obs_error(vod.complete(asset, upload_id, [parts[1], parts[0], parts[2]]), 400, "InvalidPartOrder")
    assert_obs_error(vod.complete(asset, upload_id, [parts[0], parts[0], parts[2]]), 400, "InvalidPartOrder")
    assert vod.complete(asset, upload_id, parts).status_code == 200


@pytest.mark.parametrize("problem", ["missing_part", "wrong_etag", "etag_of_another_part"])
def test_complete_with_an_unknown_part_or_etag_is_invalid_part(vod, three_parts, problem):
    asset, upload_id, parts, _ = three_parts
    listed = {
        "missing_part": [*parts, (4, parts[2][1])],
        "wrong_etag": [parts[0], (2, '"' + "0" * 32 + '"'), parts[2]],
        "etag_of_another_part": [parts[0], (2, parts[0][1]), parts[2]],
    }[problem]
    assert_obs_error(vod.complete(asset, upload_id, listed), 400, "InvalidPart")
    assert vod.sandbox.backend.snapshot()["uploads"][upload_id]["state"] == "open"


def test_etag_quotes_are_optional_in_the_complete_body(vod, three_parts):
    asset, upload_id, parts, _ = three_parts
    unquoted = [(number, etag.strip('"')) for number, etag in parts]
    assert vod.complete(asset, upload_id, unquoted).status_code == 200


@pytest.mark.parametrize(("first", "accepted"), [(PART - 1, False), (PART, True)])
def test_non_last_part_under_102400_bytes_is_entity_too_small(vod, video, first, accepted):
    asset = vod.create()
    upload_id = vod.initiate(asset)
    parts = put_parts(vod, asset, upload_id, [video[:first], video[first:]])
    response = vod.complete(asset, upload_id, parts)
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert_obs_error(response, 400, "EntityTooSmall", "Part 1")


def test_a_small_last_part_and_a_single_small_part_are_fine(vod, sample_video):
    data = sample_video(5_000).read_bytes()
    asset = vod.create()
    assert vod.upload(asset, data, part_size=PART)  # one part of 5,000 bytes
    assert stored(vod, asset.asset_id)["size"] == 5_000


@pytest.mark.parametrize(
    "body",
    [
        "not xml at all",
        "",
        "<CompleteMultipartUpload></CompleteMultipartUpload>",
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
        '<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>',
        '<Other><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></Other>',
    ],
    ids=["not-xml", "empty", "no-parts", "part-without-etag", "non-numeric-part-number", "wrong-root"],
)
def test_malformed_complete_body(vod, three_parts, body):
    asset, upload_id, _, _ = three_parts
    url = vod.authority(asset, "POST", upload_id=upload_id)
    response = requests.post(url, data=body, headers={"Content-Type": "application/xml"})
    assert_obs_error(response, 400, "MalformedXML")


def test_complete_is_signed_as_application_xml(vod, three_parts):
    asset, upload_id, parts, _ = three_parts
    url = vod.authority(asset, "POST", upload_id=upload_id, content_type="video/mp4")
    wrong = requests.post(url, data=complete_body(parts), headers={"Content-Type": "text/xml"})
    assert_obs_error(wrong, 403, "SignatureDoesNotMatch")
    right = requests.post(url, data=complete_body(parts), headers={"Content-Type": "application/xml"})
    assert right.status_code == 200, right.text


def list_parts(url: str) -> tuple[dict[str, str], list[tuple[int, str, int]]]:
    response = requests.get(url)
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)
    assert local(root.tag) == "ListPartsResult"
    parts = []
    for element in root:
        if local(element.tag) == "Part":
            fields = {local(child.tag): child.text or "" for child in element}
            assert set(fields) == {"PartNumber", "LastModified", "ETag", "Size"}
            parts.append((int(fields["PartNumber"]), fields["ETag"], int(fields["Size"])))
    return xml_fields(response.content), parts


def test_list_parts_and_paging(vod, three_parts):
    asset, upload_id, parts, chunks = three_parts
    url = vod.authority(asset, "GET", upload_id=upload_id)
    fields, listed = list_parts(url)
    assert fields["UploadId"] == upload_id and fields["Key"] == asset.target.object
    assert fields["IsTruncated"] == "false"
    assert listed == [(n, etag, len(chunk)) for (n, etag), chunk in zip(parts, chunks, strict=True)]

    # Paging parameters are not sub-resources: appended to the signed URL, they keep it valid.
    first_page, first = list_parts(url + "&max-parts=2")
    assert [n for n, _, _ in first] == [1, 2]
    assert (first_page["IsTruncated"], first_page["MaxParts"]) == ("true", "2")
    assert first_page["NextPartNumberMarker"] == "2"
    second_page, second = list_parts(
        url + f"&max-parts=2&part-number-marker={first_page['NextPartNumberMarker']}"
    )
    assert [n for n, _, _ in second] == [3]
    assert (second_page["IsTruncated"], second_page["PartNumberMarker"]) == ("false", "2")


@pytest.mark.parametrize("paging", ["max-parts=many", "part-number-marker=x", "max-parts=-1"])
def test_unparseable_paging_is_a_400_not_a_500(vod, three_parts, paging):
    asset, upload_id, _, _ = three_parts
    response = requests.get(vod.authority(asset, "GET", upload_id=upload_id) + f"&{paging}")
    assert_obs_error(response, 400, "InvalidArgument")


def test_reuploading_a_part_number_replaces_it(vod, three_parts, video):
    asset, upload_id, parts, chunks = three_parts
    replacement = bytes(reversed(chunks[1]))
    again = vod.put_part(asset, upload_id, 2, replacement)
    assert again.status_code == 200
    new_etag = again.headers["ETag"]
    assert new_etag != parts[1][1]
    _, listed = list_parts(vod.authority(asset, "GET", upload_id=upload_id))
    assert [(n, etag) for n, etag, _ in listed] == [parts[0], (2, new_etag), parts[2]]
    assert_obs_error(vod.complete(asset, upload_id, parts), 400, "InvalidPart")
    assert vod.complete(asset, upload_id, [parts[0], (2, new_etag), parts[2]]).status_code == 200
    expected = hashlib.md5(chunks[0] + replacement + chunks[2]).hexdigest()
    assert stored(vod, asset.asset_id)["md5"] == expected


def test_completed_object_md5_and_s3_style_etag(vod, three_parts, video):
    asset, upload_id, parts, chunks = three_parts
    response = vod.complete(asset, upload_id, parts)
    assert response.status_code == 200, response.text
    result = xml_fields(response.content)
    assert local(ET.fromstring(response.content).tag) == "CompleteMultipartUploadResult"
    assert (result["Bucket"], result["Key"]) == (asset.target.bucket, asset.target.object)
    assert result["Location"].endswith(f"/{asset.target.bucket}/{asset.target.object}")
    combined = hashlib.md5(b"".join(hashlib.md5(chunk).digest() for chunk in chunks)).hexdigest()
    assert result["ETag"] == f'"{combined}-3"'
    assert result["ETag"].strip('"') != hashlib.md5(video).hexdigest()
    obj = stored(vod, asset.asset_id)
    assert obj["md5"] == hashlib.md5(video).hexdigest()
    assert obj["size"] == len(video) and obj["etag"] == result["ETag"]
    assert vod.sandbox.backend.snapshot()["uploads"][upload_id]["state"] == "completed"


def test_unsupported_obs_request_is_an_xml_error(vod):
    asset = vod.create()
    response = requests.get(asset.video_upload_url)  # GET without uploadId
    assert_obs_error(response, 405, "MethodNotAllowed")
    other_bucket = asset.video_upload_url.replace(asset.target.bucket, "vod-bucket-99-elsewhere")
    assert_obs_error(
        requests.put(other_bucket, data=b"x", headers={"Content-Type": "video/mp4"}), 404, "NoSuchBucket"
    )


# ----------------------------------------------------------------------- single PUT


@pytest.mark.parametrize(
    ("video_type", "content_type"),
    [("MP4", "video/mp4"), ("MOV", "video/quicktime"), ("MKV", "video/x-matroska")],
)
def test_single_put_signs_the_documented_content_type(vod, video_type, content_type):
    data = b"single put bytes" * 100
    asset = vod.create(video_type=video_type)
    assert_obs_error(
        requests.put(asset.video_upload_url, data=data, headers={"Content-Type": "application/octet-stream"}),
        403,
        "SignatureDoesNotMatch",
    )
    assert_obs_error(requests.put(asset.video_upload_url, data=data), 403, "SignatureDoesNotMatch")
    assert stored(vod, asset.asset_id) is None
    response = requests.put(asset.video_upload_url, data=data, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert stored(vod, asset.asset_id)["md5"] == hashlib.md5(data).hexdigest()


def test_single_put_with_video_md5_needs_the_same_content_md5(instant, sample_video):
    data = sample_video(60_000, seed=5).read_bytes()
    md5 = md5_base64(data)
    asset = instant.create(video_md5=md5)
    url = asset.video_upload_url
    assert_obs_error(
        requests.put(url, data=data, headers={"Content-Type": "video/mp4"}), 403, "SignatureDoesNotMatch"
    )
    other = md5_base64(data + b"x")
    assert_obs_error(
        requests.put(url, data=data + b"x", headers={"Content-Type": "video/mp4", "Content-MD5": other}),
        403,
        "SignatureDoesNotMatch",
    )
    assert_obs_error(
        requests.put(url, data=data + b"x", headers={"Content-Type": "video/mp4", "Content-MD5": md5}),
        400,
        "BadDigest",
    )
    assert stored(instant, asset.asset_id) is None
    response = requests.put(url, data=data, headers={"Content-Type": "video/mp4", "Content-MD5": md5})
    assert response.status_code == 200, response.text
    instant.confirm(asset.asset_id)
    assert instant.status(asset.asset_id) == "PUBLISHED"


# -------------------------------------------------------------------- ConfirmAssetUpload


def test_confirm_unknown_asset_is_vod_10062(shared):
    refused(lambda: shared.confirm("0" * 32), 403, "VOD.10062", "does not exist")


@pytest.mark.parametrize("status", ["DONE", "created", "UPLOADED", ""])
def test_confirm_bad_status_is_vod_10053(shared, status):
    asset = shared.create()
    refused(lambda: shared.confirm(asset.asset_id, status), 400, "VOD.10053", "status")
    assert shared.status(asset.asset_id) == "CREATING"


@pytest.mark.parametrize(
    "body",
    [b'{"status": "CREATED"}', b'{"asset_id": 5, "status": "CREATED"}', b"{oops", b'["CREATED"]'],
    ids=["no-asset-id", "numeric-asset-id", "broken-json", "json-array"],
)
def test_confirm_malformed_body_is_vod_10053(shared, body):
    response = signed_vod(shared.sandbox, "POST", "/v1.0/{pid}/asset/status/uploaded", body=body)
    assert_vod_reply(response, 400, "VOD.10053")


def test_second_confirm_is_vod_10126(vod, video):
    asset = vod.create()
    vod.upload(asset, video)
    assert vod.confirm(asset.asset_id).asset_id == asset.asset_id
    for status in ("CREATED", "CANCELLED"):
        refused(lambda status=status: vod.confirm(asset.asset_id, status), 403, "VOD.10126")


def test_cancel_discards_open_uploads(vod, video):
    asset = vod.create()
    upload_id = vod.initiate(asset)
    put_parts(vod, asset, upload_id, [video[:PART]])
    md5 = md5_base64(video[PART:])
    presigned = vod.authority(asset, "PUT", upload_id=upload_id, part_number=2, content_md5=md5)
    vod.confirm(asset.asset_id, "CANCELLED")
    assert vod.status(asset.asset_id) == "CANCELLED"
    assert vod.sandbox.backend.snapshot()["uploads"][upload_id]["state"] == "aborted"
    late = requests.put(
        presigned, data=video[PART:], headers={"Content-Type": "application/octet-stream", "Content-MD5": md5}
    )
    assert_obs_error(late, 404, "NoSuchUpload")
    refused(lambda: vod.authority(asset, "PUT", upload_id=upload_id, part_number=2), 403, "VOD.10135")


def test_cancel_after_complete_drops_the_object(vod, video):
    asset = vod.create()
    vod.upload(asset, video)
    vod.confirm(asset.asset_id, "CANCELLED")
    assert vod.status(asset.asset_id) == "CANCELLED"
    assert stored(vod, asset.asset_id) is None


def test_confirm_failed_is_upload_failed(vod, video):
    asset = vod.create()
    vod.upload(asset, video)
    vod.confirm(asset.asset_id, "FAILED")
    assert vod.status(asset.asset_id) == "UPLOAD_FAILED"


def test_created_without_a_completed_object_is_upload_failed(instant, video):
    asset = instant.create()
    upload_id = instant.initiate(asset)
    put_parts(instant, asset, upload_id, [video[:PART]])  # parts but no complete
    instant.confirm(asset.asset_id)
    info = meta(instant, asset.asset_id)
    assert info.status == "UPLOAD_FAILED"
    assert "no object" in info.description


def test_created_with_an_md5_other_than_video_md5_is_upload_failed(instant, video):
    asset = instant.create(video_md5=md5_base64(video + b"more"))
    instant.upload(asset, video)
    instant.confirm(asset.asset_id)
    info = meta(instant, asset.asset_id)
    assert info.status == "UPLOAD_FAILED"
    assert "video_md5" in info.description


def test_created_with_the_right_md5_publishes(instant, video):
    asset = instant.create(video_md5=md5_base64(video))
    instant.upload(asset, video)
    instant.confirm(asset.asset_id)
    assert instant.status(asset.asset_id) == "PUBLISHED"


def test_bytes_that_are_not_a_video_fail_transcoding(instant):
    text = b"these are not video bytes " * 5000
    asset = instant.create(name="notes.mp4", video_md5=md5_base64(text))
    instant.upload(asset, text)
    instant.confirm(asset.asset_id)
    info = meta(instant, asset.asset_id)
    assert info.status == "TRANSCODE_FAILED"
    assert "notes.mp4" in info.description
    assert str(instant.sandbox.backend.data_dir) not in info.description


# -------------------------------------------------------------------------- status model


def poll(vod: VodDriver, clock: FakeClock, asset_id: str, offsets: list[int]) -> list[str]:
    """Statuses seen at these many seconds after now."""
    start, seen = clock.now, []
    for offset in offsets:
        clock.now = start + offset
        seen.append(vod.status(asset_id))
    return seen


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        pytest.param({"auto_publish": 1}, ["CREATED", "PUBLISHED"], id="no-template-publish"),
        pytest.param({"auto_publish": 0}, ["CREATED"], id="no-template-no-publish"),
        pytest.param(
            {"auto_publish": 1, "template_group_name": "hd"},
            ["WAITING_TRANSCODE", "TRANSCODING", "PUBLISHED"],
            id="template-publish",
        ),
        pytest.param(
            {"auto_publish": 0, "template_group_name": "hd"},
            ["WAITING_TRANSCODE", "TRANSCODING", "TRANSCODE_SUCCEED"],
            id="template-no-publish",
        ),
    ],
)
def test_status_after_confirm(timed, clock, video, fields, path):
    asset = timed.create(**fields)
    assert timed.status(asset.asset_id) == "CREATING"
    timed.upload(asset, video)
    assert timed.status(asset.asset_id) == "CREATING"
    timed.confirm(asset.asset_id)
    seen = poll(timed, clock, asset.asset_id, [0, 5, 15, 25, 35, 120])
    assert list(dict.fromkeys(seen)) == path, seen
    assert seen[-2] == seen[-1] == path[-1]


def test_published_asset_has_a_play_url_serving_the_object(timed, clock, video):
    asset = timed.create(auto_publish=1)
    timed.upload(asset, video)
    timed.confirm(asset.asset_id)
    assert meta(timed, asset.asset_id).play_info_array == []
    clock.now += 30
    info = meta(timed, asset.asset_id)
    assert info.status == "PUBLISHED"
    (play,) = info.play_info_array
    assert play.play_type == "mp4"
    response = requests.get(play.url)
    assert response.status_code == 200 and response.content == video


def test_unpublished_asset_has_no_play_url(timed, clock, video):
    asset = timed.create(auto_publish=0, template_group_name="hd")
    timed.upload(asset, video)
    timed.confirm(asset.asset_id)
    clock.now += 60
    info = meta(timed, asset.asset_id)
    assert info.status == "TRANSCODE_SUCCEED" and info.play_info_array == []


@pytest.mark.parametrize(
    ("title", "path"),
    [
        ("clip [TRANSCODE_FAILED]", ["WAITING_TRANSCODE", "TRANSCODING", "TRANSCODE_FAILED"]),
        ("clip [UPLOAD_FAILED]", ["CREATED", "UPLOAD_FAILED"]),
        ("clip [SERVER_ERROR]", ["CREATED", "SERVER_ERROR"]),
    ],
)
def test_title_markers_decide_the_outcome(timed, clock, video, title, path):
    asset = timed.create(title=title)
    timed.upload(asset, video)
    timed.confirm(asset.asset_id)
    seen = poll(timed, clock, asset.asset_id, [0, 5, 15, 25, 35])
    assert list(dict.fromkeys(seen)) == path, seen
    assert meta(timed, asset.asset_id).play_info_array == []


def test_outcome_can_be_set_through_the_inspection_api(timed, clock, video):
    asset = timed.create()
    timed.upload(asset, video)
    timed.confirm(asset.asset_id)
    url = f"{timed.sandbox.endpoint}/_sandbox/huawei-vod/assets/{asset.asset_id}/outcome"
    reply = requests.post(url, json={"outcome": "SERVER_ERROR", "finish_now": True})
    assert reply.status_code == 200 and reply.json()["outcome"] == "SERVER_ERROR"
    assert timed.status(asset.asset_id) == "SERVER_ERROR"
    assert requests.post(url, json={"outcome": "NOT_A_STATUS"}).status_code == 400
    unknown = f"{timed.sandbox.endpoint}/_sandbox/huawei-vod/assets/{'0' * 32}/outcome"
    assert requests.post(unknown, json={"outcome": "SERVER_ERROR"}).status_code == 404


def test_unknown_asset_id_is_uncreated(shared):
    info = meta(shared, "0" * 32)
    assert (info.asset_id, info.status) == ("0" * 32, "UNCREATED")


def test_asset_ids_repeated_or_comma_separated(vod):
    first, second = vod.create(title="one"), vod.create(title="two")
    unknown = "1" * 32
    wanted = [first.asset_id, second.asset_id, unknown]
    repeated = vod.client.show_asset_meta(ShowAssetMetaRequest(asset_id=wanted))
    by_id = {info.asset_id: info.status for info in repeated.asset_info_array}
    assert by_id == {first.asset_id: "CREATING", second.asset_id: "CREATING", unknown: "UNCREATED"}

    response = signed_vod(vod.sandbox, "GET", "/v1.0/{pid}/asset/info", query=f"asset_id={','.join(wanted)}")
    assert response.status_code == 200, response.text
    assert {i["asset_id"]: i["status"] for i in response.json()["asset_info_array"]} == by_id
    assert response.json()["total"] == 3


def test_more_than_ten_asset_ids_is_vod_10053(shared):
    ids = [f"{i:032x}" for i in range(11)]
    refused(
        lambda: shared.client.show_asset_meta(ShowAssetMetaRequest(asset_id=ids)),
        400,
        "VOD.10053",
        "asset_id",
    )


def test_show_asset_meta_status_filter(instant, video):
    published = instant.create()
    instant.upload(published, video)
    instant.confirm(published.asset_id)
    pending = instant.create()
    response = instant.client.show_asset_meta(
        ShowAssetMetaRequest(asset_id=[published.asset_id, pending.asset_id], status=["PUBLISHED"])
    )
    assert [info.asset_id for info in response.asset_info_array] == [published.asset_id]


def test_show_asset_detail(instant, video):
    plain = instant.create(title="plain")
    transcoded = instant.create(title="hd", template_group_name="hd")
    for asset in (plain, transcoded):
        instant.upload(asset, video)
        instant.confirm(asset.asset_id)
    detail = instant.client.show_asset_detail(ShowAssetDetailRequest(asset_id=transcoded.asset_id))
    assert detail.asset_id == transcoded.asset_id
    assert detail.base_info.title == "hd"
    assert detail.transcode_info.transcode_status == "TRANSCODE_SUCCEED"
    plain_detail = instant.client.show_asset_detail(ShowAssetDetailRequest(asset_id=plain.asset_id))
    assert plain_detail.transcode_info.transcode_status == "UN_TRANSCODE"
    refused(
        lambda: instant.client.show_asset_detail(ShowAssetDetailRequest(asset_id="0" * 32)), 403, "VOD.10062"
    )


def test_list_asset_list(instant, video):
    published = instant.create(title="published")
    instant.upload(published, video)
    instant.confirm(published.asset_id)
    creating = instant.create(title="creating")
    failed = instant.create(title="failed")
    instant.confirm(failed.asset_id, "FAILED")
    listing = instant.client.list_asset_list(ListAssetListRequest())
    assert listing.total == 3
    statuses = {a.asset_id: (a.title, a.asset_status) for a in listing.assets}
    assert statuses == {
        published.asset_id: ("published", "PUBLISHED"),
        creating.asset_id: ("creating", "CREATING"),
        failed.asset_id: ("failed", "FAILED"),
    }
    paged = instant.client.list_asset_list(ListAssetListRequest(page=1, size=2))
    assert [a.asset_id for a in paged.assets] == [failed.asset_id]
    refused(lambda: instant.client.list_asset_list(ListAssetListRequest(size=101)), 400, "VOD.10053", "size")


def test_list_asset_list_filters_by_asset_id(vod):
    first, second = vod.create(title="one"), vod.create(title="two")
    assert second.asset_id
    listing = vod.client.list_asset_list(ListAssetListRequest(asset_id=[first.asset_id]))
    assert [a.asset_id for a in listing.assets] == [first.asset_id]
    assert listing.total == 1


def test_list_asset_list_reports_the_documented_sub_statuses(instant, video):
    asset = instant.create(template_group_name="hd")
    instant.upload(asset, video)
    instant.confirm(asset.asset_id)
    (summary,) = instant.client.list_asset_list(ListAssetListRequest()).assets
    assert summary.asset_status == "PUBLISHED"
    assert summary.transcode_status == "TRANSCODE_SUCCEED"


@pytest.mark.parametrize("query", ["size=ten", "page=first"])
def test_unparseable_list_query_is_vod_10053_not_500(shared, query):
    response = signed_vod(shared.sandbox, "GET", "/v1.0/{pid}/asset/list", query=query)
    assert_vod_reply(response, 400, "VOD.10053")


def test_delete_assets(instant, video):
    asset = instant.create()
    instant.upload(asset, video)
    instant.confirm(asset.asset_id)
    unknown = "2" * 32
    result = instant.client.delete_assets(DeleteAssetsRequest(asset_id=[asset.asset_id, unknown]))
    assert {r.asset_id: r.status for r in result.delete_result_array} == {
        asset.asset_id: "DELETED",
        unknown: "DELETE_FAILED",
    }
    info = meta(instant, asset.asset_id)
    assert info.status == "DELETED" and info.play_info_array == []
    assert stored(instant, asset.asset_id) is None
    assert not instant.sandbox.backend.obs.object_path(asset.target.bucket, asset.target.object).exists()
    refused(lambda: instant.confirm(asset.asset_id), 403, "VOD.10126")
    listing = instant.client.list_asset_list(ListAssetListRequest())
    assert [a.asset_status for a in listing.assets] == ["DELETED"]


# -------------------------------------------------------------------------------- faults


@pytest.mark.parametrize(("kind", "status"), [("APIG.0308", 429), ("VOD.10051", 500), ("VOD.10127", 403)])
def test_injected_vod_errors_go_through_the_official_client(vod, kind, status):
    assert inject(vod.sandbox, kind, "CreateAsset").status_code == 200
    refused(vod.create, status, kind)
    assert vod.create().asset_id  # the fault fires once
    assert len(vod.sandbox.backend.snapshot()["assets"]) == 1


def test_injected_fault_hits_only_its_operation_and_counts_down(vod):
    assert inject(vod.sandbox, "APIG.0308", "ConfirmAssetUpload", count=2).status_code == 200
    asset = vod.create()
    refused(lambda: vod.confirm(asset.asset_id, "FAILED"), 429, "APIG.0308")
    refused(lambda: vod.confirm(asset.asset_id, "FAILED"), 429, "APIG.0308")
    vod.confirm(asset.asset_id, "FAILED")
    assert vod.sandbox.backend.snapshot()["faults"] == []


@pytest.mark.parametrize(
    ("kind", "status"), [("SlowDown", 503), ("InternalError", 500), ("ServiceUnavailable", 503)]
)
def test_injected_obs_errors_are_xml_and_the_same_url_works_again(vod, part_upload, kind, status):
    asset, upload_id, data = part_upload
    assert inject(vod.sandbox, kind, "UploadPart").status_code == 200
    md5 = md5_base64(data)
    url = vod.authority(asset, "PUT", upload_id=upload_id, part_number=1, content_md5=md5)
    headers = {"Content-Type": "application/octet-stream", "Content-MD5": md5}
    assert_obs_error(requests.put(url, data=data, headers=headers), status, kind)
    assert vod.sandbox.backend.snapshot()["uploads"][upload_id]["parts"] == {}
    assert requests.put(url, data=data, headers=headers).status_code == 200


def test_dropped_part_response_still_stores_the_part(vod, video):
    asset = vod.create(video_md5=md5_base64(video))
    upload_id = vod.initiate(asset)
    assert inject(vod.sandbox, "drop", "UploadPart").status_code == 200
    with pytest.raises(requests.exceptions.RequestException):
        vod.put_part(asset, upload_id, 1, video[:PART])
    parts = vod.sandbox.backend.snapshot()["uploads"][upload_id]["parts"]
    assert parts[1]["md5"] == hashlib.md5(video[:PART]).hexdigest()
    retried = put_parts(vod, asset, upload_id, [video[:PART], video[PART:]])
    assert vod.complete(asset, upload_id, retried).status_code == 200
    assert stored(vod, asset.asset_id)["md5"] == hashlib.md5(video).hexdigest()


def test_dropped_vod_response_after_the_asset_was_created(vod):
    assert inject(vod.sandbox, "drop", "CreateAsset").status_code == 200
    with pytest.raises(requests.exceptions.RequestException):  # the SDK lets the cut body through
        vod.create(title="lost reply")
    (created,) = vod.sandbox.backend.snapshot()["assets"].values()
    assert created["title"] == "lost reply"


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "nonsense"},
        {"kind": "SlowDown", "operation": "NoSuchOperation"},
        {"kind": "SlowDown", "count": 0},
        {"operation": "UploadPart"},
    ],
    ids=["unknown-kind", "unknown-operation", "count-0", "no-kind"],
)
def test_bad_fault_specs_are_400(huawei_vod_sandbox, spec):
    response = requests.post(f"{huawei_vod_sandbox.endpoint}/_sandbox/huawei-vod/faults", json=spec)
    assert response.status_code == 400
    assert "error" in response.json()
    assert huawei_vod_sandbox.backend.snapshot()["faults"] == []


def test_faults_can_be_cleared(vod):
    inject(vod.sandbox, "VOD.10051", count=3)
    cleared = requests.delete(f"{vod.sandbox.endpoint}/_sandbox/huawei-vod/faults").json()
    assert cleared == {"cleared": 1}
    assert vod.create().asset_id


# -------------------------------------------------------------------- request log, state


def test_request_log_and_state_never_hold_the_sk_or_a_signature(make_huawei_vod_sandbox, video):
    sandbox = make_huawei_vod_sandbox(auth_token="iam-token-0123456789")
    vod = VodDriver(sandbox)
    asset = vod.create(video_md5=md5_base64(video))
    signatures = [dict(parse_qsl(urlsplit(asset.video_upload_url).query))["Signature"]]
    upload_id = vod.initiate(asset)
    for number, chunk in enumerate([video[:PART], video[PART:]], start=1):
        url = vod.authority(
            asset, "PUT", upload_id=upload_id, part_number=number, content_md5=md5_base64(chunk)
        )
        signatures.append(dict(parse_qsl(urlsplit(url).query))["Signature"])
        headers = {"Content-Type": "application/octet-stream", "Content-MD5": md5_base64(chunk)}
        assert requests.put(url, data=chunk, headers=headers).status_code == 200
    vod.confirm(asset.asset_id, "CANCELLED")
    token_call = requests.get(
        f"{sandbox.endpoint}/v1.0/{sandbox.config.project_id}/asset/list",
        headers={"X-Auth-Token": "iam-token-0123456789"},
    )
    assert token_call.status_code == 200

    log = requests.get(f"{sandbox.endpoint}/_sandbox/huawei-vod/requests", params={"limit": 1000})
    state = requests.get(f"{sandbox.endpoint}/_sandbox/huawei-vod/state")
    entries = log.json()
    assert {e["operation"] for e in entries} >= {
        "CreateAsset",
        "ShowAssetTempAuthority",
        "InitiateMultipartUpload",
        "UploadPart",
        "ConfirmAssetUpload",
        "ListAssetList",
    }
    assert all("Signature=***" in e["url"] for e in entries if e["operation"] == "UploadPart")
    for text in (log.text, state.text):
        assert sandbox.config.sk not in text
        assert "iam-token-0123456789" not in text
        for signature in signatures:
            assert signature not in text and quote(signature, safe="") not in text
    assert state.json()["request_counts"]["UploadPart"] == 2


def test_request_log_records_status_and_error_codes(vod):
    refused(lambda: vod.confirm("0" * 32), 403, "VOD.10062")
    (entry,) = requests.get(f"{vod.sandbox.endpoint}/_sandbox/huawei-vod/requests").json()
    assert (entry["method"], entry["operation"], entry["status"], entry["code"]) == (
        "POST",
        "ConfirmAssetUpload",
        403,
        "VOD.10062",
    )


@pytest.mark.parametrize("key", ["../../escaped.mp4", "/tmp/escaped-absolute.mp4", "a/../../../escaped.mp4"])
def test_object_keys_never_reach_outside_the_data_folder(make_huawei_vod_sandbox, tmp_path, key):
    """OBS keys are any text; where the emulator keeps an object's bytes is not built from it."""
    sandbox = make_huawei_vod_sandbox(data_dir=tmp_path / "data" / "vod")
    obs = sandbox.backend.obs
    before = {path for path in Path("/tmp").glob("escaped*")}
    obs.put_object("bucket", key, io.BytesIO(b"video bytes"), None)
    stored = obs.object_path("bucket", key)
    assert stored.read_bytes() == b"video bytes"
    assert stored.resolve().is_relative_to((tmp_path / "data" / "vod").resolve())
    assert [p for p in tmp_path.rglob("escaped*")] == [] and set(Path("/tmp").glob("escaped*")) == before
