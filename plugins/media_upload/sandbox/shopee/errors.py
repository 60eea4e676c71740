"""The errors the Shopee emulator answers with: names and texts from the API pages' error lists."""

from __future__ import annotations

from typing import Any

from media_upload.protocols.shopee import (
    ERROR_ALREADY_COMPLETED,
    ERROR_AUTH,
    ERROR_FILE_SIZE,
    ERROR_INVALID_PART_SEQ,
    ERROR_INVALID_PART_SIZE,
    ERROR_INVALID_UPLOAD_ID,
    ERROR_ITEM_NOT_FOUND,
    ERROR_PARAM,
    ERROR_RATE_LIMIT,
    ERROR_SERVER,
    ERROR_SIGN,
    ERROR_VIDEO_INFO_NOT_FOUND,
    INVALID_ACCESS_TOKEN,
)

#: A module's own errors carry its prefix in answers ("product.error_param") though the pages list them bare.
MODULE_PREFIX = "product."


class ShopeeError(Exception):
    """An error answer: ``error`` (bare name), ``message``, and whether the gateway or the API raised it.

    ``module`` errors are the API's own (answered as ``product.<name>`` unless the emulator is set to bare
    names); the gateway's (common parameters, sign, token, rate limit) are always bare.
    """

    def __init__(self, error: str, message: str, *, module: bool = False) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message
        self.module = module
        #: An injected ``drop`` or ``delay`` to apply to this answer (the API ran and said no).
        self.fault: Any = None

    def wire_error(self, bare: bool) -> str:
        return f"{MODULE_PREFIX}{self.error}" if self.module and not bare else self.error


# ------------------------------------------------------------------------------------------ gateway


def common_param(message: str) -> ShopeeError:
    """A missing or malformed common parameter (the pages' ``common_error_list`` texts)."""
    return ShopeeError(ERROR_PARAM, message)


def bad_path() -> ShopeeError:
    return common_param("Permission denied. This API is currently offline or the request path is incorrect.")


def unknown_partner() -> ShopeeError:
    return ShopeeError("invalid_partner_id", "Invalid partner_id, please have a check.")


def wrong_sign() -> ShopeeError:
    return ShopeeError(ERROR_SIGN, "Wrong sign.")


def invalid_access_token() -> ShopeeError:
    return ShopeeError(INVALID_ACCESS_TOKEN, "Invalid access_token, please have a check.")


def wrong_shop() -> ShopeeError:
    return ShopeeError(ERROR_AUTH, "Invalid partner_id or shopid.")


def rate_limited() -> ShopeeError:
    return ShopeeError(
        ERROR_RATE_LIMIT, "Too many requests. You have reached the rate limit. Please try again later."
    )


# ------------------------------------------------------------------------------------------ APIs


def wrong_parameters(detail: str) -> ShopeeError:
    """The pages' ``error_param`` "Wrong parameters, detail: {msg}."."""
    return ShopeeError(ERROR_PARAM, f"Wrong parameters, detail: {detail}.", module=True)


def form_missing() -> ShopeeError:
    """``upload_video_part`` without a readable multipart body: the page's error example, word for word."""
    return ShopeeError(ERROR_PARAM, "invalid parameter form is missing", module=True)


def invalid_file_md5(value: object) -> ShopeeError:
    """The shape of the page's example ``invalid parameter invalid file_md5: 2abf...93we``."""
    return ShopeeError(ERROR_PARAM, f"invalid parameter invalid file_md5: {value}", module=True)


def file_too_large(size: int, limit: int) -> ShopeeError:
    return ShopeeError(
        ERROR_FILE_SIZE,
        f"File size is too large. Video size should be less than 30M. ({size} bytes, at most {limit})",
        module=True,
    )


def invalid_upload_id(detail: str) -> ShopeeError:
    return ShopeeError(ERROR_INVALID_UPLOAD_ID, f"Invalid upload_id. ({detail})", module=True)


def invalid_part_seq(detail: str) -> ShopeeError:
    return ShopeeError(ERROR_INVALID_PART_SEQ, f"Invalid part_seq. ({detail})", module=True)


def invalid_part_size(detail: str) -> ShopeeError:
    return ShopeeError(ERROR_INVALID_PART_SIZE, f"Invalid part_size. ({detail})", module=True)


def already_completed() -> ShopeeError:
    return ShopeeError(ERROR_ALREADY_COMPLETED, "Upload already completed.", module=True)


def video_info_not_found(detail: str) -> ShopeeError:
    return ShopeeError(ERROR_VIDEO_INFO_NOT_FOUND, f"Video_info not found. ({detail})", module=True)


def item_not_found(item_id: object) -> ShopeeError:
    return ShopeeError(ERROR_ITEM_NOT_FOUND, f"Item_id is not found. ({item_id})", module=True)


def server_error() -> ShopeeError:
    return ShopeeError(ERROR_SERVER, "Something wrong. Please try later.", module=True)


#: Errors a test can inject by name through ``/_sandbox/shopee/faults``: (module error?, message).
INJECTABLE_ERRORS: dict[str, tuple[bool, str]] = {
    ERROR_RATE_LIMIT: (False, "Too many requests. You have reached the rate limit. Please try again later."),
    "error_limit": (
        False,
        "The total API call number made by your APP has reached the daily API call limit, "
        "please try again after 00: 00 (UTC+08:00)",
    ),
    INVALID_ACCESS_TOKEN: (False, "Invalid access_token, please have a check."),
    ERROR_AUTH: (False, "Invalid access_token."),
    ERROR_SERVER: (True, "Something wrong. Please try later."),
    "error_network": (True, "Inner http call failed"),
    "error_inner": (True, "Our system is taking some time to respond, please try later."),
}


def injected(kind: str) -> ShopeeError:
    module, message = INJECTABLE_ERRORS[kind]
    return ShopeeError(kind, message, module=module)
