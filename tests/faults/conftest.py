"""Fixtures of the faults tier: the integration tier's harness (the real operator in a subprocess) against
emulators with faults injected, one fresh namespace, Fastly emulator and operator per test."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from faults_support import TOKEN, Fleet
from harness import Cluster, OperatorProcess, unique

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator, run_in_thread
from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator

#: The client timeout the operator runs with here: short, so a latency fault can outlast it.
FASTLY_TIMEOUT = 1.0
#: How long a create whose answer was lost may still land (60 s in production): short, so that the fleets here,
#: which lose answers on purpose, converge within the tests' bounds; the rule itself is the same.
CREATE_GRACE = 3.0


@pytest.fixture(scope="module")
def kube() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespaces=("default",))
    with emulator.run_in_thread():
        yield emulator


@pytest.fixture(scope="module")
def cluster(kube: KubernetesEmulator, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return Cluster(kube.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig"))


@pytest.fixture
def namespace(cluster: Cluster) -> str:
    name = unique("faults")
    cluster.ensure_namespace(name)
    cluster.put_secret(name, "fastly-api-token", token=TOKEN)
    return name


@pytest.fixture
def fastly_factory() -> Iterator[Callable[..., FastlyEmulator]]:
    """Makes the test's Fastly emulator (seeded, with the options given) and serves it until the test ends."""
    running: list[object] = []

    def make(**options: Any) -> FastlyEmulator:
        emulator = FastlyEmulator(tokens=[TOKEN], **options)
        serving = run_in_thread(emulator)
        serving.__enter__()
        running.append(serving)
        return emulator

    yield make
    for serving in reversed(running):
        serving.__exit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture
def operator_factory(
    cluster: Cluster, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[FastlyEmulator], OperatorProcess]]:
    """Starts the operator against the given Fastly emulator, watching the test's namespace."""
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")  # a SIGKILLed operator leaves its last log lines too
    processes: list[OperatorProcess] = []

    def start(fastly: FastlyEmulator) -> OperatorProcess:
        process = OperatorProcess(
            cluster.kubeconfig,
            fastly.url,
            [namespace],
            tmp_path / "operator.log",
            extra_args=("--fastly-timeout", str(FASTLY_TIMEOUT), "--create-grace", str(CREATE_GRACE)),
        )
        process.start()
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()
    if processes:  # pytest shows this only for a failed test: what the operator did last
        print("".join(processes[0].logs().splitlines(keepends=True)[-300:]))


@pytest.fixture
def fleet_factory(cluster: Cluster, kube: KubernetesEmulator, namespace: str) -> Callable[..., Fleet]:
    def make(fastly: FastlyEmulator, **options: Any) -> Fleet:
        return Fleet(cluster, kube, fastly, namespace, **options)

    return make
