"""The Helm chart: lint, render, refuse bad values, and carry the one CRD of crds/."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable

import pytest
import yaml
from manifests_support import CHART, CRD_FILE, NAMESPACED_VALUES, ROOT, Manifests, of_kind, only


@pytest.mark.parametrize("values", [{}, NAMESPACED_VALUES], ids=["cluster", "namespaced"])
def test_helm_lint_strict(tools, tmp_path, values) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = tools.helm("lint", "--strict", str(CHART), "--values", str(values_file))
    assert "0 chart(s) failed" in result.stdout


def test_chart_crd_is_a_link_to_the_one_crd() -> None:
    chart_crd = CHART / "crds" / CRD_FILE.name
    assert chart_crd.is_symlink(), "the chart's CRD must be a link to crds/, not a copy that can drift"
    assert chart_crd.resolve() == CRD_FILE.resolve()
    assert chart_crd.read_bytes() == CRD_FILE.read_bytes()
    assert [p.name for p in (CHART / "crds").iterdir()] == [CRD_FILE.name]


# deploy/base adds these to the CRD so that a GitOps tool removing the install keeps it.
KEEP_ANNOTATIONS = {
    "argocd.argoproj.io/sync-options": "Delete=false",
    "kustomize.toolkit.fluxcd.io/prune": "disabled",
}


def test_rendered_crd_is_the_one_crd(renderings) -> None:
    for name in renderings:
        expected = yaml.safe_load(CRD_FILE.read_text())
        if name.startswith("kustomize"):
            annotations = expected["metadata"].setdefault("annotations", {})
            annotations.update(KEEP_ANNOTATIONS)
        assert only(renderings[name], "CustomResourceDefinition") == expected, name


def test_versions_agree() -> None:
    """The chart's appVersion, the project's version and the image tag of deploy/ are one version."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    deployment = yaml.safe_load((ROOT / "deploy" / "base" / "deployment.yaml").read_text())
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["appVersion"] == project
    assert image == f"{values['image']['repository']}:{project}"


def test_default_values_match_their_schema() -> None:
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


# Values documented as a whole (Kubernetes objects), not key by key.
WHOLE_VALUES = {"resources", "podSecurityContext", "securityContext", "livenessProbe"}


def test_every_value_is_in_the_readme() -> None:
    readme = (CHART / "README.md").read_text()

    def leaves(tree: dict, prefix: str = ""):
        for key, value in tree.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value and key not in WHOLE_VALUES:
                yield from leaves(value, f"{path}.")
            else:
                yield path

    missing = [p for p in leaves(yaml.safe_load((CHART / "values.yaml").read_text())) if f"`{p}`" not in readme]
    assert not missing, f"values missing from the chart README's table: {missing}"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2}, "needs Kopf peering"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "watchNamespaces"),
        ({"logLevel": "loud"}, "logLevel"),
        ({"replicas": 1}, "replicas"),
        ({"metrics": {"serviceMonitor": {"enabled": True}, "service": {"enabled": False}}}, "serviceMonitor"),
    ],
    ids=["replicas>1", "bad-namespace", "bad-log-level", "unknown-value", "servicemonitor-without-service"],
)
def test_bad_values_are_refused(tools, tmp_path, values, message) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = tools.helm("template", "x", str(CHART), "--values", str(values_file), check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_namespaced_values_give_roles_only(renderings) -> None:
    manifests = renderings["chart-namespaced"]
    assert not of_kind(manifests, "ClusterRole", "ClusterRoleBinding")
    served = {
        r["metadata"]["namespace"] for r in of_kind(manifests, "Role") if "fingerprint" not in r["metadata"]["name"]
    }
    assert served == set(NAMESPACED_VALUES["watchNamespaces"])


def test_all_options_render(render_chart: Callable[..., Manifests]) -> None:
    manifests = render_chart(
        {
            "image": {"tag": "1.2.3", "pullSecrets": ["ghcr"]},
            "replicaCount": 0,
            "fastly": {"endpoint": "http://fastly-emulator:8790", "trustApiSigningKey": True},
            "logFormat": "json",
            "logLevel": "debug",
            "extraEnv": [{"name": "EXTRA", "value": "1"}],
            "extraArgs": ["--some-flag"],
            "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn"}},
            "podAnnotations": {"a": "b"},
            "podLabels": {"team": "edge"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
        },
        kube_version="1.37.0",
    )
    pod = only(manifests, "Deployment")["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert only(manifests, "Deployment")["spec"]["replicas"] == 0
    assert container["image"].endswith(":1.2.3")
    assert pod["spec"]["imagePullSecrets"] == [{"name": "ghcr"}]
    args = container["args"]
    for flag in ("--fastly-endpoint", "--trust-api-signing-key", "--log-format", "--debug", "--some-flag"):
        assert flag in args
    assert args[args.index("--fastly-endpoint") + 1] == "http://fastly-emulator:8790"
    assert {"name": "EXTRA", "value": "1"} in container["env"]
    assert pod["metadata"]["labels"]["team"] == "edge"
    monitor = only(manifests, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
