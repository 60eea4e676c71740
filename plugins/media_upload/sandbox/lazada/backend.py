"""State and rules of the Lazada emulator, independent of HTTP.

One :class:`LazadaBackend` holds a seller's tokens, uploads (blocks on disk), videos, images and
products. The HTTP layer (:mod:`.app`) turns requests into calls of :meth:`LazadaBackend.call`.
Where Lazada's pages are silent, the choices are listed, with their reasons, in
``docs/lazada-sandbox.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from media_upload.masking import mask_params
from media_upload.protocols.lazada import (
    MAX_BLOCK_BYTES,
    MAX_FILE_BYTES,
    PUSH_RETRIES,
    PUSH_RETRY_SECONDS,
    SIGN_METHOD,
    VIDEO_USAGES,
    VideoState,
    sign,
)
from media_upload.sandbox.core import (
    COPY_CHUNK,
    CallLimit,
    EmulatorBackend,
    EmulatorConfig,
    QueuedFault,
    receive_file,
)
from media_upload.sandbox.lazada import products as product_rules
from media_upload.sandbox.lazada.errors import (
    INJECTABLE_ERRORS,
    ErrorReply,
    api_call_limit,
    illegal_access_token,
    illegal_parameter,
    illegal_refresh_token,
    incomplete_signature,
    invalid_api_path,
    invalid_app_key,
    invalid_code,
    media_failure,
    missing_parameter,
    product_error,
)
from media_upload.sandbox.lazada.push import PushSender, PushSettings
from media_upload.transfer.media import NotAVideoError, probe_file

#: Title markers that decide a video's fate deterministically (tests and demos).
OUTCOME_MARKERS = {
    "[AUDIT_FAILED]": VideoState.AUDIT_FAILED,
    "[TRANSCODE_FAILED]": VideoState.TRANSCODE_FAILED,
}
MAX_IMAGE_BYTES = 3_145_728


@dataclass
class LazadaSandboxConfig(EmulatorConfig):
    """Everything that shapes the emulator's behaviour; the CLI flags map onto these fields."""

    app_key: str = "100132"
    app_secret: str = "sandbox-app-secret"
    access_token: str = "sandbox-access-token"
    refresh_token: str = "sandbox-refresh-token"
    seller_id: str = "1001"
    country: str = "sg"
    #: Seconds from commit to the final state; each of the three steps takes a third.
    audit_seconds: float = 6.0
    access_token_ttl: float = 7 * 86400
    refresh_token_ttl: float = 30 * 86400
    upload_ttl: float = 86400
    capacity_bytes: int = 1_024_000_000
    #: Calls per second allowed per API before ``ApiCallLimit``; 0 disables the limit.
    rate_limit: int = 0
    #: Token buckets per app (every seller's calls) and per seller (calls with its tokens): a caller who
    #: empties one is answered ``ApiCallLimit`` "this ban will last N seconds" for ``ban_seconds``.
    #: Lazada publishes no figures for Media Center (docs/lazada-sandbox.md); 0 turns a bucket off.
    app_calls_per_second: float = 0.0
    seller_calls_per_second: float = 0.0
    call_burst: float = 0.0
    ban_seconds: float = 1.0
    timestamp_window: float = 7200
    #: ``code``: failures as a top-level code; ``result_code``: ``code "0"`` with ``success: false``.
    failure_shape: Literal["code", "result_code"] = "code"
    #: Emit ``success`` and numbers as strings, as the API pages' samples do.
    success_as_string: bool = False
    #: Require the cover to be a Lazada-hosted (slatic.net) image.
    strict_cover: bool = False
    #: Smallest accepted non-last block; 0 accepts any non-empty block (Lazada publishes no minimum).
    min_block_bytes: int = 0
    #: Where video state messages (push message type 7) are posted; None: no push.
    push_url: str | None = None
    #: Lazada retries an unanswered message 12 times, 30 minutes apart; scale the interval down here.
    push_retry_seconds: float = PUSH_RETRY_SECONDS
    push_retries: int = PUSH_RETRIES


@dataclass(frozen=True)
class Route:
    handler: str
    style: Literal["media", "product", "auth"]
    needs_token: bool = True
    file_field: str | None = None


ROUTES: dict[str, Route] = {
    "/media/video/quota/get": Route("get_video_quota", "media"),
    "/media/video/block/create": Route("init_create_video", "media"),
    "/media/video/block/upload": Route("upload_video_block", "media", file_field="file"),
    "/media/video/block/commit": Route("complete_create_video", "media"),
    "/media/video/get": Route("get_video", "media"),
    "/media/video/remove": Route("remove_video", "media"),
    "/image/upload": Route("upload_image", "product", file_field="image"),
    "/product/create": Route("create_product", "product"),
    "/product/update": Route("update_product", "product"),
    "/product/item/get": Route("get_product_item", "product"),
    "/products/get": Route("get_products", "product"),
    "/auth/token/create": Route("create_access_token", "auth", needs_token=False),
    "/auth/token/refresh": Route("refresh_access_token", "auth", needs_token=False),
}


@dataclass
class Token:
    kind: Literal["access", "refresh"]
    expires_at: float


@dataclass
class Block:
    size: int
    e_tag: str


@dataclass
class Upload:
    upload_id: str
    file_name: str
    file_bytes: int
    created_at: float
    block_count: int | None = None
    blocks: dict[int, Block] = field(default_factory=dict)
    video_id: str | None = None


@dataclass
class Video:
    video_id: str
    title: str
    cover_url: str
    usage: str
    file_name: str
    size: int
    committed_at: float
    audit_seconds: float
    outcome: VideoState
    auth_key: str
    transcode_error: str | None = None
    deleted: bool = False
    #: Digests of the assembled file, computed when first asked for (the commit answers without them).
    md5: str | None = None
    sha256: str | None = None

    def state(self, now: float) -> VideoState:
        """The state GetVideo reports ``now``: three equal steps over ``audit_seconds``, then the outcome."""
        if self.deleted:
            return VideoState.DELETED
        step = (now - self.committed_at) / self.audit_seconds * 3 if self.audit_seconds > 0 else math.inf
        if step < 1:
            return VideoState.READY_FOR_TRANSCODE
        if step < 2:
            return VideoState.TRANSCODING
        if self.outcome is VideoState.TRANSCODE_FAILED:
            return VideoState.TRANSCODE_FAILED
        if step < 3:
            return VideoState.READY_FOR_AUDIT
        return self.outcome

    def steps(self) -> list[float]:
        """When the audit's steps end (each may change the state)."""
        if self.deleted or self.audit_seconds <= 0:
            return []
        return [self.committed_at + self.audit_seconds * k / 3 for k in (1, 2, 3)]


@dataclass
class Product:
    item_id: int
    primary_category: str
    attributes: dict[str, Any]
    images: list[str]
    skus: list[dict[str, Any]]
    created_at: float
    updated_at: float
    status: str = "Active"


@dataclass
class CallResult:
    """What the HTTP layer needs to answer: the API's fields and any transport fault still to apply."""

    body: dict[str, Any]
    fault: QueuedFault | None = None


class LazadaBackend(EmulatorBackend):
    """An in-memory Lazada seller account with blocks and videos stored under ``data_dir``.

    Queued faults (``POST /_sandbox/lazada/faults``, ``{"kind", "api", "count", "seconds"}``): an error
    code, ``http502`` or ``http503`` (a gateway page, the API did not run), ``reset`` (the connection cut,
    the API did not run), ``drop`` (the API ran, the answer is cut off) or ``delay`` (the answer waits
    ``seconds``).
    """

    name = "lazada"
    fault_target = "api"
    config: LazadaSandboxConfig

    def __init__(
        self, config: LazadaSandboxConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(config or LazadaSandboxConfig(), clock)
        (self.data_dir / "uploads").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "videos").mkdir(exist_ok=True)
        (self.data_dir / "images").mkdir(exist_ok=True)
        now = self.clock()
        self.tokens: dict[str, Token] = {
            self.config.access_token: Token("access", now + self.config.access_token_ttl),
            self.config.refresh_token: Token("refresh", now + self.config.refresh_token_ttl),
        }
        self.auth_codes: dict[str, float] = {}
        self.uploads: dict[str, Upload] = {}
        self.videos: dict[str, Video] = {}
        self.products: dict[int, Product] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.push: PushSender | None = None
        if self.config.push_url:
            settings = PushSettings(
                self.config.push_url,
                self.config.app_key,
                self.config.app_secret,
                self.config.seller_id,
                f"lazada_{self.config.country}",
                self.config.push_retries,
                self.config.push_retry_seconds,
            )
            self.push = PushSender(settings, self._state_for_push, self.clock, self.dice)

    def close(self) -> None:
        if self.push is not None:
            self.push.close()
        super().close()

    # ----------------------------------------------------------------- gateway

    def call(self, api: str, params: Mapping[str, str], files: Mapping[str, IO[bytes]]) -> CallResult:
        """Authenticate one gateway request and run its API; raises :class:`ErrorReply` on refusal."""
        route = ROUTES.get(api)
        if route is None:
            raise invalid_api_path(api)
        self.authenticate(api, params, route.needs_token)
        self._check_rate(api, with_token=route.needs_token)
        fault = self.take_fault(api) or self._random_fault(api)
        if fault is not None and fault.kind in ("http502", "http503", "reset"):
            return CallResult({}, fault)  # the gateway failed, or the connection broke, before the API ran
        if fault is not None and fault.kind not in ("drop", "delay"):
            raise self._injected_error(fault.kind)
        handler = getattr(self, route.handler)
        file = files.get(route.file_field) if route.file_field else None
        try:
            body = handler(params, file) if route.file_field else handler(params)
        except ErrorReply as exc:
            exc.fault = fault  # a drop or a delay applies to an error answer too
            raise
        return CallResult(body, fault)

    def authenticate(self, api: str, params: Mapping[str, str], needs_token: bool) -> None:
        """The gateway checks, in order: system parameters, app key, timestamp, signature, token."""
        for name in ("app_key", "sign_method", "timestamp", "sign"):
            if name not in params:
                raise missing_parameter(name)
        if params["app_key"] != self.config.app_key:
            raise invalid_app_key()
        if params["sign_method"] != SIGN_METHOD:
            raise incomplete_signature(f"sign_method must be {SIGN_METHOD}")
        sent_at = parse_timestamp(params["timestamp"])
        if sent_at is None:
            raise incomplete_signature("timestamp is neither epoch milliseconds nor ISO-8601 UTC")
        if abs(self.clock() - sent_at) > self.config.timestamp_window:
            raise incomplete_signature(
                f"timestamp is more than {self.config.timestamp_window:.0f} s away from the gateway's UTC clock"
            )
        signed = {name: value for name, value in params.items() if name != "sign"}
        if params["sign"] != sign(self.config.app_secret, api, signed):
            raise incomplete_signature()
        if needs_token:
            token = params.get("access_token")
            if token is None:
                raise missing_parameter("access_token")
            with self._lock:
                record = self.tokens.get(token)
            if record is None or record.kind != "access" or record.expires_at <= self.clock():
                raise illegal_access_token()

    def _check_rate(self, api: str, with_token: bool) -> None:
        """The per-API rate, then the app's and (for calls with its token) the seller's buckets."""
        if self.over_rate(api, self.config.rate_limit):
            raise api_call_limit()
        config = self.config
        buckets = [(f"app {config.app_key}", config.app_calls_per_second)]
        if with_token:
            buckets.append((f"seller {config.seller_id}", config.seller_calls_per_second))
        for bucket, per_second in buckets:
            if ban := self.limit_calls(bucket, CallLimit(per_second, config.call_burst, config.ban_seconds)):
                raise api_call_limit(ban)

    def _random_fault(self, api: str) -> QueuedFault | None:
        """A fault drawn by the dice (``--fault-rate``), as this gateway shows it."""
        kind = self.dice.roll(api)
        shapes = {
            "unavailable": QueuedFault("http503", api),
            "throttle": QueuedFault("ApiCallLimit", api),
            "reset": QueuedFault("reset", api),
            "drop": QueuedFault("drop", api),
            "slow": QueuedFault("delay", api, seconds=self.dice.slow_seconds),
        }
        return shapes[kind] if kind else None

    @staticmethod
    def _injected_error(kind: str) -> ErrorReply:
        if kind in INJECTABLE_ERRORS:
            type_, message = INJECTABLE_ERRORS[kind]
            return ErrorReply(kind, message, type_=type_)
        return media_failure(kind, f"injected {kind}")

    def check_fault(self, kind: str, target: str) -> None:
        allowed = (
            kind in INJECTABLE_ERRORS
            or kind.startswith("FAIL_TO_")
            or kind in ("http502", "http503", "reset", "drop", "delay")
        )
        if not allowed:
            raise ValueError(f"unknown fault {kind!r}")
        if target != "*" and target not in ROUTES:
            raise ValueError(f"unknown API {target!r}; known: {', '.join(ROUTES)}")

    def log_request(
        self, method: str, api: str, params: Mapping[str, str], code: str, started: float
    ) -> None:
        """Record a request with its secrets masked; empty-valued parameters are flagged (clients in other languages sign them differently)."""
        self.record_request(
            api,
            started,
            method=method,
            api=api,
            params=mask_params(params, extra=("code",) if api == "/auth/token/create" else ()),
            code=code,
            empty_params=sorted(name for name, value in params.items() if value == ""),
        )

    # ------------------------------------------------------------------- media

    def get_video_quota(self, params: Mapping[str, str]) -> dict[str, Any]:
        return {"capacity_size": self.config.capacity_bytes, "used_size": self.used_bytes()}

    def used_bytes(self) -> int:
        with self._lock:
            return sum(video.size for video in self.videos.values() if not video.deleted)

    def init_create_video(self, params: Mapping[str, str]) -> dict[str, Any]:
        file_name = _required(params, "fileName")
        file_bytes = _integer(params, "fileBytes")
        if not 0 < file_bytes < MAX_FILE_BYTES:
            raise illegal_parameter(
                f"fileBytes {file_bytes} must be between 1 and {MAX_FILE_BYTES - 1} bytes"
            )
        with self._lock:
            if self.used_bytes() + file_bytes > self.config.capacity_bytes:
                raise media_failure(
                    "FAIL_TO_BLOCK_INIT",
                    f"video quota exceeded: {self.used_bytes()} of {self.config.capacity_bytes} bytes used",
                )
            upload = Upload(secrets.token_hex(16).upper(), file_name, file_bytes, self.clock())
            self.uploads[upload.upload_id] = upload
        (self.data_dir / "uploads" / upload.upload_id).mkdir()
        return {"upload_id": upload.upload_id}

    def _live_upload(self, params: Mapping[str, str]) -> Upload:
        upload_id = _required(params, "uploadId")
        with self._lock:
            upload = self.uploads.get(upload_id)
        if upload is None or self.clock() - upload.created_at > self.config.upload_ttl:
            raise illegal_parameter(f"uploadId {upload_id} does not exist or has expired")
        return upload

    def upload_video_block(self, params: Mapping[str, str], file: IO[bytes] | None) -> dict[str, Any]:
        upload = self._live_upload(params)
        block_no = _integer(params, "blockNo")
        block_count = _integer(params, "blockCount")
        fewest = math.ceil(upload.file_bytes / MAX_BLOCK_BYTES)
        if not fewest <= block_count <= upload.file_bytes:
            raise illegal_parameter(
                f"blockCount {block_count} cannot split {upload.file_bytes} bytes into non-empty blocks "
                f"of at most {MAX_BLOCK_BYTES} bytes (allowed {fewest}..{upload.file_bytes})"
            )
        if upload.block_count is not None and block_count != upload.block_count:
            raise illegal_parameter(f"blockCount {block_count} differs from {upload.block_count} sent before")
        if not 0 <= block_no < block_count:
            raise illegal_parameter(f"blockNo {block_no} is outside 0..{block_count - 1}")
        if upload.video_id is not None:
            raise media_failure("FAIL_TO_UPLOAD_BLOCK", f"upload {upload.upload_id} is already committed")
        if file is None:
            raise illegal_parameter("the block must be sent as a multipart file part named 'file'")
        target = self.data_dir / "uploads" / upload.upload_id / f"{block_no}.block"
        partial, size, md5 = receive_file(file, target)
        problem = None
        if size == 0:
            problem = f"block {block_no} is empty"
        elif size > MAX_BLOCK_BYTES:
            problem = f"block {block_no} is {size} bytes, over the {MAX_BLOCK_BYTES}-byte limit"
        elif block_no < block_count - 1 and size < self.config.min_block_bytes:
            problem = (
                f"block {block_no} is {size} bytes; blocks before the last need {self.config.min_block_bytes}"
            )
        if problem:
            partial.unlink()
            raise illegal_parameter(problem)
        e_tag = md5.upper()
        with self._lock:
            partial.replace(target)
            upload.block_count = block_count
            upload.blocks[block_no] = Block(size, e_tag)
        return {"e_tag": e_tag}

    def complete_create_video(self, params: Mapping[str, str]) -> dict[str, Any]:
        upload = self._live_upload(params)
        parts = _parse_parts(_required(params, "parts"))
        title = _required(params, "title").strip()
        cover_url = _required(params, "coverUrl").strip()
        usage = params.get("videoUsage") or VIDEO_USAGES[0]
        if not title:
            raise illegal_parameter("title must not be blank")
        self._check_cover(cover_url)
        if usage not in VIDEO_USAGES:
            raise illegal_parameter(f"videoUsage {usage!r} must be one of {', '.join(VIDEO_USAGES)}")
        with self._lock:
            if upload.video_id is not None:
                raise media_failure(
                    "FAIL_TO_BLOCK_COMPLETE",
                    f"upload {upload.upload_id} was already committed as video {upload.video_id}",
                )
            count = upload.block_count
            if count is None:
                raise media_failure("FAIL_TO_BLOCK_COMPLETE", "no block has been uploaded")
            by_number = {part_number: e_tag for part_number, e_tag in parts}
            if len(by_number) != len(parts):
                raise illegal_parameter("parts lists a partNumber more than once")
            outside = sorted(n for n in by_number if not 1 <= n <= count)
            if outside:
                raise illegal_parameter(f"partNumber {outside[0]} is outside 1..{count}")
            for part_number in range(1, count + 1):
                block = upload.blocks.get(part_number - 1)
                if part_number not in by_number or block is None:
                    raise media_failure("FAIL_TO_BLOCK_COMPLETE", f"part {part_number} of {count} is missing")
                if by_number[part_number] != block.e_tag:
                    raise media_failure(
                        "FAIL_TO_BLOCK_COMPLETE", f"eTag of part {part_number} does not match"
                    )
            total = sum(block.size for block in upload.blocks.values())
            if total != upload.file_bytes:
                raise media_failure(
                    "FAIL_TO_VALIDATE", f"blocks hold {total} bytes but fileBytes was {upload.file_bytes}"
                )
            video_id = self._new_id(self.videos, lambda: f"3{secrets.randbelow(10**10):010d}")
            upload.video_id = video_id
        video = self._assemble(upload, video_id, title, cover_url, usage)
        with self._lock:
            self.videos[video_id] = video
        self._state_changed(video_id)
        return {"video_id": video_id}

    def _check_cover(self, cover_url: str) -> None:
        parts = urlsplit(cover_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise illegal_parameter(f"coverUrl {cover_url!r} is not an http(s) URL")
        if self.config.strict_cover and not product_rules.is_lazada_hosted(cover_url):
            raise illegal_parameter(f"coverUrl {cover_url!r} is not a Lazada-hosted image; use /image/upload")

    def _assemble(self, upload: Upload, video_id: str, title: str, cover_url: str, usage: str) -> Video:
        """Concatenate the blocks in order into one file, then drop the blocks. Its digests are computed
        when first asked for, so a commit costs what joining the blocks costs."""
        folder = self.data_dir / "uploads" / upload.upload_id
        target = self.data_dir / "videos" / f"{video_id}.mp4"
        with target.open("wb") as out:
            for block_no in range(upload.block_count or 0):
                with (folder / f"{block_no}.block").open("rb") as block:
                    shutil.copyfileobj(block, out, COPY_CHUNK)
        shutil.rmtree(folder, ignore_errors=True)
        outcome = next((state for marker, state in OUTCOME_MARKERS.items() if marker in title), None)
        transcode_error = None
        try:
            probe_file(target)
        except NotAVideoError as exc:
            transcode_error = str(exc).replace(str(target), upload.file_name)
            outcome = VideoState.TRANSCODE_FAILED
        return Video(
            video_id=video_id,
            title=title,
            cover_url=cover_url,
            usage=usage,
            file_name=upload.file_name,
            size=upload.file_bytes,
            committed_at=self.clock(),
            audit_seconds=self.config.audit_seconds,
            outcome=outcome or VideoState.AUDIT_SUCCESS,
            auth_key=secrets.token_hex(8),
            transcode_error=transcode_error,
        )

    def _video(self, params: Mapping[str, str]) -> Video:
        video_id = _required(params, "videoId")
        if not video_id.isdigit():
            raise illegal_parameter(f"videoId {video_id!r} must be a number")
        with self._lock:
            video = self.videos.get(video_id)
        if video is None:
            raise media_failure("FAIL_TO_GET_VIDEO", f"video {video_id} does not exist")
        return video

    def get_video(self, params: Mapping[str, str]) -> dict[str, Any]:
        video = self._video(params)
        return {
            "title": video.title,
            "cover_url": video.cover_url,
            "video_url": f"{self.public_url}/_sandbox/lazada/videos/{video.video_id}/content?auth_key={video.auth_key}",
            "state": video.state(self.clock()).value,
        }

    def remove_video(self, params: Mapping[str, str]) -> dict[str, Any]:
        video = self._video(params)
        with self._lock:
            if video.deleted:
                raise media_failure("FAIL_TO_GET_VIDEO", f"video {video.video_id} is already deleted")
            self._digest(video)  # before its file goes
            video.deleted = True
            for product in self.products.values():
                if product.attributes.get("video") == video.video_id:
                    product.attributes.pop("video")
        (self.data_dir / "videos" / f"{video.video_id}.mp4").unlink(missing_ok=True)
        self._state_changed(video.video_id)
        return {}

    def set_video_outcome(self, video_id: str, outcome: str, finish_now: bool = False) -> Video:
        """Decide how a video ends (for tests); ``finish_now`` skips the remaining audit time."""
        final = VideoState(outcome)
        if final not in (VideoState.AUDIT_SUCCESS, VideoState.AUDIT_FAILED, VideoState.TRANSCODE_FAILED):
            raise ValueError(f"outcome {outcome!r} must be AUDIT_SUCCESS, AUDIT_FAILED or TRANSCODE_FAILED")
        with self._lock:
            video = self.videos[video_id]
            video.outcome = final
            if finish_now:
                video.committed_at = self.clock() - video.audit_seconds
        self._state_changed(video_id)
        return video

    def _state_changed(self, video_id: str) -> None:
        if self.push is not None:
            self.push.watch(video_id)

    def _state_for_push(self, video_id: str, now: float) -> tuple[str, float, float | None] | None:
        """What a push reports of a video: its state, since when, and when it may change next."""
        with self._lock:
            video = self.videos.get(video_id)
        if video is None:
            return None
        passed = [step for step in video.steps() if step <= now]
        coming = [step for step in video.steps() if step > now]
        since = passed[-1] if passed else video.committed_at
        return video.state(now).value, since if not video.deleted else now, coming[0] if coming else None

    # ------------------------------------------------------------ images, products

    def upload_image(self, params: Mapping[str, str], file: IO[bytes] | None) -> dict[str, Any]:
        if file is None:
            raise product_error(
                "30", "E030: Empty Request (send the image as a multipart file part named 'image')"
            )
        data = file.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise product_error(
                "303", f"E303: The image is too large (file size must be under {MAX_IMAGE_BYTES}B)"
            )
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            extension = "png"
        elif data.startswith(b"\xff\xd8\xff"):
            extension = "jpg"
        else:
            raise product_error("1000", "Internal Application Error (only JPG and PNG images are accepted)")
        hash_code = hashlib.md5(data).hexdigest()
        (self.data_dir / "images" / f"{hash_code}.{extension}").write_bytes(data)
        url = f"https://{self.config.country}-live-01.slatic.net/p/{hash_code}.{extension}"
        with self._lock:
            self.images[hash_code] = {"url": url, "size": len(data)}
        return {"data": {"image": {"hash_code": hash_code, "url": url}}}

    def _check_video_attribute(self, attributes: Mapping[str, Any]) -> None:
        video_id = attributes.get("video")
        if video_id in (None, ""):
            return
        with self._lock:
            video = self.videos.get(str(video_id))
        if video is None or video.state(self.clock()) is not VideoState.AUDIT_SUCCESS:
            state = video.state(self.clock()).value if video else "unknown"
            raise product_error("309", f"Video id status is not audit success (video {video_id} is {state})")

    def create_product(self, params: Mapping[str, str]) -> dict[str, Any]:
        product = product_rules.parse_payload(_payload(params))
        product_rules.check_create(product)
        attributes = dict(product["Attributes"])
        self._check_video_attribute(attributes)
        with self._lock:
            taken = {sku["SellerSku"] for known in self.products.values() for sku in known.skus}
            for sku in product_rules.skus_of(product):
                if str(sku["SellerSku"]) in taken:
                    raise product_error(
                        "4126", f"THD_IC_F_IC_INFRA_PRODUCT_036: SellerSku repeat: {sku['SellerSku']}"
                    )
            item_id = self._new_id(self.products, lambda: 2_000_000_000 + secrets.randbelow(10**9))
            skus = []
            for sku in product_rules.skus_of(product):
                sku_id = 10_000_000_000 + secrets.randbelow(10**10)
                record = {key: value for key, value in sku.items() if key != "Images"}
                record.update(
                    SkuId=sku_id,
                    ShopSku=f"{item_id}_{self.config.country.upper()}-{sku_id}",
                    Status="active",
                    Images=product_rules.images_of(sku),
                )
                skus.append(record)
            now = self.clock()
            self.products[item_id] = Product(
                item_id,
                str(product["PrimaryCategory"]),
                attributes,
                product_rules.images_of(product),
                skus,
                now,
                now,
            )
        sku_list = [
            {"seller_sku": s["SellerSku"], "shop_sku": s["ShopSku"], "sku_id": s["SkuId"]} for s in skus
        ]
        return {"data": {"item_id": item_id, "sku_list": sku_list, "item_status": "Active"}}

    def update_product(self, params: Mapping[str, str]) -> dict[str, Any]:
        payload = product_rules.parse_payload(_payload(params))
        product_rules.check_images(payload, require_one=False)
        skus = product_rules.skus_of(payload)
        if not skus or any(not str(sku.get("SkuId", "")).strip() for sku in skus):
            raise product_error("4216", "skuId is a mandatory field and must be filled in.", field="SkuId")
        with self._lock:
            product = self._product_for_update(payload, skus)
            by_id = {str(sku["SkuId"]): sku for sku in product.skus}
            for sku in skus:
                if str(sku["SkuId"]) not in by_id:
                    raise product_error(
                        "501",
                        f"E501: Update product failed: SkuId {sku['SkuId']} is not a SKU of item {product.item_id}",
                    )
            attributes = payload.get("Attributes") or {}
            if not isinstance(attributes, dict):
                raise product_error("5", "E005: Invalid Request Format (Attributes must be an object)")
            remove_video = attributes.get("remove_video") == "Yes"
            changes = {k: v for k, v in attributes.items() if k != "remove_video"}
            if remove_video:
                changes.pop("video", None)
            self._check_video_attribute(changes)
            product.attributes.update(changes)
            if remove_video:
                product.attributes.pop("video", None)
            if images := product_rules.images_of(payload):
                product.images = images
            for sku in skus:
                record = by_id[str(sku["SkuId"])]
                record.update({k: v for k, v in sku.items() if k not in ("SkuId", "SellerSku", "Images")})
                if sku_images := product_rules.images_of(sku):
                    record["Images"] = sku_images
            product.updated_at = self.clock()
        return {"data": {"item_status": product.status}}

    def _product_for_update(self, payload: Mapping[str, Any], skus: list[dict[str, Any]]) -> Product:
        item_id = str(payload.get("ItemId", "")).strip()
        if item_id:
            product = self.products.get(int(item_id)) if item_id.isdigit() else None
        else:
            wanted = str(skus[0]["SkuId"])
            product = next(
                (p for p in self.products.values() if any(str(s["SkuId"]) == wanted for s in p.skus)), None
            )
        if product is None:
            raise product_error(
                "4137",
                f"The item id {item_id or '(from SkuId)'} entered in the request does not exist on the current "
                "country and store, please call the GetProducts/GetProductItem API to query for the correct item id.",
            )
        return product

    def _product_data(self, product: Product) -> dict[str, Any]:
        return {
            "item_id": product.item_id,
            "primary_category": product.primary_category,
            "attributes": {"video": None, **product.attributes},
            "images": list(product.images),
            "skus": [dict(sku) for sku in product.skus],
            "status": product.status,
            "created_time": str(int(product.created_at * 1000)),
            "updated_time": str(int(product.updated_at * 1000)),
        }

    def get_product_item(self, params: Mapping[str, str]) -> dict[str, Any]:
        item_id = params.get("item_id", "").strip()
        if not item_id:
            raise product_error("200", "E200: Empty SellerSku (item_id is mandatory)")
        with self._lock:
            product = self.products.get(int(item_id)) if item_id.isdigit() else None
            if product is None:
                raise product_error("208", f"E208: Item not exist ({item_id})")
            return {"data": self._product_data(product)}

    def get_products(self, params: Mapping[str, str]) -> dict[str, Any]:
        """GetProducts: ``filter`` (all, live...), ``sku_seller_list`` (a JSON array), ``offset``/``limit``."""
        wanted: set[str] | None = None
        if raw := params.get("sku_seller_list"):
            try:
                listed = json.loads(raw)
            except json.JSONDecodeError:
                listed = None
            if not isinstance(listed, list) or not all(isinstance(sku, str) for sku in listed):
                raise product_error(
                    "5", "E005: Invalid Request Format (sku_seller_list must be a JSON array of strings)"
                )
            wanted = set(listed)
        offset, limit = params.get("offset", "0"), params.get("limit", "10")
        if not offset.isdigit() or not limit.isdigit() or not 1 <= int(limit) <= 50:
            raise product_error("5", "E005: Invalid Request Format (offset >= 0, limit 1..50)")
        with self._lock:
            found = [
                self._product_data(product)
                for product in sorted(self.products.values(), key=lambda p: p.created_at)
                if wanted is None or any(str(sku["SellerSku"]) in wanted for sku in product.skus)
            ]
        page = found[int(offset) : int(offset) + int(limit)]
        return {"data": {"total_products": len(found), "products": page}}

    # -------------------------------------------------------------------- auth

    def issue_auth_code(self) -> str:
        """A single-use authorization code valid for 30 minutes, as the seller's consent page returns."""
        code = secrets.token_hex(16)
        with self._lock:
            self.auth_codes[code] = self.clock() + 1800
        return code

    def create_access_token(self, params: Mapping[str, str]) -> dict[str, Any]:
        code = _required(params, "code")
        with self._lock:
            expires_at = self.auth_codes.pop(code, None)
        if expires_at is None or expires_at <= self.clock():
            raise invalid_code()
        return self._grant(
            refresh_expires_at=self.clock() + self.config.refresh_token_ttl, info_key="country_user_info"
        )

    def refresh_access_token(self, params: Mapping[str, str]) -> dict[str, Any]:
        value = _required(params, "refresh_token")
        with self._lock:
            record = self.tokens.get(value)
        if record is None or record.kind != "refresh" or record.expires_at <= self.clock():
            raise illegal_refresh_token()
        with self._lock:  # rotation: a refresh token is good for one refresh
            if self.tokens.pop(value, None) is None:
                raise illegal_refresh_token()
        # A refresh renews the access token's lifetime but not the refresh token's.
        return self._grant(refresh_expires_at=record.expires_at, info_key="country_user_info_list")

    def _grant(self, refresh_expires_at: float, info_key: str) -> dict[str, Any]:
        now = self.clock()
        access, refresh = f"50000{secrets.token_hex(24)}", f"50001{secrets.token_hex(24)}"
        with self._lock:
            self.tokens[access] = Token("access", now + self.config.access_token_ttl)
            self.tokens[refresh] = Token("refresh", refresh_expires_at)
        seller = self.config.seller_id
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": int(self.config.access_token_ttl),
            "refresh_expires_in": max(0, int(refresh_expires_at - now)),
            "country": self.config.country,
            "account_id": seller,
            "account": f"seller{seller}@sandbox.invalid",
            "account_platform": "seller_center",
            info_key: [
                {
                    "country": self.config.country.upper(),
                    "user_id": seller,
                    "seller_id": seller,
                    "short_code": f"{self.config.country.upper()}{seller}",
                }
            ],
        }

    def expire_access_tokens(self) -> int:
        """Make every access token expired now, so token refresh can be tested."""
        with self._lock:
            expired = [token for token in self.tokens.values() if token.kind == "access"]
            for token in expired:
                token.expires_at = self.clock() - 1
        return len(expired)

    # ----------------------------------------------------------------- inspect

    def _digest(self, video: Video) -> None:
        """Fill in the MD5 and SHA-256 of a video's assembled file, once."""
        path = self.video_path(video.video_id)
        if video.md5 is None and path.exists():
            md5, sha256 = hashlib.md5(), hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(COPY_CHUNK):
                    md5.update(chunk)
                    sha256.update(chunk)
            video.md5, video.sha256 = md5.hexdigest(), sha256.hexdigest()

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            pending = [video for video in self.videos.values() if video.md5 is None]
        for video in pending:
            self._digest(video)
        with self._lock:
            videos = {
                video_id: {
                    **{k: v for k, v in asdict(video).items() if k not in ("auth_key", "outcome")},
                    "state": video.state(now).value,
                    "outcome": video.outcome.value,
                }
                for video_id, video in self.videos.items()
            }
            return {
                "uploads": {
                    upload_id: {
                        "file_name": u.file_name,
                        "file_bytes": u.file_bytes,
                        "block_count": u.block_count,
                        "blocks": {n: asdict(b) for n, b in sorted(u.blocks.items())},
                        "video_id": u.video_id,
                    }
                    for upload_id, u in self.uploads.items()
                },
                "videos": videos,
                "products": {str(item_id): asdict(p) for item_id, p in self.products.items()},
                "images": dict(self.images),
                "quota": {"capacity_size": self.config.capacity_bytes, "used_size": self.used_bytes()},
                "tokens": [
                    {"kind": t.kind, "expires_in": round(t.expires_at - now), "valid": t.expires_at > now}
                    for t in self.tokens.values()
                ],
                "request_counts": dict(self.request_counts),
                "limited": dict(self.limited),
                "faults": [asdict(f) for f in self.faults],
                "pushes": list(self.push.log) if self.push is not None else None,
            }

    def video_path(self, video_id: str) -> Path:
        return self.data_dir / "videos" / f"{video_id}.mp4"

    def _new_id(self, taken: Mapping[Any, Any], make: Callable[[], Any]) -> Any:
        while (candidate := make()) in taken:
            pass
        return candidate


def parse_timestamp(value: str) -> float | None:
    """Epoch milliseconds (the SDK's form) or ISO-8601 UTC such as ``2017-11-11T12:00:00Z``, in seconds."""
    if value.isdigit():
        return int(value) / 1000
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo else None


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise illegal_parameter(f"{name} is mandatory")
    return value


def _integer(params: Mapping[str, str], name: str) -> int:
    value = _required(params, name)
    if not value.isdigit():
        raise illegal_parameter(f"{name} {value!r} must be a non-negative integer")
    return int(value)


def _payload(params: Mapping[str, str]) -> str:
    if "payload" not in params:
        raise product_error("1", "E001: Parameter payload is mandatory", field="payload")
    return params["payload"]


def _parse_parts(raw: str) -> list[tuple[int, str]]:
    """``parts`` as the documented JSON string: ``[{"partNumber": 1, "eTag": "..."}]``."""
    try:
        parts = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise illegal_parameter(f"parts is not valid JSON: {exc}") from None
    if not isinstance(parts, list) or not parts:
        raise illegal_parameter("parts must be a non-empty JSON array")
    parsed = []
    for entry in parts:
        if not isinstance(entry, dict) or set(entry) != {"partNumber", "eTag"}:
            keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise illegal_parameter(f"each part needs exactly the keys partNumber and eTag, got {keys}")
        number, e_tag = entry["partNumber"], entry["eTag"]
        if isinstance(number, bool) or not isinstance(number, int) or not isinstance(e_tag, str):
            raise illegal_parameter("partNumber must be an integer and eTag a string")
        parsed.append((number, e_tag))
    return parsed
