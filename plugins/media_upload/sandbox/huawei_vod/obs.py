"""The OBS bucket behind the VOD emulator's signed URLs: multipart uploads and objects on disk.

HTTP-free like :mod:`.backend`; :mod:`.app` routes path-style bucket requests here. Every request is
checked against the V2 query signature of a presigned URL, as OBS checks the URLs VOD hands out.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from media_upload.protocols.huawei_vod import MAX_PARTS, obs_signature, obs_string_to_sign, parse_obs_query
from media_upload.sandbox.core import COPY_CHUNK, receive_file
from media_upload.sandbox.huawei_vod.errors import ObsErrorReply
from media_upload.sandbox.server import CutOffResponse, gateway_page

if TYPE_CHECKING:
    from media_upload.sandbox.huawei_vod.backend import HuaweiVodBackend

log = logging.getLogger(__name__)
_SPOOL = 8 * 1024 * 1024

OBS_OPERATIONS = (
    "InitiateMultipartUpload", "UploadPart", "ListParts", "CompleteMultipartUpload", "AbortMultipartUpload",
    "PutObject", "GetObject",
)  # fmt: skip


@dataclass
class StoredObject:
    size: int
    md5: str
    etag: str
    stored_at: float


@dataclass
class Part:
    size: int
    md5: str


@dataclass
class MultipartUpload:
    upload_id: str
    bucket: str
    key: str
    initiated_at: float
    content_type: str
    parts: dict[int, Part] = field(default_factory=dict)
    state: str = "open"  # open, completed, aborted


class ObsBucket:
    """The tenant's bucket (``config.bucket``): objects, and multipart uploads with their parts."""

    def __init__(self, owner: HuaweiVodBackend) -> None:
        self.owner = owner
        self.config = owner.config
        self.clock = owner.clock
        self._lock = owner._lock
        self.data_dir = owner.data_dir
        (self.data_dir / "objects").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "multipart").mkdir(exist_ok=True)
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.uploads: dict[str, MultipartUpload] = {}

    @property
    def public_url(self) -> str:
        return str(self.owner.public_url)

    def authenticate(
        self,
        method: str,
        bucket: str,
        key: str,
        query: list[tuple[str, str | None]],
        headers: Mapping[str, str],
    ) -> None:
        """The V2 query signature of a presigned URL, recomputed from what arrived; and its expiry."""
        params = {name: value or "" for name, value in query}
        if bucket != self.config.bucket:
            raise ObsErrorReply(404, "NoSuchBucket", f"The specified bucket {bucket} does not exist")
        if not {"AWSAccessKeyId", "Expires", "Signature"} <= set(params):
            raise ObsErrorReply(403, "AccessDenied", "Anonymous access is forbidden for this operation")
        if params["AWSAccessKeyId"] != self.config.ak:
            raise ObsErrorReply(
                403, "InvalidAccessKeyId", "The OBS access key Id you provided does not exist in our records."
            )
        if not params["Expires"].isdigit():
            raise ObsErrorReply(403, "AccessDenied", "Expires must be epoch seconds")
        lowered = {name.lower(): value for name, value in headers.items()}
        string_to_sign = obs_string_to_sign(
            method,
            lowered.get("content-md5", ""),
            lowered.get("content-type", ""),
            params["Expires"],
            bucket,
            key,
            query,
        )
        if not secrets.compare_digest(params["Signature"], obs_signature(self.config.sk, string_to_sign)):
            raise ObsErrorReply(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
        if int(params["Expires"]) < self.clock():
            raise ObsErrorReply(403, "AccessDenied", "Request has expired")

    def object_path(self, bucket: str, key: str) -> Path:
        """Where an object's bytes are kept: named by a digest of bucket and key, so no key (``../x``,
        an absolute path) can reach outside the data folder."""
        return self.data_dir / "objects" / hashlib.sha256(f"{bucket}\0{key}".encode()).hexdigest()

    @staticmethod
    def _check_digest(partial: Path, md5: str, content_md5: str | None) -> None:
        if content_md5 is not None and content_md5 != b64_of_hex(md5):
            partial.unlink()
            raise ObsErrorReply(
                400, "BadDigest", "The Content-MD5 you specified did not match what we received."
            )

    def initiate_multipart(self, bucket: str, key: str, content_type: str) -> str:
        with self._lock:
            upload_id = unique_hex(self.uploads, lowercase=False)
            self.uploads[upload_id] = MultipartUpload(upload_id, bucket, key, self.clock(), content_type)
        (self.data_dir / "multipart" / upload_id).mkdir()
        return upload_id

    def _open_upload(self, upload_id: str, bucket: str, key: str) -> MultipartUpload:
        with self._lock:
            upload = self.uploads.get(upload_id)
        if upload is None or upload.state != "open" or (upload.bucket, upload.key) != (bucket, key):
            raise ObsErrorReply(
                404,
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            )
        return upload

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: str,
        stream: IO[bytes],
        content_md5: str | None,
    ) -> str:
        if not part_number.isdigit() or not 1 <= int(part_number) <= MAX_PARTS:
            raise ObsErrorReply(
                400, "InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive"
            )
        upload = self._open_upload(upload_id, bucket, key)
        number = int(part_number)
        target = self.data_dir / "multipart" / upload_id / f"{number}.part"
        partial, size, md5 = receive_file(stream, target)
        self._check_digest(partial, md5, content_md5)
        with self._lock:
            partial.replace(target)
            upload.parts[number] = Part(size, md5)
        return f'"{md5}"'

    def list_parts(self, bucket: str, key: str, upload_id: str, query: Mapping[str, str]) -> str:
        upload = self._open_upload(upload_id, bucket, key)
        marker_text, max_text = query.get("part-number-marker") or "0", query.get("max-parts") or "1000"
        if not marker_text.isdigit() or not max_text.isdigit() or int(max_text) < 1:
            raise ObsErrorReply(
                400,
                "InvalidArgument",
                "max-parts must be a positive integer and part-number-marker a non-negative one",
            )
        marker, max_parts = int(marker_text), min(int(max_text), 1000)
        numbers = sorted(n for n in upload.parts if n > marker)
        page, truncated = numbers[:max_parts], len(numbers) > max_parts
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><LastModified>{_iso(upload.initiated_at)}</LastModified>"
            f'<ETag>"{upload.parts[n].md5}"</ETag><Size>{upload.parts[n].size}</Size></Part>'
            for n in page
        )
        return _xml(
            "ListPartsResult",
            f"<Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{upload_id}</UploadId>"
            f"<Initiator><ID>{self.config.ak}</ID></Initiator><Owner><ID>{self.config.project_id}</ID></Owner>"
            f"<StorageClass>STANDARD</StorageClass><PartNumberMarker>{marker}</PartNumberMarker>"
            f"<NextPartNumberMarker>{page[-1] if page else marker}</NextPartNumberMarker><MaxParts>{max_parts}</MaxParts>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{parts}",
        )

    def complete_multipart(self, bucket: str, key: str, upload_id: str, body: bytes) -> str:
        upload = self._open_upload(upload_id, bucket, key)
        listed = _parse_complete_body(body)
        numbers = [number for number, _ in listed]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise ObsErrorReply(
                400,
                "InvalidPartOrder",
                "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
            )
        for number, etag in listed:
            part = upload.parts.get(number)
            if part is None or etag.strip('"') != part.md5:
                raise ObsErrorReply(
                    400,
                    "InvalidPart",
                    f"One or more of the specified parts could not be found or its ETag did not match (part {number}).",
                )
        for number, _ in listed[:-1]:
            if upload.parts[number].size < self.config.min_part_bytes:
                raise ObsErrorReply(
                    400,
                    "EntityTooSmall",
                    f"Part {number} is smaller than the minimum allowed size of {self.config.min_part_bytes} bytes.",
                )
        target = self.object_path(bucket, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = self.data_dir / "multipart" / upload_id
        digest = hashlib.md5()
        size = 0
        with target.open("wb") as out:
            for number in numbers:
                with (folder / f"{number}.part").open("rb") as part_file:
                    while chunk := part_file.read(COPY_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        combined = hashlib.md5(b"".join(bytes.fromhex(upload.parts[n].md5) for n in numbers)).hexdigest()
        etag = f'"{combined}-{len(numbers)}"'
        with self._lock:
            self.objects[(bucket, key)] = StoredObject(size, digest.hexdigest(), etag, self.clock())
        self.drop_upload(upload, "completed")
        return _xml(
            "CompleteMultipartUploadResult",
            f"<Location>{self.public_url}/{bucket}/{key}</Location><Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>{etag}</ETag>",
        )

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        self.drop_upload(self._open_upload(upload_id, bucket, key), "aborted")

    def put_object(self, bucket: str, key: str, stream: IO[bytes], content_md5: str | None) -> str:
        target = self.object_path(bucket, key)
        partial, size, md5 = receive_file(stream, target)
        self._check_digest(partial, md5, content_md5)
        partial.replace(target)
        etag = f'"{md5}"'
        with self._lock:
            self.objects[(bucket, key)] = StoredObject(size, md5, etag, self.clock())
        return etag

    def drop_upload(self, upload: MultipartUpload, state: str) -> None:
        with self._lock:
            upload.state = state
        shutil.rmtree(self.data_dir / "multipart" / upload.upload_id, ignore_errors=True)

    def drop_object(self, bucket: str, key: str) -> None:
        with self._lock:
            self.objects.pop((bucket, key), None)
        self.object_path(bucket, key).unlink(missing_ok=True)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                upload_id: {
                    "key": u.key,
                    "state": u.state,
                    "parts": {n: {"size": p.size, "md5": p.md5} for n, p in sorted(u.parts.items())},
                }
                for upload_id, u in self.uploads.items()
            }


def unique_hex(taken: Mapping[str, Any], lowercase: bool) -> str:
    while True:
        value = secrets.token_hex(16)
        value = value if lowercase else value.upper()
        if value not in taken:
            return value


def b64_of_hex(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _xml(root: str, inner: str) -> str:
    namespace = "http://obs.myhwclouds.com/doc/2015-06-30/"
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><{root} xmlns="{namespace}">{inner}</{root}>'
    )


def _parse_complete_body(body: bytes) -> list[tuple[int, str]]:
    """The ``(PartNumber, ETag)`` pairs of a CompleteMultipartUpload body, namespace-agnostic."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise ObsErrorReply(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        ) from None
    parts = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Part":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in element}
        if not fields.get("PartNumber", "").isdigit() or "ETag" not in fields:
            raise ObsErrorReply(400, "MalformedXML", "Each Part needs a PartNumber and an ETag.")
        parts.append((int(fields["PartNumber"]), fields["ETag"]))
    if root.tag.rsplit("}", 1)[-1] != "CompleteMultipartUpload" or not parts:
        raise ObsErrorReply(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    return parts


def add_obs_routes(app: FastAPI, backend: HuaweiVodBackend) -> None:
    """The bucket's path-style routes (``/{bucket}/{key}``): add them last, they match every path."""

    @app.api_route("/{bucket}/{key:path}", methods=["GET", "PUT", "POST", "DELETE"], include_in_schema=False)
    async def obs(bucket: str, key: str, request: Request) -> Response:
        request_id, started = secrets.token_hex(16), backend.clock()
        query = parse_obs_query(request.url.query)
        params = {name: value or "" for name, value in query}
        method = request.method
        operation = {
            ("POST", True, False): "InitiateMultipartUpload",
            ("PUT", False, True): "UploadPart",
            ("GET", False, True): "ListParts",
            ("POST", False, True): "CompleteMultipartUpload",
            ("DELETE", False, True): "AbortMultipartUpload",
            ("PUT", False, False): "PutObject",
        }.get((method, "uploads" in params, "uploadId" in params), "Unsupported")
        headers = {"x-obs-request-id": request_id, "x-obs-id-2": request_id}
        drop, chance = False, backend.dice.roll(operation)
        if chance in ("unavailable", "reset"):
            backend.log_request(method, str(request.url), operation, 503, chance, started)
            return gateway_page(503) if chance == "unavailable" else CutOffResponse()
        try:
            if chance == "throttle" or backend.limit_calls(f"bucket {bucket}", backend.config.obs_limit):
                raise ObsErrorReply(503, "SlowDown", "Please reduce your request rate.")
            if operation == "Unsupported":
                raise ObsErrorReply(
                    405, "MethodNotAllowed", f"{method} is not supported on this resource by the sandbox"
                )
            backend.obs.authenticate(method, bucket, key, query, request.headers)
            if (error := backend.injected_error(operation)) is not None:
                raise error
            drop = backend.take_fault(operation, ["drop"]) is not None or chance == "drop"
            content_md5 = request.headers.get("content-md5")
            if operation in ("UploadPart", "PutObject"):
                with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as spool:
                    async for chunk in request.stream():
                        spool.write(chunk)
                    spool.seek(0)
                    if operation == "UploadPart":
                        etag = await run_in_threadpool(
                            backend.obs.upload_part,
                            bucket,
                            key,
                            params["uploadId"],
                            params.get("partNumber", ""),
                            spool,
                            content_md5,
                        )
                    else:
                        etag = await run_in_threadpool(
                            backend.obs.put_object, bucket, key, spool, content_md5
                        )
                response: Response = Response(status_code=200, headers={**headers, "ETag": etag})
            elif operation == "InitiateMultipartUpload":
                upload_id = backend.obs.initiate_multipart(
                    bucket, key, request.headers.get("content-type", "")
                )
                xml = (
                    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                    '<InitiateMultipartUploadResult xmlns="http://obs.myhwclouds.com/doc/2015-06-30/">'
                    f"<Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{upload_id}</UploadId>"
                    "</InitiateMultipartUploadResult>"
                )
                response = Response(xml, media_type="application/xml", headers=headers)
            elif operation == "ListParts":
                xml = backend.obs.list_parts(bucket, key, params["uploadId"], params)
                response = Response(xml, media_type="application/xml", headers=headers)
            elif operation == "CompleteMultipartUpload":
                body = await request.body()
                xml = await run_in_threadpool(
                    backend.obs.complete_multipart, bucket, key, params["uploadId"], body
                )
                response = Response(xml, media_type="application/xml", headers=headers)
            else:
                backend.obs.abort_multipart(bucket, key, params["uploadId"])
                response = Response(status_code=204, headers=headers)
            code = None
        except ObsErrorReply as exc:
            code = exc.code
            response = Response(
                exc.xml(f"/{bucket}/{key}", request_id),
                status_code=exc.status,
                media_type="application/xml",
                headers=headers,
            )
        except Exception:
            log.exception("sandbox failure in %s", operation)
            code = "InternalError"
            failure = ObsErrorReply(
                500, "InternalError", "We encountered an internal error. Please try again."
            )
            response = Response(
                failure.xml(f"/{bucket}/{key}", request_id), status_code=500, media_type="application/xml"
            )
        backend.log_request(method, str(request.url), operation, response.status_code, code, started)
        if chance == "slow":
            await asyncio.sleep(backend.dice.slow_seconds)
        return CutOffResponse() if drop and code is None else response
