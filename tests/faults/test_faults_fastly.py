"""Fastly misbehaving while a fleet of objects is created, has Secret values rotated, and is deleted: 5xx
answers, 429 with a reset time, answers slower than the client waits, and dropped connections, each at a
seeded rate. Every invariant of `Fleet` must hold throughout, and everything must converge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from faults_support import Fleet
from harness import OperatorProcess

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator

SEED = 20_251_128
LATENCY = 2.0  # seconds a slowed request takes: beyond the operator's 1 s client timeout (conftest)


def five_xx(fastly: FastlyEmulator) -> None:
    fastly.faults.add(kind="status", status=503, rate=0.2, seed=SEED + 1)
    fastly.faults.add(kind="status", status=500, rate=0.1, seed=SEED + 2)


def rate_limited(fastly: FastlyEmulator) -> None:
    # Real 429s from a small write budget in short windows (Fastly-RateLimit-Reset: the window's end), plus a
    # seeded share of injected ones whose reset time is already past.
    fastly.faults.add(
        kind="status", status=429, rate=0.15, seed=SEED + 3, headers={"Fastly-RateLimit-Reset": "1000000000"}
    )


def timeouts(fastly: FastlyEmulator) -> None:
    fastly.faults.add(kind="latency", delay=LATENCY, rate=0.2, seed=SEED + 4)


def dropped(fastly: FastlyEmulator) -> None:
    fastly.faults.add(kind="drop", rate=0.2, seed=SEED + 5)


FAULTS: dict[str, tuple[Callable[[FastlyEmulator], None], dict[str, Any]]] = {
    "5xx": (five_xx, {}),
    "429": (rate_limited, {"write_budget": 6, "budget_window": 2.0}),
    "timeout": (timeouts, {}),
    "drop": (dropped, {}),
}


def faulty_answers(fastly: FastlyEmulator, fault: str) -> int:
    if fault == "5xx":
        return sum(1 for r in fastly.requests if r.status is not None and r.status >= 500)
    if fault == "429":
        return sum(1 for r in fastly.requests if r.status == 429)
    if fault == "drop":
        return sum(1 for r in fastly.requests if r.status is None)
    return 1  # a slowed request still answers; the operator's log shows its timeouts


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fleet_lifecycle_under_fastly_faults(
    fault: str,
    fastly_factory: Callable[..., FastlyEmulator],
    operator_factory: Callable[[FastlyEmulator], OperatorProcess],
    fleet_factory: Callable[..., Fleet],
) -> None:
    install, options = FAULTS[fault]
    fastly = fastly_factory(seed=SEED, **options)
    install(fastly)
    operator = operator_factory(fastly)
    fleet = fleet_factory(fastly, seed=SEED, size=6)

    fleet.lifecycle()

    assert faulty_answers(fastly, fault) > 0, "no fault fired: the test proves nothing"
    # No store was ever missed: a listing older than a store does not make it "deleted outside the operator".
    assert "deleted outside this operator" not in operator.logs()
    if fault == "timeout":
        assert "ReadTimeout" in operator.logs()
