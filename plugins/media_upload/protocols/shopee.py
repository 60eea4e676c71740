"""Shopee Open Platform v2 wire facts shared by a client and the emulator.

Hosts, the signed gateway (common parameters and the HMAC-SHA256 ``sign``), the media_space video limits and
states, the response envelope, and the ``video_upload_push`` (code 11) message with its ``Authorization``
signature. Each fact names its public source in ``docs/shopee-sandbox.md``; where Shopee's pages are silent or
disagree, the reading chosen here is listed there too. The emulator verifies with the same functions a client
signs with, and both are tested against vectors computed from the documented formulas and against the
community TypeScript client ``@congminh1254/shopee-sdk``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from media_upload.transfer.media import MediaInfo
from media_upload.transfer.plan import PartRules

# ----------------------------------------------------------------------------------------------- hosts

#: API hosts ("/api/v2/..." is appended). Pick by where the caller runs, not by the shop's market.
HOSTS: dict[str, str] = {
    "global": "https://partner.shopeemobile.com",  # production, "near SG"
    "cn": "https://openplatform.shopee.cn",  # production, Chinese Mainland
    "br": "https://openplatform.shopee.com.br",  # production, "near US"
    "sandbox": "https://openplatform.sandbox.test-stable.shopee.sg",  # Sandbox v2, every developer
    "sandbox-cn": "https://openplatform.sandbox.test-stable.shopee.cn",  # Sandbox v2, Chinese Mainland
    "test-stable": "https://partner.test-stable.shopeemobile.com",  # the API pages' ``test_url``
}
API_PREFIX = "/api/v2"


def resolve_host(host: str) -> str:
    """A host key (``global``, ``sandbox``...) or a URL as the base URL without a trailing slash or ``/api/v2``.

    Signed paths start with ``/api/v2``, so the base is the bare origin; a base that already ends in
    ``/api/v2`` (the TypeScript SDK's form) is accepted and trimmed.
    """
    value = host.strip()
    if value.lower() in HOSTS:
        return HOSTS[value.lower()]
    if "://" not in value:
        if "." not in value and ":" not in value:  # a typo of a key must not become https://typo
            raise ValueError(f"host {host!r} is neither a Shopee host key ({', '.join(HOSTS)}) nor a URL")
        value = f"https://{value}"
    parts = urlsplit(value)
    if not parts.netloc:
        raise ValueError(f"Shopee host {host!r} is neither a host key ({', '.join(HOSTS)}) nor a URL")
    path = parts.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    return f"{parts.scheme}://{parts.netloc}{path}"


# ------------------------------------------------------------------------------------------ the gateway


class ApiType(StrEnum):
    """What the signature's base string holds besides ``partner_id + path + timestamp``."""

    PUBLIC = "Public"  # nothing more
    SHOP = "Shop"  # access_token + shop_id
    MERCHANT = "Merchant"  # access_token + merchant_id


@dataclass(frozen=True)
class Api:
    path: str
    method: str
    api_type: ApiType
    #: Typed Public on its page, yet every community client signs it as a Shop call and the page lists
    #: "There is no access_token in query.": the gateway is read as accepting both forms.
    either_form: bool = False


INIT_VIDEO_UPLOAD = "/api/v2/media_space/init_video_upload"
UPLOAD_VIDEO_PART = "/api/v2/media_space/upload_video_part"
COMPLETE_VIDEO_UPLOAD = "/api/v2/media_space/complete_video_upload"
GET_VIDEO_UPLOAD_RESULT = "/api/v2/media_space/get_video_upload_result"
CANCEL_VIDEO_UPLOAD = "/api/v2/media_space/cancel_video_upload"
ADD_ITEM = "/api/v2/product/add_item"
UPDATE_ITEM = "/api/v2/product/update_item"
GET_ITEM_BASE_INFO = "/api/v2/product/get_item_base_info"
GET_ACCESS_TOKEN = "/api/v2/auth/token/get"
REFRESH_ACCESS_TOKEN = "/api/v2/auth/access_token/get"

APIS: dict[str, Api] = {
    api.path: api
    for api in (
        Api(INIT_VIDEO_UPLOAD, "POST", ApiType.SHOP),
        Api(UPLOAD_VIDEO_PART, "POST", ApiType.PUBLIC, either_form=True),
        Api(COMPLETE_VIDEO_UPLOAD, "POST", ApiType.PUBLIC, either_form=True),
        Api(GET_VIDEO_UPLOAD_RESULT, "GET", ApiType.SHOP),
        Api(CANCEL_VIDEO_UPLOAD, "POST", ApiType.SHOP),
        Api(ADD_ITEM, "POST", ApiType.SHOP),
        Api(UPDATE_ITEM, "POST", ApiType.SHOP),
        Api(GET_ITEM_BASE_INFO, "GET", ApiType.SHOP),
        Api(GET_ACCESS_TOKEN, "POST", ApiType.PUBLIC),
        Api(REFRESH_ACCESS_TOKEN, "POST", ApiType.PUBLIC),
    )
}

#: "Requested within 5 minutes of a timestamp": ``timestamp`` is Unix seconds.
TIMESTAMP_WINDOW_SECONDS = 300
#: ``partner_id``, ``shop_id`` and ``timestamp`` are integers between 0 and 4294967295.
MAX_ID = 4_294_967_295


def parse_id(value: str | int | None) -> int | None:
    """A ``partner_id``/``shop_id``/``timestamp`` as the gateway reads it: decimal digits within 0..4294967295."""
    text = str(value) if value is not None else ""
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number <= MAX_ID else None


def base_string(
    partner_id: int | str,
    api_path: str,
    timestamp: int | str,
    access_token: str | None = None,
    account_id: int | str | None = None,
) -> str:
    """The documented base string, concatenated without separators.

    Public: ``partner_id + api_path + timestamp``; Shop: ``... + access_token + shop_id``; Merchant: ``... +
    access_token + merchant_id`` (``account_id`` is the shop or merchant id). ``api_path`` is the path alone,
    no host, no query; the body is not signed.
    """
    if (access_token is None) != (account_id is None):
        raise ValueError("a Shop or Merchant signature needs both the access token and the shop/merchant id")
    tail = f"{access_token}{account_id}" if access_token is not None else ""
    return f"{partner_id}{api_path}{timestamp}{tail}"


def sign(
    partner_key: str,
    partner_id: int | str,
    api_path: str,
    timestamp: int | str,
    access_token: str | None = None,
    account_id: int | str | None = None,
) -> str:
    """HMAC-SHA256 of :func:`base_string` keyed with the partner key as its UTF-8 string, lowercase hex.

    Every official demo keys with the string as it is (``partner_key.encode()``), never hex-decoded.
    """
    message = base_string(partner_id, api_path, timestamp, access_token, account_id).encode()
    return hmac.new(partner_key.encode(), message, hashlib.sha256).hexdigest()


def common_params(
    partner_id: int | str,
    partner_key: str,
    api_path: str,
    timestamp: int,
    access_token: str | None = None,
    shop_id: int | str | None = None,
) -> dict[str, str]:
    """The query string every call carries: ``partner_id``, ``timestamp``, ``sign`` (and, for Shop calls,
    ``access_token`` and ``shop_id``). Request parameters go in the query for GET and in a JSON body for POST."""
    params = {"partner_id": str(partner_id), "timestamp": str(timestamp)}
    if access_token is not None and shop_id is not None:
        params.update(access_token=access_token, shop_id=str(shop_id))
    params["sign"] = sign(partner_key, partner_id, api_path, timestamp, access_token, shop_id)
    return params


# ----------------------------------------------------------------------------------- media_space limits

#: "maximum is 30MB" (init) / "less than 30M" (its error): the emulator reads binary MB, 31,457,280 bytes inclusive.
MAX_FILE_BYTES = 30 * 1024 * 1024
#: The decimal reading; a client that stays at or under it is safe under either reading.
MAX_FILE_BYTES_DECIMAL = 30_000_000
#: "Part size should be exactly 4MB, except last part": 4 MiB, as Shopee's other pages write binary MB
#: (module 130's sample ``part_size`` 10485760) and the community clients split; some read 4,000,000.
PART_BYTES = 4 * 1024 * 1024
PART_BYTES_DECIMAL = 4_000_000
#: "Video duration should be between 10s and 60s (inclusive)."
MIN_DURATION_SECONDS = 10
MAX_DURATION_SECONDS = 60
#: "width and height ≤ 1280 px", mp4 only (the Creating-product guide).
MAX_DIMENSION_PIXELS = 1280
CONTAINER = "mp4"


def part_rules(part_bytes: int = PART_BYTES) -> PartRules:
    """The plan's rules for parts of exactly ``part_bytes`` (the connection's reading of "4 MB")."""
    return PartRules(
        platform="Shopee",
        unit="part",
        max_file_bytes=MAX_FILE_BYTES_DECIMAL + 1,
        min_part_bytes=part_bytes,
        max_part_bytes=part_bytes,
        max_parts=None,
        recommended_part_bytes=part_bytes,
    )


#: The client's plan by default: every part but the last exactly :data:`PART_BYTES`, files at most
#: 30,000,000 bytes.
PART_RULES = part_rules()


_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")


def is_md5_hex(value: object) -> bool:
    """``file_md5`` and ``content_md5`` are an MD5 in 32 hex digits (the samples are lowercase)."""
    return isinstance(value, str) and _MD5_HEX.fullmatch(value) is not None


def part_count(file_size: int, part_bytes: int = PART_BYTES) -> int:
    """How many parts ``file_size`` bytes make: ``part_seq`` runs from 0 to this minus one."""
    return max(1, math.ceil(file_size / part_bytes))


def part_size(file_size: int, part_seq: int, part_bytes: int = PART_BYTES) -> int:
    """The size part ``part_seq`` must have: ``part_bytes`` except the last, which holds the rest."""
    last = part_count(file_size, part_bytes) - 1
    if not 0 <= part_seq <= last:
        raise ValueError(f"part_seq {part_seq} is outside 0..{last}")
    return part_bytes if part_seq < last else file_size - last * part_bytes


def video_problem(info: MediaInfo) -> str | None:
    """Why Shopee would fail this video (the ``message`` of a ``FAILED`` result), or None when it passes.

    ``init_video_upload`` takes no duration, so these limits can only show after transcoding: a client should
    check them before uploading. "Video is too short" is the documented sample; the other texts are ours.
    """
    if info.container != CONTAINER:
        return f"Video format is not supported: {info.container}, only mp4"
    if info.duration_seconds is None:
        return "Video duration is unknown"
    if info.duration_seconds < MIN_DURATION_SECONDS:
        return "Video is too short"
    if info.duration_seconds > MAX_DURATION_SECONDS:
        return "Video is too long"
    if (info.width or 0) > MAX_DIMENSION_PIXELS or (info.height or 0) > MAX_DIMENSION_PIXELS:
        return f"Video resolution {info.width}x{info.height} exceeds {MAX_DIMENSION_PIXELS}x{MAX_DIMENSION_PIXELS}"
    return None


class VideoUploadStatus(StrEnum):
    """``get_video_upload_result``'s ``status``; only ``SUCCEEDED`` may go on an item."""

    INITIATED = "INITIATED"  # waiting for parts and/or complete_video_upload (also just after complete)
    TRANSCODING = "TRANSCODING"  # every part received, transcoding
    SUCCEEDED = "SUCCEEDED"  # the video_upload_id can go on add_item/update_item
    FAILED = "FAILED"  # see the message
    CANCELLED = "CANCELLED"


TERMINAL_STATUSES = frozenset(
    {VideoUploadStatus.SUCCEEDED, VideoUploadStatus.FAILED, VideoUploadStatus.CANCELLED}
)


# ---------------------------------------------------------------------------------- envelope and errors

#: Errors of the gateway itself (``common_error_list``), as opposed to an API's own.
ERROR_PARAM = "error_param"
ERROR_SIGN = "error_sign"
ERROR_AUTH = "error_auth"
INVALID_ACCESS_TOKEN = "invalid_acceess_token"  # sic, as Shopee spells it
ERROR_RATE_LIMIT = "error_rate_limit"
ERROR_SERVER = "error_server"
#: The API's own errors (``error_list``).
ERROR_FILE_SIZE = "error_file_size"
ERROR_INVALID_UPLOAD_ID = "error_invalid_upload_id"
ERROR_INVALID_PART_SEQ = "error_invalid_part_seq"
ERROR_INVALID_PART_SIZE = "error_invalid_part_size"
ERROR_ALREADY_COMPLETED = "error_already_completed"
ERROR_VIDEO_INFO_NOT_FOUND = "error_video_info_not_found"
ERROR_ITEM_NOT_FOUND = "error_item_not_found"

#: Errors a client refreshes its access token on (and then calls once more).
AUTH_ERRORS = frozenset({ERROR_AUTH, INVALID_ACCESS_TOKEN, "invalid_access_token"})
#: Errors worth a later retry of the same call.
RETRYABLE_ERRORS = frozenset(
    {ERROR_RATE_LIMIT, ERROR_SERVER, "error_network", "error_inner", "error_system_busy"}
)


def error_name(error: str) -> str:
    """The error without its module prefix: pages list ``error_param`` where answers say ``product.error_param``.

    Match errors on this suffix, never on the full string.
    """
    return error.rsplit(".", 1)[-1]


def envelope(
    request_id: str,
    response: Mapping[str, Any] | None = None,
    *,
    error: str = "",
    message: str = "",
    warning: str = "",
) -> dict[str, Any]:
    """A response body: ``error`` and ``message`` empty on success, ``warning`` on partial success, the payload
    under ``response`` (calls that return nothing carry no ``response``)."""
    body: dict[str, Any] = {"error": error, "message": message, "warning": warning, "request_id": request_id}
    if response is not None:
        body["response"] = dict(response)
    return body


def message_of(body: Mapping[str, Any]) -> str:
    """The error text of an answer: ``message``, or ``msg`` as some older answers spell it."""
    return str(body.get("message") or body.get("msg") or "")


# ------------------------------------------------------------------------------------------ items


def video_upload_id_field(video_upload_id: str | None) -> list[str]:
    """``video_upload_id`` of add_item/update_item: a one-element list, or ``[""]`` to remove the video.

    "If you want to delete it, please pass it with blank" ("upload the null string" in the guide): a list
    holding the empty string is blank in both readings and keeps the field's string[] type.
    """
    return [video_upload_id] if video_upload_id else [""]


# ------------------------------------------------------------------------------------------ push

#: ``video_upload_push``: "Get the video upload push result".
VIDEO_UPLOAD_PUSH = 11
#: The callback must answer 2xx (with an empty body) within 3 s, else the message is retried ...
PUSH_TIMEOUT_SECONDS = 3.0
#: ... after 300 s, 1800 s and 10800 s ("Retry Seconds"; read as waits between attempts).
PUSH_RETRY_SECONDS = (300.0, 1800.0, 10800.0)


def push_signature(partner_key: str, callback_url: str, body: bytes) -> str:
    """The ``Authorization`` header of a push: lowercase hex HMAC-SHA256 of ``callback URL + "|" + raw body``.

    The URL is the one registered (as the push arrives at it), the body the raw bytes: parsing and
    re-serialising the JSON would change them.
    """
    return hmac.new(partner_key.encode(), callback_url.encode() + b"|" + body, hashlib.sha256).hexdigest()


def video_upload_push(
    shop_id: int,
    video_upload_id: str,
    status: str,
    message: str,
    timestamp: int,
    video_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A code-11 message in the key order of Shopee's samples; ``video_info`` only with ``SUCCEEDED``.

    ``video_info`` is ``{"video_id", "video_url": [{"video_url_region", "video_url"}], "thumbnail_url":
    [{"image_url_region", "image_url"}], "duration"}``: lists named without ``_list``, unlike the result call.
    """
    data: dict[str, Any] = {"video_upload_id": video_upload_id, "status": status, "message": message}
    if video_info is not None:
        data["video_info"] = dict(video_info)
    return {"data": data, "shop_id": shop_id, "code": VIDEO_UPLOAD_PUSH, "timestamp": timestamp}


def push_body(message: Mapping[str, Any]) -> bytes:
    """The bytes of a push as Shopee's samples print them: compact JSON, keys in order."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
