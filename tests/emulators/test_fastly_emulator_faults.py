"""The Fastly emulator's write budget, fault injection, request log and ways of running."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator, Route, run_in_thread, serve

STORES = "/resources/stores/secret"
BOUND = 10.0  # seconds any awaited condition gets before a test fails


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_writes_carry_rate_limit_headers_and_reads_do_not() -> None:
    clock = FakeClock(1_000_000.5)
    emulator = FastlyEmulator(write_budget=3, budget_window=3600, clock=clock)
    async with emulator, httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": "t"}) as api:
        created = await api.post(STORES, json={"name": "s"})
        assert created.headers["Fastly-RateLimit-Remaining"] == "2"
        assert created.headers["Fastly-RateLimit-Reset"] == "1000800"  # end of the hour-aligned window
        listed = await api.get(STORES)
        assert "Fastly-RateLimit-Remaining" not in listed.headers
        failed = await api.delete(f"{STORES}/missing")  # failed writes count too
        assert (failed.status_code, failed.headers["Fastly-RateLimit-Remaining"]) == (404, "1")


async def test_a_spent_budget_answers_429_until_the_window_ends() -> None:
    clock = FakeClock(7200.0)
    emulator = FastlyEmulator(write_budget=2, budget_window=60, clock=clock)
    async with emulator, httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": "t"}) as api:
        for name in ("a", "b"):
            assert (await api.post(STORES, json={"name": name})).status_code == 201
        refused = await api.post(STORES, json={"name": "c"})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["msg"]
        assert refused.headers["Fastly-RateLimit-Remaining"] == "0"
        assert refused.headers["Fastly-RateLimit-Reset"] == "7260"
        assert (await api.get(STORES)).status_code == 200  # reads are not limited
        other_token = await api.post(STORES, json={"name": "c"}, headers={"Fastly-Key": "other"})
        assert other_token.status_code == 201  # budgets are per token

        clock.now = 7260.0
        assert (await api.post(STORES, json={"name": "d"})).status_code == 201
        assert {store.name for store in emulator.stores()} == {"a", "b", "c", "d"}


async def test_the_budget_can_be_changed_and_refilled_while_running() -> None:
    emulator = FastlyEmulator(write_budget=1)
    async with emulator, httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": "t"}) as api:
        assert (await api.post(f"{STORES}/client-key")).status_code == 200
        assert (await api.post(f"{STORES}/client-key")).status_code == 429  # client keys are writes
        emulator.budget.refill()
        assert (await api.post(f"{STORES}/client-key")).status_code == 200
        emulator.budget.limit = None
        unlimited = await api.post(f"{STORES}/client-key")
        assert unlimited.status_code == 200
        assert int(unlimited.headers["Fastly-RateLimit-Remaining"]) > 0


async def test_status_faults_hit_the_next_n_matching_requests(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    emulator.faults.add(route=Route.CREATE_STORE, kind="status", status=503, count=2, headers={"Retry-After": "1"})
    for _ in range(2):
        failed = await api.post(STORES, json={"name": "s"})
        assert failed.status_code == 503
        assert failed.headers["Retry-After"] == "1"
        assert failed.headers["content-type"] == "application/json"
        assert (await api.get(STORES)).status_code == 200  # other routes are untouched
    assert (await api.post(STORES, json={"name": "s"})).status_code == 201
    assert emulator.faults.pending == 0
    assert len(emulator.stores()) == 1  # the faulted requests changed nothing


async def test_faults_match_by_method_or_route_without_method(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    store_id = (await api.post(STORES, json={"name": "s"})).json()["id"]
    emulator.faults.add(route=Route.PUT_SECRET.path, method="PATCH", kind="status", status=500, count=1)
    emulator.faults.add(method="DELETE", kind="status", status=502, count=1)
    secrets = f"{STORES}/{store_id}/secrets"
    assert (await api.put(secrets, json={"name": "K", "secret": "dg=="})).status_code == 200
    assert (await api.patch(secrets, json={"name": "K", "secret": "dg=="})).status_code == 500
    assert (await api.delete(f"{secrets}/K")).status_code == 502
    assert (await api.delete(f"{secrets}/K")).status_code == 204


async def test_dropped_connections_get_no_response(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    emulator.faults.add(route=Route.LIST_STORES, kind="drop", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        await api.get(STORES)
    assert (await api.get(STORES)).status_code == 200
    assert [request.status for request in emulator.requests] == [None, 200]


async def test_latency_faults_delay_matching_requests(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    emulator.faults.add(route=Route.LIST_STORES, kind="latency", delay=0.3, count=1)
    started = time.monotonic()
    assert (await api.get(STORES)).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert emulator.faults.pending == 0


async def test_latency_applies_to_every_request() -> None:
    emulator = FastlyEmulator(latency=0.2)
    async with emulator, httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": "t"}) as api:
        started = time.monotonic()
        await api.get(STORES)
        await api.get(f"{STORES}/signing-key")
        assert time.monotonic() - started >= 0.4


async def fault_pattern(seed: int, rate: float) -> list[int]:
    emulator = FastlyEmulator()
    emulator.faults.add(route=Route.LIST_STORES, kind="status", status=500, rate=rate, seed=seed)
    async with emulator, httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": "t"}) as api:
        return [(await api.get(STORES)).status_code for _ in range(40)]


async def test_fault_rates_are_seeded() -> None:
    pattern = await fault_pattern(seed=11, rate=0.5)
    assert pattern == await fault_pattern(seed=11, rate=0.5)
    assert set(pattern) == {200, 500}
    assert set(await fault_pattern(seed=11, rate=0.0)) == {200}
    assert set(await fault_pattern(seed=11, rate=1.0)) == {500}


async def test_faults_can_be_cleared(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    emulator.faults.add(kind="status", status=503)
    assert (await api.get(STORES)).status_code == 503
    emulator.faults.clear()
    assert (await api.get(STORES)).status_code == 200


@pytest.mark.parametrize(
    "arguments",
    [
        {"kind": "explode"},
        {"kind": "status", "count": 0},
        {"kind": "status", "rate": 1.5},
        {"kind": "latency", "delay": -1.0},
        {"kind": "status", "method": "GET", "route": Route.CREATE_STORE.value},
    ],
)
def test_impossible_faults_are_refused(arguments: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        FastlyEmulator().faults.add(**arguments)  # type: ignore[arg-type]


async def test_requests_are_recorded_by_route_without_tokens(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    store_id = (await api.post(STORES, json={"name": "s"})).json()["id"]
    await api.put(f"{STORES}/{store_id}/secrets", json={"name": "K", "secret": "dg=="})
    await api.get(f"{STORES}/{store_id}/secrets/K")
    await api.get("/elsewhere")
    assert [(r.route, r.status) for r in emulator.requests] == [
        (Route.CREATE_STORE, 201),
        (Route.PUT_SECRET, 200),
        (Route.GET_SECRET, 200),
        (None, 404),
    ]
    assert emulator.requests[1].path == f"{STORES}/{store_id}/secrets"
    assert "token" not in repr(emulator.requests)
    emulator.requests.clear()
    await api.get(STORES)
    assert [r.route for r in emulator.requests] == ["GET /resources/stores/secret"]


async def test_logs_hold_neither_tokens_nor_values(caplog: pytest.LogCaptureFixture) -> None:
    token, value = "tok-3f9a1c", "dmFsdWUtN2IyZQ=="
    caplog.set_level(logging.DEBUG)
    emulator = FastlyEmulator()
    async with emulator, httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": token}) as api:
        store_id = (await api.post(STORES, json={"name": "s"})).json()["id"]
        await api.put(f"{STORES}/{store_id}/secrets", json={"name": "K", "secret": value})
        await api.put(f"{STORES}/{store_id}/secrets", json={"name": "K", "secret": "bad base64!" + value})
    assert f"{STORES}/{store_id}/secrets" in caplog.text  # it does log requests
    for forbidden in (token, value, "value-7b2e"):
        assert forbidden not in caplog.text


def test_run_in_thread_serves_sync_clients() -> None:
    emulator = FastlyEmulator()
    with run_in_thread(emulator) as url:
        assert url == emulator.url
        assert url.startswith("http://127.0.0.1:")
        response = httpx.post(f"{url}{STORES}", json={"name": "sync"}, headers={"Fastly-Key": "t"})
        assert response.status_code == 201
        assert emulator.store_named("sync") is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}{STORES}", headers={"Fastly-Key": "t"})


def test_run_in_thread_reports_a_failure_to_start() -> None:
    with run_in_thread(FastlyEmulator()) as url:
        port = int(url.rsplit(":", 1)[1])
        with (
            pytest.raises(OSError, match="address already in use"),
            run_in_thread(FastlyEmulator(), port=port),
        ):
            pass


async def test_serve_runs_until_cancelled_and_says_where(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(serve("127.0.0.1", 0, ["cli-token"], seed=5))
    output = ""
    deadline = time.monotonic() + BOUND
    while "listening on" not in output:
        assert time.monotonic() < deadline, "serve() never said where it listens"
        await asyncio.sleep(0.01)
        output += capsys.readouterr().out
    url = output.split("listening on ", 1)[1].split()[0]
    assert FastlyEmulator(seed=5).signing_key_b64 in output
    async with httpx.AsyncClient(base_url=url) as api:
        assert (await api.get(STORES, headers={"Fastly-Key": "cli-token"})).status_code == 200
        assert (await api.get(STORES, headers={"Fastly-Key": "other"})).status_code == 401
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url)
