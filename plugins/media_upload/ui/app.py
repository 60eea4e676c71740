"""The "Media uploads" view: a FastAPI app the api-server mounts (see :mod:`media_upload.plugin`).

``GET /`` is one static page (plain HTML and JavaScript, no build step) that polls ``GET /api/uploads``.
Plugin apps are not protected by the api-server: both routes require what Airflow's own run pages
require, read access to DAG runs (for the DAG named by ``dag_id`` when one is given), through the
api-server's security dependencies, and the rows are limited to the DAGs the user may read. The browser
authenticates with the UI's own session cookie; nothing on the page or in its answers is a credential.

``POST /push/lazada/{conn_id}`` and ``POST /push/huawei-vod/{conn_id}`` are the public routes: the
platforms' push callbacks, checked by signature before anything is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.configuration import conf
from airflow.models.taskinstance import TaskInstance
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from sqlalchemy import and_, or_, select

from media_upload.ledger import DEFAULT_CONN_ID, UploadLedger
from media_upload.masking import printable
from media_upload.ui.queries import (
    MAX_LIMIT,
    STOPPED,
    VIEW_STATES,
    Filters,
    Progress,
    platform_titles,
    read_page,
)

STATIC = Path(__file__).with_name("static")
URL_PREFIX = "/media-uploads"
Run = tuple[str, str]


@dataclass
class RunTasks:
    """What Airflow knows of a run's tasks: its mapped chunk tasks' states, and the tasks that failed."""

    chunk_task: str | None = None
    chunks: Progress | None = None
    failed_tasks: tuple[str, ...] = ()


TaskLookup = Callable[[Sequence[Run]], dict[Run, RunTasks]]


def airflow_run_tasks(session: Any, runs: Sequence[Run]) -> dict[Run, RunTasks]:
    """The task instances of ``runs`` from Airflow's metadata database (its ``(dag_id, run_id)`` index)."""
    if not runs:
        return {}
    rows = session.execute(
        select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index,
               TaskInstance.state)
        .where(or_(*(and_(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id) for dag_id, run_id in runs)))
    ).all()  # fmt: skip
    found: dict[Run, RunTasks] = {}
    for dag_id, run_id, task_id, map_index, state in rows:
        tasks = found.setdefault((dag_id, run_id), RunTasks())
        state = str(getattr(state, "value", state) or "")
        if state == "failed" and task_id not in tasks.failed_tasks:
            tasks.failed_tasks = (*tasks.failed_tasks, task_id)
        if task_id.rsplit(".", 1)[-1] == "upload_chunk" and map_index >= 0:
            tasks.chunk_task = tasks.chunk_task or task_id
            tasks.chunks = tasks.chunks or Progress(0, 0)
            tasks.chunks.total = (tasks.chunks.total or 0) + 1
            tasks.chunks.done += state == "success"
    return found


def run_tasks(session: SessionDep) -> TaskLookup:
    """Dependency: a lookup of runs' task instances in this request's metadata database session."""
    return lambda runs: airflow_run_tasks(session, runs)


def readable_dags(user: GetUserDep) -> frozenset[str]:
    """Dependency: the DAGs the user may read, as the auth manager says (rows of others are not shown)."""
    return frozenset(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))


def base_path() -> str:
    """The path of ``[api] base_url`` (empty at the root): links and the plugin's hrefs start with it."""
    return urlsplit(conf.get("api", "base_url", fallback="/") or "/").path.rstrip("/")


def create_app(ledger_conn_id: str = DEFAULT_CONN_ID) -> FastAPI:
    """The view's app; its ledger is opened on the first request (the api-server starts without one)."""
    app = FastAPI(title="Media uploads", docs_url=None, redoc_url=None, openapi_url=None)
    may_read_runs = [Depends(requires_access_dag("GET", DagAccessEntity.RUN))]

    def ledger() -> UploadLedger:
        if getattr(app.state, "ledger", None) is None:
            app.state.ledger = UploadLedger(ledger_conn_id)
        return app.state.ledger

    @app.get("/", response_class=HTMLResponse, dependencies=may_read_runs)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/{name}.svg", include_in_schema=False)
    def icon(name: Literal["icon", "icon-dark"]) -> FileResponse:
        """The menu's icon (public: it shows nothing of the uploads)."""
        return FileResponse(STATIC / f"{name}.svg", media_type="image/svg+xml")

    async def take(
        platform: str, title: str, conn_id: str, request: Request, keep: Callable[[bytes], Any]
    ) -> JSONResponse:
        """One push: a body over the limit is refused before it is read; ``keep`` checks and keeps it on a
        worker thread (the ledger, a database, is opened off the event loop; each thread keeps its
        connection, as messages come in bursts)."""
        from starlette.concurrency import run_in_threadpool

        from media_upload import metrics, push

        client = request.client.host if request.client else "?"
        try:
            body = await _capped_body(request, push.MAX_BODY_BYTES)
            answer = await run_in_threadpool(keep, body)
        except push.PushRefused as exc:
            push.log.warning(
                "Refused a %s push for %r from %s: %s", title, printable(conn_id[:100]), client, exc
            )
            metrics.incr(metrics.PUSH_REFUSED, platform=platform, status=exc.status)
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        metrics.incr(metrics.PUSH_RECEIVED, platform=platform)
        return JSONResponse(answer)

    @app.post("/push/lazada/{conn_id}", include_in_schema=False)
    async def lazada_push(conn_id: str, request: Request) -> JSONResponse:
        """Lazada's push callback for the app of connection ``conn_id``: public, as Lazada cannot log in,
        and trusted only when the message is signed with that app's secret (see media_upload.push)."""
        from media_upload import push

        signature = request.headers.get("authorization")
        return await take(
            "lazada",
            "Lazada",
            conn_id,
            request,
            lambda body: push.receive(ledger(), conn_id, body, signature),
        )

    @app.post("/push/huawei-vod/{conn_id}", include_in_schema=False)
    async def huawei_vod_push(conn_id: str, request: Request) -> JSONResponse:
        """VOD's event notifications for the project of connection ``conn_id``: public, and trusted only when
        ``auth_sign`` holds under the connection's ``push_secret`` (see media_upload.push)."""
        from media_upload import push

        timestamp, signature = request.headers.get("auth_timestamp"), request.headers.get("auth_sign")
        return await take(
            "huawei_vod",
            "Huawei VOD",
            conn_id,
            request,
            lambda body: push.receive_vod(ledger(), conn_id, body, timestamp, signature),
        )

    @app.get("/api/uploads", dependencies=may_read_runs)
    def uploads(
        dag_ids: Annotated[frozenset[str], Depends(readable_dags)],
        tasks: Annotated[TaskLookup, Depends(run_tasks)],
        state: Annotated[list[str] | None, Query()] = None,
        platform: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        sku: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """One page of upload rows, the runs they belong to, and what the filters can choose from."""
        filters = Filters(
            states=tuple(s for s in state or () if s),
            platform=platform or None,
            dag_id=dag_id or None,
            run_id=run_id or None,
            sku=(sku or "").strip() or None,
            dag_ids=dag_ids,
        )
        result = read_page(ledger(), filters, limit, offset)  # the ledger's few connections, pooled
        known = tasks([(run.dag_id, run.run_id) for run in result.runs if run.dag_id and run.run_id])
        base = base_path()
        uploads_per_run = {(run.dag_id, run.run_id): run.uploads for run in result.runs}
        for summary in result.runs:
            run_info = known.get((summary.dag_id or "", summary.run_id or ""), RunTasks())
            summary.chunks = run_info.chunks
            summary.links = _links(base, summary.dag_id, summary.run_id, run_info, failed=True)
        for row in result.rows:
            run_info = known.get((row.dag_id or "", row.run_id or ""), RunTasks())
            # A run's chunk tasks are this row's when it is the run's only upload (the single-video DAGs).
            if uploads_per_run.get((row.dag_id, row.run_id)) == 1:
                row.chunks = run_info.chunks
            row.links = _links(base, row.dag_id, row.run_id, run_info, failed=row.state in STOPPED)
        return {**asdict(result), "states": list(VIEW_STATES), "platforms": platform_titles()}

    return app


async def _capped_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it is known to be larger than ``limit``: from its
    ``Content-Length`` before reading anything, or while reading a body sent without one."""
    from media_upload.push import PushRefused

    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PushRefused(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise PushRefused(413, f"body larger than {limit} bytes")
    return bytes(body)


def _links(
    base: str, dag_id: str | None, run_id: str | None, tasks: RunTasks, failed: bool
) -> dict[str, Any]:
    """Where the run and its tasks are in Airflow's UI: its chunk tasks, and (``failed``) what failed."""
    if not dag_id or not run_id:
        return {}
    run = f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    named = [(task_id, "failed") for task_id in tasks.failed_tasks if failed]
    if tasks.chunk_task:
        named.insert(0, (tasks.chunk_task, "chunks"))
    return {
        "run": run,
        "tasks": [
            {"task_id": task_id, "kind": kind, "href": f"{run}/tasks/{quote(task_id, safe='')}"}
            for task_id, kind in named
        ],
    }
