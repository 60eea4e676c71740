"""The call budget every process of a deployment shares through the ledger's database: the calls of all
of them together stay within the rate, and a ban one of them hears of pauses the others."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from media_upload.budget import CallBudget

RATE, BURST, CALLS = 20.0, 4.0, 30


def _calls(uri: str, budget: str, count: int, ban_after: int, queue) -> None:
    """In a fresh process, as a worker would: take ``count`` calls, banning once after ``ban_after``."""
    os.environ["AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER"] = uri
    calls = CallBudget("media_upload_ledger", "lazada", budget, RATE, BURST)
    times = []
    for n in range(count):
        calls.take()
        times.append(time.time())
        if n + 1 == ban_after:
            calls.ban(1.5)
            queue.put(("ban", time.time()))
    queue.put(("times", times))


def run_processes(uri: str, budget: str, plans: list[tuple[int, int]]) -> tuple[list[float], list[float]]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_calls, args=(uri, budget, count, ban_after, queue))
        for count, ban_after in plans
    ]
    for process in processes:
        process.start()
    times: list[float] = []
    bans: list[float] = []
    for _ in range(len(processes) + sum(1 for _, ban_after in plans if ban_after)):
        kind, value = queue.get(timeout=120)
        (times.extend if kind == "times" else bans.append)(value)
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    return sorted(times), bans


def most_in_any_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_processes_share_one_rate(kind, ledger_connection):
    uri = ledger_connection(kind)
    times, _ = run_processes(uri, f"rate-{kind}", [(CALLS, 0), (CALLS, 0)])
    assert len(times) == 2 * CALLS
    # A bucket of BURST calls refilled at RATE per second: never more than BURST + RATE in any second, for
    # both processes together (each alone would have been allowed that much).
    assert most_in_any_second(times) <= BURST + RATE + 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_ban_one_process_hears_of_pauses_the_other(kind, ledger_connection):
    uri = ledger_connection(kind)
    times, (banned_at,) = run_processes(uri, f"ban-{kind}", [(CALLS, 5), (CALLS, 0)])
    during = [t for t in times if banned_at + 0.05 < t < banned_at + 1.45]
    assert during == []  # no call of either process while the ban lasts
    assert any(t >= banned_at + 1.5 for t in times)  # and calls go on after it


def test_without_a_rate_only_bans_are_shared(ledger_connection):
    ledger_connection("sqlite")
    free = CallBudget("media_upload_ledger", "shopee", "free")
    for _ in range(200):
        free.take()
    assert free.waited == 0
    other = CallBudget("media_upload_ledger", "shopee", "free")
    other.ban(0.6)
    free._ban_checked = 0  # its next look at the ledger, a second later at the most
    started = time.time()
    free.take()
    assert time.time() - started >= 0.5 and free.waited > 0


def test_budgets_of_two_connections_do_not_mix(ledger_connection):
    ledger_connection("sqlite")
    CallBudget("media_upload_ledger", "lazada", "seller-a", RATE, BURST).ban(30)
    other = CallBudget("media_upload_ledger", "lazada", "seller-b", RATE, BURST)
    other.take()
    assert other.waited == 0
