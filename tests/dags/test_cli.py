"""``media-upload lazada-token`` and ``shopee-token``: an authorization code becomes working tokens in the
connection."""

from __future__ import annotations

import io
import json
import time

import pytest
import requests
from airflow.models import Connection
from airflow.utils.session import create_session
from sqlalchemy import delete

from media_upload.cli import main as cli
from media_upload.hooks.lazada import LazadaHook
from media_upload.hooks.shopee import ShopeeHook
from media_upload.protocols.shopee import common_params
from tests.dags.conftest import airflow_db  # noqa: F401  (fixture)


def authorization_code(sandbox) -> str:
    """What the seller's browser brings back from Lazada's authorize page (the emulator approves at once)."""
    answer = requests.get(
        f"{sandbox.url}/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": sandbox.config.app_key,
            "redirect_uri": "https://seller.test/cb",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code in (302, 303, 307), answer.text
    return answer.headers["location"].split("code=", 1)[1].split("&", 1)[0]


@pytest.fixture
def stored_connection(lazada_sandbox, airflow_db):  # noqa: F811
    """A ``lazada`` connection in the metadata database with the app key and secret but no tokens yet."""
    conn = lazada_sandbox.airflow_connection()
    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id == "lazada_new_seller"))
        session.add(
            Connection(
                conn_id="lazada_new_seller",
                conn_type="lazada",
                host=conn["host"],
                login=conn["login"],
                password=conn["password"],
            )
        )
    yield "lazada_new_seller"
    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id == "lazada_new_seller"))


def typed(monkeypatch, code: str) -> None:
    """The code arrives on standard input (a pipe), as from `... | media-upload lazada-token`."""
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{code}\n"))


def test_the_tokens_go_into_the_connection_and_work(lazada_sandbox, stored_connection, capsys, monkeypatch):
    code = authorization_code(lazada_sandbox)
    with pytest.raises(SystemExit):  # never an argument: the shell's history and `ps` would show it
        cli(["lazada-token", code, "--lazada-conn-id", stored_connection])
    typed(monkeypatch, code)
    assert cli(["lazada-token", "--lazada-conn-id", stored_connection]) == 0
    out = capsys.readouterr().out
    with create_session() as session:
        extra = session.query(Connection).filter_by(conn_id=stored_connection).one().extra_dejson
    assert extra["access_token"] and extra["refresh_token"]
    assert extra["seller_id"] == lazada_sandbox.config.seller_id  # what pushed messages name
    assert extra["access_token"] not in out and extra["refresh_token"] not in out  # never on the screen
    assert "expires_in" in out
    assert LazadaHook(lazada_conn_id=stored_connection).get_video_quota()["capacity_size"] > 0  # they work
    # The code is single-use: a second exchange is refused with Lazada's answer, and nothing changes.
    typed(monkeypatch, code)
    assert cli(["lazada-token", "--lazada-conn-id", stored_connection]) == 1
    assert "InvalidCode" in capsys.readouterr().err
    with create_session() as session:
        assert session.query(Connection).filter_by(conn_id=stored_connection).one().extra_dejson == extra


def test_a_connection_from_the_environment_gets_the_tokens_printed(
    lazada_sandbox, lazada_connection, capsys, monkeypatch
):
    lazada_connection(lazada_sandbox)
    typed(monkeypatch, authorization_code(lazada_sandbox))
    assert cli(["lazada-token"]) == 1  # cannot write it: says so
    assert "--show" in capsys.readouterr().err
    typed(monkeypatch, authorization_code(lazada_sandbox))
    assert cli(["lazada-token", "--show"]) == 0
    tokens = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert set(tokens) == {"access_token", "refresh_token", "seller_id"}
    assert lazada_sandbox.backend.tokens[tokens["access_token"]].kind == "access"


def shopee_code(sandbox) -> str:
    """What the shop owner's browser brings back from the signed auth_partner link (approved at once)."""
    path = "/api/v2/shop/auth_partner"
    query = common_params(sandbox.config.partner_id, sandbox.config.partner_key, path, int(time.time()))
    answer = requests.get(
        f"{sandbox.url}{path}",
        params={**query, "redirect": "https://seller.test/cb"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code in (302, 303, 307), answer.text
    assert f"shop_id={sandbox.config.shop_id}" in answer.headers["location"]
    return answer.headers["location"].split("code=", 1)[1].split("&", 1)[0]


@pytest.fixture
def stored_shopee_connection(shopee_sandbox, airflow_db):  # noqa: F811
    """A ``shopee`` connection with partner id, key and shop but no tokens yet."""
    conn = shopee_sandbox.airflow_connection()
    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id == "shopee_new_shop"))
        session.add(
            Connection(
                conn_id="shopee_new_shop",
                conn_type="shopee",
                host=conn["host"],
                login=conn["login"],
                password=conn["password"],
                extra=json.dumps({"shop_id": conn["extra"]["shop_id"]}),
            )
        )
    yield "shopee_new_shop"
    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id == "shopee_new_shop"))


def test_shopee_tokens_go_into_the_connection_and_work(
    shopee_sandbox, stored_shopee_connection, capsys, monkeypatch
):
    code = shopee_code(shopee_sandbox)
    typed(monkeypatch, code)
    assert cli(["shopee-token", "--shopee-conn-id", stored_shopee_connection]) == 0
    out = capsys.readouterr().out
    with create_session() as session:
        extra = session.query(Connection).filter_by(conn_id=stored_shopee_connection).one().extra_dejson
    assert (
        extra["shop_id"] == shopee_sandbox.config.shop_id and extra["access_token"] and extra["refresh_token"]
    )
    assert extra["access_token"] not in out and extra["refresh_token"] not in out
    assert f"shop {shopee_sandbox.config.shop_id}" in out and "expire_in" in out
    assert ShopeeHook(stored_shopee_connection).test_connection()[0]  # a signed shop call with them works
    typed(monkeypatch, code)  # single-use: refused with Shopee's answer, nothing changes
    assert cli(["shopee-token", "--shopee-conn-id", stored_shopee_connection]) == 1
    assert capsys.readouterr().err.strip()
    with create_session() as session:
        assert (
            session.query(Connection).filter_by(conn_id=stored_shopee_connection).one().extra_dejson == extra
        )


def test_a_shopee_row_can_be_decided(tmp_path, monkeypatch, capsys):
    """The message of a Shopee row that needs a person names ``--platform shopee``: the command takes it."""
    from media_upload.ledger import NEEDS_ATTENTION, UploadLedger, entry_for

    monkeypatch.setenv(
        "AIRFLOW_CONN_CLI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")})
    )
    ledger = UploadLedger("cli_ledger")
    key = {"platform": "shopee", "account": "a", "product": "item:800123", "content_sha256": "d" * 64}
    ledger.record(entry_for(key), state=NEEDS_ATTENTION, reason="complete sent, answer lost")
    assert cli(["--conn-id", "cli_ledger", "list", "--platform", "shopee"]) == 0
    assert "item:800123" in capsys.readouterr().out
    args = ["--conn-id", "cli_ledger", "decide", "item:800123", "--platform", "shopee", "--upload-again"]
    assert cli(args) == 0
    assert "failed" in capsys.readouterr().out


def test_listed_values_never_carry_raw_control_characters(tmp_path, monkeypatch, capsys):
    """A product or reason that came from a manifest cannot clear the terminal or forge a line."""
    from media_upload.ledger import NEEDS_ATTENTION, UploadLedger, entry_for

    monkeypatch.setenv(
        "AIRFLOW_CONN_CLI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")})
    )
    ledger = UploadLedger("cli_ledger")
    key = {"platform": "lazada", "account": "a", "product": "sku:\x1b[2JEVIL", "content_sha256": "c" * 64}
    ledger.record(entry_for(key), state=NEEDS_ATTENTION, reason="lost\r\nnew line: fake row")
    assert cli(["--conn-id", "cli_ledger", "list"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    assert "sku:\\x1b[2JEVIL" in out and "lost\\r\\nnew line: fake row" in out
