"""examples/*.yaml hold FastlySecretStores the CRD accepts: its openAPIV3Schema and its CEL rules.

A real API server would also apply defaults and Kubernetes' CEL extension functions; these rules use none.
Rules that read `oldSelf` (transition rules) are evaluated as an update from the object to itself, and the
immutability of spec.name is checked directly.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import cel
import jsonschema
import pytest
import yaml
from manifests_support import ACCOUNT_CRD_FILE, CRD_FILE, ROOT, load_all

CRD = yaml.safe_load(CRD_FILE.read_text())
(VERSION,) = CRD["spec"]["versions"]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
API_VERSION = f"{CRD['spec']['group']}/{VERSION['name']}"
KIND = CRD["spec"]["names"]["kind"]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _custom_objects() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['metadata']['name']}", doc)
        for path in EXAMPLES
        for doc in load_all(path.read_text())
        if doc["kind"] == KIND
    ]


def _rules(schema: dict[str, Any], value: Any, old: Any, where: str) -> Iterator[tuple[str, dict, Any, Any]]:
    """Each x-kubernetes-validations rule with the value (and old value) it applies to."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield where, rule, value, old
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                old_sub = old.get(key) if isinstance(old, dict) else None
                yield from _rules(sub, value[key], old_sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _rules(schema["items"], item, None, f"{where}[{index}]")


def _cel_failures(new: dict[str, Any], old: dict[str, Any] | None) -> list[str]:
    failures = []
    for where, rule, value, old_value in _rules(SCHEMA, new, old, "self"):
        context = {"self": value}
        if "oldSelf" in rule["rule"]:
            if old_value is None:
                continue  # transition rules do not run on create
            context["oldSelf"] = old_value
        if cel.evaluate(rule["rule"], context) is not True:
            failures.append(f"{where}: {rule['message']}")
    return failures


def test_there_are_examples() -> None:
    names = {path.name for path in EXAMPLES}
    assert {"basic.yaml", "with-entries.yaml"} <= names
    assert len(_custom_objects()) >= 2


def test_the_crd_schema_is_well_formed() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA.get("x-kubernetes-validations"), "the CEL rules this test evaluates have gone"


@pytest.mark.parametrize(("where", "obj"), _custom_objects(), ids=lambda v: v if isinstance(v, str) else "")
def test_example_matches_the_crd(where: str, obj: dict[str, Any]) -> None:
    assert obj["apiVersion"] == API_VERSION
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(obj)]
    assert not errors, f"{where}: {errors}"
    assert not _cel_failures(obj, obj), where


@pytest.mark.parametrize(("where", "obj"), _custom_objects(), ids=lambda v: v if isinstance(v, str) else "")
def test_example_references_secrets_of_its_own_example_file(where: str, obj: dict[str, Any]) -> None:
    path = ROOT / "examples" / where.split(":")[0]
    secrets = {doc["metadata"]["name"]: doc for doc in load_all(path.read_text()) if doc["kind"] == "Secret"}
    if not secrets:
        return  # basic.yaml says how to create its token Secret instead
    spec = obj["spec"]
    token = spec.get("apiTokenSecretRef")
    if token is not None:  # else a FastlyAccount's token, in the operator's namespace, which examples never hold
        assert token.get("key", "token") in secrets[token["name"]]["stringData"]
    for entry in spec.get("entries", []):
        ref = entry["secretKeyRef"]
        assert ref["key"] in secrets[ref["name"]]["stringData"]
    for source in spec.get("entriesFrom", []):
        assert source["secretRef"]["name"] in secrets
    for secret in secrets.values():
        assert secret["metadata"]["namespace"] == obj["metadata"]["namespace"]
        assert all(value.startswith("REPLACE-WITH-") for value in secret["stringData"].values())


BASIC = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "metadata": {"name": "checkout", "namespace": "shop"},
    "spec": {"apiTokenSecretRef": {"name": "fastly-api-token"}},
}


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        (lambda o: o["spec"].update(name="checkout"), True),  # spelling out the default name
        (lambda o: o["spec"].update(name="checkout-2"), False),
        (lambda o: o["spec"].update(deletionPolicy="Retain"), True),
    ],
    ids=["same-name-spelled-out", "renamed", "other-field"],
)
def test_store_name_is_immutable(change, accepted: bool) -> None:
    new = copy.deepcopy(BASIC)
    change(new)
    assert (not _cel_failures(new, BASIC)) is accepted


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "has space", "apiTokenSecretRef": {"name": "t"}},
        {"apiTokenSecretRef": {"name": "t"}, "deletionPolicy": "Orphan"},
        {"apiTokenSecretRef": {"name": "t"}, "resyncInterval": "ten minutes"},
        {"apiTokenSecretRef": {"name": "t"}, "entries": [{"name": "A"}]},
        {"accountRef": {"name": "../platform"}},
    ],
    ids=["bad-name", "bad-policy", "bad-interval", "entry-without-source", "bad-account-name"],
)
def test_the_schema_refuses_bad_specs(spec: dict[str, Any]) -> None:
    obj = {**BASIC, "spec": spec}
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(obj))


@pytest.mark.parametrize(
    ("spec", "accepted"),
    [
        ({"apiTokenSecretRef": {"name": "t"}}, True),
        ({"accountRef": {"name": "platform"}}, True),
        ({}, False),
        ({"apiTokenSecretRef": {"name": "t"}, "accountRef": {"name": "platform"}}, False),
    ],
    ids=["token", "account", "neither", "both"],
)
def test_exactly_one_of_token_and_account(spec: dict[str, Any], accepted: bool) -> None:
    obj = {**BASIC, "spec": spec}
    assert not list(jsonschema.Draft7Validator(SCHEMA).iter_errors(obj))
    failures = _cel_failures(obj, None)
    assert (not failures) is accepted
    if not accepted:
        assert "exactly one of spec.apiTokenSecretRef" in failures[0]


def _refusals(spec: dict[str, Any]) -> list[str]:
    """Why the API server would refuse a new object with this spec: the schema, then the CEL rules."""
    obj = {**BASIC, "spec": spec}
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(obj)]
    if errors:
        return errors
    return _cel_failures(obj, None)  # a create: no old object


TOKEN = {"name": "fastly-api-token"}


def _entry(name: str = "A", source: str = "s", key: str = "k") -> dict[str, Any]:
    return {"name": name, "secretKeyRef": {"name": source, "key": key}}


@pytest.mark.parametrize(
    "spec",
    [
        {"apiTokenSecretRef": {"name": "../../victim/secrets/victim-secret"}},
        {"apiTokenSecretRef": {"name": "Token"}},
        {"apiTokenSecretRef": {"name": "-token"}},
        {"apiTokenSecretRef": {"name": "t" * 254}},
        {"apiTokenSecretRef": {"name": "t", "key": "."}},
        {"apiTokenSecretRef": {"name": "t", "key": ".."}},
        {"apiTokenSecretRef": {"name": "t", "key": "a/b"}},
        {"apiTokenSecretRef": {"name": "t", "key": "k" * 254}},
        {"apiTokenSecretRef": TOKEN, "entries": [_entry(source="../other")]},
        {"apiTokenSecretRef": TOKEN, "entries": [_entry(key="..")]},
        {"apiTokenSecretRef": TOKEN, "entries": [_entry(key="%2e%2e")]},
        {"apiTokenSecretRef": TOKEN, "entriesFrom": [{"secretRef": {"name": "a/b"}}]},
        {"apiTokenSecretRef": TOKEN, "entriesFrom": [{"secretRef": {"name": ".."}}]},
        {"apiTokenSecretRef": TOKEN, "entries": [_entry(name=".")]},
        {"apiTokenSecretRef": TOKEN, "entries": [_entry(name="..")]},
        {"apiTokenSecretRef": TOKEN, "name": ".."},
        {"apiTokenSecretRef": TOKEN, "name": "."},
    ],
    ids=[
        "token-traversal",
        "token-upper-case",
        "token-leading-dash",
        "token-name-254",
        "token-key-dot",
        "token-key-dotdot",
        "token-key-slash",
        "token-key-254",
        "entry-secret-traversal",
        "entry-key-dotdot",
        "entry-key-escaped",
        "entries-from-slash",
        "entries-from-dotdot",
        "entry-name-dot",
        "entry-name-dotdot",
        "store-name-dotdot",
        "store-name-dot",
    ],
)
def test_the_crd_refuses_unsafe_names(spec: dict[str, Any]) -> None:
    assert _refusals(spec)


@pytest.mark.parametrize(
    ("interval", "accepted"),
    [
        ("0", True),
        ("1s", True),
        ("10m", True),
        ("1h30m", True),
        ("1500ms", True),
        ("1.5s", True),
        ("0s", False),
        ("999ms", False),
        ("0.5s", False),
        ("00", False),
        ("10", False),
        ("1d", False),
        ("-1s", False),
    ],
)
def test_resync_interval_minimum(interval: str, accepted: bool) -> None:
    """The CRD accepts what reconcile/spec.py's parse_duration accepts: "0", or a duration of at least 1s."""
    from fastly_secret_store_operator.reconcile.errors import ReconcileError
    from fastly_secret_store_operator.reconcile.spec import parse_duration

    assert (not _refusals({"apiTokenSecretRef": TOKEN, "resyncInterval": interval})) is accepted
    try:
        parse_duration(interval)
        parsed = True
    except ReconcileError:
        parsed = False
    assert parsed is accepted


def test_deletion_policy_has_no_default() -> None:
    """Omitted means: delete a store this object created, keep one it adopted. A default would hide that."""
    policy = SCHEMA["properties"]["spec"]["properties"]["deletionPolicy"]
    assert "default" not in policy
    assert policy["enum"] == ["Delete", "Retain"]


def test_status_starts_in_progress_for_kstatus() -> None:
    status = SCHEMA["properties"]["status"]
    assert status["default"] == {"observedGeneration": -1}
    assert status["properties"]["conditions"]["maxItems"] == 8
    assert status["properties"]["entries"]["maxItems"] == 1000
    for field in ("accountId", "createRequestedAt", "tokenExpiresAt"):
        assert status["properties"][field]["type"] == "string"
    assert status["properties"]["tokenExpiresAt"]["format"] == "date-time"


def test_conditions_have_the_metav1_condition_shape() -> None:
    conditions = SCHEMA["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "reason", "message", "lastTransitionTime"}
    fields = item["properties"]
    assert fields["status"]["enum"] == ["True", "False", "Unknown"]
    assert fields["reason"]["pattern"] == "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    assert fields["reason"]["maxLength"] == 1024
    assert fields["message"]["maxLength"] == 32768
    assert fields["lastTransitionTime"]["format"] == "date-time"
    assert fields["observedGeneration"]["minimum"] == 0


def _fields(schema: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of the schema, and every list's item, with its path."""
    for name, sub in schema.get("properties", {}).items():
        yield f"{where}.{name}", sub
        yield from _fields(sub, f"{where}.{name}")
    if "items" in schema:
        yield f"{where}[]", schema["items"]
        yield from _fields(schema["items"], f"{where}[]")


def test_every_field_has_a_description() -> None:
    """So that `kubectl explain fastlysecretstore.spec...` teaches every field (metadata is ObjectMeta's)."""
    fields = dict(_fields(SCHEMA, "fastlysecretstore"))
    assert len(fields) > 40
    missing = [
        where
        for where, sub in fields.items()
        if where != "fastlysecretstore.metadata" and not str(sub.get("description", "")).strip()
    ]
    assert SCHEMA.get("description")
    assert not missing, f"fields without a description: {missing}"


ACCOUNT_SCHEMA = yaml.safe_load(ACCOUNT_CRD_FILE.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_the_multi_tenant_example_offers_an_account_the_crd_accepts() -> None:
    docs = load_all((ROOT / "examples" / "multi-tenant.yaml").read_text())
    accounts = [doc for doc in docs if doc["kind"] == "FastlyAccount"]
    assert len(accounts) == 1
    errors = [e.message for e in jsonschema.Draft7Validator(ACCOUNT_SCHEMA).iter_errors(accounts[0])]
    assert not errors
    assert "namespace" not in accounts[0]["metadata"], "FastlyAccount is cluster-scoped"
    users = [doc for doc in docs if doc["kind"] == KIND]
    assert users
    assert all(doc["spec"]["accountRef"]["name"] == accounts[0]["metadata"]["name"] for doc in users)
    assert all("apiTokenSecretRef" not in doc["spec"] for doc in users), "tenants hold no token"
