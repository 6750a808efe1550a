"""`run --leader-elect` with two operator processes: one leads and reconciles, the other waits; a SIGKILL of
the leader hands over to the standby within the lease duration, with no store created twice and no entry
written twice; a clean stop releases the Lease; a leader whose Lease is taken exits 1."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from harness import NAMESPACE, TOKEN, Cluster, OperatorProcess, unique, wait_for

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.emulators.fastly.api import Route

LEASE = "fastly-secret-store-operator"
# Short timings keep the test fast: a standby takes over 3 s after the last renewal it saw.
KNOBS = (
    "--leader-elect",
    "--leader-elect-lease-duration",
    "3",
    "--leader-elect-renew-deadline",
    "2",
    "--leader-elect-retry-period",
    "0.5",
)
TAKEOVER_BOUND = 30.0  # what users are promised with the default timings; the short ones take about 4 s
WRITES = {Route.CREATE_SECRET.value, Route.PUT_SECRET.value, Route.RECREATE_SECRET.value}


class Replicas:
    """Operator processes started with --leader-elect, each with its own POD_NAME."""

    def __init__(self, cluster: Cluster, fastly: FastlyEmulator, logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.cluster, self.fastly, self.logs, self.monkeypatch = cluster, fastly, logs, monkeypatch
        self.started: list[OperatorProcess] = []

    def start(self, pod: str) -> OperatorProcess:
        self.monkeypatch.setenv("POD_NAME", pod)
        process = OperatorProcess(
            self.cluster.kubeconfig, self.fastly.url, [NAMESPACE], self.logs / f"{pod}.log", KNOBS
        )
        process.start()
        self.started.append(process)
        return process


@pytest.fixture
def replicas(
    cluster: Cluster, fastly: FastlyEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Replicas]:
    cluster.ensure_namespace(NAMESPACE)
    cluster.put_secret(NAMESPACE, "fastly-api-token", token=TOKEN)
    running = Replicas(cluster, fastly, tmp_path, monkeypatch)
    yield running
    for process in running.started:
        process.kill()
    leases(cluster).delete_namespaced_lease(LEASE, NAMESPACE)


def leases(cluster: Cluster) -> Any:
    return kubernetes.client.CoordinationV1Api(cluster.core.api_client)


def holder(cluster: Cluster) -> str:
    try:
        lease = leases(cluster).read_namespaced_lease(LEASE, NAMESPACE)
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return ""
        raise
    return str(lease.spec.holder_identity or "")


def wait_holder(cluster: Cluster, pod: str, timeout: float = 20.0) -> str:
    return wait_for(
        f"{pod} holds the lease", lambda: holder(cluster).startswith(f"{pod}_") and holder(cluster), timeout
    )


def with_two_entries(cluster: Cluster, name: str) -> dict[str, Any]:
    cluster.put_secret(NAMESPACE, name, first=f"{name}-1", second=f"{name}-2")
    return {
        "apiTokenSecretRef": {"name": "fastly-api-token"},
        "entries": [
            {"name": "FIRST", "secretKeyRef": {"name": name, "key": "first"}},
            {"name": "SECOND", "secretKeyRef": {"name": name, "key": "second"}},
        ],
    }


def test_one_leader_reconciles_and_a_standby_takes_over_after_a_sigkill(
    cluster: Cluster, fastly: FastlyEmulator, replicas: Replicas
) -> None:
    requests_before = len(fastly.requests)
    leader = replicas.start("op-a")
    first_identity = wait_holder(cluster, "op-a")
    standby = replicas.start("op-b")
    wait_for("the standby says it waits, and for whom", lambda: f"is held by {first_identity}" in standby.logs())

    before = unique("ha-before")
    cluster.apply(NAMESPACE, before, with_two_entries(cluster, before))
    store_before = cluster.wait_ready(NAMESPACE, before)["status"]["id"]
    assert before not in standby.logs()  # the standby never touched it: no Fastly call, no status write

    leader.kill()  # SIGKILL: the Lease is not released
    killed_at = time.monotonic()
    after = unique("ha-after")
    cluster.apply(NAMESPACE, after, with_two_entries(cluster, after))
    wait_holder(cluster, "op-b", timeout=TAKEOVER_BOUND)
    took_over = time.monotonic() - killed_at
    store_after = cluster.wait_ready(NAMESPACE, after, timeout=TAKEOVER_BOUND)["status"]["id"]
    assert took_over < TAKEOVER_BOUND
    assert "Leading: acquired the lease" in standby.logs()

    # The new leader resumed the first object too, and found nothing to write.
    cluster.wait_ready(NAMESPACE, before)
    wait_for("the new leader resumed the first object", lambda: before in standby.logs())
    assert [store.id for store in fastly.stores_named(before)] == [store_before]
    assert [store.id for store in fastly.stores_named(after)] == [store_after]
    requests = fastly.requests[requests_before:]
    assert sum(1 for request in requests if request.route == Route.CREATE_STORE.value) == 2
    writes = collections.Counter(
        store_id
        for request in requests
        if request.route in WRITES
        for store_id in (store_before, store_after)
        if store_id in request.path
    )
    assert writes == {store_before: 2, store_after: 2}  # two entries each, each written once

    # A clean stop releases the Lease: no standby would have to wait out its duration.
    standby.stop()
    assert not holder(cluster), standby.logs()[-4000:]
    for name in (before, after):
        cluster.custom.patch_namespaced_custom_object(
            "fastly.operator.dev",
            "v1alpha1",
            NAMESPACE,
            "fastlysecretstores",
            name,
            {"metadata": {"finalizers": None}},
            _content_type="application/merge-patch+json",
        )
        cluster.delete(NAMESPACE, name)


def test_a_leader_whose_lease_is_taken_exits_1(cluster: Cluster, replicas: Replicas) -> None:
    leader = replicas.start("op-c")
    wait_holder(cluster, "op-c")
    lease = leases(cluster).read_namespaced_lease(LEASE, NAMESPACE)
    lease.spec.holder_identity = "intruder"
    lease.spec.lease_duration_seconds = 3600
    leases(cluster).replace_namespaced_lease(LEASE, NAMESPACE, lease)
    assert leader.process is not None
    exited = wait_for("the old leader exits", lambda: leader.process.poll() is not None, timeout=10)  # type: ignore[union-attr]
    assert exited is not None
    assert leader.process.returncode == 1
    assert "lost the leader election: the lease shop/fastly-secret-store-operator is now held by intruder" in (
        leader.logs()
    )
