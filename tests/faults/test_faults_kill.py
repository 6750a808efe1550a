"""The operator killed with SIGKILL (no cleanup, as when a node dies) at seeded points during store creates,
entry writes and deletes, then restarted. A Fastly request held in flight when the operator dies still
completes afterwards, as on a real server: the restarted operator must make sense of what it finds."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from faults_support import Fleet
from harness import OperatorProcess, wait_for

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator

SEED = 7_331
HOLD = 1.5  # seconds the server holds the request the operator dies during


RATE = 0.5


def firing_seed(rng: random.Random, among: int) -> int:
    """A seed under which a fault of rate RATE fires within its first `among` matching requests (the emulator
    draws one number per matching request from a Random of that seed)."""
    while True:
        seed = rng.randrange(2**32)
        draws = random.Random(seed)
        if any(draws.random() < RATE for _ in range(among)):
            return seed


def restart(operator: OperatorProcess) -> None:
    """SIGKILL, start again, and return once the new run is up (its startup is not where it is killed next)."""
    runs = operator.logs().count("Starting Kopf")
    operator.kill()
    operator.start()

    def up() -> bool:
        log = operator.logs()
        return log.count("Starting Kopf") > runs and "Fastly endpoint" in log.rpartition("Starting Kopf")[2]

    wait_for("the restarted operator is up", up)


def kill_after(operator: OperatorProcess, rng: random.Random, longest: float = 1.0) -> None:
    """SIGKILL at a seeded random moment of the work under way, and restart (the sleep picks the moment; it
    synchronises nothing: any moment must do)."""
    time.sleep(rng.uniform(0.05, longest))
    restart(operator)


def test_sigkill_during_creates_entry_writes_and_deletes(
    fastly_factory: Callable[..., FastlyEmulator],
    operator_factory: Callable[[FastlyEmulator], OperatorProcess],
    fleet_factory: Callable[..., Fleet],
) -> None:
    rng = random.Random(SEED)
    fastly = fastly_factory(seed=SEED, latency=0.05)  # every request a little slow: wider windows to die in
    operator = operator_factory(fastly)
    fleet = fleet_factory(fastly, seed=SEED, size=6)

    def hold_one(route: str, among: int) -> Callable[[], None]:
        """Hold a seeded-random one of the next `among` requests of `route`; kill the operator while it is held."""
        before = fastly.faults.pending
        seed = firing_seed(rng, among)
        fastly.faults.add(route=route, kind="latency", delay=HOLD, count=1, rate=RATE, seed=seed)

        def kill_while_held() -> None:
            wait_for(f"a {route} request is held", lambda: fastly.faults.pending == before, timeout=30)
            restart(operator)

        return kill_while_held

    with fleet.sampling():
        # Creates: die while a store create is in flight (its store appears while no operator runs), and again
        # at a random moment.
        kill = hold_one("POST /resources/stores/secret", among=len(fleet.names))
        fleet.create()
        kill()
        kill_after(operator, rng)
        fleet.wait_converged()
        writes = len([r for r in fastly.requests if r.method == "PUT"])

        # Entry writes: die while a rotated value is being written, and again at a random moment.
        kill = hold_one("PUT /resources/stores/secret/{store_id}/secrets", among=3)
        fleet.rotate()
        kill()
        kill_after(operator, rng, longest=0.5)
        fleet.wait_converged()

        # Deletes: die while a store delete is in flight, and again at a random moment.
        kill = hold_one("DELETE /resources/stores/secret/{store_id}", among=len(fleet.names) - len(fleet.retained))
        fleet.delete()
        kill()
        kill_after(operator, rng, longest=0.5)
        fleet.wait_deleted()

    assert len([r for r in fastly.requests if r.method == "PUT"]) > writes  # the rotation was written
    assert operator.logs().count("Starting Kopf") == 7  # six kills, each followed by a restart
