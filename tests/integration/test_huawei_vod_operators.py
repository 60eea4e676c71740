"""The Huawei VOD operators against the emulator: source checks, both upload paths, confirm, cleanup."""

from __future__ import annotations

import hashlib
import json

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from media_upload.hooks.huawei_vod import HuaweiVodApiError
from media_upload.operators.huawei_vod import (
    HuaweiVodCancelUploadOperator,
    HuaweiVodCompleteMultipartOperator,
    HuaweiVodConfirmUploadOperator,
    HuaweiVodCreateAssetOperator,
    HuaweiVodInitiateMultipartOperator,
    HuaweiVodUploadPartOperator,
)


@pytest.fixture
def sandbox(huawei_vod_sandbox, huawei_vod_connection):
    huawei_vod_connection(huawei_vod_sandbox)
    return huawei_vod_sandbox


def create(source: str, **options) -> dict:
    options.setdefault("title", "Red dress")
    return HuaweiVodCreateAssetOperator(task_id="create", source=source, **options).execute({})


def initiate(asset: dict) -> list[dict]:
    return HuaweiVodInitiateMultipartOperator(task_id="initiate", asset=asset).execute({})


def upload_parts(plan: list[dict]) -> list[dict]:
    return [HuaweiVodUploadPartOperator(task_id="part", **part).execute({}) for part in plan]


def complete(asset: dict, plan: list[dict], parts: list[dict]) -> str | None:
    return HuaweiVodCompleteMultipartOperator(
        task_id="complete", asset=asset, plan=plan, parts=parts
    ).execute({})


def confirm(asset: dict | str) -> str:
    return HuaweiVodConfirmUploadOperator(task_id="confirm", asset=asset).execute({})


def inject(sandbox, kind: str, operation: str, count: int = 1) -> None:
    requests.post(
        f"{sandbox.endpoint}/_sandbox/huawei-vod/faults",
        json={"kind": kind, "operation": operation, "count": count},
    )


def test_multipart_path_end_to_end(sandbox, sample_video):
    path = sample_video(1_000_000, seed=4)
    asset = create(str(path), part_size=300_000, single_put_max_bytes=0)
    assert asset["mode"] == "multipart" and asset["part_count"] == 4 and asset["video_type"] == "MP4"
    assert asset["ready_statuses"] == ["PUBLISHED"]
    plan = initiate(asset)
    assert [(p["part_number"], p["offset"], p["length"]) for p in plan][-1] == (4, 900_000, 100_000)
    assert len(json.dumps(asset)) + len(json.dumps(plan)) < 3_000  # ids and offsets, no URL, no bytes
    parts = upload_parts(plan)
    assert complete(asset, plan, list(reversed(parts))).endswith('-4"')
    assert confirm(asset) == asset["asset_id"]
    stored = sandbox.backend.snapshot()["assets"][asset["asset_id"]]
    assert stored["object"]["md5"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert stored["video_md5"]  # OBS was told the whole file's MD5


def test_small_files_go_up_in_one_put(sandbox, sample_video):
    path = sample_video(300_000)
    asset = create(str(path), auto_publish="False", template_group_name="hd")
    assert asset["mode"] == "single" and asset["ready_statuses"] == ["TRANSCODE_SUCCEED"]
    assert initiate(asset) == []
    assert complete(asset, [], []) is None
    confirm(asset)
    assert "video_upload_url" not in json.dumps(asset) and "Signature" not in json.dumps(asset)
    assert sandbox.backend.snapshot()["assets"][asset["asset_id"]]["object"]["size"] == 300_000
    assert "InitiateMultipartUpload" not in sandbox.backend.request_counts


def test_a_quicktime_source_is_created_as_mov(sandbox, sample_video):
    path = sample_video(20_000, name="clip.mov")
    data = bytearray(path.read_bytes())
    data[8:12] = b"qt  "
    path.write_bytes(bytes(data))
    asset = create(str(path))
    assert (asset["video_type"], asset["content_type"]) == ("MOV", "video/quicktime")


@pytest.mark.parametrize(
    ("setup", "options", "fragment"),
    [
        ("missing", {}, "missing.mp4: no such file"),
        ("text", {}, "is not an MP4/MOV video"),
        ("video", {"title": " "}, "the asset title is missing"),
        ("video", {"title": "\u00e9" * 65}, "the asset title is 130 bytes in UTF-8; VOD allows at most 128"),
        ("video", {"description": "x" * 1025}, "description is 1025 bytes"),
        ("video", {"part_size": 1000}, "part_size 1,000 is outside 102,400"),
        ("video", {"auto_publish": "sometimes"}, "auto_publish 'sometimes' is not a boolean"),
    ],
)
def test_bad_input_fails_before_any_api_call(sandbox, tmp_path, sample_video, setup, options, fragment):
    paths = {"missing": tmp_path / "missing.mp4", "text": tmp_path / "notes.mp4"}
    paths["text"].write_text("not a video")
    source = str(sample_video(5000)) if setup == "video" else str(paths[setup])
    with pytest.raises(AirflowFailException) as refused:
        create(source, **options)
    assert fragment in str(refused.value)
    assert sandbox.backend.request_counts == {}


def test_too_many_parts_for_max_map_length(sandbox, sample_video, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    with pytest.raises(AirflowFailException, match="make 4 parts, more than 3"):
        create(str(sample_video(450_000)), part_size=120_000, single_put_max_bytes=0)
    assert sandbox.backend.request_counts == {}


def test_a_failed_single_put_cancels_the_asset(sandbox, sample_video):
    inject(sandbox, "InvalidPart", "PutObject")
    with pytest.raises(HuaweiVodApiError, match="InvalidPart"):
        create(str(sample_video(5000)))
    (asset,) = sandbox.backend.snapshot()["assets"].values()
    assert asset["status"] == "CANCELLED"


def test_a_part_task_refuses_a_changed_source(sandbox, sample_video):
    path = sample_video(300_000)
    asset = create(str(path), part_size=150_000, single_put_max_bytes=0)
    plan = initiate(asset)
    with path.open("ab") as handle:
        handle.write(b"!")
    with pytest.raises(AirflowFailException, match="changed during the upload"):
        upload_parts(plan[:1])


def test_complete_needs_every_part(sandbox, sample_video):
    asset = create(str(sample_video(300_000)), part_size=150_000, single_put_max_bytes=0)
    plan = initiate(asset)
    parts = upload_parts(plan)
    with pytest.raises(AirflowFailException, match=r"has parts \[2\] but needs exactly 1..2"):
        complete(asset, plan, parts[1:])


def test_part_label_names_the_part():
    task = HuaweiVodUploadPartOperator(
        task_id="p",
        bucket="b",
        object_key="k",
        upload_id="u",
        source="s",
        part_number=3,
        part_count=8,
        offset=0,
        length=1,
    )
    assert task.map_index_template == "part {{ task.part_number }}/{{ task.part_count }}"


def test_a_repeated_confirm_is_accepted_once_the_asset_moved_on(sandbox, sample_video):
    asset = create(str(sample_video(5000)))
    assert confirm(asset) == confirm(asset["asset_id"]) == asset["asset_id"]
    missing = "0" * 32
    with pytest.raises(HuaweiVodApiError, match=r"VOD\.10062"):
        confirm(missing)


class FakeTaskInstance:
    def __init__(self, xcoms: dict[str, object]) -> None:
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: str) -> object:
        return self.xcoms.get(task_ids)


def cancel(xcoms: dict[str, object]) -> dict:
    task = HuaweiVodCancelUploadOperator(
        task_id="cancel", create_task_id="create", initiate_task_id="initiate"
    )
    assert task.trigger_rule == "one_failed"
    return task.execute({"ti": FakeTaskInstance(xcoms)})


def test_cleanup_aborts_the_upload_and_cancels_the_asset(sandbox, sample_video):
    asset = create(str(sample_video(300_000)), part_size=150_000, single_put_max_bytes=0)
    plan = initiate(asset)
    upload_parts(plan[:1])
    assert cancel({"create": asset, "initiate": plan}) == {"asset_id": asset["asset_id"], "cancelled": True}
    state = sandbox.backend.snapshot()
    assert state["assets"][asset["asset_id"]]["status"] == "CANCELLED"
    assert state["uploads"][plan[0]["upload_id"]]["state"] == "aborted"


def test_cleanup_leaves_a_confirmed_asset_alone_and_skips_without_one(sandbox, sample_video):
    asset = create(str(sample_video(5000)))
    confirm(asset)
    assert cancel({"create": asset}) == {"asset_id": asset["asset_id"], "cancelled": False}
    with pytest.raises(AirflowSkipException, match="nothing to cancel"):
        cancel({})
