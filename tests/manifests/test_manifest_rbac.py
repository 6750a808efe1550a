"""RBAC is what the operator uses and no more, in every install flavour."""

from __future__ import annotations

from manifests_support import RELEASE_NAMESPACE, Manifests, of_kind

FINGERPRINT_KEY_SECRET = "fastly-secret-store-operator-fingerprint-key"
LEASE = "fastly-secret-store-operator"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}

# (apiGroup, resource) -> verbs, in each namespace the operator serves (or cluster-wide).
SERVED = {
    ("fastly.operator.dev", "fastlysecretstores"): {"get", "list", "watch", "patch"},
    ("fastly.operator.dev", "fastlysecretstores/status"): {"patch"},
    ("", "secrets"): {"get", "list", "watch"},
    ("", "events"): {"create"},
}
# FastlyAccounts are cluster-scoped: a ClusterRole grants them in both modes.
ACCOUNTS = {
    ("fastly.operator.dev", "fastlyaccounts"): {"get", "list", "watch", "patch"},
    ("fastly.operator.dev", "fastlyaccounts/status"): {"patch"},
}
# Cluster-wide only: Kopf watches CRDs to notice ours being (re)installed; Namespaces are read for selectors.
CLUSTER_ONLY = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("", "namespaces"): {"get"},
}


def _grants(role: dict) -> dict[tuple[str, str], set[str]]:
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


def _roles(manifests: Manifests) -> Manifests:
    return of_kind(manifests, "Role", "ClusterRole")


def test_no_wildcards(flavour) -> None:
    for role in _roles(flavour[1]):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{role['metadata']['name']}: wildcard in {field}"
            assert "nonResourceURLs" not in rule


def test_cluster_role_is_exactly_what_the_operator_uses(flavour) -> None:
    name, manifests = flavour
    cluster_roles = of_kind(manifests, "ClusterRole")
    assert len(cluster_roles) == 1
    if name.endswith("namespaced"):
        # The one cluster-wide grant of a namespaced install: FastlyAccounts, nothing else.
        assert _grants(cluster_roles[0]) == ACCOUNTS
        return
    assert _grants(cluster_roles[0]) == SERVED | ACCOUNTS | CLUSTER_ONLY


def test_served_namespace_roles_are_exactly_what_the_operator_uses(flavour) -> None:
    name, manifests = flavour
    served = [r for r in of_kind(manifests, "Role") if r["metadata"]["namespace"] != RELEASE_NAMESPACE]
    assert len(served) == (2 if name.endswith("namespaced") else 0)
    for role in served:
        assert _grants(role) == SERVED, role["metadata"]["namespace"]


def test_secrets_are_written_only_in_the_operators_namespace(flavour) -> None:
    for role in _roles(flavour[1]):
        for rule in role["rules"]:
            if "secrets" not in rule["resources"] or not WRITE_VERBS & set(rule["verbs"]):
                continue
            assert role["kind"] == "Role", "a ClusterRole must never write Secrets"
            assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
            assert rule["verbs"] == ["create"], "only create: the operator never updates a Secret"


def _own_roles(manifests: Manifests) -> dict[str, dict]:
    """The Roles in the operator's own namespace, by what their name ends with ("fingerprint-key", …)."""
    own = [r for r in of_kind(manifests, "Role") if r["metadata"]["namespace"] == RELEASE_NAMESPACE]
    return {"-".join(role["metadata"]["name"].split("-")[-2:]): role for role in own}


def test_own_namespace_roles(flavour) -> None:
    # Namespaced installs also read FastlyAccount tokens there (cluster-wide ones read Secrets everywhere already).
    expected = ["fingerprint-key", "leader-election"]
    if "namespaced" in flavour[0]:
        expected = ["account-tokens", *expected]
    assert sorted(_own_roles(flavour[1])) == expected


def test_leader_election_role(flavour) -> None:
    assert _own_roles(flavour[1])["leader-election"]["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [LEASE],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]


def test_fingerprint_key_role(flavour) -> None:
    assert _own_roles(flavour[1])["fingerprint-key"]["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [FINGERPRINT_KEY_SECRET],
            "verbs": ["get"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]


def test_account_tokens_are_read_in_the_operators_namespace(flavour) -> None:
    """FastlyAccount token Secrets live in the operator's namespace: read there (cluster-wide: by the ClusterRole)."""
    name, manifests = flavour
    own = [
        r
        for r in of_kind(manifests, "Role")
        if r["metadata"]["namespace"] == RELEASE_NAMESPACE and r["metadata"]["name"].endswith("account-tokens")
    ]
    if not name.endswith("namespaced"):
        assert not own
        return
    assert len(own) == 1
    assert _grants(own[0]) == {("", "secrets"): {"get", "list", "watch"}}


def test_every_role_is_bound_to_the_operator_and_only_to_it(flavour) -> None:
    manifests = flavour[1]
    (account,) = of_kind(manifests, "ServiceAccount")
    expected_subject = {
        "kind": "ServiceAccount",
        "name": account["metadata"]["name"],
        "namespace": account["metadata"]["namespace"],
    }
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in _roles(manifests)}
    bound = set()
    for binding in of_kind(manifests, "RoleBinding", "ClusterRoleBinding"):
        assert binding["subjects"] == [expected_subject]
        namespace = binding["metadata"].get("namespace") if binding["roleRef"]["kind"] == "Role" else None
        bound.add((binding["roleRef"]["kind"], namespace, binding["roleRef"]["name"]))
    assert bound == roles


def test_no_peering_objects_in_standalone_mode(flavour) -> None:
    for role in _roles(flavour[1]):
        assert all("kopf.dev" not in rule["apiGroups"] for rule in role["rules"])
