"""What every upload operator shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from media_upload.steps.common import ChunkResult


#: How a mapped chunk task is labelled in the UI: ``chunk 2/4 · blocks 9–16 · 24 MB``.
CHUNK_LABEL = "{{ task.chunk['label'] }}"


def refuse(problem: Exception | str) -> AirflowFailException:
    """Bad input fails the task at once: retrying cannot fix it."""
    return AirflowFailException(str(problem))


def raise_first_failure(result: ChunkResult) -> None:
    """Fail a chunk task when one of its uploads failed: at once for bad input or a stopped upload (a retry
    cannot help), retryably otherwise (a retry sends only what is still missing)."""
    from media_upload.steps.common import UploadStopped
    from media_upload.transfer.errors import SourceError

    if result.failures:
        exc = next(iter(result.failures.values()))
        raise refuse(exc) if isinstance(exc, SourceError | UploadStopped) else exc


def optional_int(name: str, value: Any) -> int | None:
    """A whole number from a parameter or a rendered template; empty and 0 mean "the default"."""
    if value in (None, "", "None", 0, "0"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise refuse(f"{name} {value!r} is not a whole number") from None


def check_map_length(source: str, chunks: int) -> None:
    """Refuse more chunk tasks than ``[core] max_map_length`` lets one task map, before any API call."""
    from airflow.sdk import conf

    limit = conf.getint("core", "max_map_length", fallback=1024)
    if chunks > limit:
        raise refuse(
            f"{source}: {chunks} chunk tasks are more than [core] max_map_length ({limit}); use fewer chunks "
            "(each sends several blocks) or raise the limit"
        )
