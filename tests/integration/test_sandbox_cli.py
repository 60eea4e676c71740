"""``media-sandbox lazada`` as users start it: prints where it listens, serves the API, stops on SIGTERM."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).with_name("media-sandbox"))


def start_cli(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [CLI, "lazada", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("export AIRFLOW_CONN_LAZADA_DEFAULT"):
            break
    return process, lines


def test_cli_serves_the_gateway_with_the_given_credentials(lazop, tmp_path):
    assert shutil.which(CLI), CLI
    process, lines = start_cli(
        "--port", "0", "--app-key", "777", "--app-secret", "cli-secret", "--access-token", "cli-token",
        "--audit-seconds", "0", "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    try:
        banner = "\n".join(lines)
        gateway = re.search(r"serving (http://127\.0\.0\.1:\d+/rest)", banner)
        assert gateway, banner
        assert "777" in banner and "cli-secret" in banner and "cli-token" in banner
        connection = json.loads(lines[-1].split("=", 1)[1].strip("'"))
        assert connection["host"] == gateway[1] and connection["login"] == "777"

        client = lazop.LazopClient(gateway[1], "777", "cli-secret")
        quota = client.execute(lazop.LazopRequest("/media/video/quota/get", "GET"), "cli-token").body
        assert quota["code"] == "0", quota
        assert (tmp_path / "data" / "uploads").is_dir()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def test_cli_reports_a_taken_port(lazada_sandbox):
    port = lazada_sandbox.url.rsplit(":", 1)[1]
    result = subprocess.run([CLI, "lazada", "--port", port], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "did not start" in result.stderr


def test_cli_documents_the_required_flags():
    help_text = subprocess.run([CLI, "lazada", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in (
        "--host",
        "--port",
        "--app-key",
        "--app-secret",
        "--access-token",
        "--audit-seconds",
        "--data-dir",
    ):
        assert flag in help_text


def test_huawei_vod_cli_serves_vod_and_obs(tmp_path):
    from tests.integration.conftest import VodDriver

    process = subprocess.Popen(
        [
            CLI,
            "huawei-vod",
            "--port",
            "0",
            "--ak",
            "CLIAK",
            "--sk",
            "cli-sk",
            "--project-id",
            "p" * 32,
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("export AIRFLOW_CONN_HUAWEI_VOD_DEFAULT"):
                break
        connection = json.loads(lines[-1].split("=", 1)[1].strip().strip("'"))
        assert (connection["login"], connection["password"], connection["extra"]["project_id"]) == (
            "CLIAK",
            "cli-sk",
            "p" * 32,
        )
        asset = VodDriver(
            None, endpoint=connection["host"], ak="CLIAK", sk="cli-sk", project_id="p" * 32
        ).create()
        assert len(asset.asset_id) == 32
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def test_shopee_cli_serves_the_gateway_with_the_given_credentials(tmp_path):
    import hashlib
    import hmac
    import time

    import requests

    process = subprocess.Popen(
        [
            CLI, "shopee", "--port", "0", "--partner-id", "777", "--partner-key", "cli-key", "--shop-id", "42",
            "--access-token", "cli-token", "--part-bytes", "4000000", "--push-retry-seconds", "1,2",
            "--data-dir", str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("export AIRFLOW_CONN_SHOPEE_DEFAULT"):
                break
        banner = "\n".join(lines)
        gateway = re.search(r"serving (http://127\.0\.0\.1:\d+) \(SDK base_url \1/api/v2\)", banner)
        assert gateway, banner
        assert "4000000 bytes (exact)" in banner and "cli-key" in banner
        connection = json.loads(lines[-1].split("=", 1)[1].strip("'"))
        assert connection == {
            "conn_type": "shopee",
            "host": gateway[1],
            "login": "777",
            "password": "cli-key",
            "extra": {"access_token": "cli-token", "refresh_token": "sandbox-refresh-token", "shop_id": 42},
        }
        path, stamp = "/api/v2/media_space/get_video_upload_result", int(time.time())
        sign = hmac.new(b"cli-key", f"777{path}{stamp}cli-token42".encode(), hashlib.sha256).hexdigest()
        query = {
            "partner_id": 777,
            "timestamp": stamp,
            "access_token": "cli-token",
            "shop_id": 42,
            "sign": sign,
        }
        answer = requests.get(
            f"{gateway[1]}{path}", params={**query, "video_upload_id": "sg_x"}, timeout=10
        ).json()
        assert answer["error"] == "product.error_invalid_upload_id", answer
        assert (tmp_path / "data" / "uploads").is_dir()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
