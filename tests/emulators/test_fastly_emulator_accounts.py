"""The Fastly emulator's accounts: each token belongs to one, each account sees only its own stores, and
GET /tokens/self says which account a token is in and when it expires."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fastly_secret_store_operator.emulators.fastly import DEFAULT_ACCOUNT, FastlyEmulator, parse_token_spec, serve

STORES = "/resources/stores/secret"
TOKEN_SELF = "/tokens/self"
BOUND = 10.0  # seconds any awaited condition gets before a test fails


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key(token: str) -> dict[str, str]:
    return {"Fastly-Key": token}


async def test_stores_are_visible_only_to_tokens_of_their_account() -> None:
    emulator = FastlyEmulator(tokens=["mine", "mine-rotated", "team:theirs"])
    async with emulator, httpx.AsyncClient(base_url=emulator.url) as api:
        created = await api.post(STORES, json={"name": "shop"}, headers=key("mine"))
        store_id = created.json()["id"]
        secrets = f"{STORES}/{store_id}/secrets"
        put = await api.put(secrets, json={"name": "KEY", "secret": "dmFsdWU="}, headers=key("mine"))
        assert put.status_code == 200

        # Another account's token: the store does not exist for it, whatever it tries.
        assert (await api.get(STORES, headers=key("theirs"))).json()["data"] == []
        assert (await api.get(STORES, params={"name": "shop"}, headers=key("theirs"))).json()["data"] == []
        for method, path in [
            ("GET", f"{STORES}/{store_id}"),
            ("DELETE", f"{STORES}/{store_id}"),
            ("GET", secrets),
            ("GET", f"{secrets}/KEY"),
            ("DELETE", f"{secrets}/KEY"),
        ]:
            answer = await api.request(method, path, headers=key("theirs"))
            assert (answer.status_code, answer.json()) == (404, {"msg": "Record not found"}), f"{method} {path}"
        overwrite = await api.put(secrets, json={"name": "KEY", "secret": "c3RvbGVu"}, headers=key("theirs"))
        assert overwrite.status_code == 404
        assert emulator.plaintext(store_id, "KEY") == b"value"

        # Its own store of the same name is another store.
        theirs = await api.post(STORES, json={"name": "shop"}, headers=key("theirs"))
        assert theirs.status_code == 201
        assert theirs.json()["id"] != store_id

        # A second token of the same account sees the first one's store.
        same_account = await api.get(STORES, headers=key("mine-rotated"))
        assert [store["id"] for store in same_account.json()["data"]] == [store_id]

    assert emulator.account_of(store_id) == DEFAULT_ACCOUNT
    assert emulator.account_of(theirs.json()["id"]) == "team"
    assert [store.id for store in emulator.stores(DEFAULT_ACCOUNT)] == [store_id]
    assert len(emulator.stores()) == 2
    assert emulator.store_named("shop", "team") is not None
    assert emulator.store_named("shop", "team") != emulator.store_named("shop", DEFAULT_ACCOUNT)


async def test_tokens_self_answers_like_fastly_and_names_the_account() -> None:
    clock = FakeClock(1_800_000_000.0)
    emulator = FastlyEmulator(tokens=["mine", "mine-too", "team:theirs"], clock=clock)
    async with emulator, httpx.AsyncClient(base_url=emulator.url) as api:
        mine = await api.get(TOKEN_SELF, headers=key("mine") | {"User-Agent": "probe/1"})
        mine_too = (await api.get(TOKEN_SELF, headers=key("mine-too"))).json()
        theirs = (await api.get(TOKEN_SELF, headers=key("theirs"))).json()
        unknown = await api.get(TOKEN_SELF, headers=key("nobody's"))

    assert mine.status_code == 200
    assert mine.headers["content-type"] == "application/json"
    assert "Fastly-RateLimit-Remaining" not in mine.headers  # a read: no write budget spent
    body = mine.json()
    assert body["customer_id"] == mine_too["customer_id"] == FastlyEmulator.account_id(DEFAULT_ACCOUNT)
    assert theirs["customer_id"] == FastlyEmulator.account_id("team") != body["customer_id"]
    assert body["id"] != mine_too["id"]  # one record per token
    assert body["user_agent"] == "probe/1"
    assert body["created_at"] == "2027-01-15T08:00:00Z"
    assert (body["expires_at"], body["scope"], body["scopes"], body["services"]) == (None, "global", ["global"], [])
    assert (unknown.status_code, unknown.json()) == (401, {"msg": "Provided credentials are missing or invalid"})


def test_account_ids_are_the_same_in_every_emulator() -> None:
    assert FastlyEmulator.account_id("team") == FastlyEmulator(seed=1).account_id("team")
    assert FastlyEmulator.account_id("team") != FastlyEmulator.account_id("other")
    assert len(FastlyEmulator.account_id()) == 22


async def test_a_token_can_be_given_an_expiry_and_expires() -> None:
    clock = FakeClock(1_800_000_000.0)
    emulator = FastlyEmulator(tokens=["mine"], clock=clock)
    in_three_days = datetime.fromtimestamp(clock.now, UTC) + timedelta(days=3)
    emulator.set_token_expiry("mine", in_three_days)
    emulator.add_token("late", "team", expires_at=in_three_days)
    async with emulator, httpx.AsyncClient(base_url=emulator.url) as api:
        assert (await api.get(TOKEN_SELF, headers=key("mine"))).json()["expires_at"] == "2027-01-18T08:00:00Z"
        late = (await api.get(TOKEN_SELF, headers=key("late"))).json()
        assert late["customer_id"] == FastlyEmulator.account_id("team")

        clock.now += timedelta(days=3).total_seconds()
        for token in ("mine", "late"):
            assert (await api.get(STORES, headers=key(token))).status_code == 401
            assert (await api.get(TOKEN_SELF, headers=key(token))).status_code == 401

        emulator.set_token_expiry("mine", None)
        assert (await api.get(TOKEN_SELF, headers=key("mine"))).json()["expires_at"] is None
        with pytest.raises(KeyError):
            emulator.set_token_expiry("never-given", None)


async def test_with_no_tokens_given_any_token_is_accepted_in_the_default_account(emulator: FastlyEmulator) -> None:
    async with httpx.AsyncClient(base_url=emulator.url) as api:
        created = await api.post(STORES, json={"name": "shop"}, headers=key("first"))
        listed = await api.get(STORES, headers=key("second"))
        assert [store["id"] for store in listed.json()["data"]] == [created.json()["id"]]
        assert (await api.get(TOKEN_SELF, headers=key("second"))).json()["customer_id"] == emulator.account_id()

        emulator.revoke_token("second")
        assert (await api.get(STORES, headers=key("second"))).status_code == 401
        emulator.add_token("elsewhere", "team")
        assert (await api.get(STORES, headers=key("elsewhere"))).json()["data"] == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("tok", (DEFAULT_ACCOUNT, "tok")), ("team:tok", ("team", "tok")), ("team:to:k", ("team", "to:k"))],
)
def test_token_specs(spec: str, expected: tuple[str, str]) -> None:
    assert parse_token_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "team:", "bad account:tok", ":tok"])
def test_bad_token_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"account name|must not be empty"):
        FastlyEmulator(tokens=[spec])


def test_a_bad_spec_is_refused_without_echoing_the_token() -> None:
    with pytest.raises(ValueError, match="ACCOUNT:TOKEN") as caught:
        FastlyEmulator(tokens=["bad account:canary-4c1d"])
    assert "canary-4c1d" not in str(caught.value)


async def test_serve_takes_account_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(serve("127.0.0.1", 0, ["cli-token", "team:team-token"]))
    output = ""
    deadline = time.monotonic() + BOUND
    while "listening on" not in output:
        assert time.monotonic() < deadline, "serve() never said where it listens"
        await asyncio.sleep(0.01)
        output += capsys.readouterr().out
    assert "2 token(s) in 2 account(s)" in output
    assert "team-token" not in output
    url = output.split("listening on ", 1)[1].split()[0]
    try:
        async with httpx.AsyncClient(base_url=url) as api:
            await api.post(STORES, json={"name": "shop"}, headers=key("cli-token"))
            assert (await api.get(STORES, headers=key("team-token"))).json()["data"] == []
            team = (await api.get(TOKEN_SELF, headers=key("team-token"))).json()
            assert team["customer_id"] == FastlyEmulator.account_id("team")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
