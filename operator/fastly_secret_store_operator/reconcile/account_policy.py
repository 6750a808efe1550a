"""What a FastlyAccount allows: which namespaces may use it, and which store names they may use through it.

Pure functions over the FastlyAccount's spec and a namespace's labels. A refusal is a message that names the
account and the rule that refused (never the token), for the FastlySecretStore's condition.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.spec import (
    DOT_NAMES,
    MAX_SECRET_NAME,
    SECRET_KEY_PATTERN,
    SECRET_NAME_PATTERN,
    SecretKeyRef,
)

NAMESPACE_PLACEHOLDER = "{namespace}"
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        return self.key not in labels or labels[self.key] not in self.values  # NotIn


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes label selector: every matchLabels pair and every requirement must hold."""

    match_labels: tuple[tuple[str, str], ...] = ()
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.match_labels) and all(
            requirement.matches(labels) for requirement in self.requirements
        )

    def describe(self) -> str:
        parts = [f"{key}={value}" for key, value in self.match_labels]
        for requirement in self.requirements:
            if requirement.operator in ("Exists", "DoesNotExist"):
                parts.append(("" if requirement.operator == "Exists" else "!") + requirement.key)
            else:
                values = ",".join(sorted(requirement.values))
                parts.append(f"{requirement.key} {requirement.operator.lower()} ({values})")
        return ", ".join(parts) or "(empty: every namespace)"


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """A FastlyAccount's spec, parsed."""

    name: str
    token_ref: SecretKeyRef
    names: frozenset[str] = frozenset()
    selector: LabelSelector | None = None
    store_names: tuple[str, ...] = ()


def _invalid(account: str, message: str) -> ReconcileError:
    return ReconcileError("InvalidSpec", f"FastlyAccount {account}: {message}")


def parse_account(name: str, spec: Mapping[str, Any]) -> AccountPolicy:
    """Check a FastlyAccount's spec; raises ReconcileError (InvalidSpec) saying what to fix."""
    token = spec.get("apiTokenSecretRef")
    if not isinstance(token, Mapping):
        raise _invalid(name, "spec.apiTokenSecretRef is required: name the Secret, in the operator's namespace")
    secret = token.get("name")
    if not isinstance(secret, str) or len(secret) > MAX_SECRET_NAME or not SECRET_NAME_PATTERN.match(secret):
        raise _invalid(name, "spec.apiTokenSecretRef.name must be a Secret name (a DNS-1123 subdomain)")
    key = token.get("key") or "token"
    if not isinstance(key, str) or not SECRET_KEY_PATTERN.match(key) or key in DOT_NAMES or len(key) > 253:
        raise _invalid(name, "spec.apiTokenSecretRef.key must be a Secret key (letters, digits, '-', '_', '.')")

    allowed = spec.get("allowedNamespaces") or {}
    if not isinstance(allowed, Mapping):
        raise _invalid(name, "spec.allowedNamespaces must be an object with names and/or selector")
    names = allowed.get("names") or []
    if not isinstance(names, Sequence) or isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise _invalid(name, "spec.allowedNamespaces.names must be a list of namespace names")
    selector = _selector(name, allowed["selector"]) if allowed.get("selector") is not None else None

    globs = spec.get("storeNames") or []
    if not isinstance(globs, Sequence) or isinstance(globs, str) or not all(isinstance(g, str) and g for g in globs):
        raise _invalid(name, "spec.storeNames must be a list of non-empty globs")
    return AccountPolicy(
        name=name,
        token_ref=SecretKeyRef(secret, key),
        names=frozenset(names),
        selector=selector,
        store_names=tuple(globs),
    )


def _selector(account: str, raw: Any) -> LabelSelector:
    where = "spec.allowedNamespaces.selector"
    if not isinstance(raw, Mapping):
        raise _invalid(account, f"{where} must be a label selector (matchLabels, matchExpressions)")
    labels = raw.get("matchLabels") or {}
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        raise _invalid(account, f"{where}.matchLabels must map label keys to string values")
    requirements: list[Requirement] = []
    for index, item in enumerate(raw.get("matchExpressions") or ()):
        here = f"{where}.matchExpressions[{index}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("key"), str) or not item["key"]:
            raise _invalid(account, f"{here}.key is required")
        operator = item.get("operator")
        if operator not in _OPERATORS:
            raise _invalid(account, f"{here}.operator {operator!r} is not one of {', '.join(_OPERATORS)}")
        values = item.get("values") or []
        if operator in ("In", "NotIn") and not values:
            raise _invalid(account, f"{here}: {operator} needs values")
        if operator in ("Exists", "DoesNotExist") and values:
            raise _invalid(account, f"{here}: {operator} takes no values")
        requirements.append(Requirement(item["key"], operator, frozenset(str(v) for v in values)))
    return LabelSelector(tuple(sorted((str(k), v) for k, v in labels.items())), tuple(requirements))


def namespace_refusal(
    policy: AccountPolicy, namespace: str, labels: Mapping[str, str] | None, *, selectors_evaluated: bool = True
) -> str | None:
    """Why `namespace` may not use the account, or None when it may.

    `labels` are the namespace's labels (None: unknown, e.g. the namespace is gone). Without
    `selectors_evaluated` (the operator serves listed namespaces and may not read Namespaces), only names count.
    """
    if namespace in policy.names:
        return None
    if policy.selector is not None and selectors_evaluated and labels is not None and policy.selector.matches(labels):
        return None
    rules: list[str] = []
    if policy.names:
        # Not the list itself: it would tell every refused tenant who the other tenants are.
        rules.append("spec.allowedNamespaces.names does not list it")
    if policy.selector is not None:
        if selectors_evaluated:
            rules.append(f"its labels do not match spec.allowedNamespaces.selector ({policy.selector.describe()})")
        else:
            rules.append(
                "spec.allowedNamespaces.selector is not evaluated when the operator serves listed namespaces "
                "(only names are)"
            )
    if not rules:
        rules.append("spec.allowedNamespaces allows no namespace")
    return (
        f"FastlyAccount {policy.name} does not allow namespace {namespace}: {'; '.join(rules)}. Ask the platform "
        f"team to allow it, or use another account"
    )


def store_name_refusal(policy: AccountPolicy, namespace: str, store_name: str) -> str | None:
    """Why `store_name` may not be used through the account from `namespace`, or None when it may."""
    if not policy.store_names:
        return None
    patterns = [glob.replace(NAMESPACE_PLACEHOLDER, namespace) for glob in policy.store_names]
    if any(fnmatch.fnmatchcase(store_name, pattern) for pattern in patterns):
        owner = _more_specific_namespace(policy, namespace, store_name)
        if owner is None:
            return None
        return (
            f"FastlyAccount {policy.name} does not allow the store name {store_name!r} from namespace {namespace}: "
            f"it also fits the store names of namespace {owner}, a longer name the account allows, and belongs to "
            "it. Choose a spec.name only this namespace's pattern fits (a new object: the name is immutable)"
        )
    shown = ", ".join(repr(pattern) for pattern in patterns)
    return (
        f"FastlyAccount {policy.name} does not allow the store name {store_name!r} from namespace {namespace}: it "
        f"matches none of spec.storeNames ({shown}). Choose a spec.name that matches (a new object: the name is "
        "immutable)"
    )


def _more_specific_namespace(policy: AccountPolicy, namespace: str, store_name: str) -> str | None:
    """Another namespace the account lists by name whose store-name patterns also fit `store_name` and that is
    more specific (longer): with `{namespace}-*`, `shop` must not take `shop-prod-db` from `shop-prod`."""
    for other in sorted(policy.names, key=len, reverse=True):
        if other == namespace or len(other) <= len(namespace):
            continue
        for glob in policy.store_names:
            if NAMESPACE_PLACEHOLDER in glob and fnmatch.fnmatchcase(
                store_name, glob.replace(NAMESPACE_PLACEHOLDER, other)
            ):
                return other
    return None


#: A namespace name: a DNS-1123 label.
_NAMESPACE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def longer_namespaces_fitting(policy: AccountPolicy, namespace: str, store_name: str) -> list[str]:
    """Namespace names longer than `namespace` whose store-name patterns would also fit `store_name`, longest
    first: the namespaces a selector might allow that the name may belong to. Found for globs with no wildcard
    before `{namespace}` (the name then fixes where a namespace starts)."""
    found: set[str] = set()
    for glob in policy.store_names:
        before, placeholder, _ = glob.partition(NAMESPACE_PLACEHOLDER)
        if not placeholder or any(char in before for char in "*?[") or not store_name.startswith(before):
            continue
        start = len(before)
        for end in range(start + len(namespace) + 1, len(store_name) + 1):
            other = store_name[start:end]
            if _NAMESPACE_NAME.match(other) and fnmatch.fnmatchcase(
                store_name, glob.replace(NAMESPACE_PLACEHOLDER, other)
            ):
                found.add(other)
    found.discard(namespace)
    return sorted(found, key=len, reverse=True)
