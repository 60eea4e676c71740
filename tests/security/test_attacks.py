"""Every attack of the untrusted-input review, tried on a real deployment as an attacker would: a user who
may only trigger DAGs (run conf through the REST API), a manifest author, and anyone on the internet (the
push receiver). A loopback "foreign host" records every request it gets: none carries a credential of
any connection. Legitimate sources still work: a local file in the media folder, ``s3://`` through a
connection the DAG names (moto), ``https://`` through a named HTTP connection to its own host (a private
CA, Basic auth)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

from media_upload.protocols.huawei_vod import notification, notification_signature
from media_upload.protocols.lazada import push_signature, video_state_message
from media_upload.sandbox.sample_media import write_sample_mp4
from tests.hosts import RecordingHost, recording_host
from tests.tls import private_ca

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "include"))

from stack import LocalStack  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
CDN_LOGIN, CDN_PASSWORD = "cdn-reader", "cdn-password-5c1e9"
S3_KEY, S3_SECRET = "AKIASECURITYTEST0001", "s3-secret-key-0c4b7e"
MAX_MANIFEST = 200_000
PLATFORM_CONNECTIONS = ("lazada_default", "huawei_vod_default", "media_upload_ledger")


class Deployment:
    """The stack, the hosts around it, and what a test needs to attack it."""

    def __init__(
        self, stack: LocalStack, foreign: RecordingHost, cdn: RecordingHost, s3: str, hook: Any, cover: str
    ) -> None:
        self.stack, self.foreign, self.cdn, self.s3, self.hook, self.cover = (
            stack,
            foreign,
            cdn,
            s3,
            hook,
            cover,
        )

    def product(self, sku: str) -> dict[str, str]:
        from media_upload.sandbox.lazada.products import sample_product_payload

        created = self.hook.create_product(sample_product_payload(self.cover, sku, name=sku))
        return {"item_id": str(created["item_id"]), "sku_id": str(created["sku_list"][0]["sku_id"])}

    def video_conf(self, video_path: str, sku: str) -> dict[str, Any]:
        return {
            "video_path": video_path,
            "title": f"Video {sku}",
            "cover_url": self.cover,
            **self.product(sku),
        }

    def secrets(self) -> list[str]:
        """Every credential of every connection the deployment has."""
        found = [CDN_LOGIN, CDN_PASSWORD, S3_KEY, S3_SECRET]
        for connection in self.stack.connections().values():
            found += [str(connection.get("login") or ""), str(connection.get("password") or "")]
            found += [
                str(v) for k, v in (connection.get("extra") or {}).items() if "token" in k or "secret" in k
            ]
        return [secret for secret in found if len(secret) >= 6]

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return next(t for t in self.stack.task_instances(dag_id, run_id) if t["task_id"] == task_id)

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/{try_number}"
        return json.dumps(self.stack.api("GET", path, params={"full_content": "true"}))

    def receiver(self, conn_id: str, platform: str = "lazada") -> str:
        return f"{self.stack.api_url}/media-uploads/push/{platform}/{conn_id}"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    from moto.server import ThreadedMotoServer

    work = tmp_path_factory.mktemp("security")
    ca = private_ca(work / "ca")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    s3 = "http://{}:{}".format(*moto.get_host_and_port())
    with (
        recording_host(work / "foreign") as foreign,
        recording_host(work / "cdn", tls=ca.server, basic_auth=(CDN_LOGIN, CDN_PASSWORD)) as cdn,
    ):
        (work / "foreign" / "open").mkdir()
        (work / "cdn" / "videos").mkdir()
        stack = LocalStack(
            work / "airflow",
            executor="LocalExecutor",
            database="airflow_security",
            sandboxes={"lazada": ["--audit-seconds", "2"], "huawei-vod": ["--transcode-seconds", "2"]},
            connections_in_env=False,  # in the metadata database, as `make airflow` does
            lazada_push=True,
            vod_push=True,
            extra_dags=(Path(__file__).with_name("dags") / "security_sources.py",),
            allowed_sources=(
                f"{work / 'airflow' / 'media'}/",
                "s3://security-videos/",
                f"{cdn.url}/videos/",
                f"{foreign.url}/open/",  # a second, public host, read without any connection
            ),
            env={"AIRFLOW__MEDIA_UPLOAD__MAX_MANIFEST_BYTES": str(MAX_MANIFEST)},
        )
        try:
            with stack:
                cdn_port = urlsplit(cdn.url).port
                stack.api("POST", "/connections", json={
                    "connection_id": "media_cdn", "conn_type": "http", "host": "127.0.0.1", "port": cdn_port,
                    "schema": "https", "login": CDN_LOGIN, "password": CDN_PASSWORD,
                    "extra": json.dumps({"verify": str(ca.ca)}),
                })  # fmt: skip
                stack.api("POST", "/connections", json={
                    "connection_id": "media_s3", "conn_type": "aws", "login": S3_KEY, "password": S3_SECRET,
                    "extra": json.dumps({"endpoint_url": s3, "region_name": "us-east-1"}),
                })  # fmt: skip
                os.environ["AIRFLOW_CONN_LAZADA_DEFAULT"] = json.dumps(stack.connections()["lazada_default"])
                from media_upload.hooks.lazada import LazadaHook

                hook = LazadaHook()
                yield Deployment(stack, foreign, cdn, s3, hook, hook.upload_image(PNG, "cover.png"))
        finally:
            moto.stop()


def run_all(
    deployment: Deployment, runs: dict[str, tuple[str, dict[str, Any]]]
) -> dict[str, tuple[str, str]]:
    """Trigger every ``name: (dag_id, conf)`` at once; wait for all; ``name: (dag_id, run_id)``."""
    stack = deployment.stack
    stack.wait_for_dags(*{dag_id for dag_id, _ in runs.values()})
    started = {name: (dag_id, stack.trigger(dag_id, conf)) for name, (dag_id, conf) in runs.items()}
    for dag_id, run_id in started.values():
        stack.wait(dag_id, run_id, timeout=600)
    return started


# ------------------------------------------------------------------------------ sources from run conf


def test_run_conf_reaches_no_credential_and_no_file_outside_the_policy(deployment: Deployment):
    media = deployment.stack.media
    foreign = deployment.foreign.url.split("://", 1)[1]
    (media / "notes.mp4").write_text("root:x:0:0:TOP-SECRET-FIRST-LINE\n" * 20)
    (media / "hosts.mp4").symlink_to("/etc/hosts")
    product_attacks = {
        **{
            f"user part {conn_id}": (f"http://{conn_id}@{foreign}/open/v.mp4", "carries a user part")
            for conn_id in PLATFORM_CONNECTIONS
        },
        "user and password": (f"http://admin:hunter2@{foreign}/open/v.mp4", "carries a user part"),
        "s3 with a connection": ("s3://lazada_default@security-videos/v.mp4", "carries a user part"),
        "etc passwd": ("/etc/passwd", "not inside an allowed folder"),
        "dot dot": (f"{media}/../../../../../etc/passwd", "not inside an allowed folder"),
        "file url": ("file:///etc/shadow", "not inside an allowed folder"),
        "home": ("~/.ssh/id_rsa", "'~' is not expanded"),
        "relative": ("secrets.mp4", "a relative path"),
        "link out": (f"{media}/hosts.mp4", "not inside an allowed folder"),
        "metadata": (
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "not under an allowed",
        ),
        "signed url": (f"http://{foreign}/open/v.mp4?X-Amz-Signature=abc", "carries a credential"),
        "not a video": (f"{media}/notes.mp4", "is not an MP4/MOV video"),
    }
    runs = {
        name: ("lazada_product_video", deployment.video_conf(path, f"attack-{n}"))
        for n, (name, (path, _)) in enumerate(product_attacks.items())
    }
    runs["vod user part"] = (
        "huawei_vod_upload",
        {"video_path": f"http://huawei_vod_default@{foreign}/open/v.mp4", "title": "attack"},
    )
    # A DAG that names an HTTP connection: its credentials go to its own host only.
    runs["connection elsewhere"] = (
        "security_cdn_video",
        {
            "video_path": f"http://{foreign}/open/v.mp4",
            "cover_url": deployment.cover,
            "product": "sku:attack-cdn",
        },
    )
    started = run_all(deployment, runs)
    expected = {**{name: why for name, (_, why) in product_attacks.items()}, "vod user part": "carries a user part",
                "connection elsewhere": "connection 'media_cdn' is for host '127.0.0.1'"}  # fmt: skip
    first_task = {"lazada_product_video": "lazada_video.init_upload", "huawei_vod_upload": "huawei_vod.create_asset",
                  "security_cdn_video": "lazada_video.init_upload"}  # fmt: skip
    for name, (dag_id, run_id) in started.items():
        assert deployment.stack.run(dag_id, run_id)["state"] == "failed", name
        task = deployment.task(dag_id, run_id, first_task[dag_id])
        assert (task["state"], task["try_number"]) == ("failed", 1), name  # refused at once, never retried
        log = deployment.log(dag_id, run_id, first_task[dag_id])
        assert expected[name] in log, name
        assert "TOP-SECRET" not in log and "root:x" not in log, name  # no file content in any error
        if "allowed" in expected[name]:
            assert "[media_upload] allowed_sources (AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES) allows" in log, (
                name
            )
    assert deployment.foreign.requests == []  # refused before a single byte was asked for
    for name in ("user part lazada_default", "user and password"):
        log = deployment.log(*started[name], "lazada_video.init_upload")
        assert "hunter2" not in log and "http://***@" in log  # the refusal masks what it names


def test_manifests_are_sources_too(deployment: Deployment):
    media, foreign = deployment.stack.media, deployment.foreign.url.split("://", 1)[1]
    catalog = media / "catalog"
    catalog.mkdir()
    good = write_sample_mp4(catalog / "good.mp4", 400_000, seed=3)
    (catalog / "link.mp4").symlink_to("/etc/hostname")
    deployment.product("row-good")
    rows = [
        ("row-good", good.name),
        ("row-user", f"http://media_upload_ledger@{foreign}/open/v.mp4"),
        ("row-passwd", "/etc/passwd"),
        ("row-escape", "../../../../../../etc/passwd"),
        ("row-link", "link.mp4"),
        ("row-metadata", "http://169.254.169.254/latest/meta-data/"),
    ]
    for sku, _ in rows[1:]:
        deployment.product(sku)
    manifest = catalog / "catalog.csv"
    manifest.write_text(
        "seller_sku,video,title,cover_url\n"
        + "".join(f"{sku},{video},{sku},{deployment.cover}\n" for sku, video in rows)
    )
    huge = catalog / "huge.csv"
    huge.write_text("seller_sku,video,title,cover_url\n" + f"x,good.mp4,T,{deployment.cover}\n" * 4_000)
    assert huge.stat().st_size > MAX_MANIFEST
    started = run_all(
        deployment,
        {
            "rows": ("lazada_catalog_videos", {"manifest": str(manifest), "fail_on_video_errors": False}),
            "outside": ("lazada_catalog_videos", {"manifest": "/etc/passwd"}),
            "huge": ("lazada_catalog_videos", {"manifest": str(huge)}),
        },
    )
    dag_id, run_id = started["rows"]
    assert deployment.stack.run(dag_id, run_id)["state"] == "success"
    report = deployment.stack.api(
        "GET",
        f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/catalog.plan/xcomEntries/report",
    )["value"]
    report = json.loads(report) if isinstance(report, str) else report
    reasons = {problem["line"]: problem["reason"] for problem in report["invalid"]}
    assert "carries a user part" in reasons[3] and "not inside an allowed folder" in reasons[4]
    assert "not inside an allowed folder" in reasons[5] and "not inside an allowed folder" in reasons[6]
    assert "not under an allowed URL prefix" in reasons[7] and 2 not in reasons  # the good row went up
    for name, why in (
        ("outside", "not inside an allowed folder"),
        ("huge", f"larger than the {MAX_MANIFEST:,} bytes"),
    ):
        dag_id, run_id = started[name]
        assert deployment.stack.run(dag_id, run_id)["state"] == "failed"
        assert why in deployment.log(dag_id, run_id, "catalog.plan"), name
    assert deployment.foreign.requests == []


# ------------------------------------------------------------------------------ legitimate sources


def test_legitimate_sources_still_work_and_no_credential_goes_astray(deployment: Deployment):
    import boto3

    media = deployment.stack.media
    local = write_sample_mp4(media / "legit.mp4", 500_000, seed=11)
    write_sample_mp4(deployment.cdn.folder / "videos" / "legit.mp4", 450_000, seed=12)
    write_sample_mp4(deployment.foreign.folder / "open" / "public.mp4", 420_000, seed=13)
    s3_video = write_sample_mp4(media.parent / "s3-legit.mp4", 430_000, seed=14)
    client = boto3.client(
        "s3", endpoint_url=deployment.s3, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )  # fmt: skip
    client.create_bucket(Bucket="security-videos")
    client.upload_file(str(s3_video), "security-videos", "legit.mp4")
    cover = deployment.cover
    started = run_all(
        deployment,
        {
            "local": ("lazada_product_video", deployment.video_conf(str(local), "legit-local")),
            "public host": ("lazada_product_video", deployment.video_conf(f"{deployment.foreign.url}/open/public.mp4", "legit-public")),
            "s3": ("security_s3_video", {"video_path": "s3://security-videos/legit.mp4", "cover_url": cover, "product": "sku:legit-s3"}),
            "cdn": ("security_cdn_video", {"video_path": f"{deployment.cdn.url}/videos/legit.mp4", "cover_url": cover, "product": "sku:legit-cdn"}),
        },
    )  # fmt: skip
    for name, (dag_id, run_id) in started.items():
        assert deployment.stack.run(dag_id, run_id)["state"] == "success", name
    # The CDN got the named connection's credentials; the public host got requests, none with a credential.
    assert deployment.cdn.requests and all("authorization" in r["headers"] for r in deployment.cdn.requests)
    assert deployment.foreign.requests
    assert {r["path"] for r in deployment.foreign.requests} == {"/open/public.mp4"}
    carrying = deployment.foreign.carrying(*deployment.secrets())
    assert len(carrying) == 0, f"{len(carrying)} request(s) to the foreign host carried a credential"


# ------------------------------------------------------------------------------ the push receiver


def post_raw(url: str, head: str) -> tuple[bytes, float]:
    """Send only a request's head; the answer and how long it took."""
    target = urlsplit(url)
    with socket.create_connection((target.hostname, target.port), timeout=10) as conn:
        started = time.monotonic()
        conn.sendall(f"POST {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\n{head}\r\n".encode())
        return conn.recv(4096), time.monotonic() - started


def test_the_receiver_refuses_strangers_cheaply_and_alike(deployment: Deployment):
    stack = deployment.stack
    answer, seconds = post_raw(
        deployment.receiver("lazada_default"),
        "Content-Type: application/json\r\nContent-Length: 3000000000\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413") and seconds < 2

    def endless() -> Iterator[bytes]:
        for _ in range(2_000):
            yield b"x" * 16_384

    assert requests.post(deployment.receiver("lazada_default"), data=endless(), timeout=30).status_code == 413

    lazada = stack.running_sandboxes["lazada"].connection
    app_key, secret, seller = lazada["login"], lazada["password"], lazada["extra"]["seller_id"]
    body = json.dumps(
        video_state_message(seller, "30000000001", "AUDIT_SUCCESS", time.time(), time.time(), "lazada_sg")
    ).encode()
    forged = {
        "Authorization": push_signature(app_key, "a-guessed-secret", body),
        "Content-Type": "application/json",
    }
    answers = {
        conn_id: requests.post(deployment.receiver(conn_id), data=body, headers=forged, timeout=10)
        for conn_id in (*PLATFORM_CONNECTIONS, "media_cdn", "no_such_connection", "x" * 300)
    }
    assert {(a.status_code, a.content) for a in answers.values()} == {
        (401, answers["lazada_default"].content)
    }
    odd = requests.post(
        deployment.receiver("lazada_default"),
        data=body,
        headers={"Authorization": "\u00e9\u00e8"},
        timeout=10,
    )
    assert (odd.status_code, odd.content) == (401, answers["lazada_default"].content)  # not a 500

    def signed(age: float, video_id: str) -> requests.Response:
        sent = time.time() - age
        raw = json.dumps(
            video_state_message(seller, video_id, "AUDIT_SUCCESS", sent, sent, "lazada_sg")
        ).encode()
        headers = {"Authorization": push_signature(app_key, secret, raw), "Content-Type": "application/json"}
        return requests.post(deployment.receiver("lazada_default"), data=raw, headers=headers, timeout=10)

    fresh, replayed = signed(60, "30000000002"), signed(8 * 3600, "30000000003")
    assert (fresh.status_code, fresh.json()["kept"]) == (200, True)
    assert (replayed.status_code, replayed.json()["kept"]) == (200, False)
    api_log = (stack.home / "logs" / "api-server.log").read_text(errors="replace")
    assert secret not in api_log and forged["Authorization"] not in api_log


def test_the_vod_receiver_refuses_strangers_alike(deployment: Deployment):
    """VOD's notifications: a forged auth_sign, a Lazada-signed message or any connection id gets the one
    401; a body over the limit is refused unread; only the key of huawei_vod_default signs what is kept."""
    stack = deployment.stack
    url = deployment.receiver("huawei_vod_default", "huawei-vod")
    answer, seconds = post_raw(url, "Content-Type: application/json\r\nContent-Length: 3000000000\r\n")
    assert answer.startswith(b"HTTP/1.1 413") and seconds < 2
    key = stack.connections()["huawei_vod_default"]["extra"]["push_secret"]
    body, message = notification("createComplete", {"asset_id": "a" * 32, "status": "SUCCEED"})
    stamp = str(int(time.time()))
    forged = {"auth_timestamp": stamp, "auth_sign": notification_signature("a-guessed-key", stamp, message)}
    answers = {
        conn_id: requests.post(
            deployment.receiver(conn_id, "huawei-vod"), data=body, headers=forged, timeout=10
        )
        for conn_id in (*PLATFORM_CONNECTIONS, "media_cdn", "no_such_connection", "x" * 300)
    }
    lazada_signed = requests.post(url, data=body, headers={"Authorization": "0" * 64}, timeout=10)
    assert {(a.status_code, a.content) for a in [*answers.values(), lazada_signed]} == {
        (401, answers["huawei_vod_default"].content)
    }
    genuine = {"auth_timestamp": stamp, "auth_sign": notification_signature(key, stamp, message)}
    kept = requests.post(url, data=body, headers=genuine, timeout=10)
    assert (kept.status_code, kept.json()["kept"]) == (200, True)
    api_log = (stack.home / "logs" / "api-server.log").read_text(errors="replace")
    assert key not in api_log and forged["auth_sign"] not in api_log
