"""One Fastly store, one object: two objects naming the same store with the same token would fight over its
entries, and deleting either would delete the other's store."""

from __future__ import annotations

from typing import Any

from fastly_secret_store_operator.reconcile.errors import ReconcileError


class StoreClaims:
    """In memory: after a restart, the first object to reconcile holds the claim again."""

    def __init__(self) -> None:
        self._holders: dict[tuple[int, str], tuple[str, str]] = {}  # (token identity, store name) -> (uid, ns/name)

    def claim(self, connection: Any, store_name: str, uid: str, who: str) -> None:
        """Claim the store for the object `uid` (`who` is its namespace/name), or raise StoreInUse naming the
        object that holds it."""
        key = (id(connection), store_name)
        holder = self._holders.setdefault(key, (uid, who))
        if holder[0] != uid:
            raise ReconcileError(
                "StoreInUse",
                f"FastlySecretStore {holder[1]} already manages the Fastly store {store_name!r} with this token: "
                "give this object another spec.name, or delete one of the two",
            )

    def release(self, uid: str) -> None:
        for key in [key for key, (holder, _) in self._holders.items() if holder == uid]:
            del self._holders[key]
