"""The Huawei VOD operators against the emulator and a SQLite ledger: source checks, both upload paths,
resume, never twice, lost answers, cleanup."""

from __future__ import annotations

import hashlib
import json

import jinja2
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from media_upload.hooks.huawei_vod import HuaweiVodApiError, HuaweiVodHook
from media_upload.ledger import COMMIT_UNKNOWN, COMMITTED, FAILED, UPLOADING, LedgerEntry, UploadLedger
from media_upload.operators.huawei_vod import (
    HuaweiVodCancelUploadOperator,
    HuaweiVodConfirmUploadOperator,
    HuaweiVodCreateAssetOperator,
    HuaweiVodUploadChunkOperator,
)


class Flow:
    """Runs the operators as the task group wires them, each with its own task context."""

    def __init__(self, sandbox, task_context) -> None:
        self.sandbox = sandbox
        self.task_context = task_context

    def create(self, source: str, run_id: str = "run-1", **options) -> tuple[list[dict], dict]:
        """The create task: its chunk payloads and the ``job`` it pushed."""
        options.setdefault("title", "Red dress")
        context = self.task_context(run_id=run_id)
        chunks = HuaweiVodCreateAssetOperator(task_id="create_asset", source=source, **options).execute(
            context
        )
        return chunks, context["ti"].xcoms[(None, "job")]

    def upload(self, chunk: dict, fast: bool = False) -> dict:
        task = HuaweiVodUploadChunkOperator(task_id="upload_chunk", chunk=chunk)
        if fast:
            task.hook = quick_hook()
        return task.execute(self.task_context())

    def confirm(self, job: dict) -> dict:
        return HuaweiVodConfirmUploadOperator(task_id="confirm_upload", job=job).execute(self.task_context())

    def cancel(self, job: dict | None) -> dict:
        task = HuaweiVodCancelUploadOperator(task_id="cancel_upload", create_task_id="create_asset")
        assert task.trigger_rule == "one_failed"
        context = self.task_context()
        if job is not None:
            context["ti"].xcoms[("create_asset", "job")] = job
        return task.execute(context)

    def counts(self) -> dict[str, int]:
        return dict(self.sandbox.backend.request_counts)

    def asset(self, asset_id: str) -> dict:
        return self.sandbox.backend.snapshot()["assets"][asset_id]

    @staticmethod
    def row(job: dict) -> LedgerEntry:
        entry = UploadLedger().get(job["platform"], job["account"], job["product"], job["content_sha256"])
        assert entry is not None
        return entry


def quick_hook() -> HuaweiVodHook:
    """The default connection with retries that wait milliseconds, for faults that outlast several tries."""
    return HuaweiVodHook(backoff_seconds=0.001, backoff_max_seconds=0.01, throttle_pause_seconds=0.001)


@pytest.fixture
def flow(make_huawei_vod_sandbox, huawei_vod_connection, ledger_connection, task_context) -> Flow:
    sandbox = make_huawei_vod_sandbox()
    huawei_vod_connection(sandbox)
    ledger_connection("sqlite")
    return Flow(sandbox, task_context)


def md5_of(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def parts_of(chunks: list[dict]) -> list[tuple[int, int]]:
    return [(segment["first"] + 1, segment["last"] + 1) for c in chunks for segment in c["segments"]]


# ----------------------------------------------------------------------------- create


@pytest.mark.parametrize(
    ("setup", "options", "fragment"),
    [
        ("missing", {}, "missing.mp4: no such file"),
        ("text", {}, "is not an MP4/MOV video"),
        ("video", {"title": " "}, "the asset title is missing"),
        ("video", {"title": "\u00e9" * 65}, "the asset title is 130 bytes in UTF-8; VOD allows at most 128"),
        ("video", {"description": "x" * 1025}, "the asset description is 1025 bytes in UTF-8"),
        ("video", {"part_size": 100_000}, "part size 100,000 is outside 102,400..5,368,709,120 bytes"),
        ("video", {"auto_publish": "sometimes"}, "auto_publish 'sometimes' is not a boolean"),
        ("video", {"chunks": "two"}, "chunks 'two' is not a whole number"),
    ],
)
def test_bad_input_fails_before_any_api_call(flow, tmp_path, sample_video, setup, options, fragment):
    """Retrying cannot fix bad input: the task fails at once, and VOD never hears of it."""
    paths = {"missing": tmp_path / "missing.mp4", "text": tmp_path / "notes.mp4"}
    paths["text"].write_text("not a video")
    source = str(sample_video(300_000)) if setup == "video" else str(paths[setup])
    with pytest.raises(AirflowFailException) as refused:
        flow.create(source, single_put_max_bytes=0, **options)
    assert fragment in str(refused.value)
    assert flow.counts() == {}
    assert UploadLedger().all() == []


def test_too_many_chunks_for_max_map_length(flow, sample_video, monkeypatch):
    """One task cannot map more instances than ``[core] max_map_length``: refused before CreateAsset."""
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    with pytest.raises(
        AirflowFailException, match=r"4 chunk tasks are more than \[core\] max_map_length \(3\)"
    ):
        flow.create(str(sample_video(600_000)), part_size=150_000, chunks=4, single_put_max_bytes=0)
    assert flow.counts() == {}


def test_a_quicktime_source_is_created_as_mov(flow, sample_video):
    """The container, not the file name, picks ``video_type`` and the Content-Type the PUT signs."""
    path = sample_video(20_000, name="clip.mov")
    data = bytearray(path.read_bytes())
    data[8:12] = b"qt  "
    path.write_bytes(bytes(data))
    chunks, job = flow.create(str(path))
    assert chunks == [] and job["details"]["content_type"] == "video/quicktime"
    asset = flow.asset(job["video_id"])
    assert asset["video_type"] == "MOV" and asset["object_key"].endswith(".mov")
    assert asset["object"]["md5"] == md5_of(path)


def test_small_files_go_up_in_one_put_inside_the_create_task(flow, sample_video):
    """Under 20 MB the create task PUTs the whole file; no chunk runs and the signed URL stays in the task."""
    path = sample_video(19_999_999, seed=2)
    chunks, job = flow.create(str(path), auto_publish="False", template_group_name="hd")
    assert chunks == []
    assert job["details"]["mode"] == "single" and job["upload_id"] is None
    assert "video_upload_url" not in json.dumps(job) and "Signature" not in json.dumps(job)
    assert flow.counts() == {"CreateAsset": 1, "PutObject": 1}
    assert flow.asset(job["video_id"])["object"]["md5"] == md5_of(path)
    assert flow.row(job).state == UPLOADING  # the PUT is in; the confirm task confirms
    ready = flow.confirm(job)
    assert (ready["asset_id"], ready["job"]["video_id"]) == (job["video_id"], job["video_id"])
    assert ready["ready_statuses"] == ["TRANSCODE_SUCCEED", "transcodeComplete:SUCCEED"]
    assert flow.counts()["ConfirmAssetUpload"] == 1 and flow.row(job).state == COMMITTED
    assert flow.asset(job["video_id"])["status"] != "CREATING"


def test_twenty_megabytes_go_up_in_parts(flow, sample_video):
    """From 20 MB on: CreateAsset and the OBS initiate in the create task, then chunk payloads for the
    mapped tasks; the payloads carry ids and offsets, never a URL or bytes."""
    path = sample_video(20_000_000, seed=3)
    chunks, job = flow.create(str(path))
    assert flow.counts() == {"CreateAsset": 1, "ShowAssetTempAuthority": 1, "InitiateMultipartUpload": 1}
    assert job["details"]["mode"] == "multipart" and job["block_size"] == 2_500_000
    assert job["upload_id"] in flow.sandbox.backend.snapshot()["uploads"]
    assert [c["label"] for c in chunks] == ["chunk 1/1 · parts 1–8 · 20 MB"]
    assert chunks[0]["segments"][0]["job"] == job and chunks[0]["in_flight"] == 8
    assert "Signature" not in json.dumps(chunks) and len(json.dumps(chunks)) < 3_000
    assert flow.row(job).state == UPLOADING and flow.row(job).upload_id == job["upload_id"]


def test_chunk_tasks_are_labelled_by_their_parts(flow, sample_video):
    """The mapped instances read ``chunk 2/2 · parts 3–4 · 400 KB`` in the UI."""
    chunks, _ = flow.create(str(sample_video(1_000_000)), part_size=300_000, chunks=2, single_put_max_bytes=0)
    task = HuaweiVodUploadChunkOperator(task_id="upload_chunk", chunk=chunks[1])
    assert jinja2.Template(task.map_index_template).render(task=task) == "chunk 2/2 · parts 3–4 · 400 KB"
    assert [c["label"] for c in chunks] == [
        "chunk 1/2 · parts 1–2 · 600 KB",
        "chunk 2/2 · parts 3–4 · 400 KB",
    ]


# -------------------------------------------------------------------------- multipart


def test_multipart_end_to_end(flow, sample_video):
    """Every chunk once; the one with the last part completes and confirms, so the confirm task only reads
    the ledger. Each part is PUT once and OBS verifies the whole file's MD5."""
    path = sample_video(1_000_000, seed=4)
    chunks, job = flow.create(str(path), part_size=300_000, chunks=2, single_put_max_bytes=0)
    assert parts_of(chunks) == [(1, 2), (3, 4)]
    first = flow.upload(chunks[0])
    assert [p["partNumber"] for p in first[job["upload_id"]]] == [1, 2]
    assert flow.row(job).state == UPLOADING and "ConfirmAssetUpload" not in flow.counts()
    last = flow.upload(chunks[1])
    assert [p["partNumber"] for p in last[job["upload_id"]]] == [3, 4]
    assert flow.row(job).state == COMMITTED
    ready = flow.confirm(job)
    assert ready["asset_id"] == job["video_id"]
    assert ready["ready_statuses"] == ["PUBLISHED", "createComplete:SUCCEED"]
    assert flow.counts() == {
        "CreateAsset": 1,
        "InitiateMultipartUpload": 1,
        "UploadPart": 4,
        "CompleteMultipartUpload": 1,
        "ConfirmAssetUpload": 1,
        "ShowAssetTempAuthority": 6,  # initiate, four parts, complete
    }
    asset = flow.asset(job["video_id"])
    assert asset["object"]["md5"] == md5_of(path) and asset["object"]["etag"].endswith('-4"')
    assert asset["video_md5"] and asset["status"] != "CREATING"
    assert UploadLedger().acknowledged("huawei_vod", job["upload_id"]) == {}  # forgotten once joined


def test_confirm_refuses_an_upload_with_missing_parts(flow, sample_video):
    """A confirm task whose chunks did not all arrive fails without asking OBS to join a partial upload."""
    chunks, job = flow.create(str(sample_video(300_000)), part_size=150_000, chunks=2, single_put_max_bytes=0)
    flow.upload(chunks[1])
    with pytest.raises(AirflowFailException, match=r"does not have all 2 part\(s\)"):
        flow.confirm(job)
    assert "CompleteMultipartUpload" not in flow.counts() and "ConfirmAssetUpload" not in flow.counts()
    assert flow.row(job).state == UPLOADING


def test_a_new_run_resumes_the_same_asset_and_sends_only_missing_parts(flow, sample_video):
    """A run that stopped after one chunk: the next run's create finds the asset still uploading, keeps
    its OBS upload, and its chunks send only the parts OBS does not have."""
    path = sample_video(1_200_000, seed=5)
    chunks, job = flow.create(str(path), part_size=200_000, chunks=3, single_put_max_bytes=0)
    flow.upload(chunks[0])
    assert flow.counts()["UploadPart"] == 2
    again, resumed = flow.create(
        str(path), run_id="run-2", part_size=200_000, chunks=3, single_put_max_bytes=0
    )
    assert (resumed["video_id"], resumed["upload_id"]) == (job["video_id"], job["upload_id"])
    assert parts_of(again) == parts_of(chunks) == [(1, 2), (3, 4), (5, 6)]
    counts = flow.counts()
    assert (counts["CreateAsset"], counts["InitiateMultipartUpload"], counts["ShowAssetMeta"]) == (1, 1, 1)
    tags = {}
    for chunk in again:
        tags.update({p["partNumber"]: p["eTag"] for p in flow.upload(chunk)[job["upload_id"]]})
    assert sorted(tags) == [1, 2, 3, 4, 5, 6]
    assert flow.counts()["UploadPart"] == 6  # parts 1-2 were not sent again
    assert flow.confirm(resumed)["asset_id"] == job["video_id"]
    assert flow.counts()["ConfirmAssetUpload"] == 1
    assert flow.asset(job["video_id"])["object"]["md5"] == md5_of(path)
    assert len(flow.sandbox.backend.snapshot()["assets"]) == 1


def test_a_resumed_upload_keeps_its_part_size(flow, sample_video):
    """A run with another part size resumes with the parts the upload started with (in its own chunks)."""
    path = sample_video(1_000_000, seed=6)
    chunks, job = flow.create(str(path), part_size=250_000, chunks=2, single_put_max_bytes=0)
    flow.upload(chunks[0])
    again, resumed = flow.create(str(path), run_id="run-2", part_size=500_000, single_put_max_bytes=0)
    assert resumed["block_size"] == 250_000 and resumed["upload_id"] == job["upload_id"]
    assert parts_of(again) == [(1, 4)]
    for chunk in again:
        flow.upload(chunk)
    assert flow.counts()["UploadPart"] == 4 and flow.row(job).state == COMMITTED
    assert flow.asset(job["video_id"])["object"]["md5"] == md5_of(path)


def test_the_same_content_for_the_same_product_is_never_uploaded_twice(flow, sample_video):
    """Once confirmed, a new create for that content and product returns no chunks and calls no CreateAsset;
    its confirm returns the same asset without confirming again."""
    path = sample_video(600_000, seed=7)
    chunks, job = flow.create(str(path), product="SKU-1", part_size=300_000, single_put_max_bytes=0)
    for chunk in chunks:
        flow.upload(chunk)
    flow.confirm(job)
    before = flow.counts()
    again, known = flow.create(str(path), run_id="run-2", product="SKU-1", single_put_max_bytes=0)
    assert again == [] and known["video_id"] == job["video_id"] and known["details"]["confirmed"]
    ready = flow.confirm(known)
    assert (ready["asset_id"], ready["ready_statuses"]) == (
        job["video_id"],
        ["PUBLISHED", "createComplete:SUCCEED"],
    )
    assert flow.counts() == before


# ---------------------------------------------------------------------- lost answers


def finish_with_a_lost_answer(flow, path, operation: str) -> dict:
    """A two-chunk upload whose last chunk loses the answer of ``operation``; returns the job."""
    chunks, job = flow.create(str(path), part_size=200_000, chunks=2, single_put_max_bytes=0)
    flow.upload(chunks[0])
    flow.sandbox.backend.add_fault("drop", operation)
    flow.upload(chunks[1])
    return job


@pytest.mark.parametrize("operation", ["CompleteMultipartUpload", "ConfirmAssetUpload"])
def test_a_lost_answer_is_settled_by_asking_vod_and_obs(flow, sample_video, operation):
    """The complete or the confirm went through but its answer was cut: the chunk asks VOD for the asset's
    status (and OBS for the upload) instead of sending it again, and the asset ends confirmed once."""
    path = sample_video(400_000, seed=8)
    job = finish_with_a_lost_answer(flow, path, operation)
    counts = flow.counts()
    assert counts["CompleteMultipartUpload"] == counts["ConfirmAssetUpload"] == 1
    assert counts["ShowAssetMeta"] == 1
    assert counts.get("ListParts", 0) == (1 if operation == "CompleteMultipartUpload" else 0)
    assert flow.row(job).state == COMMITTED
    assert flow.confirm(job)["asset_id"] == job["video_id"]
    assert flow.counts() == counts
    (asset,) = flow.sandbox.backend.snapshot()["assets"].values()
    assert asset["asset_id"] == job["video_id"] and asset["status"] != "CREATING"
    assert asset["object"]["md5"] == md5_of(path)


def test_the_confirm_task_settles_what_the_chunk_could_not(flow, sample_video):
    """The complete's answer is lost and VOD cannot be asked from the chunk task either: the ledger keeps
    "commit unknown", and the confirm task settles it (ListParts shows OBS joined the parts) and confirms."""
    path = sample_video(400_000, seed=9)
    chunks, job = flow.create(str(path), part_size=200_000, chunks=2, single_put_max_bytes=0)
    flow.upload(chunks[0])
    flow.sandbox.backend.add_fault("drop", "CompleteMultipartUpload")
    flow.sandbox.backend.add_fault("drop", "ShowAssetMeta", count=5)
    flow.upload(chunks[1], fast=True)
    assert flow.row(job).state == COMMIT_UNKNOWN and "ConfirmAssetUpload" not in flow.counts()
    assert flow.confirm(job)["asset_id"] == job["video_id"]
    counts = flow.counts()
    assert (counts["CompleteMultipartUpload"], counts["ConfirmAssetUpload"], counts["ListParts"]) == (1, 1, 1)
    assert counts["ShowAssetMeta"] == 6
    assert flow.row(job).state == COMMITTED
    assert flow.asset(job["video_id"])["object"]["md5"] == md5_of(path)


def test_a_lost_confirm_answer_of_a_single_put(flow, sample_video):
    """The same for the one-PUT path, whose confirm the confirm task sends."""
    _, job = flow.create(str(sample_video(300_000, seed=10)))
    flow.sandbox.backend.add_fault("drop", "ConfirmAssetUpload")
    assert flow.confirm(job)["asset_id"] == job["video_id"]
    counts = flow.counts()
    assert (counts["ConfirmAssetUpload"], counts["ShowAssetMeta"]) == (1, 1)
    assert flow.row(job).state == COMMITTED and flow.asset(job["video_id"])["status"] != "CREATING"


# --------------------------------------------------------------------------- failures


def test_a_changed_source_fails_its_job_and_cleanup_cancels_the_asset(flow, sample_video):
    """A source that changed since the plan fails its job at once (no part sent); the row is failed, so
    cleanup aborts the OBS upload and cancels the asset."""
    path = sample_video(400_000, seed=11)
    chunks, job = flow.create(str(path), part_size=200_000, chunks=2, single_put_max_bytes=0)
    with path.open("ab") as handle:
        handle.write(b"!")
    with pytest.raises(
        AirflowFailException, match="is now 400,001 bytes but the upload was planned for 400,000"
    ):
        flow.upload(chunks[0])
    assert "UploadPart" not in flow.counts()
    assert flow.row(job).state == FAILED
    assert flow.cancel(job) == {"asset_id": job["video_id"], "cancelled": True}
    state = flow.sandbox.backend.snapshot()
    assert state["assets"][job["video_id"]]["status"] == "CANCELLED"
    assert state["uploads"][job["upload_id"]]["state"] == "aborted"
    assert flow.row(job).video_id is None


def test_cleanup_keeps_a_resumable_upload(flow, sample_video, capfd):
    """A chunk failed but the row is still uploading: the next run resumes, so nothing is cancelled."""
    chunks, job = flow.create(
        str(sample_video(400_000, seed=12)), part_size=200_000, chunks=2, single_put_max_bytes=0
    )
    flow.upload(chunks[0])
    capfd.readouterr()
    assert flow.cancel(job) == {"asset_id": job["video_id"], "cancelled": False}
    assert f"Asset {job['video_id']} is kept: the next run resumes its upload" in "".join(capfd.readouterr())
    counts = flow.counts()
    assert "ConfirmAssetUpload" not in counts and "AbortMultipartUpload" not in counts
    assert flow.asset(job["video_id"])["status"] == "CREATING" and flow.row(job).state == UPLOADING


def test_cleanup_leaves_a_confirmed_asset_alone_and_skips_without_one(flow, sample_video):
    """Only a failed row is cancelled; without a job from the create task there is nothing to cancel."""
    _, job = flow.create(str(sample_video(5000)))
    flow.confirm(job)
    assert flow.cancel(job) == {"asset_id": job["video_id"], "cancelled": False}
    with pytest.raises(AirflowSkipException, match="nothing to cancel"):
        flow.cancel(None)
    assert flow.counts()["ConfirmAssetUpload"] == 1


def test_a_failed_single_put_keeps_the_asset_and_the_retry_delivers_the_file(flow, sample_video):
    """OBS refuses the one PUT: the create task fails retryably before pushing a job (so cleanup has
    nothing to cancel) and the ledger keeps the asset as uploading. The retry must still get the file into
    the asset it confirms (its signed PUT URL is gone, so it goes up as a one-part multipart upload): a
    ledger that says committed over an empty asset would be a lie."""
    path = sample_video(300_000, seed=13)
    flow.sandbox.backend.add_fault("InvalidPart", "PutObject")
    with pytest.raises(HuaweiVodApiError, match="InvalidPart"):
        flow.create(str(path))
    (asset_id,) = flow.sandbox.backend.snapshot()["assets"]
    assert flow.asset(asset_id)["status"] == "CREATING"
    (entry,) = UploadLedger().all()
    assert (entry.state, entry.video_id) == (UPLOADING, asset_id)
    with pytest.raises(AirflowSkipException, match="nothing to cancel"):
        flow.cancel(None)
    chunks, job = flow.create(str(path), run_id="run-2")  # the retry: the same object, as a one-part upload
    assert job["video_id"] == asset_id and len(chunks) == 1
    for chunk in chunks:
        flow.upload(chunk)
    flow.confirm(job)
    assert flow.row(job).state == COMMITTED
    assert flow.sandbox.backend.request_counts["CreateAsset"] == 1  # no second asset
    confirmed = flow.asset(job["video_id"])
    assert confirmed["object"] is not None and confirmed["object"]["md5"] == md5_of(path)
    assert confirmed["failure_reason"] is None


def test_a_chunk_task_run_again_after_the_confirm_sends_nothing(flow, sample_video):
    """The chunk that confirmed is retried (its worker died before Airflow heard of the success): the
    asset is done, so it must not PUT parts to a finished upload and fail the run."""
    path = sample_video(400_000, seed=14)
    chunks, job = flow.create(str(path), part_size=200_000, chunks=2, single_put_max_bytes=0)
    for chunk in chunks:
        flow.upload(chunk)
    before = flow.counts()
    flow.upload(chunks[1])
    assert flow.counts() == before
    assert flow.row(job).state == COMMITTED
