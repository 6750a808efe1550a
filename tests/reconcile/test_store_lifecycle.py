"""The store's lifecycle through reconcile_object and finalize_object, against the Fastly emulator."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from reconcile_support import NAMESPACE, TOKEN, DictSecrets, Marks, MemoryOwners, view

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator, Route
from fastly_secret_store_operator.fastly import FastlyClient, Store
from fastly_secret_store_operator.reconcile.conditions import find, now_rfc3339, rfc3339
from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.object import Environment, finalize_object, reconcile_object
from fastly_secret_store_operator.reconcile.store import DeleteAction


def ready(status: dict[str, Any]) -> dict[str, Any]:
    condition = find(status["conditions"], "Ready")
    assert condition is not None
    return dict(condition)


def writes(fastly: FastlyEmulator) -> list[str]:
    return [str(r.route) for r in fastly.requests if r.method != "GET"]


async def test_creates_the_store_and_records_it(fastly: FastlyEmulator, env: Environment) -> None:
    marks = Marks()
    result = await reconcile_object(view({"name": "checkout-prod"}, generation=3), env, checkpoint=marks)

    store = fastly.store_named("checkout-prod")
    assert store is not None
    assert result.status["id"] == store.id
    assert result.status["storeName"] == "checkout-prod"
    assert result.status["createdAt"].endswith("Z")
    assert result.status["adopted"] is False
    assert result.status["observedGeneration"] == 3
    assert "createRequestedAt" not in result.status
    assert ready(result.status)["status"] == "True"
    assert ready(result.status)["reason"] == "Synced"
    assert ready(result.status)["observedGeneration"] == 3
    assert marks.count == 1, "the in-flight create must be persisted before the POST"
    assert [e.reason for e in result.events] == ["Created"]


async def test_name_defaults_to_metadata_name(fastly: FastlyEmulator, env: Environment) -> None:
    await reconcile_object(view(), env, checkpoint=Marks())
    assert fastly.store_named("checkout") is not None


async def test_second_pass_changes_nothing(fastly: FastlyEmulator, env: Environment) -> None:
    first = await reconcile_object(view(), env, checkpoint=Marks())
    fastly.requests.clear()
    second = await reconcile_object(view(status=first.status), env, checkpoint=Marks())
    assert second.status == first.status
    assert writes(fastly) == []
    assert second.events == []


@pytest.mark.parametrize("policy", ["AdoptOrCreate", "Adopt"])
async def test_adopts_an_existing_store(fastly: FastlyEmulator, env: Environment, policy: str) -> None:
    existing = fastly.create_store_direct("checkout")
    result = await reconcile_object(view({"adoptionPolicy": policy}), env, checkpoint=Marks())
    assert result.status["id"] == existing.id
    assert result.status["adopted"] is True
    assert len(fastly.stores()) == 1
    assert [e.reason for e in result.events] == ["Adopted"]


async def test_adopt_reports_a_missing_store_and_creates_nothing(fastly: FastlyEmulator, env: Environment) -> None:
    result = await reconcile_object(view({"adoptionPolicy": "Adopt"}), env, checkpoint=Marks())
    assert fastly.stores() == []
    assert ready(result.status)["reason"] == "StoreNotFound"
    assert find(result.status["conditions"], "Stalled")["status"] == "True"  # type: ignore[index]
    assert "AdoptOrCreate" in ready(result.status)["message"]


async def test_must_create_refuses_an_existing_store(fastly: FastlyEmulator, env: Environment) -> None:
    existing = fastly.create_store_direct("checkout")
    result = await reconcile_object(view({"adoptionPolicy": "MustCreate"}), env, checkpoint=Marks())
    assert ready(result.status)["reason"] == "StoreAlreadyExists"
    assert existing.id in ready(result.status)["message"]
    assert "id" not in result.status
    assert len(fastly.stores()) == 1


async def test_several_stores_with_the_name_stall(
    fastly: FastlyEmulator, env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator, like the real API, refuses duplicate names; the operator must still never pick one at random.
    first, second = fastly.create_store_direct("checkout"), fastly.create_store_direct("other")
    twins = [await FastlyClient(TOKEN, endpoint=fastly.url).get_store(first.id)] * 2

    async def find_stores(self: FastlyClient, name: str) -> list[Store]:
        return twins

    monkeypatch.setattr(FastlyClient, "find_stores", find_stores)
    assert second.id
    result = await reconcile_object(view(), env, checkpoint=Marks())
    assert ready(result.status)["reason"] == "AmbiguousName"
    assert first.id in ready(result.status)["message"]


async def test_a_lost_create_is_resolved_by_name_not_repeated(fastly: FastlyEmulator, env: Environment) -> None:
    # The operator asked for the create, then lost the answer (killed or cut off): the store exists.
    fastly.create_store_direct("checkout")
    status = {"createRequestedAt": now_rfc3339()}
    result = await reconcile_object(view({"adoptionPolicy": "MustCreate"}, status=status), env, checkpoint=Marks())
    assert ready(result.status)["status"] == "True"
    assert result.status["adopted"] is False
    assert "createRequestedAt" not in result.status
    assert len(fastly.stores()) == 1


async def test_a_create_cut_off_before_it_landed_is_retried_only_after_the_grace_period(
    fastly: FastlyEmulator, env: Environment
) -> None:
    fastly.faults.add(method="POST", route="/resources/stores/secret", kind="drop", count=1)
    first = await reconcile_object(view(), env, checkpoint=Marks())
    assert ready(first.status)["reason"] == "Creating"
    assert find(first.status["conditions"], "Stalled")["status"] == "False"  # type: ignore[index]
    assert "createRequestedAt" in first.status, "the unanswered create must be remembered"
    fastly.requests.clear()
    second = await reconcile_object(view(status=first.status), env, checkpoint=Marks())
    assert ready(second.status)["reason"] == "Creating"
    assert "POST /resources/stores/secret" not in writes(fastly), "no second create inside the grace period"
    third = await reconcile_object(view(status=second.status), replace(env, create_grace=0), checkpoint=Marks())
    stores = fastly.stores()
    assert len(stores) == 1
    assert third.status["id"] == stores[0].id
    assert third.status["adopted"] is False


@pytest.mark.parametrize(
    "fault",
    [{"kind": "lost"}, {"kind": "garble", "garbling": "not-json"}, {"kind": "garble", "garbling": "no-created-at"}],
)
async def test_a_create_whose_answer_is_lost_or_unreadable_makes_one_store_even_where_names_may_repeat(
    fastly: FastlyEmulator, env: Environment, fault: dict[str, str]
) -> None:
    fastly.allow_duplicate_names = True
    fastly.faults.add(route=Route.CREATE_STORE, count=1, **fault)  # type: ignore[arg-type]
    first = await reconcile_object(view({"adoptionPolicy": "MustCreate"}), env, checkpoint=Marks())
    assert ready(first.status)["reason"] in ("Synced", "Creating")
    assert ready(first.status)["reason"] not in ("FastlyRejected", "StoreAlreadyExists")
    result = first
    for _ in range(3):
        if ready(result.status)["reason"] == "Synced":
            break
        result = await reconcile_object(
            view({"adoptionPolicy": "MustCreate"}, status=result.status), env, checkpoint=Marks()
        )
    assert ready(result.status)["reason"] == "Synced"
    assert result.status["adopted"] is False, "a store this object created is never reported as adopted"
    assert len(fastly.stores()) == 1


async def test_store_deleted_out_of_band_is_recreated(fastly: FastlyEmulator, env: Environment) -> None:
    first = await reconcile_object(view(), env, checkpoint=Marks())
    fastly.delete_store_direct(first.status["id"])
    second = await reconcile_object(view(status=first.status), env, resync=True, checkpoint=Marks())
    assert second.status["id"] != first.status["id"]
    assert fastly.store_named("checkout") is not None
    assert [e.reason for e in second.events] == ["Recreated"]


async def test_store_deleted_out_of_band_is_reported_under_adopt(fastly: FastlyEmulator, env: Environment) -> None:
    existing = fastly.create_store_direct("checkout")
    first = await reconcile_object(view({"adoptionPolicy": "Adopt"}), env, checkpoint=Marks())
    fastly.delete_store_direct(existing.id)
    second = await reconcile_object(
        view({"adoptionPolicy": "Adopt"}, status=first.status), env, resync=True, checkpoint=Marks()
    )
    assert ready(second.status)["reason"] == "StoreNotFound"
    assert existing.id in ready(second.status)["message"]
    assert fastly.stores() == []


async def test_resync_of_many_objects_lists_instead_of_getting(fastly: FastlyEmulator, env: Environment) -> None:
    statuses = []
    for index in range(30):
        result = await reconcile_object(view({"name": f"store-{index}"}), env, checkpoint=Marks())
        statuses.append((index, result.status))
    fastly.requests.clear()
    for index, status in statuses:
        await reconcile_object(view({"name": f"store-{index}"}, status=status), env, resync=True, checkpoint=Marks())
    store_reads = [
        r.route
        for r in fastly.requests
        if r.route in {"GET /resources/stores/secret", "GET /resources/stores/secret/{store_id}"}
    ]
    assert store_reads == ["GET /resources/stores/secret"], "one listing serves every object's drift check"


@pytest.mark.parametrize(
    ("spec", "reason", "hint"),
    [
        ({"name": "bad name!"}, "InvalidSpec", "letters, digits"),
        ({"name": "x" * 256}, "InvalidSpec", "255"),
        ({"adoptionPolicy": "Steal"}, "InvalidSpec", "AdoptOrCreate"),
        ({"resyncInterval": "soon"}, "InvalidSpec", "10m"),
        ({"resyncInterval": "0.5s"}, "InvalidSpec", "at least 1s"),
        ({"entries": [{"name": "A B", "secretKeyRef": {"name": "s", "key": "k"}}]}, "InvalidEntryName", "entries[0]"),
        ({"entries": [{"name": "..", "secretKeyRef": {"name": "s", "key": "k"}}]}, "InvalidEntryName", "'..'"),
        # Names that would walk a request path into another namespace, were they not refused.
        ({"apiTokenSecretRef": {"name": "../../victim/secrets/victim-secret"}}, "InvalidSpec", "own namespace"),
        (
            {"entries": [{"name": "A", "secretKeyRef": {"name": "../victim", "key": "k"}}]},
            "InvalidSpec",
            "spec.entries[0].secretKeyRef.name",
        ),
        ({"entriesFrom": [{"secretRef": {"name": "x/../../y"}}]}, "InvalidSpec", "spec.entriesFrom[0].secretRef"),
        ({"apiTokenSecretRef": {"name": "token", "key": ".."}}, "InvalidSpec", "not a Secret key"),
        ({"entries": [{"name": "A", "secretKeyRef": {"name": "s", "key": "a/b"}}]}, "InvalidSpec", "Secret key"),
    ],
)
async def test_invalid_spec_is_refused_before_any_request(
    fastly: FastlyEmulator, env: Environment, spec: dict[str, Any], reason: str, hint: str
) -> None:
    result = await reconcile_object(view(spec), env, checkpoint=Marks())
    assert ready(result.status)["reason"] == reason
    assert hint in ready(result.status)["message"]
    assert fastly.requests == []


async def test_missing_token_secret_then_created(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    del secrets.data[(NAMESPACE, "fastly-api-token")]
    first = await reconcile_object(view(), env, checkpoint=Marks())
    assert ready(first.status)["reason"] == "CredentialsNotFound"
    assert "shop/fastly-api-token" in ready(first.status)["message"]
    assert fastly.requests == []
    secrets.put("fastly-api-token", token=TOKEN + "\n")  # a trailing newline from `echo` is forgiven
    second = await reconcile_object(view(status=first.status), env, checkpoint=Marks())
    assert ready(second.status)["status"] == "True"


async def test_rejected_token_is_reported_without_the_token(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    secrets.put("fastly-api-token", token="wrong-token-canary-31337")
    result = await reconcile_object(view(), env, checkpoint=Marks())
    assert ready(result.status)["reason"] == "Unauthorized"
    assert "wrong-token-canary-31337" not in repr(result.status)
    assert "wrong-token-canary-31337" not in repr(result.events)


async def test_rotated_token_is_used_at_once(fastly: FastlyEmulator, env: Environment, secrets: DictSecrets) -> None:
    first = await reconcile_object(view(), env, checkpoint=Marks())
    secrets.put("fastly-api-token", token="wrong-token")
    broken = await reconcile_object(view(status=first.status), env, checkpoint=Marks())
    assert ready(broken.status)["reason"] == "Unauthorized"
    secrets.put("fastly-api-token", token=TOKEN)
    fixed = await reconcile_object(view(status=broken.status), env, checkpoint=Marks())
    assert ready(fixed.status)["reason"] == "Synced"
    assert fixed.status["id"] == first.status["id"]


async def test_fastly_unavailable_is_transient(fastly: FastlyEmulator, env: Environment) -> None:
    fastly.faults.add(kind="status", status=503, count=100)
    result = await reconcile_object(view(), env, checkpoint=Marks())
    assert ready(result.status)["reason"] == "FastlyUnavailable"
    assert find(result.status["conditions"], "Reconciling")["status"] == "True"  # type: ignore[index]
    assert find(result.status["conditions"], "Stalled")["status"] == "False"  # type: ignore[index]


async def test_delete_policy_deletes_the_store(fastly: FastlyEmulator, env: Environment) -> None:
    created = await reconcile_object(view(), env, checkpoint=Marks())
    result = await finalize_object(view(status=created.status), env)
    assert result.action is DeleteAction.DELETED
    assert fastly.stores() == []


async def test_delete_of_a_store_already_gone_is_done(fastly: FastlyEmulator, env: Environment) -> None:
    created = await reconcile_object(view(), env, checkpoint=Marks())
    fastly.delete_store_direct(created.status["id"])
    result = await finalize_object(view(status=created.status), env)
    assert result.action is DeleteAction.ALREADY_GONE


async def test_retain_policy_keeps_the_store(fastly: FastlyEmulator, env: Environment) -> None:
    created = await reconcile_object(view(), env, checkpoint=Marks())
    result = await finalize_object(view({"deletionPolicy": "Retain"}, status=created.status), env)
    assert result.action is DeleteAction.RETAINED
    assert len(fastly.stores()) == 1


async def test_delete_without_token_says_how_to_release(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    created = await reconcile_object(view(), env, checkpoint=Marks())
    del secrets.data[(NAMESPACE, "fastly-api-token")]
    with pytest.raises(ReconcileError) as caught:
        await finalize_object(view(status=created.status), env)
    assert caught.value.reason == "CredentialsNotFound"
    assert "deletionPolicy: Retain" in caught.value.message
    assert len(fastly.stores()) == 1


async def test_delete_after_a_lost_create_removes_what_it_made(fastly: FastlyEmulator, env: Environment) -> None:
    fastly.create_store_direct("checkout")
    result = await finalize_object(view(status={"createRequestedAt": now_rfc3339()}), env)
    assert result.action is DeleteAction.DELETED
    assert fastly.stores() == []


async def test_token_never_reaches_status_or_events(fastly: FastlyEmulator, env: Environment) -> None:
    result = await reconcile_object(view(), env, checkpoint=Marks())
    assert TOKEN not in repr(result.status) + repr(result.events)


async def test_delete_after_the_token_secret_went_uses_the_last_session(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    created = await reconcile_object(view(), env, checkpoint=Marks())
    assert created.session is not None
    del secrets.data[(NAMESPACE, "fastly-api-token")]
    result = await finalize_object(view(status=created.status), env, last_session=created.session)
    assert result.action is DeleteAction.DELETED
    assert fastly.stores() == []


async def test_a_refused_delete_says_what_may_hold_the_store(fastly: FastlyEmulator, env: Environment) -> None:
    created = await reconcile_object(view(), env, checkpoint=Marks())
    fastly.faults.add(method="DELETE", kind="status", status=409, count=1)
    with pytest.raises(ReconcileError) as caught:
        await finalize_object(view(status=created.status), env)
    assert "Compute service" in caught.value.message
    assert "deletionPolicy: Retain" in caught.value.message
    assert len(fastly.stores()) == 1


async def test_a_create_mark_never_claims_an_older_store(fastly: FastlyEmulator, env: Environment) -> None:
    # The mark says a create went out an hour after this store was made: it is someone else's, not ours.
    existing = fastly.create_store_direct("checkout")
    later = rfc3339(datetime.now(UTC) + timedelta(hours=1))
    result = await reconcile_object(
        view({"adoptionPolicy": "MustCreate"}, status={"createRequestedAt": later}), env, checkpoint=Marks()
    )
    assert ready(result.status)["reason"] == "StoreAlreadyExists"
    assert existing.id in ready(result.status)["message"]
    assert "createRequestedAt" not in result.status
    deleted = await finalize_object(view(status={"createRequestedAt": later}), replace(env, create_grace=0))
    assert deleted.action is DeleteAction.NOTHING
    assert len(fastly.stores()) == 1


async def test_a_refused_create_forgets_its_mark(fastly: FastlyEmulator, env: Environment) -> None:
    fastly.faults.add(method="POST", route="/resources/stores/secret", kind="status", status=400, count=1)
    result = await reconcile_object(view(), env, checkpoint=Marks())
    assert ready(result.status)["reason"] == "FastlyRejected"
    assert "createRequestedAt" not in result.status


async def test_two_objects_cannot_manage_one_store(
    fastly: FastlyEmulator, env: Environment, owners: MemoryOwners
) -> None:
    first_view = view({"name": "shared"})
    first = await reconcile_object(first_view, env, checkpoint=Marks())
    owners.observe(replace(first_view, status=first.status))
    other = view({"name": "shared"}, name="other", created="2026-01-02T00:00:00Z")
    second = await reconcile_object(other, env, checkpoint=Marks())
    assert ready(first.status)["reason"] == "Synced"
    assert ready(second.status)["reason"] == "StoreInUse"
    assert f"{NAMESPACE}/checkout" in ready(second.status)["message"]
    assert "id" not in second.status
    assert "storeName" not in second.status
    assert second.waiting_for == "shared"
    # Deleting the refused object deletes nothing, whatever its policy.
    owners.observe(replace(other, status=second.status))
    assert (await finalize_object(replace(other, status=second.status), env)).action is DeleteAction.NOTHING
    assert len(fastly.stores()) == 1
    await finalize_object(view({"name": "shared", "deletionPolicy": "Retain"}, status=first.status), env)
    owners.forget(first_view.uid)
    third = await reconcile_object(other, env, checkpoint=Marks())
    assert ready(third.status)["reason"] == "Synced"
    assert third.status["id"] == first.status["id"]


@pytest.mark.parametrize("bad", ["tok en", "tok\nen", "tökén", "tok\x00en"])
async def test_a_secret_that_cannot_be_a_token_is_refused_before_any_request(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets, bad: str
) -> None:
    secrets.put("fastly-api-token", token=bad)
    result = await reconcile_object(view(), env, checkpoint=Marks())
    assert ready(result.status)["reason"] == "CredentialsNotFound"
    assert bad not in ready(result.status)["message"]
    assert fastly.requests == []


async def test_a_listing_older_than_a_store_is_refreshed_once(fastly: FastlyEmulator, env: Environment) -> None:
    directory = env.connect(TOKEN).directory
    first = fastly.create_store_direct("first")
    assert await directory.contains(first.id, max_age=600)
    second = fastly.create_store_direct("second")
    fastly.requests.clear()
    # A store created before the listing was fetched: the listing stands (and says it is absent).
    assert not await directory.contains(second.id, max_age=600, created_at=datetime.now(UTC) - timedelta(hours=1))
    # Created after the listing was fetched: one refresh, which then serves every store created before it.
    assert await directory.contains(second.id, max_age=600, created_at=datetime.now(UTC) + timedelta(seconds=1))
    assert await directory.contains(first.id, max_age=600, created_at=datetime.now(UTC) - timedelta(seconds=1))
    assert [r.route for r in fastly.requests] == ["GET /resources/stores/secret"]


async def test_a_create_fastly_answers_with_503_is_retried_at_once_but_a_gateway_timeout_waits(
    fastly: FastlyEmulator, env: Environment
) -> None:
    fastly.faults.add(method="POST", route="/resources/stores/secret", kind="status", status=503, count=1)
    failed = await reconcile_object(view(), env, checkpoint=Marks())
    assert ready(failed.status)["reason"] == "FastlyUnavailable"
    retried = await reconcile_object(view(status=failed.status), env, checkpoint=Marks())
    assert ready(retried.status)["reason"] == "Synced"

    fastly.faults.add(method="POST", route="/resources/stores/secret", kind="status", status=504, count=1)
    other = view({"name": "behind-a-gateway"})
    unknown = await reconcile_object(other, env, checkpoint=Marks())
    assert ready(unknown.status)["reason"] == "Creating"
    fastly.requests.clear()
    again = await reconcile_object(replace(other, status=unknown.status), env, checkpoint=Marks())
    assert ready(again.status)["reason"] == "Creating"
    assert "POST /resources/stores/secret" not in writes(fastly)
