"""APIG SDK-HMAC-SHA256 and OBS V2 signing against the published vectors and the official SDKs; wire helpers."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import obs
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from obs.auth import Authentication
from obs.convertor import Adapter

from media_upload.protocols.huawei_vod import (
    FAILED_ASSET_STATUSES,
    AssetStatus,
    canonical_request,
    md5_base64,
    notification,
    notification_signature,
    notified_weight,
    obs_signature,
    obs_signed_url,
    obs_string_to_sign,
    parse_authorization,
    parse_obs_query,
    ready_statuses,
    resolve_endpoint,
    sdk_signature,
    sign_request,
)

# ------------------------------------------------------------------ APIG published vector (reference §3.2)

VECTOR_AK = "QTWAOYTTINDUT2QVKYUC"
VECTOR_SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
VECTOR_HOST = "service.region.example.com"
VECTOR_PATH = "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
VECTOR_QUERY = [("limit", "2"), ("marker", "13551d6b-755d-4757-b956-536f674975c0")]
VECTOR_URL = f"https://{VECTOR_HOST}{VECTOR_PATH}?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
VECTOR_DATE = "20191115T033655Z"
VECTOR_NOW = datetime(2019, 11, 15, 3, 36, 55, tzinfo=UTC)
VECTOR_CANONICAL = (
    "GET\n"
    "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\n"
    "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n"
    "content-type:application/json\n"
    "host:service.region.example.com\n"
    "x-sdk-date:20191115T033655Z\n"
    "\n"
    "content-type;host;x-sdk-date\n"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)
VECTOR_CANONICAL_SHA256 = "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
VECTOR_SIGNATURE = "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
VECTOR_AUTHORIZATION = (
    f"SDK-HMAC-SHA256 Access={VECTOR_AK}, SignedHeaders=content-type;host;x-sdk-date, "
    f"Signature={VECTOR_SIGNATURE}"
)

PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
PARITY_NOW = datetime(2024, 3, 9, 21, 7, 45, tzinfo=UTC)


def _sdk_authorization(
    method: str,
    scheme: str,
    host: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    sdk_date: str,
    access_key: str = VECTOR_AK,
    secret_key: str = VECTOR_SK,
) -> dict[str, str]:
    """The headers huaweicloudsdkcore's ``Signer`` produces, with ``X-Sdk-Date`` pinned through the headers."""
    request = SdkRequest(
        method=method,
        schema=scheme,
        host=host,
        resource_path=path,
        query_params=list(query),
        header_params={**headers, "X-Sdk-Date": sdk_date},
        body=body,
    )
    Signer(BasicCredentials(access_key, secret_key, PROJECT_ID)).sign(request)
    return request.header_params


def _url(base: str, path: str, query: list[tuple[str, str]]) -> str:
    """The URL with the query in the given (not canonical) order, encoded independently of the module."""
    return f"{base}{path}" + (f"?{urlencode(query, quote_via=quote)}" if query else "")


def test_canonical_request_matches_the_published_vector():
    headers = {"Content-Type": "application/json", "Host": VECTOR_HOST, "X-Sdk-Date": VECTOR_DATE}
    text, names = canonical_request("GET", VECTOR_PATH, VECTOR_QUERY, headers, b"")
    assert text == VECTOR_CANONICAL
    # 9 lines with the 7th empty (reference §3.2 calls it "8 lines"; the SDK builds these 9 too).
    assert len(text.split("\n")) == 9
    assert text.split("\n")[6] == ""
    assert names == ["content-type", "host", "x-sdk-date"]
    assert hashlib.sha256(text.encode()).hexdigest() == VECTOR_CANONICAL_SHA256


def test_sdk_signature_matches_the_published_vector():
    assert sdk_signature(VECTOR_SK, VECTOR_DATE, VECTOR_CANONICAL) == VECTOR_SIGNATURE


def test_sign_request_reproduces_the_published_authorization_header():
    signed = sign_request(
        VECTOR_AK, VECTOR_SK, "GET", VECTOR_URL, {"Content-Type": "application/json"}, now=VECTOR_NOW
    )
    assert signed == {
        "Host": VECTOR_HOST,
        "Content-Type": "application/json",
        "X-Sdk-Date": VECTOR_DATE,
        "Authorization": VECTOR_AUTHORIZATION,
    }


def test_the_official_signer_reproduces_the_published_vector_too():
    """The oracle used below is wired correctly: it yields the documented header for the documented request."""
    headers = _sdk_authorization(
        "GET",
        "https",
        VECTOR_HOST,
        VECTOR_PATH,
        VECTOR_QUERY,
        {"Content-Type": "application/json"},
        b"",
        VECTOR_DATE,
    )
    assert headers["Authorization"] == VECTOR_AUTHORIZATION


def test_query_order_in_the_url_does_not_change_the_signature():
    reordered = f"https://{VECTOR_HOST}{VECTOR_PATH}?marker=13551d6b-755d-4757-b956-536f674975c0&limit=2"
    signed = sign_request(
        VECTOR_AK, VECTOR_SK, "GET", reordered, {"Content-Type": "application/json"}, now=VECTOR_NOW
    )
    assert signed["Authorization"] == VECTOR_AUTHORIZATION


def test_a_different_date_gives_a_different_signature():
    later = datetime(2019, 11, 15, 3, 36, 56, tzinfo=UTC)
    signed = sign_request(
        VECTOR_AK, VECTOR_SK, "GET", VECTOR_URL, {"Content-Type": "application/json"}, now=later
    )
    assert signed["X-Sdk-Date"] == "20191115T033656Z"
    assert parse_authorization(signed["Authorization"])["Signature"] != VECTOR_SIGNATURE


# ------------------------------------------------------------------ parity with huaweicloudsdkcore's Signer

_CREATE_ASSET = json.dumps(
    {"title": "démo vidéo 1", "video_name": "demo.mp4", "video_type": "MP4", "auto_publish": 0},
    separators=(",", ":"),
    ensure_ascii=False,
).encode()


@pytest.mark.parametrize(
    ("method", "base", "path", "query", "headers", "body"),
    [
        pytest.param(
            "POST",
            "https://vod.cn-north-4.myhuaweicloud.com",
            f"/v1.0/{PROJECT_ID}/asset",
            [],
            {"Content-Type": "application/json", "X-Project-Id": PROJECT_ID},
            _CREATE_ASSET,
            id="post-json-body",
        ),
        pytest.param(
            "GET",
            "https://vod.cn-north-4.myhuaweicloud.com",
            f"/v1.0/{PROJECT_ID}/asset/info",
            [("size", "10"), ("asset_id", "b"), ("page", "0"), ("asset_id", "a")],
            {"Content-Type": "application/json", "X-Project-Id": PROJECT_ID},
            b"",
            id="get-repeated-query-keys",
        ),
        pytest.param(
            "GET",
            "https://vod.ap-southeast-1.myhuaweicloud.com",
            quote(f"/v1.0/{PROJECT_ID}/asset/a b:c(1)*!/视频~x", safe="/"),
            [("query_string", "a b+c/d~e*'"), ("tags", "x,y;z"), ("empty", ""), ("名", "值")],
            {"Content-Type": "application/json", "X-Project-Id": PROJECT_ID},
            b"",
            id="path-and-query-needing-encoding",
        ),
        pytest.param(
            "POST",
            "http://127.0.0.1:8788",
            f"/v1.0/{PROJECT_ID}/asset/status/uploaded",
            [],
            {"Content-Type": "application/json", "X-Project-Id": PROJECT_ID},
            b'{"asset_id":"3f6a","status":"CREATED"}',
            id="host-with-port",
        ),
        pytest.param(
            "GET",
            "http://127.0.0.1:8788",
            f"/v1.1/{PROJECT_ID}/asset/authority",
            [("http_verb", "PUT"), ("bucket", "b"), ("object_key", "k/v.mp4"), ("part_number", "2")],
            {
                "User-Agent": "huaweicloud-usdk-python/3.0",
                "Content-Type": "application/json",
                "X-Project-Id": f"  {PROJECT_ID}",
            },
            b"",
            id="sdk-headers-with-padded-values",
        ),
        pytest.param(
            "PUT",
            "https://vod.cn-north-4.myhuaweicloud.com",
            f"/v1.0/{PROJECT_ID}/asset/",
            [],
            {"content-type": "application/json;charset=UTF-8", "X-PROJECT-ID": PROJECT_ID},
            b'{"asset_id":"3f6a"}',
            id="trailing-slash-and-mixed-case-header-names",
        ),
        pytest.param(
            "POST",
            "https://obs.example.com",
            "/v1/x",
            [],
            {"Content-Type": "application/xml", "X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"},
            b"<a/>",
            id="explicit-unsigned-payload",
        ),
    ],
)
def test_sign_request_matches_the_official_signer(method, base, path, query, headers, body):
    ours = sign_request(VECTOR_AK, VECTOR_SK, method, _url(base, path, query), headers, body, now=PARITY_NOW)
    parts = urlsplit(base)
    sdk = _sdk_authorization(
        method, parts.scheme, parts.netloc, path, query, headers, body, PARITY_NOW.strftime("%Y%m%dT%H%M%SZ")
    )
    assert ours["Host"] == sdk["Host"] == parts.netloc
    assert ours["X-Sdk-Date"] == sdk["X-Sdk-Date"] == "20240309T210745Z"
    assert ours["Authorization"] == sdk["Authorization"]


def test_repeated_query_keys_are_all_signed():
    base = "https://vod.cn-north-4.myhuaweicloud.com"
    path = f"/v1.0/{PROJECT_ID}/asset/info"
    both = sign_request(
        VECTOR_AK,
        VECTOR_SK,
        "GET",
        _url(base, path, [("asset_id", "a"), ("asset_id", "b")]),
        {},
        now=PARITY_NOW,
    )
    one = sign_request(VECTOR_AK, VECTOR_SK, "GET", _url(base, path, [("asset_id", "a")]), {}, now=PARITY_NOW)
    assert both["Authorization"] != one["Authorization"]


def test_the_body_is_signed():
    url = f"https://vod.cn-north-4.myhuaweicloud.com/v1.0/{PROJECT_ID}/asset"
    headers = {"Content-Type": "application/json"}
    first = sign_request(VECTOR_AK, VECTOR_SK, "POST", url, headers, b'{"title":"a"}', now=PARITY_NOW)
    second = sign_request(VECTOR_AK, VECTOR_SK, "POST", url, headers, b'{"title":"b"}', now=PARITY_NOW)
    assert first["Authorization"] != second["Authorization"]


# ------------------------------------------------------------------ headers with "_" are not signed

_UNDERSCORE_URL = f"http://127.0.0.1:8788/v1.0/{PROJECT_ID}/asset/info?asset_id=a"


def _sign_with(extra: dict[str, str]) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Project-Id": PROJECT_ID, **extra}
    return sign_request(VECTOR_AK, VECTOR_SK, "GET", _UNDERSCORE_URL, headers, now=PARITY_NOW)


def test_header_names_with_an_underscore_are_not_signed():
    plain = _sign_with({})
    first = _sign_with({"X_Trace_Id": "one"})
    second = _sign_with({"X_Trace_Id": "two"})
    assert first["X_Trace_Id"] == "one"
    assert parse_authorization(first["Authorization"])["SignedHeaders"] == (
        "content-type;host;x-project-id;x-sdk-date"
    )
    assert first["Authorization"] == second["Authorization"] == plain["Authorization"]
    _, names = canonical_request(
        "GET", "/", [], {"Host": "h", "X-Sdk-Date": VECTOR_DATE, "x_under": "1", "x-dash": "2"}, b""
    )
    assert names == ["host", "x-dash", "x-sdk-date"]


def test_header_names_with_an_underscore_are_skipped_by_the_official_signer_too():
    headers = {"Content-Type": "application/json", "X-Project-Id": PROJECT_ID, "X_Trace_Id": "one"}
    sdk = _sdk_authorization(
        "GET",
        "http",
        "127.0.0.1:8788",
        f"/v1.0/{PROJECT_ID}/asset/info",
        [("asset_id", "a")],
        headers,
        b"",
        PARITY_NOW.strftime("%Y%m%dT%H%M%SZ"),
    )
    assert _sign_with({"X_Trace_Id": "one"})["Authorization"] == sdk["Authorization"]


def test_header_names_with_a_dash_are_signed():
    first = _sign_with({"X-Trace-Id": "one"})
    second = _sign_with({"X-Trace-Id": "two"})
    assert "x-trace-id" in parse_authorization(first["Authorization"])["SignedHeaders"].split(";")
    assert first["Authorization"] != second["Authorization"]


# ------------------------------------------------------------------ OBS V2 vectors (reference §7)

OBS_SK = VECTOR_SK
OBS_AK = "HPUAXXXXXXXXXXXXXXXX"
OBS_BUCKET = "vod-bucket-65-cn-north-4"
OBS_KEY = "05041fffa4002f6dc009cc6f8f33/fea62a2845e43c37b4cbfb017c0d0821/d1f221f09f6bffefb882c8f9e167483a.mp4"
UPLOAD_ID = "00000173C2ED862344C835374DFE33C8"

OBS_VECTORS = [
    pytest.param(
        "POST",
        "",
        "video/mp4",
        1596706429,
        [("uploads", None)],
        f"POST\n\nvideo/mp4\n1596706429\n/{OBS_BUCKET}/{OBS_KEY}?uploads",
        "rSx1aJVSlFicMDjq%2BNjF6fDJiWQ%3D",
        id="initiate",
    ),
    pytest.param(
        "PUT",
        "1B2M2Y8AsgTpgAmY7PhCfg==",
        "application/octet-stream",
        1596708691,
        [("uploadId", UPLOAD_ID), ("partNumber", "1")],
        f"PUT\n1B2M2Y8AsgTpgAmY7PhCfg==\napplication/octet-stream\n1596708691\n"
        f"/{OBS_BUCKET}/{OBS_KEY}?partNumber=1&uploadId={UPLOAD_ID}",
        "ViOMU2HiAhoZIyRlTJmAhWm1SK8%3D",
        id="part-1",
    ),
]


@pytest.mark.parametrize(
    ("verb", "md5", "content_type", "expires", "subs", "expected", "url_signature"), OBS_VECTORS
)
def test_obs_string_to_sign_and_signature_match_the_vectors(
    verb, md5, content_type, expires, subs, expected, url_signature
):
    string_to_sign = obs_string_to_sign(verb, md5, content_type, expires, OBS_BUCKET, OBS_KEY, subs)
    assert string_to_sign == expected
    assert obs_signature(OBS_SK, string_to_sign) == unquote(url_signature)


@pytest.mark.parametrize(
    ("verb", "md5", "content_type", "expires", "subs", "expected", "url_signature"), OBS_VECTORS
)
def test_obs_signed_url_carries_the_vector_signature(
    verb, md5, content_type, expires, subs, expected, url_signature
):
    url = obs_signed_url(
        "http://127.0.0.1:8789",
        OBS_BUCKET,
        OBS_KEY,
        OBS_AK,
        OBS_SK,
        verb,
        expires,
        content_type=content_type,
        content_md5=md5,
        sub_resources=subs,
    )
    parts = urlsplit(url)
    assert parts.path == f"/{OBS_BUCKET}/{OBS_KEY}"
    assert f"Signature={url_signature}" in parts.query.split("&")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    assert query["AWSAccessKeyId"] == OBS_AK
    assert query["Expires"] == str(expires)
    assert {name: query[name] for name, _ in subs} == {name: value or "" for name, value in subs}


# ------------------------------------------------------------------ parity with esdk-obs-python's V2 signing

OBS_SERVER = "http://127.0.0.1:8789"
FROZEN_EPOCH = 1_700_000_000
EXPIRES_AT = FROZEN_EPOCH + 3600


@pytest.fixture
def obs_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[obs.ObsClient]:
    """A path-style V2 ObsClient whose clock is frozen (createV2SignedUrl adds ``time.time()`` to ``expires``)."""
    monkeypatch.setattr(time, "time", lambda: float(FROZEN_EPOCH))
    client = obs.ObsClient(
        access_key_id=OBS_AK, secret_access_key=OBS_SK, server=OBS_SERVER, signature="v2", path_style=True
    )
    yield client
    client.close()


def _sdk_signed_url(
    client: obs.ObsClient,
    verb: str,
    key: str,
    special: str | None,
    query: dict[str, str],
    headers: dict[str, str],
) -> str:
    return client.createV2SignedUrl(
        verb,
        OBS_BUCKET,
        key,
        specialParam=special,
        expires=EXPIRES_AT - FROZEN_EPOCH,
        headers=headers,
        queryParams=query,
    ).signedUrl


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


_PART = b"\x00part bytes\xff" * 1000

OBS_OPERATIONS = [
    pytest.param(
        "POST", OBS_KEY, "uploads", {}, {"Content-Type": "video/mp4"}, [("uploads", None)], id="initiate"
    ),
    pytest.param(
        "POST",
        "dir/my video (1)+é~.mp4",
        "uploads",
        {},
        {"Content-Type": "video/quicktime"},
        [("uploads", None)],
        id="initiate-key-needing-encoding",
    ),
    pytest.param(
        "PUT",
        OBS_KEY,
        None,
        {"partNumber": "7", "uploadId": UPLOAD_ID},
        {"Content-MD5": md5_base64(_PART), "Content-Type": "application/octet-stream"},
        [("partNumber", "7"), ("uploadId", UPLOAD_ID)],
        id="part",
    ),
    pytest.param(
        "POST",
        OBS_KEY,
        None,
        {"uploadId": UPLOAD_ID},
        {"Content-Type": "application/xml"},
        [("uploadId", UPLOAD_ID)],
        id="complete",
    ),
    pytest.param("DELETE", OBS_KEY, None, {"uploadId": UPLOAD_ID}, {}, [("uploadId", UPLOAD_ID)], id="abort"),
    pytest.param("GET", OBS_KEY, None, {"uploadId": UPLOAD_ID}, {}, [("uploadId", UPLOAD_ID)], id="list"),
]


@pytest.mark.parametrize(("verb", "key", "special", "query", "headers", "subs"), OBS_OPERATIONS)
def test_obs_signed_url_matches_the_official_sdk(obs_client, verb, key, special, query, headers, subs):
    sdk_url = _sdk_signed_url(obs_client, verb, key, special, query, headers)
    ours = obs_signed_url(
        OBS_SERVER,
        OBS_BUCKET,
        key,
        OBS_AK,
        OBS_SK,
        verb,
        EXPIRES_AT,
        content_type=headers.get("Content-Type", ""),
        content_md5=headers.get("Content-MD5", ""),
        sub_resources=subs,
    )
    sdk_query = _query(sdk_url)
    assert sdk_query["Expires"] == str(EXPIRES_AT)
    assert _query(ours)["Signature"] == sdk_query["Signature"]
    assert _query(ours) == sdk_query
    assert urlsplit(ours).path == urlsplit(sdk_url).path


@pytest.mark.parametrize(("verb", "key", "special", "query", "headers", "subs"), OBS_OPERATIONS)
def test_obs_string_to_sign_matches_the_official_authentication(verb, key, special, query, headers, subs):
    path_args = {**query, **({special: None} if special else {})}
    authentication = Authentication(OBS_AK, OBS_SK, True, Adapter("v2"), "127.0.0.1", False)
    expected = authentication.getSignature(verb, OBS_BUCKET, key, path_args, headers, str(EXPIRES_AT))
    ours = obs_string_to_sign(
        verb,
        headers.get("Content-MD5", ""),
        headers.get("Content-Type", ""),
        EXPIRES_AT,
        OBS_BUCKET,
        key,
        subs,
    )
    assert ours == expected["CanonicalString"]
    assert obs_signature(OBS_SK, ours) == expected["Signature"]


def test_paging_parameters_are_not_sub_resources(obs_client):
    plain = _sdk_signed_url(obs_client, "GET", OBS_KEY, None, {"uploadId": UPLOAD_ID}, {})
    paged = _sdk_signed_url(
        obs_client,
        "GET",
        OBS_KEY,
        None,
        {"uploadId": UPLOAD_ID, "max-parts": "1000", "part-number-marker": "3"},
        {},
    )
    assert _query(paged)["Signature"] == _query(plain)["Signature"]

    base = obs_string_to_sign("GET", "", "", EXPIRES_AT, OBS_BUCKET, OBS_KEY, [("uploadId", UPLOAD_ID)])
    received = obs_string_to_sign(
        "GET",
        "",
        "",
        EXPIRES_AT,
        OBS_BUCKET,
        OBS_KEY,
        [
            ("max-parts", "1000"),
            ("part-number-marker", "3"),
            ("uploadId", UPLOAD_ID),
            ("AWSAccessKeyId", OBS_AK),
            ("Expires", str(EXPIRES_AT)),
            ("Signature", "x"),
        ],
    )
    assert received == base
    assert obs_signature(OBS_SK, base) == _query(paged)["Signature"]


def test_part_number_is_a_sub_resource():
    without = obs_string_to_sign("GET", "", "", EXPIRES_AT, OBS_BUCKET, OBS_KEY, [("uploadId", UPLOAD_ID)])
    with_part = obs_string_to_sign(
        "GET", "", "", EXPIRES_AT, OBS_BUCKET, OBS_KEY, [("uploadId", UPLOAD_ID), ("partNumber", "1")]
    )
    assert with_part != without
    assert with_part.endswith(f"?partNumber=1&uploadId={UPLOAD_ID}")


# ------------------------------------------------------------------ wire helpers


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "1B2M2Y8AsgTpgAmY7PhCfg=="),
        (b"hello", "XUFAKrxLKna5cZ2REBfFkg=="),
        (b"The quick brown fox jumps over the lazy dog", "nhB9nTcrtoJr2B01QqQZ1g=="),
    ],
)
def test_md5_base64_is_base64_of_the_raw_digest(data, expected):
    assert md5_base64(data) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("cn-north-4", "https://vod.cn-north-4.myhuaweicloud.com"),
        (" ap-southeast-1 ", "https://vod.ap-southeast-1.myhuaweicloud.com"),
        ("http://127.0.0.1:8788", "http://127.0.0.1:8788"),
        ("http://127.0.0.1:8788/", "http://127.0.0.1:8788"),
        ("https://vod.cn-north-4.myhuaweicloud.com//", "https://vod.cn-north-4.myhuaweicloud.com"),
        ("vod.cn-north-4.myhuaweicloud.com", "https://vod.cn-north-4.myhuaweicloud.com"),
        ("http://localhost:8788/prefix/", "http://localhost:8788/prefix"),
    ],
)
def test_resolve_endpoint(host, expected):
    assert resolve_endpoint(host) == expected


@pytest.mark.parametrize(
    "host",
    [
        "http:///v1.0",
        "https:///vod",
        "://vod.cn-north-4.myhuaweicloud.com",
        "https://",
        "ftp://",
        "",
        "   ",
        "cn north",
        "ftp://x.y",
    ],
)
def test_resolve_endpoint_rejects_nonsense(host):
    with pytest.raises(ValueError, match="neither a region"):
        resolve_endpoint(host)


@pytest.mark.parametrize(
    ("auto_publish", "transcoding", "expected"),
    [
        (True, True, ("PUBLISHED", "transcodeComplete:SUCCEED")),
        (True, False, ("PUBLISHED", "createComplete:SUCCEED")),
        (False, True, ("TRANSCODE_SUCCEED", "transcodeComplete:SUCCEED")),
        (False, False, ("CREATED", "createComplete:SUCCEED")),
    ],
)
def test_ready_statuses(auto_publish, transcoding, expected):
    """ShowAssetMeta's status first, then the notified outcome of the asset's last processing step."""
    assert ready_statuses(auto_publish, transcoding) == expected


def test_failed_asset_statuses_are_the_documented_terminal_ones():
    assert {"NO_ASSET", "NOASSET"} <= FAILED_ASSET_STATUSES
    # Reference §10.1: the failure rows, the "gone or never existed" row, and the NOASSET spelling.
    documented = (
        "TRANSCODE_FAILED UPLOAD_FAILED SERVER_ERROR CANCELLED DELETING DELETED DELETE_FAILED UNCREATED"
    )
    notified = {"createComplete:FAILED", "transcodeComplete:FAILED", "reviewComplete:BLOCK"}
    assert frozenset([*documented.split(), "NO_ASSET", "NOASSET", *notified]) == FAILED_ASSET_STATUSES
    ready = {
        status for flags in [(True, True), (False, True), (False, False)] for status in ready_statuses(*flags)
    }
    waiting = {"CREATING", "OBS_CREATING", "OBS_CREATE_SUCCESS", "WAITING_TRANSCODE", "TRANSCODING"}
    assert not FAILED_ASSET_STATUSES & (ready | waiting)
    polled = {status for status in ready if ":" not in status}
    assert {str(status) for status in AssetStatus} == (
        FAILED_ASSET_STATUSES - {"NOASSET"} - notified
    ) | polled | waiting


def test_notification_signature_is_hmac_sha256_of_vod_timestamp_message():
    """MFS: auth_sign = hex HmacSHA256("VOD_" + auth_timestamp + "_" + message, key) (Huawei's Java sample)."""
    import hashlib
    import hmac as hmac_module

    message = '{"event_type":"createComplete","create_info":{"asset_id":"a1","status":"SUCCEED"}}'
    expected = hmac_module.new(b"k3y", f"VOD_1700000000_{message}".encode(), hashlib.sha256).hexdigest()
    assert notification_signature("k3y", "1700000000", message) == expected
    body, signed = notification("createComplete", {"asset_id": "a1", "status": "SUCCEED"})
    assert json.loads(body) == {"message": signed}
    assert json.loads(signed) == {
        "event_type": "createComplete",
        "create_info": {"asset_id": "a1", "status": "SUCCEED"},
    }


def test_notified_weight_lets_the_deciding_outcome_win():
    """Notifications arrive in any order: a failure outweighs a success, a transcode the upload before it,
    and a review that did not block decides nothing."""
    weights = [
        notified_weight(state)
        for state in (
            "transcodeComplete:FAILED",
            "transcodeComplete:SUCCEED",
            "createComplete:SUCCEED",
            "reviewComplete:PASS",
        )
    ]
    assert weights == sorted(weights, reverse=True) and len(set(weights)) == 4


# ------------------------------------------------------------------ parse_authorization


def test_parse_authorization_reads_a_well_formed_header():
    assert parse_authorization(VECTOR_AUTHORIZATION) == {
        "Access": VECTOR_AK,
        "SignedHeaders": "content-type;host;x-sdk-date",
        "Signature": VECTOR_SIGNATURE,
    }


def test_parse_authorization_reads_what_sign_request_writes():
    signed = sign_request("MYAK", "MYSK", "POST", "http://127.0.0.1:8788/v1/x", {"X-Project-Id": "p"}, b"{}")
    fields = parse_authorization(signed["Authorization"])
    assert fields["Access"] == "MYAK"
    assert fields["SignedHeaders"] == "host;x-project-id;x-sdk-date"
    assert len(fields["Signature"]) == 64


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer eyJhbGciOiJIUzI1NiJ9",
        "AWS HPUAXXXXXXXXXXXXXXXX:0Akylf43Bm3mD1bh2rM3dmVp1Bo=",
        f"SDK-HMAC-SM3 Access={VECTOR_AK}, SignedHeaders=host;x-sdk-date, Signature={VECTOR_SIGNATURE}",
        f"sdk-hmac-sha256 Access={VECTOR_AK}, SignedHeaders=host;x-sdk-date, Signature={VECTOR_SIGNATURE}",
        f"SDK-HMAC-SHA256 Access={VECTOR_AK}, Signature={VECTOR_SIGNATURE}",
    ],
)
def test_parse_authorization_rejects_other_schemes_and_incomplete_headers(value):
    assert parse_authorization(value) is None


def test_non_json_bodies_are_signed_unsigned_payload_like_the_sdk():
    """For a body that is neither JSON nor BSON the SDK signs ``X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD``."""
    now = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)
    url = "http://127.0.0.1:8788/v1.0/p/thing"
    ours = sign_request("AK", "SK", "POST", url, {"Content-Type": "application/xml"}, b"<a/>", now)
    assert ours["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    assert "x-sdk-content-sha256" in ours["Authorization"]
    request = SdkRequest(
        method="POST",
        schema="http",
        host="127.0.0.1:8788",
        resource_path="/v1.0/p/thing",
        query_params=[],
        header_params={"Content-Type": "application/xml", "X-Sdk-Date": "20261121T080000Z"},
        body=b"<a/>",
    )
    assert (
        Signer(BasicCredentials("AK", "SK")).sign(request).header_params["Authorization"]
        == ours["Authorization"]
    )


def test_a_bare_sub_resource_differs_from_an_empty_valued_one():
    """``?uploads`` signs as ``uploads``; ``?uploadId=`` signs as ``uploadId=``, as esdk-obs-python does."""
    bare = obs_string_to_sign("POST", "", "", 1, "b", "k", parse_obs_query("uploads"))
    empty = obs_string_to_sign("POST", "", "", 1, "b", "k", parse_obs_query("uploadId="))
    assert bare.endswith("/b/k?uploads") and empty.endswith("/b/k?uploadId=")


def test_a_signed_play_url_is_masked_before_it_travels():
    from media_upload.protocols.huawei_vod import play_url

    info = {
        "play_info_array": [{"url": "https://cdn.example/asset/index.mp4?auth_key=1700000000-0-0-abcdef"}]
    }
    assert play_url(info) == "https://cdn.example/asset/index.mp4?auth_key=***"
    assert play_url({"play_info_array": []}) is None
