"""The Lazada emulator accepts the official client unchanged and verifies signatures as documented."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import requests

from media_upload.protocols.lazada import sign
from media_upload.sandbox.lazada import LazadaBackend, LazadaSandboxConfig
from media_upload.sandbox.lazada.errors import ErrorReply
from media_upload.sandbox.lazada.products import sample_product_payload
from tests.integration.conftest import COVER_URL, LazopDriver

VECTOR_PARAMS = {
    "app_key": "123456",
    "access_token": "test",
    "timestamp": "1517820392000",
    "sign_method": "sha256",
    "order_id": "1234",
}
VECTOR_SIGN = "4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def wait_for_state(driver: LazopDriver, video_id: str, final: str, timeout: float = 10) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = driver.state(video_id)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == final:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"video {video_id} went through {seen}, never {final}")


def test_official_client_uploads_audits_and_attaches(driver, sample_video):
    video = sample_video(7_500_000, seed=3)
    data = video.read_bytes()

    quota = driver.call("/media/video/quota/get", method="GET")
    assert quota["code"] == "0" and quota["used_size"] == 0

    upload_id = driver.init(len(data), video.name)
    parts = driver.upload_blocks(upload_id, data, 3_000_000)
    assert [p["partNumber"] for p in parts] == [1, 2, 3]
    committed = driver.commit(upload_id, parts, title="Red dress")
    assert committed["code"] == "0" and committed["success"] is True
    video_id = committed["video_id"]
    assert len(video_id) == 11 and video_id.isdigit()

    states = wait_for_state(driver, video_id, "AUDIT_SUCCESS")
    assert states[0] in ("READY_FOR_TRANSCODE", "TRANSCODING")
    stored = driver.sandbox.backend.snapshot()["videos"][video_id]
    assert stored["md5"] == hashlib.md5(data).hexdigest()
    assert stored["size"] == len(data)

    image = driver.call("/image/upload", files={"image": PNG})
    image_url = image["data"]["image"]["url"]
    assert image["code"] == "0" and ".slatic.net/p/" in image_url

    payload = sample_product_payload(image_url, "dress-red-m", name="Red dress")
    created = driver.call("/product/create", {"payload": json.dumps(payload)})
    assert created["code"] == "0", created
    item_id = created["data"]["item_id"]
    sku_id = created["data"]["sku_list"][0]["sku_id"]

    update = {
        "Request": {
            "Product": {
                "ItemId": str(item_id),
                "Attributes": {"video": video_id},
                "Skus": {"Sku": [{"SkuId": str(sku_id)}]},
            }
        }
    }
    updated = driver.call("/product/update", {"payload": json.dumps(update)})
    assert updated["code"] == "0", updated

    item = driver.call("/product/item/get", {"item_id": str(item_id)}, method="GET")
    assert item["data"]["attributes"]["video"] == video_id
    assert item["data"]["skus"][0]["SellerSku"] == "dress-red-m"
    assert driver.call("/media/video/quota/get", method="GET")["used_size"] == len(data)


def test_wrong_secret_is_refused_and_changes_nothing(lazop, lazada_sandbox):
    intruder = LazopDriver(lazop, lazada_sandbox, app_secret="not-the-secret")
    body = intruder.call("/media/video/block/create", {"fileName": "a.mp4", "fileBytes": "10"})
    assert body["code"] == "IncompleteSignature"
    assert body["message"].startswith("The request signature does not conform to lazop standards")
    assert set(body) == {"type", "code", "message", "request_id"}
    assert lazada_sandbox.backend.snapshot()["uploads"] == {}


def test_verifier_reproduces_the_documented_vector(lazop):
    assert sign("helloworld", "/order/get", VECTOR_PARAMS) == VECTOR_SIGN
    assert lazop.sign("helloworld", "/order/get", VECTOR_PARAMS) == VECTOR_SIGN

    config = LazadaSandboxConfig(app_key="123456", app_secret="helloworld", access_token="test")
    backend = LazadaBackend(config, clock=lambda: 1517820392.0)
    try:
        backend.authenticate("/order/get", {**VECTOR_PARAMS, "sign": VECTOR_SIGN}, needs_token=True)
        with pytest.raises(ErrorReply) as refused:
            backend.authenticate(
                "/order/get", {**VECTOR_PARAMS, "order_id": "1235", "sign": VECTOR_SIGN}, True
            )
        assert refused.value.code == "IncompleteSignature"
    finally:
        backend.close()


@pytest.mark.parametrize(
    "params",
    [
        {"b": "1", "a": "2", "B": "3", "foo_bar": "x", "foobar": "y", "foo": "z", "bar": "w"},
        {"parts": '[{"partNumber": 1, "eTag": "AB"}]', "title": "caf\u00e9 \u2615", "empty": ""},
    ],
)
def test_signature_matches_the_official_sdk(lazop, params):
    assert sign("s3cr3t", "/media/video/block/commit", params) == lazop.sign(
        "s3cr3t", "/media/video/block/commit", params
    )


def signed_params(sandbox, api: str, timestamp: str | None = None, **params: str) -> dict[str, str]:
    """System parameters plus ``params``, signed with the emulator's secret (the SDK-verified signer)."""
    config = sandbox.config
    merged = {
        "app_key": config.app_key,
        "sign_method": "sha256",
        "access_token": config.access_token,
        "timestamp": timestamp or str(int(time.time() * 1000)),
        **params,
    }
    return {**merged, "sign": sign(config.app_secret, api, merged)}


def test_parameters_in_the_query_string_like_the_guide(lazada_sandbox, sample_video):
    """The guide's real calls put every parameter in the URL and the block alone in the body."""
    data = sample_video(200_000).read_bytes()
    url = lazada_sandbox.gateway_url

    def post(api: str, files=None, **params: str) -> dict:
        return requests.post(
            f"{url}{api}", params=signed_params(lazada_sandbox, api, **params), files=files
        ).json()

    upload_id = post("/media/video/block/create", fileName="a.mp4", fileBytes=str(len(data)))["upload_id"]
    block = post(
        "/media/video/block/upload",
        files={"file": ("VID_20220627_173223.mp4", data, "application/octet-stream")},
        uploadId=upload_id,
        blockNo="0",
        blockCount="1",
    )
    assert block["e_tag"] == hashlib.md5(data).hexdigest().upper()
    parts = '[{"partNumber": 1,"eTag": "' + block["e_tag"] + '"}]'  # spacing as in the guide
    commit = post(
        "/media/video/block/commit",
        uploadId=upload_id,
        parts=parts,
        title="hello",
        coverUrl=COVER_URL,
        videoUsage="pro_main_video",
    )
    assert commit["code"] == "0", commit


def test_iso_8601_timestamps_are_accepted(lazada_sandbox):
    iso_now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    params = signed_params(lazada_sandbox, "/media/video/quota/get", timestamp=iso_now)
    body = requests.get(f"{lazada_sandbox.gateway_url}/media/video/quota/get", params=params).json()
    assert body["code"] == "0", body
