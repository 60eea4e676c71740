"""Lazada Open Platform wire facts shared by the hook and the emulator.

Everything here is taken from Lazada Open Platform's published pages (listed in ``docs/lazada-sandbox.md``);
the hook signs with :func:`sign` and the emulator verifies with it, and both are tested against the
documented vector and the official ``lazop-sdk``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum
from urllib.parse import urlsplit

from media_upload.transfer.plan import PartRules

GATEWAYS: dict[str, str] = {
    "sg": "https://api.lazada.sg/rest",
    "my": "https://api.lazada.com.my/rest",
    "th": "https://api.lazada.co.th/rest",
    "ph": "https://api.lazada.com.ph/rest",
    "vn": "https://api.lazada.vn/rest",
    "id": "https://api.lazada.co.id/rest",
}
AUTH_GATEWAY = "https://auth.lazada.com/rest"

SIGN_METHOD = "sha256"
TIMESTAMP_WINDOW_SECONDS = 7200

#: "should be less than 100M": read strictly as 10**8 bytes, exclusive.
MAX_FILE_BYTES = 100_000_000
#: "max 10 MB" per block: read strictly as 10**7 bytes, inclusive.
MAX_BLOCK_BYTES = 10_000_000
#: "we recommend < 3mb per block": default blocks are at most 2,999,999 bytes, under 3 MB either way MB is read.
RECOMMENDED_BLOCK_BYTES = 2_999_999
#: Lazada's block rules for the planner; no minimum block size or block count is published.
BLOCK_RULES = PartRules(
    platform="Lazada",
    unit="block",
    max_file_bytes=MAX_FILE_BYTES,
    min_part_bytes=1,
    max_part_bytes=MAX_BLOCK_BYTES,
    max_parts=None,
    recommended_part_bytes=RECOMMENDED_BLOCK_BYTES,
)

VIDEO_USAGES = ("pro_main_video", "im")


class VideoState(StrEnum):
    """States GetVideo reports; only ``AUDIT_SUCCESS`` may be put on a product."""

    READY_FOR_TRANSCODE = "READY_FOR_TRANSCODE"
    TRANSCODING = "TRANSCODING"
    TRANSCODE_FAILED = "TRANSCODE_FAILED"
    READY_FOR_AUDIT = "READY_FOR_AUDIT"
    AUDIT_FAILED = "AUDIT_FAILED"
    AUDIT_SUCCESS = "AUDIT_SUCCESS"
    DELETED = "DELETED"


FAILED_VIDEO_STATES = frozenset({VideoState.TRANSCODE_FAILED, VideoState.AUDIT_FAILED, VideoState.DELETED})
TERMINAL_VIDEO_STATES = FAILED_VIDEO_STATES | {VideoState.AUDIT_SUCCESS}


def resolve_gateway(host: str) -> str:
    """Map a region code (``sg``, ``my``...) or a URL to the gateway base URL, without a trailing slash.

    A URL without a path gets Lazada's ``/rest`` prefix, so ``https://api.lazada.sg`` works too.
    """
    value = host.strip()
    if value.lower() in GATEWAYS:
        return GATEWAYS[value.lower()]
    if "://" not in value:
        if "." not in value:  # neither a region code nor a host name: a typo must not become https://xx/rest
            raise ValueError(
                f"host {host!r} is not a Lazada region code ({', '.join(GATEWAYS)}) nor a gateway URL "
                "such as https://api.lazada.sg/rest"
            )
        value = f"https://{value}"
    parts = urlsplit(value)
    if not parts.netloc:
        raise ValueError(
            f"Lazada gateway {host!r} is neither a region code ({', '.join(GATEWAYS)}) nor a URL"
        )
    path = parts.path.rstrip("/") or "/rest"
    return f"{parts.scheme}://{parts.netloc}{path}"


def string_to_sign(api_path: str, params: Mapping[str, str]) -> str:
    """The documented string: API path, then ``name + value`` of every parameter sorted by name (bytes)."""
    # Code-point order equals UTF-8 byte order, so a plain sort is the documented ASCII sort.
    return api_path + "".join(f"{name}{params[name]}" for name in sorted(params))


def sign(app_secret: str, api_path: str, params: Mapping[str, str]) -> str:
    """HMAC-SHA256 of :func:`string_to_sign` keyed with the app secret, in uppercase hex.

    ``params`` must hold every text parameter sent, system and business, and neither ``sign`` nor
    any file part.
    """
    message = string_to_sign(api_path, params).encode()
    return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest().upper()


def check_video_metadata(title: str | None, cover_url: str | None) -> None:
    """Refuse what CompleteCreateVideo would refuse: a blank title, a cover that is not an http(s) URL."""
    if not title or not str(title).strip():
        raise ValueError(
            "the video title is missing; Lazada's CompleteCreateVideo requires a non-blank title"
        )
    parts = urlsplit(str(cover_url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"the cover URL {cover_url!r} is not an http(s) URL; CompleteCreateVideo requires the URL of the "
            "video's cover image (upload one with /image/upload to get a Lazada-hosted URL)"
        )


def video_update_payload(item_id: str | int, sku_ids: list[str], video_id: str | None) -> dict[str, object]:
    """The UpdateProduct payload that puts ``video_id`` on an item, or removes its video when None."""
    attributes = {"video": str(video_id)} if video_id else {"remove_video": "Yes"}
    return {
        "Request": {
            "Product": {
                "ItemId": str(item_id),
                "Attributes": attributes,
                "Skus": {"Sku": [{"SkuId": str(sku_id)} for sku_id in sku_ids]},
            }
        }
    }


# ------------------------------------------------------------------------------------------ push messages

#: Lazada Push Mechanism: "Short Video State Update" messages carry ``message_type`` 7.
VIDEO_STATE_MESSAGE = 7
#: Delivery is retried 12 times, 30 minutes apart, while the callback does not answer HTTP 200.
PUSH_RETRIES = 12
PUSH_RETRY_SECONDS = 1800.0


def push_signature(app_key: str, app_secret: str, body: bytes) -> str:
    """The ``Authorization`` header of a push: ``HEX(HMAC-SHA256(app_key + body, app_secret))``.

    Lazada's sample header is lowercase hex; receivers should compare case-insensitively.
    """
    return hmac.new(app_secret.encode(), app_key.encode() + body, hashlib.sha256).hexdigest()


def video_state_message(
    seller_id: str, video_id: str, state: str, changed_at: float, pushed_at: float, site: str
) -> dict[str, object]:
    """A message type 7 body as Lazada's sample shapes it: ``videoId`` a JSON number, ``data.timestamp``
    in seconds, the push ``timestamp`` in milliseconds."""
    return {
        "seller_id": seller_id,
        "message_type": VIDEO_STATE_MESSAGE,
        "data": {"state": state, "timestamp": int(changed_at), "videoId": int(video_id)},
        "timestamp": int(pushed_at * 1000),
        "site": site,
    }
