"""Masking of credentials that platforms carry in URLs, form fields and response bodies.

Lazada sends ``access_token`` and ``sign`` as ordinary parameters, and GetVideo returns a ``video_url``
signed with ``auth_key``; anything logged, raised or stored goes through these helpers first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

MASK = "***"

#: Parameter names whose values are credentials wherever they appear.
SECRET_PARAM_NAMES = frozenset(
    {
        "access_token",
        "refresh_token",
        "sign",
        "app_secret",
        "auth_key",
        "client_secret",
        "password",
        "x-obs-security-token",
        "signature",
        "x-amz-signature",
        "security_token",
    }
)


def is_secret_name(name: str) -> bool:
    return name.lower() in SECRET_PARAM_NAMES


def mask_params(params: Mapping[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
    """Copy of ``params`` with every secret value (and every name in ``extra``) replaced by ``***``."""
    also = {name.lower() for name in extra}
    return {
        name: MASK if is_secret_name(name) or name.lower() in also else value
        for name, value in params.items()
    }


def mask_url(url: str) -> str:
    """The URL with secret query values masked; every other byte is kept as it was."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    fields = parts.query.split("&")
    for i, field in enumerate(fields):
        name, sep, _ = field.partition("=")
        if sep and is_secret_name(unquote_plus(name)):
            fields[i] = f"{name}={MASK}"
    return urlunsplit(parts._replace(query="&".join(fields)))


_INLINE_SECRET = re.compile(
    r"(?P<name>"
    + "|".join(re.escape(n) for n in sorted(SECRET_PARAM_NAMES))
    + r")(?P<sep>[\"']?\s*[=:]\s*[\"']?)"
    r"(?P<value>[^&\s\"',;}]+)",
    re.IGNORECASE,
)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text with ``name=value`` secrets and every known secret value masked."""
    masked = _INLINE_SECRET.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", text)
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        masked = masked.replace(secret, MASK)
    return masked
