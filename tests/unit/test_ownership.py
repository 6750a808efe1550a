"""Who manages a store, decided from the claims the objects' status records: restarts, ties and accounts."""

from __future__ import annotations

import asyncio

from fastly_secret_store_operator.owners import ClaimIndex, claim_shows
from fastly_secret_store_operator.reconcile.ownership import Claim, claim_from_object, manager_before

ACCOUNT = "acct-1"


def claim(
    uid: str, created: str, *, account: str | None = ACCOUNT, store: str | None = None, scope: str = "a/t"
) -> Claim:
    return Claim(uid, f"ns/{uid}", created, "shared", account, store, scope)


def test_the_object_recording_the_store_id_manages_it_whoever_reconciles_first() -> None:
    owner = claim("owner", "2026-01-02T00:00:00Z", store="S1")
    # Older, but it never got the store: after a restart it must not take it over.
    refused = claim("refused", "2026-01-01T00:00:00Z", account=None)
    assert manager_before(refused, [owner, refused], ACCOUNT) == owner
    assert manager_before(owner, [owner, refused], ACCOUNT) is None


def test_a_recorded_name_claim_beats_a_newcomer_and_the_older_of_two_claims_wins() -> None:
    first = claim("first", "2026-01-01T00:00:00Z")
    second = claim("second", "2026-01-03T00:00:00Z")
    newcomer = claim("new", "2025-01-01T00:00:00Z", account=None)
    assert manager_before(newcomer, [first, second, newcomer], ACCOUNT) == first
    assert manager_before(second, [first, second], ACCOUNT) == first
    assert manager_before(first, [first, second], ACCOUNT) is None


def test_claims_of_another_account_do_not_conflict() -> None:
    theirs = claim("theirs", "2026-01-01T00:00:00Z", account="acct-2", store="S9")
    mine = claim("mine", "2026-01-02T00:00:00Z", account=None, scope="b/t")
    assert manager_before(mine, [theirs], ACCOUNT) is None


def test_newcomers_conflict_only_when_they_read_the_same_token_secret() -> None:
    older = claim("older", "2026-01-01T00:00:00Z", account=None, scope="shop/token")
    elsewhere = claim("elsewhere", "2026-01-02T00:00:00Z", account=None, scope="billing/token")
    same = claim("same", "2026-01-02T00:00:00Z", account=None, scope="shop/token")
    assert manager_before(elsewhere, [older, elsewhere], ACCOUNT) is None
    assert manager_before(same, [older, same], ACCOUNT) == older


def test_two_recorded_ids_of_one_name_are_two_stores() -> None:
    one = claim("one", "2026-01-01T00:00:00Z", store="S1")
    two = claim("two", "2026-01-02T00:00:00Z", store="S2")
    assert manager_before(two, [one, two], ACCOUNT) is None
    doubled = claim("doubled", "2026-01-03T00:00:00Z", store="S1")
    assert manager_before(doubled, [one, two, doubled], ACCOUNT) == one


def test_the_claim_comes_from_the_status_only_when_it_names_the_spec_store() -> None:
    spec = {"name": "shared", "apiTokenSecretRef": {"name": "token"}}
    status = {"accountId": ACCOUNT, "storeName": "shared", "id": "S1"}
    made = claim_from_object(uid="u", namespace="ns", name="n", created="c", spec=spec, status=status)
    assert (made.account_id, made.store_id, made.token_scope, made.who) == (ACCOUNT, "S1", "ns/token", "ns/n")
    stale = claim_from_object(
        uid="u", namespace="ns", name="n", created="c", spec=spec, status={**status, "storeName": "x"}
    )
    assert (stale.account_id, stale.store_id) == (None, None)


async def test_the_index_wakes_waiters_when_a_claim_changes_or_goes() -> None:
    woken: list[str] = []
    index = ClaimIndex(woken.append)
    owner = claim("owner", "2026-01-01T00:00:00Z", store="S1")
    index.observed(owner)
    assert index.claims("shared") == [owner]
    index.observed(owner)
    assert woken == []
    index.forget("owner")
    assert woken == ["shared"]
    assert index.claims("shared") == []


async def test_a_written_claim_is_awaited_until_the_watch_brings_it() -> None:
    index = ClaimIndex(lambda _: None)
    fields = {"accountId": ACCOUNT, "storeName": "shared"}
    waiting = asyncio.create_task(index.wait_visible("mine", claim_shows(fields)))
    await asyncio.sleep(0)
    assert not waiting.done()
    index.observed(claim("mine", "2026-01-01T00:00:00Z"))
    await asyncio.wait_for(waiting, 1)
    assert [c.uid for c in index.claims("shared")] == ["mine"]


async def test_a_claim_the_cluster_loses_while_known_here_keeps_standing_and_wakes_its_owner() -> None:
    woken: list[str] = []
    lost: list[str] = []
    known = {"owner": {"accountId": ACCOUNT, "storeName": "shared", "id": "S1"}}
    index = ClaimIndex(woken.append, remembered=known.get, on_lost=lost.append)
    index.observed(claim("owner", "2026-01-01T00:00:00Z", store="S1"))
    index.observed(claim("owner", "2026-01-01T00:00:00Z", account=None))  # its status wiped
    assert lost == ["owner"]
    assert woken == [], "nobody waiting for the store is woken"
    [standing] = index.claims("shared")
    assert standing.store_id == "S1"
    rival = claim("rival", "2025-01-01T00:00:00Z", account=None, scope="other/token")
    assert manager_before(rival, index.claims("shared"), ACCOUNT) == standing
    # Once this process no longer holds the claim either (the object lost the store), the loss is real.
    known.clear()
    index.observed(claim("owner", "2026-01-01T00:00:00Z", account=None))
    assert woken == ["shared"]


async def test_passes_deciding_on_one_store_name_take_turns_however_they_queue() -> None:
    index = ClaimIndex(lambda _: None)
    inside: list[int] = []
    most = 0

    async def decide(number: int) -> None:
        nonlocal most
        async with index.deciding("shared"):
            inside.append(number)
            most = max(most, len(inside))
            for _ in range(5):  # deciding takes a few turns of the loop (a claim written and echoed)
                await asyncio.sleep(0)
            inside.remove(number)

    first = asyncio.create_task(decide(1))
    await asyncio.sleep(0)
    second = asyncio.create_task(decide(2))  # queued behind the first
    await asyncio.wait([first])
    # The first has let go; the second holds the lock (or is about to): a third must still wait its turn.
    third = asyncio.create_task(decide(3))
    await asyncio.gather(second, third)
    assert most == 1
