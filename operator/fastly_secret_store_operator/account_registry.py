"""FastlyAccounts as the operator holds them while it runs: their specs (from the watch), who uses each, and the
wake-ups that make an edit of an account, or of its token Secret, reach every object using it within seconds.

Implements reconcile.accounts.Accounts for the reconcile layer. Namespace labels (for allowedNamespaces.selector)
are read on demand, in cluster-wide mode only: in namespaced mode the operator may not read Namespaces, and only
allowedNamespaces.names counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastly_secret_store_operator import kube
from fastly_secret_store_operator.kube.api import MERGE_PATCH
from fastly_secret_store_operator.reconcile.ownership import NEWCOMER, Claim

logger = logging.getLogger(__name__)

ACCOUNTS_PLURAL = "fastlyaccounts"


def accounts_path(name: str | None = None, subresource: str | None = None) -> str:
    rest = [part for part in (name, subresource) if part is not None]
    return kube.api_path("apis", kube.GROUP, kube.VERSION, ACCOUNTS_PLURAL, *rest)


class ClusterAccounts:
    def __init__(
        self,
        api: kube.KubeApi,
        *,
        token_namespace: str,
        selectors_evaluated: bool,
        wake_object: Callable[[str], bool],
        claims_through: Callable[[str], Iterable[Claim]],
    ) -> None:
        """`wake_object(uid)` wakes the sync loop of a FastlySecretStore (False when it has none here);
        `claims_through("account:NAME")` gives the claims of the objects naming a FastlyAccount (the claims index:
        who uses an account is derived from it, not kept a second time)."""
        self._api = api
        self._token_namespace = token_namespace
        self._selectors_evaluated = selectors_evaluated
        self._wake_object = wake_object
        self._specs: dict[str, Mapping[str, Any]] = {}
        self._generations: dict[str, Any] = {}
        self._claims_through = claims_through
        self._wakes: dict[str, asyncio.Event] = {}

    # reconcile.accounts.Accounts

    @property
    def token_namespace(self) -> str:
        return self._token_namespace

    @property
    def selectors_evaluated(self) -> bool:
        return self._selectors_evaluated

    def account(self, name: str) -> Mapping[str, Any] | None:
        return self._specs.get(name)

    async def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        try:
            body = await self._api.client.get_json(kube.api_path("api", "v1", "namespaces", namespace))
        except kube.KubeError as error:
            if error.missing:
                return None
            raise
        labels = (body.get("metadata") or {}).get("labels") or {}
        return {str(key): str(value) for key, value in labels.items()}

    # Fed by the handlers

    def _users(self, name: str) -> list[Claim]:
        return list(self._claims_through(f"account:{name}"))

    def users(self, name: str) -> list[str]:
        """namespace/name of every FastlySecretStore that got through the account (its status records a claim): those
        hold the account's deletion. A refused tenant must not be able to keep a platform team's account alive."""
        return sorted({claim.who for claim in self._users(name) if claim.rank != NEWCOMER})

    def observed(self, name: str, spec: Mapping[str, Any] | None, generation: Any) -> None:
        """The watch delivered the account (None: it is gone); a new generation wakes its users and its check."""
        changed = (spec is None) != (name not in self._specs) or self._generations.get(name) != generation
        if spec is None:
            self._specs.pop(name, None)
            self._generations.pop(name, None)
        else:
            self._specs[name] = dict(spec)
            self._generations[name] = generation
        if changed:
            self.wake_users(name)
            self.wake(name).set()

    def wake(self, name: str) -> asyncio.Event:
        """The event that wakes the account's own check."""
        event = self._wakes.get(name)
        if event is None:
            event = self._wakes[name] = asyncio.Event()
        return event

    def forget(self, name: str) -> None:
        self._wakes.pop(name, None)

    def wake_users(self, name: str) -> int:
        # Every object naming the account, refused ones included: an edit may allow them now.
        woken = sum(1 for claim in self._users(name) if self._wake_object(claim.uid))
        if woken:
            logger.debug("FastlyAccount %s changed: woke %d FastlySecretStores", name, woken)
        return woken

    def secret_changed(self, namespace: str, secret: str) -> None:
        """A Secret changed: when it is an account's token, re-check the account and wake its users."""
        if namespace != self._token_namespace:
            return
        for name, spec in list(self._specs.items()):
            ref = spec.get("apiTokenSecretRef")
            if isinstance(ref, Mapping) and ref.get("name") == secret:
                self.wake(name).set()
                self.wake_users(name)

    async def patch_status(self, name: str, status: Mapping[str, Any]) -> None:
        try:
            await self._api.client.request(
                "PATCH", accounts_path(name, "status"), body={"status": dict(status)}, content_type=MERGE_PATCH
            )
        except kube.KubeError as error:
            if not error.missing:
                raise
