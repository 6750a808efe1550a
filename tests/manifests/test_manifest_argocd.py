"""The Argo CD health check (deploy/argocd/health.lua), run with a real Lua against sample objects.

Argo CD runs health scripts in gopher-lua, a Lua 5.1: so does this test (lupa's lua51 module).
"""

from __future__ import annotations

import os
import re
from typing import Any

import lupa.lua51 as lupa
import pytest
import yaml
from manifests_support import ROOT, load_all

SCRIPT = (ROOT / "deploy" / "argocd" / "health.lua").read_text()
HEALTH_KEY = "resource.customizations.health.fastly.operator.dev_FastlySecretStore"


def _health(obj: dict[str, Any]) -> dict[str, str]:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return dict(result.items())


def _obj(generation: int = 2, status: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "fastly.operator.dev/v1alpha1",
        "kind": "FastlySecretStore",
        "metadata": {"name": "checkout", "namespace": "shop", "generation": generation, **metadata},
        "spec": {"apiTokenSecretRef": {"name": "fastly-api-token"}},
    }
    if status is not None:
        obj["status"] = status
    return obj


def _conditions(ready: str, reconciling: str, stalled: str, reason: str, message: str) -> list[dict[str, Any]]:
    return [
        {"type": kind, "status": value, "reason": reason, "message": message, "observedGeneration": 2}
        for kind, value in (("Ready", ready), ("Reconciling", reconciling), ("Stalled", stalled))
    ]


def _status(*conditions: str, reason: str = "Synced", message: str = "", observed: int = 2) -> dict[str, Any]:
    return {
        "observedGeneration": observed,
        "id": "7nLoGzCcs1ZbDD8BaX3jKR",
        "conditions": _conditions(*conditions, reason, message),
    }


CASES = {
    "healthy": (_obj(status=_status("True", "False", "False", message="3 entries in sync")), "Healthy"),
    "reconciling": (
        _obj(status=_status("False", "True", "False", reason="Creating", message="creating the store")),
        "Progressing",
    ),
    "degraded": (
        _obj(
            status=_status("False", "False", "True", reason="TokenMissing", message="Secret fastly-api-token not found")
        ),
        "Degraded",
    ),
    "missing-status": (_obj(), "Progressing"),
    "empty-status": (_obj(status={}), "Progressing"),
    "generation-mismatch": (_obj(generation=3, status=_status("True", "False", "False")), "Progressing"),
    "stalled-but-stale": (_obj(generation=3, status=_status("False", "False", "True")), "Progressing"),
    "not-ready-not-stalled": (
        _obj(status=_status("False", "False", "False", reason="RateLimited", message="retrying in 60s")),
        "Progressing",
    ),
    "no-conditions": (_obj(status={"observedGeneration": 2}), "Progressing"),
    "deleting": (
        _obj(status=_status("True", "False", "False"), deletionTimestamp="2026-11-28T10:00:00Z"),
        "Progressing",
    ),
}


@pytest.mark.parametrize(("obj", "expected"), CASES.values(), ids=CASES.keys())
def test_health(obj: dict[str, Any], expected: str) -> None:
    health = _health(obj)
    assert health["status"] == expected
    assert health["message"]


def test_messages_come_from_the_conditions() -> None:
    assert _health(CASES["degraded"][0])["message"] == "Secret fastly-api-token not found"
    assert _health(CASES["not-ready-not-stalled"][0])["message"] == "retrying in 60s"
    assert "generation 3" in _health(CASES["generation-mismatch"][0])["message"]


def test_component_installs_this_script(tools, tmp_path) -> None:
    """The kustomize component merges health.lua, unchanged, into an Argo CD install's argocd-cm."""
    (tmp_path / "argocd-cm.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"}, "data": {}})
    )
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "namespace": "argocd",
                "resources": ["argocd-cm.yaml"],
                "components": [os.path.relpath(ROOT / "deploy" / "argocd", tmp_path)],
            }
        )
    )
    (config_map,) = load_all(tools.kubectl("kustomize", str(tmp_path)).stdout)
    assert config_map["metadata"] == {"name": "argocd-cm", "namespace": "argocd"}
    assert config_map["data"] == {HEALTH_KEY: SCRIPT}


def test_install_docs_carry_this_script() -> None:
    """docs/install.md shows the script for Argo CD's Helm values: it must be this one, to the letter."""
    docs = (ROOT / "docs" / "install.md").read_text()
    blocks = re.findall(rf'"?{re.escape(HEALTH_KEY)}"?: \|\n((?:(?: {{2,}}.*)?\n)+)', docs)
    assert blocks, f"docs/install.md shows no {HEALTH_KEY} block"
    for block in blocks:
        indent = min(len(line) - len(line.lstrip()) for line in block.splitlines() if line.strip())
        dedented = "\n".join(line[indent:] for line in block.splitlines())
        assert dedented.strip() == SCRIPT.strip()
