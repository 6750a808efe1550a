"""Leader election on a Lease, against the Kubernetes emulator over real HTTP, with short timings: one leader,
standbys that wait, takeover after a release or an expiry, and a leader that stops when it cannot renew."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fastly_secret_store_operator import kube
from fastly_secret_store_operator.emulators.kubernetes import LEASES, KubernetesEmulator
from fastly_secret_store_operator.leader_election import (
    LEASE_NAME,
    LeaderElector,
    LeadershipLost,
    LeaseTimings,
    default_identity,
    run_as_leader,
    standby_health,
)

FAST = LeaseTimings(lease_duration=2.0, renew_deadline=1.0, retry_period=0.1)
BOUND = 10.0  # seconds any awaited condition below may take at most


@pytest.fixture
async def emulator() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator(namespaces=["default", "ops"]) as emulator:
        yield emulator


@pytest.fixture
async def client(emulator: KubernetesEmulator) -> AsyncIterator[kube.KubeClient]:
    client = kube.connect(kube.from_connection_info(emulator.connection_info()))
    yield client
    await client.aclose()


def elector(client: kube.KubeClient, identity: str, timings: LeaseTimings = FAST) -> LeaderElector:
    return LeaderElector(client, "ops", identity, timings)


def spec(emulator: KubernetesEmulator) -> dict[str, Any]:
    lease: dict[str, Any] = emulator.store.get(LEASES, "ops", LEASE_NAME)
    return dict(lease["spec"])


async def renewals(emulator: KubernetesEmulator, count: int) -> None:
    """Wait until the Lease has been written `count` more times."""
    start = int(emulator.store.get(LEASES, "ops", LEASE_NAME)["metadata"]["resourceVersion"])

    def renewed() -> bool:
        version = int(emulator.store.get(LEASES, "ops", LEASE_NAME)["metadata"]["resourceVersion"])
        return version >= start + count

    async with asyncio.timeout(BOUND):
        await emulator.store.wait_until(renewed)


async def test_the_first_candidate_creates_the_lease_and_leads(
    emulator: KubernetesEmulator, client: kube.KubeClient
) -> None:
    leader = elector(client, "a")
    async with asyncio.timeout(BOUND):
        assert await leader.acquire(asyncio.Event()) is True
    lease = spec(emulator)
    assert lease["holderIdentity"] == "a"
    assert lease["leaseDurationSeconds"] == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", lease["renewTime"])
    assert lease["acquireTime"] == lease["renewTime"]


async def test_a_standby_waits_while_the_leader_renews_then_takes_over_on_release(
    emulator: KubernetesEmulator, client: kube.KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    leader, standby = elector(client, "a"), elector(client, "b")
    assert await leader.acquire(asyncio.Event())
    renewing = asyncio.create_task(leader.keep_renewing())
    waiting = asyncio.create_task(standby.acquire(asyncio.Event()))
    try:
        # Longer than the lease duration (2 s at 0.1 s per renewal) with the leader renewing: no takeover.
        await renewals(emulator, 25)
        assert not waiting.done()
        assert spec(emulator)["holderIdentity"] == "a"
        assert [r.getMessage() for r in caplog.records if "standby" in r.getMessage()] == [
            "Waiting as a standby: the lease ops/fastly-secret-store-operator is held by a (this replica is b)"
        ]
        renewing.cancel()
        released_at = time.monotonic()
        await leader.release()
        async with asyncio.timeout(BOUND):
            assert await waiting is True
        # A release frees the Lease at once: no waiting out its duration.
        assert time.monotonic() - released_at < FAST.lease_duration
        assert spec(emulator)["holderIdentity"] == "b"
        assert spec(emulator)["leaseTransitions"] == 1
    finally:
        renewing.cancel()
        waiting.cancel()


async def test_a_dead_leaders_lease_is_taken_over_once_it_expires(
    emulator: KubernetesEmulator, client: kube.KubeClient
) -> None:
    leader, standby = elector(client, "a"), elector(client, "b")
    assert await leader.acquire(asyncio.Event())
    waiting = asyncio.create_task(standby.acquire(asyncio.Event()))
    await renewals(emulator, 0)
    died_at = time.monotonic()  # the leader never renews: as if killed
    async with asyncio.timeout(BOUND):
        assert await waiting is True
    took = time.monotonic() - died_at
    assert FAST.lease_duration - 0.5 <= took <= FAST.lease_duration + 2
    assert spec(emulator)["holderIdentity"] == "b"


async def test_two_candidates_racing_end_with_one_leader(emulator: KubernetesEmulator, client: kube.KubeClient) -> None:
    candidates = [elector(client, name) for name in "abcd"]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(candidate.acquire(stop)) for candidate in candidates]
    async with asyncio.timeout(BOUND):
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    async with asyncio.timeout(BOUND):
        outcomes = await asyncio.gather(*tasks)
    assert outcomes.count(True) == 1
    winner = candidates[outcomes.index(True)]
    assert spec(emulator)["holderIdentity"] == winner.identity


async def test_a_leader_whose_lease_is_taken_loses_at_once(
    emulator: KubernetesEmulator, client: kube.KubeClient
) -> None:
    leader = elector(client, "a", LeaseTimings(lease_duration=30, renew_deadline=20, retry_period=0.1))
    assert await leader.acquire(asyncio.Event())
    lease = emulator.store.get(LEASES, "ops", LEASE_NAME)
    lease["spec"]["holderIdentity"] = "intruder"
    emulator.store.replace(LEASES, "ops", LEASE_NAME, lease)
    async with asyncio.timeout(2):  # far less than the renew deadline
        why = await leader.keep_renewing()
    assert why == "the lease ops/fastly-secret-store-operator is now held by intruder"
    await leader.release()  # no longer the holder: leaves the intruder's Lease alone
    assert spec(emulator)["holderIdentity"] == "intruder"


async def test_a_leader_that_cannot_renew_gives_up_at_the_renew_deadline(
    emulator: KubernetesEmulator, client: kube.KubeClient
) -> None:
    leader = elector(client, "a")
    assert await leader.acquire(asyncio.Event())
    emulator["put", re.compile(r".*/leases/.*")] << 503
    started = time.monotonic()
    async with asyncio.timeout(BOUND):
        why = await leader.keep_renewing()
    assert why == "could not renew the lease ops/fastly-secret-store-operator within 1 s"
    # Before the lease expires for the others: they cannot take over while this replica still works.
    assert FAST.renew_deadline - FAST.retry_period <= time.monotonic() - started < FAST.lease_duration


async def test_run_as_leader_cancels_the_work_at_once_when_the_lease_is_lost(
    emulator: KubernetesEmulator, client: kube.KubeClient
) -> None:
    leader, stop, working = elector(client, "a"), asyncio.Event(), asyncio.Event()
    cancelled = False

    async def work() -> None:
        nonlocal cancelled
        working.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled = True
            raise

    running = asyncio.create_task(run_as_leader(leader, work, stop))
    async with asyncio.timeout(BOUND):
        await working.wait()
    emulator["put", re.compile(r".*/leases/.*")] << 503
    with pytest.raises(LeadershipLost, match="could not renew"):
        async with asyncio.timeout(BOUND):
            await running
    assert cancelled
    assert stop.is_set()


async def test_run_as_leader_releases_the_lease_when_the_work_ends(
    emulator: KubernetesEmulator, client: kube.KubeClient
) -> None:
    leader, stop = elector(client, "a"), asyncio.Event()
    held_during_work: list[str] = []

    async def work() -> None:
        held_during_work.append(spec(emulator)["holderIdentity"])

    async with asyncio.timeout(BOUND):
        await run_as_leader(leader, work, stop)
    assert held_during_work == ["a"]
    assert not spec(emulator)["holderIdentity"]


async def test_a_standby_stopped_while_waiting_never_works(
    emulator: KubernetesEmulator, client: kube.KubeClient
) -> None:
    leader = elector(client, "a")
    assert await leader.acquire(asyncio.Event())
    renewing = asyncio.create_task(leader.keep_renewing())
    stop = asyncio.Event()

    async def work() -> None:
        raise AssertionError("a standby must not work")

    standby = elector(client, "b")
    running = asyncio.create_task(run_as_leader(standby, work, stop))
    await renewals(emulator, 5)  # the standby read the Lease at every renewal meanwhile
    assert standby.holder == "a"
    stop.set()
    async with asyncio.timeout(BOUND):
        await running
    renewing.cancel()
    assert spec(emulator)["holderIdentity"] == "a"


async def test_forbidden_leases_fail_in_one_line(emulator: KubernetesEmulator, client: kube.KubeClient) -> None:
    emulator["get", re.compile(r".*/leases/.*")] << 403
    with pytest.raises(kube.StartupError, match=r"RBAC must allow get, create and update on leases"):
        async with asyncio.timeout(BOUND):
            await elector(client, "a").acquire(asyncio.Event())


async def test_a_standby_answers_its_liveness_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with httpx.AsyncClient() as http:
        async with standby_health(f"http://127.0.0.1:{port}/healthz"):
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            assert (await http.get(f"http://127.0.0.1:{port}/other")).status_code == 404
        with pytest.raises(httpx.ConnectError):  # closed once leading: Kopf serves the port then
            await http.get(f"http://127.0.0.1:{port}/healthz")


def test_identity_is_the_pod_name_with_a_random_suffix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "operator-7d9f-abcde")
    first, second = default_identity(), default_identity()
    assert first.startswith("operator-7d9f-abcde_")
    assert first != second


def test_timings_must_leave_room_to_renew() -> None:
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        LeaseTimings(lease_duration=10, renew_deadline=10, retry_period=2)
