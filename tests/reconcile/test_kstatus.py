"""The conditions read as kstatus (Flux health checks, `kubectl wait`, cli-utils) reads them.

kstatus's generic rules, in order: deletionTimestamp → Terminating; metadata.generation ≠
status.observedGeneration → InProgress; Reconciling=True → InProgress; Stalled=True → Failed; Ready=True →
Current; Ready=False → InProgress.
"""

from __future__ import annotations

from typing import Any

from reconcile_support import NAMESPACE, DictSecrets, Marks, view

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.reconcile.object import Environment, reconcile_object


def kstatus(obj: dict[str, Any]) -> str:
    metadata, status = obj.get("metadata", {}), obj.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return "Terminating"
    if status.get("observedGeneration") != metadata.get("generation"):
        return "InProgress"
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    if conditions.get("Reconciling", {}).get("status") == "True":
        return "InProgress"
    if conditions.get("Stalled", {}).get("status") == "True":
        return "Failed"
    ready = conditions.get("Ready", {}).get("status")
    return "Current" if ready == "True" else "InProgress"


def as_object(status: dict[str, Any], generation: int) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "status": status}


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


def test_no_status_yet_is_in_progress() -> None:
    assert kstatus({"metadata": {"generation": 1}}) == "InProgress"
