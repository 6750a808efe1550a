"""Defects found by an adversarial review, each written to FAIL on the code it was found in (branch attack).

Real `run` subprocess against the Kubernetes and Fastly emulators of conftest.py (session-scoped). Each test
starts its own operator serving the namespaces it makes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from harness import GROUP, TOKEN, VERSION, Cluster, OperatorProcess, unique, wait_for

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator

SECOND_TOKEN = TOKEN + "-rotated"  # conftest's emulator: a second token of the same (default) Fastly account
ACCOUNTS = "fastlyaccounts"


@pytest.fixture
def start(cluster: Cluster, fastly: FastlyEmulator, tmp_path: Path) -> Iterator[Callable[[list[str]], OperatorProcess]]:
    started: list[OperatorProcess] = []

    def run(namespaces: list[str]) -> OperatorProcess:
        process = OperatorProcess(cluster.kubeconfig, fastly.url, namespaces, tmp_path / "operator.log")
        process.start()
        started.append(process)
        return process

    yield run
    for process in started:
        process.stop()
    if started:
        print("".join(started[0].logs().splitlines(keepends=True)[-150:]))


def _entry(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "secretKeyRef": {"name": secret, "key": "value"}}


def _wipe_status(cluster: Cluster, namespace: str, name: str) -> None:
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        "fastlysecretstores",
        name,
        [{"op": "replace", "path": "/status", "value": {}}],
        _content_type="application/json-patch+json",
    )


def test_a_wiped_owner_status_hands_its_store_to_another_namespace(
    cluster: Cluster, fastly: FastlyEmulator, start: Callable[[list[str]], OperatorProcess]
) -> None:
    """docs/security.md: a wiped status must not "hand a store to a second object". The owner's claim in the
    index drops to "newcomer" the moment the wipe is watched; newcomers of different token Secrets are never
    rivals (ownership.py _conflicts), and the wipe wakes the waiting rival at once (owners.py observed ->
    on_change), while the owner itself is not woken (a status change is no new generation) until its resync."""
    team_a, team_b = unique("team-a"), unique("team-b")
    for namespace, token in ((team_a, TOKEN), (team_b, SECOND_TOKEN)):
        cluster.ensure_namespace(namespace)
        cluster.put_secret(namespace, "fastly-api-token", token=token)
    cluster.put_secret(team_a, "source", value="owner-value")
    cluster.put_secret(team_b, "source", value="intruder-value")
    start([team_a, team_b])
    store_name = unique("shared")
    cluster.apply(
        team_a,
        "owner",
        {"apiTokenSecretRef": {"name": "fastly-api-token"}, "name": store_name, "entries": [_entry("VALUE", "source")]},
    )
    store_id = cluster.wait_ready(team_a, "owner")["status"]["id"]
    cluster.apply(
        team_b,
        "intruder",
        {
            "apiTokenSecretRef": {"name": "fastly-api-token"},
            "name": store_name,
            "deletionPolicy": "Delete",
            "entries": [_entry("VALUE", "source")],
        },
    )
    cluster.wait_reason(team_b, "intruder", "StoreInUse")

    _wipe_status(cluster, team_a, "owner")  # a bad day: a restore without status, a mistaken kubectl patch
    time.sleep(5)
    intruder = (cluster.condition(team_b, "intruder") or {}).get("reason")
    value = fastly.plaintext(store_id, "VALUE")
    # Deleting the intruder must not delete the owner's store.
    cluster.delete(team_b, "intruder")
    cluster.wait_gone(team_b, "intruder")
    still_there = fastly.store_named(store_name) is not None
    assert (intruder, value, still_there) == ("StoreInUse", b"owner-value", True)


def test_store_name_globs_with_namespace_do_not_separate_prefix_namespaces(
    cluster: Cluster, fastly: FastlyEmulator, start: Callable[[list[str]], OperatorProcess]
) -> None:
    """examples/multi-tenant.yaml and docs/install.md (sharding) present storeNames ["{namespace}-*"] as giving
    each namespace its own store names ("the shop team may only use stores named shop-…"). With namespaces
    `shop` and `shop-prod` both allowed, `shop` may take store names of `shop-prod`: it squats the name (the
    shop-prod object is refused StoreInUse for good)."""
    shop = unique("shop")
    shop_prod = f"{shop}-prod"
    operator_ns = unique("fsso")
    for namespace in (operator_ns, shop, shop_prod):
        cluster.ensure_namespace(namespace)
    cluster.put_secret(operator_ns, "platform-token", token=TOKEN)
    account = unique("platform")
    cluster.custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        ACCOUNTS,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FastlyAccount",
            "metadata": {"name": account},
            "spec": {
                "apiTokenSecretRef": {"name": "platform-token"},
                "allowedNamespaces": {"names": [shop, shop_prod]},
                "storeNames": ["{namespace}-*"],
            },
        },
    )
    start([operator_ns, shop, shop_prod])
    target = f"{shop_prod}-db"  # a name in shop-prod's space
    cluster.apply(shop, "squatter", {"accountRef": {"name": account}, "name": target})
    wait_for("the squatter's pass", lambda: cluster.condition(shop, "squatter"))
    reason = (cluster.condition(shop, "squatter") or {}).get("reason")
    for namespace, name in ((shop, "squatter"),):
        cluster.delete(namespace, name)
        cluster.wait_gone(namespace, name)
    cluster.custom.delete_cluster_custom_object(GROUP, VERSION, ACCOUNTS, account)
    assert reason == "StoreNameNotAllowed", f"namespace {shop} got {reason} for store name {target!r}"


def test_an_object_the_account_refuses_holds_the_account_deletion(
    cluster: Cluster, fastly: FastlyEmulator, start: Callable[[list[str]], OperatorProcess]
) -> None:
    """Issue 14: deletion of a FastlyAccount is held while objects *use* it. An object in a namespace the account
    never allowed (AccountNotAllowed, zero Fastly requests) counts as a user too (account_handlers.py
    every object naming the account held it), so any tenant who can create a FastlySecretStore can block the
    platform team's deletion of any FastlyAccount, and the account's condition publishes the tenant's object."""
    operator_ns, allowed, outsider = unique("fsso"), unique("allowed"), unique("outsider")
    for namespace in (operator_ns, allowed, outsider):
        cluster.ensure_namespace(namespace)
    cluster.put_secret(operator_ns, "platform-token", token=TOKEN)
    account = unique("platform")
    cluster.custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        ACCOUNTS,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FastlyAccount",
            "metadata": {"name": account},
            "spec": {"apiTokenSecretRef": {"name": "platform-token"}, "allowedNamespaces": {"names": [allowed]}},
        },
    )
    start([operator_ns, allowed, outsider])
    cluster.apply(outsider, "blocker", {"accountRef": {"name": account}, "name": "anything"})
    cluster.wait_reason(outsider, "blocker", "AccountNotAllowed")
    cluster.custom.delete_cluster_custom_object(GROUP, VERSION, ACCOUNTS, account)

    def gone() -> bool:
        try:
            cluster.custom.get_cluster_custom_object(GROUP, VERSION, ACCOUNTS, account)
        except kubernetes.client.ApiException as error:
            return error.status == 404
        return False

    try:
        released = bool(wait_for("the account is deleted", gone, timeout=15))
    except AssertionError:
        released = False
    cluster.delete(outsider, "blocker")
    cluster.wait_gone(outsider, "blocker")
    assert released, "a FastlySecretStore the account refuses held the FastlyAccount's deletion"
