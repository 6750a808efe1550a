"""The store's lifecycle: create, adopt by name, notice out-of-band deletion, delete or retain."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastly_secret_store_operator.fastly import (
    AlreadyExistsError,
    FastlyClient,
    NotFoundError,
    ServerUnavailableError,
    Store,
)
from fastly_secret_store_operator.reconcile.conditions import rfc3339
from fastly_secret_store_operator.reconcile.directory import StoreDirectory
from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.spec import AdoptionPolicy, DeletionPolicy, StoreSpec

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


async def ensure_store(
    client: FastlyClient,
    spec: StoreSpec,
    recorded: StoreRecord | None,
    *,
    create_requested: bool,
    mark_create_requested: Callable[[], Awaitable[None]],
    directory: StoreDirectory | None = None,
    listing_max_age: float = 60.0,
) -> StoreResult:
    """Make sure the store exists and is the one this object manages.

    `create_requested` is true when an earlier pass asked Fastly to create the store and never learned the
    answer (a timeout, a cut connection, a killed operator): a store of that name is then ours, not adopted.
    `mark_create_requested` must persist that fact before the create request goes out. With a `directory`,
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
        if await _still_exists(client, recorded.id, directory, listing_max_age):
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
        if create_requested:
            return StoreResult(StoreRecord.from_store(store, adopted=False), _created(recorded))
        if recorded is None and spec.adoption is AdoptionPolicy.MUST_CREATE:
            raise ReconcileError(
                "StoreAlreadyExists",
                f"a Fastly store named {spec.name!r} already exists (id {store.id}) and adoptionPolicy is "
                "MustCreate: choose another spec.name, or set adoptionPolicy: AdoptOrCreate to adopt it",
            )
        adopted = recorded.adopted if recorded is not None else True
        return StoreResult(StoreRecord.from_store(store, adopted=adopted), StoreAction.ADOPTED)

    if spec.adoption is AdoptionPolicy.ADOPT:
        gone = f" (it had id {recorded.id} and was deleted outside this operator)" if recorded else ""
        raise ReconcileError(
            "StoreNotFound",
            f"no Fastly store is named {spec.name!r}{gone} and adoptionPolicy is Adopt: create it in Fastly, "
            "or set adoptionPolicy: AdoptOrCreate to let the operator create it",
        )
    return StoreResult(await _create(client, spec.name, mark_create_requested), _created(recorded))


def _created(recorded: StoreRecord | None) -> StoreAction:
    return StoreAction.RECREATED if recorded is not None else StoreAction.CREATED


async def _still_exists(client: FastlyClient, store_id: str, directory: StoreDirectory | None, max_age: float) -> bool:
    # A listing only proves presence: one fetched before the store was created does not hold it, so an absence
    # is confirmed by a GET before the store counts as deleted.
    if directory is not None and await directory.contains(store_id, max_age=max_age):
        return True
    try:
        await client.get_store(store_id)
    except NotFoundError:
        return False
    return True


async def _create(client: FastlyClient, name: str, mark_create_requested: Callable[[], Awaitable[None]]) -> StoreRecord:
    await mark_create_requested()
    try:
        store = await client.create_store(name)
    except AlreadyExistsError:
        # Someone created it between our lookup and our create: look again on the next pass.
        raise ReconcileError(
            "Creating",
            f"a store named {name!r} appeared while creating it; looking it up again",
            stalled=False,
        ) from None
    except ServerUnavailableError:
        # The create may or may not have happened; never create blindly again: look the name up first.
        matches = await client.find_stores(name)
        if len(matches) != 1:
            raise
        store = matches[0]
    return StoreRecord.from_store(store, adopted=False)


class DeleteAction(StrEnum):
    DELETED = "Deleted"
    ALREADY_GONE = "AlreadyGone"
    RETAINED = "Retained"
    NOTHING = "Nothing"


async def delete_store(
    client: FastlyClient, spec: StoreSpec, recorded: StoreRecord | None, *, create_requested: bool
) -> DeleteAction:
    """Delete the store under the Delete policy; a store already gone counts as deleted."""
    if spec.deletion is DeletionPolicy.RETAIN:
        return DeleteAction.RETAINED
    store_id = recorded.id if recorded else None
    if store_id is None and create_requested:
        # A create whose answer was lost: delete what it made rather than leave a store nobody knows about.
        matches = await client.find_stores(spec.name)
        store_id = matches[0].id if len(matches) == 1 else None
    if store_id is None:
        return DeleteAction.NOTHING
    try:
        await client.delete_store(store_id)
    except NotFoundError:
        return DeleteAction.ALREADY_GONE
    return DeleteAction.DELETED
