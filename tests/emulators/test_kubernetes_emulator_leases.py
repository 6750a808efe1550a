"""Leases (coordination.k8s.io/v1), as leader election uses them: namespaced, discoverable, and updated with
optimistic concurrency (a write carrying a stale resourceVersion is a 409 and changes nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator

LEASES = "/apis/coordination.k8s.io/v1/namespaces/shop/leases"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        KubernetesEmulator(namespaces=["default", "shop"]) as emulator,
        httpx.AsyncClient(base_url=str(emulator.server_url)) as client,
    ):
        yield client


def lease(holder: str, name: str = "leader") -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": "2026-11-28T10:00:00.000000Z"},
    }


async def test_a_lease_is_created_read_and_listed_in_its_namespace(api: httpx.AsyncClient) -> None:
    created = await api.post(LEASES, json=lease("a"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["metadata"]["namespace"] == "shop"
    assert body["metadata"]["resourceVersion"]
    assert body["spec"]["holderIdentity"] == "a"
    assert (await api.get(f"{LEASES}/leader")).json()["spec"] == body["spec"]
    assert [item["metadata"]["name"] for item in (await api.get(LEASES)).json()["items"]] == ["leader"]
    # Namespaced: another namespace has its own leases.
    other = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
    assert (await api.get(f"{other}/leader")).status_code == 404
    assert (await api.get(other)).json()["items"] == []


async def test_creating_a_lease_that_exists_is_409(api: httpx.AsyncClient) -> None:
    assert (await api.post(LEASES, json=lease("a"))).status_code == 201
    second = await api.post(LEASES, json=lease("b"))
    assert second.status_code == 409
    assert second.json()["reason"] == "AlreadyExists"
    assert (await api.get(f"{LEASES}/leader")).json()["spec"]["holderIdentity"] == "a"


async def test_an_update_with_a_stale_resource_version_is_409_and_changes_nothing(api: httpx.AsyncClient) -> None:
    read = (await api.post(LEASES, json=lease("a"))).json()
    # Two candidates read the same version; the first write wins, the second is refused.
    first, second = dict(read, spec={**read["spec"], "holderIdentity": "b"}), dict(read, spec={**read["spec"]})
    second["spec"]["holderIdentity"] = "c"
    won = await api.put(f"{LEASES}/leader", json=first)
    assert won.status_code == 200, won.text
    assert int(won.json()["metadata"]["resourceVersion"]) > int(read["metadata"]["resourceVersion"])
    lost = await api.put(f"{LEASES}/leader", json=second)
    assert lost.status_code == 409
    assert lost.json()["reason"] == "Conflict"
    assert (await api.get(f"{LEASES}/leader")).json()["spec"]["holderIdentity"] == "b"


async def test_leases_are_in_discovery(api: httpx.AsyncClient) -> None:
    resources = (await api.get("/apis/coordination.k8s.io/v1")).json()["resources"]
    assert any(resource["name"] == "leases" and resource["namespaced"] for resource in resources)
