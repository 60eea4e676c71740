"""Huawei Cloud VOD and OBS wire facts shared by the hook and the emulator.

Two signatures: APIG's ``SDK-HMAC-SHA256`` for the VOD API (``Authorization`` header) and OBS's V2
query signature in the presigned URLs VOD hands out. Both follow Huawei Cloud's published pages (listed in
``docs/huawei-vod-sandbox.md``) and are tested against the published vector and the official SDKs (``huaweicloudsdkcore``,
``esdk-obs-python``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlsplit

from media_upload.transfer.plan import PartRules

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#: ``X-Sdk-Date`` further than this from the gateway's clock is ``APIG.0303``.
MAX_CLOCK_SKEW_SECONDS = 15 * 60

#: OBS multipart limits: non-last parts of at least 100 KB (read as 102,400 bytes), 1..10,000 parts.
MIN_PART_BYTES = 100 * 1024
MAX_PART_BYTES = 5 * 1024**3
MAX_PARTS = 10_000
#: VOD recommends parts of 20 MB at most.
RECOMMENDED_PART_BYTES = 20_000_000
#: OBS's multipart rules for the planner.
PART_RULES = PartRules(
    platform="OBS",
    unit="part",
    max_file_bytes=None,
    min_part_bytes=MIN_PART_BYTES,
    max_part_bytes=MAX_PART_BYTES,
    max_parts=MAX_PARTS,
    recommended_part_bytes=RECOMMENDED_PART_BYTES,
)
#: Files under this size may go up in one PUT of ``video_upload_url`` ("under 20 MB").
SINGLE_PUT_MAX_BYTES = 20_000_000

#: ``video_type`` for the containers the provider recognises, and the Content-Type a single PUT signs.
VIDEO_TYPES = {"mp4": ("MP4", "video/mp4"), "mov": ("MOV", "video/quicktime")}
ACCEPTED_VIDEO_TYPES = frozenset(
    {"MP4", "TS", "MOV", "MXF", "MPG", "FLV", "WMV", "AVI", "M4V", "F4V", "MPEG", "3GP", "ASF", "MKV", "HLS", "WEBM",
     "MP3", "OGG", "WAV", "WMA", "APE", "FLAC", "AAC", "AC3", "MMF", "AMR", "M4A", "M4R", "WV", "MP2"}
)  # fmt: skip
CONFIRM_STATUSES = ("CREATED", "FAILED", "CANCELLED")


class AssetStatus(StrEnum):
    """ShowAssetMeta's asset-level ``status``."""

    CREATING = "CREATING"
    OBS_CREATING = "OBS_CREATING"
    OBS_CREATE_SUCCESS = "OBS_CREATE_SUCCESS"
    WAITING_TRANSCODE = "WAITING_TRANSCODE"
    TRANSCODING = "TRANSCODING"
    CREATED = "CREATED"
    TRANSCODE_SUCCEED = "TRANSCODE_SUCCEED"
    PUBLISHED = "PUBLISHED"
    TRANSCODE_FAILED = "TRANSCODE_FAILED"
    UPLOAD_FAILED = "UPLOAD_FAILED"
    SERVER_ERROR = "SERVER_ERROR"
    CANCELLED = "CANCELLED"
    DELETING = "DELETING"
    DELETED = "DELETED"
    DELETE_FAILED = "DELETE_FAILED"
    UNCREATED = "UNCREATED"
    NO_ASSET = "NO_ASSET"


# ------------------------------------------------------------- MFS event notifications
# VOD posts a JSON message to the tenant's callback address when an asset's processing step ends (console:
# Global Settings > Notification Settings). With an authentication key, header ``auth_timestamp`` carries a
# timestamp and ``auth_sign`` the hex HMAC-SHA256 of ``VOD_{timestamp}_{message}`` under that key, where
# ``message`` is the body's ``message`` property (Huawei Cloud VOD user guide, "MFS").

#: The events a wait listens to, and the property that carries each one's information.
NOTIFIED_EVENTS = {
    "createComplete": "create_info",
    "transcodeComplete": "transcode_info",
    "reviewComplete": "review_info",
}


def pushed_state(event_type: str, outcome: str) -> str:
    """How a notification is kept and waited for: ``transcodeComplete:SUCCEED``, ``reviewComplete:BLOCK``.
    ShowAssetMeta never answers with such a string, so a pushed outcome and a polled status never mix."""
    return f"{event_type}:{outcome}"


def notification_signature(key: str, timestamp: str, message: str) -> str:
    """``auth_sign``: hex HMAC-SHA256 of ``VOD_{timestamp}_{message}`` under the tenant's key."""
    content = f"VOD_{timestamp}_{message}".encode()
    return hmac.new(key.encode(), content, hashlib.sha256).hexdigest()


def notification(event_type: str, info: Mapping[str, Any]) -> tuple[bytes, str]:
    """The body VOD posts for one event and the ``message`` it signs (the event as JSON text)."""
    message = json.dumps(
        {"event_type": event_type, NOTIFIED_EVENTS[event_type]: dict(info)}, separators=(",", ":")
    )
    return json.dumps({"message": message}, separators=(",", ":")).encode(), message


#: Statuses an asset never leaves for a usable one (``NOASSET`` is a documented misspelling), and the
#: notified outcomes that mean the same: a failed upload or transcode, a review that blocked the video.
FAILED_ASSET_STATUSES = frozenset(
    {"TRANSCODE_FAILED", "UPLOAD_FAILED", "SERVER_ERROR", "CANCELLED", "DELETING", "DELETED", "DELETE_FAILED",
     "UNCREATED", "NO_ASSET", "NOASSET",
     pushed_state("createComplete", "FAILED"), pushed_state("transcodeComplete", "FAILED"),
     pushed_state("reviewComplete", "BLOCK")}
)  # fmt: skip


def play_url(info: Mapping[str, Any]) -> str | None:
    """The first play URL of an ``AssetInfo``, if it has any, with URL authentication (``auth_key``...)
    masked: it travels through XCom and logs, where a signed link would be a credential."""
    from media_upload.masking import mask_url

    plays = info.get("play_info_array") or []
    url = plays[0].get("url") if plays else None
    return mask_url(str(url)) if url else None


def notified_weight(state: str) -> int:
    """How much a notified outcome decides when an asset has several (their order is not guaranteed): a
    failure, then the transcode's success, then the upload's, then a review that did not block."""
    if state in FAILED_ASSET_STATUSES:
        return 3
    return {
        pushed_state("transcodeComplete", "SUCCEED"): 2,
        pushed_state("createComplete", "SUCCEED"): 1,
    }.get(state, 0)


def ready_statuses(auto_publish: bool, transcoding: bool) -> tuple[str, ...]:
    """The statuses that mean "done" for an asset created with these options: ShowAssetMeta's, then the
    notified outcome of the asset's last processing step (VOD publishes an auto-published asset when that
    step ends), which ends a wait on pushed notifications without another ShowAssetMeta."""
    if auto_publish:
        polled = AssetStatus.PUBLISHED
    else:
        polled = AssetStatus.TRANSCODE_SUCCEED if transcoding else AssetStatus.CREATED
    return polled.value, pushed_state("transcodeComplete" if transcoding else "createComplete", "SUCCEED")


def resolve_endpoint(host: str) -> str:
    """A region (``cn-north-4``) or URL as the VOD endpoint base URL, without a trailing slash."""
    value = host.strip()
    if re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", value):
        return f"https://vod.{value}.myhuaweicloud.com"
    url = value if "://" in value else f"https://{value}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise ValueError(f"VOD endpoint {host!r} is neither a region such as cn-north-4 nor an http(s) URL")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


# --------------------------------------------------------------------- APIG signing


def _encode(value: str) -> str:
    """RFC 3986 encoding: only ``A-Z a-z 0-9 - _ . ~`` stay as they are."""
    return quote(value, safe="~")


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    """Pairs encoded, sorted by key then value (repeated keys kept), joined with ``&``."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query))


def canonical_request(
    method: str, path: str, query: Iterable[tuple[str, str]], headers: Mapping[str, str], body: bytes
) -> tuple[str, list[str]]:
    """The canonical request string and the signed header names (every header whose name has no ``_``)."""
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    signed = sorted(name for name in lowered if "_" not in name)
    segments = [_encode(segment) for segment in unquote(path).split("/")]
    uri = "/".join(segments)
    if not uri.endswith("/"):
        uri += "/"
    header_lines = "".join(f"{name}:{lowered[name]}\n" for name in signed)
    if not body:
        payload_hash = EMPTY_BODY_SHA256
    else:
        payload_hash = lowered.get("x-sdk-content-sha256") or hashlib.sha256(body).hexdigest()
    text = "\n".join(
        [method.upper(), uri, canonical_query(query), header_lines, ";".join(signed), payload_hash]
    )
    return text, signed


def sdk_signature(secret_key: str, sdk_date: str, canonical: str) -> str:
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def sign_request(
    access_key: str,
    secret_key: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes = b"",
    now: datetime | None = None,
) -> dict[str, str]:
    """``headers`` plus ``Host``, ``X-Sdk-Date`` and ``Authorization`` for one request, as the SDK signs it.

    The caller must send the URL's query in :func:`canonical_query` order (the SDK does) or any order:
    the gateway sorts before checking.
    """
    parts = urlsplit(url)
    signed_headers = {"Host": parts.netloc, **headers}
    content_type = next((value for name, value in headers.items() if name.lower() == "content-type"), None)
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        signed_headers["X-Sdk-Content-Sha256"] = "UNSIGNED-PAYLOAD"  # as the SDK does for other bodies
    signed_headers["X-Sdk-Date"] = (now or datetime.now(UTC)).astimezone(UTC).strftime(DATE_FORMAT)
    canonical, names = canonical_request(
        method, parts.path or "/", parse_qsl(parts.query, True), signed_headers, body
    )
    signature = sdk_signature(secret_key, signed_headers["X-Sdk-Date"], canonical)
    signed_headers["Authorization"] = (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed_headers


def parse_authorization(value: str) -> dict[str, str] | None:
    """``{"Access", "SignedHeaders", "Signature"}`` of an ``SDK-HMAC-SHA256`` header, or None."""
    if not value.startswith(f"{ALGORITHM} "):
        return None
    fields = {}
    for item in value[len(ALGORITHM) + 1 :].split(","):
        name, _, field = item.strip().partition("=")
        fields[name] = field
    return fields if {"Access", "SignedHeaders", "Signature"} <= set(fields) else None


# ------------------------------------------------------------------- OBS V2 signing

#: Query parameters that are part of the OBS resource being signed, as esdk-obs-python lists them for
#: objects; any ``x-amz-*`` parameter counts too (V2 mode). Paging parameters do not.
OBS_SUB_RESOURCES = frozenset(
    {"acl", "uploads", "uploadid", "partnumber", "versionid", "delete", "restore", "tagging", "metadata",
     "retention", "append", "position", "response-content-type", "response-content-language",
     "response-expires", "response-cache-control", "response-content-disposition", "response-content-encoding",
     "x-image-process", "x-oss-process"}
)  # fmt: skip


def is_sub_resource(name: str) -> bool:
    lowered = name.lower()
    return lowered in OBS_SUB_RESOURCES or lowered.startswith("x-amz-")


def parse_obs_query(query: str) -> list[tuple[str, str | None]]:
    """Query pairs keeping the difference the signature makes: ``uploads`` (None) versus ``uploadId=`` ("")."""
    pairs: list[tuple[str, str | None]] = []
    for field in query.split("&"):
        if not field:
            continue
        name, sep, value = field.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value) if sep else None))
    return pairs


def obs_string_to_sign(
    verb: str,
    content_md5: str,
    content_type: str,
    expires: int | str,
    bucket: str,
    key: str,
    query: Iterable[tuple[str, str | None]],
) -> str:
    """``VERB\\nContent-MD5\\nContent-Type\\nExpires\\n/bucket/key?sub-resources`` (no ``x-obs`` headers)."""
    subs = sorted(((name, value) for name, value in query if is_sub_resource(name)), key=lambda pair: pair[0])
    resource = f"/{bucket}/{quote(key, safe='/~')}"
    if subs:
        resource += "?" + "&".join(name if value is None else f"{name}={value}" for name, value in subs)
    return f"{verb.upper()}\n{content_md5}\n{content_type}\n{expires}\n{resource}"


def obs_signature(secret_key: str, string_to_sign: str) -> str:
    """Base64 HMAC-SHA1 (not yet URL-encoded)."""
    digest = hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def obs_signed_url(
    base_url: str,
    bucket: str,
    key: str,
    access_key: str,
    secret_key: str,
    verb: str,
    expires: int,
    *,
    content_type: str = "",
    content_md5: str = "",
    sub_resources: Iterable[tuple[str, str | None]] = (),
) -> str:
    """A path-style presigned URL ``{base}/{bucket}/{key}?{subs}&AWSAccessKeyId=…&Expires=…&Signature=…``."""
    subs = list(sub_resources)
    signature = obs_signature(
        secret_key, obs_string_to_sign(verb, content_md5, content_type, expires, bucket, key, subs)
    )
    query = [name if value is None else f"{name}={quote(str(value), safe='')}" for name, value in subs]
    query += [
        f"AWSAccessKeyId={quote(access_key, safe='')}",
        f"Expires={expires}",
        f"Signature={quote(signature, safe='')}",
    ]
    return f"{base_url}/{bucket}/{quote(key, safe='/~')}?{'&'.join(query)}"


def md5_base64(data: bytes) -> str:
    """``Content-MD5`` / ``content_md5`` / ``video_md5``: base64 of the 16 raw digest bytes, not hex."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()
