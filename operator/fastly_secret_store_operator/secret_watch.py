"""Watching Secrets by their metadata only, to wake the objects that read a Secret when it changes.

Kopf would keep a memory record for every Secret it ever saw; this watch keeps nothing per Secret, so memory
does not grow with the number of Secrets in the cluster. It asks the API server for PartialObjectMetadata, so
the values of Secrets nobody references never even reach the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from fastly_secret_store_operator.kube import KubeClient, KubeError, api_path
from fastly_secret_store_operator.scheduling import backoff

logger = logging.getLogger(__name__)

METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#: The API server ends each watch after this long; the watch then resumes from the last resourceVersion.
WATCH_SECONDS = 300
#: The longest wait before watching again after a failure: back within 5 s of the API server's return.
MAX_BACKOFF = 2.5  # at most 3 s with jitter


class Expired(Exception):
    """HTTP 410 Gone, at the start or in the stream: the resourceVersion is too old; start over from now."""


class SecretWatch:
    """One asyncio task per watched namespace (or one for all), calling `on_change(namespace, name)`."""

    def __init__(
        self,
        client: KubeClient,
        namespaces: Iterable[str],
        on_change: Callable[[str, str], object],
        *,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self._client = client
        self._scopes: list[str | None] = list(namespaces) or [None]  # None: every namespace
        self._on_change = on_change
        self._max_backoff = max_backoff
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for scope in self._scopes:
            name = f"secret watch {scope or 'all namespaces'}"
            self._tasks.append(asyncio.create_task(self.watch_forever(scope), name=name))

    async def stop(self) -> None:
        """Cancel the watches and wait until they ended (their streams closed)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def watch_forever(self, scope: str | None) -> None:
        resource_version, failures = "", 0
        where = scope or "all namespaces"
        while True:
            started = time.monotonic()
            try:
                resource_version = await self.watch_once(scope, resource_version)
                # The stream ended normally (the server's timeout): resume from where it got to. A server that
                # ends every watch at once must not make a busy loop of it.
                failures = 0 if time.monotonic() - started > 1.0 else failures + 1
                if failures:
                    await asyncio.sleep(self._backoff(failures))
            except Expired:
                # Start over: the initial events wake every reader once, which costs reads, never writes. Only a
                # 410 to a watch from "now" (which cannot expire) would repeat; back off in that case.
                logger.info("Secret watch in %s: resourceVersion expired; watching again from now", where)
                if resource_version:
                    resource_version = ""
                    continue
                failures += 1
                await asyncio.sleep(self._backoff(failures))
            except Exception as error:  # a watch must outlive any one failure
                failures += 1
                delay = self._backoff(failures)
                logger.warning("Secret watch in %s failed (%s); retrying in %.1fs", where, _describe(error), delay)
                await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        # Short and capped: an API server back from an outage must see the watch again within seconds, and a
        # persistent refusal (RBAC) costs one request every few seconds per scope, not a busy loop.
        return backoff(failures, self._max_backoff, first=0.5)

    async def watch_once(self, scope: str | None, resource_version: str) -> str:
        """One watch request, read until the server ends it; returns the last resourceVersion seen."""
        query: dict[str, str | int] = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": WATCH_SECONDS}
        if resource_version:
            query["resourceVersion"] = resource_version
        where = ("namespaces", scope) if scope is not None else ()
        path = api_path("api", "v1", *where, "secrets")
        try:
            async with self._client.stream_lines(
                path, query=query, accept=METADATA_ONLY, read_timeout=WATCH_SECONDS + 30
            ) as lines:
                async for line in lines:
                    resource_version = self.handle(json.loads(line), resource_version)
        except KubeError as error:
            if error.status == 410:
                raise Expired from None
            raise
        return resource_version

    def handle(self, event: dict[str, Any], resource_version: str) -> str:
        """Pass one watch event on; returns the resourceVersion to resume from."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise Expired
            raise KubeError(code if isinstance(code, int) else None, "error event in the watch stream")
        metadata = obj.get("metadata") or {}
        if kind != "BOOKMARK" and metadata.get("name"):
            self._on_change(metadata.get("namespace", ""), metadata["name"])
        return str(metadata.get("resourceVersion") or resource_version)


def _describe(error: Exception) -> str:
    # KubeError says status and phrase only; anything else by its class: an error's text may quote a body.
    return str(error) if isinstance(error, KubeError) else type(error).__name__
