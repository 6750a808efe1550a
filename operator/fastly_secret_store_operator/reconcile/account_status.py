"""A FastlyAccount's own status: is its token Secret there, does Fastly accept the token, which account, when
does it expire; and, while its deletion is held, which FastlySecretStores still use it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastly_secret_store_operator.fastly import FastlyError
from fastly_secret_store_operator.reconcile.account_policy import parse_account
from fastly_secret_store_operator.reconcile.conditions import Outcome, build_conditions, rfc3339
from fastly_secret_store_operator.reconcile.errors import ReconcileError, from_fastly
from fastly_secret_store_operator.reconcile.events import Event
from fastly_secret_store_operator.reconcile.session import Sessions
from fastly_secret_store_operator.reconcile.sources import SecretReader, SecretReadError, read_token

#: A token expiring sooner than this is announced with a Warning event.
TOKEN_EXPIRY_WARNING = timedelta(days=7)
#: How many users a held deletion names.
USERS_SHOWN = 10


@dataclass(slots=True)
class AccountResult:
    status: dict[str, Any]
    outcome: Outcome
    events: list[Event] = field(default_factory=list)
    #: When the token expires, if it does (for the next check).
    expires_at: datetime | None = None


async def check_account(
    name: str,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    generation: int | None,
    *,
    secrets: SecretReader,
    connect: Sessions,
    token_namespace: str,
) -> AccountResult:
    """Read the FastlyAccount's token and ask Fastly whose it is (GET /tokens/self, cached per token)."""
    new_status: dict[str, Any] = {key: value for key, value in status.items() if key != "conditions"}
    result = AccountResult(new_status, Outcome("Reconciling", "starting"))
    try:
        policy = parse_account(name, spec)
        source = f"Secret {token_namespace}/{policy.token_ref.secret} key {policy.token_ref.key!r}"
        field_name = f"FastlyAccount {name} spec.apiTokenSecretRef"
        token = await read_token(secrets, token_namespace, policy.token_ref, field=field_name)
        try:
            info = await connect(token).token_info()
        except FastlyError as error:
            raise from_fastly(error, token_source=source) from None
        new_status["accountId"] = info.customer_id
        result.expires_at = info.expires_at
        expires = rfc3339(info.expires_at) if info.expires_at else None
        if expires is None:
            new_status.pop("tokenExpiresAt", None)
        else:
            new_status["tokenExpiresAt"] = expires
            assert info.expires_at is not None
            soon = info.expires_at - datetime.now(UTC) < TOKEN_EXPIRY_WARNING
            if soon and status.get("tokenExpiresAt") != expires:
                result.events.append(
                    Event(
                        "Warning",
                        "TokenExpiring",
                        f"the Fastly API token of FastlyAccount {name} ({source}) expires at {expires}: put a new "
                        "token of the same account there before then",
                    )
                )
        result.outcome = Outcome(
            "Verified", f"Fastly accepts the token in {source} (account {info.customer_id})", ready=True
        )
    except SecretReadError as error:
        result.outcome = Outcome("KubernetesUnavailable", f"{error.message}; the operator retries by itself")
    except ReconcileError as error:
        result.outcome = Outcome(error.reason, error.message, stalled=error.stalled)
    new_status["observedGeneration"] = generation
    new_status["conditions"] = build_conditions(result.outcome, status.get("conditions") or (), generation)
    return result


def held_deletion(name: str, users: Sequence[str]) -> str:
    """The message of a FastlyAccount whose deletion waits for the FastlySecretStores using it."""
    ordered = sorted(users)
    shown = ", ".join(ordered[:USERS_SHOWN])
    more = f" and {len(ordered) - USERS_SHOWN} more" if len(ordered) > USERS_SHOWN else ""
    return (
        f"deleting FastlyAccount {name} waits: {len(ordered)} FastlySecretStore(s) use it ({shown}{more}). Delete "
        "them, or replace them with objects using another account; it goes once none uses it"
    )
