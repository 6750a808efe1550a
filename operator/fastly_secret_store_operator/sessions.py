"""One Fastly session (client, sealer, store listing, the token's record) per API token, shared by every object
that uses the token.

Sharing matters: the client pools connections, the sealer reuses a client key across objects (a client-key
POST counts against the write limit), and the listing answers drift checks for all of them at once. A rotated
token simply gets a new entry; the old one ages out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastly_secret_store_operator.fastly import FASTLY_SIGNING_KEY, FastlyClient, RequestInfo, Sealer
from fastly_secret_store_operator.reconcile.directory import StoreDirectory
from fastly_secret_store_operator.reconcile.session import FastlySession

#: Seconds an evicted client stays open for the passes still using it.
RETIRED_CLIENT_GRACE = 600.0


@dataclass(frozen=True, slots=True)
class FastlyOptions:
    endpoint: str
    trust_api_signing_key: bool = False
    timeout: float = 10.0


class SessionPool:
    def __init__(
        self, options: FastlyOptions, *, size: int = 64, on_response: Callable[[RequestInfo], None] | None = None
    ) -> None:
        self.options = options
        self._on_response = on_response
        self._size = size
        # Keyed by an HMAC of the token under a key that lives and dies with this process: the dict holds no
        # token text and no unkeyed hash of one.
        self._key = secrets.token_bytes(32)
        self._sessions: OrderedDict[bytes, FastlySession] = OrderedDict()
        self._retired: list[FastlyClient] = []
        self._closing: set[asyncio.Task[None]] = set()

    def __call__(self, token: str) -> FastlySession:
        key = hmac.new(self._key, token.encode(), hashlib.sha256).digest()
        session = self._sessions.get(key)
        if session is None:
            client = FastlyClient(
                token, endpoint=self.options.endpoint, timeout=self.options.timeout, on_response=self._on_response
            )
            signing_key = None if self.options.trust_api_signing_key else FASTLY_SIGNING_KEY
            session = FastlySession(
                client=client,
                sealer=Sealer(client, signing_key=signing_key),
                directory=StoreDirectory(client),
            )
            self._sessions[key] = session
            if len(self._sessions) > self._size:
                _, oldest = self._sessions.popitem(last=False)
                self._retire(oldest.client)
        self._sessions.move_to_end(key)
        return session

    def _retire(self, client: FastlyClient) -> None:
        """Close an evicted client once passes still using it are surely done (a rotated token's old client)."""
        self._retired.append(client)

        def close() -> None:
            if client in self._retired:
                self._retired.remove(client)
                task = asyncio.ensure_future(client.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

        asyncio.get_running_loop().call_later(RETIRED_CLIENT_GRACE, close)

    async def aclose(self) -> None:
        clients = [session.client for session in self._sessions.values()] + self._retired
        self._sessions.clear()
        self._retired.clear()
        for client in clients:
            await client.aclose()
