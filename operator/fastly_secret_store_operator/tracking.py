"""In-memory bookkeeping per FastlySecretStore: what wakes its sync loop, and which Secrets it reads.

Memory grows with the number of FastlySecretStore objects, never with the number of Secrets in the cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from fastly_secret_store_operator.reconcile.session import FastlySession

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Tracked:
    namespace: str
    name: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: Held while the object is being reconciled or finalized, so the two never overlap.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The status as the operator knows it (what happened in Fastly), even when writing it failed.
    status: dict[str, Any] | None = None
    #: Set by the delete handler: no sync pass may start after it.
    finalizing: bool = False
    reconciled_generation: int | None = None
    #: The last seen value of the reconcile-requested annotation.
    requested: str | None = None
    secrets: frozenset[str] = frozenset()
    #: The Fastly session of the last pass (in memory only), for a deletion after the token Secret is gone.
    session: FastlySession | None = None
    #: The last pass, kept referenced while it runs (it outlives a cancelled sync loop).
    running: asyncio.Future[Any] | None = None
    #: The store name this object waits for (StoreInUse), if any.
    waiting_for: str | None = None


class Tracker:
    def __init__(self) -> None:
        self._objects: dict[str, Tracked] = {}
        self._readers: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self._waiting: defaultdict[str, set[str]] = defaultdict(set)

    def track(self, uid: str, namespace: str, name: str) -> Tracked:
        tracked = self._objects.get(uid)
        if tracked is None:
            tracked = self._objects[uid] = Tracked(namespace, name)
        return tracked

    def get(self, uid: str) -> Tracked | None:
        return self._objects.get(uid)

    def forget(self, uid: str) -> None:
        tracked = self._objects.pop(uid, None)
        if tracked is not None:
            self.set_secrets(uid, tracked, frozenset())
            self.set_waiting(uid, tracked, None)

    def set_waiting(self, uid: str, tracked: Tracked, store_name: str | None) -> None:
        """Remember that the object waits for another one to release `store_name` (None: waits for nothing)."""
        if tracked.waiting_for is not None:
            waiting = self._waiting[tracked.waiting_for]
            waiting.discard(uid)
            if not waiting:
                del self._waiting[tracked.waiting_for]
        tracked.waiting_for = store_name
        if store_name is not None:
            self._waiting[store_name].add(uid)

    def wake_waiting(self, store_name: str) -> None:
        """The claims on `store_name` changed: wake the objects waiting for it."""
        for uid in self._waiting.get(store_name, set()):
            tracked = self._objects.get(uid)
            if tracked is not None:
                logger.debug("Claims on store %s changed: waking %s/%s", store_name, tracked.namespace, tracked.name)
                tracked.wake.set()

    def wake_object(self, uid: str) -> bool:
        """Wake one object's sync loop; False when this process does not track it."""
        tracked = self._objects.get(uid)
        if tracked is None:
            return False
        tracked.wake.set()
        return True

    def set_secrets(self, uid: str, tracked: Tracked, secrets: frozenset[str]) -> None:
        for secret in tracked.secrets - secrets:
            readers = self._readers[(tracked.namespace, secret)]
            readers.discard(uid)
            if not readers:
                del self._readers[(tracked.namespace, secret)]
        for secret in secrets - tracked.secrets:
            self._readers[(tracked.namespace, secret)].add(uid)
        tracked.secrets = secrets

    def wake_readers(self, namespace: str, secret: str) -> int:
        """Wake every object that reads this Secret; returns how many."""
        woken = 0
        for uid in self._readers.get((namespace, secret), set()):
            tracked = self._objects.get(uid)
            if tracked is not None:
                logger.debug("Secret %s/%s changed: waking %s/%s", namespace, secret, tracked.namespace, tracked.name)
                tracked.wake.set()
                woken += 1
        return woken
