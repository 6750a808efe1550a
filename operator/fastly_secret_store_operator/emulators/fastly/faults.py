"""Faults on demand, per route: added latency, error statuses and dropped connections (the request not carried
out), lost answers (carried out, then the connection dropped) and garbled answers (carried out, then a 2xx the
client cannot read).

A slow create is a latency fault on ``Route.CREATE_STORE``: the request is read, the delay passes, and only then
is the store created and the answer sent, so until then a lookup by name finds nothing."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["latency", "status", "drop", "lost", "garble"]
FAULT_KINDS: tuple[FaultKind, ...] = ("latency", "status", "drop", "lost", "garble")
# What "garble" does to a 2xx answer: HTML instead of JSON, or the JSON without one of its fields.
Garbling = Literal["not-json", "no-created-at", "no-id"]
GARBLINGS: tuple[Garbling, ...] = ("not-json", "no-created-at", "no-id")


@dataclass
class Fault:
    kind: FaultKind
    method: str | None
    route: str | None  # "METHOD /path/{template}" or just "/path/{template}"
    status: int
    delay: float
    headers: dict[str, str]
    hold: float  # "lost": seconds the carried-out request's connection stays silent before it is dropped
    garbling: Garbling
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
        hold: float = 0.0,
        garbling: Garbling = "not-json",
    ) -> None:
        """Applies a fault to the next `count` matching requests (every one when None), or to a seeded `rate`
        of them. `route` is a template as in `Route`, with or without the method in front.

        Kinds: "latency" (`delay` seconds before the request is carried out), "status" (answers `status`
        without carrying it out), "drop" (closes the connection without carrying it out), "lost" (carries it
        out, keeps the connection silent for `hold` seconds, then closes it without an answer: longer than the
        client's timeout, the client times out), "garble" (carries it out; a 2xx answer is replaced as
        `garbling` says: "not-json" an HTML page, "no-created-at" or "no-id" the JSON without that field)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        if garbling not in GARBLINGS:
            raise ValueError(f"garbling must be one of {GARBLINGS}")
        if hold < 0:
            raise ValueError("hold must not be negative")
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
            hold,
            garbling,
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
