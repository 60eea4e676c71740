"""The one place that speaks HTTP to the Lazada Open Platform.

It signs every request as documented, sends it on the HTTP provider's pooled session (see
:class:`~media_upload.hooks.base.PlatformHook`: the connection's proxies, TLS and keep-alive settings apply,
never its secrets as Basic auth or headers), retries what is safe to retry with jittered backoff, renews an
expired access token once, and never lets a secret reach a log line, an exception or a repr.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import requests
import tenacity
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.log import mask_secret

from media_upload.hooks import LAZADA_CONN_ID
from media_upload.hooks.base import PlatformHook
from media_upload.hooks.multipart import FilePart, MultipartBody
from media_upload.hooks.retry import RetryPolicy
from media_upload.ledger import DEFAULT_CONN_ID as LEDGER_CONN_ID
from media_upload.masking import mask_text
from media_upload.protocols.lazada import (
    AUTH_GATEWAY,
    GATEWAYS,
    SIGN_METHOD,
    resolve_gateway,
    sign,
    video_update_payload,
)
from media_upload.push import DEFAULT_PUSH_POLL_SECONDS, push_settings

#: Codes meaning "refused before it ran; slow down": safe to retry for every call.
THROTTLE_CODES = frozenset(
    {"ApiCallLimit", "901", "4154", "IopSystemFlowlimit", "ServiceCurrentlimit", "AppCallLimit", "15"}
)
#: Codes of passing backend trouble: retried only for calls that are safe to repeat.
TRANSIENT_CODES = frozenset(
    {"ServiceTimeout", "1000", "6", "4147", "FAIL_TO_UPLOAD_BLOCK", "FAIL_TO_GET_SHOP_INFO", "FAIL_TO_BLOCK_INIT",
     "FAIL_TO_GET_VIDEO", "FAIL_TO_GET_USER_CAPACITY"}
)  # fmt: skip
#: Codes meaning the access token is no good: renewed once with the refresh token when there is one.
ACCESS_TOKEN_CODES = frozenset({"IllegalAccessToken", "AccessTokenInvalid", "AccessTokenExpired"})


@dataclass(frozen=True)
class ApiSpec:
    """How a Lazada API is called: HTTP method, whether repeating it is harmless, which gateway."""

    method: str = "POST"
    idempotent: bool = False
    needs_token: bool = True
    auth_gateway: bool = False
    #: Seconds to wait for the answer, when the call works longer than the hook's ``timeout``.
    read_timeout: float | None = None


API_SPECS: dict[str, ApiSpec] = {
    "/media/video/quota/get": ApiSpec("GET", idempotent=True),
    # A repeated init only leaves an unused upload id behind.
    "/media/video/block/create": ApiSpec("POST", idempotent=True),
    # Re-sending a block replaces it (same blockNo, same bytes).
    "/media/video/block/upload": ApiSpec("POST", idempotent=True),
    # A blind re-commit may fail or make a second video: never retried on ambiguous failures. Lazada
    # joins the blocks before it answers, so a 100 MB video gets five minutes.
    "/media/video/block/commit": ApiSpec("POST", idempotent=False, read_timeout=300.0),
    "/media/video/get": ApiSpec("GET", idempotent=True),
    "/media/video/remove": ApiSpec("POST", idempotent=True),
    "/image/upload": ApiSpec("POST", idempotent=True),
    "/product/create": ApiSpec("POST", idempotent=False),
    "/product/update": ApiSpec("POST", idempotent=True),
    "/product/item/get": ApiSpec("GET", idempotent=True),
    "/products/get": ApiSpec("GET", idempotent=True),
    "/auth/token/create": ApiSpec("POST", needs_token=False, auth_gateway=True),
    "/auth/token/refresh": ApiSpec("POST", needs_token=False, auth_gateway=True),
}


class LazadaError(AirflowException):
    """Base of the errors this hook raises; ``api`` names the call that failed."""

    def __init__(self, api: str, description: str) -> None:
        super().__init__(f"Lazada {api} failed: {description}")
        self.api = api


class LazadaApiError(LazadaError):
    """Lazada answered with an error envelope, or with a success envelope lacking its result.

    Raised as :class:`LazadaRefusal` (which also fails the task at once, without Airflow retries) when the
    code is Lazada's final answer: see :func:`api_error`.
    """

    def __init__(self, api: str, code: str, message: str, request_id: str | None = None) -> None:
        suffix = f" (request_id {request_id})" if request_id else ""
        hint = HINTS.get(code, "")
        super().__init__(
            api, f"{code}: {message}{suffix}{f'. {hint}' if hint and hint not in message else ''}"
        )
        self.code = code
        self.message = message
        self.request_id = request_id


class LazadaRefusal(LazadaApiError, AirflowFailException):
    """Lazada's final answer for this request (a refused signature, a bad parameter, a missing product):
    sending it again cannot help, so the task fails at once and the message says what to do."""


#: What a person does about the codes that need one.
HINTS = {
    "IncompleteSignature": "The app secret (connection password) does not match the app key (login), or the "
    "clock is off by more than two hours: copy both from the Lazada Open Platform console (App Management)",
    "InvalidAppKey": "The app key (connection login) is not a Lazada app: copy it from the Open Platform console",
    "IllegalRefreshToken": "The refresh token expired or was already used: authorize the seller again and "
    "store the new access_token and refresh_token in the connection",
    "AUTH_TYPE_UNSUPPORTED": "This app's token is bound to a service-market order and cannot be refreshed",
    "SKU_NOT_FOUND": "Check the product's SellerSku on Lazada, or name the item_id instead",
}


def api_error(api: str, code: str, message: str, request_id: str | None = None) -> LazadaApiError:
    """The error for an answer: a :class:`LazadaRefusal` unless the code means "slow down", passing trouble,
    or a token the hook may renew."""
    retry_may_help = code in THROTTLE_CODES | TRANSIENT_CODES | ACCESS_TOKEN_CODES | {"MissingResult"}
    return (LazadaApiError if retry_may_help else LazadaRefusal)(api, code, message, request_id)


class LazadaTransportError(LazadaError):
    """No usable answer: connection failure, timeout, or a non-JSON body such as a gateway 5xx page.

    ``sent`` is False when the request surely never reached Lazada (so even a commit may be repeated).
    """

    def __init__(self, api: str, description: str, *, retryable: bool, sent: bool = True) -> None:
        super().__init__(api, description)
        self.retryable = retryable
        self.sent = sent


@dataclass(frozen=True)
class LazadaCredentials:
    gateway: str
    auth_gateway: str
    app_key: str
    app_secret: str
    access_token: str | None
    refresh_token: str | None
    #: The seller's id; with ``push``, audit waits take Lazada's pushed video states (see media_upload.push).
    seller_id: str | None = None
    push: bool = False
    push_poll_seconds: float = DEFAULT_PUSH_POLL_SECONDS

    def __repr__(self) -> str:  # never show the secrets
        return f"LazadaCredentials(gateway={self.gateway!r}, app_key={self.app_key!r})"


def is_retryable(exc: BaseException, spec: ApiSpec) -> bool:
    """Throttling always; transient trouble only where repeating the call is harmless."""
    if isinstance(exc, LazadaApiError):
        return exc.code in THROTTLE_CODES or (spec.idempotent and exc.code in TRANSIENT_CODES)
    if isinstance(exc, LazadaTransportError):
        return exc.retryable and (spec.idempotent or not exc.sent)
    return False


def _throttled(exc: BaseException) -> bool:
    return isinstance(exc, LazadaApiError) and exc.code in THROTTLE_CODES


def _text(value: Any) -> str:
    """Parameter values as Lazada expects them: JSON for structures, lowercase booleans, plain strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


class LazadaHook(PlatformHook[LazadaCredentials]):
    """Signed, retried calls to the Lazada Open Platform for one seller.

    Connection (type ``lazada``): host = gateway URL or region code (``sg``, ``my``...), login = app key,
    password = app secret, extra = ``access_token`` and ``refresh_token`` (optionally ``auth_host``,
    ``timeout``, ``seller_id``, ``push`` and ``push_poll_seconds`` for pushed video states, and the HTTP
    provider's ``proxies``, ``verify``, ``cert`` and keep-alive settings).

    :param lazada_conn_id: the connection to use.
    :param timeout: seconds to wait for a connection and between bytes of the answer.
    :param max_attempts, backoff_seconds, backoff_max_seconds, throttle_pause_seconds: the
        :class:`~media_upload.hooks.retry.RetryPolicy`; throttling waits at least a second ("this ban will
        last 1 seconds").
    :param token_store_conn_id: the SQL connection where renewed tokens are kept for every task (the
        upload ledger's database).
    :param keep_alive: ``tcp_keep_alive``, ``tcp_keep_alive_idle``, ``tcp_keep_alive_count``,
        ``tcp_keep_alive_interval`` as ``HttpHook`` takes them; the connection's extras of the same names win.
    """

    conn_name_attr = "lazada_conn_id"
    default_conn_name = LAZADA_CONN_ID
    conn_type = "lazada"
    hook_name = "Lazada Open Platform"

    def is_throttle(self, exc: BaseException) -> bool:
        return _throttled(exc)

    def __init__(
        self,
        lazada_conn_id: str = default_conn_name,
        *,
        timeout: float = 60.0,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        throttle_pause_seconds: float = 1.0,
        token_store_conn_id: str = LEDGER_CONN_ID,
        **keep_alive: Any,
    ) -> None:
        policy = RetryPolicy(max_attempts, backoff_seconds, backoff_max_seconds, throttle_pause_seconds)
        super().__init__(
            lazada_conn_id,
            timeout=timeout,
            retry_policy=policy,
            ledger_conn_id=token_store_conn_id,
            **keep_alive,
        )
        self.lazada_conn_id = lazada_conn_id
        self.token_store_conn_id = token_store_conn_id
        self._authorization_refresh_token: str | None = None
        self._renewing = threading.Lock()

    # ------------------------------------------------------------------ connection

    def credentials_from(self, conn: Connection) -> LazadaCredentials:
        def option(name: str) -> str | None:
            return self.extra_option(conn, name)

        if not conn.host:
            raise AirflowFailException(
                f"Lazada connection {self.lazada_conn_id!r} has no host: set the gateway URL "
                f"or a region code ({', '.join(GATEWAYS)})"
            )
        if not conn.login or not conn.password:
            raise AirflowFailException(
                f"Lazada connection {self.lazada_conn_id!r} needs the app key (login) and app secret (password)"
            )
        try:
            gateway = resolve_gateway(conn.host)
            auth_gateway = resolve_gateway(option("auth_host") or "") if option("auth_host") else ""
        except ValueError as exc:
            raise AirflowFailException(f"Lazada connection {self.lazada_conn_id!r}: {exc}") from None
        if not auth_gateway:  # Lazada's own gateways share one auth host; an emulator or proxy serves both
            auth_gateway = AUTH_GATEWAY if gateway in GATEWAYS.values() else gateway
        push, push_poll_seconds = push_settings(option, f"Lazada connection {self.lazada_conn_id!r}")
        seller_id = option("seller_id")
        if push and not seller_id:
            raise AirflowFailException(
                f"Lazada connection {self.lazada_conn_id!r} turns push on but has no seller_id in its extra"
            )
        credentials = LazadaCredentials(
            gateway,
            auth_gateway,
            conn.login,
            conn.password,
            option("access_token"),
            option("refresh_token"),
            seller_id,
            push,
            push_poll_seconds,
        )
        self._authorization_refresh_token = credentials.refresh_token
        for secret in (credentials.app_secret, credentials.access_token, credentials.refresh_token):
            if secret:
                mask_secret(secret)
        return credentials

    def _secrets(self) -> list[str]:
        c = self._credentials
        return [s for s in (c.app_secret, c.access_token, c.refresh_token) if s] if c else []

    # --------------------------------------------------------------------- signing

    def signed_params(self, api: str, params: Mapping[str, Any], spec: ApiSpec) -> dict[str, str]:
        """System parameters plus ``params`` (empty values dropped, never sent), and their ``sign``."""
        credentials = self.credentials
        signed = {
            "app_key": credentials.app_key,
            "sign_method": SIGN_METHOD,
            "timestamp": str(int(time.time() * 1000)),
        }
        if spec.needs_token:
            if not credentials.access_token:
                raise AirflowFailException(
                    f"Lazada connection {self.lazada_conn_id!r} has no access_token in its extra; "
                    "authorize the seller and store the token"
                )
            signed["access_token"] = credentials.access_token
        signed.update(
            {name: _text(value) for name, value in params.items() if value is not None and value != ""}
        )
        signed["sign"] = sign(credentials.app_secret, api, signed)
        return signed

    def _url(self, api: str, spec: ApiSpec) -> str:
        credentials = self.credentials
        return f"{credentials.auth_gateway if spec.auth_gateway else credentials.gateway}{api}"

    # ------------------------------------------------------------------- envelope

    def parse_response(self, api: str, status: int, body: Any, expect: str | None) -> dict[str, Any]:
        """The body of a successful call, or the matching :class:`LazadaError`."""
        if not isinstance(body, dict):
            raise LazadaTransportError(
                api, f"HTTP {status} with a body that is not a JSON envelope", retryable=status >= 500
            )
        secrets = self._secrets()
        code = str(body.get("code", ""))
        request_id = body.get("request_id")
        if code != "0":
            raise api_error(
                api, code or "(no code)", mask_text(str(body.get("message", "")), secrets), request_id
            )
        if body.get("success") in (False, "false", "False"):
            raise api_error(
                api,
                str(body.get("result_code") or "FAILED"),
                mask_text(str(body.get("result_message", "")), secrets),
                request_id,
            )
        if expect is not None and _lookup(body, expect) in (None, ""):
            raise LazadaApiError(api, "MissingResult", f"a success envelope without {expect}", request_id)
        return body

    # ---------------------------------------------------------------- sync calls

    def call(
        self,
        api: str,
        params: Mapping[str, Any] | None = None,
        *,
        file: FilePart | None = None,
        expect: str | None = None,
        spec: ApiSpec | None = None,
    ) -> dict[str, Any]:
        """Call ``api`` (e.g. ``/media/video/get``) and return the success body.

        Retryable failures are retried with jittered backoff; an access token Lazada refuses is renewed
        once with the refresh token, if the connection has one.
        """
        spec = spec or API_SPECS.get(api, ApiSpec())
        params = params or {}
        for renewals in range(3):  # a pair another task stored may be stale too: then this task refreshes
            used = self.credentials.access_token
            try:
                return self._retrying(spec)(self._send, api, params, file, expect, spec)
            except LazadaApiError as exc:
                if exc.code not in ACCESS_TOKEN_CODES or not spec.needs_token or renewals == 2:
                    raise
                if not self.credentials.refresh_token:
                    raise self._unrenewable(exc) from None
            self.renew_access_token(used)
        raise AssertionError("unreachable")

    def _unrenewable(self, exc: LazadaApiError) -> LazadaApiError:
        return LazadaRefusal(
            exc.api,
            exc.code,
            f"{exc.message}. Connection {self.lazada_conn_id!r} has no refresh_token to renew it: "
            "store a fresh access_token (and a refresh_token) in the connection",
            exc.request_id,
        )

    def renew_access_token(self, refused: str | None) -> None:
        """Lazada refused the access token ``refused``: renew it once for the whole deployment.

        Under the token store's lock, a pair another task renewed already is taken as it is; otherwise this
        task calls /auth/token/refresh and stores the answer for every later task (see
        :mod:`media_upload.token_store`). Threads of this task (blocks in flight) wait for one another, and
        one that finds the token already replaced just tries again. The connection itself is not changed.
        """
        from media_upload.token_store import TokenStore, lineage

        with self._renewing:
            credentials = self.credentials
            if credentials.access_token != refused:
                return  # another thread of this task renewed it meanwhile
            self._renew(credentials, TokenStore(self.token_store_conn_id), lineage)

    def _renew(self, credentials: LazadaCredentials, store: Any, lineage: Callable[[str, str], str]) -> None:
        from media_upload.token_store import NoFernetKey

        try:
            pair, refreshed = store.renew(
                lineage(credentials.app_key, self._authorization_refresh_token or ""),
                credentials.access_token or "",
                credentials.refresh_token or "",
                self._refresh,
                refreshed_by=f"connection {self.lazada_conn_id}",
            )
        except NoFernetKey as exc:  # a setting to fix, not a passing fault
            self.token_renewed("failed")
            raise AirflowFailException(
                f"Lazada refused the access token of connection {self.lazada_conn_id!r}; {exc}"
            ) from None
        except Exception:
            self.token_renewed("failed")
            raise
        self.token_renewed("refreshed" if refreshed else "reused")
        mask_secret(pair.access_token)
        mask_secret(pair.refresh_token)
        self._credentials = replace(
            credentials, access_token=pair.access_token, refresh_token=pair.refresh_token
        )
        if refreshed:
            self.log.warning(
                "Lazada refused the access token of connection %r; it was renewed with the refresh token, and the "
                "new pair is kept in the ledger database, where every task of this deployment finds it",
                self.lazada_conn_id,
            )
        else:
            self.log.info(
                "Using the access token another task renewed for connection %r", self.lazada_conn_id
            )

    def create_access_token(self, code: str) -> dict[str, Any]:
        """/auth/token/create with a seller's authorization ``code``: the first access and refresh token.

        The code is single-use (valid 30 minutes), so the call is sent once, never repeated.
        """
        spec = API_SPECS["/auth/token/create"]
        body = self._send("/auth/token/create", {"code": code}, None, "access_token", spec)
        for name in ("access_token", "refresh_token"):
            if body.get(name):
                mask_secret(str(body[name]))
        return body

    def _refresh(self, refresh_token: str) -> dict[str, Any]:
        """/auth/token/refresh with ``refresh_token``: Lazada's answer (a new access and refresh token)."""
        spec = API_SPECS["/auth/token/refresh"]
        body: dict[str, Any] = self._retrying(spec)(
            self._send, "/auth/token/refresh", {"refresh_token": refresh_token}, None, "access_token", spec
        )
        mask_secret(str(body["access_token"]))
        if body.get("refresh_token"):
            mask_secret(str(body["refresh_token"]))
        return body

    def _retrying(self, spec: ApiSpec) -> tenacity.Retrying:
        return self.retry_policy.retrying(
            lambda exc: is_retryable(exc, spec), _throttled, self.log, self.throttled
        )

    def _send(
        self, api: str, params: Mapping[str, Any], file: FilePart | None, expect: str | None, spec: ApiSpec
    ) -> dict[str, Any]:
        url = self._url(api, spec)
        signed = self.signed_params(api, params, spec)
        timeout = (self.timeout, max(self.timeout, spec.read_timeout or 0))
        try:
            if spec.method == "GET":
                response = self.request("GET", url, params=signed, timeout=timeout)
            elif file is not None:
                body = MultipartBody(signed, file)
                headers = {"Content-Type": body.content_type}
                response = self.request("POST", url, data=body, headers=headers, timeout=timeout)
            else:
                response = self.request("POST", url, data=signed, timeout=timeout)
        except requests.RequestException as exc:
            raise self._transport_error(api, exc, url) from None
        try:
            body = response.json()
        except ValueError:
            raise LazadaTransportError(
                api,
                f"HTTP {response.status_code} with a non-JSON body of {len(response.content)} bytes",
                retryable=response.status_code >= 500,
            ) from None
        return self.parse_response(api, response.status_code, body, expect)

    def _transport_error(self, api: str, exc: BaseException, url: str) -> LazadaTransportError:
        failure = self.transport_failure(exc, url)
        return LazadaTransportError(
            api,
            mask_text(failure.description, self._secrets()),
            retryable=failure.retryable,
            sent=failure.sent,
        )

    # --------------------------------------------------------------- async calls

    async def acall(
        self, api: str, params: Mapping[str, Any] | None = None, *, expect: str | None = None
    ) -> dict[str, Any]:
        """The async twin of :meth:`call` for reads (triggers poll with it); signs the same way."""
        spec = API_SPECS.get(api, ApiSpec("GET", idempotent=True))
        await self.acredentials()
        params = params or {}
        for renewals in range(3):
            used = self.credentials.access_token
            try:
                return await self._aretrying(spec)(self._asend, api, params, expect, spec)
            except LazadaApiError as exc:
                if exc.code not in ACCESS_TOKEN_CODES or not spec.needs_token or renewals == 2:
                    raise
                if not self.credentials.refresh_token:
                    raise self._unrenewable(exc) from None
            await asyncio.to_thread(self.renew_access_token, used)  # database and HTTP, off the event loop
        raise AssertionError("unreachable")

    def _aretrying(self, spec: ApiSpec) -> tenacity.AsyncRetrying:
        return self.retry_policy.aretrying(
            lambda exc: is_retryable(exc, spec), _throttled, self.log, self.throttled
        )

    async def _asend(
        self, api: str, params: Mapping[str, Any], expect: str | None, spec: ApiSpec
    ) -> dict[str, Any]:
        import aiohttp

        await self.budget.atake()
        url = self._url(api, spec)
        signed = self.signed_params(api, params, spec)
        timeout = aiohttp.ClientTimeout(sock_connect=self.timeout, sock_read=self.timeout)
        options = self.aiohttp_options(url)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                if spec.method == "GET":
                    request = session.get(url, params=signed, **options)
                else:
                    request = session.post(url, data=signed, **options)
                async with request as response:
                    status, raw = response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(api, exc, url) from None
        try:
            body = json.loads(raw)
        except ValueError:
            raise LazadaTransportError(
                api, f"HTTP {status} with a non-JSON body of {len(raw)} bytes", retryable=status >= 500
            ) from None
        return self.parse_response(api, status, body, expect)

    # ------------------------------------------------------------------ API steps

    def get_video_quota(self) -> dict[str, int]:
        body = self.call("/media/video/quota/get", expect="capacity_size")
        return {"capacity_size": int(body["capacity_size"]), "used_size": int(body.get("used_size") or 0)}

    def init_create_video(self, file_name: str, file_bytes: int) -> str:
        """InitCreateVideo: the upload id for a file of ``file_bytes`` bytes."""
        body = self.call(
            "/media/video/block/create", {"fileName": file_name, "fileBytes": file_bytes}, expect="upload_id"
        )
        return str(body["upload_id"])

    def upload_video_block(self, upload_id: str, block_no: int, block_count: int, data: bytes) -> str:
        """UploadVideoBlock for 0-based ``block_no``: the block's ``e_tag``."""
        body = self.call(
            "/media/video/block/upload",
            {"uploadId": upload_id, "blockNo": block_no, "blockCount": block_count},
            file=FilePart("file", data),
            expect="e_tag",
        )
        return str(body["e_tag"])

    def complete_create_video(
        self,
        upload_id: str,
        parts: list[dict[str, Any]],
        title: str,
        cover_url: str,
        video_usage: str = "pro_main_video",
    ) -> str:
        """CompleteCreateVideo: ``parts`` as ``[{"partNumber": 1, "eTag": ...}]`` (1-based); the video id."""
        ordered = [
            {"partNumber": number, "eTag": e_tag}
            for number, e_tag in sorted((int(p["partNumber"]), str(p["eTag"])) for p in parts)
        ]
        body = self.call(
            "/media/video/block/commit",
            {
                "uploadId": upload_id,
                "parts": ordered,
                "title": title,
                "coverUrl": cover_url,
                "videoUsage": video_usage,
            },
            expect="video_id",
        )
        return str(body["video_id"])

    def get_video(self, video_id: str) -> dict[str, Any]:
        """GetVideo: title, cover_url, state and video_url (signed with ``auth_key``: keep it out of logs)."""
        return self.call("/media/video/get", {"videoId": video_id}, expect="state")

    async def aget_video(self, video_id: str) -> dict[str, Any]:
        return await self.acall("/media/video/get", {"videoId": video_id}, expect="state")

    def remove_video(self, video_id: str) -> None:
        self.call("/media/video/remove", {"videoId": video_id})

    def upload_image(self, data: bytes, filename: str = "image") -> str:
        """UploadImage: the Lazada-hosted URL of a JPG or PNG, usable as a cover or product image."""
        body = self.call("/image/upload", file=FilePart("image", data, filename), expect="data.image.url")
        return str(body["data"]["image"]["url"])

    def create_product(self, payload: Mapping[str, Any] | str) -> dict[str, Any]:
        """CreateProduct with a JSON (dict or string) or XML payload; returns ``data`` (item_id, sku_list)."""
        return self.call("/product/create", {"payload": payload}, expect="data.item_id")["data"]

    def update_product(self, payload: Mapping[str, Any] | str) -> dict[str, Any]:
        return self.call("/product/update", {"payload": payload}).get("data") or {}

    def get_product_item(self, item_id: str | int) -> dict[str, Any]:
        """GetProductItem: the product's ``data`` (attributes, including ``video``, and skus)."""
        return self.call("/product/item/get", {"item_id": item_id}, expect="data")["data"]

    def find_products(self, seller_skus: Sequence[str]) -> dict[str, dict[str, Any]]:
        """GetProducts filtered by up to 50 ``sku_seller_list`` entries (pages of 50 products): each found
        SKU's product ``data``; SKUs no product has are absent."""
        wanted, found, offset = set(seller_skus), {}, 0
        while True:
            body = self.call(
                "/products/get",
                {"filter": "all", "sku_seller_list": sorted(wanted), "offset": offset, "limit": 50},
                expect="data",
            )
            products = body["data"].get("products") or []
            for product in products:
                for sku in product.get("skus", []):
                    if str(sku.get("SellerSku")) in wanted:
                        found[str(sku["SellerSku"])] = dict(product)
            offset += len(products)
            if not products or offset >= int(body["data"].get("total_products") or 0):
                return found

    def find_product(self, seller_sku: str) -> dict[str, Any]:
        """GetProducts filtered by ``sku_seller_list``: the product ``data`` of the item that has this SKU."""
        body = self.call(
            "/products/get", {"filter": "all", "sku_seller_list": [seller_sku], "limit": 1}, expect="data"
        )
        products = body["data"].get("products") or []
        if not products:
            raise LazadaRefusal("/products/get", "SKU_NOT_FOUND", f"no product has SellerSku {seller_sku!r}")
        return dict(products[0])

    def set_product_video(
        self,
        item_id: str | int,
        video_id: str | None,
        sku_ids: list[str] | None = None,
        *,
        read_first: bool = True,
    ) -> dict[str, Any]:
        """Put ``video_id`` on an item (or remove its video when None) with UpdateProduct.

        Reads the item first: one that already carries the video is left alone, and when ``sku_ids`` is
        empty every SKU of the item is named (UpdateProduct requires ``SkuId``). A caller that read the
        item moments ago (a catalog's plan) passes its ``sku_ids`` and ``read_first=False``: one call, and
        putting the same video again is harmless. Returns ``{item_id, sku_ids, video_id, previous_video_id,
        changed}``.
        """
        current: str | None = None
        if read_first or not sku_ids:
            product = self.get_product_item(item_id)
            current = (product.get("attributes") or {}).get("video")
            current = str(current) if current else None
            sku_ids = list(sku_ids or [str(sku["SkuId"]) for sku in product.get("skus", [])])
        result = {
            "item_id": str(item_id),
            "sku_ids": sku_ids,
            "video_id": video_id,
            "previous_video_id": current,
        }
        if current == video_id:
            self.log.info("Item %s already carries %s; nothing to update", item_id, video_id or "no video")
            return {**result, "changed": False}
        self.update_product(video_update_payload(item_id, sku_ids, video_id))
        if video_id:
            self.log.info("Item %s (SKUs %s) now carries video %s", item_id, ", ".join(sku_ids), video_id)
        else:
            self.log.info("Removed video %s from item %s", current, item_id)
        return {**result, "changed": True}

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button: one signed quota call proves gateway, app key, secret and token."""
        try:
            quota = self.get_video_quota()
        except Exception as exc:
            return False, mask_text(str(exc), self._secrets())
        return True, (
            f"Connected to {self.credentials.gateway}: {quota['used_size']} of {quota['capacity_size']} bytes "
            "of video quota used"
        )


def _lookup(body: Mapping[str, Any], dotted: str) -> Any:
    value: Any = body
    for key in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
