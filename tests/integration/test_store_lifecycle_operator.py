"""The store lifecycle with the real operator (Kopf, real HTTP) between a cluster and the Fastly emulator."""

from __future__ import annotations

from typing import Any

import pytest
from harness import NAMESPACE, TOKEN, Cluster, OperatorProcess, unique, wait_for

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator

pytestmark = pytest.mark.usefixtures("operator")


def spec(**extra: Any) -> dict[str, Any]:
    return {"apiTokenSecretRef": {"name": "fastly-api-token"}, **extra}


def test_create_records_the_store_and_delete_removes_it(cluster: Cluster, fastly: FastlyEmulator) -> None:
    name = unique("create")
    cluster.apply(NAMESPACE, name, spec(name=name + "-prod"))
    body = cluster.wait_ready(NAMESPACE, name)

    store = fastly.store_named(name + "-prod")
    assert store is not None
    status = body["status"]
    assert status["id"] == store.id
    assert status["createdAt"] == store.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status["adopted"] is False
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert "fastly.operator.dev/finalizer" in body["metadata"]["finalizers"]
    # Nothing but the finalizer and the status: no annotation for GitOps tools to see as drift.
    annotations = body["metadata"].get("annotations", {})
    assert not [key for key in annotations if key.startswith(("kopf.zalando.org", "fastly.operator.dev/"))]
    reasons = wait_for("a Created event", lambda: [e["reason"] for e in cluster.events(NAMESPACE) if name in str(e)])
    assert "Created" in reasons

    cluster.delete(NAMESPACE, name)
    cluster.wait_gone(NAMESPACE, name)
    assert fastly.store_named(name + "-prod") is None


def test_retain_keeps_the_store(cluster: Cluster, fastly: FastlyEmulator) -> None:
    name = unique("retain")
    cluster.apply(NAMESPACE, name, spec(deletionPolicy="Retain"))
    cluster.wait_ready(NAMESPACE, name)
    cluster.delete(NAMESPACE, name)
    cluster.wait_gone(NAMESPACE, name)
    assert fastly.store_named(name) is not None


@pytest.mark.parametrize("policy", ["AdoptOrCreate", "Adopt"])
def test_adopts_an_existing_store(cluster: Cluster, fastly: FastlyEmulator, policy: str) -> None:
    name = unique("adopt")
    existing = fastly.create_store_direct(name)
    cluster.apply(NAMESPACE, name, spec(adoptionPolicy=policy))
    status = cluster.wait_ready(NAMESPACE, name)["status"]
    assert status["id"] == existing.id
    assert status["adopted"] is True
    assert [s.id for s in fastly.stores() if s.name == name] == [existing.id]


def test_adopt_waits_for_a_missing_store(cluster: Cluster, fastly: FastlyEmulator) -> None:
    name = unique("adopt-missing")
    cluster.apply(NAMESPACE, name, spec(adoptionPolicy="Adopt"))
    ready = cluster.wait_reason(NAMESPACE, name, "StoreNotFound")
    assert ready["status"] == "False"
    assert cluster.condition(NAMESPACE, name, "Stalled")["status"] == "True"  # type: ignore[index]
    assert fastly.store_named(name) is None
    cluster.delete(NAMESPACE, name)
    cluster.wait_gone(NAMESPACE, name)


def test_must_create_refuses_an_existing_store(cluster: Cluster, fastly: FastlyEmulator) -> None:
    name = unique("must")
    existing = fastly.create_store_direct(name)
    cluster.apply(NAMESPACE, name, spec(adoptionPolicy="MustCreate"))
    ready = cluster.wait_reason(NAMESPACE, name, "StoreAlreadyExists")
    assert existing.id in ready["message"]
    # Nothing was adopted, so deleting the object leaves the foreign store alone.
    cluster.delete(NAMESPACE, name)
    cluster.wait_gone(NAMESPACE, name)
    assert fastly.store_named(name) is not None


def test_missing_token_then_created(cluster: Cluster, fastly: FastlyEmulator) -> None:
    name, secret = unique("token-later"), unique("token")
    cluster.apply(NAMESPACE, name, {"apiTokenSecretRef": {"name": secret}})
    ready = cluster.wait_reason(NAMESPACE, name, "CredentialsNotFound")
    assert f"{NAMESPACE}/{secret}" in ready["message"]
    cluster.put_secret(NAMESPACE, secret, token=TOKEN)
    cluster.wait_ready(NAMESPACE, name, timeout=10)  # reacts to the Secret, not to a resync
    assert fastly.store_named(name) is not None


def test_token_rotated(cluster: Cluster, fastly: FastlyEmulator) -> None:
    name, secret = unique("rotate"), unique("token")
    cluster.put_secret(NAMESPACE, secret, token=TOKEN)
    cluster.apply(NAMESPACE, name, {"apiTokenSecretRef": {"name": secret}})
    first = cluster.wait_ready(NAMESPACE, name)["status"]["id"]
    cluster.put_secret(NAMESPACE, secret, token="revoked-token")
    cluster.wait_reason(NAMESPACE, name, "Unauthorized")
    cluster.put_secret(NAMESPACE, secret, token=TOKEN + "-rotated")
    assert cluster.wait_reason(NAMESPACE, name, "Synced")["status"] == "True"
    assert cluster.get(NAMESPACE, name)["status"]["id"] == first  # type: ignore[index]


def test_store_deleted_out_of_band_is_recreated(cluster: Cluster, fastly: FastlyEmulator) -> None:
    name = unique("drift")
    cluster.apply(NAMESPACE, name, spec(resyncInterval="1s"))
    first = cluster.wait_ready(NAMESPACE, name)["status"]["id"]
    fastly.delete_store_direct(first)
    wait_for("the store is recreated", lambda: (s := fastly.store_named(name)) is not None and s.id != first)
    status = wait_for(
        "status records the new store",
        lambda: (b := cluster.get(NAMESPACE, name)) and b["status"]["id"] != first and b["status"],
    )
    assert status["id"] == fastly.store_named(name).id  # type: ignore[union-attr]


def test_invalid_spec_is_refused_by_the_api_before_any_fastly_request(cluster: Cluster, fastly: FastlyEmulator) -> None:
    import kubernetes

    name = unique("bad")
    with pytest.raises(kubernetes.client.ApiException) as refused:
        cluster.apply(NAMESPACE, name, spec(name="not a valid name!"))
    assert refused.value.status == 422
    assert "spec.name" in str(refused.value.body)
    # Refused at the door: no object exists for the operator to act on, so nothing reached Fastly.
    assert cluster.get(NAMESPACE, name) is None
    assert fastly.store_named("not a valid name!") is None


def test_spec_name_is_immutable(cluster: Cluster, fastly: FastlyEmulator) -> None:
    import kubernetes

    name = unique("immutable")
    cluster.apply(NAMESPACE, name, spec())
    cluster.wait_ready(NAMESPACE, name)
    with pytest.raises(kubernetes.client.ApiException) as refused:
        cluster.patch_spec(NAMESPACE, name, {"name": "another-store"})
    assert refused.value.status == 422
    assert "immutable" in str(refused.value.body)


def test_token_deleted_with_the_object_still_deletes_the_store(cluster: Cluster, fastly: FastlyEmulator) -> None:
    """As when a namespace is deleted: the token Secret may go before the object. The deletion still completes."""
    name, secret = unique("ns-delete"), unique("token")
    cluster.put_secret(NAMESPACE, secret, token=TOKEN)
    cluster.apply(NAMESPACE, name, {"apiTokenSecretRef": {"name": secret}})
    cluster.wait_ready(NAMESPACE, name)
    cluster.delete_secret(NAMESPACE, secret)
    cluster.delete(NAMESPACE, name)
    cluster.wait_gone(NAMESPACE, name)
    assert fastly.store_named(name) is None


def test_delete_without_token_says_how_to_release(
    cluster: Cluster, fastly: FastlyEmulator, operator: OperatorProcess
) -> None:
    name, secret = unique("stuck"), unique("token")
    cluster.put_secret(NAMESPACE, secret, token=TOKEN)
    cluster.apply(NAMESPACE, name, {"apiTokenSecretRef": {"name": secret}})
    cluster.wait_ready(NAMESPACE, name)
    # The operator restarts without the token ever coming back: it has no way to reach Fastly for this store.
    operator.stop()
    cluster.delete_secret(NAMESPACE, secret)
    cluster.delete(NAMESPACE, name)
    operator.start()
    ready = wait_for(
        "the condition says how to release the object",
        lambda: (c := cluster.condition(NAMESPACE, name)) and "deletionPolicy: Retain" in c["message"] and c,
    )
    assert ready["reason"] == "CredentialsNotFound"
    assert "cannot delete the Fastly store" in ready["message"]
    assert cluster.get(NAMESPACE, name) is not None, "the finalizer holds the object until the store is handled"
    cluster.patch_spec(NAMESPACE, name, {"deletionPolicy": "Retain"})
    cluster.wait_gone(NAMESPACE, name, timeout=30)
    assert fastly.store_named(name) is not None


def test_token_never_reaches_logs_events_or_objects(
    cluster: Cluster, fastly: FastlyEmulator, operator: OperatorProcess
) -> None:
    name = unique("canary")
    cluster.apply(NAMESPACE, name, spec())
    body = cluster.wait_ready(NAMESPACE, name)
    for where, text in {
        "logs": operator.logs(),
        "events": str(cluster.events(NAMESPACE)),
        "object": str(body),
    }.items():
        assert TOKEN not in text, where
