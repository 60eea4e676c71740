"""A ``multipart/form-data`` body streamed from its fields and one file, for the platforms that take a
block or part as a form file (Lazada's UploadVideoBlock and UploadImage, Shopee's upload_video_part)."""

from __future__ import annotations

import io
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FilePart:
    """A multipart file parameter, never signed (the block of UploadVideoBlock, the image of UploadImage)."""

    field: str
    data: bytes
    filename: str = "file"


class MultipartBody(io.RawIOBase):
    """A ``multipart/form-data`` body streamed from the form fields and the file's bytes as they are.

    ``requests`` would build the whole body in memory, a second copy of every block in flight; this is read
    by the socket in small pieces, so a block costs its own size once.
    """

    def __init__(self, fields: Mapping[str, str], file: FilePart) -> None:
        super().__init__()
        boundary = secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file.field}"; filename="{file.filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._pieces = [
            memoryview(head),
            memoryview(file.data),
            memoryview(f"\r\n--{boundary}--\r\n".encode()),
        ]
        self._length = sum(len(piece) for piece in self._pieces)

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pieces and not len(self._pieces[0]):
            self._pieces.pop(0)
        if not self._pieces:
            return 0
        size = min(len(buffer), len(self._pieces[0]))
        buffer[:size] = self._pieces[0][:size]
        self._pieces[0] = self._pieces[0][size:]
        return size
