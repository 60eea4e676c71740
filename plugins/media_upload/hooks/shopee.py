"""The one place that speaks HTTP to the Shopee Open Platform v2 (media_space video upload, items, tokens).

It signs every request as documented (HMAC-SHA256 over partner id, path, timestamp and, for shop calls,
access token and shop id), keeps one pooled session, retries what is safe to retry, renews the access
token once for the whole deployment (Shopee rotates the refresh token on every refresh, so renewals go
through the shared token store), and never lets a secret reach a log line, an exception or a repr.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import requests
import tenacity
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.log import mask_secret

from media_upload.hooks import SHOPEE_CONN_ID
from media_upload.hooks.base import PlatformHook
from media_upload.hooks.multipart import FilePart, MultipartBody
from media_upload.hooks.retry import RetryPolicy
from media_upload.ledger import DEFAULT_CONN_ID as LEDGER_CONN_ID
from media_upload.masking import mask_text
from media_upload.protocols.shopee import (
    APIS,
    AUTH_ERRORS,
    CANCEL_VIDEO_UPLOAD,
    COMPLETE_VIDEO_UPLOAD,
    GET_ACCESS_TOKEN,
    GET_ITEM_BASE_INFO,
    GET_VIDEO_UPLOAD_RESULT,
    INIT_VIDEO_UPLOAD,
    PART_BYTES,
    PART_BYTES_DECIMAL,
    REFRESH_ACCESS_TOKEN,
    RETRYABLE_ERRORS,
    UPDATE_ITEM,
    UPLOAD_VIDEO_PART,
    ApiType,
    common_params,
    error_name,
    message_of,
    parse_id,
    resolve_host,
    video_upload_id_field,
)


@dataclass(frozen=True)
class CallSpec:
    """Whether repeating a call is harmless, and how long its answer may take."""

    idempotent: bool = True
    read_timeout: float | None = None


SPECS: dict[str, CallSpec] = {
    # A repeated init only leaves an unused upload id behind; a re-sent part replaces itself.
    INIT_VIDEO_UPLOAD: CallSpec(),
    UPLOAD_VIDEO_PART: CallSpec(),
    # A blind re-send of a complete whose answer was lost is answered "already completed": never retried
    # on an ambiguous failure, the steps ask get_video_upload_result instead.
    COMPLETE_VIDEO_UPLOAD: CallSpec(idempotent=False, read_timeout=300.0),
    GET_VIDEO_UPLOAD_RESULT: CallSpec(),
    CANCEL_VIDEO_UPLOAD: CallSpec(),
    UPDATE_ITEM: CallSpec(),
    GET_ITEM_BASE_INFO: CallSpec(),
    # Each refresh rotates the tokens: a lost answer loses them, so it is sent once.
    REFRESH_ACCESS_TOKEN: CallSpec(idempotent=False),
}
#: Shopee answers these calls with the envelope only (no ``response``; the token calls at the top level).
_NO_RESPONSE = frozenset(
    {UPLOAD_VIDEO_PART, COMPLETE_VIDEO_UPLOAD, CANCEL_VIDEO_UPLOAD, GET_ACCESS_TOKEN, REFRESH_ACCESS_TOKEN}
)


class ShopeeError(AirflowException):
    """Base of the errors this hook raises; ``api`` names the call that failed."""

    def __init__(self, api: str, description: str) -> None:
        super().__init__(f"Shopee {api.removeprefix('/api/v2/')} failed: {description}")
        self.api = api


class ShopeeApiError(ShopeeError):
    """Shopee answered with an error (``error`` set); ``code`` is its name without a module prefix."""

    def __init__(self, api: str, error: str, message: str, request_id: str | None = None) -> None:
        suffix = f" (request_id {request_id})" if request_id else ""
        hint = HINTS.get(error_name(error), "")
        super().__init__(api, f"{error}: {message}{suffix}{f'. {hint}' if hint else ''}")
        self.error = error
        self.code = error_name(error)
        self.message = message
        self.request_id = request_id


class ShopeeRefusal(ShopeeApiError, AirflowFailException):
    """Shopee's final answer for this request (a wrong sign, a bad parameter, a missing item): sending it
    again cannot help, so the task fails at once and the message says what to do."""


class ShopeeTransportError(ShopeeError):
    """No usable answer: connection failure, timeout, or a body that is not Shopee's envelope.

    ``sent`` is False when the request surely never reached Shopee (so even a complete may be repeated).
    """

    def __init__(self, api: str, description: str, *, retryable: bool, sent: bool = True) -> None:
        super().__init__(api, description)
        self.retryable = retryable
        self.sent = sent


#: What a person does about the errors that need one.
HINTS = {
    "error_sign": "The partner key (connection password) does not match the partner id (login), or the clock is "
    "off by more than five minutes: copy both from the Shopee Open Platform console (App List)",
    "error_auth": "The shop's access token is not valid for this shop_id: authorize the shop again and store "
    "the new access_token, refresh_token and shop_id in the connection",
    "refresh_token_expired": "The refresh token expired or was already used: authorize the shop again",
    "error_video_info_not_found": "Only a video whose upload SUCCEEDED, of the same shop, can go on an item",
    "error_item_not_found": "Check the item_id on Shopee (Seller Centre, My Products)",
}


def api_error(api: str, error: str, message: str, request_id: str | None = None) -> ShopeeApiError:
    """A :class:`ShopeeRefusal` unless a later try may help (throttling, server trouble, a token to renew)."""
    name = error_name(error)
    retry_may_help = name in RETRYABLE_ERRORS | AUTH_ERRORS or name in ("error_already_completed",)
    return (ShopeeApiError if retry_may_help else ShopeeRefusal)(api, error, message, request_id)


def is_retryable(exc: BaseException, api: str) -> bool:
    """Throttling and server trouble where repeating the call is harmless; a request never sent always."""
    spec = SPECS.get(api, CallSpec())
    if isinstance(exc, ShopeeApiError):
        return exc.code == "error_rate_limit" or (spec.idempotent and exc.code in RETRYABLE_ERRORS)
    if isinstance(exc, ShopeeTransportError):
        return exc.retryable and (spec.idempotent or not exc.sent)
    return False


def _throttled(exc: BaseException) -> bool:
    return isinstance(exc, ShopeeApiError) and exc.code == "error_rate_limit"


@dataclass(frozen=True)
class ShopeeCredentials:
    base_url: str
    partner_id: int
    partner_key: str
    shop_id: int
    access_token: str | None
    refresh_token: str | None
    #: Bytes per part: 4,194,304 by default (4 MiB), or 4,000,000 where a gateway reads MB as decimal.
    part_size: int = PART_BYTES

    def __repr__(self) -> str:  # never show the secrets
        return f"ShopeeCredentials(base_url={self.base_url!r}, partner_id={self.partner_id}, shop_id={self.shop_id})"


class ShopeeHook(PlatformHook[ShopeeCredentials]):
    """Signed, retried calls to the Shopee Open Platform v2 for one shop.

    Connection (type ``shopee``): host = API host (``https://partner.shopeemobile.com``) or a host key
    (``global``, ``cn``, ``br``, ``sandbox``...), login = partner id, password = partner key, extra =
    ``access_token``, ``refresh_token``, ``shop_id`` (optionally ``part_size``: 4194304 or 4000000, and the
    settings every platform hook reads: ``timeout``, retries).

    :param shopee_conn_id: the connection to use.
    :param timeout: seconds to wait for a connection and between bytes of the answer.
    :param token_store_conn_id: the SQL connection where renewed tokens are kept for every task.
    :param keep_alive: ``tcp_keep_alive``, ``tcp_keep_alive_idle``, ``tcp_keep_alive_count``,
        ``tcp_keep_alive_interval`` as ``HttpHook`` takes them; the connection's extras of the same names win.
    """

    conn_name_attr = "shopee_conn_id"
    default_conn_name = SHOPEE_CONN_ID
    conn_type = "shopee"
    hook_name = "Shopee Open Platform"

    def is_throttle(self, exc: BaseException) -> bool:
        return _throttled(exc)

    def __init__(
        self,
        shopee_conn_id: str = default_conn_name,
        *,
        timeout: float = 60.0,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        throttle_pause_seconds: float = 2.0,
        token_store_conn_id: str = LEDGER_CONN_ID,
        **keep_alive: Any,
    ) -> None:
        policy = RetryPolicy(max_attempts, backoff_seconds, backoff_max_seconds, throttle_pause_seconds)
        super().__init__(
            shopee_conn_id,
            timeout=timeout,
            retry_policy=policy,
            ledger_conn_id=token_store_conn_id,
            **keep_alive,
        )
        self.shopee_conn_id = shopee_conn_id
        self.token_store_conn_id = token_store_conn_id
        self._authorization_refresh_token: str | None = None
        self._renewing = threading.Lock()

    # ------------------------------------------------------------------ connection

    def credentials_from(self, conn: Connection) -> ShopeeCredentials:
        name = f"Shopee connection {self.shopee_conn_id!r}"
        if not conn.host:
            raise AirflowFailException(
                f"{name} has no host: set the API host URL or a host key such as global"
            )
        partner_id = parse_id(conn.login)
        if partner_id is None or not conn.password:
            raise AirflowFailException(
                f"{name} needs the partner id (login, a number) and partner key (password)"
            )
        shop_id = parse_id(self.extra_option(conn, "shop_id"))
        if shop_id is None:
            raise AirflowFailException(f"{name} needs the shop's shop_id (a number) in its extra")
        try:
            base_url = resolve_host(conn.host)
            part_size = int(self.extra_option(conn, "part_size") or PART_BYTES)
        except ValueError as exc:
            raise AirflowFailException(f"{name}: {exc}") from None
        if part_size not in (PART_BYTES, PART_BYTES_DECIMAL):
            raise AirflowFailException(
                f"{name}: part_size {part_size} is neither {PART_BYTES} (4 MiB) nor {PART_BYTES_DECIMAL} bytes"
            )
        credentials = ShopeeCredentials(
            base_url,
            partner_id,
            conn.password,
            shop_id,
            self.extra_option(conn, "access_token"),
            self.extra_option(conn, "refresh_token"),
            part_size,
        )
        self._authorization_refresh_token = credentials.refresh_token
        for secret in (credentials.partner_key, credentials.access_token, credentials.refresh_token):
            if secret:
                mask_secret(secret)
        return credentials

    def _secrets(self) -> list[str]:
        c = self._credentials
        return [s for s in (c.partner_key, c.access_token, c.refresh_token) if s] if c else []

    # --------------------------------------------------------------------- signing

    def signed_query(self, api: str, query: Mapping[str, Any] | None = None) -> dict[str, str]:
        """The common parameters (signed as the call's type wants: Public for parts and complete, as the
        API pages type them; Shop for the others) plus ``query``."""
        credentials = self.credentials
        shop = APIS[api].api_type == ApiType.SHOP
        if shop and not credentials.access_token:
            raise AirflowFailException(
                f"Shopee connection {self.shopee_conn_id!r} has no access_token in its extra; authorize the shop "
                "and store the token"
            )
        signed = common_params(
            credentials.partner_id,
            credentials.partner_key,
            api,
            int(time.time()),
            credentials.access_token if shop else None,
            credentials.shop_id if shop else None,
        )
        return {**{name: _text(value) for name, value in (query or {}).items()}, **signed}

    # ------------------------------------------------------------------- envelope

    def parse_response(self, api: str, status: int, body: Any) -> dict[str, Any]:
        """The success body, or the matching :class:`ShopeeError`; decided on ``error``, not the status."""
        if not isinstance(body, dict) or ("error" not in body and "request_id" not in body):
            raise ShopeeTransportError(
                api, f"HTTP {status} with a body that is not Shopee's envelope", retryable=status >= 500
            )
        error = str(body.get("error") or "")
        if error:
            raise api_error(api, error, mask_text(message_of(body), self._secrets()), body.get("request_id"))
        if api not in _NO_RESPONSE and not isinstance(body.get("response"), dict):
            raise ShopeeApiError(
                api, "missing_response", "a success envelope without its response", body.get("request_id")
            )
        return body

    # ---------------------------------------------------------------- sync calls

    def call(
        self,
        api: str,
        body: Mapping[str, Any] | None = None,
        *,
        query: Mapping[str, Any] | None = None,
        file: FilePart | None = None,
    ) -> dict[str, Any]:
        """Call ``api`` (e.g. ``/api/v2/media_space/init_video_upload``) and return the success body.

        Retryable failures are retried with jittered backoff; an access token Shopee refuses is renewed once
        for the deployment with the refresh token.
        """
        for renewals in range(3):  # a pair another task stored may be stale too: then this task refreshes
            used = self.credentials.access_token
            try:
                return self._retrying(api)(self._send, api, body, query, file)
            except ShopeeApiError as exc:
                if exc.code not in AUTH_ERRORS or APIS[api].api_type != ApiType.SHOP or renewals == 2:
                    raise
                if not self.credentials.refresh_token:
                    raise ShopeeRefusal(
                        api,
                        exc.error,
                        f"{exc.message}; connection {self.shopee_conn_id!r} has no refresh_token",
                    ) from None
            self.renew_access_token(used)
        raise AssertionError("unreachable")

    def _retrying(self, api: str) -> tenacity.Retrying:
        return self.retry_policy.retrying(
            lambda exc: is_retryable(exc, api), _throttled, self.log, self.throttled
        )

    def _send(
        self,
        api: str,
        body: Mapping[str, Any] | None,
        query: Mapping[str, Any] | None,
        file: FilePart | None,
    ) -> dict[str, Any]:
        url = f"{self.credentials.base_url}{api}"
        spec = SPECS.get(api, CallSpec())
        timeout = (self.timeout, max(self.timeout, spec.read_timeout or 0))
        params = self.signed_query(api, query)
        try:
            if APIS[api].method == "GET":
                response = self.request("GET", url, params=params, timeout=timeout)
            elif file is not None:
                form = MultipartBody({name: _text(value) for name, value in (body or {}).items()}, file)
                headers = {"Content-Type": form.content_type}
                response = self.request(
                    "POST", url, params=params, data=form, headers=headers, timeout=timeout
                )
            else:
                response = self.request("POST", url, params=params, json=dict(body or {}), timeout=timeout)
        except requests.RequestException as exc:
            raise self._transport_error(api, exc, url) from None
        try:
            answer = response.json()
        except ValueError:
            raise ShopeeTransportError(
                api,
                f"HTTP {response.status_code} with a non-JSON body of {len(response.content)} bytes",
                retryable=response.status_code >= 500,
            ) from None
        return self.parse_response(api, response.status_code, answer)

    def _transport_error(self, api: str, exc: BaseException, url: str) -> ShopeeTransportError:
        failure = self.transport_failure(exc, url)
        return ShopeeTransportError(
            api,
            mask_text(failure.description, self._secrets()),
            retryable=failure.retryable,
            sent=failure.sent,
        )

    # --------------------------------------------------------------- async reads

    async def acall(self, api: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The async twin of :meth:`call` for reads (triggers poll with it); signs the same way."""
        await self.acredentials()
        for renewals in range(3):
            used = self.credentials.access_token
            try:
                return await self.retry_policy.aretrying(
                    lambda exc: is_retryable(exc, api), _throttled, self.log, self.throttled
                )(self._asend, api, query)
            except ShopeeApiError as exc:
                if exc.code not in AUTH_ERRORS or renewals == 2 or not self.credentials.refresh_token:
                    raise
            await asyncio.to_thread(self.renew_access_token, used)  # database and HTTP, off the event loop
        raise AssertionError("unreachable")

    async def _asend(self, api: str, query: Mapping[str, Any] | None) -> dict[str, Any]:
        import aiohttp

        await self.budget.atake()
        url = f"{self.credentials.base_url}{api}"
        timeout = aiohttp.ClientTimeout(sock_connect=self.timeout, sock_read=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(
                    url, params=self.signed_query(api, query), **self.aiohttp_options(url)
                ) as response,
            ):
                status, raw = response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(api, exc, url) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise ShopeeTransportError(
                api, f"HTTP {status} with a non-JSON body of {len(raw)} bytes", retryable=status >= 500
            ) from None
        return self.parse_response(api, status, answer)

    # ------------------------------------------------------------------ tokens

    def renew_access_token(self, refused: str | None) -> None:
        """Shopee refused the access token ``refused``: renew it once for the whole deployment (see
        :mod:`media_upload.token_store`); a pair another task renewed already is taken as it is."""
        from media_upload.token_store import NoFernetKey, TokenStore, lineage

        with self._renewing:
            credentials = self.credentials
            if credentials.access_token != refused:
                return  # another thread of this task renewed it meanwhile
            try:
                pair, refreshed = TokenStore(self.token_store_conn_id).renew(
                    lineage(
                        f"shopee:{credentials.partner_id}:{credentials.shop_id}",
                        self._authorization_refresh_token or "",
                    ),
                    credentials.access_token or "",
                    credentials.refresh_token or "",
                    self._refresh,
                    refreshed_by=f"connection {self.shopee_conn_id}",
                )
            except NoFernetKey as exc:
                self.token_renewed("failed")
                raise AirflowFailException(
                    f"Shopee refused the access token of connection {self.shopee_conn_id!r}; {exc}"
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
            self.log.warning(
                "Shopee refused the access token of connection %r; %s",
                self.shopee_conn_id,
                "it was renewed and the new pair kept for every task"
                if refreshed
                else "another task had renewed it",
            )

    def create_access_token(self, code: str) -> dict[str, Any]:
        """/auth/token/get: the shop's first access and refresh tokens from an authorization code. Sent once:
        the code is single-use, so a repeat after a lost answer could only be refused."""
        credentials = self.credentials
        mask_secret(code)
        body = self._send(
            GET_ACCESS_TOKEN,
            {"code": code, "partner_id": credentials.partner_id, "shop_id": credentials.shop_id},
            None,
            None,
        )
        for name in ("access_token", "refresh_token"):
            if body.get(name):
                mask_secret(str(body[name]))
        return body

    def _refresh(self, refresh_token: str) -> dict[str, Any]:
        """/auth/access_token/get: a new access token and a new refresh token (the used one is revoked)."""
        credentials = self.credentials
        body = self._retrying(REFRESH_ACCESS_TOKEN)(
            self._send,
            REFRESH_ACCESS_TOKEN,
            {
                "refresh_token": refresh_token,
                "partner_id": credentials.partner_id,
                "shop_id": credentials.shop_id,
            },
            None,
            None,
        )
        for name in ("access_token", "refresh_token"):
            if body.get(name):
                mask_secret(str(body[name]))
        return {
            "access_token": body["access_token"],
            "refresh_token": body.get("refresh_token"),
            "expires_in": body.get("expire_in"),
        }

    # ------------------------------------------------------------------ API steps

    def init_video_upload(self, file_md5: str, file_size: int) -> str:
        """init_video_upload for the whole file: its ``video_upload_id``."""
        body = self.call(INIT_VIDEO_UPLOAD, {"file_md5": file_md5, "file_size": file_size})
        return str(body["response"]["video_upload_id"])

    def upload_video_part(self, video_upload_id: str, part_seq: int, data: bytes) -> str:
        """upload_video_part (``part_seq`` from 0) with the part's MD5; returns that MD5 as the part's tag."""
        md5 = hashlib.md5(data).hexdigest()
        self.call(
            UPLOAD_VIDEO_PART,
            {"video_upload_id": video_upload_id, "part_seq": part_seq, "content_md5": md5},
            file=FilePart("part_content", data, "part_content"),
        )
        return md5

    def complete_video_upload(self, video_upload_id: str, part_seqs: list[int], upload_cost_ms: int) -> None:
        """complete_video_upload: every part's sequence number; starts Shopee's transcoding."""
        self.call(
            COMPLETE_VIDEO_UPLOAD,
            {
                "video_upload_id": video_upload_id,
                "part_seq_list": sorted(part_seqs),
                "report_data": {"upload_cost": int(upload_cost_ms)},
            },
        )

    def get_video_upload_result(self, video_upload_id: str) -> dict[str, Any]:
        """``{status, message, video_info?}``; only ``SUCCEEDED`` may go on an item."""
        body = self.call(GET_VIDEO_UPLOAD_RESULT, query={"video_upload_id": video_upload_id})
        return dict(body["response"])

    async def aget_video_upload_result(self, video_upload_id: str) -> dict[str, Any]:
        body = await self.acall(GET_VIDEO_UPLOAD_RESULT, {"video_upload_id": video_upload_id})
        return dict(body["response"])

    def cancel_video_upload(self, video_upload_id: str) -> None:
        self.call(CANCEL_VIDEO_UPLOAD, {"video_upload_id": video_upload_id})

    def get_items(self, item_ids: Sequence[str | int]) -> dict[str, dict[str, Any]]:
        """get_item_base_info for up to 50 items: each found item's info by id (missing ones are absent)."""
        body = self.call(GET_ITEM_BASE_INFO, query={"item_id_list": ",".join(str(i) for i in item_ids)})
        return {str(item["item_id"]): dict(item) for item in body["response"].get("item_list") or []}

    def set_item_video(self, item_id: str | int, video_upload_id: str | None) -> dict[str, Any]:
        """update_item with ``video_upload_id`` (or blank, to remove the item's video)."""
        self.call(
            UPDATE_ITEM, {"item_id": int(item_id), "video_upload_id": video_upload_id_field(video_upload_id)}
        )
        self.log.info("Item %s now carries video upload %s", item_id, video_upload_id or "none")
        return {"item_id": str(item_id), "video_id": video_upload_id}

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button: one signed shop call proves host, partner id, key, token and shop."""
        try:
            self.get_items([0])
        except ShopeeApiError as exc:
            if exc.code in ("error_item_not_found", "error_param"):  # signed and authorized: no item 0
                return True, f"Connected to {self.credentials.base_url} as shop {self.credentials.shop_id}"
            return False, mask_text(str(exc), self._secrets())
        except Exception as exc:
            return False, mask_text(str(exc), self._secrets())
        return True, f"Connected to {self.credentials.base_url} as shop {self.credentials.shop_id}"


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
