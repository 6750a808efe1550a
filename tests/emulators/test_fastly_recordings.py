"""Proof of fidelity: every recorded real interaction with Fastly's secret store API, replayed against the
emulator, gets the same status and a body of the same shape.

Each Go test's cassettes are replayed in the order the test ran them (its fixtures' store and secret
creation, the recorded call itself, then the cleanup), against a fresh emulator. Ids the real API chose are
mapped to the ids the emulator chose in the same sequence, so later requests address the right store.
Random values (ids, digests, times, keys) are compared by format, and digests by identity: a recorded
digest seen twice must be the same emulator digest both times, and different ones different.

The clientEncryption cassette sealed its value to a client key only the real API can open. Its replay
substitutes the client key the emulator issued in the same sequence and seals a value of the same length
(48 bytes of sealed-box overhead less than the recorded ciphertext) to it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import nacl.public
import nacl.signing
import pytest
import yaml

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator

RECORDINGS = Path(__file__).resolve().parent.parent / "fixtures" / "fastly-recordings"
SECRET_STORE = RECORDINGS / "secret_store"
SEALED_BOX_OVERHEAD = 48
FASTLY_SIGNING_KEY = "CrO/A92vkxEZjtTW7D/Sr+1EMf/q9BahC0sfLkWa+0k="  # the real one, as recorded

ID = re.compile(r"[A-Za-z0-9]{22}")
SECOND_PRECISION_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
NANO_PRECISION_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
BASE64_BYTES = {"digest": 32, "public_key": 32, "signature": 64, "signing_key": 32}
COMPARED_HEADERS = ("Content-Type", "Fastly-Ratelimit-Remaining", "Fastly-Ratelimit-Reset")

# The order a Go test runs its cassettes in: fixtures first, the recorded call, then cleanup.
PHASES = (
    "create_store",
    "get_signing_key",
    "create_client_key",
    "create_secret",
    "",
    "list-with-name",
    "delete",
)


def phase(cassette: Path, scenario: str) -> int:
    if cassette.stem == scenario:
        return PHASES.index("")
    return next(n for n, prefix in enumerate(PHASES) if prefix and cassette.stem.startswith(prefix))


def cassettes_of(scenario: str) -> list[Path]:
    files = [*SECRET_STORE.glob(f"{scenario}.yaml"), *(SECRET_STORE / scenario).glob("*.yaml")]
    return sorted(files, key=lambda cassette: (phase(cassette, scenario), cassette.name))


SCENARIOS = sorted(
    {path.stem for path in SECRET_STORE.glob("*.yaml")} | {p.name for p in SECRET_STORE.iterdir() if p.is_dir()}
)


def interactions(cassette: Path) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(cassette.read_text())["interactions"]
    return loaded


def b64len(text: str) -> int:
    return len(base64.b64decode(text, validate=True))


@dataclass
class Replay:
    """Replays interactions against one emulator, carrying what maps recorded values to emulated ones."""

    api: httpx.AsyncClient
    emulator: FastlyEmulator
    ids: dict[str, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    client_keys: dict[str, str] = field(default_factory=dict)
    replayed: int = 0

    async def interaction(self, recorded: dict[str, Any]) -> None:
        request, expected = recorded["request"], recorded["response"]
        url = urlsplit(request["url"])
        path = self._substitute_ids(url.path) + (f"?{url.query}" if url.query else "")
        body = self._request_body(request["body"])
        headers = {name: values[0] for name, values in request["headers"].items() if name != "User-Agent"}
        response = await self.api.request(request["method"], path, content=body.encode(), headers=headers)
        where = f"{request['method']} {url.path}"

        assert response.status_code == expected["code"], f"{where}: {response.text}"
        for header in COMPARED_HEADERS:
            if header in expected["headers"]:
                assert response.headers.get(header) == expected["headers"][header][0], f"{where}: {header}"
        if expected["body"] == "":
            assert response.content == b"", where
        else:
            self._same_shape(json.loads(expected["body"]), response.json(), where)
        self._check_stored_value(request, response)
        self.replayed += 1

    def _substitute_ids(self, path: str) -> str:
        return "/".join(self.ids.get(part, part) for part in path.split("/"))

    def _request_body(self, recorded_body: str) -> str:
        if not recorded_body.strip():
            return recorded_body
        body = json.loads(recorded_body)
        if "client_key" in body:
            # Sealed to a key only the real API holds: seal a value of the same length to the emulator's.
            length = b64len(body["secret"]) - SEALED_BOX_OVERHEAD
            public_key = base64.b64decode(self.client_keys[body["client_key"]])
            sealed = nacl.public.SealedBox(nacl.public.PublicKey(public_key)).encrypt(sealed_plaintext(length))
            body |= {
                "secret": base64.b64encode(sealed).decode(),
                "client_key": self.client_keys[body["client_key"]],
            }
            return json.dumps(body, separators=(",", ":")) + "\n"  # as go-fastly sends it
        return recorded_body

    def _check_stored_value(self, request: dict[str, Any], response: httpx.Response) -> None:
        if request["method"] not in {"POST", "PUT", "PATCH"} or not request["body"].strip():
            return
        body = json.loads(request["body"])
        if "secret" not in body:
            return
        store_id = self._substitute_ids(urlsplit(request["url"]).path).split("/")[4]
        if "client_key" in body:
            expected = sealed_plaintext(b64len(body["secret"]) - SEALED_BOX_OVERHEAD)
        else:
            expected = base64.b64decode(body["secret"])
        assert self.emulator.plaintext(store_id, response.json()["name"]) == expected

    def _same_shape(self, recorded: Any, actual: Any, where: str) -> None:
        assert type(actual) is type(recorded), f"{where}: {actual!r} is not like {recorded!r}"
        if isinstance(recorded, dict):
            assert set(actual) == set(recorded), f"{where}: keys {sorted(actual)} != {sorted(recorded)}"
            if "signature" in recorded:
                assert_signed(recorded, FASTLY_SIGNING_KEY)
                assert_signed(actual, self.emulator.signing_key_b64)
            for key, value in recorded.items():
                self._same_field(key, value, actual[key], f"{where} .{key}")
        elif isinstance(recorded, list):
            assert len(actual) == len(recorded), f"{where}: {len(actual)} items, recorded {len(recorded)}"
            # The emulator lists in its own ids' order, as the real API lists in its ids': pair by name.
            for recorded_item, actual_item in zip(by_name(recorded), by_name(actual), strict=True):
                self._same_shape(recorded_item, actual_item, where)
        else:
            assert actual == recorded, where

    def _same_field(self, key: str, recorded: Any, actual: Any, where: str) -> None:
        if key == "id":
            assert ID.fullmatch(actual), where
            assert self.ids.setdefault(recorded, actual) == actual, f"{where}: another store than recorded"
        elif key == "created_at":
            assert SECOND_PRECISION_TIME.fullmatch(recorded), where
            assert SECOND_PRECISION_TIME.fullmatch(actual), where
        elif key == "expires_at":
            assert NANO_PRECISION_TIME.fullmatch(recorded), where
            assert NANO_PRECISION_TIME.fullmatch(actual), where
        elif key in BASE64_BYTES:
            assert b64len(recorded) == b64len(actual) == BASE64_BYTES[key], where
            self._same_random_value(key, recorded, actual, where)
        else:
            self._same_shape(recorded, actual, where)

    def _same_random_value(self, key: str, recorded: str, actual: str, where: str) -> None:
        if key == "digest":
            assert self.digests.setdefault(recorded, actual) == actual, f"{where}: digest changed"
            assert len(set(self.digests.values())) == len(self.digests), f"{where}: a digest was reused"
        elif key == "public_key":
            self.client_keys[recorded] = actual
        elif key == "signing_key":
            assert actual == self.emulator.signing_key_b64, where  # its own key, not Fastly's


def by_name(items: list[Any]) -> list[Any]:
    return sorted(items, key=lambda item: item["name"]) if all(isinstance(i, dict) for i in items) else items


def assert_signed(client_key: dict[str, str], signing_key: str) -> None:
    """The signature is over the raw 32 bytes of the public key; verify() raises otherwise."""
    verify_key = nacl.signing.VerifyKey(base64.b64decode(signing_key))
    verify_key.verify(base64.b64decode(client_key["public_key"]), base64.b64decode(client_key["signature"]))


def sealed_plaintext(length: int) -> bytes:
    return bytes(range(length))


@pytest.fixture
async def replay() -> AsyncIterator[Replay]:
    emulator = FastlyEmulator()
    async with emulator, httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": "token"}) as api:
        yield Replay(api, emulator)


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_recorded_scenario_replays_the_same(replay: Replay, scenario: str) -> None:
    expected = 0
    for cassette in cassettes_of(scenario):
        for recorded in interactions(cassette):
            await replay.interaction(recorded)
            expected += 1
    assert replay.replayed == expected > 0
    assert replay.emulator.stores() == []  # every scenario cleans up after itself, as the real tests did


def test_every_secret_store_cassette_is_replayed() -> None:
    replayed = {cassette for scenario in SCENARIOS for cassette in cassettes_of(scenario)}
    assert replayed == set(SECRET_STORE.rglob("*.yaml"))
    assert len(SCENARIOS) == 11


def related_404s() -> Iterator[dict[str, Any]]:
    for cassette in sorted((RECORDINGS / "related_config_store_404").glob("*.yaml")):
        yield from interactions(cassette)


@pytest.mark.parametrize("recorded", list(related_404s()), ids=lambda recorded: recorded["request"]["method"])
async def test_missing_stores_answer_like_the_sibling_config_store_api(
    replay: Replay, recorded: dict[str, Any]
) -> None:
    # Recorded on the config store API; the secret store API shares its "Record not found" answer.
    secret_store_url = recorded["request"]["url"].replace("/resources/stores/config/", "/resources/stores/secret/")
    await replay.interaction(recorded | {"request": recorded["request"] | {"url": secret_store_url}})


TOKEN_SELF_CASSETTE = RECORDINGS / "tokens" / "get_self.yaml"


async def test_tokens_self_answers_in_the_recorded_shape() -> None:
    [recorded] = interactions(TOKEN_SELF_CASSETTE)
    expected = json.loads(recorded["response"]["body"])
    emulator = FastlyEmulator(tokens=["team:token"])
    async with emulator, httpx.AsyncClient(base_url=emulator.url) as api:
        headers = {name: values[0] for name, values in recorded["request"]["headers"].items()}
        response = await api.get(urlsplit(recorded["request"]["url"]).path, headers=headers | {"Fastly-Key": "token"})
    assert response.status_code == recorded["response"]["code"]
    assert response.headers["Content-Type"] == recorded["response"]["headers"]["Content-Type"][0]
    actual = response.json()
    assert set(actual) == set(expected)
    for key in ("id", "user_id", "customer_id"):
        assert ID.fullmatch(actual[key]), key
        assert ID.fullmatch(expected[key].replace("X", "a")), key  # the recording's ids are redacted as X's
    assert actual["customer_id"] == FastlyEmulator.account_id("team")
    for key in ("created_at", "last_used_at"):
        assert SECOND_PRECISION_TIME.fullmatch(expected[key])
        assert SECOND_PRECISION_TIME.fullmatch(actual[key]), key
    assert expected["expires_at"] is None
    assert actual["expires_at"] is None
    assert (actual["scope"], actual["scopes"]) == (expected["scope"], expected["scopes"])
    assert actual["user_agent"] == headers["User-Agent"]
    for key in ("name", "ip", "user_agent"):
        assert isinstance(actual[key], str), key
    # An unrestricted token: no services (the recorded one was limited to one service).
    assert isinstance(expected["services"], list)
    assert (actual["services"], actual["service_id"]) == ([], None)
