"""Entries pushed from Secrets: sealed, decrypted by the emulator to the source bytes, written only on change."""

from __future__ import annotations

import json
from typing import Any

from reconcile_support import DictSecrets, Marks, view

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.reconcile.conditions import Outcome, build_conditions, find
from fastly_secret_store_operator.reconcile.entries import MAX_ENTRIES, EntryRecord
from fastly_secret_store_operator.reconcile.object import Environment, ReconcileResult, reconcile_object

CANARY = b"canary-value-\x00\xff-9d1e"
ENTRIES = {
    "entries": [
        {"name": "STRIPE_KEY", "secretKeyRef": {"name": "stripe", "key": "api-key"}},
        {"name": "BINARY", "secretKeyRef": {"name": "stripe", "key": "blob"}},
    ],
    "entriesFrom": [{"secretRef": {"name": "app-config"}, "prefix": "APP_"}],
}


def writes(fastly: FastlyEmulator) -> list[str]:
    return [str(r.route) for r in fastly.requests if r.method != "GET"]


def entry_writes(fastly: FastlyEmulator) -> list[str]:
    return [r.route for r in fastly.requests if r.route and r.route.endswith("/secrets") and r.method != "GET"]


def ready_reason(result: ReconcileResult) -> str:
    condition = find(result.status["conditions"], "Ready")
    assert condition is not None
    return str(condition["reason"])


async def sync(
    env: Environment, spec: dict[str, Any], status: dict[str, Any] | None = None, **kw: Any
) -> ReconcileResult:
    return await reconcile_object(view(spec, status=status), env, checkpoint=Marks(), **kw)


def seed(secrets: DictSecrets) -> None:
    secrets.put("stripe", **{"api-key": CANARY, "blob": bytes(range(256))})
    secrets.put("app-config", HOST="db.internal", PORT="5432")


async def test_values_arrive_sealed_and_decrypt_to_the_source_bytes(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    result = await sync(env, ENTRIES)
    store_id = result.status["id"]
    assert sorted(fastly.secret_names(store_id)) == ["APP_HOST", "APP_PORT", "BINARY", "STRIPE_KEY"]
    assert fastly.plaintext(store_id, "STRIPE_KEY") == CANARY
    assert fastly.plaintext(store_id, "BINARY") == bytes(range(256))
    assert fastly.plaintext(store_id, "APP_PORT") == b"5432"
    assert ready_reason(result) == "Synced"
    assert [e["name"] for e in result.status["entries"]] == ["APP_HOST", "APP_PORT", "BINARY", "STRIPE_KEY"]
    remote = {s.name: s for s in fastly.secrets(store_id)}
    for entry in result.status["entries"]:
        assert entry["digest"] == remote[entry["name"]].digest
    client_keys = [r for r in fastly.requests if r.route == "POST /resources/stores/secret/client-key"]
    assert len(client_keys) == 1, "one client key serves every entry"


async def test_nothing_is_written_again_when_nothing_changed(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    first = await sync(env, ENTRIES)
    fastly.requests.clear()
    again = await sync(env, ENTRIES, first.status)
    resynced = await sync(env, ENTRIES, again.status, resync=True)
    assert writes(fastly) == []
    assert resynced.status == first.status
    assert resynced.entries_skipped == 4


async def test_a_changed_key_rewrites_only_its_entry(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    first = await sync(env, ENTRIES)
    secrets.put("app-config", HOST="db2.internal", PORT="5432")
    fastly.requests.clear()
    second = await sync(env, ENTRIES, first.status)
    assert entry_writes(fastly) == ["PUT /resources/stores/secret/{store_id}/secrets"]
    assert fastly.plaintext(second.status["id"], "APP_HOST") == b"db2.internal"
    assert [e.reason for e in second.events] == ["EntriesWritten"]
    assert "APP_HOST" in second.events[0].message


async def test_two_sources_of_one_entry_name_are_refused_not_guessed(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    first = await sync(env, {**ENTRIES, "pruneEntries": True})
    store_id = first.status["id"]
    secrets.put("overrides", host=b"explicit")
    spec = {
        **ENTRIES,
        "pruneEntries": True,
        "entries": [*ENTRIES["entries"], {"name": "APP_HOST", "secretKeyRef": {"name": "overrides", "key": "host"}}],
    }
    secrets.put("app-config", HOST="db.internal", PORT="6543")
    result = await sync(env, spec, status=first.status)
    assert ready_reason(result) == "EntryConflict"
    message = find(result.status["conditions"], "Ready")["message"]  # type: ignore[index]
    assert "entry APP_HOST" in message
    assert "Secret overrides (spec.entries[2])" in message
    assert "Secret app-config (spec.entriesFrom[0])" in message
    # Neither source wins: the entry keeps its value and its record; the other entries still sync.
    assert fastly.plaintext(store_id, "APP_HOST") == b"db.internal"
    assert "APP_HOST" in [e["name"] for e in result.status["entries"]]
    assert fastly.plaintext(store_id, "APP_PORT") == b"6543"


async def test_more_than_a_thousand_entries_write_nothing(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    secrets.put("big", **{f"K{index}": b"v" for index in range(1001)})
    result = await sync(env, {"entriesFrom": [{"secretRef": {"name": "big"}}]})
    assert ready_reason(result) == "TooManyEntries"
    condition = find(result.status["conditions"], "Stalled")
    assert condition is not None
    assert condition["status"] == "True"
    assert "1001 entries" in condition["message"]
    assert "1000" in condition["message"]
    assert entry_writes(fastly) == []


async def test_entry_names_dot_and_dot_dot_are_refused(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    secrets.put("dots", **{".": b"a", "..": b"b", "ok": b"c"})
    result = await sync(env, {"entriesFrom": [{"secretRef": {"name": "dots"}, "prefix": "."}]})
    assert ready_reason(result) == "InvalidEntryName"
    assert sorted(fastly.secret_names(result.status["id"])) == ["...", ".ok"]  # "." + "." is the one refused
    refused = await sync(env, {"entries": [{"name": "..", "secretKeyRef": {"name": "dots", "key": "ok"}}]})
    assert ready_reason(refused) == "InvalidEntryName"


async def test_many_problems_make_one_bounded_message(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    long = "N" * 250
    spec = {
        "entries": [
            {"name": f"{long}{index:03d}", "secretKeyRef": {"name": "gone", "key": "k"}} for index in range(1000)
        ]
    }
    result = await sync(env, spec)
    assert ready_reason(result) == "SecretNotFound"
    for condition in result.status["conditions"]:
        assert len(condition["message"]) <= 1024
    assert "more" in find(result.status["conditions"], "Ready")["message"]  # type: ignore[index]


async def test_a_refused_client_key_is_replaced_and_the_write_retried_once(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    fastly.refuse_client_keys(count=1)
    result = await sync(env, ENTRIES)
    assert ready_reason(result) == "Synced"
    assert fastly.plaintext(result.status["id"], "STRIPE_KEY") == CANARY
    key_fetches = [r for r in fastly.requests if r.route and r.route.endswith("/client-key")]
    assert len(key_fetches) == 2


async def test_entries_changed_out_of_band_are_repaired(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    first = await sync(env, ENTRIES)
    store_id = first.status["id"]
    fastly.delete_secret_direct(store_id, "APP_HOST")
    fastly.put_secret_direct(store_id, "STRIPE_KEY", b"tampered")
    fastly.requests.clear()
    second = await sync(env, ENTRIES, first.status, resync=True)
    assert len(entry_writes(fastly)) == 2
    assert fastly.plaintext(store_id, "APP_HOST") == b"db.internal"
    assert fastly.plaintext(store_id, "STRIPE_KEY") == CANARY
    assert ready_reason(second) == "Synced"


async def test_prune_deletes_only_what_this_object_wrote(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    spec = {**ENTRIES, "pruneEntries": True}
    first = await sync(env, spec)
    store_id = first.status["id"]
    fastly.put_secret_direct(store_id, "SOMEONE_ELSES", b"x")
    spec["entriesFrom"] = []
    second = await sync(env, spec, first.status)
    assert sorted(fastly.secret_names(store_id)) == ["BINARY", "SOMEONE_ELSES", "STRIPE_KEY"]
    assert [e["name"] for e in second.status["entries"]] == ["BINARY", "STRIPE_KEY"]
    assert any(e.reason == "EntriesPruned" for e in second.events)


async def test_without_prune_undeclared_entries_stay(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    first = await sync(env, ENTRIES)
    store_id = first.status["id"]
    second = await sync(env, {**ENTRIES, "entriesFrom": []}, first.status)
    assert sorted(fastly.secret_names(store_id)) == ["APP_HOST", "APP_PORT", "BINARY", "STRIPE_KEY"]
    assert [e["name"] for e in second.status["entries"]] == ["BINARY", "STRIPE_KEY"]


async def test_missing_secret_key_and_oversize_value_are_named_while_others_sync(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    secrets.put("stripe", **{"api-key": CANARY, "blob": b"x" * (64 * 1024 + 1)})
    spec = {
        "entries": [
            {"name": "STRIPE_KEY", "secretKeyRef": {"name": "stripe", "key": "api-key"}},
            {"name": "BIG", "secretKeyRef": {"name": "stripe", "key": "blob"}},
            {"name": "NOKEY", "secretKeyRef": {"name": "stripe", "key": "absent"}},
            {"name": "NOSECRET", "secretKeyRef": {"name": "absent", "key": "k"}},
        ],
        "pruneEntries": True,
    }
    result = await sync(env, spec)
    store_id = result.status["id"]
    assert fastly.secret_names(store_id) == ["STRIPE_KEY"]
    ready = find(result.status["conditions"], "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    for hint in ("65537 bytes", "BIG", "NOKEY", "'absent'", "shop/absent"):
        assert hint in ready["message"] or hint == ready["reason"], hint
    assert ready["reason"] in {"ValueTooLarge", "KeyNotFound", "SecretNotFound"}


async def test_a_missing_entries_from_secret_prunes_nothing(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    spec = {**ENTRIES, "pruneEntries": True}
    first = await sync(env, spec)
    del secrets.data[("shop", "app-config")]
    second = await sync(env, spec, first.status)
    assert sorted(fastly.secret_names(first.status["id"])) == ["APP_HOST", "APP_PORT", "BINARY", "STRIPE_KEY"]
    assert ready_reason(second) == "SecretNotFound"


async def test_values_never_reach_status_or_events(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    first = await sync(env, ENTRIES)
    secrets.put("stripe", **{"api-key": CANARY + b"2", "blob": b"b"})
    second = await sync(env, ENTRIES, first.status)
    for result in (first, second):
        text = repr(result.status) + repr(result.events)
        assert "canary-value" not in text


async def test_rate_limit_mid_pass_keeps_what_was_written(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    first = await sync(env, {})
    # Budget: the client key and two entry writes; the rest are refused until the window resets.
    fastly.faults.add(
        method="PUT",
        kind="status",
        status=429,
        count=10,
        headers={"Fastly-RateLimit-Remaining": "0", "Fastly-RateLimit-Reset": "4102444800"},
    )
    limited = await sync(env, ENTRIES, first.status)
    assert ready_reason(limited) == "RateLimited"
    assert find(limited.status["conditions"], "Stalled")["status"] == "False"  # type: ignore[index]
    assert limited.retry_after is not None
    assert limited.retry_after > 60
    fastly.faults.clear()
    fastly.requests.clear()
    done = await sync(env, ENTRIES, limited.status)
    assert ready_reason(done) == "Synced"
    assert len(entry_writes(fastly)) == 4


async def test_an_entry_fastly_refuses_is_named_while_the_others_are_written(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    first = await sync(env, {})
    fastly.faults.add(method="PUT", kind="status", status=400, count=1)
    result = await sync(env, ENTRIES, first.status)
    assert ready_reason(result) == "EntryRejected"
    assert len(fastly.secret_names(first.status["id"])) == 3
    condition = find(result.status["conditions"], "Ready")
    assert condition is not None
    assert "Fastly refused entry" in condition["message"]
    again = await sync(env, ENTRIES, result.status)
    assert ready_reason(again) == "Synced"
    assert len(fastly.secret_names(first.status["id"])) == 4


async def test_a_store_deleted_mid_pass_is_looked_up_again(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    seed(secrets)
    first = await sync(env, {})
    fastly.faults.add(method="PUT", kind="status", status=404, count=1)
    result = await sync(env, ENTRIES, first.status)
    assert ready_reason(result) == "StoreGone"
    stalled = find(result.status["conditions"], "Stalled")
    assert stalled is not None
    assert stalled["status"] == "False"


def test_the_status_of_an_object_at_the_entry_limit_stays_well_under_a_mebibyte() -> None:
    record = EntryRecord("N" * 255, "2026-12-04T10:00:00Z", "d" * 64, "f" * 64)
    status = {
        "id": "7nLoGzCcs1ZbDD8BaX3jKR",
        "entries": [record.as_status() for _ in range(MAX_ENTRIES)],
        "conditions": build_conditions(Outcome("SecretNotFound", "m" * 5000), (), 1),
    }
    assert len(json.dumps(status)) < 600 * 1024
    assert all(len(condition["message"]) <= 1024 for condition in status["conditions"])
