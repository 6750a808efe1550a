"""Fixtures of the emulator tests: a Fastly emulator and a plain HTTP client for it (no project client, so the
emulator is tested on its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator


@pytest.fixture
async def emulator() -> AsyncIterator[FastlyEmulator]:
    async with FastlyEmulator(seed=7) as emulator:
        yield emulator


@pytest.fixture
async def api(emulator: FastlyEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": "token"}) as client:
        yield client
