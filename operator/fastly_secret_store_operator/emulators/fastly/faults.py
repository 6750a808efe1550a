"""Faults on demand: added latency, error statuses and dropped connections, per route."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["latency", "status", "drop"]
FAULT_KINDS: tuple[FaultKind, ...] = ("latency", "status", "drop")


@dataclass
class Fault:
    kind: FaultKind
    method: str | None
    route: str | None  # "METHOD /path/{template}" or just "/path/{template}"
    status: int
    delay: float
    headers: dict[str, str]
    remaining: int | None  # None: no limit on how many times it fires
    rate: float | None  # None: fires on every matching request
    rng: random.Random = field(repr=False)

    def matches(self, method: str, route: str | None) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.route is None:
            return True
        if route is None:
            return False
        return self.route == route if " " in self.route else route.partition(" ")[2] == self.route

    def fires(self) -> bool:
        """Whether it applies to this matching request; spends one of its `count` if it does."""
        if self.rate is not None and self.rng.random() >= self.rate:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass(frozen=True)
class FaultPlan:
    """What to do to one request: wait `delay` seconds, then apply `ending` (status or drop) if any."""

    delay: float = 0.0
    ending: Fault | None = None


class FaultInjector:
    def __init__(self, seed: int | None = None) -> None:
        self._seed_source = random.Random(seed)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        *,
        method: str | None = None,
        route: str | None = None,
        kind: FaultKind,
        status: int = 503,
        delay: float = 0.0,
        count: int | None = None,
        rate: float | None = None,
        seed: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Applies a fault to the next `count` matching requests (every one when None), or to a seeded `rate`
        of them. `route` is a template as in `Route`, with or without the method in front."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if delay < 0:
            raise ValueError("delay must not be negative")
        if method is not None and route is not None and " " in route and route.split(" ")[0] != method.upper():
            raise ValueError(f"method {method} contradicts route {route}")
        rng = random.Random(seed if seed is not None else self._seed_source.random())
        fault = Fault(
            kind,
            method.upper() if method else None,
            route,
            status,
            delay,
            dict(headers or {}),
            count,
            rate,
            rng,
        )
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending(self) -> int:
        """How many faults may still fire."""
        with self._lock:
            return len(self._faults)

    def plan(self, method: str, route: str | None) -> FaultPlan:
        delay = 0.0
        ending: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if ending is not None and fault.kind != "latency":
                    continue  # one ending per request; later ones keep their count
                if fault.matches(method, route) and fault.fires():
                    delay += fault.delay
                    if fault.kind != "latency":
                        ending = fault
            self._faults = [fault for fault in self._faults if not fault.exhausted]
        return FaultPlan(delay=delay, ending=ending)
