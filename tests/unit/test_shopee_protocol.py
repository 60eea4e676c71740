"""Shopee wire facts: hosts, the documented base strings and their signs, limits, the push message and its
signature, against vectors computed with a one-line ``hmac`` from the documented formulas."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from media_upload.protocols.shopee import (
    AUTH_ERRORS,
    HOSTS,
    PART_BYTES,
    PART_RULES,
    base_string,
    common_params,
    envelope,
    error_name,
    is_md5_hex,
    message_of,
    parse_id,
    part_count,
    part_size,
    push_body,
    push_signature,
    resolve_host,
    sign,
    video_problem,
    video_upload_id_field,
    video_upload_push,
)
from media_upload.transfer.errors import SourceError
from media_upload.transfer.media import MediaInfo

KEY, PARTNER, STAMP = "test_partner_key", 2001887, 1655714431
TOKEN, SHOP = "59777174636562737266615546704c6d", 14701711


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("global", "https://partner.shopeemobile.com"),
        (" Sandbox ", "https://openplatform.sandbox.test-stable.shopee.sg"),
        ("https://partner.shopeemobile.com/api/v2/", "https://partner.shopeemobile.com"),
        ("http://127.0.0.1:8789/api/v2", "http://127.0.0.1:8789"),
        ("http://127.0.0.1:8789", "http://127.0.0.1:8789"),
        ("openplatform.shopee.cn", "https://openplatform.shopee.cn"),
    ],
)
def test_resolve_host(host, expected):
    assert resolve_host(host) == expected


def test_every_host_is_https_and_a_typo_is_refused():
    assert all(url.startswith("https://") and "/api" not in url for url in HOSTS.values())
    for bad in ("sandbx", "https://"):
        with pytest.raises(ValueError, match="host key"):
            resolve_host(bad)


def test_base_strings_of_the_three_api_types():
    assert (
        base_string(PARTNER, "/api/v2/shop/get_shop_info", STAMP)
        == "2001887/api/v2/shop/get_shop_info1655714431"
    )
    assert (
        base_string(PARTNER, "/api/v2/shop/get_shop_info", STAMP, TOKEN, SHOP)
        == f"2001887/api/v2/shop/get_shop_info1655714431{TOKEN}{SHOP}"
    )
    with pytest.raises(ValueError, match="both"):
        base_string(PARTNER, "/p", STAMP, TOKEN)


@pytest.mark.parametrize(
    ("path", "shop", "expected"),
    [
        (
            "/api/v2/shop/get_shop_info",
            True,
            "9fdae5aeed86e753249982ec04aa54339280f12d3f456b9e3f7d8ee91e66a2b3",
        ),
        (
            "/api/v2/media_space/init_video_upload",
            True,
            "9696d673bc8d82fc1192a962457de3eaa1b2850640913836e606b8a5a086e39c",
        ),
        (
            "/api/v2/media_space/upload_video_part",
            False,
            "4e8036870a7ddbccc3c7b8f75691f0298def99ce27f685eb847e8b81434b8e8d",
        ),
        ("/api/v2/auth/token/get", False, "4347600f52b50a77f5ecee90bf489adf3cec2d59d3c2febe004674f37def5451"),
    ],
)
def test_sign_matches_the_reference_vectors(path, shop, expected):
    extra = (TOKEN, SHOP) if shop else (None, None)
    assert sign(KEY, PARTNER, path, STAMP, *extra) == expected
    # The same from the documented formula alone: the key as its UTF-8 string, lowercase hex.
    base = f"{PARTNER}{path}{STAMP}" + (f"{TOKEN}{SHOP}" if shop else "")
    assert hmac.new(KEY.encode(), base.encode(), hashlib.sha256).hexdigest() == expected


def test_common_params_carry_the_token_only_for_shop_calls():
    public = common_params(PARTNER, KEY, "/api/v2/auth/token/get", STAMP)
    assert public == {"partner_id": "2001887", "timestamp": "1655714431", "sign": public["sign"]}
    shop = common_params(PARTNER, KEY, "/api/v2/shop/get_shop_info", STAMP, TOKEN, SHOP)
    assert list(shop) == ["partner_id", "timestamp", "access_token", "shop_id", "sign"]
    assert shop["sign"] == "9fdae5aeed86e753249982ec04aa54339280f12d3f456b9e3f7d8ee91e66a2b3"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0),
        ("4294967295", 4294967295),
        ("4294967296", None),
        ("-1", None),
        ("1e3", None),
        ("", None),
        ("\u0661", None),  # an Arabic-Indic digit: str.isdigit() says yes, the gateway says no
    ],
)
def test_ids_are_integers_within_32_bits(value, expected):
    assert parse_id(value) == expected


def test_part_arithmetic_of_a_10_mb_file():
    """G211's example: a 10 MB file is sent as 4 MB, 4 MB and 2 MB."""
    size = 10 * 1024 * 1024
    assert part_count(size) == 3
    assert [part_size(size, n) for n in range(3)] == [PART_BYTES, PART_BYTES, 2 * 1024 * 1024]
    assert part_count(1) == 1 and part_count(PART_BYTES) == 1 and part_count(PART_BYTES + 1) == 2
    assert part_count(9_000_000, 4_000_000) == 3
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        part_size(size, 3)


def test_the_planner_rules_use_exact_parts_and_the_decimal_file_cap():
    PART_RULES.check_file("v.mp4", 30_000_000)
    with pytest.raises(SourceError, match="30,000,000"):
        PART_RULES.check_file("v.mp4", 30_000_001)
    PART_RULES.check_part_size("v.mp4", 9_000_000, PART_BYTES)
    with pytest.raises(SourceError):
        PART_RULES.check_part_size("v.mp4", 9_000_000, 4_000_000)


@pytest.mark.parametrize(
    ("info", "problem"),
    [
        (MediaInfo("mp4", "isom", 10.0, 640, 360), None),
        (MediaInfo("mp4", "isom", 60.0, 1280, 1280), None),
        (MediaInfo("mp4", "isom", 9.99, 640, 360), "Video is too short"),
        (MediaInfo("mp4", "isom", 60.01, 640, 360), "Video is too long"),
        (MediaInfo("mp4", "isom", 20.0, 1281, 720), "Video resolution 1281x720 exceeds 1280x1280"),
        (MediaInfo("mov", "qt  ", 20.0, 640, 360), "Video format is not supported: mov, only mp4"),
        (MediaInfo("mp4", "isom", None, 640, 360), "Video duration is unknown"),
    ],
)
def test_video_problem(info, problem):
    assert video_problem(info) == problem


def test_md5_hex():
    assert is_md5_hex("2abf0b6e5ff90ff24437a0808f171a93") and is_md5_hex("2ABF0B6E5FF90FF24437A0808F171A93")
    assert not is_md5_hex("2abf0b6e5ff90ff24437a0808f171a93we") and not is_md5_hex(None)


def test_errors_are_matched_on_their_suffix():
    assert error_name("product.error_param") == error_name("error_param") == "error_param"
    assert error_name("invalid_acceess_token") in AUTH_ERRORS
    assert message_of({"msg": "http error code"}) == "http error code"
    assert envelope("r1", {"a": 1}) == {
        "error": "",
        "message": "",
        "warning": "",
        "request_id": "r1",
        "response": {"a": 1},
    }
    assert "response" not in envelope("r2", error="error_sign", message="Wrong sign.")


def test_video_upload_id_field():
    assert video_upload_id_field("sg_x") == ["sg_x"]
    assert video_upload_id_field(None) == [""]


def test_push_message_and_signature_match_the_documented_sample():
    """The push page's failure sample, byte for byte, and its Authorization over ``URL|body``."""
    sample = (
        b'{"data":{"video_upload_id":"sg_a106a162-8a60-4a3e-9eba-7844d7a6f4f2_000197","status":"FAILED",'
        b'"message":"Video is too short"},"shop_id":608118757,"code":11,"timestamp":1660125113}'
    )
    message = video_upload_push(
        608118757,
        "sg_a106a162-8a60-4a3e-9eba-7844d7a6f4f2_000197",
        "FAILED",
        "Video is too short",
        1660125113,
    )
    assert push_body(message) == sample
    assert (
        push_signature(KEY, "https://example.com/shopee/push", sample)
        == "7acd6be9a2d601258044bde8324a3ee8094fdb195ce9c6b99f272db6dc3455ed"
    )


def test_a_succeeded_push_carries_video_info_after_the_message():
    info = {"video_id": "0b6b", "video_url": [], "thumbnail_url": [], "duration": 60}
    message = video_upload_push(908118757, "sg_f12e", "SUCCEEDED", "Success", 1660125113, info)
    assert list(message["data"]) == ["video_upload_id", "status", "message", "video_info"]
    assert push_body(message).startswith(b'{"data":{"video_upload_id":"sg_f12e","status":"SUCCEEDED"')
