"""Gateway resolution and the documented string-to-sign."""

from __future__ import annotations

import pytest

from media_upload.protocols.lazada import GATEWAYS, resolve_gateway, sign, string_to_sign


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("sg", "https://api.lazada.sg/rest"),
        ("MY", "https://api.lazada.com.my/rest"),
        (" th ", "https://api.lazada.co.th/rest"),
        ("https://api.lazada.com.ph/rest/", "https://api.lazada.com.ph/rest"),
        ("https://api.lazada.vn", "https://api.lazada.vn/rest"),
        ("api.lazada.co.id", "https://api.lazada.co.id/rest"),
        ("http://127.0.0.1:8787/rest", "http://127.0.0.1:8787/rest"),
    ],
)
def test_resolve_gateway(host, expected):
    assert resolve_gateway(host) == expected


def test_every_region_has_a_https_gateway():
    assert sorted(GATEWAYS) == ["id", "my", "ph", "sg", "th", "vn"]
    assert all(url.startswith("https://api.lazada.") and url.endswith("/rest") for url in GATEWAYS.values())


def test_resolve_gateway_rejects_nonsense():
    with pytest.raises(ValueError, match="neither a region code"):
        resolve_gateway("https://")


def test_string_to_sign_matches_the_documented_example():
    params = {
        "app_key": "123456",
        "access_token": "test",
        "timestamp": "1517820392000",
        "sign_method": "sha256",
        "order_id": "1234",
    }
    assert string_to_sign("/order/get", params) == (
        "/order/getaccess_tokentestapp_key123456order_id1234sign_methodsha256timestamp1517820392000"
    )
    assert (
        sign("helloworld", "/order/get", params)
        == "4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A"
    )


def test_sorting_is_byte_order_with_uppercase_first():
    assert string_to_sign("/x", {"foobar": "4", "bar": "1", "foo_bar": "3", "foo": "2", "Zed": "0"}) == (
        "/xZed0bar1foo2foo_bar3foobar4"
    )
