"""The operator's own Kubernetes calls keep their connections: every answer is read before its connection is reused."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from fastly_secret_store_operator import kube
from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator


@pytest.fixture
def emulator() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespaces=["default", "shop"])
    emulator.store.create(
        "secrets", {"metadata": {"name": "token"}, "data": {"token": base64.b64encode(b"t").decode()}}, namespace="shop"
    )
    spec = {"apiTokenSecretRef": {"name": "token"}}
    emulator.store.create("fastlysecretstores", {"metadata": {"name": "checkout"}, "spec": spec}, namespace="shop")
    with emulator.run_in_thread():
        yield emulator


def _connections_made(api_client: kubernetes.client.ApiClient, emulator: KubernetesEmulator) -> int:
    pool = api_client.rest_client.pool_manager.connection_from_url(emulator.client_configuration().host)
    made: int = pool.num_connections
    return made


async def test_status_patches_and_reads_share_one_connection(emulator: KubernetesEmulator) -> None:
    # A connection put back with its answer unread is either discarded (a new connection for the next call) or,
    # when the answer has not quite arrived, reused mid-answer: the next call fails with ProtocolError.
    api_client = kubernetes.client.ApiClient(emulator.client_configuration())
    api = kube.KubeApi(api_client)
    for generation in range(10):
        await api.patch_status("shop", "checkout", {"observedGeneration": generation})
        assert await api.read_secret("shop", "token") == {"token": b"t"}
        assert await api.read_secret("shop", "missing") is None  # a 404 answer is read too
        await api.patch_status("shop", "gone", {"observedGeneration": generation})  # as is this 404
    assert emulator.store.get("fastlysecretstores", "shop", "checkout")["status"]["observedGeneration"] == 9
    assert _connections_made(api_client, emulator) == 1
    api_client.close()  # type: ignore[no-untyped-call]


def test_the_pool_holds_a_connection_per_calling_thread(emulator: KubernetesEmulator, tmp_path: Path) -> None:
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    api_client = kube.load_config(str(kubeconfig), connections=40)
    assert api_client.configuration.connection_pool_maxsize == 40
    api_client.close()  # type: ignore[no-untyped-call]
