"""FastlyAccount with the real operator (`run` in a subprocess): tenants use the platform's token without holding
it; the account's policy refuses other namespaces and store names with zero Fastly requests; an edit of the
account is applied within seconds; deleting an account in use waits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from harness import GROUP, TOKEN, VERSION, Cluster, OperatorProcess, unique, wait_for

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator

OPERATOR_NS = "fastly-system"
TENANT_A, TENANT_B = "tenant-a", "tenant-b"
ACCOUNT_SECRET = "platform-fastly-token"
ACCOUNTS = "fastlyaccounts"
#: Well below the operator's 5-minute retry of a stalled object: meeting it proves a wake-up, not a retry.
WITHIN_SECONDS = 15.0


@pytest.fixture(scope="module")
def account_operator(
    cluster: Cluster, fastly: FastlyEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    for namespace in (OPERATOR_NS, TENANT_A, TENANT_B):
        cluster.ensure_namespace(namespace)
    cluster.put_secret(OPERATOR_NS, ACCOUNT_SECRET, token=TOKEN)  # only the operator's namespace holds it
    process = OperatorProcess(
        cluster.kubeconfig,
        fastly.url,
        [OPERATOR_NS, TENANT_A, TENANT_B],
        tmp_path_factory.mktemp("operator") / "operator.log",
    )
    process.start()
    yield process
    process.stop()
    assert TOKEN not in process.logs()


def create_account(cluster: Cluster, name: str, **spec: Any) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FastlyAccount",
        "metadata": {"name": name},
        "spec": {"apiTokenSecretRef": {"name": ACCOUNT_SECRET}, **spec},
    }
    cluster.custom.create_cluster_custom_object(GROUP, VERSION, ACCOUNTS, body)


def get_account(cluster: Cluster, name: str) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = cluster.custom.get_cluster_custom_object(GROUP, VERSION, ACCOUNTS, name)
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return body


def patch_account(cluster: Cluster, name: str, spec: dict[str, Any]) -> None:
    cluster.custom.patch_cluster_custom_object(
        GROUP, VERSION, ACCOUNTS, name, {"spec": spec}, _content_type="application/merge-patch+json"
    )


def account_ready(cluster: Cluster, name: str) -> dict[str, Any] | None:
    body = get_account(cluster, name) or {}
    for condition in body.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready" and condition["status"] == "True":
            return body
    return None


def store_spec(account: str, **extra: Any) -> dict[str, Any]:
    return {"accountRef": {"name": account}, **extra}


def fastly_calls_since(fastly: FastlyEmulator, start: int) -> list[str]:
    """Fastly requests made since `start`, except the account checks' GET /tokens/self."""
    return [f"{r.method} {r.path}" for r in fastly.requests[start:] if not r.path.endswith("/tokens/self")]


@pytest.fixture
def account(cluster: Cluster, account_operator: OperatorProcess) -> Iterator[str]:
    """A FastlyAccount allowing tenant-a, for store names "{namespace}-*"; deleted (and awaited) after the test."""
    name = unique("platform")
    create_account(cluster, name, allowedNamespaces={"names": [TENANT_A]}, storeNames=["{namespace}-*"])
    yield name
    cluster.custom.delete_cluster_custom_object(GROUP, VERSION, ACCOUNTS, name)
    wait_for(f"FastlyAccount {name} is gone", lambda: get_account(cluster, name) is None, timeout=30)


def test_an_allowed_object_works_without_holding_the_token(
    cluster: Cluster, fastly: FastlyEmulator, account: str
) -> None:
    body = wait_for(f"FastlyAccount {account} is Ready", lambda: account_ready(cluster, account))
    assert body["status"]["accountId"] == fastly.account_id()
    printed = cluster.custom.api_client.sanitize_for_serialization(body)
    assert TOKEN not in str(printed)

    name = unique("checkout")
    store_name = f"{TENANT_A}-{name}"
    cluster.put_secret(TENANT_A, "stripe", key="value-canary")
    entries = [{"name": "STRIPE", "secretKeyRef": {"name": "stripe", "key": "key"}}]
    cluster.apply(TENANT_A, name, store_spec(account, name=store_name, entries=entries))
    status = cluster.wait_ready(TENANT_A, name)["status"]
    store = fastly.store_named(store_name)
    assert store is not None
    assert status["id"] == store.id
    assert status["accountId"] == fastly.account_id()
    assert fastly.secret_names(store.id) == ["STRIPE"]

    cluster.delete(TENANT_A, name)
    cluster.wait_gone(TENANT_A, name)
    assert fastly.store_named(store_name) is None


@pytest.mark.parametrize(
    ("namespace", "store_name", "reason", "fragment"),
    [
        (TENANT_B, f"{TENANT_B}-x", "AccountNotAllowed", "does not allow namespace tenant-b"),
        (TENANT_A, "someone-elses-store", "StoreNameNotAllowed", "does not allow the store name"),
    ],
    ids=["namespace", "store-name"],
)
def test_a_refused_object_makes_zero_fastly_requests(
    cluster: Cluster, fastly: FastlyEmulator, account: str, namespace: str, store_name: str, reason: str, fragment: str
) -> None:
    wait_for(f"FastlyAccount {account} is Ready", lambda: account_ready(cluster, account))
    name = unique("refused")
    start = len(fastly.requests)
    cluster.apply(namespace, name, store_spec(account, name=store_name))
    ready = cluster.wait_reason(namespace, name, reason)
    assert fragment in ready["message"]
    assert f"FastlyAccount {account}" in ready["message"]
    assert TOKEN not in ready["message"]
    assert cluster.condition(namespace, name, "Stalled")["status"] == "True"  # type: ignore[index]
    cluster.delete(namespace, name)
    cluster.wait_gone(namespace, name)
    assert fastly_calls_since(fastly, start) == []
    assert fastly.store_named(store_name) is None


def test_editing_the_account_re_evaluates_its_objects_within_seconds(
    cluster: Cluster, fastly: FastlyEmulator, account: str
) -> None:
    # An object of a namespace not (yet) allowed waits, Stalled.
    waiting = unique("later")
    cluster.apply(TENANT_B, waiting, store_spec(account, name=f"{TENANT_B}-{waiting}"))
    cluster.wait_reason(TENANT_B, waiting, "AccountNotAllowed")
    # Allowed by an edit: it proceeds within seconds, not at the 5-minute stalled retry.
    patch_account(cluster, account, {"allowedNamespaces": {"names": [TENANT_A, TENANT_B]}})
    cluster.wait_ready(TENANT_B, waiting, timeout=WITHIN_SECONDS)
    store = fastly.store_named(f"{TENANT_B}-{waiting}")
    assert store is not None

    # Removed again: the object stops, and its store stays in Fastly.
    patch_account(cluster, account, {"allowedNamespaces": {"names": [TENANT_A]}})
    stopped = cluster.wait_reason(TENANT_B, waiting, "AccountNotAllowed", timeout=WITHIN_SECONDS)
    assert "does not allow namespace tenant-b" in stopped["message"]
    assert fastly.store_named(f"{TENANT_B}-{waiting}") is not None

    # Deleting it now deletes nothing: it stays, saying how to release it.
    start = len(fastly.requests)
    cluster.delete(TENANT_B, waiting)
    held = wait_for(
        "the deletion to say how to release the object",
        lambda: (c := cluster.condition(TENANT_B, waiting)) and "deletionPolicy: Retain" in c["message"] and c,
    )
    assert held["reason"] == "AccountNotAllowed"
    assert cluster.get(TENANT_B, waiting) is not None
    cluster.patch_spec(TENANT_B, waiting, {"deletionPolicy": "Retain"})
    cluster.wait_gone(TENANT_B, waiting)
    assert fastly.store_named(f"{TENANT_B}-{waiting}") is not None
    assert fastly_calls_since(fastly, start) == []


def test_an_account_created_later_is_used_within_seconds(cluster: Cluster, fastly: FastlyEmulator) -> None:
    account = unique("later-account")
    name = unique("early")
    cluster.apply(TENANT_A, name, store_spec(account, name=f"{TENANT_A}-{name}"))
    missing = cluster.wait_reason(TENANT_A, name, "AccountNotFound")
    assert f"FastlyAccount {account}" in missing["message"]
    create_account(cluster, account, allowedNamespaces={"names": [TENANT_A]})
    cluster.wait_ready(TENANT_A, name, timeout=WITHIN_SECONDS)
    cluster.delete(TENANT_A, name)
    cluster.wait_gone(TENANT_A, name)
    cluster.custom.delete_cluster_custom_object(GROUP, VERSION, ACCOUNTS, account)
    wait_for(f"FastlyAccount {account} is gone", lambda: get_account(cluster, account) is None)


def test_deleting_an_account_in_use_waits_for_its_objects(cluster: Cluster, fastly: FastlyEmulator) -> None:
    account = unique("busy")
    create_account(cluster, account, allowedNamespaces={"names": [TENANT_A]})
    users = [unique("user") for _ in range(2)]
    for user in users:
        cluster.apply(TENANT_A, user, store_spec(account, name=f"{TENANT_A}-{user}"))
        cluster.wait_ready(TENANT_A, user)

    cluster.custom.delete_cluster_custom_object(GROUP, VERSION, ACCOUNTS, account)

    def held() -> dict[str, Any] | None:
        body = get_account(cluster, account) or {}
        for condition in body.get("status", {}).get("conditions", []):
            if condition["type"] == "Ready" and condition["reason"] == "InUse":
                return dict(condition)
        return None

    condition = wait_for("the deletion to be held", held)
    assert "2 FastlySecretStore(s) use it" in condition["message"]
    for user in users:
        assert f"{TENANT_A}/{user}" in condition["message"]
    assert get_account(cluster, account) is not None

    # The objects can still be deleted (with their stores) while the account waits; then the account goes.
    for user in users:
        cluster.delete(TENANT_A, user)
    for user in users:
        cluster.wait_gone(TENANT_A, user)
        assert fastly.store_named(f"{TENANT_A}-{user}") is None
    wait_for(f"FastlyAccount {account} is gone", lambda: get_account(cluster, account) is None)
