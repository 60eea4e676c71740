"""State and rules of the Huawei Cloud VOD emulator and of the OBS bucket behind its signed URLs.

HTTP-free: :mod:`.app` parses requests and calls these methods. Parts and objects live on disk under
``data_dir``. Choices where Huawei's pages are silent are listed, with their reasons, in
``docs/huawei-vod-sandbox.md``.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

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
    obs_signed_url,
    parse_authorization,
    sdk_signature,
)
from media_upload.sandbox.core import CallLimit, EmulatorBackend, EmulatorConfig
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
from media_upload.sandbox.huawei_vod.notify import Notice, NotificationSender, NotifySettings
from media_upload.sandbox.huawei_vod.obs import OBS_OPERATIONS, ObsBucket, b64_of_hex, unique_hex
from media_upload.transfer.media import NotAVideoError, probe_file

#: Title markers that decide an asset's fate deterministically (tests and demos).
OUTCOME_MARKERS = {
    "[TRANSCODE_FAILED]": AssetStatus.TRANSCODE_FAILED,
    "[UPLOAD_FAILED]": AssetStatus.UPLOAD_FAILED,
    "[SERVER_ERROR]": AssetStatus.SERVER_ERROR,
}
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
    #: Lifetime of every signed URL handed out.
    sign_ttl: float = 3600
    #: Smallest part accepted before the last one at complete.
    min_part_bytes: int = MIN_PART_BYTES
    max_clock_skew: float = 900
    #: An IAM token accepted in ``X-Auth-Token`` instead of AK/SK signing; None disables tokens.
    auth_token: str | None = None
    #: Category ids CreateAsset accepts besides ``-1`` (the preset "Other").
    category_ids: tuple[int, ...] = (0, 1, 2, 3)
    #: VOD API calls per minute per project (token bucket; 0: off), answered 429 ``APIG.0308`` when spent.
    #: VOD documents 1,500 per tenant per minute for the upload APIs (docs/huawei-vod-sandbox.md).
    calls_per_minute: float = 0.0
    #: OBS requests per second to the bucket (0: off), answered 503 ``SlowDown`` when spent.
    obs_requests_per_second: float = 0.0
    #: Where MFS event notifications are posted; None: none are sent.
    push_url: str | None = None
    #: The authentication key that signs them (``auth_sign``); None: unsigned.
    push_key: str | None = None
    #: Waits before each new delivery of a notification not answered HTTP 200 (VOD's own are not published).
    push_retry_seconds: tuple[float, ...] = (10.0, 60.0, 300.0)

    def __post_init__(self) -> None:
        self.push_retry_seconds = tuple(float(s) for s in self.push_retry_seconds)

    @property
    def vod_limit(self) -> CallLimit:
        return CallLimit(self.calls_per_minute / 60, self.calls_per_minute / 60, 0.0)

    @property
    def obs_limit(self) -> CallLimit:
        return CallLimit(self.obs_requests_per_second, self.obs_requests_per_second, 0.0)

    @property
    def bucket(self) -> str:
        return f"vod-bucket-01-{self.region}"


@dataclass
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


VOD_OPERATIONS = (
    "CreateAsset", "ShowAssetTempAuthority", "ConfirmAssetUpload", "ShowAssetMeta", "ShowAssetDetail",
    "ListAssetList", "DeleteAssets",
)  # fmt: skip


class HuaweiVodBackend(EmulatorBackend):
    """One VOD tenant (project) with one OBS bucket (:mod:`.obs`), stored under ``data_dir``.

    Queued faults (``POST /_sandbox/huawei-vod/faults``, ``{"kind", "operation", "count"}``): an error code
    of VOD or OBS, ``drop`` (the operation ran, the answer is cut off) or ``expired_sign`` (the next
    temporary authority is already expired).
    """

    name = "huawei-vod"
    fault_target = "operation"
    config: HuaweiVodSandboxConfig

    def __init__(
        self, config: HuaweiVodSandboxConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(config or HuaweiVodSandboxConfig(), clock)
        self.assets: dict[str, Asset] = {}
        self.obs = ObsBucket(self)
        self.notify: NotificationSender | None = None
        if self.config.push_url:
            settings = NotifySettings(
                self.config.push_url, self.config.push_key, self.config.push_retry_seconds
            )
            self.notify = NotificationSender(settings, self._notices, self.clock, self.dice)

    def close(self) -> None:
        if self.notify is not None:
            self.notify.close()
        super().close()

    def _notices(self, asset_id: str) -> list[Notice]:
        """What an asset's processing notifies, and when: ``createComplete`` as it is created (at confirm
        when it then transcodes, else when it is ready), ``transcodeComplete`` when transcoding ends."""
        asset = self.assets[asset_id]
        if asset.confirmed_at is None or asset.confirm != "CREATED":
            return []
        done = asset.confirmed_at + max(asset.transcode_seconds, 0.0)
        final = asset.status(math.inf)  # how it ends (at ``done`` itself, rounding may leave it a step short)
        failed = final.value in FAILED_ASSET_STATUSES
        outcome: dict[str, Any] = (
            {"error_code": "VOD.10051", "error_msg": asset.failure_reason or final.value} if failed else {}
        )
        if not asset.transcoding or final is AssetStatus.UPLOAD_FAILED:
            return [
                ("createComplete", "FAILED" if failed else "SUCCEED", {"title": asset.title, **outcome}, done)
            ]
        if not failed and final is AssetStatus.PUBLISHED:
            url = f"{self.public_url}/_sandbox/huawei-vod/play/{asset.asset_id}/index.mp4"
            outcome = {"output": [{"play_type": "MP4", "url": url, "encrypted": 0}]}
        return [
            ("createComplete", "SUCCEED", {"title": asset.title}, asset.confirmed_at),
            ("transcodeComplete", "FAILED" if failed else "SUCCEED", outcome, done),
        ]

    def check_fault(self, kind: str, target: str) -> None:
        known = {*INJECTABLE_VOD_ERRORS, *INJECTABLE_OBS_ERRORS, *TRANSPORT_FAULTS}
        if kind not in known:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(sorted(known))})")
        if target != "*" and target not in (*VOD_OPERATIONS, *OBS_OPERATIONS):
            raise ValueError(f"unknown operation {target!r}")

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
        self.record_request(
            operation,
            started,
            method=method,
            url=mask_url(url),
            operation=operation,
            status=status,
            code=code,
        )

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
            asset_id = unique_hex(self.assets, lowercase=True)
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
                u for u in self.obs.uploads.values() if u.key == asset.object_key and u.state == "open"
            ]
        if status != "CREATED":
            for upload in open_uploads:  # CANCELLED (and FAILED) discard what was uploaded
                self.obs.drop_upload(upload, "aborted")
            self.obs.drop_object(asset.bucket, asset.object_key)
            return {"asset_id": asset_id}
        stored = self.obs.objects.get((asset.bucket, asset.object_key))
        reason = None
        if stored is None:
            reason, asset.outcome = "no object was uploaded to the asset's target", AssetStatus.UPLOAD_FAILED
        elif asset.video_md5 and asset.video_md5 != b64_of_hex(stored.md5):
            reason, asset.outcome = (
                "the uploaded object's MD5 differs from video_md5",
                AssetStatus.UPLOAD_FAILED,
            )
        else:
            try:
                probe_file(self.obs.object_path(asset.bucket, asset.object_key))
            except NotAVideoError as exc:
                reason = str(exc).replace(
                    str(self.obs.object_path(asset.bucket, asset.object_key)), asset.video_name
                )
                asset.outcome = AssetStatus.TRANSCODE_FAILED
        asset.failure_reason = reason
        if self.notify is not None:
            self.notify.watch(asset_id)
        return {"asset_id": asset_id}

    def asset_info(self, asset: Asset) -> dict[str, Any]:
        status = asset.status(self.clock())
        stored = self.obs.objects.get((asset.bucket, asset.object_key))
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
            self.obs.drop_object(asset.bucket, asset.object_key)
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
        if self.notify is not None and asset.confirmed_at is not None:
            self.notify.watch(asset_id)  # its notifications follow the new end
        return asset

    # ----------------------------------------------------------------- inspect

    def snapshot(self) -> dict[str, Any]:
        """Assets (status, stored object MD5 and size), multipart uploads, request counts; no secret."""
        now = self.clock()
        with self._lock:
            assets = {}
            for asset_id, asset in self.assets.items():
                stored = self.obs.objects.get((asset.bucket, asset.object_key))
                assets[asset_id] = {
                    **{k: v for k, v in asdict(asset).items() if k != "outcome"},
                    "status": asset.status(now).value,
                    "outcome": asset.outcome.value if asset.outcome else None,
                    "object": asdict(stored) if stored else None,
                }
            return {
                "assets": assets,
                "uploads": self.obs.snapshot(),
                "request_counts": dict(self.request_counts),
                "limited": dict(self.limited),
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


def _vod_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%d%H%M%S")
