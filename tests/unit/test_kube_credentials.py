"""Credentials from a kubeconfig and context (the kubernetes package's loader), from Kopf's ConnectionInfo, and
the same credentials handed to Kopf."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer, serving

from fastly_secret_store_operator import kube


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with serving(ScriptedServer()) as running:
        yield running


def _kubeconfig(path: Path, servers: dict[str, str], users: dict[str, dict[str, Any]], current: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}} for name, url in servers.items()],
        "users": [{"name": name, "user": user} for name, user in users.items()],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}} for name in servers],
        "current-context": current,
    }
    path.write_text(json.dumps(config))
    return path


async def test_the_context_asked_for_is_used_with_its_token(server: ScriptedServer, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(
        tmp_path / "config",
        {"dead": "http://127.0.0.1:9", "live": server.url},
        {"dead": {"token": "dead-token"}, "live": {"token": "live-token"}},
        current="dead",
    )
    credentials = kube.load_credentials(str(kubeconfig), "live")
    assert credentials.server == server.url
    api = kube.KubeApi(kube.connect(credentials))
    try:
        await api.read_secret("shop", "token")
    finally:
        await api.aclose()
    assert server.seen[0].headers["Authorization"] == "Bearer live-token"
    # Kopf gets the very same server and token.
    info = credentials.connection_info()
    assert (info.server, info.scheme, info.token) == (server.url, "Bearer", "live-token")
    # Without --context, the kubeconfig's current context.
    assert kube.load_credentials(str(kubeconfig)).server == "http://127.0.0.1:9"


async def test_an_exec_plugin_gives_the_token(server: ScriptedServer, tmp_path: Path) -> None:
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": "from-exec-plugin"},
    }
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": sys.executable,
        "args": ["-c", f"print({json.dumps(json.dumps(credential))})"],
    }
    kubeconfig = _kubeconfig(tmp_path / "config", {"live": server.url}, {"live": {"exec": plugin}}, current="live")
    client = kube.connect(kube.load_credentials(str(kubeconfig)))
    try:
        await client.request("GET", kube.secret_path("shop", "token"))
    finally:
        await client.aclose()
    assert server.seen[0].headers["Authorization"] == "Bearer from-exec-plugin"


def test_an_unknown_context_or_a_missing_file_says_which(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "config", {"a": "http://127.0.0.1:9"}, {"a": {"token": "t0k"}}, current="a")
    with pytest.raises(kube.CredentialsError, match=r"no context 'b' in the kubeconfig .*\(it has: a\)"):
        kube.load_credentials(str(kubeconfig), "b")
    with pytest.raises(kube.CredentialsError, match="no kubeconfig file at"):
        kube.load_credentials(str(tmp_path / "absent"))
    (tmp_path / "broken").write_text("clusters: [token: t0k")
    with pytest.raises(kube.CredentialsError) as broken:
        kube.load_credentials(str(tmp_path / "broken"))
    assert "t0k" not in str(broken.value)


async def test_connection_info_credentials(server: ScriptedServer) -> None:
    import kopf

    credentials = kube.from_connection_info(kopf.ConnectionInfo(server=server.url, scheme="Bearer", token="kopf-t"))
    client = kube.connect(credentials)
    try:
        await client.request("GET", kube.secret_path("shop", "token"))
    finally:
        await client.aclose()
    assert server.seen[0].headers["Authorization"] == "Bearer kopf-t"
