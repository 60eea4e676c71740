"""The provider registers with Airflow: discovery, connection type, form fields and behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from media_upload.get_provider_info import get_provider_info

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_provider_info_names_the_distribution_and_the_lazada_connection():
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-media-upload"
    lazada = next(c for c in info["connection-types"] if c["connection-type"] == "lazada")
    assert lazada["hook-class-name"] == "media_upload.hooks.lazada.LazadaHook"
    assert {"access_token", "refresh_token"} <= set(lazada["conn-fields"])
    fields = lazada["conn-fields"]
    assert all(fields[name]["schema"]["format"] == "password" for name in ("access_token", "refresh_token"))
    assert {"seller_id", "push", "push_poll_seconds"} <= set(fields)  # push, not poll
    assert not any(
        fields[name]["schema"].get("format") for name in ("seller_id", "push", "push_poll_seconds")
    )


def test_every_connection_type_takes_the_http_provider_s_transport_settings():
    for kind in get_provider_info()["connection-types"]:
        fields = kind["conn-fields"]
        assert {"proxies", "verify", "cert", "tcp_keep_alive", "tcp_keep_alive_idle"} <= set(fields)
        assert fields["verify"]["schema"]["type"] == ["boolean", "string", "null"]  # true, false or a path


def test_airflow_cli_lists_the_provider_and_its_widgets():
    commands = {
        "get": [AIRFLOW, "providers", "get", "airflow-provider-media-upload", "-o", "json"],
        "widgets": [AIRFLOW, "providers", "widgets", "-o", "json"],
        "hooks": [AIRFLOW, "providers", "hooks", "-o", "json"],
    }
    running = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, cmd in commands.items()
    }
    out = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
        out[name] = json.loads(stdout)
    assert out["get"] == [
        {"Provider": "airflow-provider-media-upload", "Version": version("airflow-provider-media-upload")}
    ]
    widgets = {w["connection_parameter_name"]: w for w in out["widgets"]}
    for field in (
        "extra__lazada__access_token",
        "extra__lazada__refresh_token",
        "extra__huawei_vod__project_id",
        "extra__lazada__proxies",
        "extra__huawei_vod__verify",
    ):
        assert widgets[field]["package_name"] == "airflow-provider-media-upload"
    hook = next(h for h in out["hooks"] if h["connection_type"] == "lazada")
    assert (
        hook["class"] == "media_upload.hooks.lazada.LazadaHook"
        and hook["conn_id_attribute_name"] == "lazada_conn_id"
    )
