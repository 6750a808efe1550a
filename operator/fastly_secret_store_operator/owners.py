"""Store ownership as the cluster holds it: a Kopf index of every object's claim, keyed by store name.

The index is filled from the FastlySecretStore watch (Kopf fills it before any handler runs after a start), so
after a restart the objects' recorded status, not the order they happen to reconcile in, decides who manages a
store. This module adds what the index alone lacks: a lock per store name, so two objects of this process never
decide at once; a wait until a claim just written comes back through the watch; and a wake-up for objects
waiting on a store name when the claims on it change. Claims the index function has just been given count at
once (Kopf stores them a moment later).

A claim the cluster loses while this process knows the object still manages the store (its status wiped or
edited by hand) is not taken as a release: the remembered claim keeps standing, the object is woken to write its
status back, and nobody waiting for the store is woken. Memory here can only keep a rival refused, never grant a
store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from fastly_secret_store_operator.reconcile.ownership import NEWCOMER, Claim

logger = logging.getLogger(__name__)

#: How long a pass waits for its own claim to come back through the watch before going on regardless.
CLAIM_ECHO_TIMEOUT = 10.0


Remembered = Callable[[str], Mapping[str, Any] | None]


class ClaimIndex:
    def __init__(
        self,
        on_change: Callable[[str], None],
        *,
        remembered: Remembered = lambda uid: None,
        on_lost: Callable[[str], object] = lambda uid: None,
    ) -> None:
        """`on_change(store_name)` is called when the claims on a store name change (to wake who waits);
        `remembered(uid)` gives the status this process last computed for an object (None: unknown), and
        `on_lost(uid)` wakes an object whose recorded claim vanished from the cluster."""
        self._index: Mapping[str, Iterable[Claim]] = {}
        self._on_change = on_change
        self._remembered = remembered
        self._on_lost = on_lost
        #: store name -> its lock and how many passes hold or wait for it (dropped when none does).
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._seen: dict[str, Claim] = {}
        self._by_name: defaultdict[str, dict[str, Claim]] = defaultdict(dict)
        self._echo: dict[str, tuple[Callable[[Claim], bool], asyncio.Event]] = {}

    def bind(self, index: Mapping[str, Iterable[Claim]]) -> None:
        """Use Kopf's live index (handed to handlers as the `store_claims` keyword)."""
        self._index = index

    def claims(self, store_name: str) -> Iterable[Claim]:
        claims = {claim.uid: claim for claim in self._index.get(store_name, ())}
        for uid in [uid for uid, claim in claims.items() if uid in self._seen and self._seen[uid] != claim]:
            del claims[uid]  # the watch has delivered a newer claim of that object
        claims.update(self._by_name.get(store_name, {}))
        return list(claims.values())

    def claims_through(self, token_scope: str) -> list[Claim]:
        """The claims of every object whose token comes from `token_scope` (`account:NAME`: a FastlyAccount)."""
        return [claim for claim in self._seen.values() if claim.token_scope == token_scope]

    @contextlib.asynccontextmanager
    async def deciding(self, store_name: str) -> AsyncIterator[None]:
        # Counted, not judged by lock.locked(): a lock just released still has its next waiter, and a new lock
        # made meanwhile would let a third pass decide alongside it.
        lock, users = self._locks.get(store_name, (asyncio.Lock(), 0))
        self._locks[store_name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[store_name]
            if users == 1:
                del self._locks[store_name]
            else:
                self._locks[store_name] = (lock, users - 1)

    def observed(self, claim: Claim) -> None:
        """The watch delivered `claim` (called from the index function, before Kopf stores it)."""
        seen = self._seen.get(claim.uid)
        # Lost: the cluster had shown the claim and shows it no more (an older event, from before the claim was
        # written, is no loss: the watch delivers events in order).
        if claim.rank == NEWCOMER and seen is not None and seen.rank != NEWCOMER:
            kept = self._still_claimed(claim)
            if kept is not None:
                logger.info("%s: its status lost its claim on store %s; writing it back", claim.who, claim.store_name)
                self._on_lost(claim.uid)
                claim = kept
        before = self._seen.get(claim.uid)
        self._seen[claim.uid] = claim
        if before is not None:
            self._drop(before)
        self._by_name[claim.store_name][claim.uid] = claim
        if before is not None and before != claim:
            self._on_change(before.store_name)
        waiting = self._echo.get(claim.uid)
        if waiting is not None and waiting[0](claim):
            waiting[1].set()

    def _still_claimed(self, claim: Claim) -> Claim | None:
        """The claim this process knows the object makes, when the cluster's copy has lost it."""
        status = self._remembered(claim.uid)
        if not status or status.get("storeName") != claim.store_name or not status.get("accountId"):
            return None
        return replace(
            claim, account_id=str(status["accountId"]), store_id=str(status["id"]) if status.get("id") else None
        )

    def forget(self, uid: str) -> None:
        """The object is gone: whoever waits on its store name may proceed."""
        before = self._seen.pop(uid, None)
        if before is not None:
            self._drop(before)
            self._on_change(before.store_name)

    def _drop(self, claim: Claim) -> None:
        named = self._by_name.get(claim.store_name)
        if named is not None:
            named.pop(claim.uid, None)
            if not named:
                del self._by_name[claim.store_name]

    async def wait_visible(self, uid: str, check: Callable[[Claim], bool]) -> None:
        """Return once the watch has delivered a claim of `uid` that passes `check` (bounded)."""
        seen = self._seen.get(uid)
        if seen is not None and check(seen):
            return
        event = asyncio.Event()
        self._echo[uid] = (check, event)
        try:
            async with asyncio.timeout(CLAIM_ECHO_TIMEOUT):
                await event.wait()
        except TimeoutError:
            logger.warning("The claim of object %s did not come back through the watch in time; going on", uid)
        finally:
            self._echo.pop(uid, None)


def claim_shows(fields: Mapping[str, Any]) -> Callable[[Claim], bool]:
    """A check that a claim carries the account and store name just written."""

    def check(claim: Claim) -> bool:
        return claim.account_id == fields.get("accountId") and claim.store_name == fields.get("storeName")

    return check
