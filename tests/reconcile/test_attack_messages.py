"""A defect found by an adversarial review, written to FAIL on the code it was found in (branch attack).

Issue 14: a namespace removed from a FastlyAccount blocks its object's deletion "with a condition saying how to
release it"; issue 11: every message at most 1,024 characters. With an account that lists many namespaces, the
AccountNotAllowed message (which lists every allowed namespace) is cut at 1,024 characters from the end, so the
release instruction appended by finalize_object is what gets cut; the message also lists every other tenant.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from reconcile_support import NAMESPACE, OPERATOR_NAMESPACE, TOKEN, DictSecrets, Marks, MemoryAccounts, account_view

from fastly_secret_store_operator.reconcile.conditions import Outcome, build_conditions, find
from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.object import Environment, finalize_object, reconcile_object

OTHER_TENANTS = [f"team-{index:03d}-payments" for index in range(120)]


async def test_a_blocked_deletion_still_says_how_to_release_the_object(env: Environment, secrets: DictSecrets) -> None:
    secrets.put("platform-token", namespace=OPERATOR_NAMESPACE, token=TOKEN)
    accounts = MemoryAccounts()
    accounts.specs["platform"] = {
        "apiTokenSecretRef": {"name": "platform-token"},
        "allowedNamespaces": {"names": [NAMESPACE, *OTHER_TENANTS]},
    }
    account_env = replace(env, accounts=accounts)
    spec = {"name": "shop-checkout"}
    created = await reconcile_object(account_view(spec), account_env, checkpoint=Marks())
    assert find(created.status["conditions"], "Ready")["reason"] == "Synced"  # type: ignore[index]

    accounts.specs["platform"]["allowedNamespaces"] = {"names": OTHER_TENANTS}  # shop removed
    with pytest.raises(ReconcileError) as caught:
        await finalize_object(account_view(spec, status=created.status), account_env)
    # What passes.run_finalize records as the condition:
    shown = build_conditions(Outcome(caught.value.reason, caught.value.message, stalled=True), (), 1)[0]["message"]
    assert len(shown) <= 1024
    assert "deletionPolicy: Retain" in shown, shown[-200:]
