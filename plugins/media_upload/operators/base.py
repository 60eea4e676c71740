"""What every platform's operators share: one base that builds the hook, the ledger and the steps, the
chunk upload every platform maps, and the small checks of task arguments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from media_upload.ledger import DEFAULT_CONN_ID, UploadLedger
from media_upload.lineage import ReportsLineage

if TYPE_CHECKING:
    from airflow.sdk import Context

    from media_upload.steps.common import ChunkResult, PlatformSteps


#: How a mapped chunk task is labelled in the UI: ``chunk 2/4 · blocks 9–16 · 24 MB``, with ``· committed``
#: and the video once the chunk that delivered an upload's last block has committed it (the label is
#: rendered after the task ran).
CHUNK_LABEL = "{{ task.chunk['label'] }}"


class PlatformOperator(ReportsLineage, BaseOperator):
    """The base of every platform's operators: the connection, the account's name in the ledger and the
    ledger's connection; the hook, the ledger and the upload steps are built lazily, at execute time, once
    per task. A platform's base sets :attr:`platform` and :attr:`conn_attr` (its connection argument).
    Each task reports what it read and made to OpenLineage (:mod:`media_upload.lineage`).

    :param account: names the seller (or project) in the upload ledger; defaults to the connection id.
    :param ledger_conn_id: the SQL connection of the upload ledger.
    """

    #: The platform's name in :data:`media_upload.platforms.STEPS`, which names its steps.
    platform: str
    #: The attribute holding the platform connection's id (``lazada_conn_id``...).
    conn_attr: str

    def __init__(
        self, *, account: str | None = None, ledger_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.account = account
        self.ledger_conn_id = ledger_conn_id

    @property
    def conn_id(self) -> str:
        return str(getattr(self, self.conn_attr))

    @property
    def seller(self) -> str:
        return self.account or self.conn_id

    @cached_property
    def steps_class(self) -> type[PlatformSteps]:
        from media_upload.platforms import steps_class

        return steps_class(self.platform)

    @cached_property
    def hook(self) -> Any:
        return self.steps_class.make_hook(self.conn_id)

    @cached_property
    def ledger(self) -> UploadLedger:
        return UploadLedger(self.ledger_conn_id)

    def steps(self, context: Context) -> Any:
        from media_upload.steps.common import RunInfo

        return self.steps_class(self.hook, self.ledger, RunInfo.of(context), self.log, self.seller)

    def lineage_hook(self, platform: str) -> Any:
        return self.hook if platform == self.platform else None

    def lineage_on_start(self) -> Any:
        """The source a task reads, as its arguments (rendered by then) name it: ``source``, or the ``job``
        it finishes."""
        from media_upload.lineage import Lineage, named_source

        found, job = getattr(self, "source", None), getattr(self, "job", None)
        if not isinstance(found, str) and isinstance(job, Mapping):
            found = job.get("source")
        lineage = Lineage()
        lineage.add([named_source(found)])
        return lineage


class UploadChunkMixin(ReportsLineage):
    """A mapped chunk task: the chunk's blocks, several at once, then the finish (commit) of each upload
    whose last block it delivered; its label then says so (``· committed video 123``), so the graph shows
    which task sent the commit. Returns ``{upload_id: [{"partNumber", "eTag"}]}``. Reports the sources it
    read, and the videos it committed, to OpenLineage.
    """

    chunk: Mapping[str, Any]

    def upload_chunk(
        self, send: Callable[[Mapping[str, Any]], ChunkResult], verb: str, noun: str
    ) -> dict[str, list[dict[str, Any]]]:
        result = send(self.chunk)
        self._report_chunk(result)
        if result.videos:
            ids = list(result.videos.values())
            finished = f"{noun} {ids[0]}" if len(ids) == 1 else f"{len(ids)} {noun}s"
            self.chunk = {**self.chunk, "label": f"{self.chunk['label']} · {verb} {finished}"}
        raise_first_failure(result)
        return result.parts

    def upload_with(self, steps: PlatformSteps) -> dict[str, list[dict[str, Any]]]:
        """:meth:`upload_chunk` through one platform's steps."""
        return self.upload_chunk(steps.send, steps.finish_verb, steps.video_noun)

    def lineage_on_start(self) -> Any:
        """The sources of the chunk's blocks."""
        from media_upload.lineage import Lineage, named_source

        lineage = Lineage()
        if isinstance(self.chunk, Mapping):  # a mapped chunk task's own chunk, by the time it starts
            lineage.add(named_source(item["job"]["source"]) for item in self.chunk.get("segments") or ())
        return lineage

    def _report_chunk(self, result: ChunkResult) -> None:
        """Every source of the chunk was read; the videos are those this chunk committed (a VOD job knows its
        asset before any byte goes, so the job's own video id does not say the chunk made it)."""
        from media_upload.steps.common import segments_of

        jobs = {segment.job.upload_id: segment.job for segment in segments_of(self.chunk)}
        self.report_jobs(job.with_(video_id=result.videos.get(upload or "")) for upload, job in jobs.items())


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
