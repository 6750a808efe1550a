"""The Secret watch: wakes readers by name, keeps nothing per Secret, survives 410s, ends when stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from scripted_server import ScriptedServer, events, serving, status

from fastly_secret_store_operator import kube
from fastly_secret_store_operator.secret_watch import METADATA_ONLY, SecretWatch
from fastly_secret_store_operator.tracking import Tracker

BOUND = 5.0


def _event(kind: str, name: str = "token", version: str = "7") -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"namespace": "shop", "name": name, "resourceVersion": version}}}


GONE = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with serving(ScriptedServer()) as running:
        yield running


class Watching:
    def __init__(self, server: ScriptedServer) -> None:
        self.calls: list[tuple[str, str]] = []
        self.changed = asyncio.Event()
        self.client = kube.connect(kube.Credentials(server=server.url))
        self.watch = SecretWatch(self.client, ["shop"], self.on_change)

    def on_change(self, namespace: str, name: str) -> None:
        self.calls.append((namespace, name))
        self.changed.set()

    async def until_calls(self, count: int) -> None:
        async with asyncio.timeout(BOUND):
            while len(self.calls) < count:
                self.changed.clear()
                await self.changed.wait()

    async def __aenter__(self) -> Watching:
        self.watch.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.watch.stop()
        await self.client.aclose()


def _versions(server: ScriptedServer) -> list[str | None]:
    return [seen.query.get("resourceVersion") for seen in server.seen]


async def test_a_stream_that_ends_resumes_and_a_410_at_start_starts_over(server: ScriptedServer) -> None:
    hold = asyncio.Event()
    server.script = [
        events(_event("ADDED", "a", "5"), _event("BOOKMARK", "", "6")),  # ends: the server's timeout
        status(410),  # resourceVersion 6 is too old by now
    ]
    server.default = events(_event("ADDED", "b", "9"), hold=hold)
    async with Watching(server) as watching:
        await watching.until_calls(2)
        hold.set()
    assert _versions(server) == [None, "6", None]
    assert watching.calls == [("shop", "a"), ("shop", "b")]
    first = server.seen[0]
    assert first.raw_path == "/api/v1/namespaces/shop/secrets"
    assert first.query["watch"] == "true"
    assert first.headers["Accept"] == METADATA_ONLY


async def test_a_410_in_the_stream_starts_over_from_now(server: ScriptedServer) -> None:
    hold = asyncio.Event()
    server.script = [events(_event("ADDED", "a", "5"), GONE, _event("MODIFIED", "never", "8"))]
    server.default = events(hold=hold)
    async with Watching(server) as watching:
        await server.wait_for(2, BOUND)
        hold.set()
    assert _versions(server)[:2] == [None, None]
    assert watching.calls == [("shop", "a")]  # nothing after the error event is trusted


async def test_stop_ends_a_watch_waiting_on_a_quiet_stream(server: ScriptedServer) -> None:
    hold = asyncio.Event()  # never set: the stream stays open, as a real watch does for minutes
    server.default = events(hold=hold)
    watching = Watching(server)
    await watching.__aenter__()
    await server.wait_for(1, BOUND)
    async with asyncio.timeout(1.0):
        await watching.__aexit__()
    assert len(server.seen) == 1


async def test_failures_back_off_but_never_longer_than_a_few_seconds(server: ScriptedServer) -> None:
    # An API server down for a while must see the watch again within 5 s of coming back.
    watch = SecretWatch(kube.connect(kube.Credentials(server=server.url)), ["shop"], lambda ns, name: None)
    delays = [watch._backoff(failures) for failures in range(1, 40)]
    assert max(delays) <= 3.0
    assert delays[0] < 1.0  # a blip is retried at once


def test_changes_are_passed_on_by_name_and_bookmarks_only_advance() -> None:
    calls: list[tuple[str, str]] = []
    watch = SecretWatch(
        kube.connect(kube.Credentials(server="http://127.0.0.1:1")), ["shop"], lambda *c: calls.append(c)
    )
    assert watch.handle(_event("MODIFIED", version="8"), "7") == "8"
    assert watch.handle(_event("BOOKMARK", version="9"), "8") == "9"
    assert calls == [("shop", "token")]


def test_the_watch_keeps_no_state_per_secret() -> None:
    watch = SecretWatch(kube.connect(kube.Credentials(server="http://127.0.0.1:1")), ["shop"], lambda *_: None)

    def sizes() -> dict[str, int]:
        return {key: len(value) for key, value in vars(watch).items() if hasattr(value, "__len__")}

    before = sizes()
    for index in range(1000):
        watch.handle(_event("ADDED", name=f"unrelated-{index}"), "1")
    assert sizes() == before


async def test_only_readers_are_woken() -> None:
    tracker = Tracker()
    reader, other = tracker.track("uid-1", "shop", "a"), tracker.track("uid-2", "shop", "b")
    tracker.set_secrets("uid-1", reader, frozenset({"token", "stripe"}))
    tracker.set_secrets("uid-2", other, frozenset({"token"}))
    assert tracker.wake_readers("shop", "stripe") == 1
    assert reader.wake.is_set()
    assert not other.wake.is_set()
    assert tracker.wake_readers("shop", "unrelated") == 0
    assert tracker.wake_readers("other-namespace", "token") == 0
    tracker.forget("uid-1")
    assert tracker.wake_readers("shop", "stripe") == 0
    assert tracker.wake_readers("shop", "token") == 1
