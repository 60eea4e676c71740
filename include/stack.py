"""A real Airflow deployment on this machine: every component its own process, PostgreSQL underneath.

``make stack``, ``make stack-demo``, ``make airflow`` and the benchmarks start Airflow the way a team
runs it, not inside ``airflow dags test``: ``airflow db migrate``, then the api-server, scheduler,
dag-processor and triggerer as separate processes, with LocalExecutor or CeleryExecutor (Redis broker,
``airflow celery worker`` processes). The emulators run as ``media-sandbox`` processes, the connections
point at them through ``AIRFLOW_CONN_*`` variables every component shares, and the upload ledger lives in
the same PostgreSQL database.

>>> with LocalStack(home, executor="LocalExecutor") as stack:
...     run = stack.trigger("lazada_product_video", conf)
...     stack.wait(run)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POSTGRES = "postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379"
USER, PASSWORD = "admin", "admin"
FINAL_RUN_STATES = ("success", "failed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_services(redis: bool) -> None:
    """Start the machine's PostgreSQL (and Redis) if they are not answering; fail loudly if they won't."""
    import psycopg2

    def postgres_up() -> bool:
        try:
            psycopg2.connect(f"postgresql://{POSTGRES}/postgres", connect_timeout=3).close()
        except psycopg2.OperationalError:
            return False
        return True

    if not postgres_up():
        for version in sorted(Path("/etc/postgresql").glob("*")):
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version.name, "main", "start"],
                capture_output=True,
            )
        if not postgres_up():
            raise RuntimeError(f"PostgreSQL does not answer on {POSTGRES} and could not be started")
    if redis and not _redis_up():
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
             "--appendonly", "no"],
            capture_output=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _redis_up():
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis does not answer on {REDIS} and could not be started")
            time.sleep(0.2)


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def recreate_database(name: str) -> str:
    """An empty PostgreSQL database ``name``; returns its SQLAlchemy URL."""
    import psycopg2

    admin = psycopg2.connect(f"postgresql://{POSTGRES}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return f"postgresql+psycopg2://{POSTGRES}/{name}"


@dataclass
class Sandbox:
    """A ``media-sandbox`` emulator process and the connection that reaches it."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    connection: dict[str, Any]


@dataclass
class LocalStack:
    """Airflow's components as processes on this machine; see the module docstring.

    :param home: ``AIRFLOW_HOME`` (created; logs of every component under ``home/logs``).
    :param executor: ``LocalExecutor`` or ``CeleryExecutor``.
    :param workers: Celery worker processes (CeleryExecutor only).
    :param database: the PostgreSQL database to (re)create for metadata and ledger.
    :param sandboxes: emulators to start: ``{"lazada": ["--audit-seconds", "6"], "huawei-vod": [...]}``.
    :param env: extra environment for every component (``AIRFLOW__...`` settings, connections).
    :param connections_in_env: give the emulators' connections and the ledger's as ``AIRFLOW_CONN_*``
        variables (quick, for benchmarks); otherwise create them in the metadata database through the REST
        API, where the UI lists them and their Test button works.
    :param lazada_push: the Lazada emulator pushes video states to the api-server's receiver, and the
        ``lazada_default`` connection turns push on (audit waits take the messages instead of polling).
    :param vod_push: the VOD emulator sends signed event notifications to the api-server's receiver, and
        the ``huawei_vod_default`` connection turns push on with their key.
    :param connection_extras: fields to add to a connection's extra: ``{"lazada_default": {...}}``.
    :param allowed_sources: ``[media_upload] allowed_sources``: folders and URL prefixes runs may read;
        by default ``home/media`` (where :attr:`media` puts files) and the samples in ``include/media``.
    :param extra_dags: DAG files to parse besides the project's (a DAG folder of links is made for them).
    :param public_names: a host name per emulator (``{"lazada": "lazada.test"}``) its connection and the URLs
        it hands out use instead of 127.0.0.1: a name only a proxy resolves makes it reachable through that
        proxy alone.
    """

    home: Path
    executor: str = "LocalExecutor"
    workers: int = 2
    database: str = "airflow_stack"
    sandboxes: Mapping[str, list[str]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    api_port: int = 0
    connections_in_env: bool = True
    lazada_push: bool = False
    vod_push: bool = False
    connection_extras: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    allowed_sources: tuple[str, ...] = ()
    extra_dags: tuple[Path, ...] = ()
    public_names: Mapping[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    running_sandboxes: dict[str, Sandbox] = field(default_factory=dict)
    _token: str | None = None

    # ------------------------------------------------------------------ set-up

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.api_port = self.api_port or free_port()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def push_url(self, conn_id: str = "lazada_default", platform: str = "lazada") -> str:
        """The receiver of a platform's pushed states for connection ``conn_id`` (the plugin's route;
        ``platform`` is ``lazada`` or ``huawei-vod``)."""
        return f"{self.api_url}/media-uploads/push/{platform}/{conn_id}"

    @property
    def dags_folder(self) -> Path:
        """The project's DAGs, or a folder of links to them and to :attr:`extra_dags`."""
        if not self.extra_dags:
            return ROOT / "dags"
        folder = self.home / "dags"
        folder.mkdir(parents=True, exist_ok=True)
        for path in [*sorted((ROOT / "dags").glob("*.py")), *self.extra_dags]:
            link = folder / Path(path).name
            if not link.exists():
                link.symlink_to(Path(path).resolve())
        return folder

    @property
    def media(self) -> Path:
        """The deployment's media folder (the source policy allows it): put videos and manifests here."""
        folder = self.home / "media"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def celery(self) -> bool:
        return self.executor == "CeleryExecutor"

    def environment(self) -> dict[str, str]:
        """What every component shares: one config, one database, one set of keys and connections."""
        sql = f"postgresql+psycopg2://{POSTGRES}/{self.database}"
        keys_file = self.home / "keys.json"
        if not keys_file.exists():
            keys = {
                "fernet": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                "secret": secrets.token_hex(16),
                "jwt": secrets.token_hex(16),
            }
            keys_file.write_text(json.dumps(keys))
        keys = json.loads(keys_file.read_text())
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__SECRET_KEY": keys["secret"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt"],
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES": ", ".join(
                self.allowed_sources or (f"{self.home}/media/", f"{ROOT}/include/media/")
            ),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        if self.celery:
            env.update(
                AIRFLOW__CELERY__BROKER_URL=f"{REDIS}/0",
                AIRFLOW__CELERY__RESULT_BACKEND=f"db+postgresql://{POSTGRES}/{self.database}",
            )
        if self.connections_in_env:
            for conn_id, connection in self.connections().items():
                env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(connection)
        env.update(self.env)
        return env

    def connections(self) -> dict[str, dict[str, Any]]:
        """The ledger's connection (this PostgreSQL database) and each running emulator's."""
        found: dict[str, dict[str, Any]] = {
            "media_upload_ledger": {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": 5432,
                "login": "postgres",
                "schema": self.database,
            }
        }
        for sandbox in self.running_sandboxes.values():
            found[f"{sandbox.name.replace('-', '_')}_default"] = sandbox.connection
        for conn_id, extra in self.connection_extras.items():
            if conn_id in found:  # its emulator is running
                found[conn_id] = {**found[conn_id], "extra": {**found[conn_id].get("extra", {}), **extra}}
        return found

    def create_connections(self) -> None:
        """The connections in the metadata database (what a team does in Admin → Connections)."""
        for conn_id, connection in self.connections().items():
            body = {**connection, "connection_id": conn_id}
            if isinstance(body.get("extra"), dict):
                body["extra"] = json.dumps(body["extra"])
            self.api("POST", "/connections", json=body)

    def _log(self, name: str) -> Any:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        return (self.home / "logs" / f"{name}.log").open("wb")

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command,
            env=self.environment(),
            stdout=self._log(name),
            stderr=subprocess.STDOUT,
            cwd=self.home,
            start_new_session=True,  # its own process group: stopped with every child it forks
        )
        self.processes[name] = process
        return process

    def start_sandbox(self, name: str, arguments: list[str]) -> Sandbox:
        """Start ``media-sandbox NAME`` on a free port and read its connection from its banner."""
        port = free_port()
        if name == "lazada" and self.lazada_push and "--push-url" not in arguments:
            arguments = [*arguments, "--push-url", self.push_url()]
        if name == "huawei-vod" and self.vod_push and "--push-url" not in arguments:
            receiver = self.push_url("huawei_vod_default", "huawei-vod")
            arguments = [*arguments, "--push-url", receiver, "--push-key", secrets.token_hex(16)]
        if name in self.public_names:
            arguments = [*arguments, "--public-url", f"http://{self.public_names[name]}:{port}"]
        data = self.home / "sandbox" / name
        data.mkdir(parents=True, exist_ok=True)
        command = [str(BIN / "media-sandbox"), name, "--port", str(port), "--data-dir", str(data), *arguments]
        process = self._spawn(f"sandbox-{name}", command)
        log = self.home / "logs" / f"sandbox-{name}.log"
        deadline = time.monotonic() + 30
        while True:
            text = log.read_text(errors="replace") if log.exists() else ""
            line = next((line for line in text.splitlines() if line.startswith("export AIRFLOW_CONN_")), None)
            if line:
                connection = json.loads(line.split("=", 1)[1].strip("'"))
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"media-sandbox {name} did not start; see {log}")
            time.sleep(0.1)
        sandbox = Sandbox(name, process, f"http://127.0.0.1:{port}", connection)
        self.running_sandboxes[name] = sandbox
        return sandbox

    def start(self, timeout: float = 240) -> LocalStack:
        """Database, emulators, then the Airflow components; returns once the API answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        ensure_services(redis=self.celery)
        recreate_database(self.database)
        (self.home / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
        for name, arguments in self.sandboxes.items():
            self.start_sandbox(name, arguments)
        migrate = subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=self.environment(),
            cwd=self.home,
            capture_output=True,
            text=True,
        )
        if migrate.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}"
            )
        airflow = str(BIN / "airflow")
        self._spawn("api-server", [airflow, "api-server", "--port", str(self.api_port), "--workers", "1"])
        self._spawn("scheduler", [airflow, "scheduler"])
        self._spawn("dag-processor", [airflow, "dag-processor"])
        self._spawn("triggerer", [airflow, "triggerer"])
        if self.celery:
            for number in range(1, self.workers + 1):
                self._spawn(
                    f"worker-{number}",
                    [
                        airflow,
                        "celery",
                        "worker",
                        "--celery-hostname",
                        f"worker{number}@%h",
                        "--concurrency",
                        "8",
                    ],
                )
        self._wait_for_api(timeout)
        if not self.connections_in_env:
            self.create_connections()
        return self

    def _wait_for_api(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode}; see {self.home}/logs/{name}.log"
                    )
            try:
                if requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the api-server did not answer within {timeout:.0f} s; see {self.home}/logs")

    def stop(self) -> None:
        """SIGTERM every component's process group, then SIGKILL what is left after a grace period."""
        for process in self.processes.values():
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            with suppress(subprocess.TimeoutExpired):
                process.wait(max(deadline - time.monotonic(), 0.1))
            _signal_group(process, signal.SIGKILL)
            process.wait()
        self.processes.clear()

    def __enter__(self) -> LocalStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --------------------------------------------------------------------- REST

    @property
    def token(self) -> str:
        if self._token is None:
            response = requests.post(
                f"{self.api_url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method,
            f"{self.api_url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
            **kwargs,
        )
        if not response.ok:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def wait_for_dags(self, *dag_ids: str, timeout: float = 180) -> None:
        """Until the dag-processor has parsed every DAG named; unpauses them."""
        deadline = time.monotonic() + timeout
        for dag_id in dag_ids:
            while True:
                try:
                    self.api("GET", f"/dags/{dag_id}")
                    break
                except RuntimeError:
                    if time.monotonic() > deadline:
                        errors = self.api("GET", "/importErrors")
                        raise RuntimeError(
                            f"DAG {dag_id} was not parsed in time; import errors: {errors}"
                        ) from None
                    time.sleep(1)
            self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a run now; returns its run id."""
        run = self.api(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})}
        )
        return str(run["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))

    def wait(self, dag_id: str, run_id: str, timeout: float = 900) -> dict[str, Any]:
        """Poll the run until it succeeds or fails; returns the run as the API describes it."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in FINAL_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} is still {run['state']} after {timeout:.0f} s")
            time.sleep(0.5)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.api(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(found)},
            )
            found += page["task_instances"]
            if len(found) >= page["total_entries"] or not page["task_instances"]:
                return found


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


@contextmanager
def running(**options: Any) -> Iterator[LocalStack]:
    with LocalStack(**options) as stack:
        yield stack


# ------------------------------------------------------------------------------ make stack / airflow

DEMO_DAGS = ("lazada_product_video", "shopee_product_video", "huawei_vod_upload", "catalog_videos")
POOL = {"name": "media_upload", "slots": 16, "description": "Chunk tasks of the media upload DAGs"}


def seed(stack: LocalStack) -> dict[str, dict[str, Any]]:
    """Sample products in the Lazada emulator, sample videos, a pool; the run conf of each example DAG.

    The confs are also written to ``home/samples.json`` to paste into the trigger form.
    """
    os.environ["AIRFLOW_CONN_LAZADA_DEFAULT"] = json.dumps(stack.running_sandboxes["lazada"].connection)
    sys.path.insert(0, str(ROOT / "include"))
    import samples

    from media_upload.hooks.lazada import LazadaHook

    hook = LazadaHook()
    cover = samples.cover_url(hook)
    media = stack.media
    shopee = stack.running_sandboxes["shopee"].url
    confs = {
        "lazada_product_video": samples.product_video(hook, cover),
        "shopee_product_video": samples.shopee_video(shopee, media),
        "huawei_vod_upload": samples.vod_video(media),
        "catalog_videos": samples.catalog(hook, media / "catalog", cover, shopee),
    }
    (stack.home / "samples.json").write_text(json.dumps(confs, indent=2) + "\n")
    with suppress(RuntimeError):  # already there on a second start
        stack.api("POST", "/pools", json=POOL)
    return confs


def outcome(stack: LocalStack, dag_id: str, run_id: str) -> tuple[bool, str]:
    """One line on a finished run: its state, time and task instances by state."""
    run = stack.run(dag_id, run_id)
    tasks = stack.task_instances(dag_id, run_id)
    states: dict[str, int] = {}
    for task in tasks:
        states[str(task["state"])] = states.get(str(task["state"]), 0) + 1
    seconds = 0.0
    if run.get("start_date") and run.get("end_date"):
        from datetime import datetime

        seconds = (
            datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
        ).total_seconds()
    counts = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    line = f"{dag_id:<24} {run['state']:<8} {seconds:6.1f} s   tasks: {counts}"
    return run["state"] == "success", line


def _sandbox_state(stack: LocalStack, name: str) -> dict[str, Any]:
    sandbox = stack.running_sandboxes[name]
    return dict(requests.get(f"{sandbox.url}/_sandbox/{name}/state", timeout=30).json())


def demo(stack: LocalStack) -> bool:
    """Trigger the example DAGs at once through the REST API, wait, print what happened."""
    confs = seed(stack)
    stack.wait_for_dags(*DEMO_DAGS)
    started = time.monotonic()
    runs = {dag_id: stack.trigger(dag_id, confs[dag_id]) for dag_id in DEMO_DAGS}
    print(f"Triggered {', '.join(DEMO_DAGS)} through {stack.api_url}/api/v2; waiting", flush=True)
    results = []
    for dag_id, run_id in runs.items():
        stack.wait(dag_id, run_id)
        results.append(outcome(stack, dag_id, run_id))
    print(f"\nAll {len(results)} finished in {time.monotonic() - started:.1f} s on {stack.executor}:")
    for _, line in results:
        print("  " + line)
    lazada, vod = _sandbox_state(stack, "lazada"), _sandbox_state(stack, "huawei-vod")
    item = lazada["products"].get(confs["lazada_product_video"]["item_id"], {})
    attached = item.get("attributes", {}).get("video")
    print(
        f"\n  Lazada: {len(lazada['videos'])} video(s) made, item "
        f"{confs['lazada_product_video']['item_id']} shows video {attached or 'NONE'}"
        f" ({lazada['videos'].get(attached or '', {}).get('state', '-')})"
    )
    lazada_url = stack.running_sandboxes["lazada"].url
    pushed = requests.get(f"{lazada_url}/_sandbox/lazada/pushes?limit=5000", timeout=30).json()
    print(
        f"  Lazada pushed {sum(p['outcome'] == 'HTTP 200' for p in pushed)} video state(s) to the receiver; "
        f"GetVideo was asked {lazada['request_counts'].get('/media/video/get', 0)} time(s)"
    )
    shopee = _sandbox_state(stack, "shopee")
    item = shopee["items"].get(confs["shopee_product_video"]["item_id"], {})
    print(
        f"  Shopee: {len(shopee['uploads'])} upload(s), item {confs['shopee_product_video']['item_id']} shows "
        f"{item.get('video_upload_id') or 'NONE'}; "
        f"{sum(1 for item in shopee['items'].values() if item.get('video_upload_id'))} item(s) with a video"
    )
    print(
        "  Huawei VOD: "
        + ", ".join(f"asset {asset_id} {asset.get('status')}" for asset_id, asset in vod["assets"].items())
    )
    vod_url = stack.running_sandboxes["huawei-vod"].url
    notified = requests.get(f"{vod_url}/_sandbox/huawei-vod/pushes?limit=5000", timeout=30).json()
    print(
        f"  Huawei VOD notified the receiver {sum(p['outcome'] == 'HTTP 200' for p in notified)} time(s); "
        f"ShowAssetMeta was asked {vod['request_counts'].get('ShowAssetMeta', 0)} time(s)"
    )
    if stack.celery:
        taken = {
            f"worker-{number}": (stack.home / "logs" / f"worker-{number}.log")
            .read_text(errors="replace")
            .count("] received")
            for number in range(1, stack.workers + 1)
        }
        print(
            "  Celery: " + ", ".join(f"{name} ran {count} task instance(s)" for name, count in taken.items())
        )
    print(f"  Logs of every component: {stack.home}/logs; task logs: {stack.home}/logs/dag_id=*")
    return all(ok for ok, _ in results) and bool(attached)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command", choices=["up", "demo"], help="up: run until Ctrl-C; demo: run the DAGs, stop"
    )
    parser.add_argument("--home", type=Path, default=ROOT / ".airflow-stack")
    parser.add_argument("--executor", choices=["LocalExecutor", "CeleryExecutor"], default="CeleryExecutor")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--database", default="airflow_stack")
    args = parser.parse_args(argv)
    os.environ["AIRFLOW_HOME"] = str(args.home.resolve())
    stack = LocalStack(
        args.home,
        executor=args.executor,
        workers=args.workers,
        api_port=args.port if args.port and _port_free(args.port) else free_port(),
        database=args.database,
        sandboxes={
            "lazada": ["--audit-seconds", "4"],
            "shopee": ["--transcode-seconds", "4"],
            "huawei-vod": ["--transcode-seconds", "4"],
        },
        connections_in_env=False,
        lazada_push=True,
        vod_push=True,
    )
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    if args.command == "up":
        signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop if args.command == "up" else signal.default_int_handler)
    components = "api-server, scheduler, dag-processor, triggerer" + (
        f", {args.workers} Celery workers" if stack.celery else ""
    )
    print(f"Starting {components} on PostgreSQL ({args.database}), with the three emulators", flush=True)
    with stack:
        if args.command == "demo":
            return 0 if demo(stack) else 1
        seed(stack)
        print(
            f"""
Airflow UI   {stack.api_url}   login {USER} / {PASSWORD}
Emulators    Lazada {stack.running_sandboxes["lazada"].url}, Shopee {stack.running_sandboxes["shopee"].url}, Huawei VOD {stack.running_sandboxes["huawei-vod"].url}
Connections  lazada_default, shopee_default, huawei_vod_default, media_upload_ledger (Admin → Connections; Test works)
Push         Lazada posts video states to {stack.push_url()},
             VOD its event notifications to {stack.push_url("huawei_vod_default", "huawei-vod")}
Pool         {POOL["name"]} ({POOL["slots"]} slots)
Trigger      a DAG with its sample conf from {stack.home}/samples.json
Logs         {stack.home}/logs
Ctrl-C stops everything.""",
            flush=True,
        )
        while not stop:
            time.sleep(0.5)
    return 0


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


if __name__ == "__main__":
    sys.exit(main())
