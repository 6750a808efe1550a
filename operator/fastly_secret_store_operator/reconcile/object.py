"""One FastlySecretStore, reconciled: spec and Secrets in, Fastly actions done, the status to record out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fastly_secret_store_operator.fastly import FastlyError, TokenInfo
from fastly_secret_store_operator.reconcile.accounts import Accounts, describe_source, token_source
from fastly_secret_store_operator.reconcile.conditions import Outcome, build_conditions, find, limit_message, rfc3339
from fastly_secret_store_operator.reconcile.entries import (
    EntriesResult,
    EntryProblem,
    EntryRecord,
    resolve_entries,
    sync_entries,
)
from fastly_secret_store_operator.reconcile.errors import ReconcileError, from_fastly
from fastly_secret_store_operator.reconcile.events import Event
from fastly_secret_store_operator.reconcile.fingerprint import Fingerprinter
from fastly_secret_store_operator.reconcile.ownership import NEWCOMER, Claim, claim_from_object, manager_before
from fastly_secret_store_operator.reconcile.session import FastlySession, Sessions
from fastly_secret_store_operator.reconcile.sources import SecretReader, SecretReadError, read_token
from fastly_secret_store_operator.reconcile.spec import DeletionPolicy, StoreSpec, parse_spec
from fastly_secret_store_operator.reconcile.store import (
    DEFAULT_CREATE_GRACE,
    CreateMark,
    DeleteAction,
    StoreAction,
    StoreRecord,
    delete_store,
    ensure_store,
)

logger = logging.getLogger(__name__)

#: How many entry names an event lists before it says "and N more".
_EVENT_NAMES = 10
#: A token expiring sooner than this is announced (a Warning event, and the expiry in status and metrics).
TOKEN_EXPIRY_WARNING = timedelta(days=7)
#: Status fields that say which store this object manages; an object refused the store records none of them.
_STORE_FIELDS = ("id", "storeName", "createdAt", "adopted", "entries")


@dataclass(frozen=True, slots=True)
class ObjectView:
    """The parts of a FastlySecretStore object that reconciling reads."""

    namespace: str
    name: str
    generation: int | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    uid: str = ""
    #: metadata.creationTimestamp: orders claims on one store (the older object wins a tie).
    created: str = ""

    def claim(self) -> Claim:
        return claim_from_object(
            uid=self.uid,
            namespace=self.namespace,
            name=self.name,
            created=self.created,
            spec=self.spec,
            status=self.status,
        )


class Owners(Protocol):
    """The claims the cluster holds on store names (every object's recorded status), kept current by a watch."""

    def claims(self, store_name: str) -> Iterable[Claim]: ...

    def deciding(self, store_name: str) -> AbstractAsyncContextManager[None]:
        """Held while one object checks and records its claim on `store_name`, so two never decide at once."""


#: Persists part of the status before the pass goes on, and returns once the cluster shows it (a claim, a create
#: about to be sent): what must be known even if the operator dies right after.
Checkpoint = Callable[[Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Environment:
    secrets: SecretReader
    connect: Sessions
    fingerprinter: Fingerprinter
    owners: Owners
    #: Seconds a create whose answer was lost may still land before the name may be created again.
    create_grace: float = DEFAULT_CREATE_GRACE
    #: The FastlyAccounts objects may use through spec.accountRef (None: none).
    accounts: Accounts | None = None


@dataclass(slots=True)
class ReconcileResult:
    status: dict[str, Any]
    outcome: Outcome
    events: list[Event] = field(default_factory=list)
    #: Seconds until the next attempt; None means "at the next resync".
    retry_after: float | None = None
    spec: StoreSpec | None = None
    #: The Fastly session this pass used, kept to delete the store even if the token Secret goes first.
    session: FastlySession | None = None
    #: The token's record, when it was read (for the expiry metric).
    token: TokenInfo | None = None
    #: The store name this object waits for (StoreInUse): it is woken when the claims on it change.
    waiting_for: str | None = None
    entries_written: int = 0
    entries_skipped: int = 0


def _token_source(namespace: str, spec: StoreSpec) -> str:
    return describe_source(namespace, spec)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_EVENT_NAMES])
    return shown + (f" and {len(names) - _EVENT_NAMES} more" if len(names) > _EVENT_NAMES else "")


def _problems_message(problems: list[EntryProblem]) -> str:
    return limit_message([problem.message for problem in problems], suffix=". The other entries are in sync")


async def reconcile_object(
    obj: ObjectView, env: Environment, *, resync: bool = False, checkpoint: Checkpoint
) -> ReconcileResult:
    """Bring Fastly in line with the object and say how it went.

    With `resync`, the store's existence is checked against the shared store listing rather than by a GET.
    `checkpoint(fields)` must persist those status fields before the pass goes on (a claim, a create request).
    Failures the user can act on, or that heal on their own, come back as the outcome, with the conditions to
    record and when to retry; Kubernetes API errors (reading Secrets) raise.
    """
    status: dict[str, Any] = {key: value for key, value in obj.status.items() if key != "conditions"}
    events: list[Event] = []
    result = ReconcileResult(status=status, outcome=Outcome("Reconciling", "starting"), events=events)

    async def persist_mark(requested_at: str) -> None:
        status["createRequestedAt"] = requested_at
        await checkpoint({"createRequestedAt": requested_at})

    mark = CreateMark(obj.status.get("createRequestedAt"), persist_mark)

    try:
        spec = result.spec = parse_spec(obj.spec, default_name=obj.name)
        source = await token_source(env.accounts, obj.namespace, spec)
        token = await read_token(env.secrets, source.namespace, source.ref, field=source.field)
        session = result.session = env.connect(token)
        try:
            info = result.token = await session.token_info()
            _check_account(obj, spec, info, status, events)
            await _claim(obj, env, spec, info.customer_id, status, checkpoint)
            stored = await ensure_store(
                session.client,
                spec,
                StoreRecord.from_status(obj.status),
                mark=mark,
                directory=session.directory if resync else None,
                # Objects resyncing within one interval share a listing; a deletion shows within two intervals.
                listing_max_age=spec.resync_seconds,
                create_grace=env.create_grace,
            )
            status.update(stored.record.as_status())
            if stored.action is not StoreAction.UNCHANGED:
                if stored.action is StoreAction.RECREATED:
                    status.pop("entries", None)  # a new store holds none of them
                events.append(_store_event(stored.action, stored.record))
                logger.info(
                    "%s/%s: %s Fastly store %s (%s)",
                    obj.namespace,
                    obj.name,
                    stored.action.value.lower(),
                    stored.record.name,
                    stored.record.id,
                )
            entries = await _sync_entries(obj, env, spec, session, stored.record)
        except FastlyError as error:
            raise from_fastly(error, token_source=_token_source(obj.namespace, spec)) from None
        status["entries"] = [record.as_status() for record in entries.records]
        result.entries_written, result.entries_skipped = len(entries.written), entries.skipped
        if entries.written:
            events.append(Event("Normal", "EntriesWritten", f"Wrote entries {_names(entries.written)}"))
        if entries.deleted:
            events.append(Event("Normal", "EntriesPruned", f"Deleted entries {_names(entries.deleted)}"))
        if entries.written or entries.deleted:
            logger.info(
                "%s/%s: Fastly store %s (%s): wrote %d entries, deleted %d",
                obj.namespace,
                obj.name,
                spec.name,
                stored.record.id,
                len(entries.written),
                len(entries.deleted),
            )
        if entries.error is not None:
            raise from_fastly(entries.error, token_source=_token_source(obj.namespace, spec))
        if entries.problems:
            raise ReconcileError(entries.problems[0].reason, _problems_message(entries.problems))
        result.outcome = Outcome(
            "Synced",
            f"Fastly store {spec.name} ({stored.record.id}) is in sync with {len(entries.records)} entries",
            ready=True,
        )
    except (ReconcileError, SecretReadError) as caught:
        failure = caught if isinstance(caught, ReconcileError) else _kubernetes_unavailable(caught)
        result.outcome = Outcome(failure.reason, failure.message, stalled=failure.stalled)
        result.retry_after = failure.retry_after
        if failure.reason == "StoreInUse" and result.spec is not None:
            result.waiting_for = result.spec.name
            for key in _STORE_FIELDS:
                status.pop(key, None)
        if _reason_changed(obj.status, failure.reason):
            events.append(Event("Warning", failure.reason, failure.message))

    if mark.requested_at is None:
        status.pop("createRequestedAt", None)
    else:
        status["createRequestedAt"] = rfc3339(mark.requested_at)
    status["observedGeneration"] = obj.generation
    status["conditions"] = build_conditions(result.outcome, obj.status.get("conditions") or (), obj.generation)
    return result


def _kubernetes_unavailable(error: SecretReadError) -> ReconcileError:
    return ReconcileError(
        "KubernetesUnavailable",
        f"{error.message}: the Kubernetes API is failing; the operator retries by itself",
        stalled=False,
    )


def _check_account(
    obj: ObjectView, spec: StoreSpec, info: TokenInfo, status: dict[str, Any], events: list[Event]
) -> None:
    """One object, one Fastly account: a token of another account must not move the secrets there."""
    recorded = obj.status.get("accountId")
    if recorded and recorded != info.customer_id:
        raise ReconcileError(
            "AccountMismatch",
            f"the token in {_token_source(obj.namespace, spec)} belongs to Fastly account {info.customer_id}, but "
            f"this object's store is in account {recorded}: nothing was created, written or deleted. Put back a "
            "token of that account; or, to move, delete this object with spec.deletionPolicy: Retain (the store "
            "stays in its account) and create a new one",
        )
    status["accountId"] = info.customer_id
    expires = rfc3339(info.expires_at) if info.expires_at else None
    if expires is None:
        status.pop("tokenExpiresAt", None)
        return
    status["tokenExpiresAt"] = expires
    assert info.expires_at is not None
    if info.expires_at - datetime.now(UTC) < TOKEN_EXPIRY_WARNING and obj.status.get("tokenExpiresAt") != expires:
        events.append(
            Event(
                "Warning",
                "TokenExpiring",
                f"the Fastly API token in {_token_source(obj.namespace, spec)} expires at {expires}: put a new "
                "token of the same account there before then",
            )
        )


async def _claim(
    obj: ObjectView,
    env: Environment,
    spec: StoreSpec,
    account_id: str,
    status: dict[str, Any],
    checkpoint: Checkpoint,
) -> None:
    """Make sure no other object manages this store, and record this object's claim before anything is made."""
    me = obj.claim()  # a claim of another account was refused already (_check_account)

    def refuse(owner: Claim) -> ReconcileError:
        return ReconcileError(
            "StoreInUse",
            f"FastlySecretStore {owner.who} already manages the Fastly store {spec.name!r} in account "
            f"{account_id}: this object writes nothing and deleting it deletes nothing. Give it another "
            f"spec.name, or delete one of the two (this one proceeds within seconds of {owner.who} going)",
        )

    async with env.owners.deciding(spec.name):
        owner = manager_before(me, env.owners.claims(spec.name), account_id)
        if owner is not None:
            raise refuse(owner)
        if me.rank != NEWCOMER:
            return
        claimed = {"accountId": account_id, "storeName": spec.name}
        status.update(claimed)
        await checkpoint(claimed)
        # Checked again once the claim is visible: another operator process may have claimed at the same time.
        owner = manager_before(replace(me, account_id=account_id), env.owners.claims(spec.name), account_id)
        if owner is not None:
            raise refuse(owner)


async def _sync_entries(
    obj: ObjectView, env: Environment, spec: StoreSpec, session: FastlySession, store: StoreRecord
) -> EntriesResult:
    desired = await resolve_entries(env.secrets, obj.namespace, spec)
    recorded = [EntryRecord.from_status(item) for item in obj.status.get("entries") or ()]
    if obj.status.get("id") != store.id:
        recorded = []  # records of another store (before a recreate) say nothing about this one
    return await sync_entries(
        session.client,
        session.sealer,
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


_RELEASE = "; or set spec.deletionPolicy: Retain to release the object and keep the store"


async def finalize_object(
    obj: ObjectView, env: Environment, *, last_session: FastlySession | None = None
) -> FinalizeResult:
    """Delete or retain the store as the deletion policy says; raises ReconcileError when it cannot yet.

    With the policy omitted, a store this object created is deleted and one it adopted is kept. Only the object
    that manages a store deletes it, and only with a token of the store's account. When the token Secret is
    already gone (a namespace being deleted takes it with the object), the session the object last used, if this
    process still has it, does the deletion. A spec that no longer parses, or a token that is gone for good, must
    not orphan a store silently: the error tells the user how to release the object.
    """
    recorded = StoreRecord.from_status(obj.status)
    mark = CreateMark(obj.status.get("createRequestedAt"), _never_persisted)
    if recorded is None and mark.requested_at is None:
        return FinalizeResult(DeleteAction.NOTHING, None)  # nothing was ever made: even a broken spec may go
    spec = parse_spec(obj.spec, default_name=obj.name)
    name = recorded.name if recorded else spec.name
    described = f"Fastly store {name}" + (f" ({recorded.id})" if recorded else "")
    if spec.deletion is DeletionPolicy.RETAIN:
        return _retained(obj, f"Kept {described}: deletionPolicy is Retain")
    if spec.deletion is None and recorded is not None and recorded.adopted:
        return _retained(
            obj,
            f"Kept {described}: this object adopted it rather than created it. Set spec.deletionPolicy: Delete "
            "to delete adopted stores with their object",
        )
    account_id = obj.status.get("accountId")
    if account_id:
        owner = manager_before(obj.claim(), env.owners.claims(spec.name), str(account_id))
        if owner is not None:
            return _retained(obj, f"Kept {described}: FastlySecretStore {owner.who} manages it")
    try:
        source = await token_source(env.accounts, obj.namespace, spec)
        session = env.connect(await read_token(env.secrets, source.namespace, source.ref, field=source.field))
    except ReconcileError as error:
        if last_session is None or error.reason != "CredentialsNotFound":
            raise ReconcileError(error.reason, f"cannot delete the Fastly store: {error.message}{_RELEASE}") from None
        session = last_session
    try:
        info = await session.token_info()
        if account_id and info.customer_id != account_id:
            raise ReconcileError(
                "AccountMismatch",
                f"cannot delete the Fastly store: it is in account {account_id}, but the token in "
                f"{_token_source(obj.namespace, spec)} belongs to account {info.customer_id}. Put back a token of "
                f"account {account_id}{_RELEASE}",
            )
        action = await delete_store(session.client, spec, recorded, mark, create_grace=env.create_grace)
    except FastlyError as error:
        failure = from_fastly(error, token_source=_token_source(obj.namespace, spec))
        linked = ""
        if failure.reason == "FastlyRejected":
            linked = " (a store still linked to a Compute service cannot be deleted: remove the link first)"
        raise ReconcileError(
            failure.reason,
            f"cannot delete the Fastly store: {failure.message}{linked}{_RELEASE}",
            stalled=failure.stalled,
            retry_after=failure.retry_after,
        ) from None
    messages = {
        DeleteAction.DELETED: f"Deleted {described}",
        DeleteAction.ALREADY_GONE: f"{described} was already gone",
    }
    message = messages.get(action)
    if message:
        logger.info("%s/%s: %s", obj.namespace, obj.name, message)
    return FinalizeResult(action, Event("Normal", "Deleted", message) if message else None)


def _retained(obj: ObjectView, message: str) -> FinalizeResult:
    logger.info("%s/%s: %s", obj.namespace, obj.name, message)
    return FinalizeResult(DeleteAction.RETAINED, Event("Normal", "Retained", message))


async def _never_persisted(requested_at: str) -> None:
    raise AssertionError("finalizing never creates a store")
