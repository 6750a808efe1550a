"""Every rendered object is valid for Kubernetes 1.30 and the newest schemas known, in strict mode."""

from __future__ import annotations

import kubernetes_validate
import pytest
from manifests_support import ROOT, load_all

# The oldest Kubernetes the project supports in CI, and the newest kubernetes-validate knows.
KUBE_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
# Kinds without a schema in kubernetes-validate: custom resources, checked elsewhere against their own CRDs.
CUSTOM_KINDS = {"FastlySecretStore", "FastlyAccount", "ServiceMonitor"}


def _validate(doc: dict, version: str) -> None:
    where = f"{doc['kind']}/{doc['metadata'].get('name')}"
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{where} is not valid for Kubernetes {version}: {error.message} at {list(error.path)}")


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_rendered_objects_are_valid(flavour, version) -> None:
    _, manifests = flavour
    for doc in manifests:
        if doc["kind"] not in CUSTOM_KINDS:
            _validate(doc, version)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_examples_builtin_objects_are_valid(version) -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in load_all(path.read_text()):
            if doc["kind"] not in CUSTOM_KINDS:
                _validate(doc, version)


def test_every_flavour_renders_the_same_kinds(renderings) -> None:
    expected = {
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    }
    for name, manifests in renderings.items():
        kinds = {doc["kind"] for doc in manifests}
        # Helm installs into an existing namespace (helm install --create-namespace), it does not own it.
        wanted = expected - {"Namespace"} if name.startswith("chart") else expected
        wanted = wanted | {"ClusterRole", "ClusterRoleBinding"}  # namespaced too: FastlyAccounts are cluster-scoped
        assert kinds == wanted, name
