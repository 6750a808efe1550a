"""A shared, short-lived listing of the stores one token can see.

Periodic drift checks ask it whether a store still exists: a thousand objects sharing a token then cost a few
list pages per interval rather than a thousand GETs. Concurrent callers share one refresh.
"""

from __future__ import annotations

import asyncio
import time

from fastly_secret_store_operator.fastly import FastlyClient


class StoreDirectory:
    def __init__(self, client: FastlyClient) -> None:
        self._client = client
        self._ids: frozenset[str] = frozenset()
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def contains(self, store_id: str, *, max_age: float) -> bool:
        """Whether the store exists, by a listing at most `max_age` seconds old."""
        return store_id in await self.ids(max_age=max_age)

    async def ids(self, *, max_age: float) -> frozenset[str]:
        requested_at = time.monotonic()
        async with self._lock:
            # A refresh that began after this call was made is as fresh as one this call would make.
            fetched_at = self._fetched_at
            if fetched_at is None or fetched_at < requested_at - max_age:
                started = time.monotonic()
                self._ids = frozenset([store.id async for store in self._client.list_stores()])
                self._fetched_at = started
            return self._ids
