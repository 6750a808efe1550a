"""The conditions read as kstatus (Flux health checks, `kubectl wait`, cli-utils) reads them.

kstatus's generic rules for a custom resource (cli-utils, pkg/kstatus/status), in order: deletionTimestamp →
Terminating; metadata.generation ≠ status.observedGeneration → InProgress, a check skipped when the status has no
observedGeneration at all; Reconciling=True → InProgress; Stalled=True → Failed; anything else → Current. So an
object with no status yet would read Current: the CRD defaults status to {observedGeneration: -1} (as Flux's CRDs
do) so that a new object reads InProgress until the operator has reconciled it, also while the operator is down.
"""

from __future__ import annotations

from typing import Any

from reconcile_support import NAMESPACE, DictSecrets, Marks, view

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.emulators.kubernetes import CORE_RESOURCES, ObjectStore, load_crd_resources
from fastly_secret_store_operator.emulators.kubernetes.server import project_crds
from fastly_secret_store_operator.reconcile.object import Environment, reconcile_object


def kstatus(obj: dict[str, Any]) -> str:
    metadata, status = obj.get("metadata", {}), obj.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return "Terminating"
    observed = status.get("observedGeneration", metadata.get("generation"))  # absent: the check is skipped
    if observed != metadata.get("generation"):
        return "InProgress"
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    if conditions.get("Reconciling", {}).get("status") == "True":
        return "InProgress"
    if conditions.get("Stalled", {}).get("status") == "True":
        return "Failed"
    return "Current"


def as_object(status: dict[str, Any], generation: int) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "status": status}


def api_server() -> ObjectStore:
    """The Kubernetes emulator's object store, serving this project's CRD as a real API server would."""
    resources = [resource for path in project_crds() for resource in load_crd_resources(path)]
    return ObjectStore([*CORE_RESOURCES, *resources], namespaces=[NAMESPACE])


NEW_OBJECT = {
    "apiVersion": "fastly.operator.dev/v1alpha1",
    "kind": "FastlySecretStore",
    "metadata": {"name": "checkout"},
    "spec": {"apiTokenSecretRef": {"name": "fastly-api-token"}},
}


async def test_synced_is_current(fastly: FastlyEmulator, env: Environment) -> None:
    result = await reconcile_object(view(generation=4), env, checkpoint=Marks())
    assert kstatus(as_object(result.status, 4)) == "Current"
    # A newer spec not yet reconciled is InProgress, whatever the conditions say.
    assert kstatus(as_object(result.status, 5)) == "InProgress"


async def test_a_failure_a_person_must_fix_is_failed(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    del secrets.data[(NAMESPACE, "fastly-api-token")]
    result = await reconcile_object(view(generation=2), env, checkpoint=Marks())
    assert kstatus(as_object(result.status, 2)) == "Failed"


async def test_a_failure_that_heals_on_its_own_is_in_progress(fastly: FastlyEmulator, env: Environment) -> None:
    fastly.faults.add(kind="status", status=503, count=100)
    result = await reconcile_object(view(generation=2), env, checkpoint=Marks())
    assert kstatus(as_object(result.status, 2)) == "InProgress"


def test_without_the_crd_default_a_new_object_would_read_current() -> None:
    """Why the CRD defaults status: kstatus takes an object with no status at all for Current."""
    assert kstatus({"metadata": {"generation": 1}}) == "Current"


def test_a_freshly_created_object_is_in_progress_not_current() -> None:
    """Created while the operator is down (or queued behind others), a new object is InProgress, not Current."""
    server = api_server()
    created = server.create("fastlysecretstores", NEW_OBJECT, namespace=NAMESPACE)
    assert created["status"] == {"observedGeneration": -1}
    assert kstatus(created) == "InProgress"
    # A spec change before the operator ever ran is still InProgress.
    server.patch("fastlysecretstores", NAMESPACE, "checkout", {"spec": {"pruneEntries": True}})
    assert kstatus(server.get("fastlysecretstores", NAMESPACE, "checkout")) == "InProgress"


async def test_the_operators_status_is_accepted_by_the_crd_and_reads_current(
    fastly: FastlyEmulator, env: Environment
) -> None:
    """The status a pass writes passes the CRD's schema (metav1.Condition shape, bounds), and only then is the
    object Current."""
    server = api_server()
    created = server.create("fastlysecretstores", NEW_OBJECT, namespace=NAMESPACE)
    generation = created["metadata"]["generation"]
    result = await reconcile_object(view(generation=generation), env, checkpoint=Marks())
    written = server.patch("fastlysecretstores", NAMESPACE, "checkout", {"status": result.status}, subresource="status")
    assert written["status"]["observedGeneration"] == generation
    assert written["status"]["conditions"] == result.status["conditions"]  # nothing pruned
    assert kstatus(written) == "Current"
