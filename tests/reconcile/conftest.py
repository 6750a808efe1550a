"""Reconcile functions against the real Fastly emulator over HTTP, with Secrets held in a dict."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from reconcile_support import TOKEN, DictSecrets, MemoryOwners

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.reconcile.fingerprint import Fingerprinter
from fastly_secret_store_operator.reconcile.object import Environment
from fastly_secret_store_operator.sessions import FastlyOptions, SessionPool


@pytest.fixture
async def fastly() -> AsyncIterator[FastlyEmulator]:
    async with FastlyEmulator(tokens=[TOKEN]) as emulator:
        yield emulator


@pytest.fixture
def secrets() -> DictSecrets:
    store = DictSecrets()
    store.put("fastly-api-token", token=TOKEN)
    return store


@pytest.fixture
def owners() -> MemoryOwners:
    return MemoryOwners()


@pytest.fixture
async def env(fastly: FastlyEmulator, secrets: DictSecrets, owners: MemoryOwners) -> AsyncIterator[Environment]:
    pool = SessionPool(FastlyOptions(endpoint=fastly.url, trust_api_signing_key=True))
    yield Environment(secrets=secrets, connect=pool, fingerprinter=Fingerprinter(b"k" * 32), owners=owners)
    await pool.aclose()
