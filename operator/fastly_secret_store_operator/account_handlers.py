"""Kopf handlers for FastlyAccounts: thin wiring from cluster events to account_registry and
reconcile.account_status.

- an index of FastlyAccount specs (Kopf fills it before any handler runs after a start, so no object is told
  AccountNotFound while the accounts are still being listed); who uses an account is derived from the claims
  index (owners.py), not kept a second time;
- a watch-event handler: an edited (or new, or deleted) account wakes every object using it;
- a daemon per account: checks its token (accountId, Ready, tokenExpiresAt, a Warning 7 days before expiry);
- a delete handler behind the finalizer: the deletion waits while objects use the account.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from fastly_secret_store_operator import kube
from fastly_secret_store_operator.account_registry import ACCOUNTS_PLURAL, ClusterAccounts
from fastly_secret_store_operator.reconcile.account_status import TOKEN_EXPIRY_WARNING, check_account, held_deletion
from fastly_secret_store_operator.reconcile.conditions import Outcome, build_conditions
from fastly_secret_store_operator.runtime import Runtime
from fastly_secret_store_operator.waiting import wait_for_wake

ACCOUNTS = (kube.GROUP, kube.VERSION, ACCOUNTS_PLURAL)
#: How often a healthy account's token is checked again (GET /tokens/self is cached for as long anyway).
RECHECK_SECONDS = 3600.0
#: The retry of a check that failed (a missing Secret is noticed at once through the Secret watch).
RETRY_SECONDS = 60.0
#: How often a held deletion looks again whether the account is still used.
HELD_RETRY_SECONDS = 3.0

logger = logging.getLogger(__name__)


def _accounts(memo: Any) -> ClusterAccounts:
    runtime: Runtime = memo.runtime
    return runtime.accounts


@kopf.index(*ACCOUNTS)
async def fastly_accounts(body: kopf.Body, name: str, memo: Any, **_: Any) -> Any:
    """Every FastlyAccount's spec, by name, into the registry (the index's value itself is not read: what matters
    is that Kopf fills it before handlers run); a change wakes the account's users."""
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None:
        runtime.accounts.observed(name, dict(body.spec), body.metadata.get("generation"))
    return {name: dict(body.spec)}


@kopf.on.event(*ACCOUNTS)
async def notice_account_change(type: str, body: kopf.Body, name: str, memo: Any, **_: Any) -> None:
    """A FastlyAccount changed or went: the objects using it are re-evaluated within seconds."""
    accounts = _accounts(memo)
    if type == "DELETED":
        accounts.observed(name, None, None)
        accounts.forget(name)
    else:
        accounts.observed(name, dict(body.spec), body.metadata.get("generation"))


@kopf.daemon(*ACCOUNTS, cancellation_timeout=5.0)
async def check_token(stopped: kopf.DaemonStopped, body: kopf.Body, name: str, memo: Any, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    accounts = runtime.accounts
    while not stopped:
        wake = accounts.wake(name)
        wake.clear()
        delay = RECHECK_SECONDS
        try:
            delay = await _check_once(runtime, body, name)
        except kube.KubeError as error:
            logger.warning("FastlyAccount %s: a Kubernetes API call failed (%s); retrying", name, error)
            delay = RETRY_SECONDS
        await wait_for_wake(wake, stopped, delay)


async def _check_once(runtime: Runtime, body: kopf.Body, name: str) -> float:
    held = dict(body.get("status") or {})
    result = await check_account(
        name,
        dict(body.spec),
        held,
        body.metadata.get("generation"),
        secrets=runtime.env.secrets,
        connect=runtime.env.connect,
        token_namespace=runtime.accounts.token_namespace,
    )
    if result.status != held:
        await runtime.accounts.patch_status(name, result.status)
    for event in result.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    before = next((c for c in held.get("conditions") or () if c.get("type") == "Ready"), None)
    if before is None or before.get("reason") != result.outcome.reason:
        logger.info("FastlyAccount %s: Ready is now %s (%s)", name, result.outcome.ready, result.outcome.reason)
    if not result.outcome.ready:
        return RETRY_SECONDS
    if result.expires_at is not None:
        # Check again when the expiry warning becomes due, so it is posted on time.
        until_warning = (result.expires_at - TOKEN_EXPIRY_WARNING - datetime.now(UTC)).total_seconds()
        if 0 < until_warning < RECHECK_SECONDS:
            return until_warning + 1.0
    return RECHECK_SECONDS


@kopf.on.delete(*ACCOUNTS)
async def hold_deletion(body: kopf.Body, name: str, memo: Any, **_: Any) -> None:
    """The finalizer: a FastlyAccount in use is deleted only once no FastlySecretStore names it."""
    accounts = _accounts(memo)
    users = accounts.users(name)
    if not users:
        accounts.forget(name)
        logger.info("FastlyAccount %s is used by no FastlySecretStore: letting it go", name)
        return
    message = held_deletion(name, users)
    held = dict(body.get("status") or {})
    generation = body.metadata.get("generation")
    outcome = Outcome("InUse", message, stalled=True)
    conditions = build_conditions(outcome, held.get("conditions") or (), generation)
    if conditions != held.get("conditions"):
        try:
            await accounts.patch_status(name, {"conditions": conditions})
        except kube.KubeError as error:
            logger.warning("FastlyAccount %s: writing the status failed (%s)", name, error)
        kopf.event(body, type="Warning", reason="InUse", message=message)
        logger.info("%s", message)
    raise kopf.TemporaryError(message, delay=HELD_RETRY_SECONDS)
