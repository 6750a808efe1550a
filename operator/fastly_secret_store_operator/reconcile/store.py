"""The store's lifecycle: create, adopt by name, notice out-of-band deletion, delete or retain."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NoReturn

from fastly_secret_store_operator.fastly import (
    AlreadyExistsError,
    FastlyClient,
    FastlyError,
    NotFoundError,
    OutcomeUnknownError,
    ServerUnavailableError,
    Store,
    UnexpectedResponseError,
    parse_time,
)
from fastly_secret_store_operator.reconcile.conditions import rfc3339
from fastly_secret_store_operator.reconcile.directory import StoreDirectory
from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.spec import AdoptionPolicy, StoreSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoreRecord:
    """What the object's status records about its Fastly store."""

    id: str
    name: str
    created_at: str
    adopted: bool

    @classmethod
    def from_store(cls, store: Store, *, adopted: bool) -> StoreRecord:
        return cls(id=store.id, name=store.name, created_at=rfc3339(store.created_at), adopted=adopted)

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> StoreRecord | None:
        if not status.get("id") or not status.get("storeName"):
            return None
        return cls(
            id=str(status["id"]),
            name=str(status["storeName"]),
            created_at=str(status.get("createdAt", "")),
            adopted=bool(status.get("adopted", False)),
        )

    def as_status(self) -> dict[str, Any]:
        return {"id": self.id, "storeName": self.name, "createdAt": self.created_at, "adopted": self.adopted}


class StoreAction(StrEnum):
    UNCHANGED = "Unchanged"
    CREATED = "Created"
    ADOPTED = "Adopted"
    RECREATED = "Recreated"


@dataclass(frozen=True, slots=True)
class StoreResult:
    record: StoreRecord
    action: StoreAction


#: How much older than the create request a store may look and still be the one it made (clock skew).
CREATE_CLOCK_SKEW = timedelta(minutes=5)
#: How long a create whose answer was lost may still land: no second create for the name before it has passed.
DEFAULT_CREATE_GRACE = 60.0
#: Gateway answers: a proxy in front of Fastly gave up waiting, so the create may have happened behind it.
_GATEWAY_STATUSES = frozenset({502, 504})


def _outcome_unknown(error: FastlyError) -> bool:
    """Whether a create that failed this way may still have made the store: its answer was lost, cut off,
    unreadable, or a gateway's. A 500 or 503 from Fastly itself says the create failed."""
    return isinstance(error, OutcomeUnknownError | UnexpectedResponseError) or (
        isinstance(error, ServerUnavailableError) and error.status in _GATEWAY_STATUSES
    )


class CreateMark:
    """A create request that went out and whose answer was never seen (a timeout, a cut connection, a killed
    operator). It is persisted before the request leaves, so a store of the name found later is known to be
    this object's own, not someone else's to adopt or refuse; it is dropped as soon as the outcome is known."""

    def __init__(self, requested_at: str | None, persist: Callable[[str], Awaitable[None]]) -> None:
        self.requested_at = parse_time(requested_at) if requested_at else None
        self._persist = persist

    async def set(self) -> None:
        self.requested_at = datetime.now(UTC)
        await self._persist(rfc3339(self.requested_at))

    def clear(self) -> None:
        self.requested_at = None

    def covers(self, store: Store) -> bool:
        return self.requested_at is not None and store.created_at >= self.requested_at - CREATE_CLOCK_SKEW

    def still_landing(self, grace: float) -> float:
        """Seconds until a create sent at the mark can no longer land unseen (0 when there is no mark)."""
        if self.requested_at is None:
            return 0.0
        elapsed = max(0.0, (datetime.now(UTC) - self.requested_at).total_seconds())  # a mark from the future: skew
        return max(0.0, grace - elapsed)

    def since(self) -> str:
        return rfc3339(self.requested_at) if self.requested_at else "?"


async def ensure_store(
    client: FastlyClient,
    spec: StoreSpec,
    recorded: StoreRecord | None,
    *,
    mark: CreateMark,
    directory: StoreDirectory | None = None,
    listing_max_age: float = 60.0,
    create_grace: float = DEFAULT_CREATE_GRACE,
) -> StoreResult:
    """Make sure the store exists and is the one this object manages.

    A store found by name that `mark` covers is the one an earlier create made: ours, not adopted. With a `directory`,
    existence is checked against a shared listing at most `listing_max_age` seconds old (one request serves many
    objects); without, by a GET.
    """
    if recorded is not None and recorded.name != spec.name:
        raise ReconcileError(
            "InvalidSpec",
            f"spec.name changed from {recorded.name!r} to {spec.name!r}, but it is immutable: set it back, or "
            "create a new FastlySecretStore for the other store",
        )
    if recorded is not None:
        if await _still_exists(client, recorded, directory, listing_max_age):
            return StoreResult(recorded, StoreAction.UNCHANGED)
        logger.info("Fastly store %s (%s) is gone: it was deleted outside this operator", spec.name, recorded.id)

    matches = await client.find_stores(spec.name)
    if len(matches) > 1:
        ids = ", ".join(store.id for store in matches)
        raise ReconcileError(
            "AmbiguousName",
            f"{len(matches)} Fastly stores are named {spec.name!r} ({ids}): delete the extra ones in Fastly, "
            "then this object adopts the one left",
        )
    if matches:
        store = matches[0]
        if mark.covers(store):
            mark.clear()
            return StoreResult(StoreRecord.from_store(store, adopted=False), _created(recorded))
        mark.clear()  # whatever an earlier create did, this store is not what it made
        if recorded is None and spec.adoption is AdoptionPolicy.MUST_CREATE:
            raise ReconcileError(
                "StoreAlreadyExists",
                f"a Fastly store named {spec.name!r} already exists (id {store.id}) and adoptionPolicy is "
                "MustCreate: choose another spec.name, or set adoptionPolicy: AdoptOrCreate to adopt it",
            )
        adopted = recorded.adopted if recorded is not None else True
        return StoreResult(StoreRecord.from_store(store, adopted=adopted), StoreAction.ADOPTED)

    landing = mark.still_landing(create_grace)
    if landing > 0:
        # Our last create got no usable answer and may still land: another create now could make a second store
        # of the name (Fastly may allow that). Look again until the grace period has passed.
        raise ReconcileError(
            "Creating",
            f"the create request for Fastly store {spec.name!r} sent at {mark.since()} got no answer and no store "
            f"of that name is visible yet; it is looked up again, and created anew only if still missing "
            f"{create_grace:.0f}s after that request",
            stalled=False,
            retry_after=min(landing + 1.0, 10.0),
        )
    if spec.adoption is AdoptionPolicy.ADOPT:
        gone = f" (it had id {recorded.id} and was deleted outside this operator)" if recorded else ""
        raise ReconcileError(
            "StoreNotFound",
            f"no Fastly store is named {spec.name!r}{gone} and adoptionPolicy is Adopt: create it in Fastly, "
            "or set adoptionPolicy: AdoptOrCreate to let the operator create it",
        )
    return StoreResult(await _create(client, spec.name, mark), _created(recorded))


def _created(recorded: StoreRecord | None) -> StoreAction:
    return StoreAction.RECREATED if recorded is not None else StoreAction.CREATED


async def _still_exists(
    client: FastlyClient, recorded: StoreRecord, directory: StoreDirectory | None, max_age: float
) -> bool:
    # A listing fetched before the store was created cannot hold it: the directory refreshes for such a store
    # (once, for all stores created since). An absence is still confirmed by a GET before the store counts as
    # deleted, against clock skew and a listing that lags.
    created_at = parse_time(recorded.created_at) if recorded.created_at else None
    if directory is not None and await directory.contains(recorded.id, max_age=max_age, created_at=created_at):
        return True
    try:
        await client.get_store(recorded.id)
    except NotFoundError:
        return False
    return True


async def _create(client: FastlyClient, name: str, mark: CreateMark) -> StoreRecord:
    unanswered_before = mark.requested_at is not None
    await mark.set()
    try:
        store = await client.create_store(name)
    except FastlyError as error:
        if not _outcome_unknown(error):
            _refused_create(error, name, mark, unanswered_before)
        # The create may or may not have happened: never create blindly again. The mark stays (a store found
        # later under it is ours, not adopted); look the name up now, and again on later passes.
        matches = [store for store in await client.find_stores(name) if mark.covers(store)]
        if len(matches) != 1:
            raise ReconcileError(
                "Creating",
                f"the create request for Fastly store {name!r} got no usable answer; it may still land, so the "
                "name is looked up again before anything is created",
                stalled=False,
                retry_after=2.0,
            ) from None
        store = matches[0]
    mark.clear()
    return StoreRecord.from_store(store, adopted=False)


def _refused_create(error: FastlyError, name: str, mark: CreateMark, unanswered_before: bool) -> NoReturn:
    """A create Fastly answered with a failure: nothing was made by it."""
    if isinstance(error, AlreadyExistsError):
        # Someone created it between our lookup and our create, or an earlier create of ours that got no answer
        # landed meanwhile (then the mark, kept, says it is ours): look again, and adopt or refuse it.
        if not unanswered_before:
            mark.clear()
        raise ReconcileError(
            "Creating", f"a store named {name!r} appeared while creating it; looking it up again", stalled=False
        ) from None
    if not unanswered_before:
        mark.clear()  # refused, or Fastly failing (500, 503): this request made nothing
    raise error


class DeleteAction(StrEnum):
    DELETED = "Deleted"
    ALREADY_GONE = "AlreadyGone"
    RETAINED = "Retained"
    NOTHING = "Nothing"


async def delete_store(
    client: FastlyClient,
    spec: StoreSpec,
    recorded: StoreRecord | None,
    mark: CreateMark,
    *,
    create_grace: float = DEFAULT_CREATE_GRACE,
) -> DeleteAction:
    """Delete the store; a store already gone counts as deleted."""
    store_id = recorded.id if recorded else None
    if store_id is None and mark.requested_at is not None:
        # A create whose answer was lost: delete what it made rather than leave a store nobody knows about.
        matches = [store for store in await client.find_stores(spec.name) if mark.covers(store)]
        store_id = matches[0].id if len(matches) == 1 else None
        landing = mark.still_landing(create_grace)
        if store_id is None and landing > 0:
            raise ReconcileError(
                "Creating",
                f"waiting for the create request sent at {mark.since()} to land (at most {create_grace:.0f}s) "
                "before deleting: the object goes once its store is deleted",
                stalled=False,
                retry_after=min(landing + 1.0, 2.0),
            )
    if store_id is None:
        return DeleteAction.NOTHING
    try:
        await client.delete_store(store_id)
    except NotFoundError:
        return DeleteAction.ALREADY_GONE
    return DeleteAction.DELETED
