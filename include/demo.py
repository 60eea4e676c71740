"""`make demo`: start the Lazada emulator and upload a sample video through the provider's hook."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow-demo"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from media_upload.hooks.lazada import LazadaHook  # noqa: E402
from media_upload.sandbox.lazada import LazadaSandbox, LazadaSandboxConfig  # noqa: E402
from media_upload.sandbox.sample_media import write_sample_mp4  # noqa: E402

BLOCK = 2 * 1024 * 1024


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="media-upload-demo-"))
    video = write_sample_mp4(work / "demo.mp4", 5_000_000, seed=42)
    with LazadaSandbox(LazadaSandboxConfig(audit_seconds=3, data_dir=work / "lazada")) as sandbox:
        os.environ["AIRFLOW_CONN_LAZADA_DEFAULT"] = json.dumps(sandbox.airflow_connection())
        hook = LazadaHook()
        started = time.monotonic()
        size = video.stat().st_size
        count = -(-size // BLOCK)
        upload_id = hook.init_create_video(video.name, size)
        parts = []
        with video.open("rb") as source:
            for number in range(count):
                e_tag = hook.upload_video_block(upload_id, number, count, source.read(BLOCK))
                parts.append({"partNumber": number + 1, "eTag": e_tag})
        video_id = hook.complete_create_video(
            upload_id, parts, "Demo video", "https://sg-live-02.slatic.net/p/demo.png"
        )
        while (state := hook.get_video(video_id)["state"]) not in (
            "AUDIT_SUCCESS",
            "AUDIT_FAILED",
            "TRANSCODE_FAILED",
        ):
            time.sleep(0.5)
        stored = sandbox.backend.snapshot()["videos"][video_id]
        intact = stored["md5"] == hashlib.md5(video.read_bytes()).hexdigest()
        print(
            f"video {video_id}: {state}; {size} bytes in {count} blocks, "
            f"{'bytes intact' if intact else 'BYTES DIFFER'}, {time.monotonic() - started:.1f} s"
        )
        return 0 if state == "AUDIT_SUCCESS" and intact else 1


if __name__ == "__main__":
    sys.exit(main())
