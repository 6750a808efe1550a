"""Fastly's write rate limit: a budget of non-GET requests per token per fixed window."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

# What `Fastly-RateLimit-Remaining` says when the budget is unlimited: the real hourly limit, never spent.
UNLIMITED_REMAINING = 1000


@dataclass(frozen=True)
class BudgetDecision:
    allowed: bool
    remaining: int
    reset: int  # UTC epoch seconds at the end of the current window

    def headers(self) -> dict[str, str]:
        return {"Fastly-RateLimit-Remaining": str(self.remaining), "Fastly-RateLimit-Reset": str(self.reset)}


class WriteBudget:
    """Windows align to multiples of `window` since the epoch, as real reset times (whole hours) do."""

    def __init__(self, limit: int | None, window: float, clock: Callable[[], float]) -> None:
        if window <= 0:
            raise ValueError("budget_window must be positive")
        self.limit = limit  # tests may change it on a running emulator
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._spent: dict[str, tuple[float, int]] = {}  # token -> (window start, writes spent in it)

    def charge(self, token: str) -> BudgetDecision:
        """Spends one write for `token` if any is left in the current window."""
        window_start = math.floor(self._clock() / self.window) * self.window
        reset = math.ceil(window_start + self.window)
        with self._lock:
            start, spent = self._spent.get(token, (window_start, 0))
            if start != window_start:
                spent = 0
            if self.limit is None:
                self._spent[token] = (window_start, spent + 1)
                return BudgetDecision(allowed=True, remaining=UNLIMITED_REMAINING, reset=reset)
            if spent >= self.limit:
                return BudgetDecision(allowed=False, remaining=0, reset=reset)
            self._spent[token] = (window_start, spent + 1)
            return BudgetDecision(allowed=True, remaining=self.limit - spent - 1, reset=reset)

    def refill(self) -> None:
        """Forgets every write spent so far, as if a new window had begun."""
        with self._lock:
            self._spent.clear()
