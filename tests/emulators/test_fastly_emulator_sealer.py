"""The operator's own client and Sealer against the emulator: what the Sealer seals, the emulator opens
to exactly the same bytes."""

from __future__ import annotations

import asyncio

import pytest

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator, Route
from fastly_secret_store_operator.fastly import (
    ClientKeyRejectedError,
    FastlyClient,
    OutcomeUnknownError,
    Sealer,
    SigningKeyMismatchError,
)

VALUES = [
    b"sk_live_plain-ascii",
    "ünïcødé ✓".encode(),
    bytes(range(256)) * 3 + b"\x00",  # binary, with NUL bytes
    b"",
    b"x" * 65536,  # the largest value Fastly accepts
]


async def test_values_sealed_by_the_sealer_are_opened_exactly() -> None:
    async with FastlyEmulator() as emulator, FastlyClient("token", endpoint=emulator.url) as client:
        sealer = Sealer(client, signing_key=None)  # trusts the emulator's key, as --trust-api-signing-key does
        store = await client.create_store("sealed")
        for number, value in enumerate(VALUES):
            await client.put_secret(store.id, f"VALUE_{number}", await sealer.seal(value))
            assert emulator.plaintext(store.id, f"VALUE_{number}") == value
    client_keys = [request for request in emulator.requests if request.route == Route.CREATE_CLIENT_KEY]
    assert len(client_keys) == 1  # the Sealer reuses its client key, sparing the write budget


async def test_the_sealer_refuses_the_emulators_key_when_pinned_to_fastlys() -> None:
    async with FastlyEmulator() as emulator, FastlyClient("token", endpoint=emulator.url) as client:
        with pytest.raises(SigningKeyMismatchError):
            await Sealer(client).seal(b"value")


async def test_a_refused_client_key_is_discarded_and_one_new_key_serves_every_retry() -> None:
    async with FastlyEmulator() as emulator, FastlyClient("token", endpoint=emulator.url) as client:
        sealer = Sealer(client, signing_key=None)
        store = await client.create_store("sealed")
        first = await sealer.seal(b"warm-up")
        await client.put_secret(store.id, "WARM", first)
        emulator.expire_client_keys()  # Fastly stops taking the key before the Sealer's refresh margin says so

        sealed = [await sealer.seal(f"value-{n}".encode()) for n in range(3)]
        results = await asyncio.gather(
            *(client.put_secret(store.id, f"KEY_{n}", value) for n, value in enumerate(sealed)),
            return_exceptions=True,
        )
        assert all(isinstance(result, ClientKeyRejectedError) for result in results), results
        assert [sealer.discard(value.client_key) for value in sealed] == [True, False, False]

        resealed = await asyncio.gather(*(sealer.seal(f"value-{n}".encode()) for n in range(3)))
        assert {value.client_key for value in resealed} != {first.client_key}
        for n, value in enumerate(resealed):
            await client.put_secret(store.id, f"KEY_{n}", value)
            assert emulator.plaintext(store.id, f"KEY_{n}") == f"value-{n}".encode()
    client_keys = [request for request in emulator.requests if request.route == Route.CREATE_CLIENT_KEY]
    assert len(client_keys) == 2  # the first key, and one replacement shared by every retry


async def test_the_client_against_the_emulators_safety_faults() -> None:
    async with (
        FastlyEmulator(tokens=["team:token"]) as emulator,
        FastlyClient("token", endpoint=emulator.url) as client,
    ):
        assert (await client.get_token_self()).customer_id == emulator.account_id("team")

        emulator.faults.add(route=Route.CREATE_STORE, kind="lost", count=1)
        with pytest.raises(OutcomeUnknownError):
            await client.create_store("lost")
        assert emulator.store_named("lost") is not None

        for garbling in ("not-json", "no-created-at", "no-id"):
            emulator.faults.add(route=Route.CREATE_STORE, kind="garble", garbling=garbling, count=1)
            with pytest.raises(OutcomeUnknownError):
                await client.create_store(f"garbled-{garbling}")
            assert emulator.store_named(f"garbled-{garbling}") is not None
