"""A local HTTP server on 127.0.0.1 that records each request as it arrived (raw path, query, headers, which
connection) and answers from a script: what the operator's Kubernetes client sends, seen from the wire."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web


@dataclass
class Seen:
    method: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    connection: int


Handler = Callable[[aiohttp.web.Request], Awaitable[aiohttp.web.StreamResponse]]


def status(code: int, body: Any = None) -> Handler:
    async def answer(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        return aiohttp.web.json_response(body if body is not None else {"kind": "Status", "code": code}, status=code)

    return answer


def events(*items: dict[str, Any], hold: asyncio.Event | None = None) -> Handler:
    """A watch answer: the events, then the end of the stream (or, with `hold`, not before it is set)."""

    async def answer(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for item in items:
            await response.write(json.dumps(item).encode() + b"\n")
        if hold is not None:
            await hold.wait()
        await response.write_eof()
        return response

    return answer


@dataclass
class ScriptedServer:
    """Answers requests in order from `script`; when it runs out, from `default`."""

    script: list[Handler] = field(default_factory=list)
    default: Handler = field(default_factory=lambda: status(200, {"data": {}}))
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _runner: aiohttp.web.AppRunner | None = None
    _connections: dict[int, int] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        transport = id(request.transport)
        connection = self._connections.setdefault(transport, len(self._connections))
        self.seen.append(
            Seen(
                request.method,
                request.raw_path.split("?")[0],
                dict(request.query),
                dict(request.headers),
                await request.read(),
                connection,
            )
        )
        self.changed.set()
        handler = self.script.pop(0) if self.script else self.default
        return await handler(request)

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.seen) < count:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def serving(server: ScriptedServer) -> AsyncIterator[ScriptedServer]:
    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", server._handle)
    runner = aiohttp.web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()
