"""Drivers that speak to the emulators only through the platforms' official clients."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from media_upload.sandbox.huawei_vod import HuaweiVodSandbox
from media_upload.sandbox.lazada import LazadaSandbox

COVER_URL = "https://sg-live-02.slatic.net/p/ae0f37dbf1c0ef8c560a0f0cfbaac3b6.png"
_DEFAULT = object()


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
