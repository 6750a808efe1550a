"""The operator's Deployment: one replica, Recreate, locked down, probed, in every install flavour."""

from __future__ import annotations

from manifests_support import NAMESPACED_VALUES, only

COMMON_ARGS = ["--standalone", "--liveness", "http://0.0.0.0:8080/healthz", "--metrics-port", "9090"]
KUSTOMIZE_NAMESPACES = ["team-a", "team-b"]


def _pod(flavour) -> dict:
    return only(flavour[1], "Deployment")["spec"]["template"]["spec"]


def test_one_replica_recreated(flavour) -> None:
    spec = only(flavour[1], "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_pod_security(flavour) -> None:
    pod = _pod(flavour)
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in pod
    assert "hostPID" not in pod
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert not context.get("privileged")
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # noqa: S108
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]


def test_container(flavour) -> None:
    (container,) = _pod(flavour)["containers"]
    assert container["resources"] == {"requests": {"cpu": "50m", "memory": "160Mi"}, "limits": {"memory": "256Mi"}}
    probe = container["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert probe["path"] == "/healthz"
    assert ports[probe["port"]] == 8080
    assert container["readinessProbe"]["httpGet"] == container["livenessProbe"]["httpGet"]
    assert ports["metrics"] == 9090
    assert {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} in container["env"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    assert container["image"].startswith("ghcr.io/fastly-secret-store-operator/fastly-secret-store-operator:")


def test_arguments(flavour) -> None:
    name, _ = flavour
    (container,) = _pod(flavour)["containers"]
    if name.endswith("cluster"):
        scope = ["--all-namespaces"]
    else:
        served = NAMESPACED_VALUES["watchNamespaces"] if name.startswith("chart") else KUSTOMIZE_NAMESPACES
        scope = [arg for namespace in served for arg in ("--namespace", namespace)]
    assert container["args"] == ["run", *scope, *COMMON_ARGS]


def test_metrics_service_selects_the_pod(flavour) -> None:
    deployment = only(flavour[1], "Deployment")
    service = only(flavour[1], "Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]


def test_kustomize_namespaced_overlay_lists_the_same_namespaces_twice(renderings) -> None:
    manifests = renderings["kustomize-namespaced"]
    roles = {r["metadata"]["namespace"] for r in manifests if r["kind"] in ("Role", "RoleBinding")}
    assert roles == {*KUSTOMIZE_NAMESPACES, "fastly-secret-store-operator"}
