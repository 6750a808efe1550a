"""The Kubernetes API misbehaving under the operator: conflicts (409) and rejections (422) of its status
patches, failing Secret reads (503), watch streams the server closes at seeded moments, and watches answered
with 410 Gone (the resource version expired), which make the watcher list again. Every invariant of `Fleet`
must hold throughout, and everything must converge."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import kmock
import pytest
from faults_support import Fleet
from harness import OperatorProcess
from kmock import Response  # type: ignore[attr-defined]  # exported, but left out of __all__

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator

SEED = 4_242


class Chance:
    """A kmock criterion that picks a seeded share of the requests it is asked about, and sticks to its pick (kmock
    asks again about every logged request each time a new one arrives)."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate, self.rng = rate, random.Random(seed)
        self.picks: dict[int, bool] = {}

    def __call__(self, request: kmock.Request) -> bool:
        pick = self.picks.get(request.id)
        if pick is None:
            pick = self.picks[request.id] = self.rng.random() < self.rate
        return pick

    @property
    def fired(self) -> int:
        return sum(self.picks.values())


class Rejections:
    """Answers alternately 409 Conflict and 422 Invalid, as a real server does to a write it refuses."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def __call__(self) -> Response:
        code, reason = (409, "Conflict") if len(self.sent) % 2 == 0 else (422, "Invalid")
        self.sent.append(code)
        return Response(status=code, headers={"Content-Type": "application/json"}, payload=status(code, reason))


def status(code: int, reason: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
            "message": f"injected fault: {reason}"}  # fmt: skip


@pytest.fixture
def closing_watches(kube: KubernetesEmulator) -> Iterator[threading.Event]:
    """Ends every watch stream at seeded moments, as an API server does on restart or at its timeout."""
    stop, rng = threading.Event(), random.Random(SEED)
    closed = threading.Event()

    def run() -> None:
        while not stop.wait(rng.uniform(0.3, 1.2)):
            kube.store.close_watches()
            closed.set()

    thread = threading.Thread(target=run, name="watch-closer", daemon=True)
    thread.start()
    yield closed
    stop.set()
    thread.join(5)


def test_fleet_lifecycle_under_kubernetes_faults(
    kube: KubernetesEmulator,
    closing_watches: threading.Event,
    fastly_factory: Callable[..., FastlyEmulator],
    operator_factory: Callable[[FastlyEmulator], OperatorProcess],
    fleet_factory: Callable[..., Fleet],
) -> None:
    stores = re.compile(r".*/fastlysecretstores/[^/]+/status")
    refused, rejections = Chance(0.15, SEED + 1), Rejections()
    kube["patch", stores, refused] << rejections
    unavailable = Chance(0.1, SEED + 3)
    kube["get", re.compile(r".*/secrets/[^/]+-source"), unavailable] << 503 << status(503, "ServiceUnavailable")
    watches = Chance(0.3, SEED + 4)
    gone = {"type": "ERROR", "object": status(410, "Expired")}
    kube["get", re.compile(r".*/fastlysecretstores"), {"watch": "true"}, watches] << gone

    fastly = fastly_factory(seed=SEED)
    operator_factory(fastly)
    fleet = fleet_factory(fastly, seed=SEED, size=6)
    fleet.lifecycle()

    assert closing_watches.is_set()
    assert {409, 422} <= set(rejections.sent), f"status patches refused: {rejections.sent}"
    assert unavailable.fired, "no Secret read failed"
    assert watches.fired, "no watch was answered 410 Gone"
