"""The safety rules of reconciling: one account per object, adopted stores kept unless asked, Secrets that may not
be read, and store ownership decided by what the cluster records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from reconcile_support import NAMESPACE, TOKEN, DictSecrets, Marks, MemoryOwners, view

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.reconcile.conditions import find
from fastly_secret_store_operator.reconcile.object import Environment, finalize_object, reconcile_object
from fastly_secret_store_operator.reconcile.sources import SecretReadError
from fastly_secret_store_operator.reconcile.store import DeleteAction

OTHER_TOKEN = "other-account-token-canary-5e1"


def ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    condition = find(status["conditions"], "Ready")
    assert condition is not None
    return condition


def writes(fastly: FastlyEmulator) -> list[str]:
    return [str(r.route) for r in fastly.requests if r.method != "GET"]


async def test_the_account_is_recorded_and_a_token_of_another_account_moves_nothing(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    fastly.add_token(OTHER_TOKEN, account="elsewhere")
    secrets.put("stripe", key="value-canary")
    spec = {"entries": [{"name": "K", "secretKeyRef": {"name": "stripe", "key": "key"}}]}
    first = await reconcile_object(view(spec), env, checkpoint=Marks())
    assert first.status["accountId"] == fastly.account_id()

    secrets.put("fastly-api-token", token=OTHER_TOKEN)
    fastly.requests.clear()
    second = await reconcile_object(view(spec, status=first.status), env, checkpoint=Marks())
    assert ready(second.status)["reason"] == "AccountMismatch"
    assert find(second.status["conditions"], "Stalled")["status"] == "True"  # type: ignore[index]
    message = ready(second.status)["message"]
    assert fastly.account_id("elsewhere") in message
    assert "deletionPolicy: Retain" in message
    assert OTHER_TOKEN not in message
    assert writes(fastly) == [], "no store created, no entry written in the other account"
    assert fastly.stores(account="elsewhere") == []

    with pytest.raises(Exception, match=r"AccountMismatch|account") as caught:
        await finalize_object(view(spec, status=first.status), env)
    assert getattr(caught.value, "reason", "") == "AccountMismatch"
    assert len(fastly.stores()) == 1


async def test_a_token_that_expires_within_a_week_is_announced(fastly: FastlyEmulator, env: Environment) -> None:
    fastly.set_token_expiry(TOKEN, datetime.now(UTC) + timedelta(days=3))
    result = await reconcile_object(view(), env, checkpoint=Marks())
    assert ready(result.status)["reason"] == "Synced"
    assert result.status["tokenExpiresAt"].endswith("Z")
    assert [e.reason for e in result.events if e.type == "Warning"] == ["TokenExpiring"]
    again = await reconcile_object(view(status=result.status), env, checkpoint=Marks())
    assert [e for e in again.events if e.reason == "TokenExpiring"] == [], "announced once, not every pass"


@pytest.mark.parametrize(("policy", "kept"), [(None, True), ("Delete", False), ("Retain", True)])
async def test_an_adopted_store_is_deleted_only_when_asked(
    fastly: FastlyEmulator, env: Environment, policy: str | None, kept: bool
) -> None:
    fastly.create_store_direct("checkout")
    spec = {"deletionPolicy": policy} if policy else {}
    adopted = await reconcile_object(view(spec), env, checkpoint=Marks())
    assert adopted.status["adopted"] is True
    result = await finalize_object(view(spec, status=adopted.status), env)
    assert (len(fastly.stores()) == 1) is kept
    assert result.action is (DeleteAction.RETAINED if kept else DeleteAction.DELETED)
    if policy is None:
        assert result.event is not None
        assert "deletionPolicy: Delete" in result.event.message


async def test_a_created_store_is_deleted_when_the_policy_is_omitted(fastly: FastlyEmulator, env: Environment) -> None:
    created = await reconcile_object(view(), env, checkpoint=Marks())
    assert (await finalize_object(view(status=created.status), env)).action is DeleteAction.DELETED
    assert fastly.stores() == []


class RefusingSecrets(DictSecrets):
    def __init__(self, refused: str, *, forbidden: bool) -> None:
        super().__init__()
        self.refused, self.forbidden = refused, forbidden

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        if name == self.refused:
            raise SecretReadError(namespace, name, forbidden=self.forbidden, detail="HTTP 403 Forbidden")
        return await super().read_secret(namespace, name)


async def test_a_secret_the_operator_may_not_read_is_named_with_the_rbac_to_grant(
    fastly: FastlyEmulator, env: Environment
) -> None:
    secrets = RefusingSecrets("locked", forbidden=True)
    secrets.put("fastly-api-token", token=TOKEN)
    secrets.put("open", key="v")
    spec = {
        "entries": [
            {"name": "LOCKED", "secretKeyRef": {"name": "locked", "key": "key"}},
            {"name": "OPEN", "secretKeyRef": {"name": "open", "key": "key"}},
        ]
    }
    result = await reconcile_object(view(spec), replace(env, secrets=secrets), checkpoint=Marks())
    assert ready(result.status)["reason"] == "SecretForbidden"
    assert f"Secret {NAMESPACE}/locked" in ready(result.status)["message"]
    assert "get secrets" in ready(result.status)["message"]
    assert fastly.secret_names(result.status["id"]) == ["OPEN"]

    token_locked = RefusingSecrets("fastly-api-token", forbidden=True)
    refused = await reconcile_object(view(), replace(env, secrets=token_locked), checkpoint=Marks())
    assert ready(refused.status)["reason"] == "SecretForbidden"


async def test_an_api_server_failure_reading_a_secret_is_shown_and_retried(
    fastly: FastlyEmulator, env: Environment
) -> None:
    failing = RefusingSecrets("fastly-api-token", forbidden=False)
    result = await reconcile_object(view(), replace(env, secrets=failing), checkpoint=Marks())
    assert ready(result.status)["reason"] == "KubernetesUnavailable"
    assert find(result.status["conditions"], "Stalled")["status"] == "False"  # type: ignore[index]
    assert fastly.requests == []


async def test_after_a_restart_the_recorded_owner_keeps_the_store_whoever_runs_first(
    fastly: FastlyEmulator, env: Environment, owners: MemoryOwners, secrets: DictSecrets
) -> None:
    secrets.put("vals", key="owner-value")
    spec = {"name": "shared", "entries": [{"name": "K", "secretKeyRef": {"name": "vals", "key": "key"}}]}
    owner_view = view(spec, name="owner", created="2026-01-02T00:00:00Z")
    owned = await reconcile_object(owner_view, env, checkpoint=Marks())
    # Older than the owner, and it runs first after the restart: still refused, because the cluster says so.
    rival_view = view(spec, name="rival", created="2026-01-01T00:00:00Z")
    owners.observe(replace(owner_view, status=owned.status))
    owners.observe(rival_view)
    fastly.requests.clear()
    for _ in range(3):
        refused = await reconcile_object(rival_view, env, checkpoint=Marks())
        assert ready(refused.status)["reason"] == "StoreInUse"
        assert "shop/owner" in ready(refused.status)["message"]
    assert writes(fastly) == []
    assert (await finalize_object(replace(rival_view, status=refused.status), env)).action is DeleteAction.NOTHING
    assert len(fastly.stores()) == 1
    # The owner's next pass is untouched by the rival.
    again = await reconcile_object(replace(owner_view, status=owned.status), env, checkpoint=Marks())
    assert ready(again.status)["reason"] == "Synced"


async def test_a_claim_is_recorded_before_the_store_is_created(fastly: FastlyEmulator, env: Environment) -> None:
    recorded: list[dict[str, Any]] = []

    async def checkpoint(fields: Mapping[str, Any]) -> None:
        recorded.append({**fields, "stores then": len(fastly.stores())})

    await reconcile_object(view(), env, checkpoint=checkpoint)
    assert recorded[0] == {"accountId": fastly.account_id(), "storeName": "checkout", "stores then": 0}
    assert "createRequestedAt" in recorded[1]
    assert recorded[1]["stores then"] == 0
