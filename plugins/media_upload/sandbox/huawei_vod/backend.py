"""State and rules of the Huawei Cloud VOD emulator and of the OBS bucket behind its signed URLs.

HTTP-free: :mod:`.app` parses requests and calls these methods. Parts and objects live on disk under
``data_dir``. Choices where Huawei's pages are silent are listed, with their reasons, in
``docs/huawei-vod-sandbox.md``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import shutil
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from media_upload.masking import mask_url
from media_upload.protocols.huawei_vod import (
    ACCEPTED_VIDEO_TYPES,
    CONFIRM_STATUSES,
    DATE_FORMAT,
    FAILED_ASSET_STATUSES,
    MAX_PARTS,
    MIN_PART_BYTES,
    AssetStatus,
    canonical_request,
    obs_signature,
    obs_signed_url,
    obs_string_to_sign,
    parse_authorization,
    sdk_signature,
)
from media_upload.sandbox.core import EmulatorConfig
from media_upload.sandbox.faults import FaultDice
from media_upload.sandbox.huawei_vod.errors import (
    INJECTABLE_OBS_ERRORS,
    INJECTABLE_VOD_ERRORS,
    ObsErrorReply,
    VodErrorReply,
    asset_not_found,
    auth_failed,
    illegal_parameter,
    signature_expired,
)
from media_upload.transfer.media import NotAVideoError, probe_file

#: Title markers that decide an asset's fate deterministically (tests and demos).
OUTCOME_MARKERS = {
    "[TRANSCODE_FAILED]": AssetStatus.TRANSCODE_FAILED,
    "[UPLOAD_FAILED]": AssetStatus.UPLOAD_FAILED,
    "[SERVER_ERROR]": AssetStatus.SERVER_ERROR,
}
_COPY = 1024 * 1024
TRANSPORT_FAULTS = ("drop", "expired_sign")


@dataclass
class HuaweiVodSandboxConfig(EmulatorConfig):
    """Everything that shapes the emulator; the CLI flags map onto these fields."""

    ak: str = "SANDBOXACCESSKEY0001"
    sk: str = "sandbox-secret-key"
    project_id: str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    region: str = "cn-north-4"
    #: Seconds from ConfirmAssetUpload to the final status.
    transcode_seconds: float = 6.0
    data_dir: Path | None = None
    #: Lifetime of every signed URL handed out.
    sign_ttl: float = 3600
    #: Smallest part accepted before the last one at complete.
    min_part_bytes: int = MIN_PART_BYTES
    max_clock_skew: float = 900
    #: An IAM token accepted in ``X-Auth-Token`` instead of AK/SK signing; None disables tokens.
    auth_token: str | None = None
    #: Category ids CreateAsset accepts besides ``-1`` (the preset "Other").
    category_ids: tuple[int, ...] = (0, 1, 2, 3)

    @property
    def bucket(self) -> str:
        return f"vod-bucket-01-{self.region}"


@dataclass
class StoredObject:
    size: int
    md5: str
    etag: str
    stored_at: float


@dataclass
class Part:
    size: int
    md5: str


@dataclass
class MultipartUpload:
    upload_id: str
    bucket: str
    key: str
    initiated_at: float
    content_type: str
    parts: dict[int, Part] = field(default_factory=dict)
    state: str = "open"  # open, completed, aborted


@dataclass
class Asset:
    asset_id: str
    title: str
    video_name: str
    video_type: str
    description: str
    category_id: int
    tags: str
    auto_publish: int
    template_group_name: str
    video_md5: str | None
    bucket: str
    object_key: str
    created_at: float
    transcode_seconds: float
    confirm: str | None = None
    confirmed_at: float | None = None
    outcome: AssetStatus | None = None
    failure_reason: str | None = None
    deleted: bool = False

    @property
    def transcoding(self) -> bool:
        return bool(self.template_group_name) or self.outcome is AssetStatus.TRANSCODE_FAILED

    def status(self, now: float) -> AssetStatus:
        """Before confirm ``CREATING``; after ``CREATED`` three steps over ``transcode_seconds``."""
        if self.deleted:
            return AssetStatus.DELETED
        if self.confirm is None or self.confirmed_at is None:
            return AssetStatus.CREATING
        if self.confirm == "CANCELLED":
            return AssetStatus.CANCELLED
        if self.confirm == "FAILED":
            return AssetStatus.UPLOAD_FAILED
        step = (
            (now - self.confirmed_at) / self.transcode_seconds * 3 if self.transcode_seconds > 0 else math.inf
        )
        done = step >= 3
        if self.outcome is not None and done:
            return self.outcome
        if not self.transcoding:
            if done and self.auto_publish:
                return AssetStatus.PUBLISHED
            return AssetStatus.CREATED
        if step < 1:
            return AssetStatus.WAITING_TRANSCODE
        if not done:
            return AssetStatus.TRANSCODING
        return AssetStatus.PUBLISHED if self.auto_publish else AssetStatus.TRANSCODE_SUCCEED


@dataclass
class Fault:
    """An injected fault for one operation (or ``*``): an error code, ``drop`` or ``expired_sign``."""

    kind: str
    operation: str = "*"
    remaining: int = 1


VOD_OPERATIONS = (
    "CreateAsset", "ShowAssetTempAuthority", "ConfirmAssetUpload", "ShowAssetMeta", "ShowAssetDetail",
    "ListAssetList", "DeleteAssets",
)  # fmt: skip
OBS_OPERATIONS = (
    "InitiateMultipartUpload", "UploadPart", "ListParts", "CompleteMultipartUpload", "AbortMultipartUpload",
    "PutObject", "GetObject",
)  # fmt: skip


class HuaweiVodBackend:
    """One VOD tenant (project) with one OBS bucket, stored under ``data_dir``."""

    def __init__(
        self, config: HuaweiVodSandboxConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config or HuaweiVodSandboxConfig()
        self.clock = clock
        self._lock = threading.RLock()
        self._own_data_dir = self.config.data_dir is None
        self.data_dir = Path(self.config.data_dir or tempfile.mkdtemp(prefix="huawei-vod-sandbox-"))
        (self.data_dir / "objects").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "multipart").mkdir(exist_ok=True)
        self.public_url = "http://127.0.0.1"
        self.assets: dict[str, Asset] = {}
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.uploads: dict[str, MultipartUpload] = {}
        self.faults: list[Fault] = []
        self.dice = FaultDice(
            self.config.fault_rate, self.config.fault_seed, slow_seconds=self.config.slow_seconds
        )
        self.request_log: deque[dict[str, Any]] = deque(maxlen=5000)
        self.request_counts: Counter[str] = Counter()

    def close(self) -> None:
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -------------------------------------------------------------- faults, log

    def add_fault(self, kind: str, operation: str = "*", count: int = 1) -> Fault:
        known = {*INJECTABLE_VOD_ERRORS, *INJECTABLE_OBS_ERRORS, *TRANSPORT_FAULTS}
        if kind not in known or count < 1:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(sorted(known))}) or count < 1")
        if operation != "*" and operation not in (*VOD_OPERATIONS, *OBS_OPERATIONS):
            raise ValueError(f"unknown operation {operation!r}")
        fault = Fault(kind, operation, count)
        with self._lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, operation: str, kinds: Iterable[str]) -> Fault | None:
        wanted = set(kinds)
        with self._lock:
            for fault in self.faults:
                if fault.kind in wanted and fault.operation in ("*", operation):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def injected_error(self, operation: str) -> VodErrorReply | ObsErrorReply | None:
        vod = operation in VOD_OPERATIONS
        fault = self.take_fault(operation, INJECTABLE_VOD_ERRORS if vod else INJECTABLE_OBS_ERRORS)
        if fault is None:
            return None
        if vod:
            return VodErrorReply(*_status_and(INJECTABLE_VOD_ERRORS[fault.kind], fault.kind))
        return ObsErrorReply(*_status_and(INJECTABLE_OBS_ERRORS[fault.kind], fault.kind))

    def log_request(
        self, method: str, url: str, operation: str, status: int, code: str | None, started: float
    ) -> None:
        """Record a request (when it arrived, how long it took) with ``Signature`` (and any token) masked."""
        entry = {
            "at": started,
            "ms": round((self.clock() - started) * 1000, 1),
            "method": method,
            "url": mask_url(url),
            "operation": operation,
            "status": status,
            "code": code,
        }
        with self._lock:
            self.request_log.append(entry)
            self.request_counts[operation] += 1

    # ----------------------------------------------------------- authentication

    def authenticate_vod(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
        project_id: str,
    ) -> None:
        """AK/SK ``SDK-HMAC-SHA256`` over the received request, or ``X-Auth-Token``; APIG's errors otherwise."""
        lowered = {name.lower(): value for name, value in headers.items()}
        token = lowered.get("x-auth-token")
        if token is not None:
            if self.config.auth_token is None or not secrets.compare_digest(token, self.config.auth_token):
                raise auth_failed("the token is missing, expired or cannot be decrypted")
        else:
            fields = parse_authorization(lowered.get("authorization", ""))
            if fields is None:
                raise auth_failed("verify aksk signature fail (no SDK-HMAC-SHA256 Authorization header)")
            if fields["Access"] != self.config.ak:
                raise auth_failed("verify aksk signature fail (unknown access key)")
            sdk_date = lowered.get("x-sdk-date", "")
            try:
                sent = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=UTC).timestamp()
            except ValueError:
                raise auth_failed(
                    "verify aksk signature fail (X-Sdk-Date missing or not YYYYMMDDTHHMMSSZ)"
                ) from None
            if abs(self.clock() - sent) > self.config.max_clock_skew:
                raise signature_expired(
                    f"X-Sdk-Date {sdk_date} is more than 15 minutes from the server's time"
                )
            names = fields["SignedHeaders"].split(";")
            if not {"host", "x-sdk-date"} <= set(names) or any(name not in lowered for name in names):
                raise auth_failed("verify aksk signature fail (host and x-sdk-date must be signed and sent)")
            canonical, _ = canonical_request(method, path, query, {n: lowered[n] for n in names}, body)
            if not secrets.compare_digest(
                fields["Signature"], sdk_signature(self.config.sk, sdk_date, canonical)
            ):
                raise auth_failed("verify aksk signature fail")
        if project_id != self.config.project_id:
            raise auth_failed(f"the project id {project_id} in the URL does not belong to these credentials")

    def authenticate_obs(
        self,
        method: str,
        bucket: str,
        key: str,
        query: list[tuple[str, str | None]],
        headers: Mapping[str, str],
    ) -> None:
        """The V2 query signature of a presigned URL, recomputed from what arrived; and its expiry."""
        params = {name: value or "" for name, value in query}
        if bucket != self.config.bucket:
            raise ObsErrorReply(404, "NoSuchBucket", f"The specified bucket {bucket} does not exist")
        if not {"AWSAccessKeyId", "Expires", "Signature"} <= set(params):
            raise ObsErrorReply(403, "AccessDenied", "Anonymous access is forbidden for this operation")
        if params["AWSAccessKeyId"] != self.config.ak:
            raise ObsErrorReply(
                403, "InvalidAccessKeyId", "The OBS access key Id you provided does not exist in our records."
            )
        if not params["Expires"].isdigit():
            raise ObsErrorReply(403, "AccessDenied", "Expires must be epoch seconds")
        lowered = {name.lower(): value for name, value in headers.items()}
        string_to_sign = obs_string_to_sign(
            method,
            lowered.get("content-md5", ""),
            lowered.get("content-type", ""),
            params["Expires"],
            bucket,
            key,
            query,
        )
        if not secrets.compare_digest(params["Signature"], obs_signature(self.config.sk, string_to_sign)):
            raise ObsErrorReply(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
        if int(params["Expires"]) < self.clock():
            raise ObsErrorReply(403, "AccessDenied", "Request has expired")

    # --------------------------------------------------------------------- VOD

    def create_asset(self, body: Mapping[str, Any]) -> dict[str, Any]:
        title = _text_field(body, "title", 128, required=True)
        video_name = _text_field(body, "video_name", 128, required=True)
        video_type = str(body.get("video_type") or "")
        if video_type not in ACCEPTED_VIDEO_TYPES:
            raise illegal_parameter(f"video_type {video_type!r}")
        description = _text_field(body, "description", 1024)
        category_id = body.get("category_id", -1)
        if isinstance(category_id, str) and category_id.lstrip("-").isdigit():
            category_id = int(category_id)
        if not isinstance(category_id, int) or isinstance(category_id, bool):
            raise illegal_parameter(f"category_id {category_id!r}")
        if category_id != -1 and category_id not in self.config.category_ids:
            raise VodErrorReply(403, "VOD.10064", "Media asset classification does not exist, please check.")
        tags = str(body.get("tags") or "")
        tag_list = [tag for tag in tags.split(",") if tag]
        if len(tag_list) > 16 or any(len(tag.encode()) > 16 for tag in tag_list):
            raise illegal_parameter("tags (at most 16 tags of at most 16 bytes)")
        auto_publish = body.get("auto_publish", 1)
        if isinstance(auto_publish, bool) or auto_publish not in (0, 1):
            raise illegal_parameter(f"auto_publish {auto_publish!r} (0 or 1)")
        video_md5 = body.get("video_md5")
        if video_md5 is not None and (not isinstance(video_md5, str) or len(video_md5) != 24):
            raise illegal_parameter("video_md5 (base64 of the 16-byte MD5)")
        extension = video_type.lower()
        with self._lock:
            asset_id = _unique_hex(self.assets, lowercase=True)
            object_key = f"{self.config.project_id}/{asset_id}/{secrets.token_hex(16)}.{extension}"
            asset = Asset(
                asset_id=asset_id,
                title=title,
                video_name=video_name,
                video_type=video_type,
                description=description,
                category_id=category_id,
                tags=tags,
                auto_publish=auto_publish,
                template_group_name=str(body.get("template_group_name") or ""),
                video_md5=video_md5,
                bucket=self.config.bucket,
                object_key=object_key,
                created_at=self.clock(),
                transcode_seconds=self.config.transcode_seconds,
                outcome=next((s for marker, s in OUTCOME_MARKERS.items() if marker in title), None),
            )
            self.assets[asset_id] = asset
        content_type = _SINGLE_PUT_TYPES.get(video_type, "application/octet-stream")
        upload_url = self._signed(asset, "PUT", content_type=content_type, content_md5=video_md5 or "")
        return {
            "asset_id": asset_id,
            "video_upload_url": upload_url,
            "cover_upload_url": None,
            "subtitle_upload_urls": [],
            "target": {"bucket": asset.bucket, "location": self.config.region, "object": object_key},
        }

    def _signed(
        self,
        asset: Asset,
        verb: str,
        *,
        content_type: str = "",
        content_md5: str = "",
        sub_resources: Iterable[tuple[str, str | None]] = (),
        expired: bool = False,
    ) -> str:
        expires = int(self.clock() + (-60 if expired else self.config.sign_ttl))
        return obs_signed_url(
            self.public_url,
            asset.bucket,
            asset.object_key,
            self.config.ak,
            self.config.sk,
            verb,
            expires,
            content_type=content_type,
            content_md5=content_md5,
            sub_resources=sub_resources,
        )

    def _asset(self, asset_id: str) -> Asset:
        with self._lock:
            asset = self.assets.get(asset_id)
        if asset is None:
            raise asset_not_found(asset_id)
        return asset

    def temp_authority(self, query: Mapping[str, str], *, expired: bool = False) -> dict[str, str]:
        """ShowAssetTempAuthority (v1.1): a full presigned OBS URL for one operation on an uploading asset."""
        verb = query.get("http_verb", "")
        if verb not in ("POST", "PUT", "GET", "DELETE"):
            raise illegal_parameter(f"http_verb {verb!r}")
        bucket, key = query.get("bucket", ""), query.get("object_key", "")
        with self._lock:
            asset = next(
                (a for a in self.assets.values() if a.bucket == bucket and a.object_key == key), None
            )
        if asset is None:
            raise illegal_parameter("bucket/object_key (no media asset owns this object)")
        if asset.status(self.clock()) is not AssetStatus.CREATING:
            raise VodErrorReply(
                403, "VOD.10135", "The media asset is not in the uploading state, cannot get authority."
            )
        upload_id = query.get("upload_id") or None
        part_number = query.get("part_number") or None
        if part_number is not None and not (part_number.isdigit() and 1 <= int(part_number) <= MAX_PARTS):
            raise illegal_parameter(f"part_number {part_number!r} (1..{MAX_PARTS})")
        content_md5 = query.get("content_md5", "")
        if verb == "POST" and upload_id is None:  # initiate
            return {
                "sign_str": self._signed(
                    asset,
                    "POST",
                    content_type=query.get("content_type", ""),
                    sub_resources=[("uploads", None)],
                    expired=expired,
                )
            }
        if upload_id is None:
            raise illegal_parameter("upload_id (required except for initiate)")
        if verb == "PUT":
            if part_number is None:
                raise illegal_parameter("part_number (required to upload a part)")
            subs: list[tuple[str, str | None]] = [("partNumber", part_number), ("uploadId", upload_id)]
            url = self._signed(
                asset,
                "PUT",
                content_type="application/octet-stream",
                content_md5=content_md5,
                sub_resources=subs,
                expired=expired,
            )
        else:
            content_type = "application/xml" if verb == "POST" else ""
            url = self._signed(
                asset,
                verb,
                content_type=content_type,
                sub_resources=[("uploadId", upload_id)],
                expired=expired,
            )
        return {"sign_str": url}

    def temp_authority_v10(self, query: Mapping[str, str]) -> dict[str, str]:
        """The v1.0 variant: only ``AWSAccessKeyId=…&Expires=…&Signature=…``, for clients building the URL."""
        url = self.temp_authority(query)["sign_str"]
        query_string = url.split("?", 1)[1]
        return {
            "sign_str": "&".join(
                p
                for p in query_string.split("&")
                if p.split("=")[0] in ("AWSAccessKeyId", "Expires", "Signature")
            )
        }

    def confirm_asset_upload(self, body: Mapping[str, Any]) -> dict[str, Any]:
        asset_id, status = body.get("asset_id"), body.get("status")
        if not isinstance(asset_id, str) or not asset_id:
            raise illegal_parameter("asset_id")
        if status not in CONFIRM_STATUSES:
            raise illegal_parameter(f"status {status!r} (CREATED, FAILED or CANCELLED)")
        asset = self._asset(asset_id)
        with self._lock:
            if asset.confirm is not None or asset.deleted:
                raise VodErrorReply(403, "VOD.10126", "The media asset status does not allow this operation.")
            asset.confirm, asset.confirmed_at = status, self.clock()
            open_uploads = [
                u for u in self.uploads.values() if u.key == asset.object_key and u.state == "open"
            ]
        if status != "CREATED":
            for upload in open_uploads:  # CANCELLED (and FAILED) discard what was uploaded
                self._drop_upload(upload, "aborted")
            self._drop_object(asset)
            return {"asset_id": asset_id}
        stored = self.objects.get((asset.bucket, asset.object_key))
        reason = None
        if stored is None:
            reason, asset.outcome = "no object was uploaded to the asset's target", AssetStatus.UPLOAD_FAILED
        elif asset.video_md5 and asset.video_md5 != _b64_of_hex(stored.md5):
            reason, asset.outcome = (
                "the uploaded object's MD5 differs from video_md5",
                AssetStatus.UPLOAD_FAILED,
            )
        else:
            try:
                probe_file(self.object_path(asset.bucket, asset.object_key))
            except NotAVideoError as exc:
                reason = str(exc).replace(
                    str(self.object_path(asset.bucket, asset.object_key)), asset.video_name
                )
                asset.outcome = AssetStatus.TRANSCODE_FAILED
        asset.failure_reason = reason
        return {"asset_id": asset_id}

    def asset_info(self, asset: Asset) -> dict[str, Any]:
        status = asset.status(self.clock())
        stored = self.objects.get((asset.bucket, asset.object_key))
        info: dict[str, Any] = {
            "asset_id": asset.asset_id,
            "status": status.value,
            "description": asset.failure_reason or f"Asset meta is {status.value.lower()}",
            "is_multi_transcode": False,
            "base_info": {
                "title": asset.title,
                "video_name": asset.video_name,
                "description": asset.description,
                "category_id": asset.category_id,
                "video_type": asset.video_type,
                "tags": asset.tags,
                "create_time": _vod_time(asset.created_at),
                "video_url": f"https://{asset.bucket}.obs.{self.config.region}.myhuaweicloud.com/{asset.object_key}",
                "meta_data": {"size": stored.size if stored else 0},
            },
            "play_info_array": [],
        }
        if status is AssetStatus.PUBLISHED:
            info["play_info_array"] = [
                {
                    "play_type": "mp4",
                    "url": f"{self.public_url}/_sandbox/huawei-vod/play/{asset.asset_id}/index.mp4",
                    "encrypted": 0,
                    "meta_data": {"size": stored.size if stored else 0},
                }
            ]
        return info

    def show_asset_meta(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        """ShowAssetMeta: ``asset_id`` repeated or comma-separated (at most 10); unknown ids are ``UNCREATED``."""
        ids = _id_list(query)
        wanted = {v for name, value in query if name == "status" for v in value.split(",") if v}
        page, size = _page(query)
        with self._lock:
            chosen = [self.assets[i] for i in ids if i in self.assets] if ids else list(self.assets.values())
        infos = [self.asset_info(asset) for asset in chosen]
        infos += [
            {
                "asset_id": i,
                "status": AssetStatus.UNCREATED.value,
                "description": "The media asset does not exist",
            }
            for i in ids
            if i not in self.assets
        ]
        if wanted:
            infos = [info for info in infos if info["status"] in wanted]
        shown = infos[page * size : (page + 1) * size]
        return {
            "asset_info_array": shown,
            "is_truncated": int(len(infos) > (page + 1) * size),
            "total": len(infos),
        }

    def show_asset_detail(self, query: Mapping[str, str]) -> dict[str, Any]:
        """ShowAssetDetail: the ``categories`` asked for (all when none): base, transcode, thumbnail, review."""
        asset = self._asset(query.get("asset_id", ""))
        categories = {c for c in query.get("categories", "").split(",") if c} or set(_DETAIL_CATEGORIES)
        if not categories <= set(_DETAIL_CATEGORIES):
            raise illegal_parameter(f"categories {sorted(categories - set(_DETAIL_CATEGORIES))}")
        info = self.asset_info(asset)
        sub = self._sub_statuses(asset)
        blocks = {
            "base_info": info["base_info"],
            "transcode_info": {
                "transcode_status": sub["transcode_status"],
                "output": info["play_info_array"],
            },
            "thumbnail_info": {"thumbnail_status": sub["thumbnail_status"]},
            "review_info": {"review_status": sub["review_status"]},
        }
        return {
            "asset_id": asset.asset_id,
            **{name: blocks[name] for name in _DETAIL_CATEGORIES if name in categories},
        }

    def _sub_statuses(self, asset: Asset) -> dict[str, str]:
        """ListAssetList's per-asset statuses, derived from the asset-level one."""
        status = asset.status(self.clock())
        transcode = {
            AssetStatus.TRANSCODE_SUCCEED: "TRANSCODE_SUCCEED",
            AssetStatus.PUBLISHED: "TRANSCODE_SUCCEED" if asset.transcoding else "UN_TRANSCODE",
            AssetStatus.TRANSCODE_FAILED: "TRANSCODE_FAILED",
            AssetStatus.TRANSCODING: "TRANSCODING",
            AssetStatus.WAITING_TRANSCODE: "WAITING_TRANSCODE",
        }.get(status, "UN_TRANSCODE")
        if asset.deleted:
            asset_status = "DELETED"
        elif status is AssetStatus.PUBLISHED:
            asset_status = "PUBLISHED"
        elif status is AssetStatus.CREATING:
            asset_status = "CREATING"
        elif status.value in FAILED_ASSET_STATUSES:
            asset_status = "FAILED"
        else:
            asset_status = "CREATED"
        return {
            "asset_status": asset_status,
            "transcode_status": transcode,
            "thumbnail_status": "UN_THUMBNAIL",
            "review_status": "UN_REVIEW",
        }

    def list_assets(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        """ListAssetList: filters ``asset_id`` (at most 10) and ``status`` (asset-level), paged by ``page``/``size``."""
        ids = set(_id_list(query))
        wanted = {v for name, value in query if name == "status" for v in value.split(",") if v}
        page, size = _page(query)
        with self._lock:
            assets = sorted(self.assets.values(), key=lambda a: a.created_at)
        rows = []
        for asset in assets:
            if ids and asset.asset_id not in ids:
                continue
            sub = self._sub_statuses(asset)
            if wanted and sub["asset_status"] not in wanted:
                continue
            rows.append(
                {
                    "asset_id": asset.asset_id,
                    "title": asset.title,
                    "media_type": asset.video_type,
                    "exec_desc": asset.failure_reason or "",
                    **sub,
                }
            )
        return {"total": len(rows), "assets": rows[page * size : (page + 1) * size]}

    def delete_assets(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        ids = _id_list(query)
        if not ids:
            raise illegal_parameter("asset_id (1 to 10)")
        results = []
        for asset_id in ids:
            with self._lock:
                asset = self.assets.get(asset_id)
            if asset is None:
                results.append({"asset_id": asset_id, "status": "DELETE_FAILED"})
                continue
            asset.deleted = True
            self._drop_object(asset)
            results.append({"asset_id": asset_id, "status": "DELETED"})
        return {"delete_result_array": results}

    def set_asset_outcome(self, asset_id: str, outcome: str, finish_now: bool = False) -> Asset:
        """Decide how a confirmed asset ends (for tests); ``finish_now`` skips the remaining time."""
        final = AssetStatus(outcome)
        with self._lock:
            asset = self.assets[asset_id]
            asset.outcome = final
            if finish_now and asset.confirmed_at is not None:
                asset.confirmed_at = self.clock() - asset.transcode_seconds
        return asset

    # --------------------------------------------------------------------- OBS

    def object_path(self, bucket: str, key: str) -> Path:
        return self.data_dir / "objects" / bucket / key

    def _store_stream(self, stream: IO[bytes], target: Path) -> tuple[int, str]:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.partial")
        digest, size = hashlib.md5(), 0
        with partial.open("wb") as out:
            while chunk := stream.read(_COPY):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        partial.replace(target)
        return size, digest.hexdigest()

    def initiate_multipart(self, bucket: str, key: str, content_type: str) -> str:
        with self._lock:
            upload_id = _unique_hex(self.uploads, lowercase=False)
            self.uploads[upload_id] = MultipartUpload(upload_id, bucket, key, self.clock(), content_type)
        (self.data_dir / "multipart" / upload_id).mkdir()
        return upload_id

    def _open_upload(self, upload_id: str, bucket: str, key: str) -> MultipartUpload:
        with self._lock:
            upload = self.uploads.get(upload_id)
        if upload is None or upload.state != "open" or (upload.bucket, upload.key) != (bucket, key):
            raise ObsErrorReply(
                404,
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            )
        return upload

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: str,
        stream: IO[bytes],
        content_md5: str | None,
    ) -> str:
        if not part_number.isdigit() or not 1 <= int(part_number) <= MAX_PARTS:
            raise ObsErrorReply(
                400, "InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive"
            )
        upload = self._open_upload(upload_id, bucket, key)
        number = int(part_number)
        target = self.data_dir / "multipart" / upload_id / f"{number}.part"
        staging = target.with_suffix(".incoming")
        size, md5 = self._store_stream(stream, staging)
        if content_md5 is not None and content_md5 != _b64_of_hex(md5):
            staging.unlink()
            raise ObsErrorReply(
                400, "BadDigest", "The Content-MD5 you specified did not match what we received."
            )
        with self._lock:
            staging.replace(target)
            upload.parts[number] = Part(size, md5)
        return f'"{md5}"'

    def list_parts(self, bucket: str, key: str, upload_id: str, query: Mapping[str, str]) -> str:
        upload = self._open_upload(upload_id, bucket, key)
        marker_text, max_text = query.get("part-number-marker") or "0", query.get("max-parts") or "1000"
        if not marker_text.isdigit() or not max_text.isdigit() or int(max_text) < 1:
            raise ObsErrorReply(
                400,
                "InvalidArgument",
                "max-parts must be a positive integer and part-number-marker a non-negative one",
            )
        marker, max_parts = int(marker_text), min(int(max_text), 1000)
        numbers = sorted(n for n in upload.parts if n > marker)
        page, truncated = numbers[:max_parts], len(numbers) > max_parts
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><LastModified>{_iso(upload.initiated_at)}</LastModified>"
            f'<ETag>"{upload.parts[n].md5}"</ETag><Size>{upload.parts[n].size}</Size></Part>'
            for n in page
        )
        return _xml(
            "ListPartsResult",
            f"<Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{upload_id}</UploadId>"
            f"<Initiator><ID>{self.config.ak}</ID></Initiator><Owner><ID>{self.config.project_id}</ID></Owner>"
            f"<StorageClass>STANDARD</StorageClass><PartNumberMarker>{marker}</PartNumberMarker>"
            f"<NextPartNumberMarker>{page[-1] if page else marker}</NextPartNumberMarker><MaxParts>{max_parts}</MaxParts>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{parts}",
        )

    def complete_multipart(self, bucket: str, key: str, upload_id: str, body: bytes) -> str:
        upload = self._open_upload(upload_id, bucket, key)
        listed = _parse_complete_body(body)
        numbers = [number for number, _ in listed]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise ObsErrorReply(
                400,
                "InvalidPartOrder",
                "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
            )
        for number, etag in listed:
            part = upload.parts.get(number)
            if part is None or etag.strip('"') != part.md5:
                raise ObsErrorReply(
                    400,
                    "InvalidPart",
                    f"One or more of the specified parts could not be found or its ETag did not match (part {number}).",
                )
        for number, _ in listed[:-1]:
            if upload.parts[number].size < self.config.min_part_bytes:
                raise ObsErrorReply(
                    400,
                    "EntityTooSmall",
                    f"Part {number} is smaller than the minimum allowed size of {self.config.min_part_bytes} bytes.",
                )
        target = self.object_path(bucket, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = self.data_dir / "multipart" / upload_id
        digest = hashlib.md5()
        size = 0
        with target.open("wb") as out:
            for number in numbers:
                with (folder / f"{number}.part").open("rb") as part_file:
                    while chunk := part_file.read(_COPY):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        combined = hashlib.md5(b"".join(bytes.fromhex(upload.parts[n].md5) for n in numbers)).hexdigest()
        etag = f'"{combined}-{len(numbers)}"'
        with self._lock:
            self.objects[(bucket, key)] = StoredObject(size, digest.hexdigest(), etag, self.clock())
        self._drop_upload(upload, "completed")
        return _xml(
            "CompleteMultipartUploadResult",
            f"<Location>{self.public_url}/{bucket}/{key}</Location><Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>{etag}</ETag>",
        )

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        self._drop_upload(self._open_upload(upload_id, bucket, key), "aborted")

    def put_object(self, bucket: str, key: str, stream: IO[bytes], content_md5: str | None) -> str:
        target = self.object_path(bucket, key)
        staging = target.with_name(f"{target.name}.incoming")
        size, md5 = self._store_stream(stream, staging)
        if content_md5 is not None and content_md5 != _b64_of_hex(md5):
            staging.unlink()
            raise ObsErrorReply(
                400, "BadDigest", "The Content-MD5 you specified did not match what we received."
            )
        staging.replace(target)
        etag = f'"{md5}"'
        with self._lock:
            self.objects[(bucket, key)] = StoredObject(size, md5, etag, self.clock())
        return etag

    def _drop_upload(self, upload: MultipartUpload, state: str) -> None:
        with self._lock:
            upload.state = state
        shutil.rmtree(self.data_dir / "multipart" / upload.upload_id, ignore_errors=True)

    def _drop_object(self, asset: Asset) -> None:
        with self._lock:
            self.objects.pop((asset.bucket, asset.object_key), None)
        self.object_path(asset.bucket, asset.object_key).unlink(missing_ok=True)

    # ----------------------------------------------------------------- inspect

    def snapshot(self) -> dict[str, Any]:
        """Assets (status, stored object MD5 and size), open and finished uploads, request counts; no secret."""
        now = self.clock()
        with self._lock:
            assets = {}
            for asset_id, asset in self.assets.items():
                stored = self.objects.get((asset.bucket, asset.object_key))
                assets[asset_id] = {
                    **{k: v for k, v in asdict(asset).items() if k != "outcome"},
                    "status": asset.status(now).value,
                    "outcome": asset.outcome.value if asset.outcome else None,
                    "object": asdict(stored) if stored else None,
                }
            return {
                "assets": assets,
                "uploads": {
                    upload_id: {
                        "key": u.key,
                        "state": u.state,
                        "parts": {n: asdict(p) for n, p in sorted(u.parts.items())},
                    }
                    for upload_id, u in self.uploads.items()
                },
                "request_counts": dict(self.request_counts),
                "faults": [asdict(f) for f in self.faults],
            }


_SINGLE_PUT_TYPES = {
    "MP4": "video/mp4", "MOV": "video/quicktime", "TS": "video/mp2t", "MPG": "video/mpeg", "MPEG": "video/mpeg",
    "FLV": "video/flv", "WMV": "video/x-ms-wmv", "MXF": "application/mxf", "AVI": "video/x-msvideo", "M4V": "video/m4v",
    "F4V": "application/f4v", "3GP": "video/3gpp", "ASF": "video/x-ms-asf", "MKV": "video/x-matroska", "WEBM": "video/webm",
}  # fmt: skip
_DETAIL_CATEGORIES = ("base_info", "transcode_info", "thumbnail_info", "review_info")


def _id_list(query: list[tuple[str, str]]) -> list[str]:
    """``asset_id`` values, repeated keys or comma-separated (the SDK and the docs differ), at most 10."""
    ids = [part for name, value in query if name == "asset_id" for part in value.split(",") if part]
    if len(ids) > 10:
        raise illegal_parameter("asset_id (at most 10)")
    return ids


def _page(query: list[tuple[str, str]]) -> tuple[int, int]:
    params = dict(query)
    page, size = params.get("page") or "0", params.get("size") or "10"
    if not page.isdigit() or not size.isdigit() or not 1 <= int(size) <= 100:
        raise illegal_parameter("page (0 or more) and size (1..100)")
    return int(page), int(size)


def _status_and(entry: tuple[int, str], code: str) -> tuple[int, str, str]:
    return entry[0], code, entry[1]


def _text_field(body: Mapping[str, Any], name: str, max_bytes: int, required: bool = False) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise illegal_parameter(f"{name} (required)")
        return ""
    if not isinstance(value, str) or len(value.encode()) > max_bytes:
        raise illegal_parameter(f"{name} (a string of at most {max_bytes} bytes)")
    return value


def _unique_hex(taken: Mapping[str, Any], lowercase: bool) -> str:
    while True:
        value = secrets.token_hex(16)
        value = value if lowercase else value.upper()
        if value not in taken:
            return value


def _b64_of_hex(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def _vod_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%d%H%M%S")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _xml(root: str, inner: str) -> str:
    namespace = "http://obs.myhwclouds.com/doc/2015-06-30/"
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><{root} xmlns="{namespace}">{inner}</{root}>'
    )


def _parse_complete_body(body: bytes) -> list[tuple[int, str]]:
    """The ``(PartNumber, ETag)`` pairs of a CompleteMultipartUpload body, namespace-agnostic."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise ObsErrorReply(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        ) from None
    parts = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Part":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in element}
        if not fields.get("PartNumber", "").isdigit() or "ETag" not in fields:
            raise ObsErrorReply(400, "MalformedXML", "Each Part needs a PartNumber and an ETag.")
        parts.append((int(fields["PartNumber"]), fields["ETag"]))
    if root.tag.rsplit("}", 1)[-1] != "CompleteMultipartUpload" or not parts:
        raise ObsErrorReply(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    return parts
