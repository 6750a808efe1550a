"""Paths and small helpers shared by the manifest tests (conftest.py puts this folder on sys.path)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "fastly-secret-store-operator"
CRD_FILE = ROOT / "crds" / "fastlysecretstores.fastly.operator.dev.yaml"
ACCOUNT_CRD_FILE = ROOT / "crds" / "fastlyaccounts.fastly.operator.dev.yaml"
#: Every CRD of crds/, the one source the chart and the kustomizations install.
CRD_FILES = sorted((ROOT / "crds").glob("*.yaml"))
RELEASE_NAMESPACE = "fastly-secret-store-operator"
NAMESPACED_VALUES: Mapping[str, Any] = {"watchNamespaces": ["a", "b"]}
KUSTOMIZATIONS = {"kustomize-cluster": ROOT / "deploy", "kustomize-namespaced": ROOT / "deploy" / "namespaced"}

Manifests = list[dict[str, Any]]


FLAVOURS = ["chart-cluster", "chart-namespaced", "kustomize-cluster", "kustomize-namespaced"]


def load_all(text: str) -> Manifests:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def only(manifests: Manifests, kind: str) -> dict[str, Any]:
    found = [doc for doc in manifests if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def of_kind(manifests: Manifests, *kinds: str) -> Manifests:
    return [doc for doc in manifests if doc["kind"] in kinds]
