"""Who manages a Fastly store: decided from what the objects' status records in the cluster, never from memory.

Every FastlySecretStore is a claimant for the store its spec names. A claim ranks by what its status records:

0. the store's id (and account): it manages that store;
1. the store's name and account, no id yet: it has claimed the name and is creating or adopting it;
2. nothing for that name: a newcomer (new, refused, or its status wiped).

The best-ranked claimant manages the store; ties go to the older object (creationTimestamp, then uid). Recorded
claims (ranks 0 and 1) conflict only within one Fastly account. A newcomer's account is unknown until it has
reconciled, so newcomers are compared with each other only when they read the same token Secret, or use the
same FastlyAccount.

An object records its claim (rank 1) before it creates or adopts anything, and checks again once the claim is
visible: two objects can then never both take one store, whatever order they run or restart in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ID, NAME, NEWCOMER = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Claim:
    uid: str
    #: namespace/name, for messages.
    who: str
    #: metadata.creationTimestamp (RFC 3339 sorts as text).
    created: str
    #: The store name the object's spec asks for.
    store_name: str
    #: What its status records for that store name.
    account_id: str | None = None
    store_id: str | None = None
    #: namespace/Secret of the API token, or account:NAME of a FastlyAccount: stands in for a newcomer's account.
    token_scope: str = ""

    @property
    def rank(self) -> int:
        if self.account_id is None:
            return NEWCOMER
        return ID if self.store_id else NAME

    def order(self) -> tuple[int, str, str]:
        return (self.rank, self.created, self.uid)


def claim_from_object(
    *, uid: str, namespace: str, name: str, created: str, spec: Mapping[str, Any], status: Mapping[str, Any]
) -> Claim:
    """The claim an object makes, from its body (what the cluster holds)."""
    store_name = str(spec.get("name") or name)
    token, account = spec.get("apiTokenSecretRef"), spec.get("accountRef")
    token_secret = token.get("name") if isinstance(token, Mapping) else None
    # Newcomers through one FastlyAccount share its token, whatever their namespace.
    scope = f"account:{account.get('name')}" if isinstance(account, Mapping) else f"{namespace}/{token_secret}"
    recorded = status.get("storeName") == store_name and bool(status.get("accountId"))
    return Claim(
        uid=uid,
        who=f"{namespace}/{name}",
        created=created,
        store_name=store_name,
        account_id=str(status["accountId"]) if recorded else None,
        store_id=str(status["id"]) if recorded and status.get("id") else None,
        token_scope=scope,
    )


def _conflicts(me: Claim, other: Claim, account_id: str) -> bool:
    if other.uid == me.uid or other.store_name != me.store_name:
        return False
    if other.account_id is not None:
        if other.account_id != account_id:
            return False
    elif other.token_scope != me.token_scope:
        return False
    # Two recorded ids that differ are two stores of one name (Fastly may allow that): no conflict.
    return not (me.store_id and other.store_id and me.store_id != other.store_id)


def manager_before(me: Claim, claims: Iterable[Claim], account_id: str) -> Claim | None:
    """The claimant that manages the store ahead of `me` (whose token is of `account_id`), or None."""
    rivals = [claim for claim in claims if _conflicts(me, claim, account_id)]
    if not rivals:
        return None
    first = min(rivals, key=Claim.order)
    return first if first.order() < me.order() else None
