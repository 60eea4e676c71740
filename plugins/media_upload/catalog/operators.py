"""The batch steps of a Lazada catalog run: plan, settle the commits, wait for the audits, attach.

Each step is one task for the whole batch (the blocks go up in a few mapped chunk tasks), so a
300-video catalog costs a handful of task instances, not thousands. Inside a step each video is on its
own: one that fails is recorded in the ledger with its reason and the others go on; the report lists
every row, and the verdict task fails the run when a video failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import Asset, AssetAlias, conf
from airflow.sdk.exceptions import AirflowException

from media_upload.catalog.manifest import RowProblem, read_manifest
from media_upload.catalog.plan import PLATFORM, Candidate, plan_batch
from media_upload.hooks import LAZADA_CONN_ID
from media_upload.operators.base import optional_int, refuse
from media_upload.operators.lazada import LazadaBaseOperator
from media_upload.protocols.lazada import BLOCK_RULES, MAX_FILE_BYTES
from media_upload.sensors.lazada import LazadaVideoAuditSensor
from media_upload.transfer.plan import DEFAULT_IN_FLIGHT
from media_upload.transfer.policy import shown

if TYPE_CHECKING:
    from airflow.sdk import Context

    from media_upload.steps.common import UploadJob

#: Calls one step makes at once (InitCreateVideo, commits, product look-ups and updates).
API_CONCURRENCY = 8
T = TypeVar("T")
R = TypeVar("R")


def product_videos_asset(account: str = LAZADA_CONN_ID) -> Asset:
    """The Asset a catalog run updates: ``x-lazada://<account>/product-videos``.

    The ``x-`` scheme is Airflow's own mark of a user-defined URI: Airflow then needs no provider to
    normalise it, so a DAG file that names the Asset parses without loading every provider.
    """
    return Asset(uri=f"x-lazada://{account}/product-videos", name=f"lazada_product_videos__{account}")


def product_video_events(account: str = LAZADA_CONN_ID) -> AssetAlias:
    """The alias under which a catalog run adds one event per attached video, for users who want them."""
    return AssetAlias(name=f"lazada_product_video_events__{account}")


def each(items: Sequence[T], work: Callable[[T], R]) -> list[R | BaseException]:
    """``work`` on every item, ``API_CONCURRENCY`` at once; an item's exception is its result."""

    def guarded(item: T) -> R | BaseException:
        try:
            return work(item)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=API_CONCURRENCY, thread_name_prefix="catalog") as pool:
        return list(pool.map(guarded, items))


def _jobs(values: Iterable[Mapping[str, Any]] | None) -> list[UploadJob]:
    from media_upload.steps.common import UploadJob

    return [UploadJob.from_xcom(value) for value in values or ()]


class LazadaCatalogPlanOperator(LazadaBaseOperator):
    """Read and check the manifest, find every product on Lazada, consult the ledger, and start uploads.

    Every row is checked before the first upload: its columns, its video (exists, 1 to 99,999,999 bytes,
    an MP4/MOV; hashed with SHA-256) and its product (GetProductItem for an ``item_id``, GetProducts for a
    ``seller_sku``): a bad row is reported with its line, field and reason and skipped. Then, per the
    ledger, a video is uploaded (or its upload resumed), only audited and attached (Lazada already has
    it), or skipped (attached already, rejected before, needing attention). InitCreateVideo runs here for
    the batch's uploads, and their blocks are packed into ``chunks`` chunk tasks.

    Returns the chunks (the mapped ``upload_chunk`` expands over them); pushes ``jobs`` (every video of
    the batch) and ``report`` (bad rows, skipped rows, rows left for the next batch).

    :param manifest: path or URL of a ``.csv`` or ``.jsonl`` manifest. (templated)
    :param block_size: bytes per block unless a row says otherwise; 0: equal blocks under 3 MB. (templated)
    :param after_line: process only rows after this manifest line (set by the next-batch run). (templated)
    :param chunks: chunk tasks for the batch's blocks. (templated)
    :param blocks_in_flight: blocks each chunk sends at once; by default the chunks share 8. (templated)
    :param upload_again_needs_attention: upload rows whose earlier upload needs attention. (templated)
    :param source_conn_id: the connection that reads a remote manifest and its videos (an HTTP connection
        only for its own host); never taken from a URL. ``[media_upload] allowed_sources`` says what may be
        read, for the manifest and for every row.
    """

    template_fields: Sequence[str] = (
        *LazadaBaseOperator.template_fields,
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
        self.source_conn_id = source_conn_id
        self.block_size = block_size
        self.after_line = after_line
        self.chunks = chunks
        self.blocks_in_flight = blocks_in_flight
        self.upload_again_needs_attention = upload_again_needs_attention

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from media_upload.catalog.plan import pack_chunks

        try:
            rows, problems, unknown = read_manifest(str(self.manifest), self.source_conn_id)
        except ValueError as exc:
            raise refuse(exc) from None
        if unknown:
            self.log.warning("Manifest columns not used: %s", ", ".join(unknown))
        if not rows:
            first = "; ".join(str(problem) for problem in problems[:5])
            raise refuse(
                f"manifest {shown(self.manifest)} has no usable row"
                + (f": {len(problems)} bad row(s), first {first}" if problems else ": it holds no row at all")
            )
        rows = [row for row in rows if row.line > int(self.after_line)]
        candidates = [
            c for c in each(rows, lambda row: self._candidate(row, problems)) if isinstance(c, Candidate)
        ]
        candidates.sort(key=lambda candidate: candidate.row.line)
        steps = self.steps(context)
        stored = {
            key: entry
            for key in {c.job(self.seller).key for c in candidates}
            if (entry := self.ledger.get(*key))
        }
        by_content = {
            c.content_sha256: self.ledger.with_content(PLATFORM, self.seller, c.content_sha256)
            for c in candidates
        }
        limit = conf.getint("core", "max_map_length", fallback=1024)
        batch = plan_batch(
            candidates,
            stored,
            by_content,
            account=self.seller,
            limit=limit,
            upload_again=str(self.upload_again_needs_attention).lower() in ("true", "1", "yes"),
        )
        for job in batch.ready:
            if job.details.get("reuses"):
                steps.record_reuse(job, str(job.details["reuses"]))
        for follower, leader in batch.followers:
            steps.record(follower, reason=f"shares its content with line {leader.line}")
        begun: list[UploadJob] = []
        for job, result in zip(batch.uploads, each(batch.uploads, steps.begin), strict=True):
            if isinstance(result, BaseException):
                problems.append(RowProblem(job.line or 0, "video", f"could not start the upload: {result}"))
                steps.stopped(job, result)
            elif result.video_id:
                batch.ready.append(result)
            else:
                begun.append(result)
        chunk_count = optional_int("chunks", self.chunks) or 1
        in_flight = optional_int("blocks_in_flight", self.blocks_in_flight) or max(
            1, DEFAULT_IN_FLIGHT // chunk_count
        )
        chunks = pack_chunks(begun, chunk_count, in_flight)
        report = {
            "manifest": shown(self.manifest),
            "invalid": [asdict(problem) for problem in sorted(problems, key=lambda p: p.line)],
            "skipped": [asdict(skip) for skip in batch.skipped],
            "deferred_lines": batch.deferred_lines,
            "next_after_line": batch.deferred_lines[0] - 1 if batch.deferred_lines else None,
        }
        for problem in problems:
            self.log.warning("Skipping manifest %s", problem)
        self.log.info(
            "Plan: %d video(s) to upload in %d chunk(s), %d to audit and attach only, %d sharing an upload, "
            "%d skipped, %d bad row(s), %d left for the next batch",
            len(begun),
            len(chunks),
            len(batch.ready),
            len(batch.followers),
            len(batch.skipped),
            len(problems),
            len(batch.deferred_lines),
        )
        jobs = [job.as_xcom() for job in (*begun, *batch.ready)]
        jobs += [
            {**follower.as_xcom(), "details": {"follows": leader.product}}
            for follower, leader in batch.followers
        ]
        context["ti"].xcom_push(key="jobs", value=jobs)
        context["ti"].xcom_push(key="report", value=report)
        return chunks

    def _candidate(self, row: Any, problems: list[RowProblem]) -> Candidate | None:
        """Check one row's video and product; a problem is added to ``problems`` instead."""
        from media_upload.hooks.lazada import LazadaApiError
        from media_upload.transfer.plan import plan_upload
        from media_upload.transfer.source import Source, SourceError

        try:
            source = Source.of(row.video, self.source_conn_id)
            info = source.inspect(max_bytes=MAX_FILE_BYTES, platform="Lazada")
            block_size = row.block_size or optional_int("block_size", self.block_size)
            plan = plan_upload(
                str(source), info.size, BLOCK_RULES, block_size=block_size, chunks=1, blocks_in_flight=1
            )
        except SourceError as exc:
            problems.append(RowProblem(row.line, "video", str(exc)))
            return None
        try:
            item_id, sku_ids = self._product(row)
        except LazadaApiError as exc:
            field = "item_id" if row.item_id else "seller_sku"
            problems.append(
                RowProblem(
                    row.line, field, f"{row.label}: {exc.message} ({exc.code}); check the product on Lazada"
                )
            )
            return None
        return Candidate(
            row, source, info.name, info.size, source.sha256(), plan.blocks.block_size, item_id, sku_ids
        )

    def _product(self, row: Any) -> tuple[str, tuple[str, ...]]:
        """The item id and SKU ids the row's video goes on, read from Lazada before any upload."""
        if row.item_id:
            product = self.hook.get_product_item(row.item_id)
            known = {str(sku["SkuId"]) for sku in product.get("skus", [])}
            missing = [sku for sku in row.sku_ids if sku not in known]
            if missing:
                from media_upload.hooks.lazada import LazadaApiError

                raise LazadaApiError(
                    "/product/item/get",
                    "SKU_NOT_FOUND",
                    f"item {row.item_id} has no SKU {', '.join(missing)}",
                )
            return str(row.item_id), tuple(row.sku_ids) or tuple(sorted(known))
        product = self.hook.find_product(row.seller_sku or "")
        skus = tuple(
            str(sku["SkuId"]) for sku in product.get("skus", []) if sku.get("SellerSku") == row.seller_sku
        )
        return str(product["item_id"]), skus


class LazadaCatalogCommitOperator(LazadaBaseOperator):
    """Settles every upload of the batch: the chunk tasks commit each video as its last block goes up;
    this commits what they could not and asks Lazada about commits whose answer was lost. Videos that
    share an upload get its video. Returns the videos to wait for (every job that has a video id).

    A video whose blocks did not all go up (a chunk task failed) keeps its upload for the next run.

    :param plan_task_id: the plan task, whose ``jobs`` XCom lists the batch.
    """

    def __init__(self, *, plan_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")  # a failed chunk fails only its own videos
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowSkipException

        from media_upload.steps.common import UploadStopped

        values = context["ti"].xcom_pull(task_ids=self.plan_task_id, key="jobs")
        if values is None:
            raise AirflowSkipException("The plan did not run, so there is nothing to commit")
        steps = self.steps(context)
        jobs = _jobs(values)
        uploads = [job for job in jobs if not job.video_id and not job.details.get("follows")]
        videos = {job.product: job for job in jobs if job.video_id}
        lost: list[str] = []
        for job, result in zip(uploads, each(uploads, steps.commit), strict=True):
            if isinstance(result, steps.transport_error):
                lost.append(f"{job.label}: {result}")
            elif isinstance(result, UploadStopped | steps.api_error):
                self.log.warning("%s: not committed: %s", job.label, result)
                steps.record(job, reason=str(result)[:1000])
            elif isinstance(result, BaseException):
                raise result
            elif result is not None and result.video_id:
                videos[job.product] = result
        for follower in (job for job in jobs if job.details.get("follows")):
            leader = videos.get(str(follower.details["follows"]))
            if leader is not None:
                steps.record_reuse(follower.with_(video_id=leader.video_id), leader.label)
                videos[follower.product] = follower.with_(video_id=leader.video_id)
        if lost:  # the answers may come on a retry; the ledger keeps these commits open until then
            raise AirflowException(
                "Lazada did not answer these commits; a retry asks again:\n" + "\n".join(lost)
            )
        self.log.info("%d video(s) to wait for", len(videos))
        return [job.as_xcom() for job in videos.values()]


class LazadaCatalogAuditSensor(LazadaVideoAuditSensor):
    """Waits, deferred, until Lazada has audited every video of the batch; one trigger for them all.

    Returns ``{video_id: state}``. A rejected video does not fail this task: the attach step records it
    and goes on with the others.

    :param videos: the commit step's output. (templated)
    """

    template_fields: Sequence[str] = (*LazadaVideoAuditSensor.template_fields, "videos")

    def __init__(self, *, videos: Any, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)
        super().__init__(video_id="", **kwargs)
        self.videos = videos

    @property
    def video_ids(self) -> list[str]:
        return sorted({str(video["video_id"]) for video in self.videos or () if video.get("video_id")})

    def poke(self, context: Context) -> Any:
        from airflow.sdk import PokeReturnValue

        from media_upload.protocols.lazada import TERMINAL_VIDEO_STATES

        states = {video_id: str(self.hook.get_video(video_id)["state"]) for video_id in self.video_ids}
        return PokeReturnValue(
            is_done=all(state in TERMINAL_VIDEO_STATES for state in states.values()), xcom_value=states
        )

    def trigger(self) -> Any:
        from media_upload.triggers.lazada import LazadaVideosAuditTrigger

        return LazadaVideosAuditTrigger(
            video_ids=self.video_ids, lazada_conn_id=self.lazada_conn_id, poll_interval=self.poke_interval
        )

    def outcome(self, event: dict[str, Any]) -> Any:
        return dict(event.get("states") or {})

    def execute(self, context: Context) -> Any:
        if not self.video_ids:
            self.log.info("No video to wait for")
            return {}
        return super().execute(context)


class LazadaCatalogAttachOperator(LazadaBaseOperator):
    """Records each audit's end in the ledger and puts every audited video on its product (UpdateProduct).

    Adds one event to each Asset in ``outlets`` for the whole batch, ``extra = {"videos": [...]}`` listing
    every attached video, so a product-sync DAG runs once per catalog run; and one event per video under
    :func:`product_video_events` for those who want them. A video whose update fails is recorded with the
    reason; a transient failure makes the task fail after the others are done, so a retry finishes them.

    :param commit_task_id: the commit task, whose output lists the videos.
    :param audit_task_id: the audit wait, whose output is each video's state (none when it timed out).
    """

    def __init__(self, *, commit_task_id: str, audit_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.commit_task_id = commit_task_id
        self.audit_task_id = audit_task_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowSkipException

        videos = context["ti"].xcom_pull(task_ids=self.commit_task_id)
        if not videos:
            raise AirflowSkipException("No video was committed, so there is nothing to attach")
        steps = self.steps(context)
        states = context["ti"].xcom_pull(task_ids=self.audit_task_id) or {}
        audited: list[UploadJob] = []
        for job in _jobs(videos):
            state = states.get(str(job.video_id))
            if state is None:
                self.log.warning(
                    "%s: video %s has no audit result yet; the next run waits again", job.label, job.video_id
                )
            elif state == "AUDIT_SUCCESS":
                steps.audited(job, state)
                audited.append(job)
            else:
                steps.audited(job, state)
                self.log.warning("%s: video %s ended in %s", job.label, job.video_id, state)
        attached: list[dict[str, Any]] = []
        retry: list[str] = []
        for job, result in zip(audited, each(audited, steps.attach), strict=True):
            if isinstance(result, BaseException):
                steps.stopped_attaching(job, result)
                if isinstance(result, steps.transport_error):
                    retry.append(f"{job.label}: {result}")
                continue
            attached.append(
                {
                    "seller_sku": job.seller_sku,
                    "item_id": result["item_id"],
                    "video_id": job.video_id,
                    "content_sha256": job.content_sha256,
                }
            )
        self._emit(context, attached)
        if retry:
            raise AirflowException(
                "These products could not be updated yet; a retry tries again:\n" + "\n".join(retry)
            )
        return attached

    def _emit(self, context: Context, attached: list[dict[str, Any]]) -> None:
        if not attached:
            return
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = {"run_id": context["run_id"], "videos": attached}  # type: ignore[dict-item]
            elif isinstance(outlet, AssetAlias):
                for video in attached:
                    uri = f"x-lazada://{self.seller}/items/{video['item_id']}/video"
                    context["outlet_events"][outlet].add(
                        Asset(uri=uri, name=f"lazada_item_{video['item_id']}"), extra=video
                    )
