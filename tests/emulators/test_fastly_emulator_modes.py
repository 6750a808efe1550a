"""The emulator's modes and faults for the safety tests: duplicate store names, slow creates, lost and
unreadable answers to a create that was carried out, and client keys it refuses."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable

import httpx
import nacl.public
import pytest

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator, Garbling, Route

STORES = "/resources/stores/secret"
BOUND = 10.0  # seconds any awaited condition gets before a test fails


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


async def test_duplicate_store_names_are_refused_unless_allowed(
    api: httpx.AsyncClient, emulator: FastlyEmulator
) -> None:
    assert (await api.post(STORES, json={"name": "shop"})).status_code == 201
    assert (await api.post(STORES, json={"name": "shop"})).status_code == 409
    emulator.allow_duplicate_names = True
    second = await api.post(STORES, json={"name": "shop"})
    assert second.status_code == 201
    listed = (await api.get(STORES, params={"name": "shop"})).json()["data"]
    assert len(listed) == len(emulator.stores_named("shop")) == 2
    assert second.json()["id"] in {store["id"] for store in listed}


async def test_duplicate_names_from_the_constructor() -> None:
    async with FastlyEmulator(allow_duplicate_names=True) as emulator:
        emulator.create_store_direct("shop")
        emulator.create_store_direct("shop")
        assert len(emulator.stores_named("shop")) == 2


async def test_a_slow_create_makes_the_store_only_when_it_answers(
    api: httpx.AsyncClient, emulator: FastlyEmulator
) -> None:
    emulator.faults.add(route=Route.CREATE_STORE, kind="latency", delay=2.0, count=1)
    creating = asyncio.create_task(api.post(STORES, json={"name": "slow"}, timeout=BOUND))
    await eventually(lambda: emulator.faults.pending == 0, "the create reached the emulator")
    # In flight: a lookup or a delete by name finds nothing yet.
    assert (await api.get(STORES, params={"name": "slow"})).json()["data"] == []
    assert emulator.store_named("slow") is None
    created = await creating
    assert created.status_code == 201
    assert emulator.store_named("slow") is not None


async def test_a_slow_create_the_client_gave_up_on_still_lands(emulator: FastlyEmulator) -> None:
    emulator.faults.add(route=Route.CREATE_STORE, kind="latency", delay=1.0, count=1)
    async with httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": "t"}) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post(STORES, json={"name": "late"}, timeout=0.2)
    assert emulator.store_named("late") is None
    await eventually(lambda: emulator.store_named("late") is not None, "the abandoned create landed")


async def test_a_lost_answer_drops_the_connection_after_creating(
    api: httpx.AsyncClient, emulator: FastlyEmulator
) -> None:
    emulator.faults.add(route=Route.CREATE_STORE, kind="lost", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post(STORES, json={"name": "lost"})
    assert emulator.store_named("lost") is not None
    assert emulator.requests[-1].status is None  # recorded as dropped
    assert (await api.post(STORES, json={"name": "next"})).status_code == 201  # one request only


async def test_a_lost_answer_can_hold_the_connection_until_the_client_times_out(emulator: FastlyEmulator) -> None:
    emulator.faults.add(route=Route.CREATE_STORE, kind="lost", hold=2.0, count=1)
    async with httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": "t"}) as api:
        with pytest.raises(httpx.ReadTimeout):
            await api.post(STORES, json={"name": "silent"}, timeout=0.3)
    assert emulator.store_named("silent") is not None  # created before the silence


@pytest.mark.parametrize(("garbling", "missing"), [("no-created-at", "created_at"), ("no-id", "id")])
async def test_an_unreadable_created_answer_lacks_a_field(
    api: httpx.AsyncClient, emulator: FastlyEmulator, garbling: Garbling, missing: str
) -> None:
    emulator.faults.add(route=Route.CREATE_STORE, kind="garble", garbling=garbling, count=1)
    created = await api.post(STORES, json={"name": "shop"})
    assert created.status_code == 201
    assert missing not in created.json()
    assert created.json()["name"] == "shop"
    assert created.headers["Fastly-RateLimit-Remaining"]  # still a write's answer
    assert emulator.store_named("shop") is not None


async def test_an_unreadable_created_answer_can_be_html(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    emulator.faults.add(route=Route.CREATE_STORE, kind="garble", garbling="not-json", count=1)
    created = await api.post(STORES, json={"name": "shop"})
    assert created.status_code == 201
    assert created.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):  # noqa: PT011 - any JSON decoding error
        created.json()
    assert emulator.store_named("shop") is not None


async def test_garbling_leaves_refusals_alone(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    emulator.create_store_direct("taken")
    emulator.faults.add(route=Route.CREATE_STORE, kind="garble", count=1)
    refused = await api.post(STORES, json={"name": "taken"})
    assert (refused.status_code, refused.json()["msg"]) == (409, "store with name 'taken' already exists")


def test_unknown_garblings_and_negative_holds_are_refused(emulator: FastlyEmulator) -> None:
    with pytest.raises(ValueError, match="garbling"):
        emulator.faults.add(kind="garble", garbling="truncated")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hold"):
        emulator.faults.add(kind="lost", hold=-1)


async def sealed_put(api: httpx.AsyncClient, store_id: str, client_key: str, value: bytes) -> httpx.Response:
    public_key = nacl.public.PublicKey(base64.b64decode(client_key))
    sealed = base64.b64encode(nacl.public.SealedBox(public_key).encrypt(value)).decode()
    body = {"name": "KEY", "secret": sealed, "client_key": client_key}
    return await api.put(f"{STORES}/{store_id}/secrets", json=body)


async def test_the_next_writes_client_key_can_be_refused(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    store_id = emulator.create_store_direct("shop").id
    client_key = (await api.post(f"{STORES}/client-key")).json()["public_key"]
    emulator.refuse_client_keys(1)
    refused = await sealed_put(api, store_id, client_key, b"value")
    assert refused.status_code == 400
    assert refused.json() == {
        "msg": "Bad Request",
        "detail": "client key expired; fetch a new one from POST /resources/stores/secret/client-key",
    }
    assert emulator.secrets(store_id) == []
    assert (await sealed_put(api, store_id, client_key, b"value")).status_code == 200  # only the next one


async def test_issued_client_keys_can_be_expired_or_forgotten(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    store_id = emulator.create_store_direct("shop").id
    client_key = (await api.post(f"{STORES}/client-key")).json()["public_key"]
    emulator.expire_client_keys()
    assert "expired" in (await sealed_put(api, store_id, client_key, b"v")).json()["detail"]
    fresh = (await api.post(f"{STORES}/client-key")).json()["public_key"]
    assert (await sealed_put(api, store_id, fresh, b"v")).status_code == 200
    emulator.forget_client_keys()
    assert "unknown client key" in (await sealed_put(api, store_id, fresh, b"v")).json()["detail"]
