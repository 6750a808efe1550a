"""The operator's own client and Sealer against the emulator: what the Sealer seals, the emulator opens
to exactly the same bytes."""

from __future__ import annotations

import pytest

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator, Route
from fastly_secret_store_operator.fastly import FastlyClient, Sealer, SigningKeyMismatchError

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
