"""A FastlyAccount's own status, checked against the Fastly emulator: the account id, Ready, the token's expiry
and its warning, and the message of a held deletion."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from reconcile_support import OPERATOR_NAMESPACE, TOKEN, DictSecrets

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.reconcile.account_status import AccountResult, check_account, held_deletion
from fastly_secret_store_operator.reconcile.conditions import find
from fastly_secret_store_operator.reconcile.object import Environment

SPEC = {"apiTokenSecretRef": {"name": "platform-token"}, "allowedNamespaces": {"names": ["shop"]}}


async def check(env: Environment, secrets: DictSecrets, status: Mapping[str, Any] | None = None) -> AccountResult:
    return await check_account(
        "platform",
        SPEC,
        status or {"observedGeneration": -1},
        1,
        secrets=secrets,
        connect=env.connect,
        token_namespace=OPERATOR_NAMESPACE,
    )


def ready(result: AccountResult) -> Mapping[str, Any]:
    condition = find(result.status["conditions"], "Ready")
    assert condition is not None
    return condition


async def test_a_valid_token_makes_the_account_ready_with_its_id(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    secrets.put("platform-token", namespace=OPERATOR_NAMESPACE, token=TOKEN)
    result = await check(env, secrets)
    assert ready(result)["status"] == "True"
    assert result.status["accountId"] == fastly.account_id()
    assert result.status["observedGeneration"] == 1
    assert "tokenExpiresAt" not in result.status
    assert TOKEN not in str(result.status)


async def test_a_missing_or_rejected_token_says_what_to_fix(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    missing = await check(env, secrets)
    assert ready(missing)["reason"] == "CredentialsNotFound"
    assert f"Secret {OPERATOR_NAMESPACE}/platform-token" in ready(missing)["message"]
    assert "FastlyAccount platform spec.apiTokenSecretRef" in ready(missing)["message"]

    secrets.put("platform-token", namespace=OPERATOR_NAMESPACE, token="not-a-known-token-canary")
    rejected = await check(env, secrets)
    assert ready(rejected)["reason"] == "Unauthorized"
    assert "not-a-known-token-canary" not in str(rejected.status)


async def test_a_token_expiring_within_a_week_is_announced_once(
    fastly: FastlyEmulator, env: Environment, secrets: DictSecrets
) -> None:
    secrets.put("platform-token", namespace=OPERATOR_NAMESPACE, token=TOKEN)
    fastly.set_token_expiry(TOKEN, datetime.now(UTC) + timedelta(days=3))
    first = await check(env, secrets)
    assert first.status["tokenExpiresAt"].endswith("Z")
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "TokenExpiring")]
    assert "FastlyAccount platform" in first.events[0].message
    again = await check(env, secrets, first.status)
    assert again.events == []


def test_a_held_deletion_names_how_many_and_at_most_ten() -> None:
    users = [f"shop/store-{index:02}" for index in range(12)]
    message = held_deletion("platform", users)
    assert "12 FastlySecretStore(s) use it" in message
    assert "shop/store-09" in message
    assert "shop/store-10" not in message
    assert "and 2 more" in message
