"""Helpers the reconcile tests share: Secrets in a dict, an object view, a create-mark counter."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from fastly_secret_store_operator.reconcile.object import ObjectView
from fastly_secret_store_operator.reconcile.ownership import Claim

TOKEN = "token-canary-7f3a9c"
NAMESPACE = "shop"


class DictSecrets:
    """Secrets by (namespace, name); counts reads so tests can see what was read."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, bytes]] = {}

    def put(self, name: str, namespace: str = NAMESPACE, **values: bytes | str) -> None:
        self.data[(namespace, name)] = {
            key: value.encode() if isinstance(value, str) else value for key, value in values.items()
        }

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        return self.data.get((namespace, name))


def view(
    spec: Mapping[str, Any] | None = None,
    status: Mapping[str, Any] | None = None,
    generation: int = 1,
    *,
    name: str = "checkout",
    namespace: str = NAMESPACE,
    created: str = "2026-01-01T00:00:00Z",
) -> ObjectView:
    base: dict[str, Any] = {"apiTokenSecretRef": {"name": "fastly-api-token"}}
    base.update(spec or {})
    uid = "uid-checkout" if name == "checkout" else f"uid-{name}"
    return ObjectView(namespace, name, generation, base, dict(status or {}), uid=uid, created=created)


class MemoryOwners:
    """The claims index, as a test sets it: what the cluster's objects record."""

    def __init__(self) -> None:
        self.by_name: defaultdict[str, dict[str, Claim]] = defaultdict(dict)

    def claims(self, store_name: str) -> Iterable[Claim]:
        return list(self.by_name[store_name].values())

    @contextlib.asynccontextmanager
    async def deciding(self, store_name: str) -> AsyncIterator[None]:
        yield

    def observe(self, obj: ObjectView) -> None:
        """Record the claim `obj` (with its status) makes, as the watch would deliver it."""
        claim = obj.claim()
        self.by_name[claim.store_name][claim.uid] = claim

    def forget(self, uid: str) -> None:
        for claims in self.by_name.values():
            claims.pop(uid, None)


class Marks:
    """Counts how often reconcile asked to persist 'a create is in flight'."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, fields: Mapping[str, Any]) -> None:
        if "createRequestedAt" in fields:
            self.count += 1


OPERATOR_NAMESPACE = "fastly-system"


class MemoryAccounts:
    """FastlyAccounts and Namespace labels, as a test sets them; counts Namespace reads."""

    def __init__(self, *, selectors_evaluated: bool = True) -> None:
        self.specs: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self.label_reads: list[str] = []
        self._selectors_evaluated = selectors_evaluated

    @property
    def token_namespace(self) -> str:
        return OPERATOR_NAMESPACE

    @property
    def selectors_evaluated(self) -> bool:
        return self._selectors_evaluated

    def account(self, name: str) -> Mapping[str, Any] | None:
        return self.specs.get(name)

    async def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        self.label_reads.append(namespace)
        return self.labels.get(namespace)


def account_view(
    spec: Mapping[str, Any] | None = None,
    status: Mapping[str, Any] | None = None,
    *,
    account: str = "platform",
    name: str = "checkout",
    namespace: str = NAMESPACE,
    created: str = "2026-01-01T00:00:00Z",
) -> ObjectView:
    """A FastlySecretStore that uses a FastlyAccount (spec.accountRef) rather than a token of its own."""
    base: dict[str, Any] = {"accountRef": {"name": account}}
    base.update(spec or {})
    return ObjectView(namespace, name, 1, base, dict(status or {}), uid=f"uid-{namespace}-{name}", created=created)
