"""One reconcile or finalize pass of one object: the reconcile functions, wired to the cluster.

A pass runs as a task of its own, shielded from its sync loop: when the loop is cancelled (the object is being
deleted), a create in flight is never abandoned half way. The delete handler waits for the pass (the object's
lock) and so always sees its outcome; no status write of a pass can land after the delete handler's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from fastly_secret_store_operator import kube
from fastly_secret_store_operator.config import RECONCILE_REQUESTED_ANNOTATION
from fastly_secret_store_operator.owners import claim_shows
from fastly_secret_store_operator.reconcile.conditions import Outcome, build_conditions, find
from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.events import Event
from fastly_secret_store_operator.reconcile.object import (
    ObjectView,
    ReconcileResult,
    finalize_object,
    reconcile_object,
)
from fastly_secret_store_operator.reconcile.sources import SecretReadError
from fastly_secret_store_operator.reconcile.spec import parse_spec
from fastly_secret_store_operator.runtime import Runtime
from fastly_secret_store_operator.scheduling import KUBERNETES_BACKOFF_CAP, backoff, next_delay
from fastly_secret_store_operator.status_writer import write_status
from fastly_secret_store_operator.tracking import Tracked

logger = logging.getLogger(__name__)

#: Kubernetes answers to a status write that no retry can change (too large, invalid): reported, not retried blind.
_REFUSED = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a pass concluded, for its sync loop: when to run again."""

    ready: bool
    delay: float | None
    failures: int


def _view(tracked: Tracked, body: kopf.Body, uid: str) -> ObjectView:
    """The object as this pass sees it. The status is what the operator knows happened in Fastly, when it knows
    (a status write may have failed, or been wiped since); after a restart, what the cluster holds."""
    status = tracked.status if tracked.status is not None else dict(body.get("status") or {})
    return ObjectView(
        namespace=tracked.namespace,
        name=tracked.name,
        generation=body.metadata.get("generation"),
        spec=dict(body.spec),
        status=status,
        uid=uid,
        created=str(body.metadata.get("creationTimestamp") or ""),
    )


def _post(body: kopf.Body, events: list[Event]) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


async def run_pass(
    runtime: Runtime, tracked: Tracked, body: kopf.Body, uid: str, *, resync: bool, failures: int
) -> Verdict | None:
    """One reconcile pass, or None when the object is being deleted (only the delete handler acts on it then)."""
    task = asyncio.ensure_future(_reconcile(runtime, tracked, body, uid, resync=resync, failures=failures))
    tracked.running = task
    return await asyncio.shield(task)


async def _reconcile(
    runtime: Runtime, tracked: Tracked, body: kopf.Body, uid: str, *, resync: bool, failures: int
) -> Verdict | None:
    who = f"{tracked.namespace}/{tracked.name}"
    runtime.metrics.reconciles_waiting.inc()
    try:
        await runtime.slots.acquire()
    finally:
        runtime.metrics.reconciles_waiting.dec()
    try:
        with runtime.metrics.reconciles_in_flight.track_inprogress():
            return await _reconcile_in_slot(runtime, tracked, body, uid, resync=resync, failures=failures, who=who)
    finally:
        runtime.slots.release()


async def _reconcile_in_slot(
    runtime: Runtime, tracked: Tracked, body: kopf.Body, uid: str, *, resync: bool, failures: int, who: str
) -> Verdict | None:
    async with tracked.lock:
        if tracked.finalizing or body.metadata.get("deletionTimestamp"):
            return None
        view = _view(tracked, body, uid)
        # Recorded first, so a spec change or Secret edit during this pass wakes the loop for another one.
        tracked.reconciled_generation = view.generation
        tracked.requested = body.metadata.annotations.get(RECONCILE_REQUESTED_ANNOTATION)
        with contextlib.suppress(ReconcileError):
            runtime.tracker.set_secrets(uid, tracked, parse_spec(view.spec, default_name=view.name).referenced_secrets)

        async def checkpoint(fields: Mapping[str, Any]) -> None:
            # Remembered before it is written: whatever fails next, the next pass knows it. A write that fails
            # stops the pass before what it announces (a claim, a create) is done, so it is forgotten again.
            before = tracked.status
            tracked.status = {**(tracked.status or view.status), **fields}
            try:
                await runtime.kube.patch_status(tracked.namespace, tracked.name, fields)
            except kube.KubeError:
                tracked.status = before
                raise
            if "storeName" in fields:
                await runtime.owners.wait_visible(uid, claim_shows(fields))

        started = time.monotonic()
        result: ReconcileResult | None = None
        try:
            result = await reconcile_object(view, runtime.env, resync=resync, checkpoint=checkpoint)
            outcome, status = result.outcome, result.status
        except kube.KubeError as error:
            logger.warning("%s: a Kubernetes API call failed (%s); retrying", who, error)
            outcome = Outcome(
                "KubernetesUnavailable",
                f"a Kubernetes API call failed ({error}); the operator retries by itself",
            )
            status = dict(tracked.status or view.status)
        except Exception:
            # A defect, not a user's mistake: say so on the object, keep the loop alive, and retry with backoff.
            logger.exception("%s: the reconcile pass failed unexpectedly; retrying", who)
            outcome = Outcome(
                "InternalError",
                "the operator failed unexpectedly (its log has the details); it retries with backoff. Please "
                "report this",
            )
            status = dict(tracked.status or view.status)
        if result is None:
            status["observedGeneration"] = view.generation
            status["conditions"] = build_conditions(outcome, view.status.get("conditions") or (), view.generation)
        runtime.metrics.observe_reconcile(outcome.reason, time.monotonic() - started)
        if result is not None:
            runtime.metrics.observe_entries(result.entries_written, result.entries_skipped)
            if result.session is not None:
                tracked.session = result.session
            if result.token is not None:
                runtime.metrics.set_token_expiry(uid, result.token.customer_id, result.token.expires_at)
            runtime.tracker.set_waiting(uid, tracked, result.waiting_for)
        tracked.status = status
        outcome = await _write(runtime, tracked, body, status, outcome)
    _log_transition(who, view.status, outcome)
    if result is not None:
        _post(body, result.events)
    runtime.metrics.set_object_state(uid, outcome.ready, outcome.reason)
    failures = 0 if outcome.ready else failures + 1
    cap = KUBERNETES_BACKOFF_CAP if outcome.reason in ("KubernetesUnavailable", "StatusRejected") else None
    delay = next_delay(
        ready=outcome.ready,
        stalled=outcome.stalled,
        retry_after=result.retry_after if result is not None else None,
        resync_seconds=result.spec.resync_seconds if result is not None and result.spec else 0.0,
        failures=failures,
        max_backoff=cap or runtime.config.max_backoff,
        stalled_retry=runtime.config.stalled_retry,
    )
    return Verdict(ready=outcome.ready, delay=delay, failures=failures)


async def _write(
    runtime: Runtime, tracked: Tracked, body: kopf.Body, status: dict[str, Any], outcome: Outcome
) -> Outcome:
    """Write the status; a write the API server refuses is itself reported, on the object and in the log."""
    who = f"{tracked.namespace}/{tracked.name}"
    held = dict(body.get("status") or {})
    try:
        await write_status(runtime.kube.patch_status, tracked.namespace, tracked.name, held, status)
        return outcome
    except kube.KubeError as error:
        detail = str(error)
        if error.status not in _REFUSED:
            logger.warning("%s: writing the status failed (%s); retrying", who, detail)
            return Outcome("KubernetesUnavailable", f"writing the status failed ({detail})")
        logger.error("%s: the API server refused the status (%s); reporting that instead", who, detail)
    refused = Outcome(
        "StatusRejected",
        f"the API server refused this object's status ({detail}); the operator retries. If it persists, please "
        "report it with the operator's log",
    )
    generation = body.metadata.get("generation")
    conditions = build_conditions(refused, held.get("conditions") or (), generation)
    with contextlib.suppress(kube.KubeError):
        await runtime.kube.patch_status(
            tracked.namespace, tracked.name, {"conditions": conditions, "observedGeneration": generation}
        )
    return refused


def _kubernetes_wait(who: str, detail: str, retry: int) -> kopf.TemporaryError:
    logger.warning("%s: deleting waits for the Kubernetes API (%s)", who, detail)
    return kopf.TemporaryError(
        f"Kubernetes API call failed ({detail})", delay=backoff(retry + 1, KUBERNETES_BACKOFF_CAP)
    )


def _log_transition(who: str, before: Mapping[str, Any], outcome: Outcome) -> None:
    """An audit trail: every change of the Ready reason, at INFO."""
    ready = find(before.get("conditions") or (), "Ready")
    if ready is None or ready.get("reason") != outcome.reason:
        logger.info("%s: Ready is now %s (%s): %s", who, outcome.ready, outcome.reason, outcome.message)


async def run_finalize(runtime: Runtime, tracked: Tracked, body: kopf.Body, uid: str, *, retry: int) -> None:
    """Delete or retain the store; raises kopf.TemporaryError (with the delay) while it cannot yet."""
    who = f"{tracked.namespace}/{tracked.name}"
    tracked.finalizing = True
    tracked.wake.set()  # a sync loop waiting for its next pass sees the flag and exits
    async with tracked.lock:  # waits for a pass still running, a create in flight included
        view = _view(tracked, body, uid)
        try:
            result = await finalize_object(view, runtime.env, last_session=tracked.session)
        except SecretReadError as error:
            raise _kubernetes_wait(who, error.message, retry) from None
        except kube.KubeError as error:
            raise _kubernetes_wait(who, str(error), retry) from None
        except ReconcileError as error:
            runtime.metrics.set_object_state(uid, False, error.reason)
            outcome = Outcome(error.reason, error.message, stalled=error.stalled)
            status = dict(view.status)
            status["conditions"] = build_conditions(outcome, view.status.get("conditions") or (), view.generation)
            tracked.status = status
            with contextlib.suppress(kube.KubeError):  # the condition is a report; the retry below is what counts
                await write_status(
                    runtime.kube.patch_status, tracked.namespace, tracked.name, dict(body.get("status") or {}), status
                )
            ready = find(view.status.get("conditions") or (), "Ready")
            if ready is None or ready.get("message") != error.message:
                kopf.warn(body, reason=error.reason, message=error.message)
                logger.info("%s: deleting waits: %s (%s)", who, error.message, error.reason)
            # Back off, but not so far that a fix (a restored token, deletionPolicy: Retain) waits long.
            delay = error.retry_after or backoff(retry + 1, 60.0)
            raise kopf.TemporaryError(error.message, delay=delay) from None
    runtime.tracker.forget(uid)
    runtime.metrics.forget_object(uid)
    if result.event is not None:
        _post(body, [result.event])
