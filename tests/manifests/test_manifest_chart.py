"""The Helm chart: lint, render, refuse bad values, and carry the one CRD of crds/."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import tomllib
from collections.abc import Callable

import kubernetes_validate
import pytest
import yaml
from manifests_support import (
    ACCOUNT_CRD_FILE,
    CHART,
    CRD_FILE,
    CRD_FILES,
    NAMESPACED_VALUES,
    RELEASE_NAMESPACE,
    ROOT,
    Manifests,
    load_all,
    of_kind,
    only,
)


@pytest.mark.parametrize("values", [{}, NAMESPACED_VALUES], ids=["cluster", "namespaced"])
def test_helm_lint_strict(tools, tmp_path, values) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = tools.helm("lint", "--strict", str(CHART), "--values", str(values_file))
    assert "0 chart(s) failed" in result.stdout


def test_chart_crds_are_copies_of_the_crds() -> None:
    """Real files, byte-identical to crds/: Flux's source-controller drops symlinks from Git artifacts."""
    assert [path.name for path in CRD_FILES] == [ACCOUNT_CRD_FILE.name, CRD_FILE.name]
    for crd_file in CRD_FILES:
        chart_crd = CHART / "crds" / crd_file.name
        assert not chart_crd.is_symlink()
        assert chart_crd.read_bytes() == crd_file.read_bytes(), "copy crds/ into the chart's crds/ again"
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [path.name for path in CRD_FILES]


def test_no_symlinks_in_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True)
    links = [line.split("\t", 1)[1] for line in tracked.stdout.splitlines() if line.startswith("120000 ")]
    assert not links, f"symlinks in the repository: {links}"
    on_disk = [
        path.relative_to(ROOT)
        for top in ("charts", "crds", "deploy", "docs", "examples", "operator", "tests")
        for path in (ROOT / top).rglob("*")
        if path.is_symlink()
    ]
    assert not on_disk, f"symlinks in the working tree: {on_disk}"


def test_rendered_crds_are_the_crds(renderings) -> None:
    """Helm's crds/ path and both kustomizations install the CRD files unchanged, their keep annotations included."""
    expected = [yaml.safe_load(path.read_text()) for path in CRD_FILES]
    for crd in expected:
        annotations = crd["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
        assert annotations["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
    for name in renderings:
        rendered = sorted(
            of_kind(renderings[name], "CustomResourceDefinition"), key=lambda crd: crd["metadata"]["name"]
        )
        assert rendered == expected, name


def test_kubectl_apply_f_crds_sends_only_the_crds(tools) -> None:
    """`kubectl apply -f crds/` reads every *.yaml, *.yml and *.json file there: each must be a CRD (the
    kustomization that deploy/ uses is named `Kustomization`, which kubectl skips). kubectl is pointed at a
    closed port, so it names each file it would send, then fails."""
    result = tools.run(
        tools.kubectl_path,
        "create",
        "--dry-run=client",
        "--validate=false",
        "--server=http://127.0.0.1:9",
        "--request-timeout=2s",
        "-f",
        "crds/",
        check=False,
    )
    sent = set(re.findall(r'unable to recognize "([^"]+)"', result.stderr))
    assert sent == {f"crds/{path.name}" for path in CRD_FILES}, result.stderr
    for path in (ROOT / "crds").iterdir():
        if path.suffix in (".yaml", ".yml", ".json"):
            assert {doc["kind"] for doc in load_all(path.read_text())} == {"CustomResourceDefinition"}, path


def test_kustomize_builds_deploy_with_the_crds(tools) -> None:
    for directory in ("deploy", "deploy/namespaced"):
        manifests = load_all(tools.kubectl("kustomize", directory).stdout)
        crds = sorted(of_kind(manifests, "CustomResourceDefinition"), key=lambda crd: crd["metadata"]["name"])
        assert crds == [yaml.safe_load(path.read_text()) for path in CRD_FILES]
        assert not of_kind(manifests, "Kustomization")


def _without_helm_metadata(crd: dict) -> dict:
    crd = copy.deepcopy(crd)
    crd["metadata"]["labels"] = {"app.kubernetes.io/name": crd["metadata"]["labels"]["app.kubernetes.io/name"]}
    crd["metadata"]["annotations"].pop("helm.sh/resource-policy", None)
    return crd


@pytest.mark.parametrize("keep", [True, False])
def test_crds_enabled_templates_the_crd(tools, tmp_path, keep) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump({"crds": {"enabled": True, "keep": keep}, "commonLabels": {"team": "edge"}}))
    # What `helm install --skip-crds` and `helm upgrade` apply: the templates only.
    templated = load_all(tools.helm("template", "x", str(CHART), "--skip-crds", "--values", str(values_file)).stdout)
    crds = sorted(of_kind(templated, "CustomResourceDefinition"), key=lambda crd: crd["metadata"]["name"])
    assert len(crds) == len(CRD_FILES)
    for crd, crd_file in zip(crds, CRD_FILES, strict=True):
        assert _without_helm_metadata(crd) == _without_helm_metadata(yaml.safe_load(crd_file.read_text()))
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert crd["metadata"]["labels"]["team"] == "edge"
        assert (crd["metadata"]["annotations"].get("helm.sh/resource-policy") == "keep") is keep
        assert crd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"


def test_crds_disabled_templates_no_crd(tools) -> None:
    templated = load_all(tools.helm("template", "x", str(CHART), "--skip-crds").stdout)
    assert not of_kind(templated, "CustomResourceDefinition")


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


# Values documented as a whole (Kubernetes objects, probe timings), not key by key.
WHOLE_VALUES = {"resources", "podSecurityContext", "securityContext", "livenessProbe", "readinessProbe"}


def _leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in WHOLE_VALUES:
            yield from _leaves(value, f"{path}.")
        else:
            yield path, value


def _readme_table() -> dict[str, str]:
    """The chart README's values table: key → its Default cell."""
    rows = re.findall(r"^\| `([^`]+)` \| (.+?) \| .+\|$", (CHART / "README.md").read_text(), re.MULTILINE)
    return dict(rows)


def _shown(value) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[" + ", ".join(str(item) for item in value) + "]`"
    if value == "":
        return '`""`'
    return f"`{json.dumps(value) if isinstance(value, dict) else value}`"


def test_the_readme_values_table_matches_values_yaml() -> None:
    """Every value of values.yaml is in the table, with its default; the table lists nothing else."""
    values = dict(_leaves(yaml.safe_load((CHART / "values.yaml").read_text())))
    table = _readme_table()
    assert sorted(set(values) - set(table)) == [], "values missing from the chart README's table"
    assert sorted(set(table) - set(values)) == [], "the chart README's table lists values that do not exist"
    wrong = {
        key: (table[key], _shown(value))
        for key, value in values.items()
        if key not in WHOLE_VALUES and table[key] != _shown(value)
    }
    assert not wrong, f"README default ≠ values.yaml default: {wrong}"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"watchNamespaces": ["Not_A_Namespace"]}, "watchNamespaces"),
        ({"logLevel": "loud"}, "logLevel"),
        ({"replicas": 1}, "replicas"),
        ({"metrics": {"serviceMonitor": {"enabled": True}, "service": {"enabled": False}}}, "serviceMonitor"),
        ({"image": {"digest": "latest"}}, "digest"),
        ({"crds": {"enabled": True, "upgrade": True}}, "upgrade"),
        ({"networkPolicy": {"enabled": True, "egress": []}}, "egress"),
        ({"enabled": "yes"}, "enabled"),
    ],
    ids=[
        "bad-namespace",
        "bad-log-level",
        "unknown-value",
        "servicemonitor-without-service",
        "bad-digest",
        "unknown-crds-value",
        "unknown-network-policy-value",
        "enabled-not-boolean",
    ],
)
def test_bad_values_are_refused(tools, tmp_path, values, message) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = tools.helm("template", "x", str(CHART), "--values", str(values_file), check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_namespaced_values_give_roles_only(renderings) -> None:
    manifests = renderings["chart-namespaced"]
    # The one exception: FastlyAccounts are cluster-scoped (see test_manifest_rbac for what it grants).
    assert [role["metadata"]["name"] for role in of_kind(manifests, "ClusterRole")] == [
        "fastly-secret-store-operator-accounts"
    ]
    served = {
        r["metadata"]["namespace"]
        for r in of_kind(manifests, "Role")
        if r["metadata"]["namespace"] != RELEASE_NAMESPACE
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


def test_an_umbrella_charts_enabled_and_global_are_accepted(tools, tmp_path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump({"enabled": True, "global": {"imageRegistry": "mirror.example"}}))
    tools.helm("lint", "--strict", str(CHART), "--values", str(values_file))
    tools.helm("template", "x", str(CHART), "--values", str(values_file))


def test_knobs_render(render_chart: Callable[..., Manifests]) -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    manifests = render_chart(
        {
            "nameOverride": "fsso",
            "commonLabels": {"cost-centre": "edge"},
            "image": {"tag": "1.2.3", "digest": digest},
            "revisionHistoryLimit": 3,
            "readinessProbe": {"periodSeconds": 7},
            "extraVolumes": [{"name": "proxy-ca", "configMap": {"name": "proxy-ca"}}],
            "extraVolumeMounts": [{"name": "proxy-ca", "mountPath": "/etc/proxy-ca", "readOnly": True}],
            "extraEnv": [{"name": "SSL_CERT_FILE", "value": "/etc/proxy-ca/ca.crt"}],
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "{{ .Release.Name }}"}},
                }
            ],
            "networkPolicy": {
                "enabled": True,
                "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
            },
        },
        kube_version="1.37.0",
    )
    for doc in manifests:
        if doc["kind"] != "CustomResourceDefinition":
            kubernetes_validate.validate(doc, "1.37.0", strict=True)
    deployment = only(manifests, "Deployment")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert deployment["metadata"]["name"] == "fastly-secret-store-operator-fsso"
    assert deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "fsso"
    assert "cost-centre" not in deployment["spec"]["selector"]["matchLabels"]
    for doc in manifests:
        if doc["kind"] != "CustomResourceDefinition":
            assert doc["metadata"]["labels"]["cost-centre"] == "edge", doc["kind"]
    assert pod["metadata"]["labels"]["cost-centre"] == "edge"
    assert container["image"] == f"ghcr.io/fastly-secret-store-operator/fastly-secret-store-operator@{digest}"
    assert deployment["spec"]["revisionHistoryLimit"] == 3
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["periodSeconds"] == 7
    assert "enabled" not in container["readinessProbe"]
    assert {"name": "proxy-ca", "mountPath": "/etc/proxy-ca", "readOnly": True} in container["volumeMounts"]
    assert {"name": "proxy-ca", "configMap": {"name": "proxy-ca"}} in pod["spec"]["volumes"]
    (spread,) = pod["spec"]["topologySpreadConstraints"]
    assert spread["labelSelector"]["matchLabels"] == {"app.kubernetes.io/instance": "fastly-secret-store-operator"}
    policy = only(manifests, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    metrics_rule = next(rule for rule in policy["spec"]["ingress"] if rule["ports"][0]["port"] == "metrics")
    assert metrics_rule["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    egress_ports = {(port["port"], port["protocol"]) for rule in policy["spec"]["egress"] for port in rule["ports"]}
    assert {(53, "UDP"), (443, "TCP"), (6443, "TCP")} <= egress_ports


def test_defaults_have_a_readiness_probe_and_no_network_policy(renderings) -> None:
    for name in ("chart-cluster", "chart-namespaced"):
        (container,) = only(renderings[name], "Deployment")["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert not of_kind(renderings[name], "NetworkPolicy")


def test_full_name_override(render_chart: Callable[..., Manifests]) -> None:
    manifests = render_chart({"fullnameOverride": "fastly-ops"})
    assert only(manifests, "Deployment")["metadata"]["name"] == "fastly-ops"
    assert only(manifests, "ClusterRole")["metadata"]["name"] == "fastly-ops"


def test_several_replicas_elect_a_leader(render_chart: Callable[..., Manifests]) -> None:
    manifests = render_chart({"replicaCount": 2})
    deployment = only(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--leader-elect" in container["args"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    budget = only(manifests, "PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    lease_roles = [role for role in of_kind(manifests, "Role") if role["metadata"]["name"].endswith("-leader-election")]
    assert len(lease_roles) == 1
    assert any("leases" in rule["resources"] for rule in lease_roles[0]["rules"])


@pytest.mark.parametrize("replicas", [0, 1])
def test_one_replica_needs_no_leader_election_nor_budget(render_chart: Callable[..., Manifests], replicas: int) -> None:
    manifests = render_chart({"replicaCount": replicas})
    deployment = only(manifests, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "--leader-elect" not in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not of_kind(manifests, "PodDisruptionBudget")


def test_the_chart_creates_fastly_accounts_from_values(render_chart: Callable[..., Manifests]) -> None:
    account = {
        "name": "platform",
        "apiTokenSecretRef": {"name": "fastly-api-token"},
        "allowedNamespaces": {"names": ["shop"], "selector": {"matchLabels": {"tenant": "true"}}},
        "storeNames": ["{namespace}-*"],
    }
    rendered = only(render_chart({"fastlyAccounts": [account]}), "FastlyAccount")
    assert rendered["metadata"]["name"] == "platform"
    assert "namespace" not in rendered["metadata"], "cluster-scoped"
    assert rendered["spec"] == {key: value for key, value in account.items() if key != "name"}
    assert not of_kind(render_chart({}), "FastlyAccount")


def test_the_alerts_of_docs_metrics_ship_as_an_optional_prometheus_rule(render_chart: Callable[..., Manifests]) -> None:
    assert not of_kind(render_chart({}), "PrometheusRule")
    rule = only(
        render_chart({"metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "prom"}}}}),
        "PrometheusRule",
    )
    assert rule["metadata"]["labels"]["release"] == "prom"
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert {"FastlySecretStoreOperatorAbsent", "FastlySecretStoreNotReady", "FastlyApiTokenExpiring"} <= set(alerts)
    assert 'reason!="RateLimited"' in alerts["FastlySecretStoreNotReady"]["expr"], "RateLimited heals by itself"
    assert "{{ $labels.reason }}" in alerts["FastlySecretStoreNotReady"]["annotations"]["summary"]
    documented = (ROOT / "docs" / "metrics.md").read_text()
    for name, alert in alerts.items():
        assert name in documented
        assert alert["expr"].strip().splitlines()[0].strip() in documented, f"{name}: docs/metrics.md says otherwise"
