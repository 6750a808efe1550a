"""One Fastly client, sealer and store listing per API token, shared by every object that uses the token.

Sharing matters: the client pools connections, the sealer reuses a client key across objects (a client-key
POST counts against the write limit), and the listing answers drift checks for all of them at once. A rotated
token simply gets a new entry; the old one ages out.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastly_secret_store_operator.fastly import FASTLY_SIGNING_KEY, FastlyClient, RequestInfo, Sealer
from fastly_secret_store_operator.reconcile.directory import StoreDirectory
from fastly_secret_store_operator.reconcile.object import Connection


@dataclass(frozen=True, slots=True)
class FastlyOptions:
    endpoint: str
    trust_api_signing_key: bool = False
    timeout: float = 10.0


class ConnectionPool:
    def __init__(
        self, options: FastlyOptions, *, size: int = 64, on_response: Callable[[RequestInfo], None] | None = None
    ) -> None:
        self.options = options
        self._on_response = on_response
        self._size = size
        # Keyed by a hash of the token so the dict itself never holds token text; it is never output.
        self._connections: OrderedDict[str, Connection] = OrderedDict()
        self._retired: list[FastlyClient] = []

    def __call__(self, token: str) -> Connection:
        key = hashlib.sha256(token.encode()).hexdigest()
        connection = self._connections.get(key)
        if connection is None:
            client = FastlyClient(
                token, endpoint=self.options.endpoint, timeout=self.options.timeout, on_response=self._on_response
            )
            signing_key = None if self.options.trust_api_signing_key else FASTLY_SIGNING_KEY
            connection = Connection(
                client=client,
                sealer=Sealer(client, signing_key=signing_key),
                directory=StoreDirectory(client),
            )
            self._connections[key] = connection
            if len(self._connections) > self._size:
                _, oldest = self._connections.popitem(last=False)
                self._retired.append(oldest.client)
        self._connections.move_to_end(key)
        return connection

    async def aclose(self) -> None:
        clients = [connection.client for connection in self._connections.values()] + self._retired
        self._connections.clear()
        self._retired.clear()
        for client in clients:
            await client.aclose()
