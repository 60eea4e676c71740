"""The error codes the Lazada emulator answers with, with the messages the official pages print."""

from __future__ import annotations

import math
from typing import Any


class ErrorReply(Exception):
    """An error the gateway reports in its JSON envelope (always with HTTP 200).

    ``business`` marks Media Center failures (``FAIL_TO_*``, ``ILLEGAL_PARAMETER``), which the emulator
    can also emit in the alternative ``code: "0", success: false`` shape.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        type_: str = "ISV",
        business: bool = False,
        detail: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.type = type_
        self.business = business
        self.detail = detail
        #: An injected ``drop`` or ``delay`` to apply to this answer (the API ran and said no).
        self.fault: Any = None


def missing_parameter(name: str) -> ErrorReply:
    return ErrorReply(
        "MissingParameter",
        f"the input parameter \u201c{name}\u201d that is mandatory for processing this request is not supplied",
    )


def incomplete_signature(reason: str = "") -> ErrorReply:
    message = "The request signature does not conform to lazop standards"
    return ErrorReply("IncompleteSignature", f"{message} ({reason})" if reason else message)


def invalid_app_key() -> ErrorReply:
    return ErrorReply("InvalidAppKey", "The specified app key is invalid")


def invalid_api_path(api: str) -> ErrorReply:
    return ErrorReply("InvalidApiPath", f"The specified API path {api} is invalid")


def illegal_access_token() -> ErrorReply:
    return ErrorReply("IllegalAccessToken", "The specified access token is invalid or expired")


def illegal_refresh_token() -> ErrorReply:
    return ErrorReply("IllegalRefreshToken", "The specified refresh token is invalid or expired")


def invalid_code() -> ErrorReply:
    return ErrorReply("InvalidCode", "Invalid authorization code")


def api_call_limit(seconds: float = 1.0) -> ErrorReply:
    """Lazada's throttle answer, naming how long the ban lasts in whole seconds."""
    return ErrorReply(
        "ApiCallLimit",
        f"Api access frequency exceeds the limit. this ban will last {max(1, math.ceil(seconds))} seconds.",
        type_="ISP",
    )


def media_failure(code: str, message: str) -> ErrorReply:
    """A Media Center failure: ``ILLEGAL_PARAMETER`` or one of the ``FAIL_TO_*`` codes."""
    return ErrorReply(code, message, type_="ISV" if code == "ILLEGAL_PARAMETER" else "ISP", business=True)


def illegal_parameter(message: str) -> ErrorReply:
    return media_failure("ILLEGAL_PARAMETER", message)


def product_error(code: str, message: str, field: str | None = None) -> ErrorReply:
    """Product API errors carry a number in ``code`` and ``Ennn:`` in the message, plus a ``detail`` list."""
    detail = [{"field": field, "message": message}] if field else None
    return ErrorReply(code, message, detail=detail)


#: Errors a test or demo can inject by name through ``/_sandbox/lazada/faults``.
INJECTABLE_ERRORS: dict[str, tuple[str, str]] = {
    "ApiCallLimit": ("ISP", "Api access frequency exceeds the limit. this ban will last 1 seconds."),
    "901": (
        "ISP",
        "E901: The request is too frequent, or the requested functionality is temporarily disabled.",
    ),
    "4154": ("ISP", "SYS_REQUEST_TOO_FAST: Slow down a bit!"),
    "ServiceTimeout": ("ISP", "The service timed out, please try again later"),
    "IllegalAccessToken": ("ISV", "The specified access token is invalid or expired"),
    "998": ("ISP", "To ensure stability of service, this API service is disabled during the campaign"),
    "1000": ("ISP", "Internal Application Error"),
    "4147": ("ISV", "Concurrent product edit is not allowed"),
}
