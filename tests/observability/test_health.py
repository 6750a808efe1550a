"""The watch liveness check: passes on a quiet cluster, fails when changes stop reaching the operator."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import kopf
import pytest

from fastly_secret_store_operator import health, kube
from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator
from fastly_secret_store_operator.health import WatchAudit, WatchHeartbeat, WatchStale, kube_lister

INTERVAL = 60.0
BOUND = 10.0  # seconds any awaited condition may take in the Kopf-backed tests
STORES = ("fastly.operator.dev", "v1alpha1", "fastlysecretstores")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeLister:
    def __init__(self) -> None:
        self.objects: dict[str, str] = {}
        self.error: Exception | None = None
        self.calls = 0
        self.called_thrice = asyncio.Event()

    async def __call__(self) -> Mapping[str, str]:
        self.calls += 1
        if self.calls >= 3:
            self.called_thrice.set()
        if self.error is not None:
            raise self.error
        return dict(self.objects)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lister() -> FakeLister:
    return FakeLister()


@pytest.fixture
def audit(clock: FakeClock, lister: FakeLister) -> WatchAudit:
    return WatchAudit(lister, interval=INTERVAL, clock=clock)


def test_heartbeat_passes_while_fresh_and_fails_once_stale(clock: FakeClock) -> None:
    heartbeat = WatchHeartbeat(180.0, clock=clock)
    clock.now += 180.0
    assert heartbeat.check() == 180.0
    clock.now += 1.0
    with pytest.raises(WatchStale, match="not been current for 181s"):
        heartbeat.check()
    heartbeat.beat()
    assert heartbeat.check() == 0.0


def test_threshold_defaults_to_three_intervals_and_must_cover_two(clock: FakeClock, lister: FakeLister) -> None:
    assert WatchAudit(lister, interval=20.0, clock=clock).heartbeat.threshold == 60.0
    with pytest.raises(ValueError, match="at least twice"):
        WatchAudit(lister, interval=20.0, threshold=30.0, clock=clock)


async def test_a_quiet_cluster_stays_live_for_hours(audit: WatchAudit, clock: FakeClock, lister: FakeLister) -> None:
    lister.objects = {"uid-1": "10", "uid-2": "11"}
    audit.delivered("uid-1", "10")
    audit.delivered("uid-2", "11")
    for _ in range(600):  # ten hours of audits and not one event
        clock.now += INTERVAL
        await audit.audit()
        audit.heartbeat.check()


async def test_a_change_the_watch_never_delivers_fails_the_check(
    audit: WatchAudit, clock: FakeClock, lister: FakeLister
) -> None:
    audit.delivered("uid-1", "10")
    lister.objects = {"uid-1": "12"}  # modified; the watch is dead and never says so
    clock.now += INTERVAL
    await audit.audit()
    noticed = clock.now
    for _ in range(3):
        clock.now += INTERVAL
        await audit.audit()  # the audit keeps running: it is the watch that lags
        audit.heartbeat.check()
    clock.now += 1.0
    assert clock.now - noticed > audit.heartbeat.threshold
    with pytest.raises(WatchStale):
        audit.heartbeat.check()


async def test_an_object_that_keeps_changing_under_a_dead_watch_fails_the_check(
    audit: WatchAudit, clock: FakeClock, lister: FakeLister
) -> None:
    audit.delivered("uid-1", "10")
    for version in range(11, 16):  # a new version at every audit, none delivered
        lister.objects = {"uid-1": str(version)}
        clock.now += INTERVAL
        await audit.audit()
    with pytest.raises(WatchStale):
        audit.heartbeat.check()


async def test_any_delivery_for_the_object_clears_it(audit: WatchAudit, clock: FakeClock, lister: FakeLister) -> None:
    lister.objects = {"uid-1": "12"}
    await audit.audit()
    clock.now += audit.heartbeat.threshold
    audit.delivered("uid-1", "11")  # an older event, delivered late: the stream is carrying the object
    clock.now += 1.0
    audit.heartbeat.check()


async def test_a_change_delivered_late_but_within_the_threshold_passes(
    audit: WatchAudit, clock: FakeClock, lister: FakeLister
) -> None:
    audit.delivered("uid-1", "10")
    lister.objects = {"uid-1": "12"}
    clock.now += INTERVAL
    await audit.audit()
    clock.now += 2 * INTERVAL  # a busy handler held the object's worker
    audit.delivered("uid-1", "12")
    await audit.audit()
    assert audit.compare(lister.objects) == 0
    clock.now += audit.heartbeat.threshold  # current as of the last audit, not as of the missing change
    audit.heartbeat.check()


async def test_a_watch_ahead_of_the_list_is_not_missing_anything(
    audit: WatchAudit, clock: FakeClock, lister: FakeLister
) -> None:
    audit.delivered("uid-1", "13")  # delivered after the list was taken
    assert audit.compare({"uid-1": "12"}) == 1
    clock.now += INTERVAL
    assert audit.compare({"uid-1": "13"}) == 0  # the next list catches up; nothing stays pending


def test_creations_the_watch_missed_count_as_missing(audit: WatchAudit) -> None:
    audit.delivered("uid-gone", "5")
    assert audit.compare({"uid-new": "7"}) == 1
    audit.delivered("uid-new", "7")
    assert audit.compare({"uid-new": "7"}) == 0


def test_an_object_gone_without_a_deleted_event_is_forgotten(audit: WatchAudit, clock: FakeClock) -> None:
    # After a 410 Gone, Kopf lists again and never announces what vanished meanwhile: no reason to restart.
    audit.delivered("uid-gone", "5")
    audit.delivered("uid-kept", "3")
    for _ in range(10):
        clock.now += INTERVAL
        assert audit.compare({"uid-kept": "3"}) == 0
    audit.heartbeat.check()


async def test_a_failing_list_proves_nothing_and_leaks_nothing(
    audit: WatchAudit, clock: FakeClock, lister: FakeLister, caplog: pytest.LogCaptureFixture
) -> None:
    lister.error = kube.KubeError(503, "canary-reason-Zx81")
    for _ in range(10):
        clock.now += INTERVAL
        await audit.audit()
    audit.heartbeat.check()  # restarting cannot fix the API server: stay live
    assert "KubeError" in caplog.text
    assert "canary" not in caplog.text


async def test_a_failing_list_keeps_what_was_already_missing(
    audit: WatchAudit, clock: FakeClock, lister: FakeLister
) -> None:
    lister.objects = {"uid-1": "12"}
    await audit.audit()  # the watch has not delivered uid-1 at all
    lister.error = RuntimeError("API server gone")
    clock.now += audit.heartbeat.threshold + 1.0
    await audit.audit()
    with pytest.raises(WatchStale):
        audit.heartbeat.check()


async def test_the_audit_task_lists_every_interval_until_stopped(clock: FakeClock, lister: FakeLister) -> None:
    audit = WatchAudit(lister, interval=0.01, clock=clock)
    audit.start()
    audit.start()  # idempotent: still one task
    async with asyncio.timeout(BOUND):
        await lister.called_thrice.wait()
    await audit.stop()
    calls = lister.calls
    await asyncio.sleep(0.05)
    assert lister.calls == calls


def test_configure_watching_bounds_each_watch_request() -> None:
    settings = kopf.OperatorSettings()
    health.configure_watching(settings)
    assert settings.watching.server_timeout is not None
    assert settings.watching.client_timeout is not None
    assert settings.watching.server_timeout < settings.watching.client_timeout


# Kopf's liveness endpoint, over HTTP


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def liveness(memo: kopf.Memo, emulator: KubernetesEmulator) -> AsyncIterator[str]:
    """Kopf's own health endpoint (what `--liveness` serves), with this module's handlers registered, from a real
    `kopf.operator` against the Kubernetes emulator (public Kopf API only)."""
    registry = kopf.OperatorRegistry()
    health.register(registry)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return emulator.connection_info()

    url = f"http://127.0.0.1:{free_port()}/healthz"
    stop, ready = asyncio.Event(), asyncio.Event()
    operator = asyncio.create_task(
        kopf.operator(
            registry=registry,
            namespaces=["shop"],
            standalone=True,
            liveness_endpoint=url,
            memo=memo,
            stop_flag=stop,
            ready_flag=ready,
        )
    )
    try:
        async with asyncio.timeout(BOUND):
            await ready.wait()
            while True:  # Kopf raises the ready flag before its health endpoint listens
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", int(url.split(":")[2].split("/")[0]))
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                await writer.wait_closed()
                break
        yield url
    finally:
        stop.set()
        async with asyncio.timeout(BOUND):
            await operator


async def test_kopf_liveness_answers_500_when_the_watch_is_stale(
    audit: WatchAudit, clock: FakeClock, emulator: KubernetesEmulator
) -> None:
    async with liveness(kopf.Memo(watch_audit=audit), emulator) as url, httpx.AsyncClient() as client:
        clock.now += audit.heartbeat.threshold + 1.0
        stale = await client.get(url)
        audit.heartbeat.beat()
        fresh = await client.get(url)
    assert stale.status_code == 500
    assert fresh.status_code == 200
    assert fresh.json() == {"watch": {"seconds_since_in_step": 0.0}}


async def test_kopf_liveness_ignores_the_check_when_no_audit_is_configured(emulator: KubernetesEmulator) -> None:
    async with liveness(kopf.Memo(), emulator) as url, httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200


# Against the Kubernetes emulator: the API's list and Kopf's watch agree on resourceVersions


@pytest.fixture
def emulator() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespaces=["default", "shop", "shop-eu", "other"])
    with emulator.run_in_thread():
        yield emulator


def store(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"apiTokenSecretRef": {"name": "fastly-api-token"}}}


@pytest.fixture
def stores(emulator: KubernetesEmulator) -> dict[str, str]:
    """namespace -> uid of one store in each namespace."""
    return {
        namespace: emulator.store.create("fastlysecretstores", store("checkout"), namespace=namespace)["metadata"][
            "uid"
        ]
        for namespace in ("default", "shop", "shop-eu", "other")
    }


@pytest.mark.parametrize(
    ("namespaces", "expected"),
    [
        ((), {"default", "shop", "shop-eu", "other"}),
        (("shop", "other"), {"shop", "other"}),
        (("shop-eu",), {"shop-eu"}),
    ],
)
async def test_kube_lister_lists_the_scope_kopf_watches(
    emulator: KubernetesEmulator, stores: dict[str, str], namespaces: tuple[str, ...], expected: set[str]
) -> None:
    client = kube.connect(kube.from_connection_info(emulator.connection_info()))
    try:
        listed = await kube_lister(client, namespaces)()
    finally:
        await client.aclose()
    assert set(listed) == {stores[namespace] for namespace in expected}
    for namespace in expected:
        obj = emulator.store.get("fastlysecretstores", namespace, "checkout")
        assert listed[stores[namespace]] == obj["metadata"]["resourceVersion"]


async def test_a_live_kopf_watch_leaves_nothing_missing(
    emulator: KubernetesEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The real thing: Kopf's watch feeds the audit, the operator's client lists, `--liveness` answers."""
    caplog.set_level(logging.INFO)
    registry = kopf.OperatorRegistry()
    health.register(registry)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return emulator.connection_info()

    client = kube.connect(kube.from_connection_info(emulator.connection_info()))
    lister = kube_lister(client, ["shop"])
    audit = WatchAudit(lister, interval=0.1)
    emulator.store.create("fastlysecretstores", store("before"), namespace="shop")
    emulator.store.create("fastlysecretstores", store("elsewhere"), namespace="other")  # out of scope
    url = f"http://127.0.0.1:{free_port()}/healthz"
    stop, ready = asyncio.Event(), asyncio.Event()
    operator = asyncio.create_task(
        kopf.operator(
            registry=registry,
            namespaces=["shop"],
            standalone=True,
            liveness_endpoint=url,
            memo=kopf.Memo(watch_audit=audit),
            stop_flag=stop,
            ready_flag=ready,
        )
    )
    try:
        async with asyncio.timeout(BOUND):
            await ready.wait()
            emulator.store.create("fastlysecretstores", store("after"), namespace="shop")
            emulator.store.patch("fastlysecretstores", "shop", "before", {"metadata": {"labels": {"tier": "gold"}}})
            while True:  # until the watch has delivered both objects' latest versions
                listed = await lister()
                if len(listed) == 2 and audit.compare(listed) == 0:
                    break
                await asyncio.sleep(0.05)
            async with httpx.AsyncClient() as client:
                response = await client.get(url)
        assert response.status_code == 200
        assert "watch" in response.json()
        # Recording deliveries costs no log line per watch event.
        assert not [record for record in caplog.records if "watch-audit-delivery" in record.getMessage()]
    finally:
        stop.set()
        async with asyncio.timeout(BOUND):
            await operator
        await client.aclose()


@pytest.fixture(autouse=True)
def _quiet_kopf(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
