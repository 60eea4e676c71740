"""Drivers that speak to the emulators through the platforms' official clients, or (Shopee, which ships none)
through plain HTTP signed here from the documented formula; the plugin's app on loopback; waiting helpers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from media_upload.sandbox.huawei_vod import HuaweiVodSandbox
from media_upload.sandbox.lazada import LazadaSandbox
from media_upload.sandbox.shopee import ShopeeSandbox

COVER_URL = "https://sg-live-02.slatic.net/p/ae0f37dbf1c0ef8c560a0f0cfbaac3b6.png"
_DEFAULT = object()


def wait_for(condition: Callable[[], Any], timeout: float = 15) -> Any:
    """``condition()`` once it is true (polled every 50 ms); fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def first_event(trigger: Any, timeout: float = 20) -> dict:
    """The payload of the first event a trigger yields."""

    async def run() -> dict:
        return (await asyncio.wait_for(trigger.run().__anext__(), timeout)).payload

    return asyncio.run(run())


@pytest.fixture
def plugin_app(ledger_connection: Callable[..., Any]) -> Iterator[str]:
    """The plugin's app (the push receivers included) served on loopback, keeping states in a SQLite ledger;
    its base URL."""
    ledger_connection("sqlite")
    from media_upload.sandbox.server import SandboxServer
    from media_upload.ui.app import create_app

    server = SandboxServer(create_app())
    yield server.start()
    server.stop()


class LazopDriver:
    """Calls the emulator exactly as a seller's script around the official SDK would."""

    def __init__(self, lazop: ModuleType, sandbox: LazadaSandbox, app_secret: str | None = None) -> None:
        self.lazop = lazop
        self.sandbox = sandbox
        self.client = lazop.LazopClient(
            sandbox.gateway_url, sandbox.config.app_key, app_secret or sandbox.config.app_secret
        )
        self.access_token = sandbox.config.access_token

    def call(
        self,
        api: str,
        params: dict[str, str] | None = None,
        files: dict[str, bytes] | None = None,
        method: str = "POST",
        token: Any = _DEFAULT,
    ) -> dict[str, Any]:
        request = self.lazop.LazopRequest(api, method)
        for name, value in (params or {}).items():
            request.add_api_param(name, value)
        for name, value in (files or {}).items():
            request.add_file_param(name, value)
        response = self.client.execute(request, self.access_token if token is _DEFAULT else token)
        return response.body

    def init(self, size: int, name: str = "video.mp4") -> str:
        body = self.call("/media/video/block/create", {"fileName": name, "fileBytes": str(size)})
        assert body["code"] == "0", body
        return body["upload_id"]

    def upload_blocks(self, upload_id: str, data: bytes, block_size: int) -> list[dict[str, Any]]:
        blocks = [data[i : i + block_size] for i in range(0, len(data), block_size)]
        parts = []
        for number, block in enumerate(blocks):
            body = self.call(
                "/media/video/block/upload",
                {"uploadId": upload_id, "blockNo": str(number), "blockCount": str(len(blocks))},
                files={"file": block},
            )
            assert body["code"] == "0", body
            parts.append({"partNumber": number + 1, "eTag": body["e_tag"]})
        return parts

    def commit(self, upload_id: str, parts: list[dict[str, Any]], title: str = "hello", **extra: str) -> dict:
        params = {"uploadId": upload_id, "parts": json.dumps(parts), "title": title, "coverUrl": COVER_URL}
        return self.call("/media/video/block/commit", {**params, **extra})

    def upload(self, path: Path, block_size: int = 3_000_000, title: str = "hello") -> str:
        data = path.read_bytes()
        upload_id = self.init(len(data), path.name)
        body = self.commit(upload_id, self.upload_blocks(upload_id, data, block_size), title)
        assert body["code"] == "0", body
        return body["video_id"]

    def state(self, video_id: str) -> str:
        body = self.call("/media/video/get", {"videoId": video_id}, method="GET")
        assert body["code"] == "0", body
        return body["state"]


@pytest.fixture
def driver(lazop: ModuleType, lazada_sandbox: LazadaSandbox) -> LazopDriver:
    return LazopDriver(lazop, lazada_sandbox)


class VodDriver:
    """Drives the VOD emulator with the official ``huaweicloudsdkvod`` client and ``requests`` on signed URLs,
    as Huawei's own Python demo does."""

    def __init__(
        self, sandbox: HuaweiVodSandbox | None, secret_key: str | None = None, **endpoint: str
    ) -> None:
        """Drive ``sandbox`` (optionally with another SK), or any endpoint given as ``endpoint=, ak=, sk=,
        project_id=`` keywords."""
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkvod.v1 import VodClient

        if sandbox is not None:
            config = sandbox.config
            endpoint = {
                "endpoint": sandbox.endpoint,
                "ak": config.ak,
                "sk": config.sk,
                "project_id": config.project_id,
            }
        credentials = BasicCredentials(endpoint["ak"], secret_key or endpoint["sk"], endpoint["project_id"])
        self.client = (
            VodClient.new_builder().with_credentials(credentials).with_endpoint(endpoint["endpoint"]).build()
        )
        self.sandbox = sandbox

    def create(self, name: str = "video.mp4", title: str = "t", **fields: Any) -> Any:
        from huaweicloudsdkvod.v1 import CreateAssetByFileUploadReq, CreateAssetByFileUploadRequest

        fields.setdefault("video_type", "MP4")
        fields.setdefault("auto_publish", 1)
        body = CreateAssetByFileUploadReq(title=title, video_name=name, **fields)
        return self.client.create_asset_by_file_upload(CreateAssetByFileUploadRequest(body=body))

    def authority(self, asset: Any, http_verb: str, **query: Any) -> str:
        from huaweicloudsdkvod.v1 import ShowAssetTempAuthorityRequest

        request = ShowAssetTempAuthorityRequest(
            http_verb=http_verb, bucket=asset.target.bucket, object_key=asset.target.object, **query
        )
        return self.client.show_asset_temp_authority(request).sign_str

    def initiate(self, asset: Any, content_type: str = "video/mp4") -> str:
        response = requests.post(
            self.authority(asset, "POST", content_type=content_type), headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text
        return re.search("<UploadId>(.+?)</UploadId>", response.text)[1]

    def put_part(self, asset: Any, upload_id: str, number: int, data: bytes) -> requests.Response:
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        url = self.authority(asset, "PUT", upload_id=upload_id, part_number=number, content_md5=md5)
        return requests.put(
            url, data=data, headers={"Content-Type": "application/octet-stream", "Content-MD5": md5}
        )

    def complete(self, asset: Any, upload_id: str, parts: list[tuple[int, str]]) -> requests.Response:
        body = (
            "<CompleteMultipartUpload>"
            + "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in parts)
            + "</CompleteMultipartUpload>"
        )
        url = self.authority(asset, "POST", upload_id=upload_id)
        return requests.post(url, data=body, headers={"Content-Type": "application/xml"})

    def upload(self, asset: Any, data: bytes, part_size: int = 200 * 1024) -> str:
        """Initiate, every part, complete; returns the object's ETag."""
        upload_id = self.initiate(asset)
        parts = []
        for number, offset in enumerate(range(0, len(data), part_size), start=1):
            response = self.put_part(asset, upload_id, number, data[offset : offset + part_size])
            assert response.status_code == 200, response.text
            parts.append((number, response.headers["ETag"]))
        response = self.complete(asset, upload_id, parts)
        assert response.status_code == 200, response.text
        return re.search("<ETag>(.+?)</ETag>", response.text)[1]

    def confirm(self, asset_id: str, status: str = "CREATED") -> Any:
        from huaweicloudsdkvod.v1 import ConfirmAssetUploadReq, ConfirmAssetUploadRequest

        return self.client.confirm_asset_upload(
            ConfirmAssetUploadRequest(body=ConfirmAssetUploadReq(asset_id=asset_id, status=status))
        )

    def status(self, asset_id: str) -> str:
        from huaweicloudsdkvod.v1 import ShowAssetMetaRequest

        return (
            self.client.show_asset_meta(ShowAssetMetaRequest(asset_id=[asset_id])).asset_info_array[0].status
        )


@pytest.fixture
def vod(huawei_vod_sandbox: HuaweiVodSandbox) -> VodDriver:
    return VodDriver(huawei_vod_sandbox)


class ShopeeDriver:
    """Calls the Shopee emulator over HTTP as the API pages' samples do: common parameters in the query, JSON
    bodies, multipart parts. The sign is computed here from the documented base string, not with the
    provider's protocol module, so a mistake there cannot hide behind the same mistake here."""

    PART = 4 * 1024 * 1024

    def __init__(self, sandbox: ShopeeSandbox) -> None:
        self.sandbox = sandbox
        config = sandbox.config
        self.partner_id, self.partner_key, self.shop_id = (
            config.partner_id,
            config.partner_key,
            config.shop_id,
        )
        self.access_token = config.access_token

    def signed(self, path: str, shop: bool = True, **overrides: Any) -> dict[str, Any]:
        """The common parameters of ``path``, Shop-signed (or Public with ``shop=False``); ``overrides`` replace
        or (as None) remove any of them after signing."""
        stamp = int(
            self.sandbox.backend.clock()
        )  # the client's clock agrees with the gateway's (tests move it)
        base = f"{self.partner_id}{path}{stamp}" + (f"{self.access_token}{self.shop_id}" if shop else "")
        params: dict[str, Any] = {"partner_id": self.partner_id, "timestamp": stamp}
        if shop:
            params.update(access_token=self.access_token, shop_id=self.shop_id)
        params["sign"] = hmac.new(self.partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()
        params.update(overrides)
        return {name: value for name, value in params.items() if value is not None}

    def post(
        self, path: str, body: Any = None, shop: bool = True, raw: bool = False, **overrides: Any
    ) -> Any:
        response = requests.post(
            f"{self.sandbox.url}{path}", params=self.signed(path, shop, **overrides), json=body, timeout=30
        )
        return response if raw else response.json()

    def get(
        self, path: str, params: Any = None, shop: bool = True, raw: bool = False, **overrides: Any
    ) -> Any:
        query = [*self.signed(path, shop, **overrides).items(), *(params or [])]
        response = requests.get(f"{self.sandbox.url}{path}", params=query, timeout=30)
        return response if raw else response.json()

    def init(self, data: bytes, **body: Any) -> str:
        answer = self.post(
            "/api/v2/media_space/init_video_upload",
            {"file_md5": hashlib.md5(data).hexdigest(), "file_size": len(data), **body},
        )
        assert answer["error"] == "", answer
        return answer["response"]["video_upload_id"]

    def part(
        self,
        video_upload_id: str,
        seq: int,
        data: bytes,
        md5: str | None = None,
        shop: bool = True,
        field: str = "part_content",
        filename: str | None = "part_content",
        **overrides: Any,
    ) -> dict[str, Any]:
        """One upload_video_part as the page's Python sample sends it: the part as a file, the rest as fields."""
        fields = {
            "video_upload_id": video_upload_id,
            "part_seq": str(seq),
            "content_md5": md5 or hashlib.md5(data).hexdigest(),
        }
        files = {field: (filename, data, "application/octet-stream")}
        path = "/api/v2/media_space/upload_video_part"
        response = requests.post(
            f"{self.sandbox.url}{path}",
            params=self.signed(path, shop, **overrides),
            data=fields,
            files=files,
            timeout=60,
        )
        return response.json()

    def parts(self, video_upload_id: str, data: bytes, part_bytes: int = PART) -> list[int]:
        seqs = []
        for seq, offset in enumerate(range(0, len(data), part_bytes)):
            answer = self.part(video_upload_id, seq, data[offset : offset + part_bytes])
            assert answer["error"] == "", answer
            seqs.append(seq)
        return seqs

    def complete(
        self, video_upload_id: str, seqs: list[int], cost: Any = 1200, **body: Any
    ) -> dict[str, Any]:
        return self.post(
            "/api/v2/media_space/complete_video_upload",
            {
                "video_upload_id": video_upload_id,
                "part_seq_list": seqs,
                "report_data": {"upload_cost": cost},
                **body,
            },
        )

    def upload(self, data: bytes, part_bytes: int = PART) -> str:
        """init, every part, complete: the upload id."""
        video_upload_id = self.init(data)
        answer = self.complete(video_upload_id, self.parts(video_upload_id, data, part_bytes))
        assert answer["error"] == "", answer
        return video_upload_id

    def result(self, video_upload_id: str) -> dict[str, Any]:
        return self.get("/api/v2/media_space/get_video_upload_result", [("video_upload_id", video_upload_id)])

    def status(self, video_upload_id: str) -> str:
        answer = self.result(video_upload_id)
        assert answer["error"] == "", answer
        return answer["response"]["status"]

    def wait(self, video_upload_id: str, final: str, timeout: float = 10) -> list[str]:
        """Poll until ``final``: the statuses seen, in order."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(video_upload_id)
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == final:
                return seen
            time.sleep(0.05)
        raise AssertionError(f"upload {video_upload_id} went through {seen}, never {final}")

    def add_item(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.post("/api/v2/product/add_item", body)

    def update_item(self, item_id: int, **body: Any) -> dict[str, Any]:
        return self.post("/api/v2/product/update_item", {"item_id": item_id, **body})

    def items(self, *values: Any) -> dict[str, Any]:
        return self.get("/api/v2/product/get_item_base_info", [("item_id_list", v) for v in values])


@pytest.fixture
def shopee(shopee_sandbox: ShopeeSandbox) -> ShopeeDriver:
    return ShopeeDriver(shopee_sandbox)


@pytest.fixture
def marketplaces(
    make_lazada_sandbox, make_shopee_sandbox, make_huawei_vod_sandbox, monkeypatch, ledger_connection
):
    """An emulator of each marketplace (quick audits), their default connections and a SQLite ledger."""
    from tests.conftest import _connection_setter

    lazada = make_lazada_sandbox(audit_seconds=0.3)
    shopee = make_shopee_sandbox(transcode_seconds=0.3)
    vod = make_huawei_vod_sandbox(transcode_seconds=0.3)
    for sandbox, conn_id in (
        (lazada, "lazada_default"),
        (shopee, "shopee_default"),
        (vod, "huawei_vod_default"),
    ):
        _connection_setter(monkeypatch, conn_id)(sandbox)
    ledger_connection("sqlite")
    return lazada, shopee, vod
