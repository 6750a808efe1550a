"""A shared, short-lived listing of the stores one token can see.

Periodic drift checks ask it whether a store still exists: a thousand objects sharing a token then cost a few
list pages per interval rather than a thousand GETs. Concurrent callers share one refresh.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from fastly_secret_store_operator.fastly import FastlyClient


class StoreDirectory:
    def __init__(self, client: FastlyClient) -> None:
        self._client = client
        self._ids: frozenset[str] = frozenset()
        self._fetched_at: float | None = None
        self._fetched_wall = datetime.min.replace(tzinfo=UTC)
        self._lock = asyncio.Lock()

    async def contains(self, store_id: str, *, max_age: float, created_at: datetime | None = None) -> bool:
        """Whether the store exists, by a listing at most `max_age` seconds old and, for a store created at
        `created_at`, fetched after that: an older listing could not hold it."""
        return store_id in await self.ids(max_age=max_age, not_before=created_at)

    async def ids(self, *, max_age: float, not_before: datetime | None = None) -> frozenset[str]:
        requested_at = time.monotonic()
        async with self._lock:
            # A refresh that began after this call was made is as fresh as one this call would make.
            fetched_at = self._fetched_at
            stale = fetched_at is None or fetched_at < requested_at - max_age
            if stale or (not_before is not None and self._fetched_wall < not_before):
                started, started_wall = time.monotonic(), datetime.now(UTC)
                self._ids = frozenset([store.id async for store in self._client.list_stores()])
                self._fetched_at, self._fetched_wall = started, started_wall
            return self._ids
