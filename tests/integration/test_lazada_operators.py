"""The Lazada operators against the emulator: checks before any API call, chunks of blocks, the ledger
that makes resumes send only what is missing, commits whose answer is lost, audit and products."""

from __future__ import annotations

import hashlib
import itertools
import json

import jinja2
import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSkipException

from media_upload.hooks.lazada import LazadaApiError, LazadaHook
from media_upload.ledger import (
    ATTACHED,
    COMMIT_UNKNOWN,
    COMMITTED,
    FAILED,
    NEEDS_ATTENTION,
    REJECTED,
    UPLOADING,
    LedgerEntry,
    UploadLedger,
)
from media_upload.operators.lazada import (
    LazadaCommitVideoOperator,
    LazadaCreateProductOperator,
    LazadaInitVideoUploadOperator,
    LazadaRecordAuditOperator,
    LazadaUpdateProductVideoOperator,
    LazadaUploadChunkOperator,
)
from media_upload.sandbox.lazada.products import sample_product_payload
from tests.integration.conftest import COVER_URL, LazopDriver

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
CREATE, UPLOAD, COMMIT = "/media/video/block/create", "/media/video/block/upload", "/media/video/block/commit"
#: 8 blocks of 100,000 bytes in 2 chunks, one block in flight: which block fails is then certain.
SMALL = {"block_size": 100_000, "chunks": 2, "blocks_in_flight": 1}


@pytest.fixture
def sandbox(lazada_sandbox, lazada_connection, ledger_connection):
    lazada_connection(lazada_sandbox)
    ledger_connection("sqlite")
    return lazada_sandbox


def init(context: dict, source, **options) -> list[dict]:
    options.setdefault("title", "Red dress")
    options.setdefault("cover_url", COVER_URL)
    options.setdefault("product", "item:1")
    return LazadaInitVideoUploadOperator(task_id="init", source=str(source), **options).execute(context)


def job_of(context: dict) -> dict:
    return context["ti"].xcoms[(None, "job")]


def send(context: dict, chunk: dict, hook: LazadaHook | None = None) -> dict:
    operator = LazadaUploadChunkOperator(task_id="upload_chunk", chunk=chunk)
    if hook is not None:
        operator.hook = hook
    return operator.execute(context)


def commit(context: dict, job: dict, parts: list[dict]) -> str:
    return LazadaCommitVideoOperator(task_id="commit", job=job, parts=parts).execute(context)


def upload(context: dict, source, **options) -> tuple[dict, list[dict], str]:
    """Init, every chunk, commit: the job, the chunk outputs and the video id."""
    chunks = init(context, source, **options)
    parts = [send(context, chunk) for chunk in chunks]
    return job_of(context), parts, commit(context, job_of(context), parts)


def row(job: dict) -> LedgerEntry | None:
    return UploadLedger().get(job["platform"], job["account"], job["product"], job["content_sha256"])


def count(sandbox, api: str) -> int:
    return sandbox.backend.request_counts[api]


def blocks_sent(sandbox, since: int = 0) -> list[int]:
    """``blockNo`` of every block the emulator took, in order, from request ``since`` of its log on."""
    log = list(sandbox.backend.request_log)[since:]
    return [
        int(entry["params"]["blockNo"]) for entry in log if entry["api"] == UPLOAD and entry["code"] == "0"
    ]


def md5(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while data := handle.read(1 << 20):
            digest.update(data)
    return digest.hexdigest()


def fast_retries() -> LazadaHook:
    """The default hook's retry count, with no waiting between tries."""
    return LazadaHook(backoff_seconds=0.001, backoff_max_seconds=0.001, throttle_pause_seconds=0.001)


def blocks_time_out_after(sandbox, monkeypatch, successes: int) -> None:
    """After ``successes`` more blocks, the next block times out on every one of the hook's five tries."""
    backend = sandbox.backend
    original, calls = backend.upload_video_block, itertools.count(1)

    def upload_video_block(params, file):
        body = original(params, file)
        if next(calls) == successes:
            backend.add_fault("ServiceTimeout", UPLOAD, count=5)
        return body

    monkeypatch.setattr(backend, "upload_video_block", upload_video_block)


# ------------------------------------------------------------------------------ init


def test_init_plans_chunks_and_starts_one_upload(sandbox, sample_video, task_context):
    path = sample_video(800_000, seed=1)
    context = task_context()
    chunks = init(context, path, **SMALL)
    job = job_of(context)
    assert [(c["index"], c["segments"][0]["first"], c["segments"][0]["last"]) for c in chunks] == [
        (0, 0, 3),
        (1, 4, 7),
    ]
    assert all(c["count"] == 2 and c["in_flight"] == 1 for c in chunks)
    assert len(json.dumps(chunks)) < 4_000  # a small XCom: ids and block numbers, never bytes
    assert count(sandbox, CREATE) == 1 and UPLOAD not in sandbox.backend.request_counts
    assert job["upload_id"] in sandbox.backend.snapshot()["uploads"]
    assert job["product"] == "item:1"
    assert job["content_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (job["size"], job["block_size"], job["source"]) == (800_000, 100_000, str(path))
    assert all(segment["job"] == job for c in chunks for segment in c["segments"])
    stored = row(job)
    assert (stored.state, stored.upload_id, stored.block_count) == (UPLOADING, job["upload_id"], 8)
    assert (stored.dag_id, stored.run_id) == ("test_dag", "test-run")


def test_default_blocks_are_equal_and_under_three_megabytes(sandbox, sample_video, task_context):
    """Lazada recommends blocks under 3 MB; the default fills every wave of the 8 blocks in flight (a 7 MB
    file is still one chunk) as long as blocks stay at least 1 MB."""
    context = task_context()
    init(context, sample_video(9_000_000))
    job = job_of(context)
    assert job["block_size"] < 3_000_000
    assert row(job).block_count == 8 and job["block_size"] * 8 >= 9_000_000


@pytest.mark.parametrize(
    ("setup", "options", "fragment"),
    [
        ("missing", {}, "missing.mp4: no such file"),
        ("empty", {}, "is empty (0 bytes); Lazada needs 1 to 99,999,999 bytes"),
        ("huge", {}, "is 100,000,000 bytes; Lazada takes files under 100,000,000 bytes"),
        ("text", {}, "not an MP4/MOV"),
        ("video", {"title": " "}, "the video title is missing"),
        ("video", {"cover_url": ""}, "is not an http(s) URL"),
        ("video", {"cover_url": "cover.png"}, "is not an http(s) URL"),
        ("video", {"block_size": 10_000_001}, "block size 10,000,001 is outside 1..10,000,000 bytes"),
        ("video", {"block_size": "big"}, "block_size 'big' is not a whole number"),
    ],
)
def test_bad_input_fails_before_any_api_call(
    sandbox, tmp_path, sample_video, task_context, setup, options, fragment
):
    paths = {
        "missing": tmp_path / "missing.mp4",
        "empty": tmp_path / "empty.mp4",
        "huge": tmp_path / "huge.mp4",
        "text": tmp_path / "notes.mp4",
    }
    if setup == "empty":
        paths["empty"].write_bytes(b"")
    elif setup == "huge":
        with paths["huge"].open("wb") as handle:
            handle.truncate(100_000_000)
    elif setup == "text":
        paths["text"].write_text("not a video")
    source = sample_video(5000) if setup == "video" else paths[setup]
    context = task_context()
    with pytest.raises(AirflowFailException) as refused:
        init(context, source, **options)
    assert fragment in str(refused.value)
    assert sandbox.backend.request_counts == {}
    assert (None, "job") not in context["ti"].xcoms
    assert UploadLedger().all() == []


def test_too_many_chunks_for_max_map_length(sandbox, sample_video, task_context, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")
    with pytest.raises(
        AirflowFailException, match=r"3 chunk tasks are more than \[core\] max_map_length \(2\)"
    ):
        init(task_context(), sample_video(5000), block_size=1000, chunks=3)
    assert sandbox.backend.request_counts == {}


def test_unknown_connection_and_wrong_secret(
    lazada_sandbox, lazada_connection, ledger_connection, sample_video, task_context
):
    ledger_connection("sqlite")
    source = sample_video(5000)
    with pytest.raises(AirflowNotFoundException, match="lazada_nowhere"):
        init(task_context(), source, lazada_conn_id="lazada_nowhere")
    lazada_connection(lazada_sandbox, password="not-the-secret")
    with pytest.raises(LazadaApiError, match="IncompleteSignature: The request signature does not conform"):
        init(task_context(), source)


# ---------------------------------------------------------------------- chunks, commit


def test_every_block_once_and_the_last_chunk_commits(sandbox, sample_video, task_context):
    """The chunk that delivers the last block commits; the commit task then only reads the ledger."""
    path = sample_video(800_000, seed=2)
    context = task_context()
    first, second = init(context, path, block_size=100_000, chunks=2)
    job = job_of(context)
    parts = [send(context, first)]
    assert COMMIT not in sandbox.backend.request_counts  # half the blocks: nothing to commit yet
    assert row(job).state == UPLOADING
    parts.append(send(context, second))
    assert sorted(blocks_sent(sandbox)) == list(range(8)) and count(sandbox, UPLOAD) == 8
    assert count(sandbox, COMMIT) == 1
    assert [p["partNumber"] for p in parts[0][job["upload_id"]]] == [1, 2, 3, 4]
    assert [p["partNumber"] for p in parts[1][job["upload_id"]]] == [5, 6, 7, 8]
    stored = row(job)
    assert stored.state == COMMITTED and stored.video_id
    assert UploadLedger().acknowledged("lazada", job["upload_id"]) == {}  # acks go once committed
    video = sandbox.backend.snapshot()["videos"][stored.video_id]
    assert (video["md5"], video["title"], video["size"]) == (md5(path), "Red dress", 800_000)
    assert commit(context, job, list(reversed(parts))) == stored.video_id
    assert count(sandbox, COMMIT) == 1


def test_an_older_runs_chunk_never_commits_an_upload_a_newer_run_replaced(
    sandbox, sample_video, task_context
):
    """A chunk task of an old run, cleared and run again after a newer run started a new upload of the same
    content, sends its blocks but leaves the commit to the newer run."""
    path = sample_video(800_000, seed=3)
    old = task_context(run_id="old")
    (chunk,) = init(old, path, block_size=100_000, chunks=1)
    entry = row(job_of(old))
    UploadLedger().record(entry, upload_id="newer-upload-id")  # what a newer run's init leaves
    with pytest.raises(AirflowFailException, match="replaced by upload newer-upload-id"):
        commit(old, job_of(old), [send(old, chunk)])
    assert COMMIT not in sandbox.backend.request_counts
    assert row(job_of(old)).upload_id == "newer-upload-id"


def test_chunk_label_names_its_blocks_and_size(sandbox, sample_video, task_context):
    chunks = init(task_context(), sample_video(800_000), **SMALL)
    labels = [
        jinja2.Template(task.map_index_template).render(task=task)
        for task in (LazadaUploadChunkOperator(task_id="c", chunk=chunk) for chunk in chunks)
    ]
    assert labels == ["chunk 1/2 · blocks 1–4 · 400 KB", "chunk 2/2 · blocks 5–8 · 400 KB"]


def test_commit_refuses_an_upload_with_blocks_missing(sandbox, sample_video, task_context):
    context = task_context()
    first, _ = init(context, sample_video(800_000), **SMALL)
    parts = [send(context, first)]
    with pytest.raises(AirflowFailException, match=r"is missing block\(s\) \[5, 6, 7, 8\] of 8"):
        commit(context, job_of(context), parts)
    with pytest.raises(AirflowFailException, match="the video title is missing"):
        commit(context, {**job_of(context), "title": " "}, parts)
    assert COMMIT not in sandbox.backend.request_counts
    assert row(job_of(context)).state == UPLOADING


def test_a_99_megabyte_file_in_ten_megabyte_blocks(sandbox, sample_video, task_context):
    path = sample_video(99_000_000, seed=99)
    context = task_context()
    chunks = init(context, path, block_size=10_000_000)
    assert [c["segments"][0]["last"] - c["segments"][0]["first"] + 1 for c in chunks] == [3, 3, 4]
    video_id = commit(context, job_of(context), [send(context, chunk) for chunk in chunks])
    assert count(sandbox, CREATE) == 1 and count(sandbox, UPLOAD) == 10 and count(sandbox, COMMIT) == 1
    stored = sandbox.backend.snapshot()["videos"][video_id]
    assert (stored["size"], stored["md5"]) == (99_000_000, md5(path))


# ----------------------------------------------------------------------------- resume


def test_a_retried_chunk_sends_only_its_missing_blocks(sandbox, sample_video, task_context, monkeypatch):
    path = sample_video(800_000, seed=3)
    context = task_context()
    first, second = init(context, path, **SMALL)
    job = job_of(context)
    send(context, first)
    blocks_time_out_after(sandbox, monkeypatch, successes=2)
    with pytest.raises(LazadaApiError, match="ServiceTimeout"):  # not AirflowFailException: Airflow retries
        send(context, second, hook=fast_retries())
    assert blocks_sent(sandbox) == [0, 1, 2, 3, 4, 5]
    assert sorted(UploadLedger().acknowledged("lazada", job["upload_id"])) == [1, 2, 3, 4, 5, 6]
    assert row(job).state == UPLOADING and COMMIT not in sandbox.backend.request_counts
    since = len(sandbox.backend.request_log)
    parts = send(context, second)  # the task's retry
    assert blocks_sent(sandbox, since) == [6, 7]
    assert [p["partNumber"] for p in parts[job["upload_id"]]] == [5, 6, 7, 8]
    stored = row(job)
    assert stored.state == COMMITTED and count(sandbox, COMMIT) == 1
    assert sandbox.backend.snapshot()["videos"][stored.video_id]["md5"] == md5(path)


def test_a_new_run_resumes_the_upload_and_sends_only_missing_blocks(
    sandbox, sample_video, task_context, monkeypatch
):
    path = sample_video(800_000, seed=4)
    crashed = task_context(run_id="run-1")
    first, second = init(crashed, path, **SMALL)
    send(crashed, first)
    blocks_time_out_after(sandbox, monkeypatch, successes=1)
    with pytest.raises(LazadaApiError):
        send(crashed, second, hook=fast_retries())
    assert blocks_sent(sandbox) == [0, 1, 2, 3, 4]

    again = task_context(run_id="run-2")
    chunks = init(again, path, **SMALL)
    job = job_of(again)
    assert job["upload_id"] == job_of(crashed)["upload_id"] and count(sandbox, CREATE) == 1
    assert row(job).run_id == "run-2"
    since = len(sandbox.backend.request_log)
    parts = [send(again, chunk) for chunk in chunks]
    assert blocks_sent(sandbox, since) == [5, 6, 7]
    video_id = commit(again, job, parts)
    assert count(sandbox, COMMIT) == 1 and row(job).video_id == video_id
    assert list(sandbox.backend.snapshot()["videos"]) == [video_id]
    assert sandbox.backend.snapshot()["videos"][video_id]["md5"] == md5(path)


def test_a_source_that_changed_fails_its_job(sandbox, sample_video, task_context):
    path = sample_video(800_000)
    context = task_context()
    first, _ = init(context, path, **SMALL)
    with path.open("ab") as handle:
        handle.write(b"more")
    with pytest.raises(
        AirflowFailException, match="is now 800,004 bytes but the upload was planned for 800,000"
    ):
        send(context, first)
    assert UPLOAD not in sandbox.backend.request_counts
    stored = row(job_of(context))
    assert stored.state == FAILED and "800,004" in stored.reason


# ------------------------------------------------------------------------ never twice


def test_committed_content_is_never_uploaded_again(sandbox, sample_video, task_context):
    path = sample_video(800_000, seed=5)
    _, _, video_id = upload(task_context(run_id="run-1"), path, **SMALL)
    calls = dict(sandbox.backend.request_counts)

    again = task_context(run_id="run-2")
    assert init(again, path, **SMALL) == []
    assert job_of(again)["video_id"] == video_id
    assert commit(again, job_of(again), []) == video_id

    other = task_context(run_id="run-3")
    assert init(other, path, product="item:2", **SMALL) == []
    job = job_of(other)
    assert job["video_id"] == video_id
    assert dict(sandbox.backend.request_counts) == calls  # no init, no block, no commit
    stored = row(job)
    assert (stored.state, stored.video_id) == (COMMITTED, video_id) and "item:1" in stored.reason
    assert list(sandbox.backend.snapshot()["videos"]) == [video_id]


# ------------------------------------------------------------------------ lost commit


def test_a_lost_commit_answer_settles_to_the_same_video(sandbox, sample_video, task_context):
    """The commit ran but its answer was cut: asking again finds the video instead of making a second."""
    path = sample_video(800_000, seed=6)
    context = task_context()
    chunks = init(context, path, **SMALL)
    job = job_of(context)
    sandbox.backend.add_fault("drop", COMMIT)
    parts = [send(context, chunk) for chunk in chunks]
    videos = sandbox.backend.snapshot()["videos"]
    assert len(videos) == 1 and count(sandbox, COMMIT) == 2
    (video_id,) = videos
    assert (row(job).state, row(job).video_id) == (COMMITTED, video_id)
    assert commit(context, job, parts) == video_id and count(sandbox, COMMIT) == 2


def test_the_commit_task_settles_what_the_chunk_could_not(sandbox, sample_video, task_context):
    """The commit's answer is cut and its repeat meets a gateway error page: the chunk task leaves the
    question to the commit task, which asks once more."""
    context = task_context()
    chunks = init(context, sample_video(800_000, seed=7), **SMALL)
    job = job_of(context)
    sandbox.backend.add_fault("drop", COMMIT)
    sandbox.backend.add_fault("http502", COMMIT)
    parts = [send(context, chunk) for chunk in chunks]
    assert row(job).state == COMMIT_UNKNOWN and count(sandbox, COMMIT) == 2
    (video_id,) = sandbox.backend.snapshot()["videos"]
    assert commit(context, job, parts) == video_id
    assert (row(job).state, row(job).video_id) == (COMMITTED, video_id)
    assert count(sandbox, COMMIT) == 3 and len(sandbox.backend.snapshot()["videos"]) == 1


def test_a_repeat_whose_answer_is_cut_too_leaves_the_commit_unknown(sandbox, sample_video, task_context):
    """Two lost answers in a row (the emulator's ``drop`` twice): the repeat's "already committed" never
    arrives, so the chunk task cannot know and leaves the row ``commit_unknown`` for the commit task."""
    context = task_context()
    chunks = init(context, sample_video(800_000, seed=13), **SMALL)
    sandbox.backend.add_fault("drop", COMMIT, count=2)
    parts = [send(context, chunk) for chunk in chunks]
    assert count(sandbox, COMMIT) == 2 and sandbox.backend.faults == []
    assert row(job_of(context)).state == COMMIT_UNKNOWN
    (video_id,) = sandbox.backend.snapshot()["videos"]
    assert commit(context, job_of(context), parts) == video_id and count(sandbox, COMMIT) == 3


def test_a_gateway_error_page_before_the_commit_ran(sandbox, sample_video, task_context):
    """A 502 page is no answer either; the repeat is then the commit that makes the video."""
    context = task_context()
    chunks = init(context, sample_video(800_000, seed=8), **SMALL)
    sandbox.backend.add_fault("http502", COMMIT)
    parts = [send(context, chunk) for chunk in chunks]
    (video_id,) = sandbox.backend.snapshot()["videos"]
    assert count(sandbox, COMMIT) == 2 and row(job_of(context)).video_id == video_id
    assert commit(context, job_of(context), parts) == video_id


def commit_nobody_can_settle(sandbox, context, path):
    """The first chunk sent; the commit the second chunk sends will lose its answer, and its repeat will
    answer neither a video nor "already committed". Returns the job and the second chunk."""
    first, second = init(context, path, **SMALL)
    job = job_of(context)
    send(context, first)
    sandbox.backend.add_fault("drop", COMMIT)
    sandbox.backend.add_fault("FAIL_TO_VALIDATE", COMMIT)
    return job, second


def test_a_commit_nobody_can_settle_needs_attention(sandbox, sample_video, task_context):
    """The answer is lost and the repeat answers neither a video nor "already committed": a person must
    look. The task fails without retry and no later run uploads the content again."""
    path = sample_video(800_000, seed=9)
    context = task_context()
    job, second = commit_nobody_can_settle(sandbox, context, path)
    with pytest.raises(AirflowFailException, match=job["upload_id"]):
        send(context, second)
    stored = row(job)
    assert stored.state == NEEDS_ATTENTION and job["upload_id"] in stored.reason
    assert "FAIL_TO_VALIDATE" in stored.reason and count(sandbox, COMMIT) == 2
    with pytest.raises(AirflowFailException, match="needs_attention"):
        commit(context, job, [])
    calls = dict(sandbox.backend.request_counts)
    with pytest.raises(AirflowFailException, match=job["upload_id"]):
        init(task_context(run_id="run-2"), path, **SMALL)
    assert dict(sandbox.backend.request_counts) == calls
    assert row(job).state == NEEDS_ATTENTION


@pytest.mark.parametrize("choice", ["adopt", "upload-again"])
def test_a_person_settles_a_needs_attention_row_with_the_cli(
    sandbox, sample_video, task_context, capsys, choice
):
    """``media-upload decide``: adopting the video the seller found, or choosing a fresh upload."""
    from media_upload.cli import main as cli

    path = sample_video(800_000, seed=10)
    context = task_context()
    job, second = commit_nobody_can_settle(sandbox, context, path)
    with pytest.raises(AirflowFailException, match="media-upload decide item:1"):
        send(context, second)
    assert cli(["list", "--state", "needs_attention"]) == 0
    listed = capsys.readouterr().out
    assert "item:1" in listed and job["upload_id"] in listed and "FAIL_TO_VALIDATE" in listed
    assert cli(["decide", "item:404", "--upload-again"]) == 2  # no such row: nothing changes
    (made,) = sandbox.backend.snapshot()["videos"]
    if choice == "adopt":
        assert cli(["decide", "item:1", "--video-id", made]) == 0
        assert row(job).state == COMMITTED and row(job).video_id == made
        calls = dict(sandbox.backend.request_counts)
        assert init(task_context(run_id="run-2"), path, **SMALL) == []  # nothing left to send
        assert dict(sandbox.backend.request_counts) == calls
    else:
        assert cli(["decide", "item:1", "--upload-again"]) == 0
        assert row(job).state == FAILED
        context = task_context(run_id="run-2")
        _, _, video_id = upload(context, path, **SMALL)
        assert video_id != made and row(job).state == COMMITTED
    assert cli(["decide", "item:1", "--upload-again"]) == 2  # settled: no needs-attention row is left


# ------------------------------------------------------------------------------ audit


@pytest.fixture
def quick_audit(make_lazada_sandbox, lazada_connection, ledger_connection):
    """An emulator whose videos reach their final state as soon as they are committed."""
    sandbox = make_lazada_sandbox(audit_seconds=0)
    lazada_connection(sandbox)
    ledger_connection("sqlite")
    return sandbox


def record_audit(context: dict, job: dict, video_id: str | None) -> str:
    context["ti"].xcoms[("commit", "return_value")] = video_id
    context["ti"].xcoms[("init", "job")] = job
    operator = LazadaRecordAuditOperator(task_id="record_audit", init_task_id="init", commit_task_id="commit")
    return operator.execute(context)


def test_a_rejected_video_is_never_uploaded_again(quick_audit, sample_video, task_context):
    path = sample_video(800_000, seed=10)
    context = task_context()
    job, _, video_id = upload(context, path, title="[AUDIT_FAILED] Red dress", **SMALL)
    assert record_audit(context, job, video_id) == "AUDIT_FAILED"
    stored = row(job)
    assert (stored.state, stored.video_id) == (REJECTED, video_id) and "AUDIT_FAILED" in stored.reason
    calls = dict(quick_audit.backend.request_counts)
    with pytest.raises(AirflowFailException, match="rejected before"):
        init(task_context(run_id="run-2"), path, **SMALL)
    assert dict(quick_audit.backend.request_counts) == calls


def test_record_audit_leaves_a_passed_video_alone(quick_audit, sample_video, task_context):
    context = task_context()
    job, _, video_id = upload(context, sample_video(800_000, seed=11), **SMALL)
    assert record_audit(context, job, video_id) == "AUDIT_SUCCESS"
    assert row(job).state == COMMITTED
    with pytest.raises(AirflowSkipException):
        record_audit(task_context(), job, None)


# ---------------------------------------------------------------------------- products


@pytest.fixture
def product(sandbox, lazop):
    """An item with two SKUs, created through the official client."""
    driver = LazopDriver(lazop, sandbox)
    image = driver.call("/image/upload", files={"image": PNG})["data"]["image"]["url"]
    payload = sample_product_payload(image, "shoe-41", "shoe-42", name="Shoe")
    data = driver.call("/product/create", {"payload": json.dumps(payload)})["data"]
    return {
        "item_id": str(data["item_id"]),
        "sku_ids": [str(s["sku_id"]) for s in data["sku_list"]],
        "image": image,
    }


def finish_audit(sandbox, video_id: str, outcome: str = "AUDIT_SUCCESS") -> None:
    requests.post(
        f"{sandbox.url}/_sandbox/lazada/videos/{video_id}/outcome",
        json={"outcome": outcome, "finish_now": True},
    ).raise_for_status()


def audited_video(sandbox, lazop, sample_video, title: str = "Shoe") -> str:
    video_id = LazopDriver(lazop, sandbox).upload(sample_video(3000), title=title)
    finish_audit(sandbox, video_id)
    return video_id


def attach(context: dict, **options) -> dict:
    return LazadaUpdateProductVideoOperator(task_id="attach", **options).execute(context)


def test_attach_names_every_sku_when_none_given_and_is_idempotent(
    sandbox, lazop, sample_video, product, task_context
):
    video_id = audited_video(sandbox, lazop, sample_video)
    result = attach(task_context(), item_id=product["item_id"], video_id=video_id)
    assert result["sku_ids"] == product["sku_ids"] and result["previous_video_id"] is None
    assert sandbox.backend.snapshot()["products"][product["item_id"]]["attributes"]["video"] == video_id
    again = attach(
        task_context(), item_id=product["item_id"], video_id=video_id, sku_ids=",".join(product["sku_ids"])
    )
    assert again["previous_video_id"] == video_id
    assert sandbox.backend.request_counts["/product/update"] == 1


def test_attaching_an_uploaded_video_marks_its_ledger_row(sandbox, sample_video, product, task_context):
    context = task_context()
    job, _, video_id = upload(context, sample_video(800_000, seed=12), product=f"item:{product['item_id']}")
    finish_audit(sandbox, video_id)
    attach(context, item_id=product["item_id"], video_id=video_id)
    assert (row(job).state, row(job).video_id) == (ATTACHED, video_id)
    assert sandbox.backend.snapshot()["products"][product["item_id"]]["attributes"]["video"] == video_id


def test_attach_replaces_then_removes(sandbox, lazop, sample_video, product, task_context):
    first, second = audited_video(sandbox, lazop, sample_video), audited_video(sandbox, lazop, sample_video)
    attach(task_context(), item_id=product["item_id"], video_id=first, sku_ids=product["sku_ids"][0])
    assert attach(task_context(), item_id=product["item_id"], video_id=second)["previous_video_id"] == first
    removed = attach(task_context(), item_id=product["item_id"], remove_video=True)
    assert removed["previous_video_id"] == second and removed["video_id"] is None
    assert "video" not in sandbox.backend.snapshot()["products"][product["item_id"]]["attributes"]


def test_attach_refuses_a_video_not_yet_audited(
    lazop, make_lazada_sandbox, lazada_connection, ledger_connection, sample_video, task_context
):
    sandbox = make_lazada_sandbox(audit_seconds=3600)
    lazada_connection(sandbox)
    ledger_connection("sqlite")
    driver = LazopDriver(lazop, sandbox)
    image = driver.call("/image/upload", files={"image": PNG})["data"]["image"]["url"]
    payload = json.dumps(sample_product_payload(image, "cap", name="Cap"))
    created = LazadaCreateProductOperator(task_id="create", payload=payload).execute(task_context())
    video_id = driver.upload(sample_video(3000))
    with pytest.raises(LazadaApiError) as refused:
        attach(task_context(), item_id=created["item_id"], video_id=video_id)
    assert refused.value.code == "309"
    assert "video" not in sandbox.backend.snapshot()["products"][str(created["item_id"])]["attributes"]


def test_attach_needs_a_video_or_removal(sandbox, task_context):
    with pytest.raises(AirflowFailException, match="no video_id to attach"):
        attach(task_context(), item_id="1")
    with pytest.raises(AirflowFailException, match="no item_id"):
        attach(task_context(), item_id=" ", video_id="3")
    assert sandbox.backend.request_counts == {}


def test_create_product_with_the_video(sandbox, lazop, sample_video, product, task_context):
    video_id = audited_video(sandbox, lazop, sample_video)
    payload = sample_product_payload(product["image"], "boot-1", name="Boot")
    data = LazadaCreateProductOperator(task_id="create", payload=payload, video_id=video_id).execute(
        task_context()
    )
    assert sandbox.backend.snapshot()["products"][str(data["item_id"])]["attributes"]["video"] == video_id
    with pytest.raises(AirflowFailException, match="JSON payload"):
        LazadaCreateProductOperator(task_id="create", payload="<Request/>", video_id=video_id).execute(
            task_context()
        )
