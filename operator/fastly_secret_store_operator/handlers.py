"""Kopf handlers: thin wiring from cluster events to the reconcile functions.

Each FastlySecretStore gets one sync loop (a Kopf daemon) that reconciles it, then sleeps until its spec
changes, a Secret it reads changes, a retry is due or its resync interval passes. Deletion is a Kopf delete
handler behind the finalizer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from fastly_secret_store_operator import health, kube
from fastly_secret_store_operator.config import (
    ANNOTATION_PREFIX,
    FINALIZER,
    RECONCILE_REQUESTED_ANNOTATION,
    OperatorConfig,
)
from fastly_secret_store_operator.connections import ConnectionPool
from fastly_secret_store_operator.metrics import Metrics
from fastly_secret_store_operator.reconcile.conditions import Outcome, build_conditions, find
from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.fingerprint import Fingerprinter
from fastly_secret_store_operator.reconcile.object import (
    Environment,
    Event,
    ObjectView,
    ReconcileResult,
    finalize_object,
    reconcile_object,
)
from fastly_secret_store_operator.reconcile.spec import parse_spec
from fastly_secret_store_operator.secret_watch import SecretWatch
from fastly_secret_store_operator.tracking import Tracked, Tracker
from fastly_secret_store_operator.waiting import wait_for_wake

RESOURCE = (kube.GROUP, kube.VERSION, kube.PLURAL)
logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Runtime:
    config: OperatorConfig
    kube: kube.KubeApi
    connections: ConnectionPool
    env: Environment
    tracker: Tracker
    slots: asyncio.Semaphore
    metrics: Metrics


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
    # A sync loop that is asked to stop exits within a second; never hold a deletion for Kopf's default minute.
    settings.background.cancellation_polling = 1.0
    settings.background.instant_exit_timeout = 0.5
    settings.execution.max_workers = 4
    health.configure_watching(settings)


def _runtime(memo: Any) -> Runtime:
    runtime: Runtime = memo.runtime
    return runtime


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    config: OperatorConfig = memo.config
    configure(settings)
    # Watching listed namespaces needs no cluster-wide namespace listing (and the RBAC does not grant it).
    settings.scanning.disabled = config.namespaced
    # One async client, made (and checked) by run_operator before Kopf started; no threads for API calls.
    api = kube.KubeApi(memo.kube_client)
    key = await api.fingerprint_key(config.operator_namespace, config.fingerprint_secret)
    metrics: Metrics = memo.metrics
    connections = ConnectionPool(config.fastly, on_response=metrics.observe_fastly)
    memo.runtime = Runtime(
        config=config,
        kube=api,
        connections=connections,
        env=Environment(secrets=api, connect=connections, fingerprinter=Fingerprinter(key)),
        tracker=Tracker(),
        slots=asyncio.Semaphore(config.max_concurrent_reconciles),
        metrics=metrics,
    )
    # Secret edits wake the objects that read them; see secret_watch for why this is not a Kopf handler.
    namespaces = config.namespaces if config.namespaced else ()
    memo.secret_watch = SecretWatch(api.client, namespaces, memo.runtime.tracker.wake_readers)
    memo.secret_watch.start()
    logger.info("Fastly endpoint %s", config.fastly.endpoint)


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    watch: SecretWatch | None = getattr(memo, "secret_watch", None)
    if watch is not None:
        await watch.stop()
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None:
        await runtime.connections.aclose()
        await runtime.kube.aclose()


def _view(tracked: Tracked, body: kopf.Body, uid: str) -> ObjectView:
    status = tracked.status if tracked.status is not None else dict(body.get("status") or {})
    return ObjectView(
        namespace=tracked.namespace,
        name=tracked.name,
        generation=body.metadata.get("generation"),
        spec=dict(body.spec),
        status=status,
        uid=uid,
    )


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning `old` into `new` (top-level keys; None removes a key)."""
    patch = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch


async def _record(runtime: Runtime, tracked: Tracked, body: kopf.Body, new: dict[str, Any]) -> None:
    """Write `new` as the status. What it says happened in Fastly is remembered even if the write fails, so the
    next pass does not redo (and pay for) writes that already happened."""
    tracked.status = new
    persisted = tracked.persisted if tracked.persisted is not None else dict(body.get("status") or {})
    patch = merge_patch(persisted, new)
    if patch:
        await runtime.kube.patch_status(tracked.namespace, tracked.name, patch)
    tracked.persisted = new


def _post(body: kopf.Body, events: list[Event]) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


async def _reconcile_once(
    runtime: Runtime, tracked: Tracked, body: kopf.Body, uid: str, *, resync: bool
) -> ReconcileResult | None:
    """One pass, or None when the object is being deleted: from then on only the delete handler acts on it
    (a late pass could otherwise recreate the store the delete handler just deleted)."""
    async with runtime.slots, tracked.lock:
        if tracked.finalizing or body.metadata.get("deletionTimestamp"):
            return None
        view = _view(tracked, body, uid)
        # Recorded first, so a spec change or Secret edit during this pass wakes the loop for another one.
        tracked.reconciled_generation = view.generation
        tracked.requested = body.metadata.annotations.get(RECONCILE_REQUESTED_ANNOTATION)
        with contextlib.suppress(ReconcileError):
            runtime.tracker.set_secrets(uid, tracked, parse_spec(view.spec, default_name=view.name).referenced_secrets)

        async def mark_create_requested(requested_at: str) -> None:
            # Remembered before it is written: whatever fails next, the next pass knows a create went out.
            tracked.status = {**(tracked.status or view.status), "createRequestedAt": requested_at}
            await runtime.kube.patch_status(tracked.namespace, tracked.name, {"createRequestedAt": requested_at})
            tracked.persisted = {**(tracked.persisted or view.status), "createRequestedAt": requested_at}

        started = time.monotonic()
        result = await reconcile_object(view, runtime.env, resync=resync, mark_create_requested=mark_create_requested)
        runtime.metrics.observe_reconcile(result.outcome.reason, time.monotonic() - started)
        runtime.metrics.observe_entries(result.entries_written, result.entries_skipped)
        if result.connection is not None:
            tracked.connection = result.connection
        await _record(runtime, tracked, body, result.status)
    _post(body, result.events)
    return result


def _api_error(error: Exception) -> str:
    """A short description of a Kubernetes API failure; never the response body (it may echo what was sent)."""
    status = getattr(error, "status", None)
    return f"HTTP {status} {getattr(error, 'reason', '')}".strip() if status else type(error).__name__


def _backoff(config: OperatorConfig, failures: int) -> float:
    """Exponential, jittered, bounded: 2, 4, 8 … seconds up to config.max_backoff."""
    return min(config.max_backoff, 2.0 ** min(failures, 16)) * random.uniform(0.8, 1.2)


def _next_delay(result: ReconcileResult, config: OperatorConfig, failures: int) -> float | None:
    """Seconds until the next pass, or None to wait for a change only."""
    if result.retry_after is not None:
        # Never sooner than the backoff: a reset time already past (clock skew) must not make a 1-second loop.
        return max(result.retry_after, _backoff(config, failures))
    if result.outcome.ready:
        interval = result.spec.resync_seconds if result.spec else 0.0
        # Spread resyncs so objects created together do not all check Fastly at the same moment.
        return interval * random.uniform(0.9, 1.1) if interval else None
    if result.outcome.stalled:
        return config.stalled_retry
    return _backoff(config, failures)


@kopf.daemon(*RESOURCE, cancellation_timeout=5.0)
async def keep_in_sync(
    stopped: kopf.DaemonStopped,
    body: kopf.Body,
    uid: str,
    namespace: str | None,
    name: str,
    memo: Any,
    **_: Any,
) -> None:
    runtime = _runtime(memo)
    tracked = runtime.tracker.track(uid, namespace or "", name)
    resync, failures = False, 0
    while not stopped:
        tracked.wake.clear()
        try:
            result = await _reconcile_once(runtime, tracked, body, uid, resync=resync)
        except kube.API_ERRORS as error:
            # A Secret read or a status write failed (a conflict, the API server restarting): retry soon, with
            # backoff, rather than let the daemon fail (Kopf would restart it only after a minute).
            failures += 1
            backoff = _backoff(runtime.config, failures)
            logger.warning("Kubernetes API call failed (%s); retrying in %.1fs", _api_error(error), backoff)
            resync = False
            await wait_for_wake(tracked.wake, stopped, backoff)
            continue
        if result is None:
            return  # being deleted: the delete handler takes over
        runtime.metrics.set_object_state(uid, result.outcome.ready, result.outcome.reason)
        failures = 0 if result.outcome.ready else failures + 1
        delay = _next_delay(result, runtime.config, failures)
        woken = await wait_for_wake(tracked.wake, stopped, delay)
        resync = not woken and result.outcome.ready


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
    that went without our delete handler (its finalizer removed by hand).

    Async on purpose: Kopf runs sync handlers in threads, and asyncio.Event is not thread-safe."""
    runtime = _runtime(memo)
    if type == "DELETED":
        runtime.tracker.forget(uid)
        runtime.metrics.forget_object(uid)
        return
    tracked = runtime.tracker.get(uid)
    if tracked is not None:
        logger.debug("%s/%s changed (generation or reconcile request): waking it", tracked.namespace, tracked.name)
        tracked.requested = body.metadata.annotations.get(RECONCILE_REQUESTED_ANNOTATION)
        tracked.wake.set()


@kopf.on.delete(*RESOURCE)
async def finalize(
    body: kopf.Body, uid: str, namespace: str | None, name: str, retry: int, memo: Any, **_: Any
) -> None:
    runtime = _runtime(memo)
    tracked = runtime.tracker.track(uid, namespace or "", name)
    tracked.finalizing = True
    tracked.wake.set()  # a sync loop waiting for its next pass sees the flag and exits
    async with tracked.lock:
        view = _view(tracked, body, uid)
        try:
            result = await finalize_object(view, runtime.env, last_connection=tracked.connection)
        except kube.API_ERRORS as error:
            # Reading the token Secret failed: retry soon (Kopf's default for a failed handler is a minute).
            delay = min(60.0, 2.0 * 2 ** min(retry, 5))
            raise kopf.TemporaryError(f"Kubernetes API call failed ({_api_error(error)})", delay=delay) from None
        except ReconcileError as error:
            runtime.metrics.set_object_state(uid, False, error.reason)
            outcome = Outcome(error.reason, error.message, stalled=error.stalled)
            status = dict(view.status)
            status["conditions"] = build_conditions(outcome, view.status.get("conditions") or (), view.generation)
            ready = find(view.status.get("conditions") or (), "Ready")
            with contextlib.suppress(*kube.API_ERRORS):  # the condition is a report; the retry below is what counts
                await _record(runtime, tracked, body, status)
            if ready is None or ready.get("message") != error.message:
                kopf.warn(body, reason=error.reason, message=error.message)
            # Back off, but not so far that a fix (a restored token, deletionPolicy: Retain) waits long.
            delay = error.retry_after or min(60.0, 2.0 * 2 ** min(retry, 5))
            raise kopf.TemporaryError(error.message, delay=delay) from None
    runtime.tracker.forget(uid)
    runtime.metrics.forget_object(uid)
    if result.event is not None:
        _post(body, [result.event])
