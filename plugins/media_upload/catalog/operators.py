"""The steps of a catalog run, for every marketplace its rows name: plan, upload the chunks, settle the
commits, then wait and attach each video as its own audit ends.

Each step is one task for the whole batch (the bytes go up in a few mapped chunk tasks whose chunks may
mix platforms), so a 300-row catalog costs a handful of task instances, not thousands. Inside a step each
video is on its own: one that fails is recorded in the ledger with its reason and the others go on; the
report lists every row on every platform, and the verdict task fails the run when a video failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import Asset, AssetAlias, BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from media_upload.catalog.manifest import UNCHECKED, ManifestRow, RowProblem, read_manifest
from media_upload.hooks import HUAWEI_VOD_CONN_ID, LAZADA_CONN_ID, SHOPEE_CONN_ID
from media_upload.ledger import DEFAULT_CONN_ID, UploadLedger
from media_upload.lineage import ReportsLineage
from media_upload.operators.base import UploadChunkMixin, optional_int, refuse
from media_upload.transfer.policy import shown

if TYPE_CHECKING:
    from airflow.sdk import Context

    from media_upload.steps.common import PlatformSteps, UploadJob

#: The connection each platform uses unless the DAG names another.
DEFAULT_CONNECTIONS = {"lazada": LAZADA_CONN_ID, "shopee": SHOPEE_CONN_ID, "huawei_vod": HUAWEI_VOD_CONN_ID}
T = TypeVar("T")
R = TypeVar("R")


def each(items: Sequence[T], work: Callable[[T], R]) -> list[R | BaseException]:
    """:func:`media_upload.steps.common.each`, imported when a task runs (DAG files parse without it)."""
    from media_upload.steps.common import each as in_parallel

    return in_parallel(items, work)


def product_videos_asset(account: str = LAZADA_CONN_ID) -> Asset:
    """The Asset a Lazada catalog run updates: ``x-lazada://<account>/product-videos``.

    The ``x-`` scheme is Airflow's own mark of a user-defined URI: Airflow then needs no provider to
    normalise it, so a DAG file that names the Asset parses without loading every provider.
    """
    return Asset(uri=f"x-lazada://{account}/product-videos", name=f"lazada_product_videos__{account}")


def catalog_videos_asset(name: str = "catalog") -> Asset:
    """The Asset a catalog run for several marketplaces updates: ``x-media-upload://<name>/product-videos``."""
    return Asset(uri=f"x-media-upload://{name}/product-videos", name=f"product_videos__{name}")


def product_video_events(account: str = LAZADA_CONN_ID) -> AssetAlias:
    """The alias under which a catalog run adds one event per attached video, for users who want them."""
    return AssetAlias(name=f"lazada_product_video_events__{account}")


def jobs_of(values: Iterable[Mapping[str, Any]] | None) -> list[UploadJob]:
    from media_upload.steps.common import UploadJob

    return [UploadJob.from_xcom(value) for value in values or ()]


class CatalogOperator(ReportsLineage, BaseOperator):
    """The base of the catalog steps: the platforms the catalog serves, with their connections. Each step
    reports to OpenLineage what it read and made: the plan every source, the chunks and settle the videos
    made from them, the attach tasks every video put on its product (:mod:`media_upload.lineage`).

    :param connections: platform → connection id, for every platform the catalog uploads to, e.g.
        ``{"lazada": "lazada_default", "shopee": "shopee_default"}``; rows naming other platforms' products
        are reported.
    :param accounts: platform → the seller's (or project's) name in the ledger; defaults to the connection id.
    :param ledger_conn_id: the SQL connection of the upload ledger.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#eef3e2"

    def __init__(
        self,
        *,
        connections: Mapping[str, str] | None = None,
        accounts: Mapping[str, str] | None = None,
        ledger_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.connections = dict(connections or {"lazada": LAZADA_CONN_ID})
        self.accounts = dict(accounts or {})
        self.ledger_conn_id = ledger_conn_id

    @property
    def platforms(self) -> list[str]:
        return list(self.connections)

    @cached_property
    def ledger(self) -> UploadLedger:
        return UploadLedger(self.ledger_conn_id)

    def steps(self, context: Context) -> dict[str, PlatformSteps]:
        """One steps object per platform, each with its hook (built lazily: no call until one is needed)."""
        from media_upload.platforms import steps_class
        from media_upload.steps.common import RunInfo

        found = {}
        for platform, conn_id in self.connections.items():
            cls = steps_class(platform)
            found[platform] = cls(
                cls.make_hook(conn_id),
                self.ledger,
                RunInfo.of(context),
                self.log,
                self.accounts.get(platform) or conn_id,
            )
        return found

    def lineage_hook(self, platform: str) -> Any:
        from media_upload.platforms import steps_class

        conn_id = self.connections.get(platform)
        return steps_class(platform).make_hook(conn_id) if conn_id else None


class CatalogPlanOperator(CatalogOperator):
    """Read and check the manifest, every video and every product on every marketplace, consult the
    ledger, and start the uploads.

    Every row is checked before the first upload: its columns, its video (allowed by the source policy,
    within each platform's limits, an MP4/MOV; hashed) and its products (read from each platform). A bad
    row, or a bad marketplace of a row, is reported with its line, field and reason and skipped. Then,
    per the shared rules and the ledger, a video is uploaded (or resumed, or its lost commit settled),
    only waited for and attached (the platform has it), or skipped (attached already, rejected before,
    needing attention). Each platform's init call runs here, and the blocks of all uploads are packed
    into ``chunks`` chunk tasks.

    Returns the chunks (the mapped ``upload_chunk`` expands over them); pushes ``jobs`` (every video of
    the batch) and ``report`` (bad rows, skipped rows, rows left for the next batch).

    :param manifest: path or URL of a ``.csv`` or ``.jsonl`` manifest. (templated)
    :param block_size: Lazada's bytes per block unless a row says otherwise; 0: equal blocks under 3 MB.
        (templated)
    :param after_line: process only rows after this manifest line (set by the next-batch run). (templated)
    :param chunks: chunk tasks for the batch's blocks. (templated)
    :param blocks_in_flight: blocks each chunk sends at once; by default the chunks share 8, or up to 32
        small ones. (templated)
    :param upload_again_needs_attention: upload rows whose earlier upload needs attention. (templated)
    :param source_conn_id: the connection that reads a remote manifest and its videos (an HTTP connection
        only for its own host); never taken from a URL. ``[media_upload] allowed_sources`` says what may be
        read, for the manifest and for every row.
    """

    template_fields: Sequence[str] = (
        *CatalogOperator.template_fields,
        "manifest",
        "block_size",
        "after_line",
        "chunks",
        "blocks_in_flight",
        "upload_again_needs_attention",
    )

    def __init__(
        self,
        *,
        manifest: str,
        block_size: int | str | None = None,
        after_line: int | str = 0,
        chunks: int | str = 4,
        blocks_in_flight: int | str | None = None,
        upload_again_needs_attention: bool | str = False,
        source_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.manifest = manifest
        self.block_size = block_size
        self.after_line = after_line
        self.chunks = chunks
        self.blocks_in_flight = blocks_in_flight
        self.upload_again_needs_attention = upload_again_needs_attention
        self.source_conn_id = source_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from media_upload.catalog.plan import Batch, pack_chunks, plan_batch

        try:
            rows, problems, unknown = read_manifest(str(self.manifest), self.source_conn_id, self.platforms)
        except ValueError as exc:
            raise refuse(exc) from None
        if unknown:
            self.log.warning("Manifest columns not used: %s", ", ".join(unknown))
        if not rows:
            first = "; ".join(str(problem) for problem in problems[:5])
            raise refuse(
                f"manifest {shown(self.manifest)} has no usable row"
                + (f": {len(problems)} problem(s), first {first}" if problems else ": it holds no row at all")
            )
        rows = [row for row in rows if row.line > int(self.after_line)]
        steps = self.steps(context)
        upload_again = str(self.upload_again_needs_attention).lower() in ("true", "1", "yes")
        limit = conf.getint("core", "max_map_length", fallback=1024)
        done_states = {platform: platform_steps.done_state for platform, platform_steps in steps.items()}
        jobs: list[UploadJob] = []
        stored: dict[Any, Any] = {}
        by_content: dict[Any, Any] = {}
        batch = Batch()
        # Rows are checked (and their videos hashed) a window at a time, until the batch is full: a long
        # manifest costs each run its own batch, not a pass over every row after it.
        for start in range(0, len(rows), max(limit, 100)):
            window = rows[start : start + max(limit, 100)]
            for platform, platform_steps in steps.items():  # products read by the fifty, not row by row
                platform_steps.prepare(
                    [target for row in window for target in row.targets if target.platform == platform]
                )
            found_jobs = each(window, lambda row: self._jobs(row, steps, problems))
            checked: list[UploadJob] = []
            for row, found in zip(window, found_jobs, strict=True):
                if isinstance(found, BaseException):  # no row vanishes: what could not be checked is reported
                    problems.append(RowProblem(row.line, UNCHECKED, str(found)))
                    continue
                checked += found
            jobs += checked
            stored.update(self.ledger.get_many(job.key for job in checked))
            by_content.update(
                self.ledger.with_contents(
                    content
                    for job in checked
                    if (content := (job.platform, job.account, job.content_sha256)) not in by_content
                )
            )
            jobs.sort(key=lambda job: (job.line or 0, self.platforms.index(job.platform)))
            batch = plan_batch(
                jobs, stored, by_content, limit=limit, upload_again=upload_again, done_states=done_states
            )
            unchecked = rows[start + len(window) :]
            if batch.deferred_lines or not unchecked:
                batch.deferred_lines += [row.line for row in unchecked]
                break
        for follower, leader in batch.followers:
            steps[follower.platform].record(follower, reason=f"shares its content with line {leader.line}")
        started = [*batch.ready, *batch.uploads]
        begun: list[UploadJob] = []
        ready: list[UploadJob] = []
        for job, result in zip(
            started,
            each(started, lambda job: steps[job.platform].begin(job, upload_again=upload_again)),
            strict=True,
        ):
            if isinstance(result, BaseException):
                problems.append(
                    RowProblem(
                        job.line or 0,
                        "video",
                        f"could not start the upload: {result}",
                        job.platform,
                    )
                )
                steps[job.platform].stopped(job, result)
            elif steps[job.platform].video_of(result):
                ready.append(result)
            else:
                begun.append(result)
        chunk_count = optional_int("chunks", self.chunks) or 1
        in_flight = optional_int("blocks_in_flight", self.blocks_in_flight)
        chunks = pack_chunks(begun, chunk_count, in_flight)
        report = {
            "manifest": shown(self.manifest),
            "platforms": self.platforms,
            "invalid": [asdict(problem) for problem in sorted(problems, key=lambda p: p.line)],
            "skipped": [asdict(skip) for skip in batch.skipped],
            "deferred_lines": batch.deferred_lines,
            "next_after_line": batch.deferred_lines[0] - 1 if batch.deferred_lines else None,
        }
        for problem in problems:
            self.log.warning("Skipping manifest %s", problem)
        self.log.info(
            "Plan: %d video(s) to upload in %d chunk(s), %d to wait for and attach only, %d sharing an upload, "
            "%d skipped, %d problem(s), %d row(s) left for the next batch",
            len(begun),
            len(chunks),
            len(ready),
            len(batch.followers),
            len(batch.skipped),
            len(problems),
            len(batch.deferred_lines),
        )
        # "sends": this run sends the video's bytes (a VOD job has its asset id before any byte goes).
        values = [job.with_(details={**job.details, "sends": True}).as_xcom() for job in begun]
        values += [job.as_xcom() for job in ready]
        values += [
            {**follower.as_xcom(), "details": {**follower.details, "follows": leader.product}}
            for follower, leader in batch.followers
        ]
        context["ti"].xcom_push(key="jobs", value=values)
        context["ti"].xcom_push(key="report", value=report)
        self.report_source(str(self.manifest))
        self.report_jobs(jobs, videos=False)
        return chunks

    def lineage_on_start(self) -> Any:
        from media_upload.lineage import Lineage, named_source

        lineage = Lineage()
        lineage.add([named_source(self.manifest)])
        return lineage

    def _jobs(
        self, row: ManifestRow, steps: Mapping[str, PlatformSteps], problems: list[RowProblem]
    ) -> list[UploadJob]:
        """The row's video checked once, then one job per platform the row names; problems are added to
        ``problems`` (the row's, or one platform's) instead."""
        from media_upload.steps.common import TargetRefused
        from media_upload.transfer.source import Source, SourceError

        targets = [target for target in row.targets if target.platform in steps]
        try:
            source = Source.of(row.video, self.source_conn_id)
            limit = max(steps[target.platform].max_file_bytes for target in targets)
            info = source.inspect(
                max_bytes=limit, platform=" and ".join(steps[t.platform].title for t in targets)
            )
            digests = source.digests("sha256", "md5")
        except SourceError as exc:
            problems.append(RowProblem(row.line, "video", str(exc)))
            return []
        jobs = []
        for target in targets:
            platform = steps[target.platform]
            try:
                jobs.append(
                    platform.catalog_job(
                        row, target, source, info, digests, optional_int("block_size", self.block_size)
                    )
                )
            except SourceError as exc:
                problems.append(RowProblem(row.line, "video", str(exc), target.platform))
            except TargetRefused as exc:
                problems.append(RowProblem(row.line, exc.field, exc.reason, target.platform))
            except platform.api_error as exc:
                problems.append(RowProblem(row.line, "(row)", f"{target.label}: {exc}", target.platform))
            except Exception as exc:  # the platform could not be asked (after the hook's retries)
                problems.append(
                    RowProblem(
                        row.line,
                        UNCHECKED,
                        f"{target.label}: {exc}; the next run checks again",
                        target.platform,
                    )
                )
        return jobs


class CatalogUploadChunkOperator(UploadChunkMixin, CatalogOperator):
    """One chunk's blocks (of videos on any of the catalog's platforms), several at once; each video is
    committed (completed, confirmed) by the chunk that delivers its last block, and the label says how
    many. Meant to be mapped, one task per chunk.

    :param chunk: one chunk from the plan task.
    """

    def __init__(self, *, chunk: Mapping[str, Any], **kwargs: Any) -> None:
        from media_upload.operators.base import CHUNK_LABEL

        kwargs.setdefault("map_index_template", CHUNK_LABEL)
        super().__init__(**kwargs)
        self.chunk = chunk

    def execute(self, context: Context) -> dict[str, list[dict[str, Any]]]:
        from media_upload.steps.common import send_and_finish

        steps = self.steps(context)
        return self.upload_chunk(lambda chunk: send_and_finish(chunk, steps, self.log), "finished", "upload")


class CatalogSettleOperator(CatalogOperator):
    """Settles every upload of the batch: the chunk tasks commit each video as its last block goes up; this
    commits what they could not and asks each platform about commits whose answer was lost. Videos that
    share an upload get its video. Returns the videos to wait for (every job that has a video id).

    A video whose blocks did not all go up (a chunk task failed) keeps its upload for the next run.

    :param plan_task_id: the plan task, whose ``jobs`` XCom lists the batch.
    """

    def __init__(self, *, plan_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")  # a failed chunk fails only its own videos
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from media_upload.ledger import COMMITTED
        from media_upload.steps.common import UploadStopped

        values = context["ti"].xcom_pull(task_ids=self.plan_task_id, key="jobs")
        if values is None:
            raise AirflowSkipException("The plan did not run, so there is nothing to settle")
        steps = self.steps(context)
        jobs = jobs_of(values)
        leaders = [job for job in jobs if not job.details.get("follows")]
        entries = self.ledger.get_many(job.key for job in leaders)
        videos = {
            (job.platform, job.product): job.with_(video_id=video_id)
            for job in leaders
            if (entry := entries.get(job.key)) and (video_id := entry.made_video)
        }
        uploads = [job for job in leaders if (job.platform, job.product) not in videos]
        lost: list[str] = []
        for job, result in zip(
            uploads, each(uploads, lambda job: steps[job.platform].finish(job)), strict=True
        ):
            platform = steps[job.platform]
            if isinstance(result, platform.transport_error):
                lost.append(f"{platform.title} {job.label}: {result}")
            elif isinstance(result, UploadStopped | platform.api_error):
                self.log.warning("%s %s: not committed: %s", platform.title, job.label, result)
                platform.record(job, reason=str(result)[:1000])
            elif isinstance(result, BaseException):
                raise result
            elif result is not None and result.video_id:
                videos[(job.platform, job.product)] = result
        for follower in (job for job in jobs if job.details.get("follows")):
            leader = videos.get((follower.platform, str(follower.details["follows"])))
            if leader is not None:
                steps[follower.platform].record(
                    follower,
                    state=COMMITTED,
                    video_id=leader.video_id,
                    reason=f"reuses the video uploaded for {leader.label}",
                )
                videos[(follower.platform, follower.product)] = follower.with_(video_id=leader.video_id)
        if lost:  # the answers may come on a retry; the ledger keeps these commits open until then
            raise AirflowException("These commits got no answer; a retry asks again:\n" + "\n".join(lost))
        self.log.info("%d video(s) to wait for", len(videos))
        self.report_jobs(videos.values())
        return [job.as_xcom() for job in videos.values()]


class CatalogAttachOperator(CatalogOperator):
    """Waits, deferred, for every video of the batch, and puts each on its product the moment its own audit
    (or transcoding) passes; a rejected one is recorded and reported at once. One trigger watches every
    platform's videos and fires as soon as any settles (no sooner than the hand-back time after it started,
    see :func:`media_upload.triggers.base.hand_back`); the task attaches what settled and defers again for
    the rest, so a video never waits for its slower siblings.

    When every video has settled, adds one event to each Asset in ``outlets`` for the videos it attached,
    ``extra = {"run_id", "videos": [...]}`` naming each with its platform, and one event per video under
    each AssetAlias. A video whose product update fails passingly makes the task fail at the end, after
    the others, so a retry finishes it.

    Audits that take longer than ``late_after`` seconds are handed over (XCom ``late``) to a second task
    of this class with ``late_from`` naming this one: the run's event, its report and its next batch do not
    wait for the slowest review, and the late videos get their own event when they settle.

    :param settle_task_id: the settle task, whose output lists the videos.
    :param poke_interval: the longest wait between two looks at a platform that does not push.
    :param timeout: how long to wait for the audits, in seconds (late ones included).
    :param late_after: seconds after which the videos still waited for are handed over; None: never.
    :param late_from: wait only for the videos this task handed over.
    """

    def __init__(
        self,
        *,
        settle_task_id: str,
        poke_interval: float = 30,
        timeout: float = 24 * 3600,
        late_after: float | None = None,
        late_from: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.settle_task_id = settle_task_id
        self.poke_interval = poke_interval
        self.wait_timeout = timeout
        self.late_after = late_after
        self.late_from = late_from

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from media_upload.ledger import REJECTED

        if self.late_from:
            late = context["ti"].xcom_pull(task_ids=self.late_from, key="late")
            if not late:
                raise AirflowSkipException(f"Every video settled in {self.late_from}: none is late")
            return self._settle(context, {}, late["pending"], float(late["deadline"]))
        videos = context["ti"].xcom_pull(task_ids=self.settle_task_id)
        if not videos:
            raise AirflowSkipException("No video was committed, so there is nothing to wait for")
        steps = self.steps(context)
        jobs = jobs_of(videos)
        entries = self.ledger.get_many(job.key for job in jobs)
        pending = [
            job.key
            for job in jobs
            if (entry := entries.get(job.key)) is None
            or entry.state not in (steps[job.platform].done_state, REJECTED)
        ]
        started = time.time()
        hand_over = started + self.late_after if self.late_after is not None else None
        return self._settle(context, {}, pending, started + self.wait_timeout, hand_over=hand_over)

    def resume(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Back from the trigger: its event names the states it saw, the videos it could not read, and
        echoes what is still waited for (and what could not be read before)."""
        echo = event["echo"]
        pending = [tuple(key) for key in echo["pending"]]
        unreadable = {**echo.get("unreadable", {}), **(event.get("failed") or {})}
        return self._settle(
            context,
            dict(event.get("states") or {}),
            pending,
            float(echo["deadline"]),
            unreadable,
            echo.get("unattached", ()),
            echo.get("hand_over"),
        )

    def _settle(
        self,
        context: Context,
        states: Mapping[str, str],
        pending: Sequence[Sequence[str]],
        deadline: float,
        unreadable: Mapping[str, str] | None = None,
        unattached: Sequence[str] = (),
        hand_over: float | None = None,
    ) -> list[dict[str, Any]]:
        """Attach what settled; then, before deferring again, take the states already pushed for the rest
        (they came while this task attached), so a video never waits a trigger's round trip it need not."""
        from media_upload.triggers.videos import VideosSettledTrigger, video_key

        steps = self.steps(context)
        unreadable, retry = dict(unreadable or {}), list(unattached)
        jobs = {job.key: job for job in jobs_of(context["ti"].xcom_pull(task_ids=self.settle_task_id))}
        waiting = [jobs[tuple(key)] for key in pending if tuple(key) in jobs]  # type: ignore[index]
        while True:
            audited, still = [], []
            seen = [(job, states.get(video_key(job.platform, job.video_id or ""))) for job in waiting]
            verdicts = each(seen, lambda pair: self._verdict(steps, *pair))  # recorded: many at once
            for (job, state), verdict in zip(seen, verdicts, strict=True):
                if isinstance(verdict, BaseException):
                    raise verdict
                key = video_key(job.platform, job.video_id or "")
                if verdict is None and key in unreadable:
                    reason = f"its state could not be read ({unreadable[key]}); the next run waits again"
                    steps[job.platform].record(job, reason=reason[:1000])
                elif verdict == "ready":
                    audited.append(job)
                elif verdict == "failed":
                    self.log.warning(
                        "%s %s: video %s ended in %s",
                        steps[job.platform].title,
                        job.label,
                        job.video_id,
                        state,
                    )
                else:
                    still.append(job)
            retry += self._attach(steps, audited)
            waiting = still
            states = {
                video_key(platform, video_id): state
                for platform, platform_steps in steps.items()
                for video_id, state in platform_steps.pushed_states(
                    [job for job in waiting if job.platform == platform]
                ).items()
            }
            if not any(
                states.get(video_key(job.platform, job.video_id or ""))
                in steps[job.platform].final_states(job)
                for job in waiting
            ):
                break
        late = bool(waiting) and hand_over is not None and time.time() >= hand_over
        if waiting and not late and time.time() < deadline:
            self.log.info(
                "%d video(s) attached or settled so far; waiting for %d",
                len(jobs) - len(waiting),
                len(waiting),
            )
            self.defer(
                trigger=VideosSettledTrigger(
                    videos=[
                        {
                            "platform": job.platform,
                            "conn_id": self.connections[job.platform],
                            "video_id": job.video_id,
                            "final": steps[job.platform].final_states(job),
                        }
                        for job in waiting
                    ],
                    poll_interval=self.poke_interval,
                    echo={
                        "pending": [list(job.key) for job in waiting],
                        "deadline": deadline,
                        "unreadable": unreadable,
                        "unattached": retry,
                        "hand_over": hand_over,
                    },
                    until=hand_over,
                ),
                method_name="resume",
                timeout=timedelta(seconds=max(deadline - time.time(), 1)),
            )
        if late:
            self.log.info(
                "%d video(s) still in review after %.0f s: the late-audit task waits for them",
                len(waiting),
                self.late_after or 0,
            )
            context["ti"].xcom_push(
                key="late", value={"pending": [list(job.key) for job in waiting], "deadline": deadline}
            )
        else:
            for job in waiting:
                self.log.warning(
                    "%s %s: video %s has no final state yet; the next run waits again",
                    steps[job.platform].title,
                    job.label,
                    job.video_id,
                )
        named = list(jobs.values())
        if self.late_from:  # only the videos handed over: the first task's event named the others
            late_keys = {
                tuple(key) for key in context["ti"].xcom_pull(task_ids=self.late_from, key="late")["pending"]
            }
            named = [job for job in named if job.key in late_keys]
        attached = self._attached(steps, named, context["run_id"])
        self.report_attached(attached)
        self._emit(context, attached)
        problems = [f"product not updated yet: {line}" for line in retry]
        problems += [f"state not read: {key}: {message}" for key, message in unreadable.items()]
        if problems:  # after the others are attached: a retry finishes these
            raise AirflowException("A retry tries these again:\n" + "\n".join(problems))
        return attached

    @staticmethod
    def _verdict(steps: Mapping[str, PlatformSteps], job: UploadJob, state: str | None) -> str | None:
        """The platform's verdict on ``state`` recorded in the ledger; None while there is no state."""
        return steps[job.platform].audited(job, state) if state else None

    def _attach(self, steps: Mapping[str, PlatformSteps], audited: Sequence[UploadJob]) -> list[str]:
        """Put each audited video on its product; returns the passing failures, for a retry."""
        retry: list[str] = []
        for job, result in zip(
            audited, each(audited, lambda job: steps[job.platform].attach(job)), strict=True
        ):
            platform = steps[job.platform]
            if isinstance(result, BaseException):
                platform.stopped_attaching(job, result)
                if isinstance(result, platform.transport_error):
                    retry.append(f"{platform.title} {job.label}: {result}")
            elif result is not None:
                self.log.info("%s %s: video %s is on its product", platform.title, job.label, job.video_id)
        return retry

    def _attached(
        self, steps: Mapping[str, PlatformSteps], jobs: Iterable[UploadJob], run_id: str
    ) -> list[dict[str, Any]]:
        """Every video this run put on its product, as the Asset events name them."""
        jobs = list(jobs)
        found, entries = [], self.ledger.get_many(job.key for job in jobs)
        for job in jobs:
            entry = entries.get(job.key)
            if entry is None or entry.state != steps[job.platform].done_state or entry.run_id != run_id:
                continue
            found.append(
                {
                    "platform": job.platform,
                    "product": job.product,
                    "seller_sku": job.seller_sku,
                    "item_id": entry.details.get("item_id") or job.item_id,
                    "video_id": job.video_id,
                    "content_sha256": job.content_sha256,
                }
            )
        return found

    def _emit(self, context: Context, attached: list[dict[str, Any]]) -> None:
        if not attached:
            return
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = {"run_id": context["run_id"], "videos": attached}  # type: ignore[dict-item]
            elif isinstance(outlet, AssetAlias):
                for video in attached:
                    name = f"{video['platform']}_item_{video['item_id'] or video['product']}"
                    uri = f"x-{video['platform'].replace('_', '-')}://{self.accounts.get(video['platform']) or self.connections[video['platform']]}/items/{video['item_id'] or video['product']}/video"
                    context["outlet_events"][outlet].add(Asset(uri=uri, name=name), extra=video)
