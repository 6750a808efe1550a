"""The Secret watch wakes readers by name and keeps nothing per Secret."""

from __future__ import annotations

import asyncio
from typing import Any

import kubernetes

from fastly_secret_store_operator.secret_watch import SecretWatch
from fastly_secret_store_operator.tracking import Tracker


def _watch(calls: list[tuple[str, str]]) -> tuple[SecretWatch, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    watch = SecretWatch(kubernetes.client.ApiClient(), ["shop"], lambda ns, name: calls.append((ns, name)), loop)
    return watch, loop


def _event(kind: str, name: str = "token", version: str = "7") -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"namespace": "shop", "name": name, "resourceVersion": version}}}


def test_changes_are_passed_on_by_name_and_bookmarks_only_advance() -> None:
    calls: list[tuple[str, str]] = []
    watch, loop = _watch(calls)
    try:
        assert watch._handle(_event("MODIFIED", version="8"), "7") == "8"
        assert watch._handle(_event("BOOKMARK", version="9"), "8") == "9"
        loop.run_until_complete(asyncio.sleep(0))
        assert calls == [("shop", "token")]
    finally:
        loop.close()


def test_an_expired_resource_version_starts_over() -> None:
    watch, loop = _watch([])
    try:
        gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
        assert watch._handle(gone, "7") == ""
    finally:
        loop.close()


def test_the_watch_keeps_no_state_per_secret() -> None:
    watch, loop = _watch([])
    try:

        def sizes() -> dict[str, int]:
            return {key: len(value) for key, value in vars(watch).items() if hasattr(value, "__len__")}

        before = sizes()
        for index in range(1000):
            watch._handle(_event("ADDED", name=f"unrelated-{index}"), "1")
        assert sizes() == before
    finally:
        loop.close()


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
