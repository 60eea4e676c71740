"""Faults at random, for both emulators: rehearse a flaky link or gateway, and run fault campaigns.

With ``--fault-rate 0.1`` one request in ten (drawn from a seeded generator, so a campaign can be run
again) meets one of these, each as a real gateway or network would show it:

==============  =========================================================  ==================
kind            what the client sees                                       did the call run?
==============  =========================================================  ==================
``unavailable`` an HTTP 503 page from the gateway                          no
``throttle``    the platform's "too many requests" answer                  no
``reset``       the connection cut before an answer                        no
``drop``        the connection cut before an answer                        yes
``slow``        the answer arrives ``slow_seconds`` late (past a short      yes
                client timeout, it is lost too)
==============  =========================================================  ==================

``reset`` and ``drop`` look the same to a client: that is the point ("did it happen?").
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

RANDOM_KINDS = ("unavailable", "throttle", "reset", "drop", "slow")
#: Kinds after which the platform has done the work.
APPLIED = frozenset({"drop", "slow"})


@dataclass
class FaultDice:
    """Decides, request by request, whether a fault is injected and which one."""

    rate: float = 0.0
    seed: int | None = None
    kinds: tuple[str, ...] = RANDOM_KINDS
    slow_seconds: float = 3.0
    #: Faults injected so far, by ``(kind, api or operation)``.
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"fault rate {self.rate} must be between 0 and 1")
        unknown = set(self.kinds) - set(RANDOM_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(RANDOM_KINDS)}")
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def roll(self, name: str) -> str | None:
        """The fault this request of ``name`` meets, or None (most requests)."""
        if self.rate <= 0:
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.counts[(kind, name)] += 1
        return kind

    def summary(self) -> dict[str, int]:
        """Faults injected by kind."""
        totals: Counter[str] = Counter()
        for (kind, _), count in self.counts.items():
            totals[kind] += count
        return dict(totals)
