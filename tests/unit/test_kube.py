"""The operator's own Kubernetes calls, seen from the wire: escaped paths, errors without bodies, cancellation."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator

import aiohttp.web
import pytest
from scripted_server import ScriptedServer, serving, status

from fastly_secret_store_operator import kube
from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator

CANARY = "c2VjcmV0LWNhbmFyeQ=="  # what an error body could echo back: must never reach a message


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with serving(ScriptedServer()) as running:
        yield running


def _api(url: str, connections: int = 8) -> kube.KubeApi:
    credentials = kube.Credentials(server=url, authorization=lambda: "Bearer t0ken")
    return kube.KubeApi(kube.connect(credentials, connections=connections))


async def test_a_name_cannot_walk_to_another_namespace(server: ScriptedServer) -> None:
    api = _api(server.url)
    try:
        await api.read_secret("shop", "../../victim/secrets/x")
        await api.patch_status("sh/op", "a?b#c", {"observedGeneration": 1})
    finally:
        await api.aclose()
    assert [seen.raw_path for seen in server.seen] == [
        "/api/v1/namespaces/shop/secrets/..%2F..%2Fvictim%2Fsecrets%2Fx",
        "/apis/fastly.operator.dev/v1alpha1/namespaces/sh%2Fop/fastlysecretstores/a%3Fb%23c/status",
    ]
    assert server.seen[1].headers["Content-Type"] == "application/merge-patch+json"
    assert server.seen[0].headers["Authorization"] == "Bearer t0ken"


async def test_a_server_behind_a_path_keeps_its_path_and_queries_reach_it(server: ScriptedServer) -> None:
    # Rancher and other proxies serve the API under a path: every call must keep it.
    client = kube.connect(kube.Credentials(server=server.url + "/k8s/clusters/c-1/"))
    try:
        await client.request("GET", kube.secret_path("shop", "token"))
        await client.request("GET", kube.stores_path("shop"), query={"limit": 1})
    finally:
        await client.aclose()
    assert [seen.raw_path for seen in server.seen] == [
        "/k8s/clusters/c-1/api/v1/namespaces/shop/secrets/token",
        "/k8s/clusters/c-1/apis/fastly.operator.dev/v1alpha1/namespaces/shop/fastlysecretstores",
    ]
    assert [seen.query for seen in server.seen] == [{}, {"limit": "1"}]


@pytest.mark.parametrize("name", ["", ".", ".."])
async def test_names_a_client_would_drop_or_resolve_are_refused_before_sending(
    server: ScriptedServer, name: str
) -> None:
    api = _api(server.url)
    try:
        with pytest.raises(ValueError, match="cannot name"):
            await api.read_secret("shop", name)
        with pytest.raises(ValueError, match="cannot name"):
            await api.read_secret(name, "token")
    finally:
        await api.aclose()
    assert server.seen == []


async def test_forbidden_missing_and_failing_calls_are_told_apart(server: ScriptedServer) -> None:
    body = {"kind": "Status", "code": 0, "message": f"echo {CANARY}"}
    server.script = [status(403, body), status(404, body), status(404, body), status(500, body)]
    api = _api(server.url)
    try:
        with pytest.raises(kube.KubeError) as forbidden:
            await api.read_secret("shop", "token")
        assert await api.read_secret("shop", "gone") is None
        await api.patch_status("shop", "gone", {"observedGeneration": 1})  # an object gone needs no status
        with pytest.raises(kube.KubeError) as failing:
            await api.read_secret("shop", "token")
    finally:
        await api.aclose()
    assert isinstance(forbidden.value, kube.KubeForbidden)
    assert (forbidden.value.status, forbidden.value.reason, forbidden.value.forbidden) == (403, "Forbidden", True)
    assert (failing.value.status, failing.value.forbidden) == (500, False)
    assert str(failing.value) == "HTTP 500 Internal Server Error"
    for error in (forbidden.value, failing.value):
        assert CANARY not in str(error) + repr(error.args)


async def test_no_answer_is_an_error_without_a_status() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    api = _api(url)
    try:
        with pytest.raises(kube.KubeError) as error:
            await api.read_secret("shop", "token")
    finally:
        await api.aclose()
    assert error.value.status is None
    assert not error.value.forbidden
    assert isinstance(error.value, kube.API_ERRORS)


async def test_a_cancelled_status_patch_never_reaches_the_server(server: ScriptedServer) -> None:
    # A status patch from a pass that was cancelled (the object is being deleted) must not land after the delete
    # handler's: here it waits for a connection behind a slow read, is cancelled, and the read then completes.
    release = asyncio.Event()

    async def slow(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        await release.wait()
        return aiohttp.web.json_response({"data": {}})

    server.script = [slow]
    api = _api(server.url, connections=1)
    try:
        read = asyncio.create_task(api.read_secret("shop", "token"))
        await server.wait_for(1)
        patch = asyncio.create_task(api.patch_status("shop", "checkout", {"observedGeneration": 2}))
        await asyncio.sleep(0)  # let it start waiting for the one connection
        patch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await patch
        release.set()
        assert await read == {}
        assert await api.read_secret("shop", "after") == {}  # the connection is free again: nothing queued
    finally:
        await api.aclose()
    assert [seen.method for seen in server.seen] == ["GET", "GET"]


async def test_calls_share_one_connection(server: ScriptedServer) -> None:
    # Every answer, a 404 included, is read in full before its connection serves the next call.
    server.default = status(200, {"data": {"token": base64.b64encode(b"t").decode()}})
    api = _api(server.url)
    try:
        for generation in range(5):
            server.script.append(status(404))
            assert await api.read_secret("shop", "missing") is None
            await api.patch_status("shop", "checkout", {"observedGeneration": generation})
            assert await api.read_secret("shop", "token") == {"token": b"t"}
    finally:
        await api.aclose()
    assert {seen.connection for seen in server.seen} == {0}


async def test_against_the_emulator_status_and_fingerprint_key() -> None:
    emulator = KubernetesEmulator(namespaces=["default", "shop"])
    emulator.store.create(
        "fastlysecretstores", {"metadata": {"name": "checkout"}, "spec": {"apiTokenSecretRef": {"name": "t"}}}, "shop"
    )
    async with emulator:
        api = kube.KubeApi(kube.connect(kube.from_connection_info(emulator.connection_info())))
        try:
            await api.patch_status("shop", "checkout", {"observedGeneration": 3})
            key = await api.fingerprint_key("default", "fingerprint")
            assert await api.fingerprint_key("default", "fingerprint") == key  # created once, then read
        finally:
            await api.aclose()
    assert emulator.store.get("fastlysecretstores", "shop", "checkout")["status"]["observedGeneration"] == 3
    assert len(key) >= 32
