"""The end of a catalog run: its summary (XCom, CSV, log table), the verdict, and the next batch."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from media_upload import metrics
from media_upload.catalog.manifest import UNCHECKED
from media_upload.catalog.operators import CatalogOperator
from media_upload.ledger import (
    ATTACHED,
    AUDITED,
    COMMIT_UNKNOWN,
    COMMITTED,
    NEEDS_ATTENTION,
    PLANNED,
    UPLOADING,
    LedgerEntry,
)
from media_upload.platforms import steps_class

if TYPE_CHECKING:
    from airflow.sdk import Context

COLUMNS = ["line", "platform", "product", "state", "video_id", "bytes", "reason"]
#: What a video left short of ``attached`` at the end of a run means, when the ledger gives no reason.
UNFINISHED = {
    PLANNED: "nothing was uploaded; the next run starts it",
    UPLOADING: "not every block went up; the next run resumes the upload",
    COMMIT_UNKNOWN: "the commit's answer was lost; the next run asks the platform what happened",
    COMMITTED: "the audit did not end during this run; the next run waits for it again",
    AUDITED: "audited but not on its product; the next run attaches it",
}


def _done(row: dict[str, Any]) -> bool:
    """The video's work is over: on its product (or audited, where videos go on no product)."""
    return row["state"] in (ATTACHED, AUDITED) and row["state"] == steps_class(row["platform"]).done_state


def summarize(
    report: dict[str, Any], jobs: Sequence[dict[str, Any]], entries: Sequence[LedgerEntry], seconds: float
) -> dict[str, Any]:
    """Counts and one line per manifest row and platform, from the plan's report and the run's ledger rows."""
    by_key = {(entry.platform, entry.product, entry.content_sha256): entry for entry in entries}
    rows: list[dict[str, Any]] = []
    for job in jobs:
        entry = by_key.get((job["platform"], job["product"], job["content_sha256"]))
        state = entry.state if entry else PLANNED
        uploaded = bool(entry and entry.video_id and (job.get("details") or {}).get("sends"))
        row = {
            "line": job.get("line") or "",
            "platform": job["platform"],
            "product": job.get("label") or job["product"],
            "state": state,
            "video_id": (entry.video_id if entry else None) or "",
            "bytes": job["size"] if uploaded else 0,
            "reason": (entry.reason if entry else None) or "",
        }
        if not row["reason"] and not _done(row):
            row["reason"] = UNFINISHED.get(state, "")
        rows.append(row)
    rows += [
        {"line": skip["line"], "platform": skip.get("platform", ""), "product": skip["label"], "state": "skipped",
         "video_id": "", "bytes": 0, "reason": skip["reason"]}
        for skip in report["skipped"]
    ]  # fmt: skip
    rows += [
        {"line": bad["line"], "platform": bad.get("platform", ""), "product": "",
         "state": "unchecked" if bad["field"] == UNCHECKED else "invalid", "video_id": "", "bytes": 0,
         "reason": f"{bad['field']}: {bad['reason']}"}
        for bad in report["invalid"]
    ]  # fmt: skip
    rows += [
        {"line": line, "platform": "", "product": "", "state": "deferred", "video_id": "", "bytes": 0,
         "reason": "next batch"}
        for line in report["deferred_lines"]
    ]  # fmt: skip
    rows.sort(
        key=lambda row: (
            int(row["line"]) if str(row["line"]).isdigit() else 0,
            row["platform"],
            row["product"],
        )
    )
    byte_count = sum(int(row["bytes"]) for row in rows)
    seconds = max(seconds, 0.001)
    return {
        "manifest": report["manifest"],
        "platforms": report.get("platforms", []),
        "uploaded": sum(1 for row in rows if row["bytes"]),
        "attached": sum(_done(row) for row in rows),
        "skipped": len(report["skipped"]),
        "failed": sum(
            not _done(row) and row["state"] not in ("skipped", "invalid", "deferred") for row in rows
        ),
        "invalid": sum(row["state"] == "invalid" for row in rows),
        "deferred": len(report["deferred_lines"]),
        "bytes_uploaded": byte_count,
        "seconds": round(seconds, 1),
        "bytes_per_second": round(byte_count / seconds),
        "rows": rows,
    }


def count_rows(summary: dict[str, Any], dag_id: str) -> None:
    """The run's rows as metrics, zeros included (an alert on "rows needing attention" sees every run)."""
    rows = summary["rows"]
    metrics.incr(metrics.CATALOG_ROWS, len(rows), dag_id=dag_id)
    metrics.incr(metrics.CATALOG_ROWS_FAILED, summary["failed"], dag_id=dag_id)
    attention = sum(row["state"] == NEEDS_ATTENTION for row in rows)
    metrics.incr(metrics.CATALOG_ROWS_ATTENTION, attention, dag_id=dag_id)


def table(summary: dict[str, Any]) -> str:
    head = (
        f"uploaded {summary['uploaded']}, attached {summary['attached']}, skipped {summary['skipped']}, "
        f"failed {summary['failed']}, bad rows {summary['invalid']}, next batch {summary['deferred']}; "
        f"{summary['bytes_uploaded']:,} bytes in {summary['seconds']} s ({summary['bytes_per_second']:,} B/s)"
    )
    lines = [head, f"{'line':>5}  {'platform':<11} {'product':<28} {'state':<15} {'video id':<14} reason"]
    lines += [
        f"{row['line']!s:>5}  {row['platform']:<11} {row['product']!s:<28} {row['state']:<15} {row['video_id']!s:<14} "
        f"{row['reason']}"
        for row in summary["rows"]
    ]
    return "\n".join(lines)


class CatalogReportOperator(CatalogOperator):
    """The run's summary: an XCom, a CSV under the run's log folder and a table in the task log.

    :param plan_task_id: task id of the plan step (its ``report`` and ``jobs`` XComs).
    """

    def __init__(self, *, plan_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        ti, run_id = context["ti"], context["run_id"]
        report = ti.xcom_pull(task_ids=self.plan_task_id, key="report")
        if not report:
            raise AirflowFailException("The plan step did not run, so there is nothing to report")
        jobs = ti.xcom_pull(task_ids=self.plan_task_id, key="jobs") or []
        started = context["dag_run"].start_date or datetime.now(UTC)
        entries = [
            self.ledger.get(job["platform"], job["account"], job["product"], job["content_sha256"])
            for job in jobs
        ]
        summary = summarize(
            report, jobs, [e for e in entries if e], (datetime.now(UTC) - started).total_seconds()
        )
        summary["run_id"] = run_id
        summary["csv"] = str(self._write_csv(context, summary["rows"]))
        self.log.info("Catalog run summary\n%s", table(summary))
        count_rows(summary, context["dag"].dag_id)
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
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        return path


class CatalogVerdictOperator(BaseOperator):
    """Fails the run when a video failed (the report lists which and why), unless told otherwise.

    A plain operator rather than a ``@task``: the decorator's module costs the DAG file a tenth of a second
    to parse, in every task of the run.

    :param report_task_id: the report task, whose output is the run's summary.
    :param fail_on_video_errors: whether a failed video fails the run. (templated)
    """

    template_fields: Sequence[str] = ("fail_on_video_errors",)

    def __init__(
        self, *, report_task_id: str, fail_on_video_errors: bool | str = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.report_task_id = report_task_id
        self.fail_on_video_errors = fail_on_video_errors

    def execute(self, context: Context) -> None:
        summary = context["ti"].xcom_pull(task_ids=self.report_task_id)
        strict = str(self.fail_on_video_errors).lower() in ("true", "1", "yes")
        if summary["failed"] and strict:
            failures = [
                f"line {row['line']} {row['platform']} {row['product']}: {row['state']}: {row['reason']}"
                for row in summary["rows"]
                if not _done(row) and row["state"] not in ("skipped", "invalid", "deferred")
            ]
            raise AirflowFailException(f"{summary['failed']} video(s) failed:\n" + "\n".join(failures))


class CatalogNextBatchOperator(BaseOperator):
    """Triggers a run of the same DAG for the rows this batch could not hold; skipped when none are left.

    :param plan_task_id: the plan task, whose ``report`` names the next line.
    :param manifest: the manifest of this run. (templated)
    :param block_size: the block size of this run. (templated)
    """

    template_fields: Sequence[str] = ("manifest", "block_size")

    def __init__(self, *, plan_task_id: str, manifest: str, block_size: Any = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id
        self.manifest = manifest
        self.block_size = block_size

    def execute(self, context: Context) -> dict[str, Any]:
        # Imported here: the standard provider's trigger operator costs a DAG file half a second to import.
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

        report = context["ti"].xcom_pull(task_ids=self.plan_task_id, key="report") or {}
        if report.get("next_after_line") is None:
            raise AirflowSkipException("The whole manifest fitted in this run")
        conf = {
            "manifest": self.manifest,
            "block_size": int(self.block_size or 0),
            "after_line": report["next_after_line"],
        }
        self.log.info("Lines after %d go to the next batch run", conf["after_line"])
        TriggerDagRunOperator(task_id=self.task_id, trigger_dag_id=context["dag"].dag_id, conf=conf).execute(
            context
        )
        return conf
