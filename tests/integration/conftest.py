"""A driver that speaks to the Lazada emulator only through the official ``lazop_sdk`` client."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

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
