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
from manifests_support import CRD_FILE, ROOT, load_all

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


def _cel_failures(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
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
    token = spec["apiTokenSecretRef"]
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
        {},
    ],
    ids=["bad-name", "bad-policy", "bad-interval", "entry-without-source", "no-token"],
)
def test_the_schema_refuses_bad_specs(spec: dict[str, Any]) -> None:
    obj = {**BASIC, "spec": spec}
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(obj))
