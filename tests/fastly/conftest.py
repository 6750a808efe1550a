"""Fixtures for the Fastly client tests: a client wired to an in-process handler, and fake time."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fastly_secret_store_operator.fastly import FastlyClient

# Real traffic recorded against api.fastly.com by go-fastly (go-vcr YAML), copied into the repository.
RECORDINGS = Path(__file__).resolve().parent.parent / "fixtures" / "fastly-recordings"

# A token that must never show up anywhere it should not: errors, reprs, logs.
CANARY_TOKEN = "canary-tok-7Qm2Xv9LpR4sT8wZ"

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


@dataclass
class FakeTime:
    """A wall clock that only moves when the client sleeps."""

    now: datetime = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)

    def epoch(self, seconds_from_now: float) -> str:
        return str(int(self.now.timestamp() + seconds_from_now))


@dataclass
class Api:
    """A FastlyClient talking to ``handler`` through httpx.MockTransport, and the requests it sent."""

    client: FastlyClient
    requests: list[httpx.Request]

    @property
    def routes(self) -> list[str]:
        return [f"{request.method} {request.url.path}" for request in self.requests]


MakeApi = Callable[..., Api]


@pytest.fixture
def token() -> str:
    return CANARY_TOKEN


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def make_api(fake_time: FakeTime) -> AsyncIterator[MakeApi]:
    apis: list[Api] = []

    def make(handler: Handler, **options: Any) -> Api:
        requests: list[httpx.Request] = []

        async def record(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            response = handler(request)
            return await response if inspect.isawaitable(response) else response

        options.setdefault("endpoint", "http://127.0.0.1:8790")
        options.setdefault("sleep", fake_time.sleep)
        options.setdefault("clock", fake_time.clock)
        options.setdefault("jitter", lambda: 1.0)  # the full backoff delay, so tests can predict it
        client = FastlyClient(CANARY_TOKEN, transport=httpx.MockTransport(record), **options)
        apis.append(Api(client, requests))
        return apis[-1]

    yield make
    for api in apis:
        await api.client.aclose()


Interaction = dict[str, Any]


@pytest.fixture
def recorded() -> Callable[[str], list[tuple[str, Interaction]]]:
    """``recorded("secret_store")``: every (file, interaction) recorded under that folder, in a stable order."""

    def load(folder: str) -> list[tuple[str, Interaction]]:
        files = sorted((RECORDINGS / folder).rglob("*.yaml"))
        assert files, f"no recordings under {RECORDINGS / folder}"
        return [
            (str(file.relative_to(RECORDINGS)), interaction)
            for file in files
            for interaction in yaml.safe_load(file.read_text())["interactions"]
        ]

    return load


def recorded_response(interaction: Interaction) -> httpx.Response:
    """The response as Fastly sent it (bar lengths and encodings, which no longer apply to the stored text)."""
    recorded = interaction["response"]
    headers = [
        (name, value)
        for name, values in recorded["headers"].items()
        if name.lower() not in ("content-length", "content-encoding")
        for value in values
    ]
    return httpx.Response(recorded["code"], headers=headers, content=recorded["body"].encode())


@pytest.fixture
def replay() -> Callable[[Interaction], httpx.Response]:
    return recorded_response
