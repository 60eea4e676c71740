"""Every documented rule of the Lazada emulator, driven through the official client where it can be."""

from __future__ import annotations

import json
import time

import pytest
import requests

from media_upload.protocols.lazada import MAX_BLOCK_BYTES, MAX_FILE_BYTES
from media_upload.sandbox.lazada.products import sample_product_payload
from tests.integration.conftest import COVER_URL, LazopDriver
from tests.integration.test_lazada_sandbox_fidelity import signed_params, wait_for_state

ERROR_KEYS = {"type", "code", "message", "request_id"}


def assert_error(body: dict, code: str, fragment: str = "") -> None:
    assert body["code"] == code, body
    assert set(body) >= ERROR_KEYS, body
    assert fragment in body["message"], body


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------------- gateway


def test_unknown_api_path(driver):
    assert_error(driver.call("/media/video/upload"), "InvalidApiPath", "/media/video/upload")


@pytest.mark.parametrize("missing", ["app_key", "sign_method", "timestamp", "sign"])
def test_missing_system_parameter(lazada_sandbox, missing):
    params = signed_params(lazada_sandbox, "/media/video/quota/get")
    del params[missing]
    body = requests.get(f"{lazada_sandbox.gateway_url}/media/video/quota/get", params=params).json()
    assert_error(body, "MissingParameter", f"\u201c{missing}\u201d")


def test_missing_and_unknown_access_token(driver):
    assert_error(
        driver.call("/media/video/quota/get", method="GET", token=None), "MissingParameter", "access_token"
    )
    assert_error(driver.call("/media/video/quota/get", method="GET", token="forged"), "IllegalAccessToken")


def test_unknown_app_key(lazop, lazada_sandbox):
    client = lazop.LazopClient(lazada_sandbox.gateway_url, "999999", lazada_sandbox.config.app_secret)
    body = client.execute(
        lazop.LazopRequest("/media/video/quota/get", "GET"), lazada_sandbox.config.access_token
    ).body
    assert_error(body, "InvalidAppKey")


@pytest.mark.parametrize("offset", [-7300, 7300])
def test_timestamp_outside_the_7200_second_window(lazada_sandbox, offset):
    stamp = str(int((time.time() + offset) * 1000))
    params = signed_params(lazada_sandbox, "/media/video/quota/get", timestamp=stamp)
    body = requests.get(f"{lazada_sandbox.gateway_url}/media/video/quota/get", params=params).json()
    assert_error(body, "IncompleteSignature", "7200")


def test_unparseable_timestamp(lazada_sandbox):
    params = signed_params(lazada_sandbox, "/media/video/quota/get", timestamp="yesterday")
    body = requests.get(f"{lazada_sandbox.gateway_url}/media/video/quota/get", params=params).json()
    assert_error(body, "IncompleteSignature", "timestamp")


def test_empty_values_are_signed_like_the_python_sdk_and_flagged(driver):
    body = driver.call("/media/video/quota/get", {"note": ""}, method="GET")
    assert body["code"] == "0"
    assert driver.sandbox.backend.request_log[-1]["empty_params"] == ["note"]


def test_request_log_masks_secrets(driver):
    driver.call("/media/video/quota/get", method="GET")
    entry = driver.sandbox.backend.request_log[-1]
    assert entry["params"]["access_token"] == "***" and entry["params"]["sign"] == "***"
    log_text = requests.get(f"{driver.sandbox.url}/_sandbox/lazada/requests").text
    assert driver.sandbox.config.access_token not in log_text
    assert driver.sandbox.config.app_secret not in log_text


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data\r\n\r\nbroken"),
        ("application/x-www-form-urlencoded", b"\xff\xfe%%%=&&="),
        ("application/json", b'{"app_key": "100132"}'),
        ("text/plain", b"\x00" * 100),
    ],
)
def test_garbage_bodies_get_an_envelope_not_a_500(lazada_sandbox, content_type, body):
    response = requests.post(
        f"{lazada_sandbox.gateway_url}/media/video/block/upload",
        data=body,
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 200
    assert response.json()["code"] == "MissingParameter"


# ------------------------------------------------------------------ tokens, limits, faults


def test_expired_token_is_refused_until_refreshed(lazop, make_lazada_sandbox):
    clock = FakeClock()
    sandbox = make_lazada_sandbox(clock=clock, access_token_ttl=60)
    driver = LazopDriver(lazop, sandbox)
    assert driver.call("/media/video/quota/get", method="GET")["code"] == "0"
    clock.now += 61
    assert_error(driver.call("/media/video/quota/get", method="GET"), "IllegalAccessToken")

    refreshed = driver.call(
        "/auth/token/refresh", {"refresh_token": sandbox.config.refresh_token}, token=None
    )
    assert refreshed["code"] == "0", refreshed
    assert refreshed["expires_in"] == 60 and "country_user_info_list" in refreshed
    driver.access_token = refreshed["access_token"]
    assert driver.call("/media/video/quota/get", method="GET")["code"] == "0"
    assert_error(
        driver.call("/auth/token/refresh", {"refresh_token": "nope"}, token=None), "IllegalRefreshToken"
    )


def test_refresh_keeps_the_refresh_tokens_deadline(lazop, make_lazada_sandbox):
    clock = FakeClock()
    sandbox = make_lazada_sandbox(clock=clock, refresh_token_ttl=100)
    driver = LazopDriver(lazop, sandbox)
    clock.now += 40
    first = driver.call("/auth/token/refresh", {"refresh_token": sandbox.config.refresh_token}, token=None)
    assert first["refresh_expires_in"] == 60
    clock.now += 61
    second = driver.call("/auth/token/refresh", {"refresh_token": first["refresh_token"]}, token=None)
    assert_error(second, "IllegalRefreshToken")


def test_authorization_code_is_single_use(driver):
    code = requests.post(f"{driver.sandbox.url}/_sandbox/lazada/auth-codes").json()["code"]
    created = driver.call("/auth/token/create", {"code": code}, token=None)
    assert created["code"] == "0" and created["country_user_info"][0]["seller_id"] == "1001"
    assert_error(driver.call("/auth/token/create", {"code": code}, token=None), "InvalidCode")
    assert code not in json.dumps(list(driver.sandbox.backend.request_log))


def test_oauth_authorize_redirects_with_a_code(lazada_sandbox):
    response = requests.get(
        f"{lazada_sandbox.url}/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": lazada_sandbox.config.app_key,
            "redirect_uri": "http://cb/x",
            "state": "s1",
        },
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["location"].startswith("http://cb/x?code=") and response.headers[
        "location"
    ].endswith("&state=s1")


def test_rate_limit_answers_api_call_limit(lazop, make_lazada_sandbox):
    driver = LazopDriver(lazop, make_lazada_sandbox(rate_limit=2))
    codes = [driver.call("/media/video/quota/get", method="GET")["code"] for _ in range(6)]
    assert "ApiCallLimit" in codes and codes[0] == "0"


@pytest.mark.parametrize(
    "kind", ["ApiCallLimit", "901", "4154", "ServiceTimeout", "IllegalAccessToken", "FAIL_TO_UPLOAD_BLOCK"]
)
def test_injected_error_faults_use_the_envelope(driver, kind):
    requests.post(
        f"{driver.sandbox.url}/_sandbox/lazada/faults", json={"kind": kind, "api": "/media/video/quota/get"}
    )
    assert_error(driver.call("/media/video/quota/get", method="GET"), kind)
    assert driver.call("/media/video/quota/get", method="GET")["code"] == "0"


def test_injected_502_and_dropped_connection(driver, sample_video):
    sandbox = driver.sandbox
    for kind in ("http502", "drop"):
        reply = requests.post(
            f"{sandbox.url}/_sandbox/lazada/faults", json={"kind": kind, "api": "/media/video/quota/get"}
        )
        assert reply.status_code == 200
    params = signed_params(sandbox, "/media/video/quota/get")
    bad_gateway = requests.get(f"{sandbox.gateway_url}/media/video/quota/get", params=params)
    assert bad_gateway.status_code == 502 and "Bad Gateway" in bad_gateway.text
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{sandbox.gateway_url}/media/video/quota/get", params=params, timeout=5)
    assert (
        requests.post(f"{sandbox.url}/_sandbox/lazada/faults", json={"kind": "nonsense"}).status_code == 400
    )


def test_dropped_block_response_still_stores_the_block(driver, sample_video):
    data = sample_video(150_000).read_bytes()
    upload_id = driver.init(len(data))
    requests.post(
        f"{driver.sandbox.url}/_sandbox/lazada/faults",
        json={"kind": "drop", "api": "/media/video/block/upload"},
    )
    with pytest.raises(requests.exceptions.RequestException):
        driver.upload_blocks(upload_id, data, len(data))
    parts = driver.upload_blocks(upload_id, data, len(data))  # the retry overwrites the same block
    assert driver.commit(upload_id, parts)["code"] == "0"


# ------------------------------------------------------------------------ media limits


@pytest.mark.parametrize(
    ("size", "ok"), [(0, False), (1, True), (MAX_FILE_BYTES - 1, True), (MAX_FILE_BYTES, False)]
)
def test_file_size_limit(driver, size, ok):
    body = driver.call("/media/video/block/create", {"fileName": "a.mp4", "fileBytes": str(size)})
    if ok:
        assert body["code"] == "0" and len(body["upload_id"]) == 32
    else:
        assert_error(body, "ILLEGAL_PARAMETER", "fileBytes")


@pytest.mark.parametrize(
    "params",
    [{"fileBytes": "10"}, {"fileName": "a.mp4"}, {"fileName": "a.mp4", "fileBytes": "ten"}],
)
def test_init_parameter_errors(driver, params):
    assert_error(driver.call("/media/video/block/create", params), "ILLEGAL_PARAMETER")


def test_quota_is_enforced_at_init(lazop, make_lazada_sandbox):
    driver = LazopDriver(lazop, make_lazada_sandbox(capacity_bytes=1000))
    assert_error(
        driver.call("/media/video/block/create", {"fileName": "a.mp4", "fileBytes": "1001"}),
        "FAIL_TO_BLOCK_INIT",
    )


def test_block_size_limit_is_inclusive_at_ten_million_bytes(driver):
    upload_id = driver.init(MAX_BLOCK_BYTES + 1)
    upload = {"uploadId": upload_id, "blockCount": "2"}
    too_big = driver.call(
        "/media/video/block/upload", {**upload, "blockNo": "0"}, files={"file": bytes(MAX_BLOCK_BYTES + 1)}
    )
    assert_error(too_big, "ILLEGAL_PARAMETER", str(MAX_BLOCK_BYTES))
    exact = driver.call(
        "/media/video/block/upload", {**upload, "blockNo": "0"}, files={"file": bytes(MAX_BLOCK_BYTES)}
    )
    assert exact["code"] == "0"


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"blockNo": "3", "blockCount": "3"}, "outside 0..2"),
        ({"blockNo": "0", "blockCount": "0"}, "blockCount 0"),
        ({"blockNo": "0", "blockCount": "301"}, "blockCount 301"),
        ({"blockNo": "-1", "blockCount": "3"}, "blockNo"),
    ],
)
def test_block_number_rules(driver, block, fragment):
    upload_id = driver.init(300)
    body = driver.call("/media/video/block/upload", {"uploadId": upload_id, **block}, files={"file": b"x"})
    assert_error(body, "ILLEGAL_PARAMETER", fragment)


def test_block_count_must_stay_constant_and_blocks_not_empty(driver):
    upload_id = driver.init(300)
    assert (
        driver.call(
            "/media/video/block/upload",
            {"uploadId": upload_id, "blockNo": "0", "blockCount": "3"},
            files={"file": b"x"},
        )["code"]
        == "0"
    )
    changed = driver.call(
        "/media/video/block/upload",
        {"uploadId": upload_id, "blockNo": "1", "blockCount": "2"},
        files={"file": b"x"},
    )
    assert_error(changed, "ILLEGAL_PARAMETER", "differs")
    empty = driver.call(
        "/media/video/block/upload",
        {"uploadId": upload_id, "blockNo": "1", "blockCount": "3"},
        files={"file": b""},
    )
    assert_error(empty, "ILLEGAL_PARAMETER", "empty")
    no_file = driver.call(
        "/media/video/block/upload", {"uploadId": upload_id, "blockNo": "1", "blockCount": "3"}
    )
    assert_error(no_file, "ILLEGAL_PARAMETER", "'file'")


def test_block_cannot_name_a_too_small_count(driver):
    upload_id = driver.init(25_000_000)
    body = driver.call(
        "/media/video/block/upload",
        {"uploadId": upload_id, "blockNo": "0", "blockCount": "2"},
        files={"file": b"x"},
    )
    assert_error(body, "ILLEGAL_PARAMETER", "allowed 3..")


def test_strict_minimum_block_size(lazop, make_lazada_sandbox):
    driver = LazopDriver(lazop, make_lazada_sandbox(min_block_bytes=100))
    upload_id = driver.init(150)
    small = driver.call(
        "/media/video/block/upload",
        {"uploadId": upload_id, "blockNo": "0", "blockCount": "2"},
        files={"file": bytes(50)},
    )
    assert_error(small, "ILLEGAL_PARAMETER", "need 100")
    last = driver.call(
        "/media/video/block/upload",
        {"uploadId": upload_id, "blockNo": "1", "blockCount": "2"},
        files={"file": bytes(50)},
    )
    assert last["code"] == "0"


def test_upload_id_expires(lazop, make_lazada_sandbox):
    clock = FakeClock()
    driver = LazopDriver(lazop, make_lazada_sandbox(clock=clock, upload_ttl=60))
    upload_id = driver.init(10)
    clock.now += 61
    body = driver.call(
        "/media/video/block/upload",
        {"uploadId": upload_id, "blockNo": "0", "blockCount": "1"},
        files={"file": bytes(10)},
    )
    assert_error(body, "ILLEGAL_PARAMETER", "expired")


# ---------------------------------------------------------------------------- commit


@pytest.fixture
def uploaded(driver, sample_video):
    """An upload of three blocks, not yet committed: (upload_id, parts)."""
    data = sample_video(250_000).read_bytes()
    upload_id = driver.init(len(data))
    return upload_id, driver.upload_blocks(upload_id, data, 100_000)


@pytest.mark.parametrize(
    ("parts", "code", "fragment"),
    [
        ("not json", "ILLEGAL_PARAMETER", "not valid JSON"),
        ([], "ILLEGAL_PARAMETER", "non-empty"),
        ([{"blockNo": 0, "eTag": "x"}], "ILLEGAL_PARAMETER", "partNumber and eTag"),
        ([{"partNumber": 1, "e_tag": "x"}], "ILLEGAL_PARAMETER", "partNumber and eTag"),
        ([{"partNumber": "1", "eTag": "x"}], "ILLEGAL_PARAMETER", "integer"),
        ("ZERO_BASED", "ILLEGAL_PARAMETER", "partNumber 0 is outside 1..3"),
        ("DUPLICATE", "ILLEGAL_PARAMETER", "more than once"),
        ("MISSING_LAST", "FAIL_TO_BLOCK_COMPLETE", "part 3 of 3 is missing"),
        ("WRONG_ETAG", "FAIL_TO_BLOCK_COMPLETE", "eTag of part 2"),
    ],
)
def test_commit_checks_parts(driver, uploaded, parts, code, fragment):
    upload_id, good = uploaded
    variants = {
        "ZERO_BASED": [{"partNumber": p["partNumber"] - 1, "eTag": p["eTag"]} for p in good],
        "DUPLICATE": [*good, good[0]],
        "MISSING_LAST": good[:2],
        "WRONG_ETAG": [good[0], {"partNumber": 2, "eTag": good[0]["eTag"]}, good[2]],
    }
    chosen = variants.get(parts, parts) if isinstance(parts, str) else parts
    raw = chosen if isinstance(chosen, str) else json.dumps(chosen)
    body = driver.call(
        "/media/video/block/commit",
        {"uploadId": upload_id, "parts": raw, "title": "t", "coverUrl": COVER_URL},
    )
    assert_error(body, code, fragment)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"title": "  "}, "title"),
        ({"coverUrl": "ftp://x/y.png"}, "coverUrl"),
        ({"videoUsage": "banner"}, "videoUsage"),
    ],
)
def test_commit_checks_title_cover_and_usage(driver, uploaded, extra, fragment):
    upload_id, parts = uploaded
    assert_error(driver.commit(upload_id, parts, **extra), "ILLEGAL_PARAMETER", fragment)


def test_strict_cover_requires_a_lazada_image(lazop, make_lazada_sandbox, sample_video):
    driver = LazopDriver(lazop, make_lazada_sandbox(strict_cover=True))
    data = sample_video(1000).read_bytes()
    upload_id = driver.init(len(data))
    parts = driver.upload_blocks(upload_id, data, 1000)
    assert_error(
        driver.commit(upload_id, parts, coverUrl="https://example.com/c.png"),
        "ILLEGAL_PARAMETER",
        "Lazada-hosted",
    )
    assert driver.commit(upload_id, parts)["code"] == "0"


def test_commit_checks_total_bytes_and_refuses_a_second_commit(driver, sample_video):
    data = sample_video(2000).read_bytes()
    short = driver.init(len(data) + 5)
    assert_error(
        driver.commit(short, driver.upload_blocks(short, data, 1000)), "FAIL_TO_VALIDATE", "fileBytes"
    )

    upload_id = driver.init(len(data))
    parts = driver.upload_blocks(upload_id, data, 1000)
    first = driver.commit(upload_id, parts)
    assert first["code"] == "0"
    assert_error(driver.commit(upload_id, parts), "FAIL_TO_BLOCK_COMPLETE", "already committed")
    assert len(driver.sandbox.backend.snapshot()["videos"]) == 1


def test_commit_without_blocks(driver):
    upload_id = driver.init(10)
    body = driver.commit(upload_id, [{"partNumber": 1, "eTag": "x"}])
    assert_error(body, "FAIL_TO_BLOCK_COMPLETE", "no block")


def test_result_code_failure_shape(lazop, make_lazada_sandbox):
    driver = LazopDriver(lazop, make_lazada_sandbox(failure_shape="result_code", success_as_string=True))
    body = driver.call("/media/video/block/create", {"fileName": "a.mp4", "fileBytes": str(MAX_FILE_BYTES)})
    assert body["code"] == "0" and body["success"] == "false" and body["result_code"] == "ILLEGAL_PARAMETER"
    quota = driver.call("/media/video/quota/get", method="GET")
    assert quota["success"] == "true" and quota["capacity_size"] == "1024000000"
    gateway_error = driver.call("/media/video/quota/get", method="GET", token="forged")
    assert gateway_error["code"] == "IllegalAccessToken"  # only business failures change shape


# -------------------------------------------------------------------------- video states


@pytest.mark.parametrize(
    ("title", "final", "path"),
    [
        (
            "Ok video",
            "AUDIT_SUCCESS",
            ["READY_FOR_TRANSCODE", "TRANSCODING", "READY_FOR_AUDIT", "AUDIT_SUCCESS"],
        ),
        (
            "Bad [AUDIT_FAILED]",
            "AUDIT_FAILED",
            ["READY_FOR_TRANSCODE", "TRANSCODING", "READY_FOR_AUDIT", "AUDIT_FAILED"],
        ),
        (
            "Broken [TRANSCODE_FAILED]",
            "TRANSCODE_FAILED",
            ["READY_FOR_TRANSCODE", "TRANSCODING", "TRANSCODE_FAILED"],
        ),
    ],
)
def test_state_machine_and_title_markers(lazop, make_lazada_sandbox, sample_video, title, final, path):
    clock = FakeClock()
    driver = LazopDriver(lazop, make_lazada_sandbox(clock=clock, audit_seconds=30))
    video_id = driver.upload(sample_video(5000), title=title)
    seen = []
    for _ in range(5):
        seen.append(driver.state(video_id))
        clock.now += 10
    assert list(dict.fromkeys(seen)) == path
    assert seen[-1] == final


def test_bytes_that_are_not_a_video_fail_transcoding(driver, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_bytes(b"these are not video bytes" * 100)
    video_id = driver.upload(text)
    wait_for_state(driver, video_id, "TRANSCODE_FAILED")
    assert "not an MP4/MOV video" in driver.sandbox.backend.snapshot()["videos"][video_id]["transcode_error"]


def test_outcome_can_be_set_through_the_inspection_api(driver, sample_video):
    video_id = driver.upload(sample_video(3000))
    url = f"{driver.sandbox.url}/_sandbox/lazada/videos/{video_id}/outcome"
    assert requests.post(url, json={"outcome": "AUDIT_FAILED", "finish_now": True}).status_code == 200
    assert driver.state(video_id) == "AUDIT_FAILED"
    assert requests.post(url, json={"outcome": "DELETED"}).status_code == 400
    assert (
        requests.post(
            f"{driver.sandbox.url}/_sandbox/lazada/videos/1/outcome", json={"outcome": "AUDIT_FAILED"}
        ).status_code
        == 404
    )


def test_remove_video(driver, sample_video):
    video_id = driver.upload(sample_video(3000))
    assert driver.call("/media/video/remove", {"videoId": video_id})["code"] == "0"
    assert driver.state(video_id) == "DELETED"
    assert_error(driver.call("/media/video/remove", {"videoId": video_id}), "FAIL_TO_GET_VIDEO")
    assert_error(driver.call("/media/video/get", {"videoId": "123"}, method="GET"), "FAIL_TO_GET_VIDEO")
    assert_error(driver.call("/media/video/get", {"videoId": "abc"}, method="GET"), "ILLEGAL_PARAMETER")
    assert driver.call("/media/video/quota/get", method="GET")["used_size"] == 0


def test_video_url_serves_the_assembled_bytes(driver, sample_video):
    path = sample_video(4000, seed=9)
    video_id = driver.upload(path, block_size=1500)
    video_url = driver.call("/media/video/get", {"videoId": video_id}, method="GET")["video_url"]
    assert "auth_key=" in video_url
    assert requests.get(video_url).content == path.read_bytes()
    assert requests.get(video_url.split("?")[0]).status_code == 403


# ---------------------------------------------------------------------- images, products


PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)


def product_payload(image_url: str, **attributes: str) -> dict:
    payload = sample_product_payload(image_url, "bag-1", name="Bag")
    payload["Request"]["Product"]["Attributes"].update(attributes)
    return payload


def test_image_upload_rules(driver):
    assert_error(driver.call("/image/upload", files={"image": b"GIF89a" + bytes(10)}), "1000", "JPG and PNG")
    assert_error(driver.call("/image/upload", files={"image": PNG + bytes(3_145_728)}), "303", "too large")
    assert_error(driver.call("/image/upload"), "30", "Empty Request")
    jpeg = driver.call("/image/upload", files={"image": b"\xff\xd8\xff\xe0" + bytes(20)})
    assert jpeg["data"]["image"]["url"].endswith(f"/p/{jpeg['data']['image']['hash_code']}.jpg")


def test_product_refuses_a_video_before_audit_success(lazop, make_lazada_sandbox, sample_video):
    driver = LazopDriver(lazop, make_lazada_sandbox(audit_seconds=3600))
    video_id = driver.upload(sample_video(3000))
    image = driver.call("/image/upload", files={"image": PNG})["data"]["image"]["url"]
    assert_error(
        driver.call("/product/create", {"payload": json.dumps(product_payload(image, video=video_id))}), "309"
    )
    assert_error(
        driver.call("/product/create", {"payload": json.dumps(product_payload(image, video="30000000000"))}),
        "309",
    )
    created = driver.call("/product/create", {"payload": json.dumps(product_payload(image))})
    data = created["data"]
    update = {
        "Request": {
            "Product": {
                "ItemId": str(data["item_id"]),
                "Attributes": {"video": video_id},
                "Skus": {"Sku": [{"SkuId": str(data["sku_list"][0]["sku_id"])}]},
            }
        }
    }
    assert_error(
        driver.call("/product/update", {"payload": json.dumps(update)}), "309", "READY_FOR_TRANSCODE"
    )


def test_product_create_rules(driver):
    image = driver.call("/image/upload", files={"image": PNG})["data"]["image"]["url"]
    good = product_payload(image)
    assert driver.call("/product/create", {"payload": json.dumps(good)})["code"] == "0"
    assert_error(driver.call("/product/create", {"payload": json.dumps(good)}), "4126", "SellerSku repeat")
    outer = product_payload("https://example.com/bag.jpg")
    assert_error(driver.call("/product/create", {"payload": json.dumps(outer)}), "4138", "outer link")
    no_name = product_payload(image)
    del no_name["Request"]["Product"]["Attributes"]["name"]
    assert_error(driver.call("/product/create", {"payload": json.dumps(no_name)}), "1", "Attributes.name")
    assert_error(driver.call("/product/create", {"payload": "{not json"}), "5", "Invalid Request Format")
    assert_error(driver.call("/product/create", {"payload": ""}), "30", "Empty Request")
    assert_error(driver.call("/product/create"), "1", "payload")


def test_xml_payloads_and_remove_video(driver, sample_video):
    video_id = driver.upload(sample_video(3000))
    wait_for_state(driver, video_id, "AUDIT_SUCCESS")
    image = driver.call("/image/upload", files={"image": PNG})["data"]["image"]["url"]
    xml = f"""<?xml version="1.0" encoding="UTF-8" ?>
<Request><Product><PrimaryCategory>3</PrimaryCategory>
<Images><Image>{image}</Image></Images>
<Attributes><name>Phone</name><brand>No Brand</brand><video>{video_id}</video></Attributes>
<Skus><Sku><SellerSku>phone-1</SellerSku><price>35</price><package_height>10</package_height>
<package_length>10</package_length><package_width>10</package_width><package_weight>0.5</package_weight></Sku></Skus>
</Product></Request>"""
    created = driver.call("/product/create", {"payload": xml})
    assert created["code"] == "0", created
    item_id, sku_id = created["data"]["item_id"], created["data"]["sku_list"][0]["sku_id"]
    assert (
        driver.call("/product/item/get", {"item_id": str(item_id)}, method="GET")["data"]["attributes"][
            "video"
        ]
        == video_id
    )

    remove = {
        "Request": {
            "Product": {
                "ItemId": str(item_id),
                "Attributes": {"remove_video": "Yes"},
                "Skus": {"Sku": [{"SkuId": str(sku_id)}]},
            }
        }
    }
    assert driver.call("/product/update", {"payload": json.dumps(remove)})["code"] == "0"
    assert (
        driver.call("/product/item/get", {"item_id": str(item_id)}, method="GET")["data"]["attributes"][
            "video"
        ]
        is None
    )


def test_product_update_and_read_errors(driver):
    image = driver.call("/image/upload", files={"image": PNG})["data"]["image"]["url"]
    created = driver.call("/product/create", {"payload": json.dumps(product_payload(image))})["data"]
    item_id = str(created["item_id"])

    def update(product: dict) -> dict:
        return driver.call("/product/update", {"payload": json.dumps({"Request": {"Product": product}})})

    assert_error(update({"ItemId": item_id, "Attributes": {}}), "4216", "skuId")
    assert_error(update({"ItemId": "1", "Skus": {"Sku": [{"SkuId": "5"}]}}), "4137", "does not exist")
    assert_error(update({"ItemId": item_id, "Skus": {"Sku": [{"SkuId": "5"}]}}), "501", "SkuId 5")
    assert_error(update({"ItemId": item_id, "Skus": {"Sku": {"SkuId": "5"}}}), "1001", "array")
    assert_error(driver.call("/product/item/get", {"item_id": "42"}, method="GET"), "208")
    assert_error(driver.call("/product/item/get", method="GET"), "200")


def test_state_endpoint_reports_everything_without_secrets(driver, sample_video):
    driver.upload(sample_video(3000))
    state = requests.get(f"{driver.sandbox.url}/_sandbox/lazada/state").json()
    assert set(state) >= {"uploads", "videos", "products", "images", "quota", "tokens", "request_counts"}
    assert state["request_counts"]["/media/video/block/upload"] == 1
    text = json.dumps(state)
    for secret in (
        driver.sandbox.config.access_token,
        driver.sandbox.config.refresh_token,
        driver.sandbox.config.app_secret,
    ):
        assert secret not in text
