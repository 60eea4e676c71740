"""Every rule the Shopee emulator checks, accepted and refused, with the error Shopee's pages document."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from fastapi import FastAPI, Request, Response

from media_upload.sandbox.server import SandboxServer
from media_upload.sandbox.shopee import ShopeeSandbox
from media_upload.sandbox.shopee.products import sample_item
from tests.integration.conftest import ShopeeDriver, wait_for

MiB = 1024 * 1024
INIT = "/api/v2/media_space/init_video_upload"
PART = "/api/v2/media_space/upload_video_part"
COMPLETE = "/api/v2/media_space/complete_video_upload"
RESULT = "/api/v2/media_space/get_video_upload_result"
CANCEL = "/api/v2/media_space/cancel_video_upload"
TOKEN = "/api/v2/auth/token/get"
REFRESH = "/api/v2/auth/access_token/get"
ENVELOPE = {"error", "message", "warning", "request_id"}


def assert_error(body: dict[str, Any], error: str, fragment: str = "") -> None:
    assert body["error"] == error, body
    assert set(body) >= ENVELOPE and "response" not in body, body
    assert len(body["request_id"]) == 32, body
    assert fragment in body["message"], body


def ok(body: dict[str, Any]) -> dict[str, Any]:
    assert body["error"] == "" and body["message"] == "", body
    return body


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def video(sample_video: Callable[..., Path]) -> Callable[..., bytes]:
    """The bytes of a synthetic MP4 Shopee accepts (15 s, 640x360) unless told otherwise."""

    def make(size: int, seed: int = 0, **options: Any) -> bytes:
        options.setdefault("duration_seconds", 15)
        name = f"v-{size}-{seed}-{'-'.join(f'{k}{v}' for k, v in sorted(options.items()))}.mp4"
        return sample_video(size, seed, name=name, **options).read_bytes()

    return make


def driver_for(make_shopee_sandbox: Callable[..., ShopeeSandbox], **config: Any) -> ShopeeDriver:
    return ShopeeDriver(make_shopee_sandbox(**config))


# ------------------------------------------------------------------------------------------- gateway


def test_unknown_path_and_wrong_method(shopee):
    assert_error(
        shopee.post("/api/v2/media_space/init_upload", {}), "error_param", "request path is incorrect"
    )
    assert_error(shopee.get(INIT), "error_param", "request path is incorrect")
    assert_error(shopee.post(RESULT, {}), "error_param", "request path is incorrect")


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("partner_id", "There is no partner_id in query."),
        ("timestamp", "no timestamp"),
        ("sign", "There is no sign in query."),
        ("access_token", "There is no access_token in query."),
        ("shop_id", "There is no shop_id in query."),
    ],
)
def test_missing_common_parameter(shopee, missing, message):
    assert_error(shopee.post(INIT, {}, **{missing: None}), "error_param", message)


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        (
            "partner_id",
            "abc",
            "error_param",
            "Partner_id is invalid, should be an integer between 0 and 4294967295.",
        ),
        ("partner_id", "4294967296", "error_param", "Partner_id is invalid"),
        ("partner_id", "1", "invalid_partner_id", "Invalid partner_id, please have a check."),
        (
            "timestamp",
            "17e8",
            "error_param",
            "Timestamp is invalid, should be an integer between 0 and 4294967295.",
        ),
        (
            "shop_id",
            "-5",
            "error_param",
            "shop_id is invalid, should be an integer between 0 and 4294967295.",
        ),
    ],
)
def test_malformed_common_parameter(shopee, name, value, error, message):
    assert_error(shopee.post(INIT, {}, **{name: value}), error, message)


@pytest.mark.parametrize(("offset", "accepted"), [(-301, False), (-299, True), (299, True), (301, False)])
def test_timestamp_window_is_five_minutes_both_ways(shopee, offset, accepted):
    stamp = int(time.time()) + offset
    base = f"{shopee.partner_id}{RESULT}{stamp}{shopee.access_token}{shopee.shop_id}"
    sign = hmac.new(shopee.partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()
    body = shopee.get(RESULT, [("video_upload_id", "sg_x")], timestamp=stamp, sign=sign)
    if accepted:
        assert_error(body, "product.error_invalid_upload_id")  # past the gateway, into the API
    else:
        assert_error(body, "error_param", "Timestamp is expired.")


def test_signature_is_hmac_sha256_of_the_documented_base_string(shopee):
    good = shopee.signed(INIT)
    upper = good["sign"].upper()
    other_key = hmac.new(
        b"another-key", f"{shopee.partner_id}{INIT}{good['timestamp']}".encode(), hashlib.sha256
    ).hexdigest()
    for sign in (upper, other_key, good["sign"][1:], shopee.signed(PART)["sign"]):
        assert_error(shopee.post(INIT, {}, sign=sign), "error_sign", "Wrong sign.")
    # A Shop call signed in the Public form (no access_token + shop_id in the base string) is refused.
    assert_error(
        shopee.post(INIT, {}, sign=shopee.signed(INIT, shop=False)["sign"]), "error_sign", "Wrong sign."
    )
    # The sign covers the values sent: another shop id in the query breaks it.
    assert_error(shopee.post(INIT, {}, shop_id=shopee.shop_id + 1), "error_sign")


def test_part_and_complete_take_the_public_or_the_shop_form_and_log_which(shopee, video):
    data = video(300_000)
    upload_id = shopee.init(data)
    ok(shopee.part(upload_id, 0, data, shop=False))
    ok(shopee.part(upload_id, 0, data, shop=True))
    assert_error(shopee.part(upload_id, 0, data, shop=False, sign="0" * 64), "error_sign")
    ok(
        shopee.post(
            COMPLETE,
            {"video_upload_id": upload_id, "part_seq_list": [0], "report_data": {"upload_cost": 9}},
            shop=False,
        )
    )
    forms = [(e["api"], e["sign_form"]) for e in shopee.sandbox.backend.request_log if e["error"] == ""]
    assert forms == [(INIT, "shop"), (PART, "public"), (PART, "shop"), (COMPLETE, "public")]
    # A Public-signed part that still carries access_token is accepted and noted.
    public_with_token = shopee.signed(PART, shop=False)
    public_with_token.update(access_token=shopee.access_token)
    other = shopee.init(data)
    answer = requests.post(
        f"{shopee.sandbox.url}{PART}",
        params=public_with_token,
        data={"video_upload_id": other, "part_seq": "0", "content_md5": hashlib.md5(data).hexdigest()},
        files={"part_content": ("part_content", data)},
    ).json()
    ok(answer)
    assert any(
        "signed in the Public form" in note for note in shopee.sandbox.backend.request_log[-1]["notes"]
    )


def test_public_calls_refuse_a_shop_form_sign(shopee):
    body = {"code": "x", "partner_id": shopee.partner_id, "shop_id": shopee.shop_id}
    assert_error(shopee.post(TOKEN, body, shop=True), "error_sign")


def test_access_token_must_be_known_unexpired_and_of_the_shop(make_shopee_sandbox):
    clock = FakeClock()
    shopee = driver_for(make_shopee_sandbox, clock=clock, access_token_ttl=60)
    assert_error(shopee.get(RESULT, [("video_upload_id", "x")]), "product.error_invalid_upload_id")
    shopee.access_token = "forged"
    assert_error(shopee.get(RESULT), "invalid_acceess_token", "Invalid access_token, please have a check.")
    shopee.access_token = shopee.sandbox.config.access_token
    clock.now += 61
    assert_error(shopee.get(RESULT), "invalid_acceess_token")
    # A valid token of shop 700000 used with the default shop's id.
    other = ShopeeDriver(shopee.sandbox)
    other.access_token = _token_for_shop(other, 700000)["access_token"]
    other.shop_id = shopee.shop_id
    assert_error(other.get(RESULT), "error_auth", "Invalid partner_id or shopid.")


def test_request_log_and_state_never_hold_a_secret(shopee, video):
    upload_id = shopee.upload(video(200_000))
    code = requests.post(f"{shopee.sandbox.url}/_sandbox/shopee/auth-codes").json()["code"]
    granted = shopee.post(
        TOKEN, {"code": code, "partner_id": shopee.partner_id, "shop_id": shopee.shop_id}, shop=False
    )
    entry = shopee.sandbox.backend.request_log[-1]
    assert entry["query"]["sign"] == "***"
    assert shopee.sandbox.backend.request_log[1]["query"]["access_token"] == "***"
    texts = [
        requests.get(f"{shopee.sandbox.url}/_sandbox/shopee/{route}").text for route in ("requests", "state")
    ]
    config = shopee.sandbox.config
    for secret in (
        config.partner_key,
        config.access_token,
        config.refresh_token,
        code,
        granted["access_token"],
        granted["refresh_token"],
    ):
        assert all(secret not in text for text in texts), secret
    assert upload_id in texts[1]


@pytest.mark.parametrize(
    ("path", "content_type", "payload", "error", "fragment"),
    [
        (INIT, "application/json", b"{not json", "product.error_param", "not JSON"),
        (INIT, "application/json", b"[1, 2]", "product.error_param", "JSON object"),
        (INIT, "application/json", b"", "product.error_param", "empty"),
        (
            PART,
            "application/json",
            b'{"part_seq": 0}',
            "product.error_param",
            "invalid parameter form is missing",
        ),
        (
            PART,
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nContent-Disposition: form-data\r\n\r\nbroken",
            "product.error_param",
            "form is missing",
        ),
        (
            PART,
            "multipart/form-data; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\ncut',
            "product.error_param",
            "form is missing",
        ),
        (PART, "multipart/form-data", b"x" * 100, "product.error_param", "form is missing"),
    ],
)
def test_unreadable_bodies_get_an_envelope_not_a_500(shopee, path, content_type, payload, error, fragment):
    response = requests.post(
        f"{shopee.sandbox.url}{path}",
        params=shopee.signed(path),
        data=payload,
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 200
    assert_error(response.json(), error, fragment)
    assert list((shopee.sandbox.backend.data_dir / "incoming").iterdir()) == []


def test_bare_error_names_and_http_statuses_can_be_switched(make_shopee_sandbox):
    default = driver_for(make_shopee_sandbox)
    assert_error(default.post(INIT, {}), "product.error_param")
    assert default.post(INIT, {}, sign="0" * 64, raw=True).status_code == 200
    switched = driver_for(make_shopee_sandbox, bare_errors=True, http_error_status=True, rate_limit=1)
    own_error = switched.post(INIT, {}, raw=True)
    assert own_error.status_code == 200  # an API's own error stays 200
    assert_error(own_error.json(), "error_param", "file_md5 is required")
    refused = switched.post(INIT, {}, sign="0" * 64, raw=True)
    assert refused.status_code == 403 and refused.json()["error"] == "error_sign"
    throttled = [switched.get(RESULT, [("video_upload_id", "x")], raw=True) for _ in range(4)]
    assert 429 in [r.status_code for r in throttled]
    assert "error_rate_limit" in [r.json()["error"] for r in throttled]


def test_rate_limit_answers_error_rate_limit(make_shopee_sandbox):
    shopee = driver_for(make_shopee_sandbox, rate_limit=2)
    errors = [shopee.get(RESULT, [("video_upload_id", "x")])["error"] for _ in range(6)]
    assert errors[0] == "product.error_invalid_upload_id"
    assert "error_rate_limit" in errors


# -------------------------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("error_rate_limit", "error_rate_limit"),
        ("error_server", "product.error_server"),
        ("invalid_acceess_token", "invalid_acceess_token"),
        ("error_auth", "error_auth"),
        ("error_limit", "error_limit"),
        ("error_network", "product.error_network"),
    ],
)
def test_injected_errors_use_the_envelope_once(shopee, kind, error):
    queued = requests.post(f"{shopee.sandbox.url}/_sandbox/shopee/faults", json={"kind": kind, "api": RESULT})
    assert queued.status_code == 200
    assert_error(shopee.get(RESULT, [("video_upload_id", "x")]), error)
    assert shopee.get(RESULT, [("video_upload_id", "x")])["error"] == "product.error_invalid_upload_id"


def test_injected_gateway_page_reset_drop_and_delay(shopee, video):
    url = f"{shopee.sandbox.url}/_sandbox/shopee/faults"
    for spec in (
        {"kind": "http502", "api": RESULT},
        {"kind": "reset", "api": RESULT},
        {"kind": "delay", "api": RESULT, "seconds": 0.4},
    ):
        assert requests.post(url, json=spec).status_code == 200
    page = shopee.get(RESULT, [("video_upload_id", "x")], raw=True)
    assert page.status_code == 502 and "Bad Gateway" in page.text
    with pytest.raises(requests.exceptions.RequestException):
        shopee.get(RESULT, [("video_upload_id", "x")])
    started = time.monotonic()
    assert_error(shopee.get(RESULT, [("video_upload_id", "x")]), "product.error_invalid_upload_id")
    assert time.monotonic() - started >= 0.4
    # drop: the part is stored, the answer lost; sending it again is harmless.
    data = video(100_000)
    upload_id = shopee.init(data)
    requests.post(url, json={"kind": "drop", "api": PART})
    with pytest.raises(requests.exceptions.RequestException):
        shopee.part(upload_id, 0, data)
    assert 0 in shopee.sandbox.backend.uploads[upload_id].parts
    ok(shopee.part(upload_id, 0, data))
    ok(shopee.complete(upload_id, [0]))
    for bad in (
        {"kind": "nonsense"},
        {"kind": "reset", "api": "/api/v2/nope"},
        {"kind": "stale_initiated", "api": INIT},
    ):
        assert requests.post(url, json=bad).status_code == 400
    assert requests.delete(url).json() == {"cleared": 0}


def test_random_faults_show_as_the_gateway_would(make_shopee_sandbox):
    shopee = driver_for(make_shopee_sandbox, fault_rate=1.0, fault_seed=11, slow_seconds=0.2)
    seen = set()
    for _ in range(24):
        try:
            response = shopee.get(RESULT, [("video_upload_id", "x")], raw=True)
        except requests.exceptions.RequestException:
            seen.add("cut")
            continue
        if response.status_code == 503:
            assert "Service Unavailable" in response.text
            seen.add("503")
        else:
            seen.add(response.json()["error"])
    assert seen <= {"cut", "503", "error_rate_limit", "product.error_invalid_upload_id"}
    assert {"cut", "503", "error_rate_limit"} <= seen
    assert sum(shopee.sandbox.backend.dice.summary().values()) == 24


# ----------------------------------------------------------------------------------------------- init


def test_init_checks_file_md5(shopee):
    assert_error(shopee.post(INIT, {"file_size": 10}), "product.error_param", "file_md5 is required")
    assert_error(
        shopee.post(INIT, {"file_md5": "2abf0b6e5ff90ff24437a0808f171a93we", "file_size": 10}),
        "product.error_param",
        "invalid parameter invalid file_md5: 2abf0b6e5ff90ff24437a0808f171a93we",
    )
    answer = ok(shopee.post(INIT, {"file_md5": "2ABF0B6E5FF90FF24437A0808F171A93", "file_size": 10}))
    assert "file_md5 in uppercase" in shopee.sandbox.backend.request_log[-1]["notes"]
    upload_id = answer["response"]["video_upload_id"]
    prefix, middle, counter = upload_id.split("_")
    assert prefix == "sg" and len(middle) == 36 and counter == "000001"


@pytest.mark.parametrize(
    ("size", "error"),
    [
        (0, "product.error_param"),
        (-1, "product.error_param"),
        ("10", "product.error_param"),
        (True, "product.error_param"),
        (1, ""),
        (31_457_280, ""),
        (31_457_281, "product.error_file_size"),
    ],
)
def test_init_checks_file_size_up_to_30_mib(shopee, size, error):
    body = shopee.post(INIT, {"file_md5": "0" * 32, "file_size": size})
    if error:
        assert_error(body, error)
    else:
        ok(body)


def test_the_decimal_reading_of_30_mb(make_shopee_sandbox):
    shopee = driver_for(make_shopee_sandbox, max_file_bytes=30_000_000)
    ok(shopee.post(INIT, {"file_md5": "0" * 32, "file_size": 30_000_000}))
    assert_error(
        shopee.post(INIT, {"file_md5": "0" * 32, "file_size": 30_000_001}),
        "product.error_file_size",
        "File size is too large. Video size should be less than 30M.",
    )


# ---------------------------------------------------------------------------------------------- parts


def test_parts_must_be_exactly_4_mib_but_the_last(shopee):
    size = 2 * 4 * MiB + 1000
    upload_id = shopee.post(INIT, {"file_md5": "0" * 32, "file_size": size})["response"]["video_upload_id"]
    assert_error(
        shopee.part(upload_id, 0, bytes(4_000_000)), "product.error_invalid_part_size", "exactly 4194304"
    )
    assert_error(shopee.part(upload_id, 0, bytes(4 * MiB + 1)), "product.error_invalid_part_size")
    assert_error(shopee.part(upload_id, 2, bytes(999)), "product.error_invalid_part_size", "the last part")
    assert_error(shopee.part(upload_id, 2, b""), "product.error_invalid_part_size", "empty")
    ok(shopee.part(upload_id, 0, bytes(4 * MiB)))
    ok(shopee.part(upload_id, 2, bytes(1000)))


def test_the_decimal_part_size_can_be_chosen(make_shopee_sandbox):
    shopee = driver_for(make_shopee_sandbox, part_bytes=4_000_000)
    upload_id = shopee.post(INIT, {"file_md5": "0" * 32, "file_size": 9_000_000})["response"][
        "video_upload_id"
    ]
    assert_error(
        shopee.part(upload_id, 0, bytes(4 * MiB)),
        "product.error_invalid_part_size",
        "over the part size 4000000",
    )
    ok(shopee.part(upload_id, 0, bytes(4_000_000)))
    ok(shopee.part(upload_id, 2, bytes(1_000_000)))


def test_lenient_part_sizes(make_shopee_sandbox, video):
    shopee = driver_for(make_shopee_sandbox, part_size_rule="lenient")
    data = video(2_500_000)
    upload_id = shopee.init(data)
    seqs = shopee.parts(upload_id, data, part_bytes=1_000_000)
    assert_error(shopee.part(upload_id, 3, bytes(4 * MiB + 1)), "product.error_invalid_part_size")
    ok(shopee.complete(upload_id, seqs))
    assert shopee.wait(upload_id, "SUCCEEDED")[-1] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("seq", "fragment"), [("3", "outside 0..2"), ("-1", "'-1'"), ("one", "'one'"), ("", "''")]
)
def test_part_seq_counts_from_zero_within_the_file(shopee, seq, fragment):
    upload_id = shopee.post(INIT, {"file_md5": "0" * 32, "file_size": 9 * MiB})["response"]["video_upload_id"]
    response = requests.post(
        f"{shopee.sandbox.url}{PART}",
        params=shopee.signed(PART),
        data={"video_upload_id": upload_id, "part_seq": seq, "content_md5": hashlib.md5(b"x").hexdigest()},
        files={"part_content": ("p", b"x")},
    )
    assert_error(response.json(), "product.error_invalid_part_seq", fragment)


def test_content_md5_must_match_the_part(shopee):
    upload_id = shopee.post(INIT, {"file_md5": "0" * 32, "file_size": 10})["response"]["video_upload_id"]
    assert_error(
        shopee.part(upload_id, 0, bytes(10), md5=hashlib.md5(b"other").hexdigest()),
        "product.error_param",
        "differs from the md5 of the part received",
    )
    assert_error(shopee.part(upload_id, 0, bytes(10), md5="xyz"), "product.error_param", "32 hex digits")
    assert shopee.sandbox.backend.uploads[upload_id].parts == {}
    ok(shopee.part(upload_id, 0, bytes(10), md5=hashlib.md5(bytes(10)).hexdigest().upper()))
    assert "content_md5 in uppercase" in shopee.sandbox.backend.request_log[-1]["notes"]
    assert list(shopee.sandbox.backend.uploads[upload_id].parts) == [0]


def test_part_fields_are_form_fields_or_flagged_query_parameters(shopee):
    upload_id = shopee.post(INIT, {"file_md5": "0" * 32, "file_size": 10})["response"]["video_upload_id"]
    part = bytes(10)
    md5 = hashlib.md5(part).hexdigest()

    def send(data: dict[str, str], files: dict[str, Any], **query: str) -> dict[str, Any]:
        params = {**shopee.signed(PART), **query}
        return requests.post(f"{shopee.sandbox.url}{PART}", params=params, data=data, files=files).json()

    assert_error(
        send({"part_seq": "0", "content_md5": md5}, {"part_content": ("p", part)}),
        "product.error_param",
        "video_upload_id is required",
    )
    # The Java sample's field name is not the documented one.
    missing = send({"video_upload_id": upload_id, "part_seq": "0", "content_md5": md5}, {"file": ("p", part)})
    assert_error(missing, "product.error_param", "part_content")
    assert "'file'" in missing["message"]
    ok(send({}, {"part_content": ("p", part)}, video_upload_id=upload_id, part_seq="0", content_md5=md5))
    assert (
        "part_seq sent in the query, not as a form field" in shopee.sandbox.backend.request_log[-1]["notes"]
    )
    ok(
        send(
            {
                "video_upload_id": upload_id,
                "part_seq": "0",
                "content_md5": md5,
                "part_content": part.decode(),
            },
            {"x": ("x", b"")},
        )
    )
    assert "part_content sent without a filename" in shopee.sandbox.backend.request_log[-1]["notes"]


def test_a_part_body_over_the_part_size_is_refused(shopee):
    upload_id = shopee.post(INIT, {"file_md5": "0" * 32, "file_size": 9 * MiB})["response"]["video_upload_id"]
    assert_error(
        shopee.part(upload_id, 0, bytes(5 * MiB)), "product.error_invalid_part_size", "5242880 bytes, over"
    )
    assert_error(
        shopee.part(upload_id, 0, bytes(9 * MiB)), "product.error_invalid_part_size", "larger than a part"
    )
    assert list((shopee.sandbox.backend.data_dir / "incoming").iterdir()) == []


def test_a_part_sent_again_replaces_the_first(shopee, video):
    data = video(150_000)
    upload_id = shopee.init(data)
    ok(shopee.part(upload_id, 0, bytes(150_000)))
    ok(shopee.part(upload_id, 0, data))
    ok(shopee.complete(upload_id, [0]))
    shopee.wait(upload_id, "SUCCEEDED")


def test_unknown_foreign_and_expired_upload_ids(make_shopee_sandbox, video):
    clock = FakeClock()
    shopee = driver_for(make_shopee_sandbox, clock=clock, upload_ttl=60)
    assert_error(shopee.part("sg_nope", 0, b"x"), "product.error_invalid_upload_id", "does not exist")
    assert_error(shopee.result("sg_nope"), "product.error_invalid_upload_id")
    data = video(100_000)
    upload_id = shopee.init(data)
    other = ShopeeDriver(shopee.sandbox)
    other.access_token, other.shop_id = _token_for_shop(other, 700000)["access_token"], 700000
    assert_error(other.result(upload_id), "product.error_invalid_upload_id", "does not exist")
    assert_error(other.post(CANCEL, {"video_upload_id": upload_id}), "product.error_invalid_upload_id")
    clock.now += 61
    assert_error(shopee.part(upload_id, 0, data), "product.error_invalid_upload_id", "expired")
    assert_error(shopee.result(upload_id), "product.error_invalid_upload_id", "expired")


# ------------------------------------------------------------------------------------------- complete


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"part_seq_list": []}, "part_seq_list is required"),
        ({"part_seq_list": "0"}, "part_seq_list is required"),
        ({"part_seq_list": ["0"]}, "part_seq_list is required"),
        ({"part_seq_list": [0, 0]}, "more than once"),
        ({"report_data": {}}, "report_data.upload_cost"),
        ({"report_data": {"upload_cost": "9"}}, "report_data.upload_cost"),
        ({"report_data": None}, "report_data.upload_cost"),
    ],
)
def test_complete_checks_its_body(shopee, body, fragment):
    data = bytes(10)
    upload_id = shopee.init(data)
    ok(shopee.part(upload_id, 0, data))
    full = {"video_upload_id": upload_id, "part_seq_list": [0], "report_data": {"upload_cost": 5}, **body}
    assert_error(shopee.post(COMPLETE, full), "product.error_param", fragment)


def test_complete_checks_the_parts_against_init(shopee, video):
    data = video(9 * MiB)
    upload_id = shopee.init(data)
    ok(shopee.part(upload_id, 0, data[: 4 * MiB]))
    ok(shopee.part(upload_id, 2, data[8 * MiB :]))
    assert_error(
        shopee.complete(upload_id, [0, 2]), "product.error_param", "parts [1] of 0..2 were never uploaded"
    )
    assert_error(
        shopee.complete(upload_id, [0, 1, 2]), "product.error_param", "differs from the parts uploaded [0, 2]"
    )
    ok(shopee.part(upload_id, 1, data[4 * MiB : 8 * MiB]))
    ok(shopee.complete(upload_id, [2, 0, 1]))  # any order
    assert shopee.wait(upload_id, "SUCCEEDED")[0] in ("TRANSCODING", "SUCCEEDED")


def test_complete_checks_the_joined_file_md5_and_size(make_shopee_sandbox, video):
    shopee = driver_for(make_shopee_sandbox, part_size_rule="lenient")
    data = video(200_000)
    wrong_md5 = shopee.init(data, file_md5=hashlib.md5(b"another file").hexdigest())
    assert_error(
        shopee.complete(wrong_md5, shopee.parts(wrong_md5, data)),
        "product.error_param",
        "differs from file_md5",
    )
    assert shopee.status(wrong_md5) == "INITIATED"
    short = shopee.init(data)
    ok(shopee.part(short, 0, data[:100_000]))
    assert_error(
        shopee.complete(short, [0]), "product.error_param", "hold 100000 bytes but file_size is 200000"
    )


def test_a_mismatch_can_be_reported_as_failed_instead(make_shopee_sandbox, video):
    shopee = driver_for(make_shopee_sandbox, complete_mismatch="failed")
    data = video(200_000)
    upload_id = shopee.init(data, file_md5=hashlib.md5(b"another file").hexdigest())
    ok(shopee.complete(upload_id, shopee.parts(upload_id, data)))
    shopee.wait(upload_id, "FAILED")
    assert "differs from file_md5" in shopee.result(upload_id)["response"]["message"]


def test_complete_once_then_nothing_changes_the_upload(shopee, video):
    data = video(100_000)
    upload_id = shopee.init(data)
    seqs = shopee.parts(upload_id, data)
    ok(shopee.complete(upload_id, seqs))
    assert_error(
        shopee.complete(upload_id, seqs), "product.error_already_completed", "Upload already completed."
    )
    assert_error(shopee.part(upload_id, 0, data), "product.error_already_completed")
    assert_error(shopee.post(CANCEL, {"video_upload_id": upload_id}), "product.error_already_completed")
    shopee.wait(upload_id, "SUCCEEDED")


# ----------------------------------------------------------------------------------------- the result


def test_states_and_video_info_over_the_transcode_time(make_shopee_sandbox, video):
    clock = FakeClock()
    shopee = driver_for(make_shopee_sandbox, clock=clock, transcode_seconds=30)
    data = video(5 * MiB, seed=4)
    upload_id = shopee.init(data)
    answer = ok(shopee.result(upload_id))["response"]
    assert answer == {"status": "INITIATED", "message": ""}
    ok(shopee.complete(upload_id, shopee.parts(upload_id, data)))
    assert ok(shopee.result(upload_id))["response"] == {"status": "TRANSCODING", "message": ""}
    clock.now += 29
    assert shopee.status(upload_id) == "TRANSCODING"
    clock.now += 1
    answer = ok(shopee.result(upload_id))["response"]
    assert answer["status"] == "SUCCEEDED" and answer["message"] == "success"
    info = answer["video_info"]
    assert info["duration"] == 15
    (video_url,) = info["video_url_list"]
    (thumbnail,) = info["thumbnail_url_list"]
    assert video_url["video_url_region"] == "SG" and thumbnail["image_url_region"] == "SG"
    assert requests.get(video_url["video_url"]).content == data
    assert requests.get(thumbnail["image_url"]).content.startswith(b"\x89PNG")
    assert requests.get(f"{shopee.sandbox.url}/_sandbox/shopee/file/{'0' * 32}").status_code == 404
    state = shopee.sandbox.backend.snapshot()["uploads"][upload_id]
    assert state["video_md5"] == hashlib.md5(data).hexdigest() and state["upload_cost_ms"] == 1200


@pytest.mark.parametrize(
    ("options", "final", "message"),
    [
        ({"duration_seconds": 10}, "SUCCEEDED", "success"),
        ({"duration_seconds": 60}, "SUCCEEDED", "success"),
        ({"duration_seconds": 9.9}, "FAILED", "Video is too short"),
        ({"duration_seconds": 60.5}, "FAILED", "Video is too long"),
        ({"width": 1280, "height": 1280}, "SUCCEEDED", "success"),
        ({"width": 1920, "height": 1080}, "FAILED", "Video resolution 1920x1080 exceeds 1280x1280"),
    ],
)
def test_duration_and_resolution_limits_show_after_transcoding(shopee, video, options, final, message):
    upload_id = shopee.upload(video(120_000, **options))
    shopee.wait(upload_id, final)
    answer = shopee.result(upload_id)["response"]
    assert answer["message"] == message
    assert ("video_info" in answer) == (final == "SUCCEEDED")


def test_bytes_that_are_not_an_mp4_fail(shopee):
    upload_id = shopee.upload(b"these are not video bytes" * 100)
    shopee.wait(upload_id, "FAILED")
    assert shopee.result(upload_id)["response"]["message"].startswith("Video format is not supported")


def test_outcome_route_forces_failed_before_or_after_complete(shopee, video):
    data = video(100_000)
    before = shopee.init(data)
    url = f"{shopee.sandbox.url}/_sandbox/shopee/uploads/{before}/outcome"
    assert requests.post(url, json={"outcome": "FAILED", "message": "Video is too short"}).status_code == 200
    ok(shopee.complete(before, shopee.parts(before, data)))
    shopee.wait(before, "FAILED")
    assert shopee.result(before)["response"]["message"] == "Video is too short"

    after = shopee.init(data)
    ok(shopee.complete(after, shopee.parts(after, data)))
    url = f"{shopee.sandbox.url}/_sandbox/shopee/uploads/{after}/outcome"
    assert requests.post(url, json={"outcome": "FAILED", "finish_now": True}).json()["status"] == "FAILED"
    assert requests.post(url, json={"outcome": "CANCELLED"}).status_code == 400
    assert (
        requests.post(
            f"{shopee.sandbox.url}/_sandbox/shopee/uploads/nope/outcome", json={"outcome": "FAILED"}
        ).status_code
        == 404
    )


def test_stale_initiated_after_complete(shopee, video):
    upload_id = shopee.upload(video(100_000))
    requests.post(
        f"{shopee.sandbox.url}/_sandbox/shopee/faults", json={"kind": "stale_initiated", "count": 2}
    )
    assert [shopee.status(upload_id) for _ in range(2)] == ["INITIATED", "INITIATED"]
    shopee.wait(upload_id, "SUCCEEDED")


def test_cancel_ends_an_initiated_upload(shopee, video):
    data = video(9 * MiB)
    upload_id = shopee.init(data)
    ok(shopee.part(upload_id, 0, data[: 4 * MiB]))
    assert_error(shopee.post(CANCEL, {}), "product.error_param", "video_upload_id is required")
    ok(shopee.post(CANCEL, {"video_upload_id": upload_id}))
    assert_error(
        shopee.post(CANCEL, {"video_upload_id": upload_id}), "product.error_invalid_upload_id", "cancelled"
    )
    assert shopee.status(upload_id) == "CANCELLED"
    assert_error(
        shopee.part(upload_id, 1, data[4 * MiB : 8 * MiB]), "product.error_invalid_upload_id", "cancelled"
    )
    assert_error(shopee.complete(upload_id, [0]), "product.error_invalid_upload_id", "cancelled")
    assert list((shopee.sandbox.backend.data_dir / "uploads").iterdir()) == []


# ---------------------------------------------------------------------------------------------- items


def test_add_item_requires_the_documented_fields(shopee):
    good = sample_item("Bag")
    for field in (
        "original_price",
        "description",
        "weight",
        "item_name",
        "logistic_info",
        "category_id",
        "image",
    ):
        assert_error(
            shopee.add_item({k: v for k, v in good.items() if k != field}),
            "product.error_param",
            f"{field} is required",
        )
    for bad, fragment in (
        ({"original_price": "35"}, "original_price"),
        ({"weight": 0}, "weight"),
        ({"image": {"image_id_list": []}}, "image.image_id_list"),
        ({"logistic_info": [{"logistic_id": 1}]}, "logistic_id"),
        ({"item_name": "  "}, "item_name"),
    ):
        assert_error(shopee.add_item({**good, **bad}), "product.error_param", fragment)
    created = ok(shopee.add_item(good))["response"]
    assert created["item_name"] == "Bag" and created["video_info"] == []


def test_only_a_succeeded_video_of_the_shop_goes_on_an_item(make_shopee_sandbox, video):
    clock = FakeClock()
    shopee = driver_for(make_shopee_sandbox, clock=clock, transcode_seconds=30)
    item_id = ok(shopee.add_item(sample_item("Shoe")))["response"]["item_id"]
    data = video(100_000)
    upload_id = shopee.init(data)
    assert_error(
        shopee.update_item(item_id, video_upload_id=[upload_id]),
        "product.error_video_info_not_found",
        "INITIATED",
    )
    ok(shopee.complete(upload_id, shopee.parts(upload_id, data)))
    assert_error(
        shopee.update_item(item_id, video_upload_id=[upload_id]),
        "product.error_video_info_not_found",
        "TRANSCODING",
    )
    assert_error(
        shopee.add_item(sample_item("Hat", video_upload_id=upload_id)), "product.error_video_info_not_found"
    )
    assert_error(
        shopee.update_item(item_id, video_upload_id=["sg_unknown"]), "product.error_video_info_not_found"
    )
    clock.now += 30
    updated = ok(shopee.update_item(item_id, video_upload_id=[upload_id]))["response"]
    (info,) = updated["video_info"]
    assert set(info) == {"video_url", "thumbnail_url", "duration"} and info["duration"] == 15
    assert_error(
        shopee.update_item(item_id, video_upload_id=[upload_id, upload_id]),
        "product.error_param",
        "only accept one",
    )
    assert_error(
        shopee.update_item(424242, video_upload_id=[upload_id]),
        "product.error_item_not_found",
        "Item_id is not found.",
    )
    assert_error(shopee.update_item("1"), "product.error_param", "item_id")
    # One video on a second item is allowed.
    ok(shopee.add_item(sample_item("Hat", video_upload_id=upload_id)))
    # Another shop sees neither the item nor the video.
    other = ShopeeDriver(shopee.sandbox)
    other.access_token, other.shop_id = _token_for_shop(other, 700000)["access_token"], 700000
    assert_error(other.update_item(item_id, item_name="x"), "product.error_item_not_found")
    other_item = ok(other.add_item(sample_item("Other")))["response"]["item_id"]
    assert_error(
        other.update_item(other_item, video_upload_id=[upload_id]), "product.error_video_info_not_found"
    )


def test_failed_and_cancelled_videos_cannot_go_on_an_item(shopee, video):
    item_id = ok(shopee.add_item(sample_item("Shoe")))["response"]["item_id"]
    failed = shopee.upload(video(100_000, duration_seconds=3))
    shopee.wait(failed, "FAILED")
    cancelled = shopee.init(video(100_000))
    ok(shopee.post(CANCEL, {"video_upload_id": cancelled}))
    for upload_id in (failed, cancelled):
        assert_error(
            shopee.update_item(item_id, video_upload_id=[upload_id]), "product.error_video_info_not_found"
        )


@pytest.mark.parametrize("blank", [[], [""], "", [{}], None])
def test_a_blank_video_upload_id_removes_the_video(shopee, video, blank):
    upload_id = shopee.upload(video(100_000))
    shopee.wait(upload_id, "SUCCEEDED")
    item_id = ok(shopee.add_item(sample_item("Bag", video_upload_id=upload_id)))["response"]["item_id"]
    assert len(shopee.items(item_id)["response"]["item_list"][0]["video_info"]) == 1
    ok(shopee.update_item(item_id, item_name="Bag 2"))  # no video_upload_id: the video stays
    assert len(shopee.items(item_id)["response"]["item_list"][0]["video_info"]) == 1
    ok(shopee.update_item(item_id, video_upload_id=blank))
    (item,) = shopee.items(item_id)["response"]["item_list"]
    assert item["video_info"] == [] and item["item_name"] == "Bag 2"


def test_get_item_base_info_reads_every_array_form(shopee):
    ids = [ok(shopee.add_item(sample_item(f"Item {n}")))["response"]["item_id"] for n in range(3)]
    for values in ([str(i) for i in ids], [",".join(map(str, ids))], [json.dumps(ids)]):
        listed = ok(shopee.items(*values))["response"]["item_list"]
        assert [item["item_id"] for item in listed] == ids
    item = ok(shopee.items(ids[0], 99))["response"]["item_list"][0]
    assert (
        isinstance(item["create_time"], int)
        and item["weight"] == "0.5"
        and item["price_info"][0]["original_price"] == 35.0
    )
    assert "item ids not found: [99]" in shopee.sandbox.backend.request_log[-1]["notes"]
    assert_error(shopee.items(), "product.error_param", "item_id_list is required")
    assert_error(shopee.items("x"), "product.error_param", "'x'")
    assert_error(shopee.items(",".join(str(n) for n in range(51))), "product.error_param", "limit is 50")


def test_items_can_be_seeded_without_a_token(shopee_sandbox):
    created = requests.post(f"{shopee_sandbox.url}/_sandbox/shopee/items", json=sample_item("Seeded")).json()
    assert created["item_name"] == "Seeded" and created["item_id"] in shopee_sandbox.backend.items
    refused = requests.post(f"{shopee_sandbox.url}/_sandbox/shopee/items", json={"item_name": "x"})
    assert refused.status_code == 400 and refused.json()["error"] == "error_param"


# ----------------------------------------------------------------------------------------------- auth


def _token_for_shop(shopee: ShopeeDriver, shop_id: int) -> dict[str, Any]:
    code = shopee.sandbox.backend.issue_auth_code(shop_id)
    answer = shopee.post(
        TOKEN, {"code": code, "partner_id": shopee.partner_id, "shop_id": shop_id}, shop=False
    )
    assert answer["error"] == "", answer
    return answer


def test_token_get_answers_at_the_top_level_and_codes_are_single_use(shopee):
    code = requests.post(f"{shopee.sandbox.url}/_sandbox/shopee/auth-codes").json()["code"]
    body = {"code": code, "partner_id": shopee.partner_id, "shop_id": shopee.shop_id}
    granted = shopee.post(TOKEN, body, shop=False)
    assert set(granted) == {"access_token", "refresh_token", "expire_in", "error", "message", "request_id"}
    assert granted["expire_in"] == 14400 and granted["error"] == ""
    assert_error(shopee.post(TOKEN, body, shop=False), "error_auth", "Invalid code")
    shopee.access_token = granted["access_token"]
    assert shopee.get(RESULT, [("video_upload_id", "x")])["error"] == "product.error_invalid_upload_id"


def test_token_get_checks_code_age_shop_and_body(make_shopee_sandbox):
    clock = FakeClock()
    shopee = driver_for(make_shopee_sandbox, clock=clock)
    backend = shopee.sandbox.backend
    old = backend.issue_auth_code()
    clock.now += 601
    assert_error(
        shopee.post(
            TOKEN, {"code": old, "partner_id": shopee.partner_id, "shop_id": shopee.shop_id}, shop=False
        ),
        "error_auth",
        "Invalid code",
    )
    code = backend.issue_auth_code()
    assert_error(
        shopee.post(TOKEN, {"code": code, "partner_id": shopee.partner_id, "shop_id": 1}, shop=False),
        "invalid_shop_id",
    )
    for body, fragment in (
        ({"partner_id": shopee.partner_id, "shop_id": shopee.shop_id}, "code is required"),
        ({"code": "c", "shop_id": shopee.shop_id}, "partner_id in the body"),
        (
            {"code": "c", "partner_id": str(shopee.partner_id), "shop_id": shopee.shop_id},
            "partner_id in the body",
        ),
        ({"code": "c", "partner_id": shopee.partner_id}, "shop_id is required"),
    ):
        assert_error(shopee.post(TOKEN, body, shop=False), "product.error_param", fragment)


def test_refresh_rotates_both_tokens_and_revokes_the_used_one(make_shopee_sandbox):
    clock = FakeClock()
    shopee = driver_for(make_shopee_sandbox, clock=clock)
    config = shopee.sandbox.config
    body = {"refresh_token": config.refresh_token, "partner_id": shopee.partner_id, "shop_id": shopee.shop_id}
    fresh = shopee.post(REFRESH, body, shop=False)
    assert set(fresh) == {
        "access_token",
        "refresh_token",
        "expire_in",
        "partner_id",
        "shop_id",
        "error",
        "message",
        "request_id",
    }
    assert (fresh["partner_id"], fresh["shop_id"], fresh["expire_in"]) == (
        shopee.partner_id,
        shopee.shop_id,
        14400,
    )
    assert fresh["refresh_token"] != config.refresh_token and fresh["access_token"] != config.access_token
    assert_error(shopee.post(REFRESH, body, shop=False), "error_auth", "Invalid refresh_token.")
    # The old access token lives 5 more minutes, the new one 4 hours.
    clock.now += 299
    assert shopee.get(RESULT, [("video_upload_id", "x")])["error"] == "product.error_invalid_upload_id"
    clock.now += 2
    assert_error(shopee.get(RESULT, [("video_upload_id", "x")]), "invalid_acceess_token")
    shopee.access_token = fresh["access_token"]
    assert shopee.get(RESULT, [("video_upload_id", "x")])["error"] == "product.error_invalid_upload_id"
    again = shopee.post(REFRESH, {**body, "refresh_token": fresh["refresh_token"]}, shop=False)
    assert again["error"] == "" and again["refresh_token"] != fresh["refresh_token"]


def test_refresh_checks_the_shop_and_the_30_day_life(make_shopee_sandbox):
    clock = FakeClock()
    shopee = driver_for(make_shopee_sandbox, clock=clock, refresh_token_ttl=100)
    config = shopee.sandbox.config
    body = {"refresh_token": config.refresh_token, "partner_id": shopee.partner_id, "shop_id": 700000}
    assert_error(shopee.post(REFRESH, body, shop=False), "error_shop_refresh_token")
    clock.now += 101
    assert_error(
        shopee.post(REFRESH, {**body, "shop_id": shopee.shop_id}, shop=False), "refresh_token_expired"
    )


def test_expire_route_forces_a_refresh(shopee):
    assert requests.post(f"{shopee.sandbox.url}/_sandbox/shopee/tokens/expire").json() == {"expired": 1}
    assert_error(shopee.get(RESULT, [("video_upload_id", "x")]), "invalid_acceess_token")


def test_consent_pages_redirect_with_a_code_and_the_shop(shopee):
    signed = shopee.signed("/api/v2/shop/auth_partner", shop=False)
    page = requests.get(
        f"{shopee.sandbox.url}/api/v2/shop/auth_partner",
        params={**signed, "redirect": "https://seller.example/cb"},
        allow_redirects=False,
    )
    assert page.status_code == 302
    location = page.headers["location"]
    assert location.startswith("https://seller.example/cb?code=") and location.endswith(
        f"&shop_id={shopee.shop_id}"
    )
    code = location.split("code=")[1].split("&")[0]
    assert (
        shopee.post(
            TOKEN, {"code": code, "partner_id": shopee.partner_id, "shop_id": shopee.shop_id}, shop=False
        )["error"]
        == ""
    )
    bad = requests.get(
        f"{shopee.sandbox.url}/api/v2/shop/auth_partner", params={**signed, "sign": "0" * 64, "redirect": "x"}
    )
    assert bad.json()["error"] == "error_sign"
    unsigned = requests.get(
        f"{shopee.sandbox.url}/auth",
        params={
            "partner_id": shopee.partner_id,
            "redirect_uri": "http://cb/x",
            "response_type": "code",
            "state": "s",
        },
        allow_redirects=False,
    )
    assert unsigned.status_code == 302 and unsigned.headers["location"].endswith(
        f"&shop_id={shopee.shop_id}&state=s"
    )
    assert (
        requests.get(f"{shopee.sandbox.url}/auth", params={"partner_id": 1, "redirect_uri": "x"}).status_code
        == 400
    )


# ----------------------------------------------------------------------------------------------- push


@pytest.fixture
def receiver() -> Iterator[SimpleNamespace]:
    """A callback on loopback that keeps every push and answers from ``plan`` (status, body, delay), then 204."""
    posts: list[tuple[dict[str, str], bytes, float]] = []
    plan: list[tuple[int, bytes, float]] = []
    app = FastAPI()

    @app.post("/shopee/push")
    async def push(request: Request) -> Response:
        posts.append((dict(request.headers), await request.body(), time.monotonic()))
        status, content, delay = plan.pop(0) if plan else (204, b"", 0.0)
        if delay:
            await asyncio.sleep(delay)
        return Response(content, status_code=status)

    server = SandboxServer(app)
    url = server.start() + "/shopee/push"
    yield SimpleNamespace(url=url, posts=posts, plan=plan)
    server.stop()


def test_push_is_the_documented_message_signed_over_url_and_body(make_shopee_sandbox, receiver, video):
    shopee = driver_for(make_shopee_sandbox, push_url=receiver.url, transcode_seconds=0.2)
    good = shopee.upload(video(100_000))
    short = shopee.upload(video(100_000, seed=2, duration_seconds=4))
    wait_for(lambda: len(receiver.posts) == 2)
    messages = {}
    for headers, body, _ in receiver.posts:
        expected = hmac.new(
            shopee.partner_key.encode(), f"{receiver.url}|".encode() + body, hashlib.sha256
        ).hexdigest()
        assert headers["authorization"] == expected
        message = json.loads(body)
        assert list(message) == ["data", "shop_id", "code", "timestamp"]
        assert (message["code"], message["shop_id"]) == (11, shopee.shop_id)
        messages[message["data"]["video_upload_id"]] = message["data"]
    assert messages[short] == {"video_upload_id": short, "status": "FAILED", "message": "Video is too short"}
    info = messages[good]["video_info"]
    assert (messages[good]["status"], messages[good]["message"]) == ("SUCCEEDED", "success")
    assert set(info) == {"video_id", "video_url", "thumbnail_url", "duration"}
    assert (
        info["video_url"][0]["video_url_region"] == "SG"
        and info["thumbnail_url"][0]["image_url_region"] == "SG"
    )
    assert info["duration"] == 15 and len(info["video_id"]) == 32
    time.sleep(0.3)
    assert len(receiver.posts) == 2  # each result once; nothing for INITIATED or TRANSCODING


def test_push_is_retried_until_answered_2xx_with_an_empty_body(make_shopee_sandbox, receiver, video):
    receiver.plan.extend([(500, b"", 0.0), (200, b"ok", 0.0), (200, b"", 0.6)])
    shopee = driver_for(
        make_shopee_sandbox,
        push_url=receiver.url,
        transcode_seconds=0,
        push_retry_seconds=(0.1, 0.1, 0.1),
        push_timeout=0.3,
    )
    upload_id = shopee.upload(video(100_000))
    log = wait_for(
        lambda: (
            [d for d in shopee.sandbox.backend.push.log if d["attempt"] == 4]
            and shopee.sandbox.backend.push.log
        )
    )
    assert [(d["attempt"], d["outcome"]) for d in log] == [
        (1, "HTTP 500"),
        (2, "HTTP 200 (not accepted)"),
        (3, "ReadTimeout"),
        (4, "HTTP 204"),
    ]
    assert {d["video_upload_id"] for d in log} == {upload_id}
    assert len({body for _, body, _ in receiver.posts}) == 1  # the same bytes every time


def test_push_is_given_up_after_the_last_retry(make_shopee_sandbox, video):
    shopee = driver_for(
        make_shopee_sandbox,
        push_url="http://127.0.0.1:9/closed",
        transcode_seconds=0,
        push_retry_seconds=(0.05, 0.05),
    )
    shopee.upload(video(100_000))
    wait_for(lambda: len(shopee.sandbox.backend.push.log) == 3)
    time.sleep(0.3)
    assert [d["outcome"] for d in shopee.sandbox.backend.push.log] == ["ConnectionError"] * 3


def test_push_repeats_and_reorders_when_asked(make_shopee_sandbox, receiver, video):
    clock = FakeClock()  # stands still while the uploads finish, so only the jitter orders the deliveries
    shopee = driver_for(
        make_shopee_sandbox,
        clock=clock,
        push_url=receiver.url,
        push_partner_key="live-push-key",
        transcode_seconds=0,
        push_duplicate_rate=1.0,
        push_jitter_seconds=1.0,
        fault_seed=3,
    )
    uploads = [shopee.upload(video(60_000, seed=n)) for n in range(5)]
    time.sleep(0.5)
    assert receiver.posts == []  # every delivery waits its jitter
    clock.now += 2
    wait_for(lambda: len(receiver.posts) == 10)
    arrived = [json.loads(body)["data"]["video_upload_id"] for _, body, _ in receiver.posts]
    assert sorted(arrived) == sorted(uploads * 2)
    first_arrivals = list(dict.fromkeys(arrived))
    assert first_arrivals != uploads  # "sequence not guaranteed"
    headers, body, _ = receiver.posts[0]
    assert (
        headers["authorization"]
        == hmac.new(b"live-push-key", f"{receiver.url}|".encode() + body, hashlib.sha256).hexdigest()
    )
    pushes = requests.get(f"{shopee.sandbox.url}/_sandbox/shopee/pushes").json()
    assert sorted(d["copy"] for d in pushes) == [1] * 5 + [2] * 5


def test_cancelled_uploads_are_not_pushed_and_a_forced_outcome_is(make_shopee_sandbox, receiver, video):
    shopee = driver_for(make_shopee_sandbox, push_url=receiver.url, transcode_seconds=60)
    cancelled = shopee.init(video(60_000))
    ok(shopee.post(CANCEL, {"video_upload_id": cancelled}))
    slow = shopee.upload(video(60_000, seed=1))
    time.sleep(0.4)
    assert receiver.posts == []
    requests.post(
        f"{shopee.sandbox.url}/_sandbox/shopee/uploads/{slow}/outcome",
        json={"outcome": "FAILED", "finish_now": True},
    )
    wait_for(lambda: receiver.posts)
    assert json.loads(receiver.posts[0][1])["data"] == {
        "video_upload_id": slow,
        "status": "FAILED",
        "message": "Video transcoding failed",
    }


# ------------------------------------------------------------------------------------------- storage


def test_nothing_from_a_request_names_a_file(shopee, video):
    """Parts and videos live in folders the emulator names: a hostile id or file name reaches no path."""
    data = video(100_000)
    upload_id = shopee.init(data)
    hostile = requests.post(
        f"{shopee.sandbox.url}{PART}",
        params=shopee.signed(PART),
        data={"video_upload_id": "../../etc", "part_seq": "0", "content_md5": hashlib.md5(data).hexdigest()},
        files={"part_content": ("../../escape.mp4", data)},
    ).json()
    assert_error(hostile, "product.error_invalid_upload_id")
    ok(shopee.part(upload_id, 0, data, filename="../../../../tmp/escape.part"))
    ok(shopee.complete(upload_id, [0]))
    root = shopee.sandbox.backend.data_dir
    files = [p.relative_to(root).parts for p in root.rglob("*") if p.is_file()]
    assert [(folder, len(name)) for folder, name in files] == [("videos", 36)]
    assert (
        requests.get(f"{shopee.sandbox.url}/_sandbox/shopee/file/..%2F..%2Fetc%2Fpasswd").status_code == 404
    )


def test_the_link_model_shapes_the_gateway(make_shopee_sandbox):
    shopee = driver_for(make_shopee_sandbox, latency_ms=300)
    started = time.monotonic()
    assert shopee.get(RESULT, [("video_upload_id", "x")])["error"] == "product.error_invalid_upload_id"
    assert time.monotonic() - started >= 0.3
