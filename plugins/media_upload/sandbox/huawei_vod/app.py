"""HTTP face of the VOD emulator: the VOD API, the OBS bucket of its signed URLs, and inspection routes."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import tempfile
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from media_upload.protocols.huawei_vod import parse_obs_query
from media_upload.sandbox.huawei_vod.backend import HuaweiVodBackend
from media_upload.sandbox.huawei_vod.errors import ObsErrorReply, VodErrorReply, illegal_parameter
from media_upload.sandbox.server import CutOffResponse

log = logging.getLogger(__name__)
_SPOOL = 8 * 1024 * 1024


def _unavailable() -> Response:
    """What a load balancer in front of VOD or OBS answers when the service behind it is down."""
    return HTMLResponse("<html><body><h1>503 Service Unavailable</h1></body></html>", status_code=503)


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
            return _unavailable() if chance == "unavailable" else CutOffResponse()
        try:
            backend.authenticate_vod(
                request.method, request.url.path, query, request.headers, body, project_id
            )
            if chance == "throttle":
                raise VodErrorReply(429, "APIG.0308", "The request is throttled.")
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

    @app.get("/_sandbox/huawei-vod/state", tags=["sandbox"])
    def state() -> dict[str, Any]:
        """Assets (status, stored object size and MD5), multipart uploads, request counts, pending faults."""
        return backend.snapshot()

    @app.get("/_sandbox/huawei-vod/requests", tags=["sandbox"])
    def requests_log(limit: int = 100) -> list[dict[str, Any]]:
        """The most recent requests, signatures masked, newest last."""
        return list(backend.request_log)[-limit:]

    @app.post("/_sandbox/huawei-vod/faults", tags=["sandbox"])
    async def add_fault(request: Request) -> JSONResponse:
        """Queue a fault: ``{"kind": "APIG.0308"|"VOD.10051"|"VOD.10127"|"SlowDown"|"InternalError"|
        "ServiceUnavailable"|"drop"|"expired_sign", "operation": "UploadPart" or "*", "count": 1}``."""
        spec = await request.json()
        try:
            fault = backend.add_fault(
                str(spec["kind"]), str(spec.get("operation", "*")), int(spec.get("count", 1))
            )
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"bad fault {spec!r}: {exc}"}, status_code=400)
        return JSONResponse({"queued": fault.__dict__})

    @app.delete("/_sandbox/huawei-vod/faults", tags=["sandbox"])
    def clear_faults() -> dict[str, int]:
        cleared = len(backend.faults)
        backend.faults.clear()
        return {"cleared": cleared}

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

    @app.get("/_sandbox/huawei-vod/play/{asset_id}/index.mp4", tags=["sandbox"])
    def play(asset_id: str) -> Response:
        """The play URL of a published asset: its stored object."""
        asset = backend.assets.get(asset_id)
        if asset is None or (asset.bucket, asset.object_key) not in backend.objects:
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(backend.object_path(asset.bucket, asset.object_key), media_type="video/mp4")

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

    # ---------------------------------------------------------------------- OBS

    @app.api_route("/{bucket}/{key:path}", methods=["GET", "PUT", "POST", "DELETE"], include_in_schema=False)
    async def obs(bucket: str, key: str, request: Request) -> Response:
        request_id, started = _request_id(), backend.clock()
        query = parse_obs_query(request.url.query)
        params = {name: value or "" for name, value in query}
        method = request.method
        operation = {
            ("POST", True, False): "InitiateMultipartUpload",
            ("PUT", False, True): "UploadPart",
            ("GET", False, True): "ListParts",
            ("POST", False, True): "CompleteMultipartUpload",
            ("DELETE", False, True): "AbortMultipartUpload",
            ("PUT", False, False): "PutObject",
        }.get((method, "uploads" in params, "uploadId" in params), "Unsupported")
        headers = {"x-obs-request-id": request_id, "x-obs-id-2": request_id}
        drop, chance = False, backend.dice.roll(operation)
        if chance in ("unavailable", "reset"):
            backend.log_request(method, str(request.url), operation, 503, chance, started)
            return _unavailable() if chance == "unavailable" else CutOffResponse()
        try:
            if chance == "throttle":
                raise ObsErrorReply(503, "SlowDown", "Please reduce your request rate.")
            if operation == "Unsupported":
                raise ObsErrorReply(
                    405, "MethodNotAllowed", f"{method} is not supported on this resource by the sandbox"
                )
            backend.authenticate_obs(method, bucket, key, query, request.headers)
            if (error := backend.injected_error(operation)) is not None:
                raise error
            drop = backend.take_fault(operation, ["drop"]) is not None or chance == "drop"
            content_md5 = request.headers.get("content-md5")
            if operation in ("UploadPart", "PutObject"):
                with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as spool:
                    async for chunk in request.stream():
                        spool.write(chunk)
                    spool.seek(0)
                    if operation == "UploadPart":
                        etag = await run_in_threadpool(
                            backend.upload_part,
                            bucket,
                            key,
                            params["uploadId"],
                            params.get("partNumber", ""),
                            spool,
                            content_md5,
                        )
                    else:
                        etag = await run_in_threadpool(backend.put_object, bucket, key, spool, content_md5)
                response: Response = Response(status_code=200, headers={**headers, "ETag": etag})
            elif operation == "InitiateMultipartUpload":
                upload_id = backend.initiate_multipart(bucket, key, request.headers.get("content-type", ""))
                xml = (
                    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                    '<InitiateMultipartUploadResult xmlns="http://obs.myhwclouds.com/doc/2015-06-30/">'
                    f"<Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{upload_id}</UploadId>"
                    "</InitiateMultipartUploadResult>"
                )
                response = Response(xml, media_type="application/xml", headers=headers)
            elif operation == "ListParts":
                xml = backend.list_parts(bucket, key, params["uploadId"], params)
                response = Response(xml, media_type="application/xml", headers=headers)
            elif operation == "CompleteMultipartUpload":
                body = await request.body()
                xml = await run_in_threadpool(
                    backend.complete_multipart, bucket, key, params["uploadId"], body
                )
                response = Response(xml, media_type="application/xml", headers=headers)
            else:
                backend.abort_multipart(bucket, key, params["uploadId"])
                response = Response(status_code=204, headers=headers)
            code = None
        except ObsErrorReply as exc:
            code = exc.code
            response = Response(
                exc.xml(f"/{bucket}/{key}", request_id),
                status_code=exc.status,
                media_type="application/xml",
                headers=headers,
            )
        except Exception:
            log.exception("sandbox failure in %s", operation)
            code = "InternalError"
            failure = ObsErrorReply(
                500, "InternalError", "We encountered an internal error. Please try again."
            )
            response = Response(
                failure.xml(f"/{bucket}/{key}", request_id), status_code=500, media_type="application/xml"
            )
        backend.log_request(method, str(request.url), operation, response.status_code, code, started)
        if chance == "slow":
            await asyncio.sleep(backend.dice.slow_seconds)
        return CutOffResponse() if drop and code is None else response

    return app
