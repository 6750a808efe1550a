"""Entries with the real operator: sealed values, writes only on change, reactions to Secret edits, prune."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from harness import NAMESPACE, TOKEN, Cluster, OperatorProcess, unique, wait_for

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator

CANARY = b"canary-secret-value-\x00\xfe\xff-5e2a"
BINARY = bytes(range(256)) * 4

pytestmark = pytest.mark.usefixtures("operator")


def entry_writes(fastly: FastlyEmulator, store_id: str) -> list[str]:
    return [
        r.path
        for r in fastly.requests
        if r.method != "GET" and r.path.startswith(f"/resources/stores/secret/{store_id}/")
    ]


def with_entries(source: str, config: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiTokenSecretRef": {"name": "fastly-api-token"},
        "resyncInterval": "1s",
        "entries": [
            {"name": "API_KEY", "secretKeyRef": {"name": source, "key": "api-key"}},
            {"name": "BLOB", "secretKeyRef": {"name": source, "key": "blob"}},
        ],
        "entriesFrom": [{"secretRef": {"name": config}, "prefix": "APP_"}],
        **extra,
    }


@pytest.fixture
def synced(cluster: Cluster, fastly: FastlyEmulator) -> dict[str, Any]:
    name, source, config = unique("entries"), unique("source"), unique("config")
    cluster.put_secret(NAMESPACE, source, **{"api-key": CANARY, "blob": BINARY})
    cluster.put_secret(NAMESPACE, config, HOST="db.internal", PORT="5432")
    cluster.apply(NAMESPACE, name, with_entries(source, config, pruneEntries=True))
    body = cluster.wait_ready(NAMESPACE, name)
    return {"name": name, "source": source, "config": config, "id": body["status"]["id"], "body": body}


def test_values_decrypt_to_exactly_the_source_bytes(fastly: FastlyEmulator, synced: dict[str, Any]) -> None:
    store_id = synced["id"]
    assert sorted(fastly.secret_names(store_id)) == ["API_KEY", "APP_HOST", "APP_PORT", "BLOB"]
    assert fastly.plaintext(store_id, "API_KEY") == CANARY
    assert fastly.plaintext(store_id, "BLOB") == BINARY
    assert fastly.plaintext(store_id, "APP_HOST") == b"db.internal"
    entries = {e["name"]: e for e in synced["body"]["status"]["entries"]}
    for secret in fastly.secrets(store_id):
        assert entries[secret.name]["digest"] == secret.digest


def test_rotating_one_key_rewrites_exactly_its_entry_within_seconds(
    cluster: Cluster, fastly: FastlyEmulator, synced: dict[str, Any]
) -> None:
    store_id = synced["id"]
    fastly.requests.clear()
    cluster.put_secret(NAMESPACE, synced["config"], HOST="db2.internal", PORT="5432")
    wait_for("the new value reaches Fastly", lambda: fastly.plaintext(store_id, "APP_HOST") == b"db2.internal", 5)
    cluster.wait_ready(NAMESPACE, synced["name"])
    assert entry_writes(fastly, store_id) == [f"/resources/stores/secret/{store_id}/secrets"]


def test_unrelated_secret_changes_write_nothing(
    cluster: Cluster, fastly: FastlyEmulator, synced: dict[str, Any]
) -> None:
    store_id = synced["id"]
    fastly.requests.clear()
    cluster.label_secret(NAMESPACE, synced["source"], team="payments")
    cluster.put_secret(NAMESPACE, synced["source"], **{"api-key": CANARY, "blob": BINARY, "unused": "x"})
    # Two resync intervals and a Secret event later, the store was read but not written.
    wait_for("a resync has read the store", lambda: len([r for r in fastly.requests if store_id in r.path]) >= 3)
    assert entry_writes(fastly, store_id) == []


def test_out_of_band_changes_are_repaired_at_resync(
    cluster: Cluster, fastly: FastlyEmulator, synced: dict[str, Any]
) -> None:
    store_id = synced["id"]
    fastly.delete_secret_direct(store_id, "APP_PORT")
    fastly.put_secret_direct(store_id, "API_KEY", b"tampered")
    wait_for("the deleted entry is back", lambda: "APP_PORT" in fastly.secret_names(store_id), 10)
    wait_for("the tampered entry is restored", lambda: fastly.plaintext(store_id, "API_KEY") == CANARY, 10)


def test_prune_deletes_only_what_the_object_wrote(
    cluster: Cluster, fastly: FastlyEmulator, synced: dict[str, Any]
) -> None:
    store_id = synced["id"]
    fastly.put_secret_direct(store_id, "FOREIGN", b"not ours")
    cluster.patch_spec(NAMESPACE, synced["name"], {"entriesFrom": []})
    wait_for("pruned", lambda: sorted(fastly.secret_names(store_id)) == ["API_KEY", "BLOB", "FOREIGN"], 10)


def test_without_prune_nothing_is_deleted(cluster: Cluster, fastly: FastlyEmulator, synced: dict[str, Any]) -> None:
    store_id = synced["id"]
    cluster.patch_spec(NAMESPACE, synced["name"], {"pruneEntries": False, "entriesFrom": []})
    body = wait_for(
        "the spec change is reconciled",
        lambda: (b := cluster.wait_ready(NAMESPACE, synced["name"])) and len(b["status"]["entries"]) == 2 and b,
    )
    assert [e["name"] for e in body["status"]["entries"]] == ["API_KEY", "BLOB"]
    assert sorted(fastly.secret_names(store_id)) == ["API_KEY", "APP_HOST", "APP_PORT", "BLOB"]


def test_missing_secret_key_and_oversize_value(cluster: Cluster, fastly: FastlyEmulator) -> None:
    name, source = unique("problems"), unique("source")
    cluster.put_secret(NAMESPACE, source, ok="fine", big=b"x" * (64 * 1024 + 1))
    spec = {
        "apiTokenSecretRef": {"name": "fastly-api-token"},
        "entries": [
            {"name": "OK", "secretKeyRef": {"name": source, "key": "ok"}},
            {"name": "BIG", "secretKeyRef": {"name": source, "key": "big"}},
            {"name": "NOKEY", "secretKeyRef": {"name": source, "key": "absent"}},
            {"name": "NOSECRET", "secretKeyRef": {"name": "absent-secret", "key": "k"}},
        ],
    }
    cluster.apply(NAMESPACE, name, spec)
    ready = wait_for(
        "a problem is reported",
        lambda: (c := cluster.condition(NAMESPACE, name)) and c["status"] == "False" and "entry" in c["message"] and c,
    )
    assert ready["reason"] in {"KeyNotFound", "SecretNotFound", "ValueTooLarge"}
    for hint in ("BIG", "65537 bytes", "'absent'", f"{NAMESPACE}/absent-secret"):
        assert hint in ready["message"]
    store_id = cluster.get(NAMESPACE, name)["status"]["id"]  # type: ignore[index]
    assert fastly.secret_names(store_id) == ["OK"]
    # Fixing the source heals it without waiting for a resync.
    cluster.put_secret(NAMESPACE, "absent-secret", k="now here")
    cluster.put_secret(NAMESPACE, source, ok="fine", big="small now", absent="here too")
    cluster.wait_ready(NAMESPACE, name, timeout=10)
    assert sorted(fastly.secret_names(store_id)) == ["BIG", "NOKEY", "NOSECRET", "OK"]


def test_restart_writes_nothing(
    cluster: Cluster, fastly: FastlyEmulator, operator: OperatorProcess, synced: dict[str, Any]
) -> None:
    store_id = synced["id"]
    operator.stop()
    fastly.requests.clear()
    operator.start()
    wait_for(
        "the restarted operator has looked at the store", lambda: any(store_id in r.path for r in fastly.requests), 20
    )
    wait_for("a resync has run", lambda: len([r for r in fastly.requests if store_id in r.path]) >= 3, 20)
    assert entry_writes(fastly, store_id) == []
    assert [r for r in fastly.requests if r.method != "GET"] == []


def test_canary_values_never_leak(cluster: Cluster, operator: OperatorProcess, synced: dict[str, Any]) -> None:
    body = cluster.get(NAMESPACE, synced["name"])
    texts = {
        "logs (debug)": operator.logs(),
        "events": str(cluster.events(NAMESPACE)),
        "status": str(body["status"]),  # type: ignore[index]
        "annotations": str(body["metadata"].get("annotations")),  # type: ignore[index]
    }
    needles = [
        CANARY.decode("latin-1"),
        "canary-secret-value",
        base64.b64encode(CANARY).decode(),  # as a Secret's data carries it
        TOKEN,
        base64.b64encode(TOKEN.encode()).decode(),
    ]
    for where, text in texts.items():
        for needle in needles:
            assert needle not in text, f"{needle!r} leaked into {where}"
