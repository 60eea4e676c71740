"""State and rules of the Shopee emulator, independent of HTTP.

One :class:`ShopeeBackend` is one partner app linked to one shop: its tokens, video upload sessions (parts
and assembled videos on disk under ``data_dir``) and items. The HTTP layer (:mod:`.app`) reads a request
into a :class:`GatewayRequest` and calls :meth:`ShopeeBackend.call`. Where Shopee's pages are silent or
disagree, the choices are listed, with their reasons, in ``docs/shopee-sandbox.md``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from media_upload.masking import mask_params
from media_upload.protocols.shopee import (
    ADD_ITEM,
    APIS,
    CANCEL_VIDEO_UPLOAD,
    COMPLETE_VIDEO_UPLOAD,
    GET_ACCESS_TOKEN,
    GET_ITEM_BASE_INFO,
    GET_VIDEO_UPLOAD_RESULT,
    INIT_VIDEO_UPLOAD,
    MAX_FILE_BYTES,
    PART_BYTES,
    PUSH_RETRY_SECONDS,
    PUSH_TIMEOUT_SECONDS,
    REFRESH_ACCESS_TOKEN,
    TIMESTAMP_WINDOW_SECONDS,
    UPDATE_ITEM,
    UPLOAD_VIDEO_PART,
    Api,
    ApiType,
    VideoUploadStatus,
    is_md5_hex,
    parse_id,
    part_count,
    sign,
    video_problem,
)
from media_upload.sandbox.core import (
    COPY_CHUNK,
    CallLimit,
    EmulatorBackend,
    EmulatorConfig,
    QueuedFault,
    ReceivedForm,
)
from media_upload.sandbox.shopee import products as item_rules
from media_upload.sandbox.shopee.errors import (
    INJECTABLE_ERRORS,
    ShopeeError,
    already_completed,
    bad_path,
    common_param,
    file_too_large,
    form_missing,
    injected,
    invalid_access_token,
    invalid_file_md5,
    invalid_part_seq,
    invalid_part_size,
    invalid_upload_id,
    item_not_found,
    rate_limited,
    unknown_partner,
    video_info_not_found,
    wrong_parameters,
    wrong_shop,
    wrong_sign,
)
from media_upload.sandbox.shopee.push import PushSettings, VideoUploadPusher
from media_upload.transfer.media import NotAVideoError, probe_file

S = VideoUploadStatus
#: A refreshed access token "is still valid for 5 minutes" after the refresh.
OLD_TOKEN_GRACE_SECONDS = 300
#: An authorization code is single use and lives 10 minutes.
AUTH_CODE_SECONDS = 600
TRANSPORT_FAULTS = ("http502", "http503", "reset", "drop", "delay")
#: ``get_video_upload_result`` answers INITIATED though complete was accepted, as the SDK's sandbox test saw.
STALE_FAULT = "stale_initiated"


@dataclass
class ShopeeSandboxConfig(EmulatorConfig):
    """Everything that shapes the emulator's behaviour; the CLI flags map onto these fields."""

    partner_id: int = 2001887
    partner_key: str = "sandbox-partner-key"
    shop_id: int = 600000
    access_token: str = "sandbox-access-token"
    refresh_token: str = "sandbox-refresh-token"
    #: The shop's market: upload ids start with it in lowercase (``sg_...``), video URLs are labelled with it.
    region: str = "SG"
    #: Seconds from complete_video_upload to SUCCEEDED or FAILED (TRANSCODING meanwhile).
    transcode_seconds: float = 6.0
    access_token_ttl: float = 4 * 3600
    refresh_token_ttl: float = 30 * 86400
    #: Seconds an upload session may stay INITIATED before its id is refused.
    upload_ttl: float = 86400
    timestamp_window: float = TIMESTAMP_WINDOW_SECONDS
    #: "4MB": 4,194,304 by default; 4,000,000 for the decimal reading.
    part_bytes: int = PART_BYTES
    #: ``exact``: every part but the last is exactly ``part_bytes``; ``lenient``: any part up to it.
    part_size_rule: Literal["exact", "lenient"] = "exact"
    #: "maximum is 30MB": 31,457,280 by default; 30,000,000 for the decimal reading.
    max_file_bytes: int = MAX_FILE_BYTES
    #: Answer module errors bare (``error_param``) instead of prefixed (``product.error_param``).
    bare_errors: bool = False
    #: Errors with HTTP 200 (default), or gateway errors with 403 and ``error_rate_limit`` with 429.
    http_error_status: bool = False
    #: What complete does when its parts disagree with init: ``error`` (``error_param`` at once) or
    #: ``failed`` (accept, then report FAILED).
    complete_mismatch: Literal["error", "failed"] = "error"
    #: Calls per second allowed per API before ``error_rate_limit``; 0 disables the limit.
    rate_limit: int = 0
    #: Token bucket of the shop's calls (every API; 0: off), ``error_rate_limit`` when spent. Shopee
    #: publishes no figure for media_space (docs/shopee-sandbox.md).
    shop_calls_per_second: float = 0.0
    #: Where ``video_upload_push`` messages are posted; None: no push.
    push_url: str | None = None
    #: The key that signs pushes; None: the partner key (some integrations use a separate push key).
    push_partner_key: str | None = None
    push_retry_seconds: tuple[float, ...] = PUSH_RETRY_SECONDS
    push_timeout: float = PUSH_TIMEOUT_SECONDS
    #: Share of messages delivered twice ("repeats possible").
    push_duplicate_rate: float = 0.0
    #: Each delivery waits a random 0..this many seconds first ("sequence not guaranteed").
    push_jitter_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.part_bytes < 1 or self.max_file_bytes < 1:
            raise ValueError("part_bytes and max_file_bytes must be positive")
        if self.part_size_rule not in ("exact", "lenient"):
            raise ValueError(f"part_size_rule {self.part_size_rule!r} must be exact or lenient")
        if self.complete_mismatch not in ("error", "failed"):
            raise ValueError(f"complete_mismatch {self.complete_mismatch!r} must be error or failed")
        self.push_retry_seconds = tuple(float(s) for s in self.push_retry_seconds)


@dataclass(frozen=True)
class Route:
    handler: str
    #: ``response``: the payload under ``response``; ``none``: no ``response``; ``top``: the payload's fields
    #: at the top level (the auth calls).
    style: Literal["response", "none", "top"]


ROUTES: dict[str, Route] = {
    INIT_VIDEO_UPLOAD: Route("init_video_upload", "response"),
    UPLOAD_VIDEO_PART: Route("upload_video_part", "none"),
    COMPLETE_VIDEO_UPLOAD: Route("complete_video_upload", "none"),
    GET_VIDEO_UPLOAD_RESULT: Route("get_video_upload_result", "response"),
    CANCEL_VIDEO_UPLOAD: Route("cancel_video_upload", "none"),
    ADD_ITEM: Route("add_item", "response"),
    UPDATE_ITEM: Route("update_item", "response"),
    GET_ITEM_BASE_INFO: Route("get_item_base_info", "response"),
    GET_ACCESS_TOKEN: Route("get_access_token", "top"),
    REFRESH_ACCESS_TOKEN: Route("refresh_access_token", "top"),
}


@dataclass
class GatewayRequest:
    """What arrived, HTTP-free: the query pairs, and a JSON body or a multipart form (or why neither)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    json: Any = None
    body_error: str | None = None
    form: ReceivedForm | None = None
    #: The multipart body was larger than any part may be (and was not kept).
    oversized: bool = False
    #: ``public`` or ``shop``: the signature form the gateway accepted.
    sign_form: str | None = None
    #: Readings the emulator accepted but a stricter gateway might not; shown in the request log.
    notes: list[str] = field(default_factory=list)

    def first(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]


@dataclass(frozen=True)
class Caller:
    partner_id: int
    #: The shop of a Shop-signed call; None for a Public-signed one.
    shop_id: int | None
    sign_form: Literal["public", "shop"]


@dataclass
class Token:
    kind: Literal["access", "refresh"]
    shop_id: int
    expires_at: float


@dataclass
class Part:
    size: int
    md5: str


@dataclass
class Upload:
    video_upload_id: str
    shop_id: int
    file_md5: str
    file_size: int
    created_at: float
    folder: str
    transcode_seconds: float
    parts: dict[int, Part] = field(default_factory=dict)
    completing: bool = False
    completed_at: float | None = None
    cancelled_at: float | None = None
    upload_cost_ms: int | None = None
    #: SUCCEEDED or FAILED, decided at complete (or by a test) and reported once transcoding ends.
    outcome: VideoUploadStatus | None = None
    message: str = ""
    #: An outcome a test asked for before complete: ``(status, message)``.
    forced: tuple[VideoUploadStatus, str] | None = None
    video_id: str | None = None
    thumbnail_id: str | None = None
    duration: int | None = None
    width: int | None = None
    height: int | None = None
    video_md5: str | None = None

    def status(self, now: float) -> VideoUploadStatus:
        """INITIATED until complete; TRANSCODING for ``transcode_seconds``; then the outcome."""
        if self.cancelled_at is not None:
            return S.CANCELLED
        if self.completed_at is None or self.outcome is None:
            return S.INITIATED
        if now < self.final_at:
            return S.TRANSCODING
        return self.outcome

    @property
    def final_at(self) -> float:
        return (self.completed_at or 0.0) + self.transcode_seconds


@dataclass
class CallResult:
    """What the HTTP layer needs to answer: the API's payload and any transport fault still to apply."""

    payload: dict[str, Any] | None
    fault: QueuedFault | None = None


#: A 1x1 PNG: what a thumbnail URL serves.
THUMBNAIL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


class ShopeeBackend(EmulatorBackend):
    """A partner app linked to one shop, with its upload sessions and items stored under ``data_dir``.

    Queued faults (``POST /_sandbox/shopee/faults``, ``{"kind", "api", "count", "seconds"}``): an error
    (``error_rate_limit``, ``error_server``, ``invalid_acceess_token``...), ``http502`` or ``http503`` (a
    gateway page, the API did not run), ``reset`` (the connection cut, the API did not run), ``drop`` (the
    API ran, the answer is cut off), ``delay`` (the answer waits ``seconds``) or ``stale_initiated``
    (get_video_upload_result reports INITIATED though complete was accepted).
    """

    name = "shopee"
    fault_target = "api"
    config: ShopeeSandboxConfig

    def __init__(
        self, config: ShopeeSandboxConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(config or ShopeeSandboxConfig(), clock)
        for folder in ("uploads", "videos", "incoming"):
            (self.data_dir / folder).mkdir(parents=True, exist_ok=True)
        now = self.clock()
        shop = self.config.shop_id
        self.tokens: dict[str, Token] = {
            self.config.access_token: Token("access", shop, now + self.config.access_token_ttl),
            self.config.refresh_token: Token("refresh", shop, now + self.config.refresh_token_ttl),
        }
        self.auth_codes: dict[str, tuple[int, float]] = {}
        self.uploads: dict[str, Upload] = {}
        self.items: dict[int, item_rules.Item] = {}
        self._files: dict[str, str] = {}  # video or thumbnail id -> upload id
        self._sessions = 0
        self.push: VideoUploadPusher | None = None
        if self.config.push_url:
            settings = PushSettings(
                self.config.push_url,
                self.config.push_partner_key or self.config.partner_key,
                self.config.push_retry_seconds,
                self.config.push_timeout,
                self.config.push_duplicate_rate,
                self.config.push_jitter_seconds,
                self.config.fault_seed,
            )
            self.push = VideoUploadPusher(
                settings, self._shop_of, self._result_for_push, self.clock, self.dice
            )

    def close(self) -> None:
        if self.push is not None:
            self.push.close()
        super().close()

    @property
    def incoming_dir(self) -> Path:
        """Where multipart files land while they arrive: inside the data folder, never the system's temp."""
        return self.data_dir / "incoming"

    # ----------------------------------------------------------------- gateway

    def route(self, method: str, path: str) -> tuple[Api, Route]:
        """The API at ``path``, or the gateway's "request path is incorrect" (a wrong method included)."""
        api, route = APIS.get(path), ROUTES.get(path)
        if api is None or route is None or method != api.method:
            raise bad_path()
        return api, route

    def call(self, request: GatewayRequest) -> CallResult:
        """Authenticate one request and run its API; raises :class:`ShopeeError` on refusal."""
        api, route = self.route(request.method, request.path)
        caller = self.authenticate(api, request)
        if self.over_rate(api.path, self.config.rate_limit):
            raise rate_limited()
        shop = CallLimit(self.config.shop_calls_per_second, self.config.shop_calls_per_second, 0.0)
        if caller.shop_id is not None and self.limit_calls(f"shop {caller.shop_id}", shop):
            raise rate_limited()
        fault = self.take_fault(api.path, [*INJECTABLE_ERRORS, *TRANSPORT_FAULTS]) or self._random_fault(
            api.path
        )
        if fault is not None and fault.kind in ("http502", "http503", "reset"):
            return CallResult(None, fault)  # the gateway failed, or the connection broke, before the API ran
        if fault is not None and fault.kind in INJECTABLE_ERRORS:
            raise injected(fault.kind)
        try:
            payload = getattr(self, route.handler)(caller, request)
        except ShopeeError as exc:
            exc.fault = fault  # a drop or a delay applies to an error answer too
            raise
        return CallResult(payload, fault)

    def authenticate(self, api: Api, request: GatewayRequest) -> Caller:
        """The gateway's checks, in order: partner_id, timestamp (±window), sign present, Shop parameters, the
        sign itself (Public or Shop form where both are read as accepted), then the token for that shop."""
        partner_text = request.first("partner_id")
        if partner_text is None:
            raise common_param("There is no partner_id in query.")
        partner_id = parse_id(partner_text)
        if partner_id is None:
            raise common_param("Partner_id is invalid, should be an integer between 0 and 4294967295.")
        if partner_id != self.config.partner_id:
            raise unknown_partner()
        stamp_text = request.first("timestamp")
        if stamp_text is None:
            raise common_param("no timestamp")
        stamp = parse_id(stamp_text)
        if stamp is None:
            raise common_param("Timestamp is invalid, should be an integer between 0 and 4294967295.")
        if abs(self.clock() - stamp) > self.config.timestamp_window:
            raise common_param("Timestamp is expired.")
        signature = request.first("sign")
        if not signature:
            raise common_param("There is no sign in query.")
        token, shop_text = request.first("access_token"), request.first("shop_id")
        shop_id = parse_id(shop_text) if shop_text is not None else None
        if api.api_type is ApiType.SHOP:
            if token is None:
                raise common_param("There is no access_token in query.")
            if shop_text is None:
                raise common_param("There is no shop_id in query.")
        if shop_text is not None and shop_id is None and (api.api_type is ApiType.SHOP or api.either_form):
            raise common_param("shop_id is invalid, should be an integer between 0 and 4294967295.")
        forms: list[Literal["public", "shop"]] = []
        if api.api_type is ApiType.SHOP or (api.either_form and token is not None and shop_id is not None):
            forms.append("shop")
        if api.api_type is ApiType.PUBLIC:
            forms.append("public")
        for form in forms:
            extra = (token, shop_text) if form == "shop" else (None, None)
            expected = sign(self.config.partner_key, partner_text, api.path, stamp_text, *extra)
            if secrets.compare_digest(signature.encode(), expected.encode()):
                break
        else:
            raise wrong_sign()  # hex case included: the pages ask for lowercase
        request.sign_form = form
        if form == "public":
            if api.either_form and token is not None:
                request.notes.append("access_token sent but the call was signed in the Public form")
            return Caller(partner_id, None, "public")
        with self._lock:
            record = self.tokens.get(token or "")
        if record is None or record.kind != "access" or record.expires_at <= self.clock():
            raise invalid_access_token()
        if record.shop_id != shop_id:
            raise wrong_shop()
        return Caller(partner_id, shop_id, "shop")

    def _random_fault(self, api: str) -> QueuedFault | None:
        """A fault drawn by the dice (``--fault-rate``), as this gateway shows it."""
        kind = self.dice.roll(api)
        shapes = {
            "unavailable": QueuedFault("http503", api),
            "throttle": QueuedFault("error_rate_limit", api),
            "reset": QueuedFault("reset", api),
            "drop": QueuedFault("drop", api),
            "slow": QueuedFault("delay", api, seconds=self.dice.slow_seconds),
        }
        return shapes[kind] if kind else None

    def check_fault(self, kind: str, target: str) -> None:
        known = (*INJECTABLE_ERRORS, *TRANSPORT_FAULTS, STALE_FAULT)
        if kind not in known:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(known)})")
        if kind == STALE_FAULT and target not in ("*", GET_VIDEO_UPLOAD_RESULT):
            raise ValueError(f"{STALE_FAULT} applies to {GET_VIDEO_UPLOAD_RESULT} only")
        if target != "*" and target not in ROUTES:
            raise ValueError(f"unknown API {target!r}; known: {', '.join(ROUTES)}")

    def log_request(self, request: GatewayRequest, error: str, started: float, status: int) -> None:
        """Record a request with ``access_token`` and ``sign`` masked; bodies (tokens, codes) are never kept."""
        self.record_request(
            request.path,
            started,
            method=request.method,
            api=request.path,
            query=mask_params(dict(request.query)),
            sign_form=request.sign_form,
            error=error,
            status=status,
            notes=list(request.notes),
        )

    # ------------------------------------------------------------- media_space

    def _body(self, request: GatewayRequest) -> dict[str, Any]:
        if request.body_error is not None:
            raise wrong_parameters(request.body_error)
        if not isinstance(request.json, dict):
            raise wrong_parameters("the request body must be a JSON object")
        return request.json

    def init_video_upload(self, caller: Caller, request: GatewayRequest) -> dict[str, Any]:
        body = self._body(request)
        file_md5, file_size = body.get("file_md5"), body.get("file_size")
        if file_md5 is None:
            raise wrong_parameters("file_md5 is required")
        if not is_md5_hex(file_md5):
            raise invalid_file_md5(file_md5)
        if isinstance(file_size, bool) or not isinstance(file_size, int):
            raise wrong_parameters("file_size is required and must be an integer number of bytes")
        if file_size < 1:
            raise wrong_parameters(f"file_size {file_size} must be at least 1")
        if file_size > self.config.max_file_bytes:
            raise file_too_large(file_size, self.config.max_file_bytes)
        assert isinstance(file_md5, str)
        if file_md5 != file_md5.lower():
            request.notes.append("file_md5 in uppercase")
        with self._lock:
            self._sessions += 1
            upload_id = f"{self.config.region.lower()}_{uuid.uuid4()}_{self._sessions:06d}"
            upload = Upload(
                video_upload_id=upload_id,
                shop_id=caller.shop_id or self.config.shop_id,
                file_md5=file_md5.lower(),
                file_size=file_size,
                created_at=self.clock(),
                folder=secrets.token_hex(8),
                transcode_seconds=self.config.transcode_seconds,
            )
            self.uploads[upload_id] = upload
        self._upload_dir(upload).mkdir()
        return {"video_upload_id": upload_id}

    def _upload_dir(self, upload: Upload) -> Path:
        """An upload's parts folder: named by the emulator, never by anything a request sent."""
        return self.data_dir / "uploads" / upload.folder

    def _upload(self, caller: Caller, video_upload_id: object, *, open_only: bool) -> Upload:
        """The session ``video_upload_id`` names, if this caller may see it.

        Unknown ids, another shop's ids, cancelled sessions (for calls that change one) and INITIATED sessions
        older than ``upload_ttl`` all look the same: ``error_invalid_upload_id``.
        """
        if not isinstance(video_upload_id, str) or not video_upload_id:
            raise wrong_parameters("video_upload_id is required")
        with self._lock:
            upload = self.uploads.get(video_upload_id)
        if upload is None or (caller.shop_id is not None and caller.shop_id != upload.shop_id):
            raise invalid_upload_id(f"{video_upload_id} does not exist")
        if upload.completed_at is None and self.clock() - upload.created_at > self.config.upload_ttl:
            shutil.rmtree(self._upload_dir(upload), ignore_errors=True)
            raise invalid_upload_id(f"{video_upload_id} has expired")
        if open_only and upload.cancelled_at is not None:
            raise invalid_upload_id(f"{video_upload_id} was cancelled")
        return upload

    def _part_fields(self, request: GatewayRequest) -> tuple[object, str, object]:
        """``video_upload_id``, ``part_seq``, ``content_md5``: form fields, or query parameters (flagged)."""
        form = request.form
        assert form is not None
        values = []
        for name in ("video_upload_id", "part_seq", "content_md5"):
            value = form.fields.get(name)
            if value is None and (value := request.first(name)) is not None:
                request.notes.append(f"{name} sent in the query, not as a form field")
            if value is None:
                raise wrong_parameters(f"{name} is required (a form field)")
            values.append(value)
        return values[0], values[1], values[2]

    def upload_video_part(self, caller: Caller, request: GatewayRequest) -> None:
        if request.oversized:
            raise invalid_part_size(
                f"the request body is larger than a part of {self.config.part_bytes} bytes"
            )
        if request.form is None:
            raise form_missing()
        video_upload_id, seq_text, content_md5 = self._part_fields(request)
        received = request.form.files.get("part_content")
        if received is None:
            sent = sorted({*request.form.fields, *request.form.files})
            raise wrong_parameters(f"part_content (the part's bytes, a file field) is required; got {sent}")
        if received.filename is None:
            request.notes.append("part_content sent without a filename")
        part_seq = parse_id(seq_text.strip())
        if part_seq is None:
            raise invalid_part_seq(f"part_seq {seq_text!r} is not a non-negative integer")
        if not is_md5_hex(content_md5):
            raise wrong_parameters(f"content_md5 {content_md5!r} is not 32 hex digits")
        assert isinstance(content_md5, str)
        if content_md5 != content_md5.lower():
            request.notes.append("content_md5 in uppercase")
        upload = self._upload(caller, video_upload_id, open_only=True)
        self._check_part(upload, part_seq, received.size)
        if received.md5 != content_md5.lower():
            raise wrong_parameters(
                f"content_md5 {content_md5} differs from the md5 of the part received ({received.md5})"
            )
        with self._lock:
            if upload.completed_at is not None or upload.completing:
                raise already_completed()
            if upload.cancelled_at is not None:
                raise invalid_upload_id(f"{upload.video_upload_id} was cancelled")
            received.path.replace(self._upload_dir(upload) / f"{part_seq}.part")
            upload.parts[part_seq] = Part(received.size, received.md5)

    def _check_part(self, upload: Upload, part_seq: int, size: int) -> None:
        """The part rules: ``part_seq`` within the file's parts; sizes exactly ``part_bytes`` but the last
        (``exact``), or at most ``part_bytes`` (``lenient``); never empty."""
        if upload.completed_at is not None or upload.completing:
            raise already_completed()
        limit, lenient = self.config.part_bytes, self.config.part_size_rule == "lenient"
        last = upload.file_size - 1 if lenient else part_count(upload.file_size, limit) - 1
        if part_seq > last:
            raise invalid_part_seq(f"part_seq {part_seq} is outside 0..{last} for {upload.file_size} bytes")
        if size == 0:
            raise invalid_part_size(f"part {part_seq} is empty")
        if size > limit:
            raise invalid_part_size(f"part {part_seq} is {size} bytes, over the part size {limit}")
        if lenient:
            return
        expected = limit if part_seq < last else upload.file_size - last * limit
        if size != expected:
            which = "the last part" if part_seq == last else "parts before the last"
            raise invalid_part_size(
                f"part {part_seq} is {size} bytes; {which} of a {upload.file_size}-byte file must be "
                f"exactly {expected} bytes (part size {limit})"
            )

    def complete_video_upload(self, caller: Caller, request: GatewayRequest) -> None:
        body = self._body(request)
        listed = body.get("part_seq_list")
        if (
            not isinstance(listed, list)
            or not listed
            or any(isinstance(n, bool) or not isinstance(n, int) for n in listed)
        ):
            raise wrong_parameters("part_seq_list is required and must be a non-empty list of integers")
        if len(set(listed)) != len(listed):
            raise wrong_parameters("part_seq_list lists a part_seq more than once")
        report = body.get("report_data")
        cost = report.get("upload_cost") if isinstance(report, dict) else None
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
            raise wrong_parameters(
                "report_data.upload_cost is required and must be milliseconds (an integer)"
            )
        upload = self._upload(caller, body.get("video_upload_id"), open_only=True)
        with self._lock:
            if upload.completed_at is not None or upload.completing:
                raise already_completed()
            upload.completing = True
        try:
            problem = self._parts_problem(upload, listed)
            if problem and (self.config.complete_mismatch == "error" or not upload.parts):
                raise wrong_parameters(problem)
            self._assemble(upload, problem)
        except BaseException:
            with self._lock:
                upload.completing = False
            raise
        with self._lock:  # completed before "completing" ends: a concurrent complete is "already completed"
            upload.upload_cost_ms = cost
            upload.completed_at = self.clock()
            upload.completing = False
        self._watch(upload)

    def _parts_problem(self, upload: Upload, listed: list[int]) -> str | None:
        """Why the uploaded parts do not make the file init announced (None when they do), before joining."""
        have = sorted(upload.parts)
        if sorted(listed) != have:
            return f"part_seq_list {sorted(listed)} differs from the parts uploaded {have}"
        if self.config.part_size_rule == "exact":
            count = part_count(upload.file_size, self.config.part_bytes)
        else:
            count = len(have)
        if have != list(range(count)):
            missing = sorted(set(range(count)) - set(have))
            return f"parts {missing} of 0..{count - 1} were never uploaded"
        total = sum(part.size for part in upload.parts.values())
        if total != upload.file_size:
            return f"the parts hold {total} bytes but file_size is {upload.file_size}"
        return None

    def _assemble(self, upload: Upload, problem: str | None) -> None:
        """Join the parts in order into one video while hashing it; check it against ``file_md5`` and probe it
        as transcoding would: the outcome is decided now and reported once ``transcode_seconds`` pass."""
        video_id, folder = secrets.token_hex(16), self._upload_dir(upload)
        target = self.data_dir / "videos" / f"{video_id}.mp4"
        digest = hashlib.md5()
        with target.open("wb") as out:
            for seq in sorted(upload.parts):
                with (folder / f"{seq}.part").open("rb") as part:
                    while chunk := part.read(COPY_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        md5 = digest.hexdigest()
        if problem is None and md5 != upload.file_md5:
            problem = f"the md5 of the joined parts ({md5}) differs from file_md5 {upload.file_md5}"
        if problem is not None and self.config.complete_mismatch == "error":
            target.unlink(missing_ok=True)
            raise wrong_parameters(problem)
        shutil.rmtree(folder, ignore_errors=True)
        message = problem
        info = None
        if message is None:
            try:
                info = probe_file(target)
            except NotAVideoError as exc:
                message = "Video format is not supported: " + str(exc).replace(str(target), "the video")
            else:
                message = video_problem(info)
        if upload.forced is not None:
            outcome, message = upload.forced
        else:
            outcome = S.FAILED if message else S.SUCCEEDED
        with self._lock:
            upload.video_id, upload.thumbnail_id, upload.video_md5 = video_id, secrets.token_hex(16), md5
            upload.outcome, upload.message = outcome, message or "success"
            if info is not None and info.duration_seconds is not None:
                upload.duration = math.floor(info.duration_seconds + 0.5)
                upload.width, upload.height = info.width, info.height
            self._files[video_id] = self._files[upload.thumbnail_id] = upload.video_upload_id

    def get_video_upload_result(self, caller: Caller, request: GatewayRequest) -> dict[str, Any]:
        upload = self._upload(caller, request.first("video_upload_id"), open_only=False)
        status = upload.status(self.clock())
        if upload.completed_at is not None and self.take_fault(GET_VIDEO_UPLOAD_RESULT, [STALE_FAULT]):
            status = S.INITIATED
        answer: dict[str, Any] = {"status": status.value, "message": self._message(upload, status)}
        if status is S.SUCCEEDED:
            answer["video_info"] = self.result_video_info(upload)
        return answer

    @staticmethod
    def _message(upload: Upload, status: VideoUploadStatus) -> str:
        return upload.message if status in (S.SUCCEEDED, S.FAILED) else ""

    def file_url(self, file_id: str) -> str:
        """Where the emulator serves an assembled video or a thumbnail (Shopee's shape: ``.../file/<hash>``)."""
        return f"{self.public_url}/_sandbox/shopee/file/{file_id}"

    def result_video_info(self, upload: Upload) -> dict[str, Any]:
        """``video_info`` of get_video_upload_result: ``video_url_list``, ``thumbnail_url_list``, ``duration``."""
        region = self.config.region.upper()
        return {
            "video_url_list": [
                {"video_url_region": region, "video_url": self.file_url(upload.video_id or "")}
            ],
            "thumbnail_url_list": [
                {"image_url_region": region, "image_url": self.file_url(upload.thumbnail_id or "")}
            ],
            "duration": upload.duration or 0,
        }

    def cancel_video_upload(self, caller: Caller, request: GatewayRequest) -> None:
        upload = self._upload(caller, self._body(request).get("video_upload_id"), open_only=True)
        with self._lock:
            if upload.completed_at is not None or upload.completing:
                raise already_completed()
            upload.cancelled_at = self.clock()
        shutil.rmtree(self._upload_dir(upload), ignore_errors=True)

    def set_outcome(
        self, video_upload_id: str, outcome: str, message: str = "", finish_now: bool = False
    ) -> Upload:
        """Decide how an upload ends (tests, demos): before complete it overrides what probing finds; after,
        it replaces the outcome; ``finish_now`` skips the remaining transcode time."""
        final = VideoUploadStatus(outcome)
        if final not in (S.SUCCEEDED, S.FAILED):
            raise ValueError(f"outcome {outcome!r} must be SUCCEEDED or FAILED")
        text = message or ("success" if final is S.SUCCEEDED else "Video transcoding failed")
        with self._lock:
            upload = self.uploads[video_upload_id]
            if upload.cancelled_at is not None:
                raise ValueError(f"upload {video_upload_id} was cancelled")
            upload.forced = (final, text)
            if upload.completed_at is not None:
                upload.outcome, upload.message = final, text
                if finish_now:
                    upload.completed_at = self.clock() - upload.transcode_seconds
        self._watch(upload)
        return upload

    def _watch(self, upload: Upload) -> None:
        if self.push is not None and upload.completed_at is not None:
            self.push.watch(upload.video_upload_id)

    def _shop_of(self, video_upload_id: str) -> int | None:
        upload = self.uploads.get(video_upload_id)
        return upload.shop_id if upload else None

    def _result_for_push(
        self, video_upload_id: str, now: float
    ) -> tuple[str, str, Mapping[str, Any] | None, float | None] | None:
        """What a push reports of an upload now: status, message, the push's ``video_info``, when final."""
        with self._lock:
            upload = self.uploads.get(video_upload_id)
        if upload is None:
            return None
        status = upload.status(now)
        info = None
        if status is S.SUCCEEDED:
            result = self.result_video_info(upload)
            info = {
                "video_id": upload.video_id,
                "video_url": result["video_url_list"],
                "thumbnail_url": result["thumbnail_url_list"],
                "duration": result["duration"],
            }
        return status.value, self._message(upload, status), info, upload.final_at

    def file_path(self, file_id: str) -> Path | None:
        """The assembled video a ``file_url`` names, or None (thumbnails are served from memory)."""
        with self._lock:
            upload = self.uploads.get(self._files.get(file_id, ""))
        if upload is None or upload.video_id != file_id:
            return None
        return self.data_dir / "videos" / f"{file_id}.mp4"

    def is_thumbnail(self, file_id: str) -> bool:
        with self._lock:
            upload = self.uploads.get(self._files.get(file_id, ""))
        return upload is not None and upload.thumbnail_id == file_id

    # ------------------------------------------------------------------- items

    def _attachable(self, caller: Caller, video_upload_id: str) -> Upload:
        """Only a SUCCEEDED upload of the same shop goes on an item; anything else is "Video_info not found."."""
        with self._lock:
            upload = self.uploads.get(video_upload_id)
        if upload is None or upload.shop_id != caller.shop_id:
            raise video_info_not_found(f"no video upload {video_upload_id}")
        status = upload.status(self.clock())
        if status is not S.SUCCEEDED:
            raise video_info_not_found(f"video upload {video_upload_id} is {status.value}, not SUCCEEDED")
        return upload

    def add_item(self, caller: Caller, request: GatewayRequest) -> dict[str, Any]:
        body = self._body(request)
        return self.create_item(caller.shop_id or self.config.shop_id, body, caller)

    def create_item(
        self, shop_id: int, body: Mapping[str, Any], caller: Caller | None = None
    ) -> dict[str, Any]:
        """add_item's rules and answer; also the seeding route's (``caller`` None: no token involved)."""
        given, video = item_rules.requested_video(body)
        if given and video is not None:
            self._attachable(caller or Caller(self.config.partner_id, shop_id, "shop"), video)
        with self._lock:
            item_id = 800_000_000 + secrets.randbelow(10**8)
            while item_id in self.items:
                item_id += 1
            item = item_rules.new_item(item_id, shop_id, body, self.clock())
            item.video_upload_id = video
            self.items[item_id] = item
        return self._item_view(item, for_write=True)

    def update_item(self, caller: Caller, request: GatewayRequest) -> dict[str, Any]:
        body = self._body(request)
        item_id = body.get("item_id")
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            raise wrong_parameters("item_id is required and must be an integer")
        with self._lock:
            item = self.items.get(item_id)
        if item is None or item.shop_id != caller.shop_id:
            raise item_not_found(item_id)
        given, video = item_rules.requested_video(body)
        if given and video is not None:
            self._attachable(caller, video)
        with self._lock:
            item_rules.apply_update(item, body, self.clock())
            if given:
                item.video_upload_id = video
        return self._item_view(item, for_write=True)

    def get_item_base_info(self, caller: Caller, request: GatewayRequest) -> dict[str, Any]:
        ids = item_rules.parse_item_ids(request.all("item_id_list"))
        with self._lock:
            found = [
                self.items[i] for i in ids if i in self.items and self.items[i].shop_id == caller.shop_id
            ]
        missing = [i for i in ids if i not in {item.item_id for item in found}]
        if missing:
            request.notes.append(f"item ids not found: {missing}")
        return {"item_list": [self._item_view(item) for item in found]}

    def _item_video_info(self, item: item_rules.Item) -> list[dict[str, Any]]:
        """The item's ``video_info``: flat ``video_url``, ``thumbnail_url``, ``duration`` (unlike the result's lists)."""
        upload = self.uploads.get(item.video_upload_id or "")
        if upload is None or upload.video_id is None:
            return []
        return [
            {
                "video_url": self.file_url(upload.video_id),
                "thumbnail_url": self.file_url(upload.thumbnail_id or ""),
                "duration": upload.duration or 0,
            }
        ]

    def _item_view(self, item: item_rules.Item, for_write: bool = False) -> dict[str, Any]:
        """An item as get_item_base_info lists it, or as add_item/update_item answer (``for_write``)."""
        images = {
            "image_id_list": list(item.image_id_list),
            "image_url_list": [
                f"https://cf.shopee.{self.config.region.lower()}/file/{i}" for i in item.image_id_list
            ],
        }
        view: dict[str, Any] = {
            "item_id": item.item_id,
            "category_id": item.category_id,
            "item_name": item.item_name,
            "description": item.description,
            "item_sku": item.item_sku,
            "item_status": item.item_status,
            "condition": item.condition,
            "logistic_info": [dict(channel) for channel in item.logistic_info],
            "dimension": dict(item.dimension) if item.dimension else None,
            "video_info": self._item_video_info(item),
        }
        if for_write:
            view.update(
                weight=item.weight,
                images=images,
                price_info={"original_price": item.original_price, "current_price": item.original_price},
            )
        else:
            view.update(
                weight=f"{item.weight:g}",
                image=images,
                price_info=[{"original_price": item.original_price, "current_price": item.original_price}],
                create_time=int(item.created_at),
                update_time=int(item.updated_at),
                has_model=False,
            )
        return view

    # -------------------------------------------------------------------- auth

    def issue_auth_code(self, shop_id: int | None = None) -> str:
        """A single-use authorization code for the shop, valid 10 minutes, as the consent page returns."""
        code = secrets.token_hex(16)
        with self._lock:
            self.auth_codes[code] = (shop_id or self.config.shop_id, self.clock() + AUTH_CODE_SECONDS)
        return code

    def _auth_body(self, caller: Caller, request: GatewayRequest, secret_field: str) -> tuple[str, int]:
        body = self._body(request)
        value = body.get(secret_field)
        if not isinstance(value, str) or not value:
            raise wrong_parameters(f"{secret_field} is required")
        if body.get("partner_id") != caller.partner_id:
            raise wrong_parameters("partner_id in the body must be the partner_id of the query (an integer)")
        shop_id = body.get("shop_id")
        if isinstance(shop_id, bool) or not isinstance(shop_id, int):
            raise wrong_parameters("shop_id is required in the body (an integer)")
        return value, shop_id

    def get_access_token(self, caller: Caller, request: GatewayRequest) -> dict[str, Any]:
        code, shop_id = self._auth_body(caller, request, "code")
        with self._lock:
            entry = self.auth_codes.pop(code, None)
        if entry is None or entry[1] <= self.clock():
            raise ShopeeError("error_auth", "Invalid code")
        if entry[0] != shop_id:
            raise ShopeeError("invalid_shop_id", f"The code was issued for another shop than {shop_id}")
        return self._grant(shop_id)

    def refresh_access_token(self, caller: Caller, request: GatewayRequest) -> dict[str, Any]:
        value, shop_id = self._auth_body(caller, request, "refresh_token")
        now = self.clock()
        with self._lock:
            record = self.tokens.get(value)
            if record is None or record.kind != "refresh":
                raise ShopeeError("error_auth", "Invalid refresh_token.")
            if record.shop_id != shop_id:
                raise ShopeeError("error_shop_refresh_token", "The refresh_token belongs to another shop.")
            if record.expires_at <= now:
                raise ShopeeError("refresh_token_expired", "The refresh_token has expired.")
            del self.tokens[value]  # single use: rotated
            for token in self.tokens.values():  # the old access token lives 5 more minutes at most
                if token.kind == "access" and token.shop_id == shop_id:
                    token.expires_at = min(token.expires_at, now + OLD_TOKEN_GRACE_SECONDS)
        return {**self._grant(shop_id), "partner_id": caller.partner_id, "shop_id": shop_id}

    def _grant(self, shop_id: int) -> dict[str, Any]:
        now = self.clock()
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        with self._lock:
            self.tokens[access] = Token("access", shop_id, now + self.config.access_token_ttl)
            self.tokens[refresh] = Token("refresh", shop_id, now + self.config.refresh_token_ttl)
        return {
            "refresh_token": refresh,
            "access_token": access,
            "expire_in": int(self.config.access_token_ttl),
        }

    def expire_access_tokens(self) -> int:
        """Make every access token expired now, so token refresh can be tested."""
        with self._lock:
            expired = [token for token in self.tokens.values() if token.kind == "access"]
            for token in expired:
                token.expires_at = self.clock() - 1
        return len(expired)

    # ----------------------------------------------------------------- inspect

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            uploads = {
                upload_id: {
                    **{
                        k: v
                        for k, v in asdict(u).items()
                        if k not in ("folder", "forced", "parts", "completing")
                    },
                    "status": u.status(now).value,
                    "outcome": u.outcome.value if u.outcome else None,
                    "parts": {seq: asdict(part) for seq, part in sorted(u.parts.items())},
                }
                for upload_id, u in self.uploads.items()
            }
            return {
                "shop_id": self.config.shop_id,
                "uploads": uploads,
                "items": {str(item_id): asdict(item) for item_id, item in self.items.items()},
                "tokens": [
                    {
                        "kind": t.kind,
                        "shop_id": t.shop_id,
                        "expires_in": round(t.expires_at - now),
                        "valid": t.expires_at > now,
                    }
                    for t in self.tokens.values()
                ],
                "auth_codes": len(self.auth_codes),
                "request_counts": dict(self.request_counts),
                "limited": dict(self.limited),
                "faults": [asdict(f) for f in self.faults],
                "pushes": list(self.push.log) if self.push is not None else None,
            }
