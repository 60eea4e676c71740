"""Which sources this deployment reads: ``[media_upload] allowed_sources``, applied to every video and
manifest after resolving it, whoever named it (a DAG argument, run conf or a manifest row).

People who trigger runs and people who write manifests are not trusted with the workers' files or with
the deployment's connections. So a local path must be absolute and resolve (symlinks followed, ``..``
applied) inside an allowed folder; a URL must start with an allowed prefix and carry no credential (no
user part, no signature or token in its query): credentials for a remote source come only from the
connection the DAG author names (``source_conn_id``).

The setting is a comma- or newline-separated list of local folders and URL prefixes, for example
``/opt/airflow/media/, s3://seller-videos/, https://cdn.example.com/videos/``. Unset, it allows the
deployment's media folder, ``$AIRFLOW_HOME/media/``, and nothing remote.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from media_upload.masking import is_secret_name, mask_url, printable
from media_upload.transfer.errors import SourceError

SECTION, OPTION = "media_upload", "allowed_sources"
SETTING = f"[{SECTION}] {OPTION} (AIRFLOW__{SECTION.upper()}__{OPTION.upper()})"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def default_media_folder() -> str:
    return os.path.join(os.path.expanduser(os.environ.get("AIRFLOW_HOME") or "~/airflow"), "media")


def shown(source: str, limit: int = 200) -> str:
    """A source as an error or a log line may show it: credentials masked, control characters escaped."""
    text = printable(mask_url(str(source).strip()))
    return text if len(text) <= limit else f"{text[:limit]}…"


@dataclass(frozen=True)
class UrlPrefix:
    scheme: str
    host: str
    port: int | None
    path: str  # ends with "/"

    def __str__(self) -> str:
        netloc = self.host + (f":{self.port}" if self.port else "")
        return f"{self.scheme}://{netloc}{self.path}"

    def allows(self, scheme: str, host: str, port: int | None, path: str) -> bool:
        return (scheme, host, port) == (self.scheme, self.host, self.port) and path.startswith(self.path)


@dataclass(frozen=True)
class SourcePolicy:
    """Allowed local folders (real paths, each ending with a separator) and URL prefixes."""

    folders: tuple[str, ...]
    prefixes: tuple[UrlPrefix, ...]

    @classmethod
    def parse(cls, text: str) -> SourcePolicy:
        folders: list[str] = []
        prefixes: list[UrlPrefix] = []
        for entry in (part.strip() for part in text.replace("\n", ",").split(",")):
            if not entry:
                continue
            if "://" in entry and not entry.lower().startswith("file://"):
                scheme, host, port, path = _url_parts(entry, setting=True)
                prefixes.append(UrlPrefix(scheme, host, port, path if path.endswith("/") else f"{path}/"))
                continue
            path = unquote(urlsplit(entry).path) if entry.lower().startswith("file://") else entry
            if not os.path.isabs(os.path.expanduser(path)):
                raise SourceError(f"{SETTING}: {entry!r} is not an absolute folder or a URL prefix")
            folders.append(os.path.join(os.path.realpath(os.path.expanduser(path)), ""))
        return cls(tuple(folders), tuple(prefixes))

    @classmethod
    def current(cls) -> SourcePolicy:
        """The deployment's policy, read from Airflow's configuration each time (cheap; tests change it)."""
        from airflow.sdk import conf

        text = conf.get(SECTION, OPTION, fallback=None)
        return cls.parse(text if text and text.strip() else default_media_folder())

    def describe(self) -> str:
        return ", ".join([*self.folders, *(str(prefix) for prefix in self.prefixes)]) or "nothing"

    def refuse(self, source: str, why: str) -> SourceError:
        return SourceError(
            f"{shown(source)}: {why}. {SETTING} allows {self.describe()}; put the video (or manifest) "
            "there, or ask the deployment's administrators to allow its folder or URL prefix"
        )

    def resolve(self, source: str, relative_to: str | None = None) -> str:
        """The real local path, or the normalised URL, of an allowed ``source``; :class:`SourceError` else.

        ``relative_to`` is the folder (or URL folder) a relative path is taken from: a manifest's.
        """
        text = str(source).strip()
        if not text:
            raise SourceError("no source given: expected an absolute path or a URL")
        if any(ord(char) < 32 or ord(char) == 127 for char in text):
            raise self.refuse(text, "it contains control characters")
        if "://" not in text and relative_to and not text.startswith(("/", "~")):
            text = f"{relative_to.rstrip('/')}/{text}"
        if "://" in text and not text.lower().startswith("file://"):
            return self._url(text)
        path = unquote(urlsplit(text).path) if text.lower().startswith("file://") else text
        if text.lower().startswith("file://") and urlsplit(text).netloc not in ("", "localhost"):
            raise self.refuse(text, "a file:// URL must name a local path (file:///...)")
        if path.startswith("~"):
            raise self.refuse(text, "'~' is not expanded; give the absolute path")
        if not os.path.isabs(path):
            raise self.refuse(text, "a relative path; give the absolute path")
        return self.check_local(os.path.realpath(path), text)

    def check_local(self, real: str, source: str | None = None) -> str:
        """``real`` (a path with every link resolved) when it lies inside an allowed folder."""
        if not any(real.startswith(folder) for folder in self.folders):
            raise self.refuse(source or real, "not inside an allowed folder (after resolving links and '..')")
        return real

    def _url(self, text: str) -> str:
        try:
            scheme, host, port, path = _url_parts(text)
        except SourceError as exc:
            raise self.refuse(text, str(exc)) from None
        parts = urlsplit(text)
        secrets = sorted({name for name, _, _ in _query_fields(parts.query) if is_secret_name(name)})
        if secrets:
            raise self.refuse(
                text,
                f"its query carries a credential ({', '.join(secrets)}); credentials for a source come only "
                "from the connection the DAG names (source_conn_id), never from the URL",
            )
        if not any(prefix.allows(scheme, host, port, path) for prefix in self.prefixes):
            raise self.refuse(text, "not under an allowed URL prefix")
        netloc = host + (f":{port}" if port else "")
        return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


def _query_fields(query: str) -> list[tuple[str, str, str]]:
    fields = []
    for field in query.split("&"):
        name, sep, value = field.partition("=")
        fields.append((unquote(name.replace("+", " ")), sep, value))
    return fields


def _url_parts(text: str, setting: bool = False) -> tuple[str, str, int | None, str]:
    """Scheme, host, port (None when the scheme's default) and path of a URL a source may be read from.

    Refused: a user part (Airflow would take it for a connection id and send that connection's secrets),
    ``.``/``..`` segments and encoded slashes (the server would resolve them past the prefix)."""
    where = f"{SETTING}: {text!r}" if setting else "the URL"
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise SourceError(
            f"{where} carries a user part; credentials for a source come only from the connection the DAG "
            "names (source_conn_id)"
        )
    try:
        port = parts.port
    except ValueError:
        raise SourceError(f"{where} has a port that is not a number") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        raise SourceError(f"{where} names no scheme or host")
    if port == _DEFAULT_PORTS.get(scheme):
        port = None
    raw = parts.path or "/"
    lowered = raw.lower()
    if "%2f" in lowered or "%5c" in lowered or "\\" in raw:
        raise SourceError(f"{where} has an encoded slash or a backslash in its path")
    if any(segment in (".", "..") for segment in unquote(raw).split("/")):
        raise SourceError(f"{where} has a '.' or '..' segment in its path")
    return scheme, host, port, raw
