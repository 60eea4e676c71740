"""Shared test setup: an isolated Airflow home, the official Lazada SDK without side effects, emulators."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Airflow reads its configuration at import: point it at a throwaway home before anything imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="media-upload-airflow-"))
os.environ.update(
    AIRFLOW_HOME=str(_AIRFLOW_HOME),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
    # The oldest-Airflow check points this away, so the tests import the installed wheel.
    AIRFLOW__CORE__PLUGINS_FOLDER=os.environ.get("MEDIA_UPLOAD_TEST_PLUGINS_FOLDER", str(ROOT / "plugins")),
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
    # Like every real deployment: renewed tokens are kept encrypted (a test without it unsets it).
    AIRFLOW__CORE__FERNET_KEY="Ds9sZ5hXK5bM8qnqGr0f-F2Wq3BvoJQ4m8l6Ht1GQ2k=",
    # Sources the tests read: their temporary folders and the samples; tests of the policy narrow it.
    AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES=f"{tempfile.gettempdir()}/, {ROOT / 'include'}/",
)

from media_upload.sandbox.huawei_vod import HuaweiVodSandbox, HuaweiVodSandboxConfig  # noqa: E402
from media_upload.sandbox.lazada import LazadaSandbox, LazadaSandboxConfig  # noqa: E402
from media_upload.sandbox.sample_media import write_sample_mp4  # noqa: E402
from media_upload.sandbox.shopee import ShopeeSandbox, ShopeeSandboxConfig  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_object_stores() -> Iterator[None]:
    """Airflow keeps one filesystem per (scheme, connection) for the process: tests change connections."""
    yield
    from airflow.sdk.io import store
    from fsspec.implementations.http import HTTPFileSystem

    store._STORE_CACHE.clear()
    HTTPFileSystem.clear_instance_cache()


@pytest.fixture(scope="session")
def lazop() -> ModuleType:
    """The official ``lazop_sdk`` module; its import writes ``~/logs``, so HOME points elsewhere meanwhile."""
    home = os.environ.get("HOME")
    os.environ["HOME"] = tempfile.mkdtemp(prefix="lazop-home-")
    try:
        import lazop_sdk
    finally:
        if home is not None:
            os.environ["HOME"] = home
    return lazop_sdk


@contextmanager
def _sandboxes(
    tmp_path: Path, sandbox_type: type, config_type: type, name: str, **defaults: Any
) -> Iterator[Callable[..., Any]]:
    """A factory of started emulators, each with its own data folder; all stop when the test ends."""
    started: list[Any] = []

    def make(clock: Callable[[], float] | None = None, **overrides: Any) -> Any:
        config = config_type(**{"data_dir": tmp_path / f"{name}-{len(started)}", **defaults, **overrides})
        sandbox = sandbox_type(config, **({"clock": clock} if clock else {})).start()
        started.append(sandbox)
        return sandbox

    try:
        yield make
    finally:
        for sandbox in started:
            sandbox.stop()


def _connection_setter(
    monkeypatch: pytest.MonkeyPatch, default_conn_id: str
) -> Callable[..., dict[str, Any]]:
    """Point a connection (env var) at a sandbox: ``use(sandbox, password="x")``."""

    def use(sandbox: Any, conn_id: str = default_conn_id, **changes: Any) -> dict[str, Any]:
        connection = {**sandbox.airflow_connection(), **changes}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        return connection

    return use


@pytest.fixture
def make_lazada_sandbox(tmp_path: Path) -> Iterator[Callable[..., LazadaSandbox]]:
    """Start Lazada emulators on free loopback ports; every field of LazadaSandboxConfig can be overridden."""
    with _sandboxes(tmp_path, LazadaSandbox, LazadaSandboxConfig, "lazada", audit_seconds=0.3) as make:
        yield make


@pytest.fixture
def lazada_sandbox(make_lazada_sandbox: Callable[..., LazadaSandbox]) -> LazadaSandbox:
    return make_lazada_sandbox()


@pytest.fixture
def sample_video(tmp_path: Path) -> Callable[..., Path]:
    """Write a synthetic MP4 of an exact size: ``sample_video(3_000_000, seed=1)``."""

    def make(size: int, seed: int = 0, name: str | None = None, **options: Any) -> Path:
        return write_sample_mp4(tmp_path / (name or f"video-{size}-{seed}.mp4"), size, seed=seed, **options)

    return make


@pytest.fixture
def lazada_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """``lazada_connection(sandbox, password="x")`` points the ``lazada_default`` connection at a sandbox."""
    return _connection_setter(monkeypatch, "lazada_default")


@pytest.fixture
def make_huawei_vod_sandbox(tmp_path: Path) -> Iterator[Callable[..., HuaweiVodSandbox]]:
    """Start VOD emulators on free loopback ports; every field of HuaweiVodSandboxConfig can be overridden."""
    with _sandboxes(
        tmp_path, HuaweiVodSandbox, HuaweiVodSandboxConfig, "huawei-vod", transcode_seconds=0.3
    ) as make:
        yield make


@pytest.fixture
def huawei_vod_sandbox(make_huawei_vod_sandbox: Callable[..., HuaweiVodSandbox]) -> HuaweiVodSandbox:
    return make_huawei_vod_sandbox()


@pytest.fixture
def huawei_vod_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """``huawei_vod_connection(sandbox, password="x")`` points ``huawei_vod_default`` at a sandbox."""
    return _connection_setter(monkeypatch, "huawei_vod_default")


@pytest.fixture
def make_shopee_sandbox(tmp_path: Path) -> Iterator[Callable[..., ShopeeSandbox]]:
    """Start Shopee emulators on free loopback ports; every field of ShopeeSandboxConfig can be overridden."""
    with _sandboxes(tmp_path, ShopeeSandbox, ShopeeSandboxConfig, "shopee", transcode_seconds=0.3) as make:
        yield make


@pytest.fixture
def shopee_sandbox(make_shopee_sandbox: Callable[..., ShopeeSandbox]) -> ShopeeSandbox:
    return make_shopee_sandbox()


def _postgres_answers(dsn: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(dsn, connect_timeout=3).close()
    except psycopg2.OperationalError:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The machine's PostgreSQL (database ``test``, user ``postgres``), started if it has stopped."""
    dsn = "host=127.0.0.1 port=5432 dbname=test user=postgres"
    if not _postgres_answers(dsn):
        import glob
        import subprocess

        for version in sorted(glob.glob("/etc/postgresql/*")):
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", Path(version).name, "main", "start"],
                capture_output=True,
            )
    if not _postgres_answers(dsn):
        pytest.fail(
            "PostgreSQL does not answer on 127.0.0.1:5432 (database test, user postgres) and could not be started"
        )
    return dsn


@pytest.fixture(autouse=True)
def _quick_hand_back(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Triggers run in the test's own process (or a child) here, with no executor report to wait for: their
    events need not wait ``trigger_hand_back_seconds``. The real deployments (deployment, security, faults,
    browser) keep the default; tests/unit/test_videos_trigger.py checks the wait itself."""
    if request.node.path.parent.name in ("unit", "integration", "dags"):
        monkeypatch.setenv("AIRFLOW__MEDIA_UPLOAD__TRIGGER_HAND_BACK_SECONDS", "0")


@pytest.fixture(autouse=True)
def _own_ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets a ledger (and token store) of its own, so nothing one test records leaks into another."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER", "sqlite://" + str(tmp_path / "own-ledger.db").replace("/", "%2F")
    )


@pytest.fixture
def ledger_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[str], str]:
    """Define the ledger connection on ``"sqlite"`` (a file of this test) or ``"postgres"`` (a fresh table)."""

    def use(kind: str) -> str:
        if kind == "sqlite":
            uri = "sqlite://" + str(tmp_path / "ledger.db").replace("/", "%2F")
        else:
            request.getfixturevalue("postgres_dsn")
            import psycopg2

            with psycopg2.connect("host=127.0.0.1 dbname=test user=postgres") as db, db.cursor() as cursor:
                for table in (
                    "media_upload_ledger",
                    "media_upload_blocks",
                    "media_upload_tokens",
                    "media_upload_pushed_states",
                    "media_upload_call_budget",
                ):
                    cursor.execute(f"DROP TABLE IF EXISTS {table}")
            uri = "postgres://postgres@127.0.0.1:5432/test"
        monkeypatch.setenv("AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER", uri)
        return uri

    return use


class FakeTaskInstance:
    """Enough of a task instance for calling ``execute`` directly: XComs pushed and pulled in memory."""

    def __init__(self) -> None:
        self.xcoms: dict[tuple[str | None, str], Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[(None, key)] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key), self.xcoms.get((None, key)) if task_ids is None else None)


@pytest.fixture
def task_context() -> Callable[..., dict[str, Any]]:
    """``task_context(run_id="r1")``: a context for ``operator.execute(context)`` outside a DAG run.

    ``context["ti"].xcoms`` holds what the task pushed; set ``xcoms[(task_id, key)]`` to feed pulls.
    """
    from types import SimpleNamespace

    def make(run_id: str = "test-run", dag_id: str = "test_dag") -> dict[str, Any]:
        return {"ti": FakeTaskInstance(), "run_id": run_id, "dag": SimpleNamespace(dag_id=dag_id)}

    return make
