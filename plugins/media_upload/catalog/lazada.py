"""The steps of a Lazada catalog run: plan, upload (mapped per video and per block), audit, attach, report.

Airflow cannot map tasks inside a mapped task group, so a catalog is not "one group per video". Each
step is one task mapped over the videos of the run, and the blocks of every video are flattened into
one mapped block task; small reducer tasks (``trigger_rule="all_done"``) regroup what succeeded between
steps. A video whose step fails fails only its own task instance: the reducers carry the others on, and
the ledger records why the failed one stopped.
"""

from __future__ import annotations

import contextlib
import csv
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, conf, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from media_upload.catalog.manifest import RowProblem, read_manifest
from media_upload.hooks.lazada import LazadaHook
from media_upload.ledger import (
    ATTACHED,
    AUDITED,
    COMMITTED,
    DEFAULT_CONN_ID,
    FAILED,
    PLANNED,
    REJECTED,
    UPLOADING,
    LedgerEntry,
    UploadLedger,
)
from media_upload.operators.base import refuse
from media_upload.operators.lazada import LazadaBaseOperator
from media_upload.protocols.lazada import DEFAULT_BLOCK_BYTES, MAX_FILE_BYTES
from media_upload.sensors.lazada import LazadaVideoAuditSensor
from media_upload.transfer.blocks import BlockPlan
from media_upload.transfer.source import SourceError, inspect_source, sha256_of, source_path

if TYPE_CHECKING:
    from airflow.sdk import Context

PLATFORM = "lazada"
VIDEO_LABEL = "{{ task.job['label'] }}"


def product_videos_asset(account: str = LazadaHook.default_conn_name) -> Asset:
    """The Asset a catalog run updates, one event per attached video: ``lazada://<account>/product-videos``."""
    return Asset(uri=f"lazada://{account}/product-videos", name=f"lazada_product_videos__{account}")


class CatalogStep:
    """What every catalog step shares: the account, the ledger, and recording a job's failure there."""

    account: str
    ledger_conn_id: str

    @cached_property
    def ledger(self) -> UploadLedger:
        return UploadLedger(self.ledger_conn_id)

    def entry(self, job: dict[str, Any]) -> LedgerEntry:
        """The job's ledger row as stored, or a fresh one."""
        stored = self.ledger.get(PLATFORM, self.account, job["product"], job["content_sha256"])
        return stored or LedgerEntry(
            PLATFORM,
            self.account,
            job["product"],
            job["content_sha256"],
            PLANNED,
            job["file_size"],
            job["video"],
        )

    @contextlib.contextmanager
    def recording_failures(self, job: dict[str, Any], run_id: str) -> Iterator[None]:
        """Record any exception as the job's failure in the ledger, then let it fail the task."""
        try:
            yield
        except Exception as exc:
            self.ledger.record(self.entry(job), state=FAILED, reason=str(exc)[:1000], run_id=run_id)
            raise


class LazadaCatalogPlanOperator(CatalogStep, LazadaBaseOperator):
    """Read and check the manifest, hash each video, consult the ledger, and pick this run's batch.

    Returns the videos to upload (one dict each); pushes ``resume`` (videos already committed, or whose
    content was already uploaded for another product, which only need the audit wait and the attach)
    and ``report`` (bad rows with line, field and reason; rows skipped and why; rows left for the next
    batch). A batch holds at most ``[core] max_map_length`` videos and as many blocks, so no mapped step
    can outgrow what one run may map; the rest waits for the next batch run.

    :param manifest: path or URL of a ``.csv`` or ``.jsonl`` manifest. (templated)
    :param block_size: default bytes per block, a row may override it. (templated)
    :param after_line: process only rows after this manifest line (set by the next-batch run). (templated)
    :param account: names the seller in the ledger and the Asset; defaults to the connection id.
    :param ledger_conn_id: the SQL connection of the ledger.
    """

    template_fields: Sequence[str] = (
        *LazadaBaseOperator.template_fields,
        "manifest",
        "block_size",
        "after_line",
    )

    def __init__(
        self,
        *,
        manifest: str,
        block_size: int | str = DEFAULT_BLOCK_BYTES,
        after_line: int | str = 0,
        account: str | None = None,
        ledger_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.manifest = manifest
        self.block_size = block_size
        self.after_line = after_line
        self.account = account or self.lazada_conn_id
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        run_id = context["run_id"]
        try:
            rows, problems, unknown = read_manifest(str(self.manifest))
        except (FileNotFoundError, ValueError) as exc:
            raise refuse(exc) from None
        if unknown:
            self.log.warning("Manifest columns not used: %s", ", ".join(unknown))
        rows = [row for row in rows if row.line > int(self.after_line)]
        limit = conf.getint("core", "max_map_length", fallback=1024)
        uploads: list[dict[str, Any]] = []
        resume: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        blocks, next_after = 0, None
        leaders: dict[str, dict[str, Any]] = {}  # content uploaded in this batch, by SHA-256
        for index, row in enumerate(rows):
            try:
                info = inspect_source(row.video, max_bytes=MAX_FILE_BYTES, platform="Lazada")
            except SourceError as exc:
                problems.append(RowProblem(row.line, "video", str(exc)))
                continue
            block_size = row.block_size or int(self.block_size)
            count = BlockPlan(info.size, block_size).count
            if count > limit:
                reason = f"{count} blocks of {block_size:,} bytes exceed [core] max_map_length ({limit}); use larger blocks"
                problems.append(RowProblem(row.line, "block_size", reason))
                continue
            if (
                len(uploads) + len(resume) + sum(len(j["followers"]) for j in uploads) >= limit
                or blocks + count > limit
            ):
                next_after = rows[index - 1].line if index else int(self.after_line)
                self.log.warning(
                    "Batch full at %d videos and %d blocks ([core] max_map_length is %d): lines %d to %d wait "
                    "for the next batch run",
                    len(uploads) + len(resume),
                    blocks,
                    limit,
                    row.line,
                    rows[-1].line,
                )
                break
            job: dict[str, Any] = {
                "line": row.line,
                "label": row.label,
                "product": row.product,
                "seller_sku": row.seller_sku,
                "item_id": row.item_id,
                "sku_ids": list(row.sku_ids),
                "video": info.uri,
                "name": info.name,
                "title": row.title,
                "cover_url": row.cover_url,
                "video_usage": row.video_usage or "pro_main_video",
                "block_size": block_size,
                "file_size": info.size,
                "content_sha256": sha256_of(info.uri),
            }
            decision = self._decide(job, run_id)
            leader = leaders.get(job["content_sha256"])
            if decision == "upload" and leader is not None:
                # The same bytes for another product: one upload, one video, both products.
                self.ledger.record(
                    self.entry(job), reason=f"shares its content with line {leader['line']}", run_id=run_id
                )
                leader["followers"].append(job)
            elif decision == "upload":
                job["followers"] = []
                leaders[job["content_sha256"]] = job
                uploads.append(job)
                blocks += count
            elif isinstance(decision, dict):
                resume.append(decision)
            else:
                skipped.append({"line": row.line, "label": row.label, "reason": decision})
        deferred = [row.line for row in rows if next_after is not None and row.line > next_after]
        for problem in problems:
            self.log.warning("Skipping manifest %s", problem)
        report = {
            "manifest": str(self.manifest),
            "invalid": [asdict(problem) for problem in sorted(problems, key=lambda p: p.line)],
            "skipped": skipped,
            "deferred_lines": deferred,
            "next_after_line": next_after if deferred else None,
        }
        self.log.info(
            "Plan: %d video(s) to upload in %d block(s), %d to audit and attach only, %d skipped, %d bad row(s), "
            "%d left for the next batch",
            len(uploads),
            blocks,
            len(resume),
            len(skipped),
            len(problems),
            len(deferred),
        )
        context["ti"].xcom_push(key="report", value=report)
        context["ti"].xcom_push(key="resume", value=resume)
        return uploads

    def _decide(self, job: dict[str, Any], run_id: str) -> str | dict[str, Any]:
        """``"upload"``, a job to resume (with its ``video_id``), or why the row is skipped."""
        entry = self.ledger.get(PLATFORM, self.account, job["product"], job["content_sha256"])
        if entry is not None and entry.state == ATTACHED:
            self.log.info(
                "%s already carries video %s for this content; skipping", job["label"], entry.video_id
            )
            return f"already carries video {entry.video_id}"
        if entry is not None and entry.state == REJECTED:
            return f"this content was rejected before ({entry.reason}); change the video to try again"
        if entry is not None and entry.video_id and entry.state in (COMMITTED, AUDITED):
            self.ledger.record(entry, run_id=run_id)
            return {**job, "video_id": entry.video_id}
        for other in self.ledger.with_content(PLATFORM, self.account, job["content_sha256"]):
            if other.video_id and other.state in (COMMITTED, AUDITED, ATTACHED):
                self.log.info(
                    "%s reuses video %s, uploaded for %s", job["label"], other.video_id, other.product
                )
                self.ledger.record(
                    self.entry(job),
                    state=COMMITTED,
                    video_id=other.video_id,
                    reason=f"reuses the video uploaded for {other.product}",
                    run_id=run_id,
                )
                return {**job, "video_id": other.video_id}
        self.ledger.record(self.entry(job), state=PLANNED, reason=None, run_id=run_id)
        return "upload"


class LazadaCatalogInitOperator(CatalogStep, LazadaBaseOperator):
    """InitCreateVideo for one catalog video (mapped over the plan); labelled with the SKU in the UI.

    A video the ledger already holds a video id for (a cleared or re-run task) is passed on without a new
    upload.
    """

    def __init__(
        self, *, job: dict[str, Any], account: str, ledger_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ):
        kwargs.setdefault("map_index_template", VIDEO_LABEL)
        super().__init__(**kwargs)
        self.job = job
        self.account = account
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        job = self.job
        entry = self.entry(job)
        if entry.video_id:
            self.log.info("%s was already committed as video %s", job["label"], entry.video_id)
            return {**job, "video_id": entry.video_id}
        with self.recording_failures(job, context["run_id"]):
            size = int(source_path(job["video"]).stat().st_size)
            if size != job["file_size"]:
                raise AirflowFailException(
                    f"{job['video']} is now {size:,} bytes but was {job['file_size']:,} when planned; it changed"
                )
            upload_id = self.hook.init_create_video(job["name"], size)
        count = BlockPlan(job["file_size"], job["block_size"]).count
        self.ledger.record(entry, state=UPLOADING, upload_id=upload_id, reason=None, run_id=context["run_id"])
        self.log.info("%s: upload %s, %d block(s)", job["label"], upload_id, count)
        return {**job, "upload_id": upload_id, "block_count": count}


@task(trigger_rule="all_done")
def catalog_blocks(videos: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every block of every initialised video, flattened for one mapped block task."""
    return [
        {
            "upload_id": video["upload_id"],
            "source": video["video"],
            "file_size": video["file_size"],
            "block_no": block.number,
            "block_count": video["block_count"],
            "offset": block.offset,
            "length": block.length,
            "video_label": video["label"],
        }
        for video in videos
        if "upload_id" in video
        for block in BlockPlan(video["file_size"], video["block_size"]).blocks
    ]


@task(trigger_rule="all_done")
def complete_uploads(
    videos: Sequence[dict[str, Any]],
    parts: Sequence[dict[str, Any]],
    account: str,
    ledger_conn_id: str = DEFAULT_CONN_ID,
) -> list[dict[str, Any]]:
    """Regroup the blocks by video: ``{job, parts}`` for each video whose every block went up.

    A video missing a block is recorded as failed in the ledger (its block task shows which one) and
    goes no further; videos that were already committed pass straight on.
    """
    run_id = get_current_context()["run_id"]
    by_upload: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for part in parts:
        by_upload[part["uploadId"]].append(part)
    step = _Step(account, ledger_conn_id)
    ready: list[dict[str, Any]] = []
    for video in videos:
        if "upload_id" not in video:
            ready.append({"job": video, "parts": []})  # already committed: the commit step passes it on
            continue
        got = {int(part["partNumber"]) for part in by_upload[video["upload_id"]]}
        missing = sorted(set(range(1, video["block_count"] + 1)) - got)
        if missing:
            reason = f"block(s) {', '.join(map(str, missing))} of {video['block_count']} did not upload"
            step.ledger.record(step.entry(video), state=FAILED, reason=reason, run_id=run_id)
            continue
        ready.append({"job": video, "parts": by_upload[video["upload_id"]]})
    return ready


class _Step(CatalogStep):
    def __init__(self, account: str, ledger_conn_id: str) -> None:
        self.account = account
        self.ledger_conn_id = ledger_conn_id


class LazadaCatalogCommitOperator(CatalogStep, LazadaBaseOperator):
    """CompleteCreateVideo for one catalog video (mapped); never a second commit for the same content."""

    def __init__(
        self,
        *,
        job: dict[str, Any],
        parts: list[dict[str, Any]],
        account: str,
        ledger_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("map_index_template", VIDEO_LABEL)
        super().__init__(**kwargs)
        self.job = job
        self.parts = parts
        self.account = account
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        job = self.job
        entry = self.entry(job)
        if entry.video_id:
            self.log.info(
                "%s is already committed as video %s; not committing again", job["label"], entry.video_id
            )
            return {**job, "video_id": entry.video_id}
        with self.recording_failures(job, context["run_id"]):
            video_id = self.hook.complete_create_video(
                job["upload_id"], self.parts, job["title"], job["cover_url"], job["video_usage"]
            )
        self.ledger.record(entry, state=COMMITTED, video_id=video_id, run_id=context["run_id"])
        self.log.info("%s: committed as video %s", job["label"], video_id)
        return {**job, "video_id": video_id}


@task(trigger_rule="all_done")
def videos_to_audit(
    committed: Sequence[dict[str, Any]],
    resumed: Sequence[dict[str, Any]] | None,
    account: str,
    ledger_conn_id: str = DEFAULT_CONN_ID,
) -> list[dict[str, Any]]:
    """Committed videos of this run, the products that share their content, and the ones the plan resumed."""
    run_id = get_current_context()["run_id"]
    step = _Step(account, ledger_conn_id)
    videos = []
    for job in committed:
        videos.append(job)
        for follower in job.get("followers", []):
            reason = f"reuses the video uploaded for line {job['line']}"
            step.ledger.record(
                step.entry(follower), state=COMMITTED, video_id=job["video_id"], reason=reason, run_id=run_id
            )
            videos.append({**follower, "video_id": job["video_id"]})
    return [*videos, *(resumed or [])]


class LazadaCatalogAuditSensor(CatalogStep, LazadaVideoAuditSensor):
    """Waits for one catalog video's audit (mapped); returns its job; records the outcome in the ledger."""

    def __init__(
        self, *, job: dict[str, Any], account: str, ledger_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ):
        kwargs.setdefault("map_index_template", VIDEO_LABEL)
        super().__init__(video_id=job["video_id"], **kwargs)
        self.job = job
        self.account = account
        self.ledger_conn_id = ledger_conn_id

    def _rejected(self, state: str) -> AirflowFailException:
        error = super()._rejected(state)
        run_id = get_current_context()["run_id"]
        self.ledger.record(
            self.entry(self.job), state=REJECTED, reason=f"Lazada's audit ended in {state}", run_id=run_id
        )
        return error

    def poke(self, context: Context) -> Any:
        result = super().poke(context)
        if result.is_done:
            self._audited(context["run_id"])
            result.xcom_value = self.job
        return result

    def outcome(self, event: dict[str, Any]) -> Any:
        result = super().outcome(event)
        if isinstance(result, AirflowFailException):
            return result
        self._audited(get_current_context()["run_id"])
        return self.job

    def _audited(self, run_id: str) -> None:
        entry = self.entry(self.job)
        if entry.state != ATTACHED:
            self.ledger.record(entry, state=AUDITED, run_id=run_id)


@task(trigger_rule="all_done")
def videos_to_attach(audited: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The videos that passed their audit."""
    return list(audited)


class LazadaCatalogAttachOperator(CatalogStep, LazadaBaseOperator):
    """UpdateProduct with the audited video for one catalog row (mapped), then an Asset event.

    Finds the item by ``seller_sku`` when the row names no ``item_id``. Each attached video adds one event
    to the operator's outlets with ``extra`` = ``{seller_sku, item_id, video_id, content_sha256}``.
    """

    def __init__(
        self, *, job: dict[str, Any], account: str, ledger_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ):
        kwargs.setdefault("map_index_template", VIDEO_LABEL)
        super().__init__(**kwargs)
        self.job = job
        self.account = account
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        job = self.job
        with self.recording_failures(job, context["run_id"]):
            item_id, sku_ids = job["item_id"], job["sku_ids"]
            if not item_id:
                product = self.hook.find_product(job["seller_sku"])
                item_id = str(product["item_id"])
                sku_ids = [
                    str(sku["SkuId"])
                    for sku in product.get("skus", [])
                    if sku.get("SellerSku") == job["seller_sku"]
                ]
            result = self.hook.set_product_video(item_id, job["video_id"], sku_ids)
        self.ledger.record(self.entry(job), state=ATTACHED, run_id=context["run_id"])
        extra = {
            "seller_sku": job["seller_sku"],
            "item_id": str(item_id),
            "video_id": job["video_id"],
            "content_sha256": job["content_sha256"],
        }
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = extra
        return {**job, "item_id": str(item_id), "sku_ids": result["sku_ids"]}


class LazadaCatalogReportOperator(CatalogStep, LazadaBaseOperator):
    """The run's summary: an XCom, a CSV under the run's log folder and a table in the task log.

    Counts uploaded, skipped, failed, bad and deferred rows, bytes uploaded and the run's time; lists every
    row with its state, video id and reason.

    :param plan_task_id: task id of the plan step (its ``report`` XCom and its return value).
    """

    def __init__(
        self, *, plan_task_id: str, account: str, ledger_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id
        self.account = account
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        ti, run_id = context["ti"], context["run_id"]
        report = ti.xcom_pull(task_ids=self.plan_task_id, key="report")
        if not report:
            raise AirflowFailException("The plan step did not run, so there is nothing to report")
        planned = ti.xcom_pull(task_ids=self.plan_task_id) or []
        entries = {
            entry.product: entry for entry in self.ledger.for_run(run_id) if entry.platform == PLATFORM
        }
        lines = {job["product"]: job for job in planned}
        rows: list[dict[str, Any]] = []
        followers = {f["product"]: f for job in planned for f in job.get("followers", [])}
        for product, entry in entries.items():
            job = lines.get(product) or followers.get(product, {})
            unfinished = entry.state in (PLANNED, UPLOADING)  # its upload, or the one it shared, failed
            rows.append(
                {
                    "line": job.get("line", ""),
                    "product": job.get("label", product),
                    "state": FAILED if unfinished else entry.state,
                    "video_id": entry.video_id or "",
                    "bytes": entry.file_size if product in lines else 0,
                    "reason": entry.reason or "",
                }
            )
        rows += [
            {
                "line": s["line"],
                "product": s["label"],
                "state": "skipped",
                "video_id": "",
                "bytes": 0,
                "reason": s["reason"],
            }
            for s in report["skipped"]
        ]
        rows += [
            {
                "line": p["line"],
                "product": "",
                "state": "invalid",
                "video_id": "",
                "bytes": 0,
                "reason": f"{p['field']}: {p['reason']}",
            }
            for p in report["invalid"]
        ]
        rows += [
            {
                "line": line,
                "product": "",
                "state": "deferred",
                "video_id": "",
                "bytes": 0,
                "reason": "next batch",
            }
            for line in report["deferred_lines"]
        ]
        rows.sort(key=lambda row: (int(row["line"]) if str(row["line"]).isdigit() else 0, row["product"]))
        uploaded = [row for row in rows if row["bytes"] and row["video_id"]]  # bytes that made a video
        started = context["dag_run"].start_date or datetime.now(UTC)
        seconds = max((datetime.now(UTC) - started).total_seconds(), 0.001)
        byte_count = sum(int(row["bytes"]) for row in uploaded)
        summary = {
            "run_id": run_id,
            "manifest": report["manifest"],
            "uploaded": len(uploaded),
            "attached": sum(row["state"] == ATTACHED for row in rows),
            "skipped": len(report["skipped"]),
            "failed": sum(row["state"] in (FAILED, REJECTED) for row in rows),
            "invalid": len(report["invalid"]),
            "deferred": len(report["deferred_lines"]),
            "bytes_uploaded": byte_count,
            "seconds": round(seconds, 1),
            "bytes_per_second": round(byte_count / seconds),
            "csv": str(self._write_csv(context, rows)),
            "rows": rows,
        }
        self.log.info("Catalog run summary\n%s", _table(summary))
        return summary

    def _write_csv(self, context: Context, rows: list[dict[str, Any]]) -> Path:
        folder = (
            Path(conf.get("logging", "base_log_folder"))
            / f"dag_id={context['dag'].dag_id}"
            / f"run_id={context['run_id']}"
        )
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "catalog-summary.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=["line", "product", "state", "video_id", "bytes", "reason"]
            )
            writer.writeheader()
            writer.writerows(rows)
        return path


def _table(summary: dict[str, Any]) -> str:
    head = (
        f"uploaded {summary['uploaded']}, attached {summary['attached']}, skipped {summary['skipped']}, "
        f"failed {summary['failed']}, bad rows {summary['invalid']}, next batch {summary['deferred']}; "
        f"{summary['bytes_uploaded']:,} bytes in {summary['seconds']} s ({summary['bytes_per_second']:,} B/s)"
    )
    lines = [head, f"{'line':>5}  {'product':<28} {'state':<10} {'video id':<12} reason"]
    lines += [
        f"{row['line']!s:>5}  {row['product']!s:<28} {row['state']:<10} {row['video_id']!s:<12} {row['reason']}"
        for row in summary["rows"]
    ]
    return "\n".join(lines)


@task
def catalog_verdict(summary: dict[str, Any], fail_on_video_errors: bool | str = True) -> None:
    """Fail the run when a video failed (the summary lists which and why), unless told otherwise."""
    strict = str(fail_on_video_errors).lower() in ("true", "1", "yes")
    if summary["failed"] and strict:
        failures = [
            f"line {row['line']} {row['product']}: {row['reason']}"
            for row in summary["rows"]
            if row["state"] in (FAILED, REJECTED)
        ]
        raise AirflowFailException(f"{summary['failed']} video(s) failed:\n" + "\n".join(failures))


@task
def next_batch_conf(report: dict[str, Any], manifest: str, block_size: Any) -> dict[str, Any]:
    """The conf of the run that takes the rows this batch left; skipped when nothing is left."""
    if report.get("next_after_line") is None:
        raise AirflowSkipException("The whole manifest fitted in this run")
    return {"manifest": manifest, "block_size": int(block_size), "after_line": report["next_after_line"]}
