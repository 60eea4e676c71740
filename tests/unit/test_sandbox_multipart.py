"""The emulators' multipart reader: files go straight into the data folder, hashed, and nothing is left
behind when a body is refused."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import requests

from media_upload.sandbox.core import FormError, ReceivedForm, receive_multipart


def encoded(fields: dict[str, str], files: dict[str, tuple[str | None, bytes]]) -> tuple[str, bytes]:
    prepared = requests.Request("POST", "http://x/", data=fields, files=files).prepare()
    assert isinstance(prepared.body, bytes)
    return prepared.headers["Content-Type"], prepared.body


async def chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for offset in range(0, len(body), size):
        yield body[offset : offset + size]


def read(content_type: str, body: bytes, folder: Path, **options: object) -> ReceivedForm:
    options.setdefault("max_bytes", 10**7)
    return asyncio.run(receive_multipart(content_type, chunks(body), folder, **options))  # type: ignore[arg-type]


def test_fields_and_files_with_their_size_and_md5(tmp_path):
    part = bytes(range(256)) * 100
    content_type, body = encoded({"part_seq": "3"}, {"part_content": ("p.bin", part)})
    form = read(content_type, body, tmp_path)
    assert form.fields == {"part_seq": "3"}
    received = form.files["part_content"]
    assert (received.size, received.md5, received.filename) == (
        len(part),
        hashlib.md5(part).hexdigest(),
        "p.bin",
    )
    assert received.path.parent == tmp_path and received.path.read_bytes() == part
    form.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_named_file_field_needs_no_filename_and_a_repeat_replaces_the_first(tmp_path):
    content_type, body = encoded({"part_content": "text bytes"}, {"other": ("o", b"")})
    form = read(content_type, body, tmp_path, file_fields=("part_content",))
    assert form.files["part_content"].filename is None and form.fields == {}
    assert form.files["part_content"].path.read_bytes() == b"text bytes"
    boundary = b"b0undary"
    repeated = (
        b"".join(
            b"--"
            + boundary
            + b'\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\n'
            + data
            + b"\r\n"
            for data in (b"first", b"second")
        )
        + b"--"
        + boundary
        + b"--\r\n"
    )
    form = read("multipart/form-data; boundary=b0undary", repeated, tmp_path / "r")
    assert form.files["f"].path.read_bytes() == b"second"
    assert len(list((tmp_path / "r").iterdir())) == 1


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/json", b"{}", "not multipart/form-data"),
        ("multipart/form-data", b"--x\r\n", "not multipart/form-data"),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n",
            "no name",
        ),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\ncut',
            "closing boundary",
        ),
    ],
)
def test_refused_bodies_leave_no_file(tmp_path, content_type, body, message):
    with pytest.raises(FormError, match=message) as refused:
        read(content_type, body, tmp_path)
    assert not refused.value.too_large
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_a_body_over_the_limit_is_refused_as_too_large(tmp_path):
    content_type, body = encoded({}, {"f": ("a", bytes(50_000))})
    with pytest.raises(FormError, match="over 10000 bytes") as refused:
        read(content_type, body, tmp_path, max_bytes=10_000)
    assert refused.value.too_large
    assert list(tmp_path.iterdir()) == []
