"""The Shopee emulator accepts the community TypeScript client ``@congminh1254/shopee-sdk`` unchanged.

Shopee ships no official SDK; this client (pinned in ``shopee_sdk/package-lock.json``) is the most complete
one, and it signs, sends multipart parts and refreshes tokens its own way. A Node driver
(``shopee_sdk/driver.mjs``) runs it against the emulator on loopback; Node 20+ and npm are required, and
their absence fails these tests rather than skipping them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from media_upload.sandbox.shopee import ShopeeSandbox
from media_upload.sandbox.shopee.products import sample_item
from tests.integration.conftest import ShopeeDriver

SDK_DIR = Path(__file__).parent / "shopee_sdk"
SDK_PACKAGE = SDK_DIR / "node_modules" / "@congminh1254" / "shopee-sdk" / "package.json"
MiB = 1024 * 1024

Run = Callable[[dict[str, Any]], dict[str, Any]]


def _pinned_version() -> str:
    lock = json.loads((SDK_DIR / "package-lock.json").read_text())
    return lock["packages"]["node_modules/@congminh1254/shopee-sdk"]["version"]


@pytest.fixture(scope="session")
def shopee_sdk() -> Run:
    """Runs ``driver.mjs`` with a plan; installs the pinned SDK with ``npm ci`` the first time."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the Shopee SDK fidelity tests need Node.js 20+ and npm on PATH; neither may be missing")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major[1]) < 20:
        pytest.fail(f"the Shopee SDK needs Node.js 20 or newer, found {version}")
    if not SDK_PACKAGE.exists():
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=SDK_DIR, capture_output=True, text=True, timeout=600
        )
        if installed.returncode != 0:
            pytest.fail(f"npm ci in {SDK_DIR} failed ({installed.returncode}):\n{installed.stderr[-3000:]}")
    installed_version = json.loads(SDK_PACKAGE.read_text())["version"]
    if installed_version != _pinned_version():
        pytest.fail(
            f"{SDK_PACKAGE} is {installed_version}, the lock pins {_pinned_version()}: delete node_modules"
        )

    def run(plan: dict[str, Any]) -> dict[str, Any]:
        done = subprocess.run(
            [node, str(SDK_DIR / "driver.mjs")],
            input=json.dumps(plan),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0 or not done.stdout:
            pytest.fail(f"the SDK driver crashed ({done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(done.stdout)

    return run


def plan_for(sandbox: ShopeeSandbox, **plan: Any) -> dict[str, Any]:
    """A plan with the sandbox's credentials; the SDK's ``base_url`` is the emulator's ``/api/v2``."""
    config = sandbox.config
    return {
        "base_url": sandbox.sdk_base_url,
        "sandbox_url": sandbox.url,
        "partner_id": config.partner_id,
        "partner_key": config.partner_key,
        "shop_id": config.shop_id,
        "access_token": config.access_token,
        "refresh_token": config.refresh_token,
        **plan,
    }


def test_the_sdk_signer_reproduces_the_documented_vectors(shopee_sdk):
    """The reference's vectors (key ``test_partner_key``): the SDK's signer and the emulator's agree on them."""
    from media_upload.protocols.shopee import sign

    token, shop = "59777174636562737266615546704c6d", "14701711"
    bases = [
        ["2001887", "/api/v2/shop/get_shop_info", "1655714431", token, shop],
        ["2001887", "/api/v2/media_space/init_video_upload", "1655714431", token, shop],
        ["2001887", "/api/v2/media_space/upload_video_part", "1655714431"],
        ["2001887", "/api/v2/auth/token/get", "1655714431"],
    ]
    expected = [
        "9fdae5aeed86e753249982ec04aa54339280f12d3f456b9e3f7d8ee91e66a2b3",
        "9696d673bc8d82fc1192a962457de3eaa1b2850640913836e606b8a5a086e39c",
        "4e8036870a7ddbccc3c7b8f75691f0298def99ce27f685eb847e8b81434b8e8d",
        "4347600f52b50a77f5ecee90bf489adf3cec2d59d3c2febe004674f37def5451",
    ]
    answer = shopee_sdk({"mode": "sign", "partner_key": "test_partner_key", "bases": bases})
    assert answer == {"ok": True, "result": expected}
    assert [sign("test_partner_key", *base) for base in bases] == expected


def test_the_sdk_uploads_a_video_waits_for_it_and_puts_it_on_an_item(
    shopee_sdk, make_shopee_sandbox, sample_video
):
    sandbox = make_shopee_sandbox(transcode_seconds=0.5)
    path = sample_video(9 * MiB + 12_345, seed=5, duration_seconds=15)
    data = path.read_bytes()
    answer = shopee_sdk(
        plan_for(
            sandbox,
            mode="flow",
            video_path=str(path),
            part_bytes=4 * MiB,
            timeout_ms=15_000,
            poll_ms=100,
            item=sample_item("Red dress"),
        )
    )
    assert answer["ok"], answer
    flow = answer["result"]
    # One explicit refresh, and one the SDK did itself when its token was refused mid-flow.
    assert flow["refresh"] == {"rotated": True, "expire_in": 14400, "shop_id": sandbox.config.shop_id}
    assert flow["expired_tokens"] >= 1 and flow["auto_refreshed"] is True
    assert flow["parts"] == 3
    assert flow["statuses"][-1] == "SUCCEEDED" and set(flow["statuses"]) <= {"TRANSCODING", "SUCCEEDED"}
    info = flow["result"]["video_info"]
    assert info["duration"] == 15 and info["video_url_list"][0]["video_url_region"] == "SG"
    assert flow["updated_video_info"] == flow["item"]["video_info"]
    assert flow["item"]["video_info"][0]["video_url"] == info["video_url_list"][0]["video_url"]

    backend = sandbox.backend
    upload = backend.snapshot()["uploads"][flow["video_upload_id"]]
    assert upload["status"] == "SUCCEEDED" and upload["video_md5"] == hashlib.md5(data).hexdigest()
    assert [p["size"] for p in upload["parts"].values()] == [4 * MiB, 4 * MiB, MiB + 12_345]
    assert isinstance(upload["upload_cost_ms"], int)
    # What the SDK sent: Shop-signed parts with their fields as form fields, nothing the emulator had to bend.
    log = list(backend.request_log)
    parts = [e for e in log if e["api"].endswith("/upload_video_part")]
    assert [(e["sign_form"], e["error"], e["notes"]) for e in parts] == [("shop", "", [])] * 3
    refused = [e for e in log if e["error"]]
    assert [(e["api"], e["error"]) for e in refused] == [
        ("/api/v2/media_space/get_video_upload_result", "invalid_acceess_token")
    ]
    assert [e["api"] for e in log].count("/api/v2/auth/access_token/get") == 2
    # Rotation: the refresh token the SDK started with is revoked.
    driver = ShopeeDriver(sandbox)
    old = {
        "refresh_token": sandbox.config.refresh_token,
        "partner_id": driver.partner_id,
        "shop_id": driver.shop_id,
    }
    assert driver.post("/api/v2/auth/access_token/get", old, shop=False)["error"] == "error_auth"


def test_the_sdk_reads_the_documented_errors(shopee_sdk, shopee_sandbox, sample_video):
    driver = ShopeeDriver(shopee_sandbox)
    data = sample_video(9 * MiB, duration_seconds=15).read_bytes()
    upload_id = driver.init(data)

    def call(
        manager: str, method: str, params: dict[str, Any], buffers: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        plan = plan_for(shopee_sandbox, mode="call", manager=manager, method=method, params=params)
        plan["buffers"] = list(buffers)
        return shopee_sdk(plan)

    def part(seq: int, content: bytes, md5: str | None = None) -> dict[str, Any]:
        import base64

        params = {
            "video_upload_id": upload_id,
            "part_seq": seq,
            "content_md5": md5 or hashlib.md5(content).hexdigest(),
            "part_content": base64.b64encode(content).decode(),
        }
        return call("mediaSpace", "uploadVideoPart", params, ("part_content",))

    short = part(0, data[:1000])
    assert (short["ok"], short["error"]) == (False, "product.error_invalid_part_size")
    assert "exactly 4194304" in short["message"]
    wrong_md5 = part(0, data[: 4 * MiB], md5=hashlib.md5(b"x").hexdigest())
    assert (wrong_md5["ok"], wrong_md5["error"]) == (False, "product.error_param")
    assert part(9, data[:10])["error"] == "product.error_invalid_part_seq"
    assert part(0, data[: 4 * MiB])["ok"] is True

    unknown = call("mediaSpace", "getVideoUploadResult", {"video_upload_id": "sg_unknown"})
    assert (unknown["ok"], unknown["error"], unknown["status"]) == (
        False,
        "product.error_invalid_upload_id",
        200,
    )
    pending = call("mediaSpace", "getVideoUploadResult", {"video_upload_id": upload_id})
    assert pending["result"]["response"] == {"status": "INITIATED", "message": ""}
    item_id = driver.add_item(sample_item("Cap"))["response"]["item_id"]
    early = call("product", "updateItem", {"item_id": item_id, "video_upload_id": [upload_id]})
    assert (early["ok"], early["error"]) == (False, "product.error_video_info_not_found")
    cancelled = call("mediaSpace", "cancelVideoUpload", {"video_upload_id": upload_id})
    assert cancelled["ok"] is True
    assert driver.status(upload_id) == "CANCELLED"


@pytest.mark.parametrize(
    ("client_part_bytes", "error"), [(4 * MiB, "product.error_invalid_part_size"), (4_000_000, None)]
)
def test_the_part_size_reading_decides_whether_the_sdk_gets_through(
    shopee_sdk, make_shopee_sandbox, sample_video, client_part_bytes, error
):
    """With the emulator set to the decimal reading, 4 MiB parts fail and 4,000,000-byte parts pass: a
    client's part size is a real choice, tested both ways."""
    sandbox = make_shopee_sandbox(part_bytes=4_000_000, transcode_seconds=0)
    path = sample_video(9 * MiB, seed=2, duration_seconds=20)
    plan = plan_for(
        sandbox,
        mode="flow",
        video_path=str(path),
        part_bytes=client_part_bytes,
        timeout_ms=10_000,
        poll_ms=50,
        item=sample_item("Boot"),
    )
    answer = shopee_sdk(plan)
    if error is None:
        assert answer["ok"], answer
        assert answer["result"]["result"]["status"] == "SUCCEEDED"
    else:
        assert (answer["ok"], answer["error"]) == (False, error)
