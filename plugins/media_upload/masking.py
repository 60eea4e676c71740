"""Masking of credentials that platforms and sources carry in URLs, form fields and response bodies.

Lazada sends ``access_token`` and ``sign`` as ordinary parameters, GetVideo returns a ``video_url``
signed with ``auth_key``, and object stores and CDNs sign URLs (S3, GCS, Azure SAS) or take a user and
password in them; anything logged, raised, stored or shown goes through these helpers first.
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
        "x-amz-security-token",
        "x-amz-credential",
        "x-goog-signature",
        "x-goog-credential",
        "sig",  # Azure shared access signatures
        "security_token",
        "token",
        "api_key",
        "apikey",
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
    """The URL with its user part and secret query values masked; every other byte is kept as it was."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=f"{MASK}@{parts.netloc.rpartition('@')[2]}")
        url = urlunsplit(parts)
    if not parts.query:
        return url
    fields = parts.query.split("&")
    for i, field in enumerate(fields):
        name, sep, _ = field.partition("=")
        if sep and is_secret_name(unquote_plus(name)):
            fields[i] = f"{name}={MASK}"
    return urlunsplit(parts._replace(query="&".join(fields)))


_INLINE_SECRET = re.compile(
    r"(?<![A-Za-z0-9_\-])(?P<name>"
    + "|".join(re.escape(n) for n in sorted(SECRET_PARAM_NAMES))
    + r")(?P<sep>[\"']?\s*[=:]\s*[\"']?)"
    r"(?P<value>[^&\s\"',;}]+)",
    re.IGNORECASE,
)


#: ``scheme://user:password@`` in free text (a URL in an error message, say).
_URL_USER = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)[^/\s@?#]+@", re.IGNORECASE)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text with URL user parts, ``name=value`` secrets and every known secret value masked."""
    masked = _URL_USER.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    masked = _INLINE_SECRET.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", masked)
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        masked = masked.replace(secret, MASK)
    return masked


def printable(text: str) -> str:
    """``text`` with control characters (a terminal's escape sequences, line breaks) written as escapes,
    for values that come from manifests or requests and are printed or logged."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
