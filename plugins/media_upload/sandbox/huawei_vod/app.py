"""HTTP face of the VOD emulator: the VOD API, the OBS bucket of its signed URLs, and inspection routes."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from media_upload.sandbox.core import add_inspection_routes
from media_upload.sandbox.huawei_vod.backend import HuaweiVodBackend
from media_upload.sandbox.huawei_vod.errors import VodErrorReply, illegal_parameter
from media_upload.sandbox.huawei_vod.obs import add_obs_routes
from media_upload.sandbox.server import CutOffResponse, gateway_page

log = logging.getLogger(__name__)


def _request_id() -> str:
    return secrets.token_hex(16)


def create_app(backend: HuaweiVodBackend) -> FastAPI:
    app = FastAPI(
        title="Huawei Cloud VOD sandbox",
        description="Local emulator of Huawei Cloud VOD (upload APIs) and of the OBS bucket its signed URLs point at.",
        docs_url="/_sandbox/docs",
        redoc_url=None,
        openapi_url="/_sandbox/openapi.json",
    )

    async def vod(request: Request, project_id: str, operation: str, handler: Callable[..., Any]) -> Response:
        """Authenticate, apply faults, run ``handler(query_pairs, json_body)`` and answer in VOD's shape."""
        request_id, started = _request_id(), backend.clock()
        body = await request.body()
        query = parse_qsl(request.url.query, keep_blank_values=True)
        drop, chance = False, backend.dice.roll(operation)
        if chance in ("unavailable", "reset"):
            backend.log_request(request.method, str(request.url), operation, 503, chance, started)
            return gateway_page(503) if chance == "unavailable" else CutOffResponse()
        try:
            backend.authenticate_vod(
                request.method, request.url.path, query, request.headers, body, project_id
            )
            if chance == "throttle" or backend.limit_calls(f"project {project_id}", backend.config.vod_limit):
                raise VodErrorReply(
                    429, "APIG.0308", "The throttling threshold has been reached: policy user over ratelimit"
                )
            if (error := backend.injected_error(operation)) is not None:
                raise error
            drop = backend.take_fault(operation, ["drop"]) is not None or chance == "drop"
            try:
                payload = json.loads(body) if body else {}
            except ValueError:
                raise illegal_parameter("request body (not JSON)") from None
            if not isinstance(payload, dict):
                raise illegal_parameter("request body (a JSON object)")
            result = await run_in_threadpool(handler, query, payload)
            status, content = 200, result
        except VodErrorReply as exc:
            status, content = exc.status, {"error_code": exc.code, "error_msg": exc.message}
            if exc.code.startswith("APIG"):
                content["request_id"] = request_id
        except Exception:
            log.exception("sandbox failure in %s", operation)
            status, content = 500, {"error_code": "VOD.10051", "error_msg": "Internal server error"}
        backend.log_request(
            request.method, str(request.url), operation, status, content.get("error_code"), started
        )
        if chance == "slow":
            await asyncio.sleep(backend.dice.slow_seconds)
        if drop:
            return CutOffResponse()
        return JSONResponse(content, status_code=status, headers={"X-Request-Id": request_id})

    @app.post("/v1.0/{project_id}/asset", tags=["vod"])
    async def create_asset(project_id: str, request: Request) -> Response:
        return await vod(request, project_id, "CreateAsset", lambda q, body: backend.create_asset(body))

    @app.delete("/v1.0/{project_id}/asset", tags=["vod"])
    async def delete_assets(project_id: str, request: Request) -> Response:
        return await vod(request, project_id, "DeleteAssets", lambda q, body: backend.delete_assets(q))

    @app.get("/v1.1/{project_id}/asset/authority", tags=["vod"])
    async def temp_authority(project_id: str, request: Request) -> Response:
        def handler(query: list[tuple[str, str]], body: Any) -> dict[str, str]:
            expired = backend.take_fault("ShowAssetTempAuthority", ["expired_sign"]) is not None
            return backend.temp_authority(dict(query), expired=expired)

        return await vod(request, project_id, "ShowAssetTempAuthority", handler)

    @app.get("/v1.0/{project_id}/asset/authority", tags=["vod"])
    async def temp_authority_v10(project_id: str, request: Request) -> Response:
        return await vod(
            request, project_id, "ShowAssetTempAuthority", lambda q, body: backend.temp_authority_v10(dict(q))
        )

    @app.post("/v1.0/{project_id}/asset/status/uploaded", tags=["vod"])
    async def confirm(project_id: str, request: Request) -> Response:
        return await vod(
            request, project_id, "ConfirmAssetUpload", lambda q, body: backend.confirm_asset_upload(body)
        )

    @app.get("/v1.0/{project_id}/asset/info", tags=["vod"])
    async def asset_meta(project_id: str, request: Request) -> Response:
        return await vod(request, project_id, "ShowAssetMeta", lambda q, body: backend.show_asset_meta(q))

    @app.get("/v1.0/{project_id}/asset/details", tags=["vod"])
    async def asset_detail(project_id: str, request: Request) -> Response:
        return await vod(
            request, project_id, "ShowAssetDetail", lambda q, body: backend.show_asset_detail(dict(q))
        )

    @app.get("/v1.0/{project_id}/asset/list", tags=["vod"])
    async def asset_list(project_id: str, request: Request) -> Response:
        return await vod(request, project_id, "ListAssetList", lambda q, body: backend.list_assets(q))

    # ------------------------------------------------------------------ sandbox

    add_inspection_routes(app, backend)

    @app.post("/_sandbox/huawei-vod/assets/{asset_id}/outcome", tags=["sandbox"])
    async def asset_outcome(asset_id: str, request: Request) -> JSONResponse:
        """Decide how a confirmed asset ends: ``{"outcome": "TRANSCODE_FAILED", "finish_now": false}``."""
        spec = await request.json()
        try:
            asset = backend.set_asset_outcome(
                asset_id, str(spec["outcome"]), bool(spec.get("finish_now", False))
            )
        except KeyError:
            return JSONResponse({"error": f"no asset {asset_id} or no outcome given"}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"asset_id": asset_id, "outcome": asset.outcome.value if asset.outcome else None})

    @app.get("/_sandbox/huawei-vod/pushes", tags=["sandbox"])
    def pushes(limit: int = 100) -> list[dict[str, Any]]:
        """The most recent notification deliveries (asset, event, status, attempt, outcome), newest last."""
        return list(backend.notify.log)[-limit:] if backend.notify is not None else []

    @app.get("/_sandbox/huawei-vod/play/{asset_id}/index.mp4", tags=["sandbox"])
    def play(asset_id: str) -> Response:
        """The play URL of a published asset: its stored object."""
        asset = backend.assets.get(asset_id)
        if asset is None or (asset.bucket, asset.object_key) not in backend.obs.objects:
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(backend.obs.object_path(asset.bucket, asset.object_key), media_type="video/mp4")

    @app.get("/", tags=["sandbox"])
    def index() -> dict[str, Any]:
        return {
            "service": "Huawei Cloud VOD sandbox",
            "endpoint": backend.public_url,
            "project_id": backend.config.project_id,
            "bucket": backend.config.bucket,
            "inspect": f"{backend.public_url}/_sandbox/huawei-vod/state",
            "docs": f"{backend.public_url}/_sandbox/docs",
        }

    add_obs_routes(app, backend)  # last: its path catches every other one

    return app
