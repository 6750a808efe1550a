"""Kopf handlers: thin wiring from cluster events to the reconcile functions.

Each FastlySecretStore gets one sync loop (a Kopf daemon) that reconciles it, then sleeps until its spec
changes, a Secret it reads changes, the store it waits for is released, a retry is due or its resync interval
passes. Deletion is a Kopf delete handler behind the finalizer. An index of every object's claim on a store
name decides who manages which store.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from typing import Any

import kopf

from fastly_secret_store_operator import health, kube, passes
from fastly_secret_store_operator.config import ANNOTATION_PREFIX, FINALIZER, RECONCILE_REQUESTED_ANNOTATION
from fastly_secret_store_operator.reconcile.ownership import claim_from_object
from fastly_secret_store_operator.runtime import Runtime, start_runtime, stop_runtime
from fastly_secret_store_operator.waiting import wait_for_wake

RESOURCE = (kube.GROUP, kube.VERSION, kube.PLURAL)
logger = logging.getLogger(__name__)


class NoDiffBase(kopf.DiffBaseStorage):
    """Kopf keeps the last handled spec (an annotation) to tell on.create from on.update handlers. There are none
    here: the sync loop compares generations. Keeping nothing spares each object an annotation PATCH, and the
    watch event that PATCH makes, and leaves the object with only the finalizer and the status we write. Every
    body has the same (empty) essence, so no change handler ever sees a change, and no copy of it is made."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


def configure(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = NoDiffBase()
    # Events are posted explicitly, with reasons a person can act on; Kopf's own chatter stays in the logs.
    settings.posting.level = logging.WARNING
    # `kubectl describe` shows who said it: this operator, and which pod.
    settings.posting.reporting_component = "fastly-secret-store-operator"
    settings.posting.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
    settings.posting.event_name_prefix = "fastly-secret-store-operator-"
    # A sync loop that is asked to stop exits within a second; never hold a deletion for Kopf's default minute.
    settings.background.cancellation_polling = 1.0
    settings.background.instant_exit_timeout = 0.5
    settings.execution.max_workers = 4
    health.configure_watching(settings)


def _runtime(memo: Any) -> Runtime:
    runtime: Runtime = memo.runtime
    return runtime


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    configure(settings)
    # Watching listed namespaces needs no cluster-wide namespace listing (and the RBAC does not grant it).
    settings.scanning.disabled = memo.config.namespaced
    memo.runtime = await start_runtime(memo.config, memo.metrics, memo.kube_client)


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None:
        await stop_runtime(runtime)


@kopf.index(*RESOURCE)
async def store_claims(body: kopf.Body, uid: str, namespace: str | None, name: str, memo: Any, **_: Any) -> Any:
    """Every object's claim on the store its spec names, from its recorded status (see reconcile.ownership)."""
    claim = claim_from_object(
        uid=uid,
        namespace=namespace or "",
        name=name,
        created=str(body.metadata.get("creationTimestamp") or ""),
        spec=body.spec,
        status=body.get("status") or {},
    )
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None:
        runtime.owners.observed(claim)
    return {claim.store_name: claim}


@kopf.daemon(*RESOURCE, cancellation_timeout=5.0)
async def keep_in_sync(
    stopped: kopf.DaemonStopped,
    body: kopf.Body,
    uid: str,
    namespace: str | None,
    name: str,
    memo: Any,
    **indexes: Any,
) -> None:
    runtime = _runtime(memo)
    runtime.owners.bind(indexes["store_claims"])
    tracked = runtime.tracker.track(uid, namespace or "", name)
    resync, failures = False, 0
    while not stopped:
        tracked.wake.clear()
        verdict = await passes.run_pass(runtime, tracked, body, uid, resync=resync, failures=failures)
        if verdict is None:
            return  # being deleted: the delete handler takes over
        failures = verdict.failures
        woken = await wait_for_wake(tracked.wake, stopped, verdict.delay)
        resync = not woken and verdict.ready


def _needs_attention(type: str, body: kopf.Body, uid: str, memo: Any, **_: Any) -> bool:
    """Whether a watch event matters: a deletion, a new generation, a new reconcile request. Most events are
    the operator's own status patches; filtering them here spares Kopf a handler call (and its log lines) each."""
    if type == "DELETED":
        return True
    tracked = _runtime(memo).tracker.get(uid)
    if tracked is None or tracked.reconciled_generation is None:
        return False  # no pass has started yet: the first one reads the latest body anyway
    requested = body.metadata.annotations.get(RECONCILE_REQUESTED_ANNOTATION)
    return body.metadata.get("generation") != tracked.reconciled_generation or requested != tracked.requested


@kopf.on.event(*RESOURCE, when=_needs_attention)
async def notice_object_change(type: str, body: kopf.Body, uid: str, memo: Any, **_: Any) -> None:
    """Wake the sync loop when the spec changed or a reconcile was requested by annotation; forget an object
    that went (its claim with it, which wakes whoever waits for its store).

    Async on purpose: Kopf runs sync handlers in threads, and asyncio.Event is not thread-safe."""
    runtime = _runtime(memo)
    if type == "DELETED":
        runtime.tracker.forget(uid)
        runtime.owners.forget(uid)
        runtime.metrics.forget_object(uid)
        return
    tracked = runtime.tracker.get(uid)
    if tracked is not None:
        logger.debug("%s/%s changed (generation or reconcile request): waking it", tracked.namespace, tracked.name)
        tracked.requested = body.metadata.annotations.get(RECONCILE_REQUESTED_ANNOTATION)
        tracked.wake.set()


@kopf.on.delete(*RESOURCE)
async def finalize(
    body: kopf.Body,
    uid: str,
    namespace: str | None,
    name: str,
    retry: int,
    memo: Any,
    **indexes: Any,
) -> None:
    runtime = _runtime(memo)
    runtime.owners.bind(indexes["store_claims"])
    tracked = runtime.tracker.track(uid, namespace or "", name)
    await passes.run_finalize(runtime, tracked, body, uid, retry=retry)


# The FastlyAccount handlers register themselves in the same (default) registry when imported.
from fastly_secret_store_operator import account_handlers  # noqa: E402, F401
