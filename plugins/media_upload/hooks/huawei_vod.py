"""The one place that speaks to Huawei Cloud VOD and to the OBS URLs VOD signs.

VOD calls are signed with APIG's ``SDK-HMAC-SHA256`` by :mod:`media_upload.protocols.huawei_vod`, whose
output is tested to equal the official ``huaweicloudsdkcore`` signer's. The official ``VodClient`` is not
used at run time: its async client runs on threads rather than asyncio (the trigger needs aiohttp), it
pins ``pymongo`` and other packages into every worker, and its exceptions and retries would need the same
wrapping anyway. It remains the conformance oracle of the tests.

OBS requests go to the presigned ``sign_str`` URLs verbatim, with exactly the headers that were signed;
a URL that expired or no longer matches is replaced by a fresh authority once.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
import tenacity
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.log import mask_secret

from media_upload.hooks import HUAWEI_VOD_CONN_ID
from media_upload.hooks.base import PlatformHook
from media_upload.hooks.retry import RetryPolicy
from media_upload.masking import mask_text, mask_url
from media_upload.protocols.huawei_vod import canonical_query, md5_base64, resolve_endpoint, sign_request
from media_upload.push import DEFAULT_PUSH_POLL_SECONDS, push_settings

#: "Slow down": refused before the platform acted, so safe to repeat for any call.
THROTTLE_CODES = frozenset({"APIG.0308", "VOD.10127", "SlowDown", "ServiceUnavailable"})
#: Passing backend trouble, repeated only where repeating is harmless.
TRANSIENT_CODES = frozenset({"VOD.10051", "VOD.10052", "InternalError", "RequestTimeout"})
#: OBS refusals that a fresh signed URL cures (an expired or stale ``sign_str``).
STALE_URL_CODES = frozenset({"SignatureDoesNotMatch", "AccessDenied"})


class HuaweiVodError(AirflowException):
    """Base of this hook's errors; ``operation`` names the VOD or OBS operation that failed."""

    def __init__(self, operation: str, description: str) -> None:
        super().__init__(f"Huawei VOD {operation} failed: {description}")
        self.operation = operation


class HuaweiVodApiError(HuaweiVodError):
    """VOD, its API gateway or OBS answered with an error body (JSON for VOD/APIG, XML for OBS)."""

    def __init__(
        self, operation: str, status: int, code: str, message: str, request_id: str | None = None
    ) -> None:
        suffix = f" (request_id {request_id})" if request_id else ""
        super().__init__(operation, f"HTTP {status} {code}: {message}{suffix}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


class HuaweiVodRefusal(HuaweiVodApiError, AirflowFailException):
    """VOD's or OBS's final answer for this request (a refused signature, a bad parameter): sending it
    again cannot help, so the task fails at once."""


def vod_error(
    operation: str, status: int, code: str, message: str, request_id: str | None = None
) -> HuaweiVodApiError:
    """The error for an answer: a :class:`HuaweiVodRefusal` unless it means "slow down", passing trouble,
    or a signed URL a fresh one cures."""
    retry_may_help = (
        code in THROTTLE_CODES | TRANSIENT_CODES | STALE_URL_CODES
        or code == "MissingResult"
        or status in (408, 429)
        or status >= 500
    )
    return (HuaweiVodApiError if retry_may_help else HuaweiVodRefusal)(
        operation, status, code, message, request_id
    )


class HuaweiVodTransportError(HuaweiVodError):
    """No usable answer: connection failure, timeout, or a body that is not VOD's JSON or OBS's XML."""

    def __init__(self, operation: str, description: str, *, retryable: bool, sent: bool = True) -> None:
        super().__init__(operation, description)
        self.retryable = retryable
        self.sent = sent


def is_retryable(exc: BaseException, idempotent: bool) -> bool:
    if isinstance(exc, HuaweiVodApiError):
        if exc.code in THROTTLE_CODES or exc.status == 429:
            return True
        return idempotent and (exc.code in TRANSIENT_CODES or exc.status >= 500 or exc.status == 408)
    if isinstance(exc, HuaweiVodTransportError):
        return exc.retryable and (idempotent or not exc.sent)
    return False


def _throttled(exc: BaseException) -> bool:
    return isinstance(exc, HuaweiVodApiError) and (exc.code in THROTTLE_CODES or exc.status == 429)


@dataclass(frozen=True)
class VodCredentials:
    endpoint: str
    access_key: str
    secret_key: str
    project_id: str
    region: str | None
    #: With ``push``, waits take VOD's event notifications (see media_upload.push), checked with
    #: ``push_secret``, the authentication key of the console's notification settings.
    push: bool = False
    push_poll_seconds: float = DEFAULT_PUSH_POLL_SECONDS
    push_secret: str | None = None

    def __repr__(self) -> str:  # never show the secret key
        return f"VodCredentials(endpoint={self.endpoint!r}, project_id={self.project_id!r})"


@dataclass(frozen=True)
class UploadedPart:
    part_number: int
    etag: str


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_fields(text: str, operation: str) -> dict[str, str]:
    """Top-level child elements of an OBS XML answer, namespace-agnostic."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise HuaweiVodTransportError(
            operation, "OBS answered with a body that is not XML", retryable=False
        ) from None
    return {_local(child.tag): (child.text or "") for child in root}


class HuaweiVodHook(PlatformHook[VodCredentials]):
    """Signed, retried calls to Huawei Cloud VOD and to the OBS URLs it signs, for one project.

    Connection (type ``huawei_vod``): host = VOD endpoint URL or region (``cn-north-4``), login = AK,
    password = SK, extra = ``project_id`` (required) and ``region``; ``push``, ``push_secret`` and
    ``push_poll_seconds`` for VOD's event notifications (see media_upload.push); the HTTP provider's ``proxies``,
    ``verify``, ``cert`` and keep-alive settings (for VOD and OBS alike).

    :param huawei_vod_conn_id: the connection to use.
    :param timeout: seconds to wait for a connection and between bytes of the answer.
    :param max_attempts, backoff_seconds, backoff_max_seconds, throttle_pause_seconds: the
        :class:`~media_upload.hooks.retry.RetryPolicy`; throttling (``APIG.0308``, ``SlowDown``) waits at
        least two seconds, as Huawei's FAQ advises.
    :param keep_alive: ``tcp_keep_alive``, ``tcp_keep_alive_idle``, ``tcp_keep_alive_count``,
        ``tcp_keep_alive_interval`` as ``HttpHook`` takes them; the connection's extras of the same names win.
    """

    conn_name_attr = "huawei_vod_conn_id"
    default_conn_name = HUAWEI_VOD_CONN_ID
    conn_type = "huawei_vod"
    hook_name = "Huawei Cloud VOD"

    def is_throttle(self, exc: BaseException) -> bool:
        return _throttled(exc)

    def __init__(
        self,
        huawei_vod_conn_id: str = default_conn_name,
        *,
        timeout: float = 60.0,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        throttle_pause_seconds: float = 2.0,
        **keep_alive: Any,
    ) -> None:
        policy = RetryPolicy(max_attempts, backoff_seconds, backoff_max_seconds, throttle_pause_seconds)
        super().__init__(huawei_vod_conn_id, timeout=timeout, retry_policy=policy, **keep_alive)
        self.huawei_vod_conn_id = huawei_vod_conn_id

    # ------------------------------------------------------------------ connection

    def credentials_from(self, conn: Connection) -> VodCredentials:
        def option(name: str) -> str | None:
            return self.extra_option(conn, name)

        host, region, project_id = conn.host or option("region"), option("region"), option("project_id")
        if not host:
            raise AirflowFailException(
                f"Huawei VOD connection {self.huawei_vod_conn_id!r} has no host: set the VOD endpoint or a region"
            )
        if not conn.login or not conn.password:
            raise AirflowFailException(
                f"Huawei VOD connection {self.huawei_vod_conn_id!r} needs the AK (login) and SK (password)"
            )
        if not project_id:
            raise AirflowFailException(
                f"Huawei VOD connection {self.huawei_vod_conn_id!r} has no project_id in its extra; "
                "every VOD URL names the region's project"
            )
        where = f"Huawei VOD connection {self.huawei_vod_conn_id!r}"
        push, push_poll_seconds = push_settings(option, where)
        push_secret = option("push_secret")
        if push and not push_secret:
            raise AirflowFailException(
                f"{where} turns push on but has no push_secret in its extra: unsigned notifications "
                "cannot be trusted; generate the authentication key in VOD's notification settings"
            )
        for secret in (conn.password, push_secret):
            if secret:
                mask_secret(secret)
        return VodCredentials(
            resolve_endpoint(host), conn.login, conn.password, project_id, region, push, push_poll_seconds,
            push_secret,
        )  # fmt: skip

    def _mask(self, text: str) -> str:
        credentials = self._credentials
        secrets = [s for s in (credentials.secret_key, credentials.push_secret) if s] if credentials else []
        return mask_text(mask_url(text), secrets)

    def _retrying(self, idempotent: bool) -> tenacity.Retrying:
        return self.retry_policy.retrying(
            lambda exc: is_retryable(exc, idempotent), _throttled, self.log, self.throttled
        )

    # -------------------------------------------------------------------- VOD API

    def _vod_request(
        self, method: str, path: str, query: Sequence[tuple[str, Any]], body: Mapping[str, Any] | None
    ) -> tuple[str, dict[str, str], bytes]:
        """URL (query in canonical order), signed headers and body for a VOD call; ``{project_id}`` filled in."""
        credentials = self.credentials
        pairs = [(k, _query_text(v)) for k, v in query if v is not None and v != ""]
        url = f"{credentials.endpoint}{path.format(project_id=credentials.project_id)}"
        if pairs:
            url += "?" + canonical_query(pairs)
        raw = (
            json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() if body is not None else b""
        )
        headers = {"Content-Type": "application/json", "X-Project-Id": credentials.project_id}
        signed = sign_request(credentials.access_key, credentials.secret_key, method, url, headers, raw)
        return url, signed, raw

    def _vod_body(self, operation: str, status: int, raw: bytes, request_id: str | None) -> dict[str, Any]:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise HuaweiVodTransportError(
                operation, f"HTTP {status} with a non-JSON body of {len(raw)} bytes", retryable=status >= 500
            ) from None
        if status >= 300 or not isinstance(body, dict):
            fields = body if isinstance(body, dict) else {}
            code = (
                fields.get("error_code") or fields.get("errorCode") or fields.get("code") or f"HTTP{status}"
            )
            message = fields.get("error_msg") or fields.get("errorMsg") or fields.get("message") or ""
            raise vod_error(
                operation, status, str(code), self._mask(str(message)), fields.get("request_id") or request_id
            )
        return body

    def _send(
        self, operation: str, method: str, url: str, headers: dict[str, str], data: bytes | None
    ) -> requests.Response:
        """One HTTP request on the pooled session; a failure to get an answer is a masked transport error."""
        try:
            return self.request(method, url, headers=headers, data=data, timeout=self.timeout)
        except requests.RequestException as exc:
            raise self._transport_error(operation, exc, url) from None

    def _transport_error(self, operation: str, exc: BaseException, url: str) -> HuaweiVodTransportError:
        failure = self.transport_failure(exc, url)
        return HuaweiVodTransportError(
            operation, self._mask(failure.description), retryable=failure.retryable, sent=failure.sent
        )

    def vod_call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """One signed VOD call (re-signed on every try), retried where safe; returns the JSON body."""
        self.credentials  # noqa: B018 - reads the connection first, so its retry settings apply to this call

        def send() -> dict[str, Any]:
            url, headers, raw = self._vod_request(method, path, query, body)
            response = self._send(operation, method, url, headers, raw or None)
            return self._vod_body(
                operation, response.status_code, response.content, response.headers.get("X-Request-Id")
            )

        return self._retrying(idempotent)(send)

    async def avod_call(
        self, operation: str, method: str, path: str, *, query: Sequence[tuple[str, Any]] = ()
    ) -> dict[str, Any]:
        """The async twin of :meth:`vod_call` for reads, on aiohttp (triggers poll with it)."""
        import aiohttp

        await self.acredentials()

        async def send() -> dict[str, Any]:
            await self.budget.atake()
            url, headers, _ = self._vod_request(method, path, query, None)
            timeout = aiohttp.ClientTimeout(sock_connect=self.timeout, sock_read=self.timeout)
            options = self.aiohttp_options(url)
            try:
                async with (
                    aiohttp.ClientSession(timeout=timeout) as session,
                    session.request(method, url, headers=headers, **options) as response,
                ):
                    status, raw = response.status, await response.read()
                    request_id = response.headers.get("X-Request-Id")
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise self._transport_error(operation, exc, url) from None
            return self._vod_body(operation, status, raw, request_id)

        retrying = self.retry_policy.aretrying(
            lambda exc: is_retryable(exc, True), _throttled, self.log, self.throttled
        )
        return await retrying(send)

    def create_asset(
        self,
        *,
        title: str,
        video_name: str,
        video_type: str,
        auto_publish: bool,
        description: str | None = None,
        category_id: int | None = None,
        tags: str | None = None,
        template_group_name: str | None = None,
        video_md5: str | None = None,
    ) -> dict[str, Any]:
        """CreateAsset (upload mode): ``asset_id``, ``target{bucket, object}`` and the presigned
        ``video_upload_url`` (a credential: keep it out of logs and XCom). ``auto_publish`` is always sent."""
        body = {
            "title": title,
            "video_name": video_name,
            "video_type": video_type,
            "auto_publish": 1 if auto_publish else 0,
            "description": description,
            "category_id": category_id,
            "tags": tags,
            "template_group_name": template_group_name,
            "video_md5": video_md5,
        }
        return self.vod_call(
            "CreateAsset",
            "POST",
            "/v1.0/{project_id}/asset",
            body={k: v for k, v in body.items() if v not in (None, "")},
            idempotent=False,
        )

    def temp_authority(
        self,
        http_verb: str,
        bucket: str,
        object_key: str,
        *,
        content_type: str | None = None,
        content_md5: str | None = None,
        upload_id: str | None = None,
        part_number: int | None = None,
    ) -> str:
        """ShowAssetTempAuthority (v1.1): the presigned OBS URL (``sign_str``) for one operation."""
        body = self.vod_call(
            "ShowAssetTempAuthority",
            "GET",
            "/v1.1/{project_id}/asset/authority",
            query=[
                ("http_verb", http_verb),
                ("bucket", bucket),
                ("object_key", object_key),
                ("content_type", content_type),
                ("content_md5", content_md5),
                ("upload_id", upload_id),
                ("part_number", part_number),
            ],
        )
        if not body.get("sign_str"):
            raise vod_error("ShowAssetTempAuthority", 200, "MissingResult", "an answer without sign_str")
        return str(body["sign_str"])

    def confirm_asset_upload(self, asset_id: str, status: str = "CREATED") -> None:
        """ConfirmAssetUpload: ``CREATED`` when the upload is complete, ``CANCELLED`` to give it up."""
        self.vod_call(
            "ConfirmAssetUpload",
            "POST",
            "/v1.0/{project_id}/asset/status/uploaded",
            body={"asset_id": asset_id, "status": status},
            idempotent=False,
        )

    def show_asset_meta(self, asset_id: str) -> dict[str, Any]:
        """ShowAssetMeta for one asset: its ``AssetInfo`` (``status``, ``base_info``, ``play_info_array``)."""
        body = self.vod_call(
            "ShowAssetMeta", "GET", "/v1.0/{project_id}/asset/info", query=[("asset_id", asset_id)]
        )
        return _single_asset(body, asset_id)

    async def ashow_asset_meta(self, asset_id: str) -> dict[str, Any]:
        body = await self.avod_call(
            "ShowAssetMeta", "GET", "/v1.0/{project_id}/asset/info", query=[("asset_id", asset_id)]
        )
        return _single_asset(body, asset_id)

    def show_asset_detail(self, asset_id: str) -> dict[str, Any]:
        return self.vod_call(
            "ShowAssetDetail", "GET", "/v1.0/{project_id}/asset/details", query=[("asset_id", asset_id)]
        )

    def delete_asset(self, asset_id: str) -> None:
        self.vod_call("DeleteAssets", "DELETE", "/v1.0/{project_id}/asset", query=[("asset_id", asset_id)])

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button: one signed ShowAssetMeta call proves endpoint, AK/SK and project."""
        try:
            body = self.vod_call("ShowAssetMeta", "GET", "/v1.0/{project_id}/asset/info", query=[("size", 1)])
        except Exception as exc:
            return False, self._mask(str(exc))
        return (
            True,
            f"Connected to {self.credentials.endpoint}: project {self.credentials.project_id} has {body.get('total', 0)} asset(s)",
        )

    # ------------------------------------------------------------------------ OBS

    def obs_call(
        self,
        operation: str,
        method: str,
        url_for: Callable[[], str],
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        idempotent: bool = True,
    ) -> requests.Response:
        """An OBS request on a presigned URL from ``url_for()``, sent verbatim with the signed headers.

        Retried where safe; a refused signature or an expired URL gets one fresh URL (``url_for()`` is called
        again, asking VOD for a new authority).
        """
        url = url_for()

        def send() -> requests.Response:
            response = self._send(operation, method, url, dict(headers or {}), data)
            if response.status_code >= 300:
                fields = (
                    _xml_fields(response.text, operation) if response.text.lstrip().startswith("<") else {}
                )
                raise vod_error(
                    operation,
                    response.status_code,
                    fields.get("Code") or f"HTTP{response.status_code}",
                    self._mask(fields.get("Message", "")),
                    fields.get("RequestId") or response.headers.get("x-obs-request-id"),
                )
            return response

        try:
            return self._retrying(idempotent)(send)
        except HuaweiVodApiError as exc:
            if exc.code not in STALE_URL_CODES:
                raise
            self.log.warning(
                "OBS refused a signed URL for %s (%s); asking for a fresh one", operation, exc.code
            )
        url = url_for()
        return self._retrying(idempotent)(send)

    def initiate_multipart_upload(self, bucket: str, object_key: str, content_type: str) -> str:
        """Authority + OBS initiate: the OBS ``UploadId``."""

        def url() -> str:
            return self.temp_authority("POST", bucket, object_key, content_type=content_type)

        response = self.obs_call(
            "InitiateMultipartUpload", "POST", url, headers={"Content-Type": content_type}, idempotent=False
        )
        upload_id = _xml_fields(response.text, "InitiateMultipartUpload").get("UploadId")
        if not upload_id:
            raise vod_error("InitiateMultipartUpload", response.status_code, "MissingResult", "no UploadId")
        return upload_id

    def upload_part(self, bucket: str, object_key: str, upload_id: str, part_number: int, data: bytes) -> str:
        """Authority (with this part's MD5) + OBS part PUT: the part's ``ETag``, quotes included."""
        content_md5 = md5_base64(data)

        def url() -> str:
            return self.temp_authority(
                "PUT",
                bucket,
                object_key,
                upload_id=upload_id,
                part_number=part_number,
                content_md5=content_md5,
            )

        response = self.obs_call(
            "UploadPart",
            "PUT",
            url,
            headers={"Content-Type": "application/octet-stream", "Content-MD5": content_md5},
            data=data,
        )
        etag = response.headers.get("ETag")
        if not etag:
            raise vod_error("UploadPart", response.status_code, "MissingResult", "no ETag header")
        return etag

    def list_parts(self, bucket: str, object_key: str, upload_id: str) -> list[UploadedPart]:
        """Authority + OBS list parts, every page: what OBS holds of an upload (to verify or resume)."""
        parts: list[UploadedPart] = []
        marker = 0
        while True:

            def url(marker: int = marker) -> str:
                signed = self.temp_authority("GET", bucket, object_key, upload_id=upload_id)
                return f"{signed}&part-number-marker={marker}" if marker else signed

            text = self.obs_call("ListParts", "GET", url).text
            root = ET.fromstring(text)
            for element in root:
                if _local(element.tag) == "Part":
                    fields = {_local(child.tag): child.text or "" for child in element}
                    parts.append(UploadedPart(int(fields["PartNumber"]), fields["ETag"]))
            top = {_local(child.tag): child.text or "" for child in root}
            if top.get("IsTruncated") != "true":
                return parts
            marker = int(top["NextPartNumberMarker"])

    def complete_multipart_upload(
        self, bucket: str, object_key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> str:
        """Authority + OBS complete with the parts in ascending order, ETags quoted: the object's ETag."""
        ordered = sorted(parts, key=lambda part: part.part_number)
        body = (
            "<CompleteMultipartUpload>"
            + "".join(
                f"<Part><PartNumber>{p.part_number}</PartNumber><ETag>{_quoted(p.etag)}</ETag></Part>"
                for p in ordered
            )
            + "</CompleteMultipartUpload>"
        )

        def url() -> str:
            return self.temp_authority("POST", bucket, object_key, upload_id=upload_id)

        response = self.obs_call(
            "CompleteMultipartUpload",
            "POST",
            url,
            headers={"Content-Type": "application/xml"},
            data=body.encode(),
            idempotent=False,
        )
        return _xml_fields(response.text, "CompleteMultipartUpload").get("ETag", "")

    def abort_multipart_upload(self, bucket: str, object_key: str, upload_id: str) -> None:
        def url() -> str:
            return self.temp_authority("DELETE", bucket, object_key, upload_id=upload_id)

        self.obs_call("AbortMultipartUpload", "DELETE", url)

    def put_object(self, upload_url: str, data: bytes, content_type: str, content_md5: str | None) -> str:
        """The single-PUT path: the whole file to CreateAsset's ``video_upload_url``; its ``ETag``."""
        headers = {"Content-Type": content_type, **({"Content-MD5": content_md5} if content_md5 else {})}
        response = self.obs_call("PutObject", "PUT", lambda: upload_url, headers=headers, data=data)
        return response.headers.get("ETag", "")


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def _single_asset(body: Mapping[str, Any], asset_id: str) -> dict[str, Any]:
    for info in body.get("asset_info_array") or []:
        if info.get("asset_id") == asset_id:
            return dict(info)
    return {"asset_id": asset_id, "status": "UNCREATED", "description": "not in ShowAssetMeta's answer"}
