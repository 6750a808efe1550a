"""The Kubernetes API emulator over real HTTP (httpx): what a real API server does, where it matters to us."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator

STORES = "/apis/fastly.operator.dev/v1alpha1/namespaces/shop/fastlysecretstores"
SECRETS = "/api/v1/namespaces/shop/secrets"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
NOW = "2026-11-28T10:00:00Z"
# The CRD's default status, as Flux's CRDs have it: kstatus reads a new object as InProgress until reconciled.
NEW_STATUS = {"observedGeneration": -1}


@pytest.fixture
async def emulator() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator(namespaces=["default", "shop"]) as emulator:
        yield emulator


@pytest.fixture
async def api(emulator: KubernetesEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=str(emulator.server_url)) as client:
        yield client


def store(name: str = "checkout", /, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fastly.operator.dev/v1alpha1",
        "kind": "FastlySecretStore",
        "metadata": {"name": name},
        "spec": {"apiTokenSecretRef": {"name": "fastly-api-token"}, **spec},
    }


async def create(api: httpx.AsyncClient, body: dict[str, Any], url: str = STORES) -> dict[str, Any]:
    response = await api.post(url, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_status(response: httpx.Response, code: int, reason: str, message: str = "") -> dict[str, Any]:
    assert response.status_code == code, response.text
    status: dict[str, Any] = response.json()
    assert (status["kind"], status["status"], status["code"], status["reason"]) == ("Status", "Failure", code, reason)
    assert message in status["message"]
    return status


def revision(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


# Metadata, statuses, names


async def test_create_stamps_server_metadata_and_answers_201(api: httpx.AsyncClient) -> None:
    body = store()
    body["metadata"] |= {"uid": "mine", "resourceVersion": "99", "generation": 7, "creationTimestamp": "x"}
    created = await create(api, body)
    metadata = created["metadata"]
    assert metadata["name"] == "checkout"
    assert metadata["namespace"] == "shop"
    assert metadata["uid"] != "mine"
    assert len(metadata["uid"]) == 36
    assert RFC3339.fullmatch(metadata["creationTimestamp"])
    assert metadata["generation"] == 1
    assert metadata["resourceVersion"] != "99"
    fetched = (await api.get(f"{STORES}/checkout")).json()
    assert fetched == created


async def test_resource_version_increases_on_every_write_and_not_on_a_no_op(api: httpx.AsyncClient) -> None:
    first = await create(api, store())
    labelled = (await api.patch(f"{STORES}/checkout", json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE)).json()
    again = (await api.patch(f"{STORES}/checkout", json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE)).json()
    other = await create(api, store("other"))
    assert revision(first) < revision(labelled) < revision(other)
    assert revision(again) == revision(labelled)  # nothing changed: no new version


async def test_generation_follows_spec_only(api: httpx.AsyncClient) -> None:
    await create(api, store())
    url = f"{STORES}/checkout"
    meta = (await api.patch(url, json={"metadata": {"annotations": {"a": "b"}}}, headers=MERGE)).json()
    status = (await api.patch(f"{url}/status", json={"status": {"id": "x"}}, headers=MERGE)).json()
    spec = (await api.patch(url, json={"spec": {"pruneEntries": True}}, headers=MERGE)).json()
    assert [meta["metadata"]["generation"], status["metadata"]["generation"]] == [1, 1]
    assert spec["metadata"]["generation"] == 2


async def test_duplicate_name_is_409_and_missing_is_404(api: httpx.AsyncClient) -> None:
    await create(api, store())
    assert_status(await api.post(STORES, json=store()), 409, "AlreadyExists", '"checkout" already exists')
    missing = assert_status(await api.get(f"{STORES}/nope"), 404, "NotFound")
    assert missing["message"] == 'fastlysecretstores.fastly.operator.dev "nope" not found'
    assert_status(await api.patch(f"{STORES}/nope", json={}, headers=MERGE), 404, "NotFound")
    assert_status(await api.delete(f"{STORES}/nope"), 404, "NotFound")
    assert_status(await api.get("/api/v1/namespaces/shop/configmaps"), 404, "NotFound")


async def test_objects_need_an_existing_namespace(api: httpx.AsyncClient) -> None:
    response = await api.post(STORES.replace("/shop/", "/nowhere/"), json=store())
    assert_status(response, 404, "NotFound", 'namespaces "nowhere" not found')


async def test_generate_name_makes_unique_names(api: httpx.AsyncClient) -> None:
    event = {"metadata": {"generateName": "checkout."}, "reason": "Synced", "message": "m", "type": "Normal"}
    names = {(await create(api, event, "/api/v1/namespaces/shop/events"))["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3
    assert all(re.fullmatch(r"checkout\.[a-z0-9]{5}", name) for name in names)


async def test_invalid_names_are_refused(api: httpx.AsyncClient) -> None:
    assert_status(await api.post(STORES, json=store("Not_A_Name")), 422, "Invalid", "RFC 1123 subdomain")
    nameless = store()
    del nameless["metadata"]["name"]
    assert_status(await api.post(STORES, json=nameless), 422, "Invalid", "name or generateName is required")


# JSON-patch, merge-patch, PUT


async def test_failed_json_patch_test_is_422_and_changes_nothing(api: httpx.AsyncClient) -> None:
    created = await create(api, store())
    finalizer = [{"op": "add", "path": "/metadata/finalizers", "value": ["fastly.operator.dev/finalizer"]}]
    stale = [{"op": "test", "path": "/metadata/resourceVersion", "value": "0"}, *finalizer]
    assert_status(await api.patch(f"{STORES}/checkout", json=stale, headers=JSON_PATCH), 422, "Invalid")
    assert (await api.get(f"{STORES}/checkout")).json() == created

    fresh = [{"op": "test", "path": "/metadata/resourceVersion", "value": created["metadata"]["resourceVersion"]}]
    patched = await api.patch(f"{STORES}/checkout", json=fresh + finalizer, headers=JSON_PATCH)
    assert patched.status_code == 200
    assert patched.json()["metadata"]["finalizers"] == ["fastly.operator.dev/finalizer"]


async def test_stale_resource_version_in_a_write_is_409(api: httpx.AsyncClient) -> None:
    created = await create(api, store())
    await api.patch(f"{STORES}/checkout", json={"spec": {"pruneEntries": True}}, headers=MERGE)
    created["spec"]["deletionPolicy"] = "Retain"
    assert_status(await api.put(f"{STORES}/checkout", json=created), 409, "Conflict", "the object has been modified")
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "spec": {}}
    assert_status(await api.patch(f"{STORES}/checkout", json=stale, headers=MERGE), 409, "Conflict")


async def test_put_replaces_the_object(api: httpx.AsyncClient) -> None:
    current = await create(api, store(pruneEntries=True))
    current["spec"] = {"apiTokenSecretRef": {"name": "other"}}
    replaced = (await api.put(f"{STORES}/checkout", json=current)).json()
    assert replaced["spec"]["apiTokenSecretRef"] == {"name": "other", "key": "token"}
    assert replaced["spec"]["pruneEntries"] is False  # dropped by the PUT, defaulted again
    assert replaced["metadata"]["generation"] == 2


async def test_merge_patch_null_deletes_and_lists_replace(api: httpx.AsyncClient) -> None:
    entry = {"name": "A", "secretKeyRef": {"name": "s", "key": "k"}}
    await create(api, store(entries=[entry, {**entry, "name": "B"}]))
    url = f"{STORES}/checkout"
    patched = await api.patch(url, json={"spec": {"entries": [entry]}, "metadata": {"labels": None}}, headers=MERGE)
    assert patched.json()["spec"]["entries"] == [entry]


async def test_strategic_merge_patch_on_a_custom_resource_is_415(api: httpx.AsyncClient) -> None:
    await create(api, store())
    headers = {"Content-Type": "application/strategic-merge-patch+json"}
    assert_status(await api.patch(f"{STORES}/checkout", json={}, headers=headers), 415, "UnsupportedMediaType")


# The status subresource


async def test_status_subresource_separates_status_from_the_rest(api: httpx.AsyncClient) -> None:
    body = store()
    body["status"] = {"id": "set-on-create"}
    created = await create(api, body)
    assert created["status"] == NEW_STATUS  # create cannot set status: only the CRD's default is there

    url = f"{STORES}/checkout"
    main = await api.patch(url, json={"status": {"id": "x"}, "spec": {"pruneEntries": True}}, headers=MERGE)
    assert main.json()["status"] == NEW_STATUS
    assert main.json()["spec"]["pruneEntries"] is True

    status = {"status": {"id": "x"}, "spec": {"pruneEntries": False}, "metadata": {"labels": {"a": "b"}}}
    patched = (await api.patch(f"{url}/status", json=status, headers=MERGE)).json()
    assert patched["status"] == {"observedGeneration": -1, "id": "x"}
    assert patched["spec"]["pruneEntries"] is True
    assert "labels" not in patched["metadata"]

    patched["status"] = {"id": "x", "adopted": True}
    replaced = (await api.put(f"{url}/status", json=patched)).json()
    assert replaced["status"] == {"id": "x", "adopted": True}
    assert (await api.get(f"{url}/status")).json() == replaced


# The CRD schema: pruning, defaults, validation, CEL


async def test_undeclared_fields_are_pruned_silently(api: httpx.AsyncClient) -> None:
    body = store()
    body["spec"]["junk"] = 1
    body["metadata"]["junk"] = 2
    body["extra"] = 3
    created = await create(api, body)
    assert "junk" not in created["spec"]
    assert "junk" not in created["metadata"]
    assert "extra" not in created

    condition = {"type": "Ready", "status": "True", "reason": "Synced", "message": "", "lastTransitionTime": NOW}
    status = {"status": {"id": "x", "kopf": {"progress": {}}, "conditions": [condition | {"x": 1}]}}
    patched = (await api.patch(f"{STORES}/checkout/status", json=status, headers=MERGE)).json()
    assert patched["status"] == {"observedGeneration": -1, "id": "x", "conditions": [condition]}


async def test_defaults_are_applied(api: httpx.AsyncClient) -> None:
    created = await create(api, store())
    assert created["spec"] == {
        "apiTokenSecretRef": {"name": "fastly-api-token", "key": "token"},
        "adoptionPolicy": "AdoptOrCreate",
        "resyncInterval": "10m",
        "pruneEntries": False,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"adoptionPolicy": "Maybe"},
            'spec.adoptionPolicy: Unsupported value: "Maybe": supported values: "AdoptOrCreate", "Adopt", "MustCreate"',
        ),
        ({"name": "has space"}, 'spec.name: Invalid value: "has space": spec.name in body should match'),
        ({"name": "x" * 256}, "spec.name: Too long: may not be more than 255 bytes"),
        ({"pruneEntries": "yes"}, 'spec.pruneEntries in body must be of type boolean: "string"'),
        ({"resyncInterval": "soon"}, "spec.resyncInterval: Invalid value"),
        ({"entries": [{"name": "A"}]}, "spec.entries[0].secretKeyRef: Required value"),
    ],
)
async def test_schema_violations_are_422_with_the_servers_wording(
    api: httpx.AsyncClient, spec: dict[str, Any], message: str
) -> None:
    status = assert_status(await api.post(STORES, json=store(**spec)), 422, "Invalid", message)
    assert status["message"].startswith('FastlySecretStore.fastly.operator.dev "checkout" is invalid: ')
    assert status["details"]["causes"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"apiTokenSecretRef": {"name": "../../victim/secrets/victim-secret"}},
            'spec.apiTokenSecretRef.name: Invalid value: "../../victim/secrets/victim-secret"',
        ),
        ({"apiTokenSecretRef": {"name": "Upper"}}, "spec.apiTokenSecretRef.name in body should match"),
        ({"apiTokenSecretRef": {"name": "t" * 254}}, "spec.apiTokenSecretRef.name: Too long"),
        ({"apiTokenSecretRef": {"name": "t", "key": ".."}}, "a Secret key must not be '.' or '..'"),
        ({"apiTokenSecretRef": {"name": "t", "key": "a/b"}}, "spec.apiTokenSecretRef.key in body should match"),
        (
            {"entries": [{"name": "A", "secretKeyRef": {"name": "../other", "key": "k"}}]},
            "spec.entries[0].secretKeyRef.name in body should match",
        ),
        (
            {"entries": [{"name": "A", "secretKeyRef": {"name": "s", "key": "."}}]},
            "spec.entries[0].secretKeyRef.key: Invalid value",
        ),
        ({"entriesFrom": [{"secretRef": {"name": "a/b"}}]}, "spec.entriesFrom[0].secretRef.name in body should match"),
        ({"entries": [{"name": "..", "secretKeyRef": {"name": "s", "key": "k"}}]}, "must not be '.' or '..'"),
        ({"entries": [{"name": ".", "secretKeyRef": {"name": "s", "key": "k"}}]}, "must not be '.' or '..'"),
        ({"name": ".."}, "spec.name must not be '.' or '..'"),
        ({"resyncInterval": "500ms"}, "spec.resyncInterval must be at least 1s"),
        ({"resyncInterval": "0s"}, "spec.resyncInterval must be at least 1s"),
        ({"deletionPolicy": "Orphan"}, 'spec.deletionPolicy: Unsupported value: "Orphan"'),
    ],
    ids=[
        "token-traversal",
        "token-upper-case",
        "token-too-long",
        "token-key-dotdot",
        "token-key-slash",
        "entry-secret-traversal",
        "entry-key-dot",
        "entries-from-slash",
        "entry-name-dotdot",
        "entry-name-dot",
        "store-name-dotdot",
        "resync-500ms",
        "resync-0s",
        "deletion-policy",
    ],
)
async def test_unsafe_names_and_short_intervals_are_refused(
    api: httpx.AsyncClient, spec: dict[str, Any], message: str
) -> None:
    body = store()
    body["spec"] |= spec
    assert_status(await api.post(STORES, json=body), 422, "Invalid", message)
    assert (await api.get(f"{STORES}/checkout")).status_code == 404


@pytest.mark.parametrize(
    "spec",
    [
        {"resyncInterval": "0"},
        {"resyncInterval": "1s"},
        {"resyncInterval": "1500ms"},
        {"resyncInterval": "1h30m"},
        {"apiTokenSecretRef": {"name": "fastly.api-token", "key": "fastly_API.token-2"}},
        {"entries": [{"name": "..A", "secretKeyRef": {"name": "s", "key": ".hidden"}}]},
        {"deletionPolicy": "Retain"},
    ],
    ids=["resync-off", "resync-1s", "resync-1500ms", "resync-compound", "dotted-names", "dotted-entry", "retain"],
)
async def test_valid_names_and_intervals_are_accepted(api: httpx.AsyncClient, spec: dict[str, Any]) -> None:
    body = store()
    body["spec"] |= spec
    created = await create(api, body)
    assert {key: created["spec"][key] for key in spec} == {
        key: value | {"key": "token"} if key == "apiTokenSecretRef" and "key" not in value else value
        for key, value in spec.items()
    }


async def test_a_new_object_gets_the_default_status_and_keeps_no_status_sent(api: httpx.AsyncClient) -> None:
    body = store()
    body["status"] = {"observedGeneration": 1, "id": "forged"}
    created = await create(api, body)
    assert created["status"] == NEW_STATUS
    assert (await api.get(f"{STORES}/checkout")).json()["status"] == NEW_STATUS


async def test_conditions_follow_metav1_condition(api: httpx.AsyncClient) -> None:
    await create(api, store())
    url = f"{STORES}/checkout/status"
    good = {"type": "Ready", "status": "False", "reason": "TooManyEntries", "message": "m", "lastTransitionTime": NOW}
    assert (await api.patch(url, json={"status": {"conditions": [good]}}, headers=MERGE)).status_code == 200
    for broken, message in [
        ({k: v for k, v in good.items() if k != "reason"}, "status.conditions[0].reason: Required value"),
        ({k: v for k, v in good.items() if k != "message"}, "status.conditions[0].message: Required value"),
        (good | {"reason": "Two words"}, "status.conditions[0].reason in body should match"),
        (good | {"observedGeneration": -1}, "status.conditions[0].observedGeneration in body should be greater"),
    ]:
        response = await api.patch(url, json={"status": {"conditions": [broken]}}, headers=MERGE)
        assert_status(response, 422, "Invalid", message)
    many = [good | {"type": f"Type{index}"} for index in range(9)]
    response = await api.patch(url, json={"status": {"conditions": many}}, headers=MERGE)
    assert_status(response, 422, "Invalid", "status.conditions: Too many: 9: must have at most 8 items")


async def test_a_missing_required_field_is_422(api: httpx.AsyncClient) -> None:
    body = store()
    del body["spec"]["apiTokenSecretRef"]["name"]
    assert_status(await api.post(STORES, json=body), 422, "Invalid", "spec.apiTokenSecretRef.name: Required value")


@pytest.mark.parametrize("token", ["neither", "both"])
async def test_exactly_one_of_token_and_account_is_enforced(api: httpx.AsyncClient, token: str) -> None:
    body = store()
    if token == "neither":
        del body["spec"]["apiTokenSecretRef"]
    else:
        body["spec"]["accountRef"] = {"name": "platform"}
    assert_status(await api.post(STORES, json=body), 422, "Invalid", "set exactly one of spec.apiTokenSecretRef")


async def test_fastlyaccounts_are_served_cluster_scoped(api: httpx.AsyncClient) -> None:
    account = {
        "apiVersion": "fastly.operator.dev/v1alpha1",
        "kind": "FastlyAccount",
        "metadata": {"name": "platform"},
        "spec": {"apiTokenSecretRef": {"name": "fastly-api-token"}, "allowedNamespaces": {"names": ["shop"]}},
    }
    created = await api.post("/apis/fastly.operator.dev/v1alpha1/fastlyaccounts", json=account)
    assert created.status_code == 201, created.text
    assert "namespace" not in created.json()["metadata"]
    assert created.json()["spec"]["apiTokenSecretRef"]["key"] == "token"  # defaulted
    assert created.json()["status"] == {"observedGeneration": -1}


async def test_status_is_validated_too(api: httpx.AsyncClient) -> None:
    await create(api, store())
    condition = {"type": "Ready", "status": "Yes", "reason": "Synced", "message": "", "lastTransitionTime": NOW}
    bad = {"status": {"conditions": [condition]}}
    response = await api.patch(f"{STORES}/checkout/status", json=bad, headers=MERGE)
    assert_status(response, 422, "Invalid", 'status.conditions[0].status: Unsupported value: "Yes"')
    bad_time = {"status": {"conditions": [condition | {"status": "True", "lastTransitionTime": "now"}]}}
    response = await api.patch(f"{STORES}/checkout/status", json=bad_time, headers=MERGE)
    assert_status(response, 422, "Invalid", "must be of type date-time")


async def test_list_map_keys_must_be_unique(api: httpx.AsyncClient) -> None:
    entry = {"name": "A", "secretKeyRef": {"name": "s", "key": "k"}}
    response = await api.post(STORES, json=store(entries=[entry, entry]))
    assert_status(response, 422, "Invalid", 'spec.entries[1]: Duplicate value: map[string]interface {}{"name":"A"}')


async def test_cel_transition_rule_keeps_the_store_name_immutable(api: httpx.AsyncClient) -> None:
    await create(api, store())  # spec.name defaults to metadata.name: the same name may be set explicitly
    url = f"{STORES}/checkout"
    assert (await api.patch(url, json={"spec": {"name": "checkout"}}, headers=MERGE)).status_code == 200
    response = await api.patch(url, json={"spec": {"name": "renamed"}}, headers=MERGE)
    assert_status(response, 422, "Invalid", '<nil>: Invalid value: "object": spec.name is immutable')
    assert (await api.get(url)).json()["spec"]["name"] == "checkout"


# Finalizers and deletion


async def test_delete_without_finalizers_deletes_at_once(api: httpx.AsyncClient) -> None:
    await create(api, store())
    response = await api.delete(f"{STORES}/checkout")
    assert response.status_code == 200
    assert_status(await api.get(f"{STORES}/checkout"), 404, "NotFound")


async def test_finalizers_hold_deletion_until_the_last_is_removed(api: httpx.AsyncClient) -> None:
    body = store()
    body["metadata"]["finalizers"] = ["a", "b"]
    await create(api, body)
    url = f"{STORES}/checkout"
    marked = (await api.delete(url)).json()
    assert RFC3339.fullmatch(marked["metadata"]["deletionTimestamp"])
    assert marked["metadata"]["generation"] == 2  # marking for deletion bumps generation
    assert (await api.delete(url)).json() == marked  # deleting again changes nothing

    adding = await api.patch(url, json={"metadata": {"finalizers": ["a", "b", "c"]}}, headers=MERGE)
    assert_status(adding, 422, "Invalid", "no new finalizers can be added if the object is being deleted")
    kept = (await api.patch(url, json={"metadata": {"finalizers": ["b"]}}, headers=MERGE)).json()
    assert kept["metadata"]["finalizers"] == ["b"]
    last = await api.patch(url, json=[{"op": "remove", "path": "/metadata/finalizers/0"}], headers=JSON_PATCH)
    assert last.status_code == 200
    assert_status(await api.get(url), 404, "NotFound")
    await create(api, store())  # the name is free again


async def test_delete_preconditions(api: httpx.AsyncClient) -> None:
    await create(api, store())
    options = {"preconditions": {"uid": "someone-else"}}
    response = await api.request("DELETE", f"{STORES}/checkout", json=options)
    assert_status(response, 409, "Conflict", "Precondition failed: uid")


# Lists


async def test_lists_carry_kind_and_resource_version(api: httpx.AsyncClient, emulator: KubernetesEmulator) -> None:
    await create(api, store("b"))
    await create(api, store("a"))
    listed = (await api.get(STORES)).json()
    assert listed["kind"] == "FastlySecretStoreList"
    assert listed["apiVersion"] == "fastly.operator.dev/v1alpha1"
    assert listed["metadata"]["resourceVersion"] == emulator.store.resource_version
    assert [item["metadata"]["name"] for item in listed["items"]] == ["a", "b"]
    everywhere = (await api.get("/apis/fastly.operator.dev/v1alpha1/fastlysecretstores")).json()
    assert len(everywhere["items"]) == 2


async def test_namespaces_can_be_listed_and_created(api: httpx.AsyncClient) -> None:
    names = [item["metadata"]["name"] for item in (await api.get("/api/v1/namespaces")).json()["items"]]
    assert names == ["default", "shop"]
    created = await create(api, {"metadata": {"name": "team"}}, "/api/v1/namespaces")
    assert created["status"] == {"phase": "Active"}
    assert (await api.get("/api/v1/namespaces/team")).status_code == 200


async def test_label_and_field_selectors(api: httpx.AsyncClient) -> None:
    for name, tier in [("a", "gold"), ("b", "silver"), ("c", None)]:
        body = store(name)
        if tier:
            body["metadata"]["labels"] = {"tier": tier}
        await create(api, body)

    async def names(**params: str) -> list[str]:
        return [item["metadata"]["name"] for item in (await api.get(STORES, params=params)).json()["items"]]

    assert await names(labelSelector="tier=gold") == ["a"]
    assert await names(labelSelector="tier!=gold") == ["b", "c"]
    assert await names(labelSelector="tier in (gold, silver)") == ["a", "b"]
    assert await names(labelSelector="tier") == ["a", "b"]
    assert await names(labelSelector="!tier") == ["c"]
    assert await names(fieldSelector="metadata.name=b") == ["b"]


# Secrets


async def test_secrets_keep_data_base64_and_fold_string_data_in(api: httpx.AsyncClient) -> None:
    secret = {
        "metadata": {"name": "token"},
        "data": {"a": base64.b64encode(b"one").decode()},
        "stringData": {"b": "two"},
    }
    created = await create(api, secret, SECRETS)
    assert created["type"] == "Opaque"
    assert "stringData" not in created
    assert {key: base64.b64decode(value) for key, value in created["data"].items()} == {"a": b"one", "b": b"two"}
    bad = {"metadata": {"name": "bad"}, "data": {"a": "not base64!"}}
    assert_status(await api.post(SECRETS, json=bad), 400, "BadRequest", "illegal base64 data")
    listed = (await api.get(SECRETS)).json()
    assert listed["kind"] == "SecretList"
    assert "kind" not in listed["items"][0]


# Watches


async def watch(api: httpx.AsyncClient, url: str, count: int, **params: str) -> list[dict[str, Any]]:
    """The first `count` events of a watch stream."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(5), api.stream("GET", url, params={"watch": "true", **params}) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.strip():
                events.append(json.loads(line))
            if len(events) == count:
                break
    return events


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event["type"], event["object"]["metadata"].get("name", "")) for event in events]


async def test_watch_from_a_resource_version_sends_what_came_after(api: httpx.AsyncClient) -> None:
    first = await create(api, store("a"))
    await create(api, store("b"))
    await api.delete(f"{STORES}/a")
    events = await watch(api, STORES, 2, resourceVersion=first["metadata"]["resourceVersion"])
    assert kinds(events) == [("ADDED", "b"), ("DELETED", "a")]


async def test_watch_without_a_version_lists_then_streams_live(api: httpx.AsyncClient) -> None:
    await create(api, store("a"))
    async with asyncio.timeout(5), api.stream("GET", STORES, params={"watch": "true"}) as response:
        events = aiter(response.aiter_lines())
        assert kinds([json.loads(await anext(events))]) == [("ADDED", "a")]  # the existing object, first
        await create(api, store("b"))  # then what happens while it watches
        await api.patch(f"{STORES}/b", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
        live = [json.loads(await anext(events)) for _ in range(2)]
    assert kinds(live) == [("ADDED", "b"), ("MODIFIED", "b")]


async def test_watch_with_a_label_selector_sees_objects_enter_and_leave(api: httpx.AsyncClient) -> None:
    since = (await create(api, store("a")))["metadata"]["resourceVersion"]
    url = f"{STORES}/a"
    await api.patch(url, json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
    await api.patch(url, json={"metadata": {"labels": {"x": "z"}}}, headers=MERGE)
    events = await watch(api, STORES, 2, resourceVersion=since, labelSelector="x=y")
    assert kinds(events) == [("ADDED", "a"), ("DELETED", "a")]


async def test_watch_from_a_forgotten_version_is_410_gone() -> None:
    emulator = KubernetesEmulator(namespaces=["shop"], watch_history=2)
    async with emulator, httpx.AsyncClient(base_url=str(emulator.server_url)) as api:
        for name in "abcd":
            await create(api, store(name))
        (event,) = await watch(api, STORES, 1, resourceVersion="1")
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")


async def test_watch_ends_after_timeout_seconds(api: httpx.AsyncClient) -> None:
    async with asyncio.timeout(5):
        response = await api.get(STORES, params={"watch": "true", "timeoutSeconds": "1"})
    assert response.status_code == 200
    assert response.text == ""


async def test_watch_with_initial_events_ends_them_with_a_bookmark(api: httpx.AsyncClient) -> None:
    await create(api, store("a"))
    events = await watch(api, STORES, 2, sendInitialEvents="true", resourceVersionMatch="NotOlderThan")
    assert kinds(events) == [("ADDED", "a"), ("BOOKMARK", "")]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


# Direct access, the kubernetes client, threads


async def test_store_access_from_python_is_seen_over_http(api: httpx.AsyncClient, emulator: KubernetesEmulator) -> None:
    emulator.store.create("fastlysecretstores", store(), namespace="shop")
    emulator.store.patch("fastlysecretstores", "shop", "checkout", {"spec": {"pruneEntries": True}})
    assert (await api.get(f"{STORES}/checkout")).json()["spec"]["pruneEntries"] is True
    assert [obj["metadata"]["name"] for obj in emulator.store.objects("fastlysecretstores", "shop")] == ["checkout"]
    emulator.store.delete("fastlysecretstores", "shop", "checkout")
    assert (await api.get(f"{STORES}/checkout")).status_code == 404


async def test_kmock_reactions_still_inject_faults(api: httpx.AsyncClient, emulator: KubernetesEmulator) -> None:
    emulator["get", re.compile(r".*/fastlysecretstores/broken")] << 503
    assert (await api.get(f"{STORES}/broken")).status_code == 503
    assert (await api.get(f"{STORES}/other")).status_code == 404


def test_run_in_thread_serves_sync_callers_and_the_kubernetes_client(tmp_path: Any) -> None:
    import kubernetes

    emulator = KubernetesEmulator(namespaces=["shop"])
    with emulator.run_in_thread() as url:
        assert httpx.get(f"{url}/api/v1/namespaces").status_code == 200
        client = kubernetes.client.ApiClient(emulator.client_configuration())
        custom = kubernetes.client.CustomObjectsApi(client)
        created = custom.create_namespaced_custom_object(
            "fastly.operator.dev", "v1alpha1", "shop", "fastlysecretstores", store()
        )
        assert created["metadata"]["generation"] == 1
        core = kubernetes.client.CoreV1Api(client)
        core.create_namespaced_secret("shop", {"metadata": {"name": "token"}, "stringData": {"token": "t"}})
        assert core.read_namespaced_secret("token", "shop").data == {"token": "dA=="}
        with pytest.raises(kubernetes.client.ApiException) as raised:
            core.read_namespaced_secret("nope", "shop")
        assert raised.value.status == 404

        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            str(emulator.write_kubeconfig(tmp_path / "kubeconfig")), client_configuration=config
        )
        assert config.host == url
        names = [
            ns.metadata.name
            for ns in kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config)).list_namespace().items
        ]
        assert names == ["shop"]
    assert emulator.server_url is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api")
