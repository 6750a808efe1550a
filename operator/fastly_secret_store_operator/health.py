"""Liveness that fails when the FastlySecretStore watch has silently stopped delivering changes.

Kopf's own liveness endpoint answers 200 as long as the event loop runs, even when the watch stream has died
or hangs and the operator no longer sees any change (Kopf #1276). This module makes that failure visible.

Why not "time since the last event": a quiet cluster legitimately has no events for hours, and Kopf hides the
signals of a healthy idle stream from handlers (it drops BOOKMARK events before any handler sees them, and a
server-side timeout reconnects from the last resourceVersion without re-listing, so no handler runs either).
Writing to an object just to see the write come back would need a FastlySecretStore of our own or writes to
the users' objects. So the check audits instead:

- every event the watch delivers records the object's uid and resourceVersion (in an `@kopf.on.event` filter);
- every `interval` seconds a background task lists the objects' metadata from the API server (one cheap LIST)
  and compares: an object whose listed resourceVersion the watch has not delivered (or a uid the watch still
  holds but the API no longer lists) is out of step; the audit notes when it first saw that object so;
- the watch delivering anything for that object clears the note (the stream is carrying it), and so does a
  later audit finding it in step. Keying the note by object, not by version, matters: an object that keeps
  changing under a dead watch shows a new version at every audit and would otherwise never look overdue;
- a `WatchHeartbeat` holds the moment up to which the watch is known to be current: the time of the last
  audit when nothing is out of step, else when the oldest note was taken;
- the probe fails when that moment is older than `threshold` (3 x interval by default): a change has waited
  longer than a reconnect or a busy object worker explains, or the audit task itself has stopped.

On a quiet cluster the list matches and the probe passes; nothing was missed, so there is nothing to fix. A
list that fails (API server unreachable) proves nothing either way and does not fail the probe: restarting
cannot fix the API server, and Kopf reconnects by itself once it is back.

Kopf's liveness endpoint returns HTTP 500 when a probe handler fails permanently (the handler is registered
with `errors=PERMANENT`, so Kopf does not retry it inside the probe request), and 200 with the probe results
otherwise; so the check plugs into `--liveness` as an `@kopf.on.probe` handler. Kopf caches a passing probe
for 10 s, a failing one not at all.

The audit lists exactly the scope Kopf watches: all namespaces, or the `--namespace` names (exact names).
It runs where Kopf runs: one instance (`--standalone`), or the leader under `--leader-elect` (standbys run no
Kopf and answer the probe themselves). With Kopf peering, a paused standby would see no events and fail it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx
import kopf

from fastly_secret_store_operator.kube import GROUP, PLURAL, VERSION, KubeClient, stores_path

logger = logging.getLogger(__name__)

#: The memo attribute the handlers below read their `WatchAudit` from; without it they do nothing.
MEMO_KEY = "watch_audit"
DEFAULT_INTERVAL = 60.0

Clock = Callable[[], float]
#: uid -> resourceVersion of every FastlySecretStore in the operator's scope, as the API server lists them.
Lister = Callable[[], Awaitable[Mapping[str, str]]]

# Ask for metadata only (uid, resourceVersion are all the audit reads); a server that cannot, sends full objects.
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


class WatchStale(Exception):
    """The watch has not been shown current for longer than the threshold."""


class WatchHeartbeat:
    """The monotonic moment up to which the watch is known to have delivered every change."""

    def __init__(self, threshold: float, *, clock: Clock = time.monotonic) -> None:
        if threshold <= 0:
            raise ValueError("the heartbeat threshold must be positive")
        self.threshold = threshold
        self._clock = clock
        self._last = clock()  # a fresh start is current: Kopf is about to list everything

    def beat(self, at: float | None = None) -> None:
        self._last = self._clock() if at is None else at

    def age(self) -> float:
        return self._clock() - self._last

    def check(self) -> float:
        """The age in seconds; raises WatchStale when it exceeds the threshold."""
        age = self.age()
        if age > self.threshold:
            raise WatchStale(
                f"the FastlySecretStore watch has not been current for {age:.0f}s (threshold {self.threshold:.0f}s): "
                "changes in the cluster are not reaching the operator"
            )
        return age


class WatchAudit:
    """What the watch delivered, compared with what the API server lists, beating a `WatchHeartbeat`."""

    def __init__(
        self,
        lister: Lister,
        *,
        interval: float = DEFAULT_INTERVAL,
        threshold: float | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        threshold = 3 * interval if threshold is None else threshold
        if interval <= 0 or threshold < 2 * interval:
            # Below two intervals, one slow audit would fail the probe with nothing wrong.
            raise ValueError("the audit interval must be positive and the threshold at least twice the interval")
        self.interval = interval
        self.heartbeat = WatchHeartbeat(threshold, clock=clock)
        self._lister = lister
        self._clock = clock
        self._delivered: dict[str, str] = {}
        # uid -> when an audit first found the watch out of step for it (since then, nothing delivered for it).
        self._missing: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def delivered(self, uid: str, resource_version: str, *, deleted: bool = False) -> None:
        if self._missing.pop(uid, None) is not None:  # whatever this event is, the stream carries this object
            self._beat(self._clock())
        if deleted:
            self._delivered.pop(uid, None)
        else:
            self._delivered[uid] = resource_version

    def compare(self, listed: Mapping[str, str]) -> int:
        """Record one listing; returns how many objects the watch is out of step for."""
        now = self._clock()
        out_of_step = {uid for uid, version in listed.items() if self._delivered.get(uid) != version}
        # An object delivered but no longer listed is gone. Its DELETED event may never come (after a 410, Kopf
        # lists again without announcing what vanished), so forget it rather than fail the probe forever.
        self._delivered = {uid: version for uid, version in self._delivered.items() if uid in listed}
        # Keep when each object was first found out of step; those back in step are forgotten.
        self._missing = {uid: self._missing.get(uid, now) for uid in out_of_step}
        self._beat(now)
        return len(self._missing)

    def _beat(self, now: float) -> None:
        self.heartbeat.beat(min(self._missing.values(), default=now))

    async def audit(self) -> None:
        try:
            listed = await self._lister()
        except Exception as error:
            # Only the class: an API error's text can quote request details, and it proves nothing here.
            logger.warning("Watch audit: cannot list FastlySecretStores (%s); will try again", type(error).__name__)
            self._beat(self._clock())
            return
        missing = self.compare(listed)
        if missing:
            logger.debug("Watch audit: the watch is out of step for %d object(s)", missing)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.audit()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="watch audit")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def configure_watching(settings: kopf.OperatorSettings) -> None:
    """Bound the life of every watch request, so that no single connection can hang forever.

    Not needed by the audit; defence in depth next to Kopf's inactivity timeout, which only reconnects a
    stream that delivers nothing at all. Reconnecting resumes from the last resourceVersion: no re-listing.
    """
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660  # the server closes first; the client only catches a dead peer


def _audit(memo: Any) -> WatchAudit | None:
    audit: WatchAudit | None = getattr(memo, MEMO_KEY, None)
    return audit


def _record_delivery(type: str | None, body: kopf.Body, uid: str, memo: Any, **_: Any) -> bool:
    """Record what the watch delivered, from a handler filter that always says no. Kopf calls a filter for every
    event for the price of the call, in the event loop where the audit runs; a handler call costs its execution
    machinery and an INFO line ("Handler ... succeeded"): a log line per watch event."""
    audit = _audit(memo)
    version = body.metadata.get("resourceVersion")
    if audit is not None and uid and version:
        audit.delivered(uid, str(version), deleted=type == "DELETED")
    return False


async def _never_called(**_: Any) -> None:
    raise AssertionError("the watch audit records deliveries in its filter")


# Async so that Kopf runs them in the event loop, where the audit runs, not in its thread pool.


async def _probe_watch(memo: Any, **_: Any) -> dict[str, float] | None:
    audit = _audit(memo)
    if audit is None:
        return None
    try:
        age = audit.heartbeat.check()
    except WatchStale as stale:
        raise kopf.PermanentError(str(stale)) from None
    return {"seconds_since_in_step": round(age, 1)}


async def _start_audit(memo: Any, **_: Any) -> None:
    audit = _audit(memo)
    if audit is not None:
        audit.start()


async def _stop_audit(memo: Any, **_: Any) -> None:
    audit = _audit(memo)
    if audit is not None:
        await audit.stop()


def register(registry: kopf.OperatorRegistry | None = None) -> None:
    """Add the audit's handlers to `registry` (Kopf's default registry when None). Safe to call again:
    Kopf keeps one handler per id. The handlers act only when the memo holds a `WatchAudit` under MEMO_KEY."""
    kopf.on.event(GROUP, VERSION, PLURAL, id="watch-audit-delivery", when=_record_delivery, registry=registry)(
        _never_called
    )
    kopf.on.probe(id="watch", errors=kopf.ErrorsMode.PERMANENT, registry=registry)(_probe_watch)
    kopf.on.startup(id="watch-audit-start", registry=registry)(_start_audit)
    kopf.on.cleanup(id="watch-audit-stop", registry=registry)(_stop_audit)


def kube_lister(client: KubeClient, namespaces: Sequence[str] = (), *, timeout: float = 30.0) -> Lister:
    """List FastlySecretStores in the scope Kopf watches: every namespace when `namespaces` is empty, else the
    namespaces named (exact names: `run` refuses patterns)."""
    request_timeout = httpx.Timeout(timeout, connect=5.0)

    async def lister() -> Mapping[str, str]:
        found: dict[str, str] = {}
        for namespace in namespaces or (None,):
            listed = await client.get_json(stores_path(namespace), accept=_METADATA_ONLY, timeouts=request_timeout)
            found |= _versions(_items(listed))
        return found

    return lister


def _items(listed: object) -> list[Mapping[str, Any]]:
    items = listed.get("items") if isinstance(listed, Mapping) else None
    return [item for item in items or () if isinstance(item, Mapping)]


def _versions(items: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    metadata = (item.get("metadata", {}) for item in items)
    return {str(meta["uid"]): str(meta["resourceVersion"]) for meta in metadata if "uid" in meta}
