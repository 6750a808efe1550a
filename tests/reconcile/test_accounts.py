"""FastlySecretStores using a cluster-scoped FastlyAccount (spec.accountRef): the token comes from the operator's
namespace, the account's policy is checked first, and every refusal sends nothing to Fastly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from reconcile_support import (
    NAMESPACE,
    OPERATOR_NAMESPACE,
    TOKEN,
    DictSecrets,
    Marks,
    MemoryAccounts,
    MemoryOwners,
    account_view,
    view,
)

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.reconcile.conditions import find
from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.object import Environment, finalize_object, reconcile_object
from fastly_secret_store_operator.reconcile.store import DeleteAction

ACCOUNT_SECRET = "platform-fastly-token"


def ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    condition = find(status["conditions"], "Ready")
    assert condition is not None
    return condition


def stalled(status: Mapping[str, Any]) -> bool:
    condition = find(status["conditions"], "Stalled")
    return condition is not None and condition["status"] == "True"


@pytest.fixture
def accounts(secrets: DictSecrets) -> MemoryAccounts:
    """The FastlyAccount `platform`, allowing namespace shop, its token only in the operator's namespace."""
    del secrets.data[(NAMESPACE, "fastly-api-token")]  # tenants hold no token
    secrets.put(ACCOUNT_SECRET, namespace=OPERATOR_NAMESPACE, token=TOKEN)
    memory = MemoryAccounts()
    memory.specs["platform"] = {
        "apiTokenSecretRef": {"name": ACCOUNT_SECRET},
        "allowedNamespaces": {"names": [NAMESPACE]},
        "storeNames": ["{namespace}-*"],
    }
    return memory


@pytest.fixture
def account_env(env: Environment, accounts: MemoryAccounts) -> Environment:
    return replace(env, accounts=accounts)


async def test_an_allowed_object_creates_syncs_and_deletes_its_store_with_the_accounts_token(
    fastly: FastlyEmulator, account_env: Environment, secrets: DictSecrets
) -> None:
    secrets.put("stripe", key="value-canary")
    spec = {"name": "shop-checkout", "entries": [{"name": "K", "secretKeyRef": {"name": "stripe", "key": "key"}}]}
    result = await reconcile_object(account_view(spec), account_env, checkpoint=Marks())
    assert ready(result.status)["reason"] == "Synced"
    assert result.status["accountId"] == fastly.account_id()
    store = fastly.store_named("shop-checkout")
    assert store is not None
    assert fastly.secret_names(store.id) == ["K"]

    deleted = await finalize_object(account_view(spec, status=result.status), account_env)
    assert deleted.action is DeleteAction.DELETED
    assert fastly.store_named("shop-checkout") is None


@pytest.mark.parametrize(
    ("change", "reason", "fragments"),
    [
        (lambda a, o: a.specs.clear(), "AccountNotFound", ["FastlyAccount platform", "does not exist"]),
        (
            lambda a, o: a.specs["platform"]["allowedNamespaces"].update(names=["billing"]),
            "AccountNotAllowed",
            ["FastlyAccount platform does not allow namespace shop", "names does not list it"],
        ),
        (
            lambda a, o: a.specs["platform"].pop("allowedNamespaces"),
            "AccountNotAllowed",
            ["allows no namespace"],
        ),
        (
            lambda a, o: o.update(name="billing-checkout"),
            "StoreNameNotAllowed",
            ["store name 'billing-checkout'", "spec.storeNames ('shop-*')"],
        ),
        (
            lambda a, o: a.specs["platform"].update(apiTokenSecretRef={"name": "../x"}),
            "AccountInvalid",
            ["FastlyAccount platform", "apiTokenSecretRef.name"],
        ),
    ],
    ids=["no-account", "namespace-not-listed", "no-namespace-allowed", "store-name", "broken-account"],
)
async def test_a_refusal_names_the_account_and_rule_and_sends_nothing_to_fastly(
    fastly: FastlyEmulator, account_env: Environment, accounts: MemoryAccounts, change: Any, reason: str, fragments: Any
) -> None:
    spec: dict[str, Any] = {"name": "shop-checkout"}
    change(accounts, spec)
    result = await reconcile_object(account_view(spec), account_env, checkpoint=Marks())
    assert ready(result.status)["reason"] == reason
    assert stalled(result.status)
    message = ready(result.status)["message"]
    for fragment in fragments:
        assert fragment in message
    assert TOKEN not in message
    assert "Nothing was sent to Fastly" in message
    assert fastly.requests == [], "not one Fastly request for a refused object"
    assert [e.reason for e in result.events] == [reason]


async def test_a_selector_allows_namespaces_by_their_labels(
    fastly: FastlyEmulator, account_env: Environment, accounts: MemoryAccounts
) -> None:
    accounts.specs["platform"]["allowedNamespaces"] = {"selector": {"matchLabels": {"tenant": "true"}}}
    accounts.labels[NAMESPACE] = {"tenant": "false"}
    refused = await reconcile_object(account_view({"name": "shop-a"}), account_env, checkpoint=Marks())
    assert ready(refused.status)["reason"] == "AccountNotAllowed"
    assert "selector (tenant=true)" in ready(refused.status)["message"]
    assert fastly.requests == []

    accounts.labels[NAMESPACE] = {"tenant": "true"}
    allowed = await reconcile_object(account_view({"name": "shop-a"}), account_env, checkpoint=Marks())
    assert ready(allowed.status)["reason"] == "Synced"


async def test_listed_namespaces_need_no_namespace_read_and_namespaced_mode_ignores_selectors(
    fastly: FastlyEmulator, account_env: Environment, accounts: MemoryAccounts
) -> None:
    accounts.specs["platform"]["allowedNamespaces"]["selector"] = {"matchLabels": {"tenant": "true"}}
    result = await reconcile_object(account_view({"name": "shop-a"}), account_env, checkpoint=Marks())
    assert ready(result.status)["reason"] == "Synced"
    assert accounts.label_reads == []

    namespaced = MemoryAccounts(selectors_evaluated=False)
    namespaced.specs = accounts.specs
    namespaced.labels["billing"] = {"tenant": "true"}
    fastly.requests.clear()
    refused = await reconcile_object(
        account_view({"name": "billing-a"}, namespace="billing"),
        replace(account_env, accounts=namespaced),
        checkpoint=Marks(),
    )
    assert ready(refused.status)["reason"] == "AccountNotAllowed"
    assert "not evaluated when the operator serves listed namespaces" in ready(refused.status)["message"]
    assert namespaced.label_reads == []
    assert fastly.requests == []


async def test_a_namespace_removed_from_the_account_stops_and_its_store_stays_until_released(
    fastly: FastlyEmulator, account_env: Environment, accounts: MemoryAccounts
) -> None:
    spec = {"name": "shop-checkout"}
    created = await reconcile_object(account_view(spec), account_env, checkpoint=Marks())
    assert ready(created.status)["reason"] == "Synced"

    accounts.specs["platform"]["allowedNamespaces"] = {"names": ["billing"]}
    fastly.requests.clear()
    stopped = await reconcile_object(account_view(spec, status=created.status), account_env, checkpoint=Marks())
    assert ready(stopped.status)["reason"] == "AccountNotAllowed"
    assert stopped.status["id"] == created.status["id"], "the object still records its store"
    with pytest.raises(ReconcileError) as caught:
        await finalize_object(account_view(spec, status=stopped.status), account_env)
    assert caught.value.reason == "AccountNotAllowed"
    assert "deletionPolicy: Retain" in caught.value.message
    assert fastly.requests == []
    assert fastly.store_named("shop-checkout") is not None

    retained = await finalize_object(
        account_view({**spec, "deletionPolicy": "Retain"}, status=stopped.status), account_env
    )
    assert retained.action is DeleteAction.RETAINED
    assert fastly.store_named("shop-checkout") is not None


async def test_two_namespaces_through_one_account_cannot_share_a_store(
    fastly: FastlyEmulator, account_env: Environment, accounts: MemoryAccounts, owners: MemoryOwners
) -> None:
    accounts.specs["platform"] = {
        "apiTokenSecretRef": {"name": ACCOUNT_SECRET},
        "allowedNamespaces": {"names": [NAMESPACE, "billing"]},
    }
    first = account_view({"name": "shared"}, created="2026-01-01T00:00:00Z")
    second = account_view({"name": "shared"}, namespace="billing", created="2026-01-02T00:00:00Z")
    # Both are newcomers: the account, not their namespaces, decides that they compete.
    owners.observe(first)
    owners.observe(second)
    refused = await reconcile_object(second, account_env, checkpoint=Marks())
    assert ready(refused.status)["reason"] == "StoreInUse"
    assert "shop/checkout" in ready(refused.status)["message"]
    assert fastly.stores() == []


async def test_an_object_with_its_own_token_and_one_through_an_account_of_the_same_fastly_account_conflict(
    fastly: FastlyEmulator, account_env: Environment, owners: MemoryOwners, secrets: DictSecrets
) -> None:
    secrets.put("fastly-api-token", namespace="legacy", token=TOKEN)  # the same Fastly account, held by a tenant
    owner = view({"name": "shop-shared"}, name="legacy-owner", namespace="legacy")
    owned = await reconcile_object(owner, account_env, checkpoint=Marks())
    assert ready(owned.status)["reason"] == "Synced"
    owners.observe(replace(owner, status=owned.status))

    rival = account_view({"name": "shop-shared"}, created="2025-01-01T00:00:00Z")  # older, still refused
    owners.observe(rival)
    fastly.requests.clear()
    refused = await reconcile_object(rival, account_env, checkpoint=Marks())
    assert ready(refused.status)["reason"] == "StoreInUse"
    assert "legacy/legacy-owner" in ready(refused.status)["message"]
    assert [r for r in fastly.requests if r.method != "GET"] == []


@pytest.mark.parametrize(
    "spec",
    [
        {"apiTokenSecretRef": {"name": "fastly-api-token"}, "accountRef": {"name": "platform"}},
        {"accountRef": {"name": "../platform"}},
    ],
    ids=["both", "bad-name"],
)
async def test_a_spec_naming_both_or_a_bad_account_is_refused_before_any_request(
    fastly: FastlyEmulator, account_env: Environment, spec: dict[str, Any]
) -> None:
    obj = replace(account_view(), spec=spec)
    result = await reconcile_object(obj, account_env, checkpoint=Marks())
    assert ready(result.status)["reason"] == "InvalidSpec"
    assert "accountRef" in ready(result.status)["message"]
    assert fastly.requests == []


async def test_a_store_name_of_a_longer_selected_namespace_is_not_taken_by_its_prefix(
    fastly: FastlyEmulator, account_env: Environment, accounts: MemoryAccounts
) -> None:
    accounts.specs["platform"]["allowedNamespaces"] = {"selector": {"matchLabels": {"tenant": "true"}}}
    accounts.labels[NAMESPACE] = {"tenant": "true"}
    accounts.labels[f"{NAMESPACE}-prod"] = {"tenant": "true"}  # another tenant, selected by the same labels
    squatting = await reconcile_object(account_view({"name": f"{NAMESPACE}-prod-db"}), account_env, checkpoint=Marks())
    assert ready(squatting.status)["reason"] == "StoreNameNotAllowed"
    assert f"namespace {NAMESPACE}-prod" in ready(squatting.status)["message"]
    assert fastly.requests == []
    # A name no longer namespace may claim is fine; so is one whose longer namespace the account does not select.
    accounts.labels[f"{NAMESPACE}-prod"] = {"tenant": "false"}
    allowed = await reconcile_object(account_view({"name": f"{NAMESPACE}-prod-db"}), account_env, checkpoint=Marks())
    assert ready(allowed.status)["reason"] == "Synced"
