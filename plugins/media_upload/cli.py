"""``media-upload``: read the upload ledger, decide the rows that need a person, create platform tokens.

A row in ``needs_attention`` blocks every new upload of its product and content: nothing is uploaded
again until a person says what happened. Run it where Airflow runs (same ``AIRFLOW_HOME`` and
connections), so it reaches the ledger the tasks use::

    media-upload list --state needs_attention
    media-upload decide sku:SHOE-42 --video-id 3001234567      # the video exists: adopt it
    media-upload decide sku:SHOE-42 --upload-again             # it does not: the next run uploads anew
    media-upload lazada-token                                  # a seller's authorization code → tokens
    media-upload shopee-token                                  # a shop's authorization code → tokens

The authorization code is read from a prompt (or from standard input when it is not a terminal), never
from the command line, where other users and the shell's history would see it. Values that came from
manifests or platforms are printed with their control characters escaped.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence

from media_upload.ledger import COMMITTED, DEFAULT_CONN_ID, FAILED, NEEDS_ATTENTION, LedgerEntry, UploadLedger
from media_upload.masking import printable
from media_upload.platforms import STEPS

COLUMNS = ("platform", "account", "product", "content", "state", "upload_id", "video_id", "updated_at")


def _row(entry: LedgerEntry) -> list[str]:
    fields = [
        entry.platform,
        entry.account,
        entry.product,
        entry.content_sha256[:12],
        entry.state,
        entry.upload_id or "",
        entry.video_id or "",
        entry.updated_at,
    ]
    return [printable(str(field)) for field in fields]


def _list(ledger: UploadLedger, args: argparse.Namespace) -> int:
    rows = [
        entry
        for entry in ledger.all()
        if (not args.state or entry.state == args.state)
        and (not args.platform or entry.platform == args.platform)
    ]
    table = [list(COLUMNS)] + [_row(entry) for entry in rows]
    widths = [max(len(line[column]) for line in table) for column in range(len(COLUMNS))]
    for line in table:
        print("  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip())
    for entry in rows:
        if entry.reason and entry.state == NEEDS_ATTENTION:
            print()
            print(printable(f"{entry.product} ({entry.content_sha256[:12]}): {entry.reason}"))
    return 0


def _decide(ledger: UploadLedger, args: argparse.Namespace) -> int:
    matches = [
        entry
        for entry in ledger.all()
        if entry.product == args.product
        and entry.state == NEEDS_ATTENTION
        and entry.content_sha256.startswith(args.content or "")
        and (not args.platform or entry.platform == args.platform)
    ]
    if len(matches) != 1:
        print(
            f"{len(matches)} needs-attention row(s) match product {args.product!r}"
            f"{f' and content {args.content!r}' if args.content else ''}: "
            + ("give --content (and --platform) to pick one" if matches else "see `media-upload list`"),
            file=sys.stderr,
        )
        return 2
    (entry,) = matches
    if args.video_id:
        changes = {
            "state": COMMITTED,
            "video_id": args.video_id,
            "reason": f"a person adopted video {args.video_id}",
        }
    else:
        changes = {
            "state": FAILED,
            "reason": f"a person chose to upload again (was: {entry.reason or 'needs attention'})",
        }
    if ledger.transition(entry, [NEEDS_ATTENTION], **changes) is None:
        print("the row changed meanwhile; list it again", file=sys.stderr)
        return 1
    print(
        printable(
            f"{entry.platform} {entry.product} ({entry.content_sha256[:12]}): {changes['state']} · {changes['reason']}"
        )
    )
    return 0


def _lazada_token(args: argparse.Namespace) -> int:
    """/auth/token/create with the code; the tokens (and the seller id pushes name) go into the connection."""
    from media_upload.hooks.lazada import LazadaHook

    def exchange(code: str) -> tuple[dict[str, str], str]:
        body = LazadaHook(lazada_conn_id=args.conn).create_access_token(code)
        tokens = {
            "access_token": str(body["access_token"]),
            "refresh_token": str(body.get("refresh_token") or ""),
        }
        # The seller id, which pushed messages name (see "Push instead of polling" in docs/lazada-provider.md).
        sellers = body.get("country_user_info") or body.get("country_user_info_list") or [{}]
        if sellers[0].get("seller_id"):
            tokens["seller_id"] = str(sellers[0]["seller_id"])
        return tokens, _facts(body, "account", "country", "expires_in", "refresh_expires_in")

    return _store_tokens("Lazada", args, exchange)


def _shopee_token(args: argparse.Namespace) -> int:
    """/api/v2/auth/token/get with the code for the connection's shop; the tokens go into the connection."""
    from media_upload.hooks.shopee import ShopeeHook

    def exchange(code: str) -> tuple[dict[str, str], str]:
        hook = ShopeeHook(args.conn)
        body = hook.create_access_token(code)
        tokens = {"access_token": str(body["access_token"]), "refresh_token": str(body["refresh_token"])}
        return tokens, f"shop {hook.credentials.shop_id}, {_facts(body, 'expire_in')}"

    return _store_tokens("Shopee", args, exchange)


def _facts(body: dict, *names: str) -> str:
    return ", ".join(f"{name} {printable(str(body[name]))}" for name in names if name in body)


def _store_tokens(
    platform: str, args: argparse.Namespace, exchange: Callable[[str], tuple[dict[str, str], str]]
) -> int:
    """Exchange the code read from a prompt, then write the tokens into the connection's extra in the
    metadata database, or print them with ``--show`` (for connections kept in environment variables or a
    secrets backend, which this command cannot write). Never prints them otherwise."""
    from airflow.models import Connection
    from airflow.sdk.exceptions import AirflowException
    from airflow.utils.session import create_session
    from sqlalchemy import select

    code = _read_code()
    if not code:
        print("no authorization code given", file=sys.stderr)
        return 2
    try:
        tokens, facts = exchange(code)
    except AirflowException as exc:  # a refused or spent code, a wrong key: the message says what to do
        print(exc, file=sys.stderr)
        return 1
    if args.show:
        print(f"{platform} authorized {facts}. Put this in the extra of connection {args.conn!r}:")
        print(json.dumps(tokens))
        return 0
    with create_session() as session:
        connection = session.scalar(select(Connection).where(Connection.conn_id == args.conn))
        if connection is None:
            print(
                f"Connection {args.conn!r} is not in the metadata database (an environment variable or a "
                "secrets backend holds it): the code is spent, so create a new one and run again with --show",
                file=sys.stderr,
            )
            return 1
        connection.set_extra(json.dumps({**connection.extra_dejson, **tokens}))
    print(f"{platform} authorized {facts}; the tokens are in connection {args.conn!r}")
    return 0


def _read_code() -> str:
    """The seller's authorization code: typed at a prompt that does not echo it, or one line of stdin."""
    if sys.stdin.isatty():
        return getpass.getpass("Authorization code (from your callback URL's code=...): ").strip()
    return sys.stdin.readline().strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="media-upload", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID, help="the ledger's Airflow connection")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the ledger's rows")
    listing.add_argument("--state", help="only rows in this state, e.g. needs_attention")
    listing.add_argument("--platform", choices=sorted(STEPS))
    decide = commands.add_parser("decide", help="settle a needs-attention row")
    decide.add_argument("product", help="the row's product as listed, e.g. sku:SHOE-42 or item:1234")
    decide.add_argument("--content", help="the start of the content hash, when the product has several rows")
    decide.add_argument("--platform", choices=sorted(STEPS))
    choice = decide.add_mutually_exclusive_group(required=True)
    choice.add_argument(
        "--video-id",
        help="the video (Lazada), video_upload_id (Shopee) or asset (VOD) the platform made: adopt it",
    )
    choice.add_argument(
        "--upload-again", action="store_true", help="none was made: the next run uploads anew"
    )
    for platform, default, code_from in (
        ("lazada", "lazada_default", "Lazada's authorize page sent to your callback, single-use, 30 minutes"),
        (
            "shopee",
            "shopee_default",
            "Shopee's auth_partner page sent to your callback, single-use, 10 minutes",
        ),
    ):
        token = commands.add_parser(
            f"{platform}-token",
            help=f"create {platform.title()} tokens from an authorization code (the code {code_from}), read "
            "from a prompt or standard input",
        )
        token.add_argument(
            f"--{platform}-conn-id", dest="conn", default=default, help="the connection with the app's keys"
        )
        token.add_argument("--show", action="store_true", help="print the tokens instead of storing them")
    args = parser.parse_args(argv)
    if args.command.endswith("-token"):
        return _lazada_token(args) if args.command == "lazada-token" else _shopee_token(args)
    ledger = UploadLedger(args.conn_id)
    try:
        return _list(ledger, args) if args.command == "list" else _decide(ledger, args)
    finally:
        ledger.close()


if __name__ == "__main__":
    sys.exit(main())
