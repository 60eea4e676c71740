"""A catalog run driven task by task, as a DAG run would: XComs kept under each task's id, and the deferred
wait taken in turns with its trigger, as the triggerer and a worker would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

from media_upload.catalog.operators import (
    CatalogAttachOperator,
    CatalogPlanOperator,
    CatalogSettleOperator,
    CatalogUploadChunkOperator,
)
from media_upload.catalog.report import CatalogReportOperator, CatalogVerdictOperator


class CatalogRun:
    """One catalog run's task context, its XComs kept under each task's id as a DAG run would."""

    def __init__(
        self,
        task_context: Callable[..., dict[str, Any]],
        run_id: str = "run-1",
        connections: Mapping[str, str] | None = None,
    ) -> None:
        self.connections = dict(connections or {"lazada": "lazada_default"})
        self.context = task_context(run_id=run_id, dag_id="catalog_videos")
        self.context["dag_run"] = SimpleNamespace(start_date=None)
        self.ti = self.context["ti"]

    def do(self, operator) -> Any:
        result = operator.execute(self.context)
        for task_id, key in list(self.ti.xcoms):
            if task_id is None:  # pushed by this task
                self.ti.xcoms[(operator.task_id, key)] = self.ti.xcoms.pop((None, key))
        self.ti.xcoms[(operator.task_id, "return_value")] = result
        return result

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        return self.ti.xcoms[(task_id, key)]

    def plan(self, manifest: str, **options) -> list[dict]:
        options.setdefault("block_size", 1_000_000)
        return self.do(
            CatalogPlanOperator(task_id="plan", manifest=manifest, **options, connections=self.connections)
        )

    def upload(self, chunks: list[dict]) -> list[dict]:
        return [
            self.do(
                CatalogUploadChunkOperator(task_id="upload_chunk", chunk=chunk, connections=self.connections)
            )
            for chunk in chunks
        ]

    def settle(self) -> list[dict]:
        return self.do(
            CatalogSettleOperator(task_id="settle", plan_task_id="plan", connections=self.connections)
        )

    def attach(self, outlets=(), until=None, task_id="wait_and_attach", **options) -> list[dict]:
        """The deferred wait as the triggerer and the worker take turns at it: each deferral's trigger runs
        to its first event, and the task resumes with it; ``until`` runs between two turns."""
        operator = CatalogAttachOperator(
            task_id=task_id,
            settle_task_id="settle",
            outlets=list(outlets),
            poke_interval=0.2,
            connections=self.connections,
            **options,
        )
        self.deferrals = 0
        resume: Any = None
        while True:
            try:
                result = (
                    operator.execute(self.context)
                    if resume is None
                    else operator.resume(self.context, *resume)
                )
                break
            except TaskDeferred as deferred:
                self.deferrals += 1
                if until is not None:
                    until(self.deferrals)
                event = asyncio.run(asyncio.wait_for(deferred.trigger.run().__anext__(), 30))
                resume = (event.payload,)
        for pushed, key in list(self.ti.xcoms):
            if pushed is None:
                self.ti.xcoms[(task_id, key)] = self.ti.xcoms.pop((None, key))
        self.ti.xcoms[(task_id, "return_value")] = result
        return result

    def report(self) -> dict:
        return self.do(
            CatalogReportOperator(task_id="report", plan_task_id="plan", connections=self.connections)
        )

    def verdict(self, fail_on_video_errors: bool | str = True) -> None:
        operator = CatalogVerdictOperator(
            task_id="catalog_verdict", report_task_id="report", fail_on_video_errors=fail_on_video_errors
        )
        return self.do(operator)

    def whole(self, manifest: str, outlets=(), **options) -> dict:
        self.upload(self.plan(manifest, **options))
        try:
            self.settle()
            self.attach(outlets)
        except AirflowSkipException:  # nothing to wait for: the DAG skips the wait, the report still runs
            pass
        return self.report()
