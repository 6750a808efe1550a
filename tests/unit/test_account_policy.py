"""A FastlyAccount's policy: which namespaces may use it (names, label selectors) and which store names
(globs with {namespace}); refusals name the account and the rule, never the token."""

from __future__ import annotations

from typing import Any

import pytest

from fastly_secret_store_operator.reconcile.account_policy import (
    AccountPolicy,
    longer_namespaces_fitting,
    namespace_refusal,
    parse_account,
    store_name_refusal,
)
from fastly_secret_store_operator.reconcile.errors import ReconcileError

TOKEN_SECRET = {"name": "fastly-api-token"}


def policy(**spec: Any) -> AccountPolicy:
    return parse_account("platform", {"apiTokenSecretRef": TOKEN_SECRET, **spec})


def test_the_token_reference_defaults_its_key() -> None:
    parsed = policy()
    assert (parsed.token_ref.secret, parsed.token_ref.key) == ("fastly-api-token", "token")


def test_listed_names_are_allowed_and_others_refused_with_the_rule() -> None:
    parsed = policy(allowedNamespaces={"names": ["shop", "billing"]})
    assert namespace_refusal(parsed, "shop", {}) is None
    assert namespace_refusal(parsed, "billing", None) is None
    refusal = namespace_refusal(parsed, "shopping", {})
    assert refusal is not None
    assert "FastlyAccount platform" in refusal
    assert "allowedNamespaces.names does not list it" in refusal
    assert "billing" not in refusal, "a refused tenant does not learn who the other tenants are"


def test_no_allowed_namespaces_allows_none() -> None:
    refusal = namespace_refusal(policy(), "shop", {"any": "label"})
    assert refusal is not None
    assert "allows no namespace" in refusal


@pytest.mark.parametrize(
    ("selector", "labels", "allowed"),
    [
        ({"matchLabels": {"tenant": "true"}}, {"tenant": "true"}, True),
        ({"matchLabels": {"tenant": "true"}}, {"tenant": "false"}, False),
        ({"matchLabels": {"tenant": "true"}}, {}, False),
        ({"matchLabels": {"tenant": "true", "tier": "a"}}, {"tenant": "true"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}, {"tier": "b"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}, {"tier": "c"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "c"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False),
        ({"matchExpressions": [{"key": "pci", "operator": "Exists"}]}, {"pci": ""}, True),
        ({"matchExpressions": [{"key": "pci", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "pci", "operator": "DoesNotExist"}]}, {}, True),
        ({"matchExpressions": [{"key": "pci", "operator": "DoesNotExist"}]}, {"pci": "1"}, False),
        (
            {"matchLabels": {"tenant": "true"}, "matchExpressions": [{"key": "pci", "operator": "DoesNotExist"}]},
            {"tenant": "true", "pci": "1"},
            False,
        ),
        ({}, {"whatever": "x"}, True),  # an empty selector matches every namespace, as in Kubernetes
    ],
)
def test_a_selector_on_namespace_labels(selector: dict[str, Any], labels: dict[str, str], allowed: bool) -> None:
    parsed = policy(allowedNamespaces={"selector": selector})
    refusal = namespace_refusal(parsed, "shop", labels)
    assert (refusal is None) is allowed
    if refusal is not None:
        assert "allowedNamespaces.selector" in refusal


def test_names_or_selector_either_allows() -> None:
    parsed = policy(allowedNamespaces={"names": ["shop"], "selector": {"matchLabels": {"tenant": "true"}}})
    assert namespace_refusal(parsed, "shop", {}) is None
    assert namespace_refusal(parsed, "billing", {"tenant": "true"}) is None
    refusal = namespace_refusal(parsed, "billing", {})
    assert refusal is not None
    assert "allowedNamespaces.names does not list it" in refusal
    assert "selector (tenant=true)" in refusal


def test_a_namespace_whose_labels_are_unknown_is_allowed_by_name_only() -> None:
    parsed = policy(allowedNamespaces={"selector": {}})
    assert namespace_refusal(parsed, "gone", None) is not None


def test_selectors_are_not_evaluated_in_namespaced_mode_and_the_message_says_so() -> None:
    parsed = policy(allowedNamespaces={"names": ["shop"], "selector": {"matchLabels": {"tenant": "true"}}})
    assert namespace_refusal(parsed, "shop", None, selectors_evaluated=False) is None
    refusal = namespace_refusal(parsed, "billing", {"tenant": "true"}, selectors_evaluated=False)
    assert refusal is not None
    assert "not evaluated when the operator serves listed namespaces" in refusal


@pytest.mark.parametrize(
    ("globs", "namespace", "store", "allowed"),
    [
        ([], "shop", "anything-at-all", True),
        (["{namespace}-*"], "shop", "shop-checkout", True),
        (["{namespace}-*"], "shop", "billing-checkout", False),
        (["{namespace}-*"], "shop", "shop", False),  # anchored: the '-' is required
        (["{namespace}-*"], "shop", "xshop-checkout", False),  # anchored at the start
        (["{namespace}"], "shop", "shop-checkout", False),  # anchored at the end
        (["{namespace}"], "shop", "shop", True),
        (["{namespace}.?"], "shop", "shop.1", True),
        (["{namespace}.?"], "shop", "shop.12", False),
        (["shared-[ab]"], "shop", "shared-b", True),
        (["shared-[ab]"], "shop", "shared-c", False),
        (["{namespace}-*", "common-*"], "billing", "common-keys", True),
        (["Shop-*"], "shop", "shop-x", False),  # case-sensitive, as Fastly names are
        (["{namespace}-{namespace}"], "a", "a-a", True),
    ],
)
def test_store_name_globs(globs: list[str], namespace: str, store: str, allowed: bool) -> None:
    refusal = store_name_refusal(policy(storeNames=globs), namespace, store)
    assert (refusal is None) is allowed
    if refusal is not None:
        assert "FastlyAccount platform" in refusal
        assert "spec.storeNames" in refusal
        assert f"'{globs[0].replace('{namespace}', namespace)}'" in refusal  # the glob as it applied


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({}, "apiTokenSecretRef is required"),
        ({"apiTokenSecretRef": {"name": "../other/secrets/x"}}, "apiTokenSecretRef.name"),
        ({"apiTokenSecretRef": {"name": "ok", "key": ".."}}, "apiTokenSecretRef.key"),
        (
            {
                "apiTokenSecretRef": TOKEN_SECRET,
                "allowedNamespaces": {"selector": {"matchExpressions": [{"key": "a"}]}},
            },
            "operator None is not one of",
        ),
        (
            {
                "apiTokenSecretRef": TOKEN_SECRET,
                "allowedNamespaces": {"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            },
            "In needs values",
        ),
        ({"apiTokenSecretRef": TOKEN_SECRET, "storeNames": "shop-*"}, "storeNames must be a list"),
    ],
)
def test_a_bad_account_spec_says_what_to_fix(spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ReconcileError) as caught:
        parse_account("platform", spec)
    assert caught.value.reason == "InvalidSpec"
    assert "FastlyAccount platform" in caught.value.message
    assert fragment in caught.value.message


def test_a_store_name_of_a_longer_listed_namespace_is_not_taken_by_its_prefix() -> None:
    shared = policy(allowedNamespaces={"names": ["shop", "shop-prod"]}, storeNames=["{namespace}-*"])
    refusal = store_name_refusal(shared, "shop", "shop-prod-db")
    assert refusal is not None
    assert "namespace shop-prod" in refusal
    assert store_name_refusal(shared, "shop-prod", "shop-prod-db") is None
    assert store_name_refusal(shared, "shop", "shop-cart") is None


def test_the_longer_namespaces_a_store_name_may_belong_to_are_found_from_the_name() -> None:
    shared = policy(
        allowedNamespaces={"names": ["shop"]}, storeNames=["{namespace}-*", "x.{namespace}.*", "*-{namespace}"]
    )
    assert longer_namespaces_fitting(shared, "shop", "shop-prod-eu-db") == ["shop-prod-eu", "shop-prod"]
    assert longer_namespaces_fitting(shared, "shop", "x.shop-prod.db") == ["shop-prod"]
    assert longer_namespaces_fitting(shared, "shop", "shop.db") == []
