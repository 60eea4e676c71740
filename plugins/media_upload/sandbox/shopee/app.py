"""HTTP face of the Shopee emulator: the ``/api/v2`` gateway, the consent pages, and ``/_sandbox/shopee`` routes."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from media_upload.protocols.shopee import APIS, UPLOAD_VIDEO_PART, Api, ApiType, envelope
from media_upload.sandbox.core import FormError, add_inspection_routes, receive_multipart
from media_upload.sandbox.server import CutOffResponse, gateway_page
from media_upload.sandbox.shopee.backend import ROUTES, THUMBNAIL_PNG, Caller, GatewayRequest, ShopeeBackend
from media_upload.sandbox.shopee.errors import ShopeeError, server_error

log = logging.getLogger(__name__)

#: JSON bodies larger than this are refused unread (no call here takes more than a few kilobytes).
MAX_JSON_BYTES = 1024 * 1024
#: What a multipart part body may hold besides the part itself: its text fields and framing.
FORM_OVERHEAD_BYTES = 64 * 1024


def _request_id() -> str:
    return secrets.token_hex(16)


async def _drain(stream: AsyncIterator[bytes]) -> None:
    """Read the rest of a refused body, so the client gets the answer instead of a broken pipe."""
    async for _ in stream:
        pass


async def _read_body(request: Request, into: GatewayRequest, backend: ShopeeBackend) -> None:
    """A multipart form for ``upload_video_part`` (files straight into the data folder), a JSON body for the
    other POST calls; what cannot be read is noted for the API to refuse after the gateway's checks."""
    if request.method != "POST" or into.path not in APIS:
        return
    content_type = request.headers.get("content-type", "")
    chunks = request.stream()
    if into.path == UPLOAD_VIDEO_PART:
        # Twice the part size: a part a little too big is read and refused with its size; a body far larger is not.
        limit = 2 * backend.config.part_bytes + FORM_OVERHEAD_BYTES
        try:
            into.form = await receive_multipart(
                content_type,
                chunks,
                backend.incoming_dir,
                max_bytes=limit,
                file_fields=("part_content",),
            )
        except FormError as exc:
            into.oversized = exc.too_large
            into.notes.append(f"multipart body refused: {exc}")
            await _drain(chunks)
        return
    raw = bytearray()
    async for chunk in chunks:
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            into.body_error = f"the request body is over {MAX_JSON_BYTES} bytes"
            await _drain(chunks)
            return
    if not raw.strip():
        into.body_error = "the request body is empty; POST parameters go in a JSON body"
        return
    try:
        into.json = json.loads(raw)
    except ValueError:
        into.body_error = "the request body is not JSON"
    if not content_type.startswith("application/json"):
        into.notes.append(f"JSON body sent as {content_type or 'no Content-Type'}")


def create_app(backend: ShopeeBackend) -> FastAPI:
    app = FastAPI(
        title="Shopee Open Platform sandbox",
        description="Local emulator of the Shopee Open Platform v2 gateway: media_space video upload, "
        "items, tokens and video_upload_push.",
        docs_url="/_sandbox/docs",
        redoc_url=None,
        openapi_url="/_sandbox/openapi.json",
    )
    config = backend.config

    def render_error(exc: ShopeeError, request_id: str) -> tuple[dict[str, Any], int]:
        body = envelope(request_id, error=exc.wire_error(config.bare_errors), message=exc.message)
        status = 200
        if config.http_error_status and not exc.module:
            status = 429 if exc.error == "error_rate_limit" else 403
        return body, status

    # ------------------------------------------------------------------ consent pages

    def consent_redirect(redirect: str, shop_id: int, state: str = "") -> Response:
        query = {
            "code": backend.issue_auth_code(shop_id),
            "shop_id": shop_id,
            **({"state": state} if state else {}),
        }
        separator = "&" if "?" in redirect else "?"
        return RedirectResponse(f"{redirect}{separator}{urlencode(query)}", status_code=302)

    @app.get("/api/v2/shop/auth_partner", tags=["sandbox"])
    async def auth_partner(request: Request) -> Response:
        """The signed authorization link (Public sign, 5-minute timestamp), approved at once: redirects to
        ``redirect`` with ``code`` and ``shop_id``."""
        into = GatewayRequest("GET", request.url.path, parse_qsl(request.url.query, keep_blank_values=True))
        redirect = into.first("redirect")
        try:
            backend.authenticate(Api(into.path, "GET", ApiType.PUBLIC), into)
            if not redirect:
                raise ShopeeError("error_param", "There is no redirect in query.")
        except ShopeeError as exc:
            body, status = render_error(exc, _request_id())
            return JSONResponse(body, status_code=status)
        return consent_redirect(redirect, config.shop_id)

    @app.get("/auth", tags=["sandbox"])
    def auth_page(
        partner_id: int,
        redirect_uri: str,
        response_type: str = "code",
        auth_type: str = "seller",
        state: str = "",
    ) -> Response:
        """The unsigned consent page of the Sandbox v2 guide (and the SDK's ``getAuthorizationUrl``)."""
        if partner_id != config.partner_id or response_type != "code":
            return JSONResponse({"error": "unknown partner_id or response_type is not code"}, status_code=400)
        return consent_redirect(redirect_uri, config.shop_id, state)

    @app.api_route(
        "/api/v2/{api:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False
    )
    async def gateway(request: Request, api: str) -> Response:
        started, request_id = backend.clock(), _request_id()
        into = GatewayRequest(
            request.method, request.url.path, parse_qsl(request.url.query, keep_blank_values=True)
        )
        fault, error, status = None, "", 200
        try:
            await _read_body(request, into, backend)
            result = await run_in_threadpool(backend.call, into)
            fault = result.fault
            style = ROUTES[into.path].style
            if style == "top":
                body: dict[str, Any] = {
                    **(result.payload or {}),
                    "error": "",
                    "message": "",
                    "request_id": request_id,
                }
            else:
                body = envelope(request_id, result.payload if style == "response" else None)
        except Exception as exc:
            if not isinstance(exc, ShopeeError):
                log.exception("sandbox failure on %s", into.path)
                exc = server_error()
            fault = exc.fault
            body, status = render_error(exc, request_id)
            error = body["error"]
        finally:
            if into.form is not None:
                into.form.discard()
        if fault is not None and fault.kind in ("http502", "http503"):
            code = int(fault.kind[4:])
            backend.log_request(into, f"HTTP {code}", started, code)
            return gateway_page(code)
        if fault is not None and fault.kind == "reset":
            backend.log_request(into, "reset", started, 0)
            return CutOffResponse()
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        backend.log_request(into, error, started, status)
        if fault is not None and fault.kind == "drop":
            return CutOffResponse()
        return JSONResponse(body, status_code=status)

    # ------------------------------------------------------------------ sandbox

    add_inspection_routes(app, backend)

    @app.get("/_sandbox/shopee/pushes", tags=["sandbox"])
    def pushes(limit: int = 100) -> list[dict[str, Any]]:
        """The most recent push deliveries (upload, status, copy, attempt, outcome), newest last."""
        return list(backend.push.log)[-limit:] if backend.push is not None else []

    @app.post("/_sandbox/shopee/auth-codes", tags=["sandbox"])
    def auth_code() -> dict[str, Any]:
        """A fresh single-use authorization code for ``/api/v2/auth/token/get``."""
        return {"code": backend.issue_auth_code(), "shop_id": config.shop_id}

    @app.post("/_sandbox/shopee/tokens/expire", tags=["sandbox"])
    def expire_tokens() -> dict[str, int]:
        """Expire every access token now (refresh tokens stay valid)."""
        return {"expired": backend.expire_access_tokens()}

    @app.post("/_sandbox/shopee/uploads/{video_upload_id}/outcome", tags=["sandbox"])
    async def upload_outcome(video_upload_id: str, request: Request) -> JSONResponse:
        """Decide how an upload ends: ``{"outcome": "FAILED", "message": "Video is too short", "finish_now": false}``;
        before complete it wins over what probing the video finds."""
        spec = await request.json()
        try:
            upload = backend.set_outcome(
                video_upload_id,
                str(spec["outcome"]),
                str(spec.get("message") or ""),
                bool(spec.get("finish_now", False)),
            )
        except KeyError:
            return JSONResponse(
                {"error": f"no upload {video_upload_id} or no outcome given"}, status_code=404
            )
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {"video_upload_id": video_upload_id, "status": upload.status(backend.clock()).value}
        )

    @app.post("/_sandbox/shopee/items", tags=["sandbox"])
    async def seed_item(request: Request) -> JSONResponse:
        """Create an item without a token: an add_item body (see ``products.sample_item``) → add_item's answer."""
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            caller = Caller(config.partner_id, config.shop_id, "shop")
            return JSONResponse(await run_in_threadpool(backend.create_item, config.shop_id, body, caller))
        except ShopeeError as exc:
            return JSONResponse({"error": exc.error, "message": exc.message}, status_code=400)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    @app.get("/_sandbox/shopee/file/{file_id}", tags=["sandbox"])
    def file(file_id: str) -> Response:
        """An assembled video or its thumbnail, as the ``video_url`` and ``thumbnail_url`` fields point here."""
        if backend.is_thumbnail(file_id):
            return Response(THUMBNAIL_PNG, media_type="image/png")
        path = backend.file_path(file_id)
        if path is None or not path.exists():
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(path, media_type="video/mp4")

    @app.get("/", tags=["sandbox"])
    def index() -> dict[str, Any]:
        return {
            "service": "Shopee Open Platform sandbox",
            "gateway": backend.public_url,
            "sdk_base_url": f"{backend.public_url}/api/v2",
            "apis": sorted(ROUTES),
            "inspect": f"{backend.public_url}/_sandbox/shopee/state",
            "docs": f"{backend.public_url}/_sandbox/docs",
        }

    return app
