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


def test_mask_url_covers_user_parts_and_signed_urls():
    cases = {
        "https://bob:hunter2@cdn.example/v.mp4": f"https://{MASK}@cdn.example/v.mp4",
        "s3://aws_default@bucket/k.mp4": f"s3://{MASK}@bucket/k.mp4",
        "https://b.s3.amazonaws.com/v.mp4?X-Amz-Security-Token=t1&X-Amz-Credential=c1&X-Amz-Signature=s1": (
            f"https://b.s3.amazonaws.com/v.mp4?X-Amz-Security-Token={MASK}&X-Amz-Credential={MASK}"
            f"&X-Amz-Signature={MASK}"
        ),
        "https://storage.googleapis.com/b/v.mp4?X-Goog-Signature=g1&X-Goog-Credential=g2": (
            f"https://storage.googleapis.com/b/v.mp4?X-Goog-Signature={MASK}&X-Goog-Credential={MASK}"
        ),
        "https://a.blob.core.windows.net/c/v.mp4?sv=2024&sig=az1": (
            f"https://a.blob.core.windows.net/c/v.mp4?sv=2024&sig={MASK}"
        ),
        "https://cdn.example/v.mp4?token=t2&api_key=k2&id=7": f"https://cdn.example/v.mp4?token={MASK}&api_key={MASK}&id=7",
    }
    for url, masked in cases.items():
        assert mask_url(url) == masked


def test_mask_text_masks_url_user_parts_without_mangling_words():
    text = "GET https://bob:hunter2@cdn.example/v.mp4 failed; design=ok, token: abc, sig=zz"
    assert (
        mask_text(text)
        == f"GET https://{MASK}@cdn.example/v.mp4 failed; design=ok, token: {MASK}, sig={MASK}"
    )


def test_printable_escapes_control_characters():
    from media_upload.masking import printable

    assert printable("SKU-1") == "SKU-1"
    assert printable("a\x1b[31mred\nx\r") == "a\\x1b[31mred\\nx\\r"
