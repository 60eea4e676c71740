"""A seller's API call budget, shared by every task on every worker: calls per second, and the bans the
platform announces ("this ban will last N seconds").

Platforms limit calls per app and per seller, whichever process makes them. So the budget lives in the
upload ledger's database, which every worker and the triggerer already share: a token bucket per
(platform, budget) row, refilled at ``calls_per_second`` and holding at most ``call_burst`` calls, and the
time until which a ban stops every call. A process leases a few calls at a time (one transaction per
lease, not per call) and keeps them for at most a second, so a lease never turns into a burst later.

Hooks meter every request through :meth:`CallBudget.take` and report throttle answers through
:meth:`CallBudget.ban`. Without ``calls_per_second`` on the connection only bans are shared, checked at
most once a second per process.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from typing import TYPE_CHECKING

from media_upload import metrics

if TYPE_CHECKING:
    from media_upload.ledger import UploadLedger

#: How long leased calls stay usable, and how often a process without a rate looks for a ban.
LEASE_SECONDS = 1.0
#: A lease is a tenth of a second's calls (at least one): few transactions, no hoarding.
LEASE_FRACTION = 0.1

_ledgers: dict[str, UploadLedger] = {}
_ledgers_lock = threading.Lock()


def shared_ledger(conn_id: str) -> UploadLedger:
    """One ledger per connection id and process, for every hook's budget (opening one checks its tables)."""
    from media_upload.ledger import UploadLedger

    with _ledgers_lock:
        if conn_id not in _ledgers:  # one connection: each budget's calls to it are serialised anyway
            _ledgers[conn_id] = UploadLedger(conn_id, max_connections=1)
        return _ledgers[conn_id]


class CallBudget:
    """The calls of one budget (a connection: one app and seller) on one platform.

    :param ledger_conn_id: the ledger's connection, shared by every worker.
    :param platform: the platform's name (budgets of two platforms never mix).
    :param budget: the budget's name (the connection id).
    :param per_second: calls per second for the whole deployment; 0 for no limit (bans still apply).
    :param burst: calls that may go at once after a quiet spell; by default one second's worth.
    """

    def __init__(
        self, ledger_conn_id: str, platform: str, budget: str, per_second: float = 0.0, burst: float = 0.0
    ) -> None:
        if per_second < 0 or burst < 0:
            raise ValueError("calls_per_second and call_burst cannot be negative")
        self.ledger_conn_id = ledger_conn_id
        self.platform = platform
        self.budget = budget
        self.per_second = float(per_second)
        self.burst = float(burst) or max(1.0, self.per_second)
        self.lease = max(1, min(int(self.burst), math.ceil(self.per_second * LEASE_FRACTION)))
        self._lock = threading.Lock()
        self._leased = 0
        self._lease_ends = 0.0
        self._banned_until = 0.0
        self._ban_checked = 0.0
        #: Seconds this process waited for calls, and for bans: what a task reports.
        self.waited = 0.0

    def __repr__(self) -> str:
        return f"CallBudget({self.platform}:{self.budget}, {self.per_second:g}/s)"

    @property
    def ledger(self) -> UploadLedger:
        return shared_ledger(self.ledger_conn_id)

    def take(self) -> None:
        """Wait until one call may go: no ban in force, and a call left in the budget."""
        waited = 0.0
        while (wait := self._try()) > 0:
            wait += random.uniform(0, min(wait, 0.05))  # processes that wait together do not wake together
            waited += wait
            time.sleep(wait)
        self._waited(waited)

    async def atake(self) -> None:
        waited = 0.0
        while (wait := await asyncio.to_thread(self._try)) > 0:
            wait += random.uniform(0, min(wait, 0.05))
            waited += wait
            await asyncio.sleep(wait)
        self._waited(waited)

    def _waited(self, seconds: float) -> None:
        """A call that had to wait: the task's report adds it up, the metric shows where budgets pinch."""
        if seconds > 0:
            self.waited += seconds
            metrics.timing(metrics.BUDGET_WAIT, seconds, platform=self.platform, conn_id=self.budget)

    def _try(self) -> float:
        """Take one call now (0 returned), or the seconds to wait before trying again."""
        with self._lock:
            now = time.time()
            if now < self._banned_until:
                return self._banned_until - now
            if self.per_second <= 0:
                if now - self._ban_checked >= LEASE_SECONDS:
                    self._ban_checked = now
                    self._banned_until = self.ledger.calls_banned_until(self.platform, self.budget)
                    if now < self._banned_until:
                        return self._banned_until - now
                return 0.0
            if self._leased > 0 and now < self._lease_ends:
                self._leased -= 1
                return 0.0
            granted, wait = self.ledger.take_calls(
                self.platform, self.budget, self.lease, self.per_second, self.burst, now
            )
            if not granted:  # a ban, or no call left until the next refill
                self._leased = 0
                return max(wait, 0.001)
            self._leased, self._lease_ends = granted - 1, now + LEASE_SECONDS
            return 0.0

    def ban(self, seconds: float) -> None:
        """The platform said "too many calls" (for ``seconds``): every process of the deployment pauses."""
        until = time.time() + max(seconds, 0.0)
        ends = self.ledger.ban_calls(self.platform, self.budget, until)
        with self._lock:
            self._banned_until = max(self._banned_until, ends)
            self._leased = 0
