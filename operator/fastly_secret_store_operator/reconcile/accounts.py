"""Where a FastlySecretStore's API token comes from: its own Secret, or a FastlyAccount that allows it.

A FastlySecretStore with `spec.accountRef` uses the token of a cluster-scoped FastlyAccount, kept in a Secret of
the operator's own namespace, once the account's policy allows the object's namespace and store name. Every
refusal happens here, before the token is read and before any Fastly request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastly_secret_store_operator.reconcile.account_policy import (
    AccountPolicy,
    longer_namespaces_fitting,
    namespace_refusal,
    parse_account,
    store_name_refusal,
)
from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.spec import SecretKeyRef, StoreSpec

TOKEN_FIELD = "spec.apiTokenSecretRef"  # noqa: S105 - a field name, not a token


class Accounts(Protocol):
    """The FastlyAccounts the cluster holds (kept current by a watch), and what decides their policies."""

    @property
    def token_namespace(self) -> str:
        """The namespace of every FastlyAccount's token Secret: the operator's own."""

    @property
    def selectors_evaluated(self) -> bool:
        """Whether allowedNamespaces.selector is evaluated (the operator may read Namespaces)."""

    def account(self, name: str) -> Mapping[str, Any] | None:
        """The spec of the FastlyAccount `name`, or None when there is none."""

    async def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        """The labels of `namespace`, or None when it does not exist; Kubernetes API errors raise."""


@dataclass(frozen=True, slots=True)
class TokenSource:
    """The Secret to read the token from, and how to name it in messages."""

    namespace: str
    ref: SecretKeyRef
    #: The field that names the Secret, for messages ("spec.apiTokenSecretRef", or the account's).
    field: str = TOKEN_FIELD
    account: AccountPolicy | None = None


def describe_source(namespace: str, spec: StoreSpec) -> str:
    """The token's source, for messages: never the token itself."""
    if spec.account is not None:
        return f"FastlyAccount {spec.account}"
    assert spec.token_ref is not None
    return f"Secret {namespace}/{spec.token_ref.secret} key {spec.token_ref.key!r}"


def account_policy(accounts: Accounts | None, name: str) -> AccountPolicy:
    """The FastlyAccount `name`, parsed; AccountNotFound when there is none, AccountInvalid when it is broken."""
    spec = accounts.account(name) if accounts is not None else None
    if spec is None:
        raise ReconcileError(
            "AccountNotFound",
            f"FastlyAccount {name} (spec.accountRef) does not exist: ask the platform team which FastlyAccount "
            "serves this namespace (kubectl get fastlyaccounts), or have it created. Nothing was sent to Fastly",
        )
    try:
        return parse_account(name, spec)
    except ReconcileError as error:
        raise ReconcileError(
            "AccountInvalid",
            f"{error.message}. Nothing was sent to Fastly: the platform team must fix the FastlyAccount",
        ) from None


async def token_source(accounts: Accounts | None, namespace: str, spec: StoreSpec) -> TokenSource:
    """Where the object's token is, once its FastlyAccount (if any) allows it; raises ReconcileError (Stalled)."""
    if spec.account is None:
        assert spec.token_ref is not None
        return TokenSource(namespace, spec.token_ref)
    policy = account_policy(accounts, spec.account)
    assert accounts is not None
    labels: Mapping[str, str] | None = None
    if namespace not in policy.names and policy.selector is not None and accounts.selectors_evaluated:
        labels = await accounts.namespace_labels(namespace)
    refusal = namespace_refusal(policy, namespace, labels, selectors_evaluated=accounts.selectors_evaluated)
    if refusal is not None:
        raise ReconcileError("AccountNotAllowed", f"{refusal}. Nothing was sent to Fastly")
    refusal = store_name_refusal(policy, namespace, spec.name)
    if refusal is None and policy.selector is not None and accounts.selectors_evaluated:
        refusal = await _claimed_by_a_selected_namespace(accounts, policy, namespace, spec.name)
    if refusal is not None:
        raise ReconcileError("StoreNameNotAllowed", f"{refusal}. Nothing was sent to Fastly")
    return TokenSource(
        accounts.token_namespace,
        policy.token_ref,
        field=f"FastlyAccount {policy.name} {TOKEN_FIELD}",
        account=policy,
    )


async def _claimed_by_a_selected_namespace(
    accounts: Accounts, policy: AccountPolicy, namespace: str, store_name: str
) -> str | None:
    """With `{namespace}-*`, namespace `shop` must not take `shop-prod-db` when the selector allows an existing
    namespace `shop-prod`: the name belongs to the longer one. (Names listed in `names` are checked without I/O.)"""
    for other in longer_namespaces_fitting(policy, namespace, store_name):
        labels = await accounts.namespace_labels(other)
        if labels is not None and policy.selector is not None and policy.selector.matches(labels):
            return (
                f"FastlyAccount {policy.name} does not allow the store name {store_name!r} from namespace "
                f"{namespace}: it also fits the store names of namespace {other}, a longer name the account "
                "allows, and belongs to it. Choose a spec.name only this namespace's pattern fits (a new object: the "
                "name is immutable)"
            )
    return None
