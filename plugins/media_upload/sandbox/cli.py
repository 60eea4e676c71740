"""``media-sandbox``: run a platform emulator in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

from media_upload.sandbox.huawei_vod import HuaweiVodSandbox, HuaweiVodSandboxConfig
from media_upload.sandbox.lazada import LazadaSandbox, LazadaSandboxConfig
from media_upload.sandbox.shopee import ShopeeSandbox, ShopeeSandboxConfig

C = TypeVar("C", LazadaSandboxConfig, HuaweiVodSandboxConfig, ShopeeSandboxConfig)


def _config(config_type: type[C], args: argparse.Namespace) -> C:
    """The emulator's configuration from the flags named after its fields; the data folder is created."""
    if getattr(args, "data_dir", None):
        args.data_dir.mkdir(parents=True, exist_ok=True)
    given = {
        field.name: getattr(args, field.name) for field in fields(config_type) if hasattr(args, field.name)
    }
    return config_type(**given)


def _add_shared_flags(parser: argparse.ArgumentParser) -> None:
    """What every emulator shares: the link model (a slow or distant link) and random faults."""
    parser.add_argument(
        "--bandwidth-per-connection",
        type=float,
        default=0.0,
        metavar="MB/S",
        help="cap each connection's request and response bodies at this many MB (10**6 bytes) per second; 0: no cap",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="round-trip time added to every request (and once more for a new connection's handshake)",
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="share of requests that meet a random fault (503 page, throttling, reset, lost answer, late answer)",
    )
    parser.add_argument("--fault-seed", type=int, help="seed of the random faults, to run a campaign again")
    parser.add_argument("--slow-seconds", type=float, default=3.0, help="how late a late answer is")
    parser.add_argument(
        "--public-url",
        help="the base URL clients use to reach this emulator, when it differs from the bound address "
        "(e.g. http://lazada-sandbox:8787 in a container); it appears in connections and signed URLs",
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )


def _subcommand(
    commands: argparse._SubParsersAction, name: str, port: int, help: str
) -> argparse.ArgumentParser:
    """An emulator's subcommand with the address it binds to."""
    parser = commands.add_parser(name, help=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port, help="0 picks a free port")
    return parser


def _add_token_flags(
    parser: argparse.ArgumentParser, defaults: LazadaSandboxConfig | ShopeeSandboxConfig
) -> None:
    """The tokens an OAuth platform's emulator accepts from the start, and how long new ones live."""
    parser.add_argument("--access-token", default=defaults.access_token)
    parser.add_argument("--refresh-token", default=defaults.refresh_token)
    parser.add_argument("--access-token-ttl", type=float, default=defaults.access_token_ttl, help="seconds")
    parser.add_argument("--refresh-token-ttl", type=float, default=defaults.refresh_token_ttl, help="seconds")


def _lazada_parser(commands: argparse._SubParsersAction) -> None:
    defaults = LazadaSandboxConfig()
    parser = _subcommand(
        commands,
        "lazada",
        8787,
        "Lazada Open Platform gateway (Media Center, images, products, tokens) at http://HOST:PORT/rest",
    )
    parser.add_argument("--app-key", default=defaults.app_key)
    parser.add_argument("--app-secret", default=defaults.app_secret)
    _add_token_flags(parser, defaults)
    parser.add_argument(
        "--audit-seconds",
        type=float,
        default=defaults.audit_seconds,
        help="seconds from commit to AUDIT_SUCCESS, in three equal steps",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where blocks, videos and images are stored (default: a temporary folder)",
    )
    parser.add_argument(
        "--upload-ttl", type=float, default=defaults.upload_ttl, help="seconds an upload id lives"
    )
    parser.add_argument(
        "--capacity-bytes", type=int, default=defaults.capacity_bytes, help="seller video quota"
    )
    parser.add_argument(
        "--rate-limit", type=int, default=0, help="calls per second per API before ApiCallLimit"
    )
    parser.add_argument(
        "--app-calls-per-second",
        type=float,
        default=defaults.app_calls_per_second,
        help="token bucket of the app's calls (0: off); an empty bucket answers ApiCallLimit and bans",
    )
    parser.add_argument(
        "--seller-calls-per-second",
        type=float,
        default=defaults.seller_calls_per_second,
        help="token bucket of the seller's calls, those with its access token (0: off)",
    )
    parser.add_argument(
        "--call-burst",
        type=float,
        default=defaults.call_burst,
        help="calls a bucket saves up (0: one second's)",
    )
    parser.add_argument(
        "--ban-seconds", type=float, default=defaults.ban_seconds, help='"this ban will last N seconds"'
    )
    parser.add_argument(
        "--failure-shape",
        choices=["code", "result_code"],
        default=defaults.failure_shape,
        help="how Media Center FAIL_TO_* errors are shaped",
    )
    parser.add_argument("--success-as-string", action="store_true", help='send "true" and numbers as strings')
    parser.add_argument("--strict-cover", action="store_true", help="require a slatic.net cover URL")
    parser.add_argument("--min-block-bytes", type=int, default=0, help="smallest non-last block accepted")
    parser.add_argument(
        "--push-url",
        help="post signed video state messages (push message type 7) here, e.g. "
        "http://localhost:8080/media-uploads/push/lazada/lazada_default",
    )
    parser.add_argument(
        "--push-retry-seconds",
        type=float,
        default=defaults.push_retry_seconds,
        help="wait between deliveries of a message the callback did not answer with HTTP 200",
    )
    parser.add_argument(
        "--push-retries", type=int, default=defaults.push_retries, help="deliveries after the first"
    )
    _add_shared_flags(parser)
    parser.set_defaults(run=_run_lazada)


def _run_lazada(args: argparse.Namespace) -> LazadaSandbox:
    config = _config(LazadaSandboxConfig, args)
    sandbox = LazadaSandbox(config, host=args.host, port=args.port, log_level=args.log_level)
    sandbox.start()
    print(
        f"Lazada sandbox serving {sandbox.gateway_url}\n"
        f"  app key       {config.app_key}\n"
        f"  app secret    {config.app_secret}\n"
        f"  access token  {config.access_token}\n"
        f"  refresh token {config.refresh_token}\n"
        f"  audit         {config.audit_seconds:g} s to AUDIT_SUCCESS "
        "(put [AUDIT_FAILED] or [TRANSCODE_FAILED] in a title to fail it)\n"
        f"  link          {config.link.describe()}\n"
        f"  push          {config.push_url or 'off'}\n"
        f"  data dir      {sandbox.backend.data_dir}\n"
        f"  inspect       {sandbox.url}/_sandbox/lazada/state   (API docs: {sandbox.url}/_sandbox/docs)\n"
        f"\nexport AIRFLOW_CONN_LAZADA_DEFAULT='{json.dumps(sandbox.airflow_connection())}'",
        flush=True,
    )
    return sandbox


def _huawei_vod_parser(commands: argparse._SubParsersAction) -> None:
    defaults = HuaweiVodSandboxConfig()
    parser = _subcommand(
        commands,
        "huawei-vod",
        8788,
        "Huawei Cloud VOD upload APIs plus the OBS bucket of their signed URLs, at http://HOST:PORT",
    )
    parser.add_argument("--ak", default=defaults.ak, help="access key id")
    parser.add_argument("--sk", default=defaults.sk, help="secret access key")
    parser.add_argument("--project-id", default=defaults.project_id)
    parser.add_argument("--region", default=defaults.region)
    parser.add_argument(
        "--transcode-seconds",
        type=float,
        default=defaults.transcode_seconds,
        help="seconds from ConfirmAssetUpload to the final status",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="where parts and objects are stored (default: a temporary folder)"
    )
    parser.add_argument(
        "--sign-ttl", type=float, default=defaults.sign_ttl, help="seconds a signed URL lives"
    )
    parser.add_argument(
        "--min-part-bytes", type=int, default=defaults.min_part_bytes, help="smallest non-last part"
    )
    parser.add_argument("--auth-token", help="also accept this X-Auth-Token (IAM token clients)")
    parser.add_argument(
        "--calls-per-minute",
        type=float,
        default=defaults.calls_per_minute,
        help="VOD API calls per minute for the project (0: off); beyond it 429 APIG.0308",
    )
    parser.add_argument(
        "--obs-requests-per-second",
        type=float,
        default=defaults.obs_requests_per_second,
        help="OBS requests per second to the bucket (0: off); beyond it 503 SlowDown",
    )
    parser.add_argument(
        "--push-url",
        help="post MFS event notifications (createComplete, transcodeComplete) here, e.g. "
        "http://localhost:8080/media-uploads/push/huawei-vod/huawei_vod_default",
    )
    parser.add_argument(
        "--push-key", help="the authentication key that signs them (auth_sign); none: unsigned"
    )
    parser.add_argument(
        "--push-retry-seconds",
        type=float,
        nargs="+",
        default=list(defaults.push_retry_seconds),
        help="waits before each new delivery of a notification not answered HTTP 200",
    )
    _add_shared_flags(parser)
    parser.set_defaults(run=_run_huawei_vod)


def _run_huawei_vod(args: argparse.Namespace) -> HuaweiVodSandbox:
    config = _config(HuaweiVodSandboxConfig, args)
    sandbox = HuaweiVodSandbox(config, host=args.host, port=args.port, log_level=args.log_level).start()
    print(
        f"Huawei Cloud VOD sandbox serving {sandbox.endpoint}\n"
        f"  access key    {config.ak}\n"
        f"  secret key    {config.sk}\n"
        f"  project id    {config.project_id}\n"
        f"  bucket        {config.bucket} (signed URLs are path-style on the same host)\n"
        f"  transcode     {config.transcode_seconds:g} s after confirm "
        "(put [TRANSCODE_FAILED], [UPLOAD_FAILED] or [SERVER_ERROR] in a title to fail it)\n"
        f"  push          {config.push_url or 'off'}\n"
        f"  link          {config.link.describe()}\n"
        f"  data dir      {sandbox.backend.data_dir}\n"
        f"  inspect       {sandbox.endpoint}/_sandbox/huawei-vod/state   (API docs: {sandbox.endpoint}/_sandbox/docs)\n"
        f"\nexport AIRFLOW_CONN_HUAWEI_VOD_DEFAULT='{json.dumps(sandbox.airflow_connection())}'",
        flush=True,
    )
    return sandbox


def _seconds_list(text: str) -> tuple[float, ...]:
    """``300,1800,10800``: the waits before each redelivery."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of seconds") from None


def _shopee_parser(commands: argparse._SubParsersAction) -> None:
    defaults = ShopeeSandboxConfig()
    parser = _subcommand(
        commands,
        "shopee",
        8789,
        "Shopee Open Platform v2 gateway (media_space video upload, items, tokens, push) at http://HOST:PORT/api/v2",
    )
    parser.add_argument("--partner-id", type=int, default=defaults.partner_id)
    parser.add_argument("--partner-key", default=defaults.partner_key)
    parser.add_argument("--shop-id", type=int, default=defaults.shop_id)
    _add_token_flags(parser, defaults)
    parser.add_argument(
        "--region", default=defaults.region, help="the shop's market: upload id prefix, URL labels"
    )
    parser.add_argument(
        "--transcode-seconds",
        type=float,
        default=defaults.transcode_seconds,
        help="seconds from complete_video_upload to SUCCEEDED or FAILED",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where parts and assembled videos are stored (default: a temporary folder)",
    )
    parser.add_argument(
        "--upload-ttl", type=float, default=defaults.upload_ttl, help="seconds an upload may stay INITIATED"
    )
    parser.add_argument(
        "--part-bytes",
        type=int,
        default=defaults.part_bytes,
        help='"4MB": 4194304, or 4000000 for the decimal reading',
    )
    parser.add_argument(
        "--part-size-rule",
        choices=["exact", "lenient"],
        default=defaults.part_size_rule,
        help="exact: every part but the last is exactly --part-bytes; lenient: any part up to it",
    )
    parser.add_argument(
        "--max-file-bytes",
        type=int,
        default=defaults.max_file_bytes,
        help='"maximum is 30MB": 31457280, or 30000000 for the decimal reading',
    )
    parser.add_argument(
        "--bare-errors", action="store_true", help="error_param instead of product.error_param on API errors"
    )
    parser.add_argument(
        "--http-error-status",
        action="store_true",
        help="gateway errors with HTTP 403 and error_rate_limit with 429 (default: every error with 200)",
    )
    parser.add_argument(
        "--complete-mismatch",
        choices=["error", "failed"],
        default=defaults.complete_mismatch,
        help="parts that disagree with init: error_param at complete, or accept and end FAILED",
    )
    parser.add_argument(
        "--rate-limit", type=int, default=0, help="calls per second per API before error_rate_limit"
    )
    parser.add_argument(
        "--shop-calls-per-second",
        type=float,
        default=defaults.shop_calls_per_second,
        help="token bucket of the shop's calls (0: off); beyond it error_rate_limit",
    )
    parser.add_argument(
        "--push-url",
        help="post signed video_upload_push (code 11) messages here, e.g. a test's receiver (the provider polls Shopee instead)",
    )
    parser.add_argument("--push-partner-key", help="sign pushes with this key instead of the partner key")
    parser.add_argument(
        "--push-retry-seconds",
        type=_seconds_list,
        default=defaults.push_retry_seconds,
        metavar="S,S,S",
        help="waits before each redelivery of a message not answered 2xx with an empty body",
    )
    parser.add_argument("--push-timeout", type=float, default=defaults.push_timeout, help="seconds")
    parser.add_argument(
        "--push-duplicate-rate", type=float, default=0.0, help="share of messages delivered twice"
    )
    parser.add_argument(
        "--push-jitter-seconds",
        type=float,
        default=0.0,
        help="each delivery waits a random 0..this many seconds, so messages arrive out of order",
    )
    _add_shared_flags(parser)
    parser.set_defaults(run=_run_shopee)


def _run_shopee(args: argparse.Namespace) -> ShopeeSandbox:
    config = _config(ShopeeSandboxConfig, args)
    sandbox = ShopeeSandbox(config, host=args.host, port=args.port, log_level=args.log_level).start()
    print(
        f"Shopee sandbox serving {sandbox.gateway_url} (SDK base_url {sandbox.sdk_base_url})\n"
        f"  partner id    {config.partner_id}\n"
        f"  partner key   {config.partner_key}\n"
        f"  shop id       {config.shop_id}\n"
        f"  access token  {config.access_token}\n"
        f"  refresh token {config.refresh_token}\n"
        f"  parts         {config.part_bytes} bytes ({config.part_size_rule}), files up to {config.max_file_bytes} bytes\n"
        f"  transcode     {config.transcode_seconds:g} s to the result (a video outside 10-60 s or over 1280 px "
        "ends FAILED; so does POST /_sandbox/shopee/uploads/{id}/outcome)\n"
        f"  link          {config.link.describe()}\n"
        f"  push          {config.push_url or 'off'}\n"
        f"  data dir      {sandbox.backend.data_dir}\n"
        f"  inspect       {sandbox.url}/_sandbox/shopee/state   (API docs: {sandbox.url}/_sandbox/docs)\n"
        f"\nexport AIRFLOW_CONN_SHOPEE_DEFAULT='{json.dumps(sandbox.airflow_connection())}'",
        flush=True,
    )
    return sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="media-sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="service", required=True)
    _lazada_parser(commands)
    _huawei_vod_parser(commands)
    _shopee_parser(commands)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sandbox: LazadaSandbox | HuaweiVodSandbox | ShopeeSandbox = args.run(args)
    except RuntimeError as exc:
        print(f"media-sandbox: {exc}", file=sys.stderr)
        return 1
    stop.wait()
    sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
