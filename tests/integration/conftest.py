"""Fixtures of the integration tier. By default the cluster is the Kubernetes emulator; with FSSO_E2E=1 and
KUBECONFIG naming a real cluster (with the CRD applied), the same tests run there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import CRDS, NAMESPACE, TOKEN, Cluster, OperatorProcess

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator, run_in_thread


@pytest.fixture(scope="session")
def fastly() -> Iterator[FastlyEmulator]:
    emulator = FastlyEmulator(tokens=[TOKEN, TOKEN + "-rotated"])
    with run_in_thread(emulator):
        yield emulator


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.environ.get("FSSO_E2E") == "1":
        # The opt-in real-cluster tier (e.g. k3d in CI): the same scenarios, against a real API server.
        real = Cluster(Path(os.environ["KUBECONFIG"]))
        real.install_crds(CRDS)
        yield real
        return
    from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator

    emulator = KubernetesEmulator(crds=CRDS, namespaces=("default", NAMESPACE))
    with emulator.run_in_thread():
        yield Cluster(emulator.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig"))


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, fastly: FastlyEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    cluster.ensure_namespace(NAMESPACE)
    cluster.put_secret(NAMESPACE, "fastly-api-token", token=TOKEN)
    process = OperatorProcess(
        cluster.kubeconfig, fastly.url, [NAMESPACE], tmp_path_factory.mktemp("operator") / "operator.log"
    )
    process.start()
    yield process
    process.stop()
