"""A shared, short-lived listing of the stores one token can see.

Periodic drift checks ask it whether a store still exists: a thousand objects sharing a token then cost a few
list pages per interval rather than a thousand GETs. Concurrent callers share one refresh.
"""

from __future__ import annotations

import asyncio
import time

from fastly_secret_store_operator.fastly import FastlyClient


class StoreDirectory:
    def __init__(self, client: FastlyClient, *, max_age: float = 60.0) -> None:
        self._client = client
        self.max_age = max_age
        self._ids: frozenset[str] = frozenset()
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def contains(self, store_id: str) -> bool:
        return store_id in await self.ids()

    async def ids(self) -> frozenset[str]:
        requested_at = time.monotonic()
        async with self._lock:
            # A refresh that began after this call was made is as fresh as one this call would make.
            fetched_at = self._fetched_at
            if fetched_at is None or fetched_at < requested_at - self.max_age:
                started = time.monotonic()
                self._ids = frozenset([store.id async for store in self._client.list_stores()])
                self._fetched_at = started
            return self._ids

    def forget(self) -> None:
        self._fetched_at = None
