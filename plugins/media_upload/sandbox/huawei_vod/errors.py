"""Errors the VOD emulator answers with: VOD/APIG JSON bodies and OBS XML bodies, with their HTTP status."""

from __future__ import annotations

from xml.sax.saxutils import escape


class VodErrorReply(Exception):
    """A VOD API or API-gateway error: ``{"error_code", "error_msg"}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ObsErrorReply(Exception):
    """An OBS error: ``<Error><Code/><Message/>...</Error>`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def xml(self, resource: str, request_id: str) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>"
            f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId>"
            f"<HostId>{request_id}</HostId></Error>"
        )


def illegal_parameter(detail: str) -> VodErrorReply:
    return VodErrorReply(400, "VOD.10053", f"The request parameter is illegal, illegal field: {detail}")


def asset_not_found(asset_id: str) -> VodErrorReply:
    return VodErrorReply(
        403, "VOD.10062", f"Media asset or resource does not exist, please check. ({asset_id})"
    )


def auth_failed(detail: str) -> VodErrorReply:
    return VodErrorReply(401, "APIG.0301", f"Incorrect IAM authentication information: {detail}")


def signature_expired(detail: str) -> VodErrorReply:
    return VodErrorReply(
        401, "APIG.0303", f"Incorrect app authentication information: signature expired ({detail})"
    )


#: Faults a test can inject by name through ``/_sandbox/huawei-vod/faults``.
INJECTABLE_VOD_ERRORS = {
    "APIG.0308": (429, "The throttling threshold has been reached: policy user over ratelimit"),
    "VOD.10051": (500, "Internal server error, please try again later."),
    "VOD.10127": (403, "Flow control, please try again later."),
}
INJECTABLE_OBS_ERRORS = {
    "SlowDown": (503, "Please reduce your request rate."),
    "InvalidPart": (400, "One or more of the specified parts could not be found (injected)."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "ServiceUnavailable": (503, "Service is unavailable, please try again later."),
}
