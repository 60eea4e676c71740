"""Secrets are masked in URLs, parameter maps and free text."""

from __future__ import annotations

from media_upload.masking import MASK, mask_params, mask_text, mask_url


def test_mask_url_keeps_everything_but_the_secrets():
    url = 'https://api.lazada.sg/rest/media/video/get?videoId=1&access_token=50000abc&sign=ABCDEF&parts=[{"a":1}]'
    assert (
        mask_url(url)
        == f'https://api.lazada.sg/rest/media/video/get?videoId=1&access_token={MASK}&sign={MASK}&parts=[{{"a":1}}]'
    )
    assert mask_url("http://h/x?auth_key=1-0-0-abc") == f"http://h/x?auth_key={MASK}"
    assert mask_url("http://h/x") == "http://h/x"


def test_mask_params():
    masked = mask_params(
        {"access_token": "t", "refresh_token": "r", "sign": "s", "uploadId": "u", "code": "c"}, extra=["code"]
    )
    assert masked == {
        "access_token": MASK,
        "refresh_token": MASK,
        "sign": MASK,
        "uploadId": "u",
        "code": MASK,
    }


def test_mask_text_handles_query_json_and_known_values():
    text = 'POST /rest?access_token=tok123&x=1 {"refresh_token": "ref456"} secret=mysecretvalue plain mysecretvalue'
    masked = mask_text(text, secrets=["mysecretvalue"])
    for secret in ("tok123", "ref456", "mysecretvalue"):
        assert secret not in masked
    assert "x=1" in masked
