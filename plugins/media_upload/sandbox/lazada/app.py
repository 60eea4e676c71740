"""HTTP face of the Lazada emulator: the ``/rest`` gateway plus ``/_sandbox/lazada`` inspection routes."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import IO, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from media_upload.sandbox.core import add_inspection_routes
from media_upload.sandbox.lazada.backend import ROUTES, LazadaBackend
from media_upload.sandbox.lazada.errors import ErrorReply
from media_upload.sandbox.server import CutOffResponse, gateway_page

log = logging.getLogger(__name__)


def _request_id() -> str:
    return secrets.token_hex(13)[:25]


class Envelopes:
    """Builds response bodies in the documented shapes, honouring the configured variants."""

    def __init__(self, backend: LazadaBackend) -> None:
        self.config = backend.config

    def _values(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.config.success_as_string:
            return body
        return {
            key: ("true" if value else "false")
            if isinstance(value, bool)
            else str(value)
            if isinstance(value, int)
            else value
            for key, value in body.items()
        }

    def success(self, style: str, fields: dict[str, Any]) -> dict[str, Any]:
        body = dict(fields)
        if style == "media":
            body.update(success=True, result_code="", result_message="")
        body.update(code="0", request_id=_request_id())
        return self._values(body)

    def error(self, exc: ErrorReply) -> dict[str, Any]:
        if exc.business and self.config.failure_shape == "result_code":
            body: dict[str, Any] = {
                "success": False,
                "result_code": exc.code,
                "result_message": exc.message,
                "code": "0",
            }
        else:
            body = {"type": exc.type, "code": exc.code, "message": exc.message}
            if exc.detail:
                body["detail"] = exc.detail
        body["request_id"] = _request_id()
        return self._values(body)


async def _read_params(request: Request) -> tuple[dict[str, str], dict[str, IO[bytes]], list[UploadFile]]:
    """Parameters from the query string and from an urlencoded or multipart body, as the gateway reads them."""
    params = dict(request.query_params.multi_items())
    files: dict[str, IO[bytes]] = {}
    uploads: list[UploadFile] = []
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        try:
            form = await request.form(max_files=16, max_fields=1000)
        except Exception as exc:  # a malformed body carries no parameters
            log.warning("unreadable request body: %s", exc)
            return params, files, uploads
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[name] = value.file
                uploads.append(value)
            else:
                params[name] = value
    return params, files, uploads


def create_app(backend: LazadaBackend) -> FastAPI:
    app = FastAPI(
        title="Lazada Open Platform sandbox",
        description="Local emulator of the LazOP gateway for Media Center video upload and product attach.",
        docs_url="/_sandbox/docs",
        redoc_url=None,
        openapi_url="/_sandbox/openapi.json",
    )
    envelopes = Envelopes(backend)

    @app.api_route("/rest/{api:path}", methods=["GET", "POST"], include_in_schema=False)
    async def gateway(request: Request, api: str) -> Response:
        started = backend.clock()
        api_path = "/" + api.strip("/")
        params, files, uploads = await _read_params(request)
        fault, code = None, "0"
        try:
            result = await run_in_threadpool(backend.call, api_path, params, files)
            fault = result.fault
            body = envelopes.success(ROUTES[api_path].style, result.body)
        except Exception as exc:
            if not isinstance(exc, ErrorReply):
                log.exception("sandbox failure on %s", api_path)
                exc = ErrorReply("1000", "Internal Application Error", type_="ISP")
            code, fault = exc.code, exc.fault
            body = envelopes.error(exc)
        finally:
            for upload in uploads:
                await upload.close()
        if fault is not None and fault.kind in ("http502", "http503"):
            status = int(fault.kind[4:])
            backend.log_request(request.method, api_path, params, f"HTTP {status}", started)
            return gateway_page(status)
        if fault is not None and fault.kind == "reset":
            backend.log_request(request.method, api_path, params, "reset", started)
            return CutOffResponse()
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        backend.log_request(request.method, api_path, params, code, started)
        if fault is not None and fault.kind == "drop":
            return CutOffResponse()
        return JSONResponse(body)

    add_inspection_routes(app, backend)

    @app.get("/_sandbox/lazada/pushes", tags=["sandbox"])
    def pushes(limit: int = 100) -> list[dict[str, Any]]:
        """The most recent push deliveries (video, state, attempt, outcome), newest last."""
        return list(backend.push.log)[-limit:] if backend.push is not None else []

    @app.post("/_sandbox/lazada/products", tags=["sandbox"])
    async def seed_products(request: Request) -> JSONResponse:
        """Create products without the gateway (no signature, no call limit): a JSON list of CreateProduct
        payloads (``media_upload.sandbox.lazada.products.sample_product_payload`` makes one) → CreateProduct's
        answers, in order; a refused payload answers 400 with Lazada's error and creates nothing after it."""
        payloads = await request.json()
        if not isinstance(payloads, list):
            return JSONResponse({"error": "send a JSON list of CreateProduct payloads"}, status_code=400)
        created = []
        for payload in payloads:
            try:
                created.append(backend.create_product({"payload": json.dumps(payload)}))
            except ErrorReply as exc:
                return JSONResponse(
                    {"created": created, "error": exc.code, "message": exc.message}, status_code=400
                )
        return JSONResponse({"created": created})

    @app.post("/_sandbox/lazada/auth-codes", tags=["sandbox"])
    def auth_code() -> dict[str, str]:
        """A fresh single-use authorization code for ``/auth/token/create``."""
        return {"code": backend.issue_auth_code()}

    @app.post("/_sandbox/lazada/tokens/expire", tags=["sandbox"])
    def expire_tokens() -> dict[str, int]:
        """Expire every access token now (refresh tokens stay valid)."""
        return {"expired": backend.expire_access_tokens()}

    @app.post("/_sandbox/lazada/videos/{video_id}/outcome", tags=["sandbox"])
    async def video_outcome(video_id: str, request: Request) -> JSONResponse:
        """Set how a video ends: ``{"outcome": "AUDIT_FAILED", "finish_now": false}``."""
        spec = await request.json()
        try:
            video = backend.set_video_outcome(
                video_id, str(spec["outcome"]), bool(spec.get("finish_now", False))
            )
        except KeyError:
            return JSONResponse({"error": f"no video {video_id} or no outcome given"}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"video_id": video_id, "outcome": video.outcome.value})

    @app.get("/_sandbox/lazada/videos/{video_id}/content", tags=["sandbox"])
    def video_content(video_id: str, auth_key: str = "") -> Response:
        """The assembled video file, as the signed ``video_url`` of GetVideo serves it."""
        video = backend.videos.get(video_id)
        if video is None or video.deleted or not secrets.compare_digest(auth_key, video.auth_key):
            return JSONResponse({"error": "not found or auth_key wrong"}, status_code=403)
        return FileResponse(backend.video_path(video_id), media_type="video/mp4")

    @app.get("/oauth/authorize", tags=["sandbox"])
    def authorize(
        client_id: str, redirect_uri: str, response_type: str = "code", state: str = ""
    ) -> Response:
        """The seller consent page, approved at once: redirects to ``redirect_uri`` with a ``code``."""
        if client_id != backend.config.app_key or response_type != "code":
            return JSONResponse({"error": "unknown client_id or response_type is not code"}, status_code=400)
        query = {"code": backend.issue_auth_code(), **({"state": state} if state else {})}
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", status_code=302)

    @app.get("/", tags=["sandbox"])
    def index() -> dict[str, Any]:
        return {
            "service": "Lazada Open Platform sandbox",
            "gateway": f"{backend.public_url}/rest",
            "apis": sorted(ROUTES),
            "inspect": f"{backend.public_url}/_sandbox/lazada/state",
            "docs": f"{backend.public_url}/_sandbox/docs",
        }

    return app
