"""Everything that talks to Fastly with one API token, shared by every object that uses the token."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

from fastly_secret_store_operator.fastly import FastlyClient, Sealer, TokenInfo
from fastly_secret_store_operator.reconcile.directory import StoreDirectory

#: How long what GET /tokens/self said is trusted (the account never changes; the expiry may be extended).
TOKEN_INFO_MAX_AGE = 3600.0


@dataclass(slots=True)
class FastlySession:
    client: FastlyClient
    sealer: Sealer
    directory: StoreDirectory
    _token_info: TokenInfo | None = field(default=None, repr=False)
    _fetched_at: float = field(default=0.0, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def token_info(self) -> TokenInfo:
        """The token's own record (its account, its expiry), fetched once an hour at most: a read, never a
        write against the rate limit."""
        async with self._lock:
            if self._token_info is None or time.monotonic() - self._fetched_at > TOKEN_INFO_MAX_AGE:
                self._token_info = await self.client.get_token_self()
                self._fetched_at = time.monotonic()
            return self._token_info


class Sessions(Protocol):
    def __call__(self, token: str) -> FastlySession: ...
