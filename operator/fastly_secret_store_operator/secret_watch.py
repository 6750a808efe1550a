"""Watching Secrets by their metadata only, to wake the objects that read a Secret when it changes.

Kopf would keep a memory record for every Secret it ever saw; this watch keeps nothing per Secret, so memory
does not grow with the number of Secrets in the cluster. It asks the API server for PartialObjectMetadata, so
the values of Secrets nobody references never even reach the operator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import kubernetes
from kubernetes.watch.watch import iter_resp_lines

from fastly_secret_store_operator import kube

logger = logging.getLogger(__name__)

_METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#: The API server ends each watch after this long; the watch then resumes from the last resourceVersion.
WATCH_SECONDS = 300


class SecretWatch:
    """One thread per watched namespace (or one for all), calling `on_change(namespace, name)` in `loop`."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        namespaces: Iterable[str],
        on_change: Callable[[str, str], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._api = api_client
        self._scopes: list[str | None] = list(namespaces) or [None]  # None: every namespace
        self._on_change = on_change
        self._loop = loop
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for scope in self._scopes:
            name = f"secret-watch {scope or '*'}"
            thread = threading.Thread(target=self._watch_forever, args=(scope,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Ask the threads to end. They are daemon threads blocked reading a stream, and end with the process or
        at their next event or watch timeout: closing a stream under a thread reading it can deadlock urllib3."""
        self._stopping.set()

    def _watch_forever(self, scope: str | None) -> None:
        resource_version, failures = "", 0
        while not self._stopping.is_set():
            try:
                resource_version = self._watch_once(scope, resource_version)
                failures = 0
            except Exception as error:  # a watch must outlive any one failure
                if self._stopping.is_set():
                    return
                failures += 1
                delay = min(60.0, 2.0**failures)  # a persistent refusal (RBAC) must not become a busy loop
                logger.warning(
                    "Secret watch in %s failed (%s); retrying in %.0fs",
                    scope or "all namespaces",
                    type(error).__name__,
                    delay,
                )
                self._stopping.wait(delay)

    def _watch_once(self, scope: str | None, resource_version: str) -> str:
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(WATCH_SECONDS))]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        path = "/api/v1/secrets" if scope is None else f"/api/v1/namespaces/{scope}/secrets"
        response = kube.call(
            self._api, "GET", path, query=query, headers={"Accept": _METADATA_ONLY}, read_timeout=WATCH_SECONDS + 30
        )
        ended = False
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if self._stopping.is_set():
                    return resource_version
                resource_version = self._handle(json.loads(line), resource_version)
            ended = True
        finally:
            # Only a stream read to its end may go back to the pool the operator's other calls share: one left
            # mid-stream would hand its next request the rest of this watch. (Closed here, by its own reader.)
            if not ended:
                response.close()
            response.release_conn()
        return resource_version

    def _handle(self, event: dict[str, Any], resource_version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            # 410 Gone: our resourceVersion is too old. Start over: the initial events wake every reader once,
            # which costs reads, never writes.
            return ""
        metadata = obj.get("metadata") or {}
        if kind != "BOOKMARK" and metadata.get("name"):
            self._loop.call_soon_threadsafe(self._on_change, metadata.get("namespace", ""), metadata["name"])
        return str(metadata.get("resourceVersion") or resource_version)
