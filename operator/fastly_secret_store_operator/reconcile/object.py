"""One FastlySecretStore, reconciled: spec and Secrets in, Fastly actions done, the status to record out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastly_secret_store_operator.fastly import FastlyClient, FastlyError, Sealer
from fastly_secret_store_operator.reconcile.claims import StoreClaims
from fastly_secret_store_operator.reconcile.conditions import Outcome, build_conditions, find, rfc3339
from fastly_secret_store_operator.reconcile.directory import StoreDirectory
from fastly_secret_store_operator.reconcile.entries import (
    EntriesResult,
    EntryRecord,
    resolve_entries,
    sync_entries,
)
from fastly_secret_store_operator.reconcile.errors import ReconcileError, from_fastly
from fastly_secret_store_operator.reconcile.fingerprint import Fingerprinter
from fastly_secret_store_operator.reconcile.sources import SecretReader, read_token
from fastly_secret_store_operator.reconcile.spec import DeletionPolicy, StoreSpec, parse_spec
from fastly_secret_store_operator.reconcile.store import (
    CreateMark,
    DeleteAction,
    StoreAction,
    StoreRecord,
    delete_store,
    ensure_store,
)

#: How many entry names an event lists before it says "and N more".
_EVENT_NAMES = 10


@dataclass(frozen=True, slots=True)
class ObjectView:
    """The parts of a FastlySecretStore object that reconciling reads."""

    namespace: str
    name: str
    generation: int | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    uid: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # "Normal" or "Warning"
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Connection:
    """Everything that talks to Fastly with one token."""

    client: FastlyClient
    sealer: Sealer
    directory: StoreDirectory


class Connections(Protocol):
    def __call__(self, token: str) -> Connection: ...


@dataclass(frozen=True, slots=True)
class Environment:
    secrets: SecretReader
    connect: Connections
    fingerprinter: Fingerprinter
    claims: StoreClaims = field(default_factory=lambda: StoreClaims())


@dataclass(slots=True)
class ReconcileResult:
    status: dict[str, Any]
    outcome: Outcome
    events: list[Event] = field(default_factory=list)
    #: Seconds until the next attempt; None means "at the next resync".
    retry_after: float | None = None
    spec: StoreSpec | None = None
    #: The Fastly connection this pass used, kept to delete the store even if the token Secret goes first.
    connection: Connection | None = None
    entries_written: int = 0
    entries_skipped: int = 0


def _token_source(namespace: str, spec: StoreSpec) -> str:
    return f"Secret {namespace}/{spec.token_ref.secret} key {spec.token_ref.key!r}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_EVENT_NAMES])
    return shown + (f" and {len(names) - _EVENT_NAMES} more" if len(names) > _EVENT_NAMES else "")


async def reconcile_object(
    obj: ObjectView,
    env: Environment,
    *,
    resync: bool = False,
    mark_create_requested: Callable[[str], Awaitable[None]],
) -> ReconcileResult:
    """Bring Fastly in line with the object and say how it went.

    With `resync`, the store's existence is checked against the shared store listing rather than by a GET.
    `mark_create_requested(time)` must persist status.createRequestedAt before a create request goes out.
    Failures the user can act on, or that heal on their own, come back as the outcome, with the conditions to
    record and when to retry; only Kubernetes API errors (reading Secrets) raise.
    """
    status: dict[str, Any] = {key: value for key, value in obj.status.items() if key != "conditions"}
    events: list[Event] = []
    result = ReconcileResult(status=status, outcome=Outcome("Reconciling", "starting"), events=events)
    mark = CreateMark(obj.status.get("createRequestedAt"), mark_create_requested)

    try:
        spec = result.spec = parse_spec(obj.spec, default_name=obj.name)
        token = await read_token(env.secrets, obj.namespace, spec.token_ref)
        connection = result.connection = env.connect(token)
        env.claims.claim(connection, spec.name, obj.uid, f"{obj.namespace}/{obj.name}")
        try:
            stored = await ensure_store(
                connection.client,
                spec,
                StoreRecord.from_status(obj.status),
                mark=mark,
                directory=connection.directory if resync else None,
                # Objects resyncing within one interval share a listing; a deletion shows within two intervals.
                listing_max_age=spec.resync_seconds,
            )
            status.update(stored.record.as_status())
            if stored.action is not StoreAction.UNCHANGED:
                if stored.action is StoreAction.RECREATED:
                    status.pop("entries", None)  # a new store holds none of them
                events.append(_store_event(stored.action, stored.record))
            entries = await _sync_entries(obj, env, spec, connection, stored.record)
        except FastlyError as error:
            raise from_fastly(error, token_source=_token_source(obj.namespace, spec)) from None
        status["entries"] = [record.as_status() for record in entries.records]
        result.entries_written, result.entries_skipped = len(entries.written), entries.skipped
        if entries.written:
            events.append(Event("Normal", "EntriesWritten", f"Wrote entries {_names(entries.written)}"))
        if entries.deleted:
            events.append(Event("Normal", "EntriesPruned", f"Deleted entries {_names(entries.deleted)}"))
        if entries.error is not None:
            raise from_fastly(entries.error, token_source=_token_source(obj.namespace, spec))
        if entries.problems:
            first = entries.problems[0]
            message = "; ".join(problem.message for problem in entries.problems)
            raise ReconcileError(first.reason, f"{message}. The other entries are in sync")
        result.outcome = Outcome(
            "Synced",
            f"Fastly store {spec.name} ({stored.record.id}) is in sync with {len(entries.records)} entries",
            ready=True,
        )
    except ReconcileError as error:
        result.outcome = Outcome(error.reason, error.message, stalled=error.stalled)
        result.retry_after = error.retry_after
        if _reason_changed(obj.status, error.reason):
            events.append(Event("Warning", error.reason, error.message))

    if mark.requested_at is None:
        status.pop("createRequestedAt", None)
    else:
        status["createRequestedAt"] = rfc3339(mark.requested_at)
    status["observedGeneration"] = obj.generation
    status["conditions"] = build_conditions(result.outcome, obj.status.get("conditions") or (), obj.generation)
    return result


async def _sync_entries(
    obj: ObjectView, env: Environment, spec: StoreSpec, connection: Connection, store: StoreRecord
) -> EntriesResult:
    desired = await resolve_entries(env.secrets, obj.namespace, spec)
    recorded = [EntryRecord.from_status(item) for item in obj.status.get("entries") or ()]
    if obj.status.get("id") != store.id:
        recorded = []  # records of another store (before a recreate) say nothing about this one
    return await sync_entries(
        connection.client,
        connection.sealer,
        env.fingerprinter,
        store.id,
        desired,
        recorded,
        prune=spec.prune,
    )


def _store_event(action: StoreAction, record: StoreRecord) -> Event:
    verbs = {
        StoreAction.CREATED: "Created",
        StoreAction.ADOPTED: "Adopted existing",
        StoreAction.RECREATED: "Recreated (it was deleted outside the operator)",
    }
    return Event("Normal", action.value, f"{verbs[action]} Fastly store {record.name} ({record.id})")


def _reason_changed(status: Mapping[str, Any], reason: str) -> bool:
    ready = find(status.get("conditions") or (), "Ready")
    return ready is None or ready.get("reason") != reason


@dataclass(slots=True)
class FinalizeResult:
    action: DeleteAction
    event: Event | None


async def finalize_object(
    obj: ObjectView, env: Environment, *, last_connection: Connection | None = None
) -> FinalizeResult:
    """Delete or retain the store as the deletion policy says; raises ReconcileError when it cannot yet.

    When the token Secret is already gone (a namespace being deleted takes it with the object), the connection
    the object last used, if this process still has it, does the deletion. A spec that no longer parses, or a
    token that is gone for good, must not orphan a store silently: the error tells the user how to release the
    object (restore the token, or switch to deletionPolicy: Retain).
    """
    recorded = StoreRecord.from_status(obj.status)
    mark = CreateMark(obj.status.get("createRequestedAt"), _never_persisted)
    if recorded is None and mark.requested_at is None:
        env.claims.release(obj.uid)
        return FinalizeResult(DeleteAction.NOTHING, None)  # nothing was ever made: even a broken spec may go
    spec = parse_spec(obj.spec, default_name=obj.name)
    name = recorded.name if recorded else spec.name
    if spec.deletion is DeletionPolicy.RETAIN:
        env.claims.release(obj.uid)
        event = Event("Normal", "Retained", f"Kept Fastly store {name}: deletionPolicy is Retain")
        return FinalizeResult(DeleteAction.RETAINED, event)
    release = "; or set spec.deletionPolicy: Retain to release the object and keep the store"
    try:
        connection = env.connect(await read_token(env.secrets, obj.namespace, spec.token_ref))
    except ReconcileError as error:
        if last_connection is None or error.reason != "CredentialsNotFound":
            raise ReconcileError(error.reason, f"cannot delete the Fastly store: {error.message}{release}") from None
        connection = last_connection
    try:
        action = await delete_store(connection.client, spec, recorded, mark)
    except FastlyError as error:
        failure = from_fastly(error, token_source=_token_source(obj.namespace, spec))
        linked = ""
        if failure.reason == "FastlyRejected":
            linked = " (a store still linked to a Compute service cannot be deleted: remove the link first)"
        raise ReconcileError(
            failure.reason,
            f"cannot delete the Fastly store: {failure.message}{linked}{release}",
            stalled=failure.stalled,
            retry_after=failure.retry_after,
        ) from None
    env.claims.release(obj.uid)
    messages = {
        DeleteAction.DELETED: f"Deleted Fastly store {name}",
        DeleteAction.ALREADY_GONE: f"Fastly store {name} was already gone",
    }
    message = messages.get(action)
    return FinalizeResult(action, Event("Normal", "Deleted", message) if message else None)


async def _never_persisted(requested_at: str) -> None:
    raise AssertionError("finalizing never creates a store")
