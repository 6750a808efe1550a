"""The Fastly emulator's endpoints over real HTTP (httpx): statuses, shapes, errors, listing, encryption."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nacl.public
import nacl.signing
import pytest

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator

STORES = "/resources/stores/secret"
ID = re.compile(r"[A-Za-z0-9]{22}")
SECOND_PRECISION_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
NANO_PRECISION_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
NOT_FOUND = {"msg": "Record not found"}


async def create_store(api: httpx.AsyncClient, name: str = "shop") -> str:
    response = await api.post(STORES, json={"name": name})
    assert response.status_code == 201, response.text
    store_id: str = response.json()["id"]
    return store_id


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def assert_digest(digest: str) -> None:
    assert len(base64.b64decode(digest, validate=True)) == 32


def assert_error(response: httpx.Response, status: int, body: dict[str, Any]) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == body


async def test_store_lifecycle(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    created = await api.post(STORES, json={"name": "shop"})
    assert created.status_code == 201
    store = created.json()
    assert set(store) == {"id", "name", "created_at"}
    assert ID.fullmatch(store["id"])
    assert store["name"] == "shop"
    assert SECOND_PRECISION_TIME.fullmatch(store["created_at"])
    assert (await api.get(f"{STORES}/{store['id']}")).json() == store
    assert [s.id for s in emulator.stores()] == [store["id"]]

    deleted = await api.delete(f"{STORES}/{store['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(await api.get(f"{STORES}/{store['id']}"), 404, NOT_FOUND)
    assert_error(await api.delete(f"{STORES}/{store['id']}"), 404, NOT_FOUND)


async def test_deleting_a_store_deletes_its_secrets(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    store_id = await create_store(api)
    await api.post(f"{STORES}/{store_id}/secrets", json={"name": "KEY", "secret": b64(b"v")})
    assert (await api.delete(f"{STORES}/{store_id}")).status_code == 204
    assert_error(await api.get(f"{STORES}/{store_id}/secrets/KEY"), 404, NOT_FOUND)
    assert emulator.stores() == []


async def test_duplicate_store_name_is_a_conflict(api: httpx.AsyncClient) -> None:
    await create_store(api, "shop")
    assert_error(await api.post(STORES, json={"name": "shop"}), 409, {"msg": "store with name 'shop' already exists"})


async def test_secret_create_recreate_and_delete(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    store_id = await create_store(api)
    secrets = f"{STORES}/{store_id}/secrets"

    created = await api.post(secrets, json={"name": "KEY", "secret": b64(b"one")})
    assert created.status_code == 200
    assert set(created.json()) == {"name", "digest", "created_at"}  # "recreated" only when replacing
    assert_digest(created.json()["digest"])
    assert SECOND_PRECISION_TIME.fullmatch(created.json()["created_at"])
    assert emulator.plaintext(store_id, "KEY") == b"one"

    put_new = await api.put(secrets, json={"name": "OTHER", "secret": b64(b"two")})
    assert put_new.status_code == 200
    assert "recreated" not in put_new.json()

    put_over = await api.put(secrets, json={"name": "KEY", "secret": b64(b"three")})
    assert put_over.status_code == 200
    assert put_over.json()["recreated"] is True
    patched = await api.patch(secrets, json={"name": "KEY", "secret": b64(b"three")})
    assert patched.status_code == 200
    assert patched.json()["recreated"] is True
    # Every (re)write gets a fresh digest, even for the same value: it is not a hash of the value.
    digests = {r.json()["digest"] for r in (created, put_over, patched)}
    assert len(digests) == 3
    assert emulator.plaintext(store_id, "KEY") == b"three"

    fetched = await api.get(f"{secrets}/KEY")
    assert fetched.json() == {k: v for k, v in patched.json().items() if k != "recreated"}
    deleted = await api.delete(f"{secrets}/KEY")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert emulator.secret_names(store_id) == ["OTHER"]
    assert_error(await api.get(f"{secrets}/KEY"), 404, NOT_FOUND)
    assert_error(await api.delete(f"{secrets}/KEY"), 404, NOT_FOUND)


async def test_duplicate_secret_on_post_is_a_bad_request(api: httpx.AsyncClient) -> None:
    secrets = f"{STORES}/{await create_store(api)}/secrets"
    await api.post(secrets, json={"name": "KEY", "secret": b64(b"v")})
    response = await api.post(secrets, json={"name": "KEY", "secret": b64(b"v")})
    assert_error(response, 400, {"msg": "Bad Request", "detail": "duplicate: name"})


async def test_patch_of_a_missing_secret_is_not_found(api: httpx.AsyncClient) -> None:
    secrets = f"{STORES}/{await create_store(api)}/secrets"
    assert_error(await api.patch(secrets, json={"name": "KEY", "secret": b64(b"v")}), 404, NOT_FOUND)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/MISSING"),
        ("DELETE", "/MISSING"),
        ("GET", "/MISSING/secrets"),
        ("POST", "/MISSING/secrets"),
        ("PUT", "/MISSING/secrets"),
        ("PATCH", "/MISSING/secrets"),
        ("GET", "/MISSING/secrets/KEY"),
        ("DELETE", "/MISSING/secrets/KEY"),
        ("GET", "/../../nowhere"),
    ],
)
async def test_missing_records_are_not_found(api: httpx.AsyncClient, method: str, path: str) -> None:
    body = {"name": "KEY", "secret": b64(b"v")} if method in {"POST", "PUT", "PATCH"} else None
    assert_error(await api.request(method, STORES + path, json=body), 404, NOT_FOUND)


async def test_tokens_are_checked(emulator: FastlyEmulator) -> None:
    unauthorized = {"msg": "Provided credentials are missing or invalid"}
    async with httpx.AsyncClient(base_url=emulator.url) as anonymous:
        assert_error(await anonymous.get(STORES), 401, unauthorized)
        assert_error(await anonymous.get(STORES, headers={"Fastly-Key": ""}), 401, unauthorized)
        assert (await anonymous.get(STORES, headers={"Fastly-Key": "anything"})).status_code == 200

    async with FastlyEmulator(tokens=["good"]) as strict, httpx.AsyncClient(base_url=strict.url) as client:
        assert_error(await client.post(STORES, json={"name": "x"}, headers={"Fastly-Key": "bad"}), 401, unauthorized)
        assert (await client.post(STORES, json={"name": "x"}, headers={"Fastly-Key": "good"})).status_code == 201
    assert [store.name for store in strict.stores()] == ["x"]


@pytest.mark.parametrize("name", ["", "with space", "slash/y", "ümlaut", "semi;colon", "x" * 256])
async def test_bad_names_are_refused(api: httpx.AsyncClient, name: str) -> None:
    store_response = await api.post(STORES, json={"name": name})
    assert store_response.status_code == 400
    assert store_response.json()["msg"] == "Bad Request"
    secrets = f"{STORES}/{await create_store(api, 'ok')}/secrets"
    secret_response = await api.put(secrets, json={"name": name, "secret": b64(b"v")})
    assert secret_response.status_code == 400


async def test_good_names_are_accepted(api: httpx.AsyncClient) -> None:
    name = "Az09-_." + "x" * 248  # every allowed kind of character, 255 bytes
    store_id = await create_store(api, name)
    response = await api.put(f"{STORES}/{store_id}/secrets", json={"name": name, "secret": b64(b"v")})
    assert response.status_code == 200


async def test_values_are_capped_at_64_kib_of_plaintext(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    store_id = await create_store(api)
    secrets = f"{STORES}/{store_id}/secrets"
    assert (await api.put(secrets, json={"name": "MAX", "secret": b64(b"x" * 65536)})).status_code == 200
    assert (await api.put(secrets, json={"name": "OVER", "secret": b64(b"x" * 65537)})).status_code == 400
    assert emulator.secret_names(store_id) == ["MAX"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "KEY"}',
        b'{"name": "KEY", "secret": ""}',
        b'{"name": "KEY", "secret": "not base64!"}',
        b'{"name": "KEY", "secret": 42}',
        b'{"secret": "dg=="}',
        b"not json",
        b'["a list"]',
    ],
)
async def test_malformed_secret_writes_are_bad_requests(api: httpx.AsyncClient, body: bytes) -> None:
    store_id = await create_store(api)
    response = await api.post(f"{STORES}/{store_id}/secrets", content=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["msg"] == "Bad Request"


async def test_requests_shaped_like_the_fastly_cli_are_accepted(api: httpx.AsyncClient) -> None:
    # The CLI sends Content-Type: application/json on GET and DELETE too, and a newline after JSON bodies.
    headers = {"Content-Type": "application/json"}
    created = await api.post(STORES, content=b'{"name":"cli"}\n', headers=headers)
    assert created.status_code == 201
    store_id = created.json()["id"]
    assert (await api.get(f"{STORES}/{store_id}", headers=headers)).status_code == 200
    assert (await api.post(f"{STORES}/client-key", headers=headers)).status_code == 200
    assert (await api.delete(f"{STORES}/{store_id}", headers=headers)).status_code == 204


async def test_store_listing_pages_in_id_order(api: httpx.AsyncClient) -> None:
    ids = [await create_store(api, f"store-{n:02}") for n in range(23)]
    first = (await api.get(STORES)).json()
    assert first["meta"]["limit"] == 10  # what the real API defaults to
    assert len(first["data"]) == 10
    assert set(first["data"][0]) == {"id", "name", "created_at"}

    listed: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "7"} | ({"cursor": cursor} if cursor else {})
        page = (await api.get(STORES, params=params)).json()
        pages += 1
        assert page["meta"]["limit"] == 7
        listed += [store["id"] for store in page["data"]]
        cursor = page["meta"].get("next_cursor")
        if cursor is None:  # absent on the last page
            break
    assert pages == 4
    assert listed == sorted(ids)


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
async def test_listing_limits_outside_1_to_200_are_refused(api: httpx.AsyncClient, limit: str) -> None:
    assert (await api.get(STORES, params={"limit": limit})).status_code == 400
    assert (await api.get(f"{STORES}/{await create_store(api)}/secrets", params={"limit": limit})).status_code == 400


async def test_listing_accepts_the_maximum_limit_and_refuses_bad_cursors(api: httpx.AsyncClient) -> None:
    page = (await api.get(STORES, params={"limit": "200"})).json()
    assert page == {"data": [], "meta": {"limit": 200}}
    assert (await api.get(STORES, params={"cursor": "%%%"})).status_code == 400


async def test_store_listing_filters_by_name(api: httpx.AsyncClient) -> None:
    wanted = await create_store(api, "wanted")
    await create_store(api, "other")
    found = (await api.get(STORES, params={"name": "wanted"})).json()
    assert [store["id"] for store in found["data"]] == [wanted]
    assert found["meta"] == {"limit": 10}
    assert (await api.get(STORES, params={"name": "absent"})).json()["data"] == []


async def test_secret_listing_pages_in_name_order(api: httpx.AsyncClient) -> None:
    secrets = f"{STORES}/{await create_store(api)}/secrets"
    names = [f"KEY_{n:02}" for n in range(12)]
    for name in reversed(names):
        await api.post(secrets, json={"name": name, "secret": b64(b"v")})
    first = (await api.get(secrets)).json()
    assert [secret["name"] for secret in first["data"]] == names[:10]
    assert set(first["data"][0]) == {"name", "digest", "created_at"}
    second = (await api.get(secrets, params={"cursor": first["meta"]["next_cursor"]})).json()
    assert [secret["name"] for secret in second["data"]] == names[10:]
    assert "next_cursor" not in second["meta"]


async def test_client_keys_are_signed_by_the_served_signing_key(
    api: httpx.AsyncClient, emulator: FastlyEmulator
) -> None:
    served = (await api.get(f"{STORES}/signing-key")).json()
    assert served == {"signing_key": emulator.signing_key_b64}
    assert base64.b64decode(served["signing_key"]) == emulator.verify_key

    issued_after = datetime.now(UTC)
    response = await api.post(f"{STORES}/client-key")
    assert response.status_code == 200
    client_key = response.json()
    assert set(client_key) == {"public_key", "signature", "expires_at"}
    public_key = base64.b64decode(client_key["public_key"], validate=True)
    assert len(public_key) == 32
    signature = base64.b64decode(client_key["signature"], validate=True)
    # Signed over the raw key bytes; verify raises if not.
    nacl.signing.VerifyKey(emulator.verify_key).verify(public_key, signature)
    assert NANO_PRECISION_TIME.fullmatch(client_key["expires_at"])
    whole_seconds = client_key["expires_at"].rstrip("Z").split(".")[0]
    expires_at = datetime.strptime(whole_seconds, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    assert timedelta(minutes=9) < expires_at - issued_after < timedelta(minutes=11)


async def test_the_given_signing_key_is_used() -> None:
    signing_key = nacl.signing.SigningKey.generate()
    emulator = FastlyEmulator(signing_key=signing_key)
    assert emulator.verify_key == bytes(signing_key.verify_key)


async def sealed_write(api: httpx.AsyncClient, store_id: str, name: str, value: bytes) -> httpx.Response:
    client_key = (await api.post(f"{STORES}/client-key")).json()
    public_key = nacl.public.PublicKey(base64.b64decode(client_key["public_key"]))
    sealed = nacl.public.SealedBox(public_key).encrypt(value)
    body = {"name": name, "secret": b64(sealed), "client_key": client_key["public_key"]}
    return await api.put(f"{STORES}/{store_id}/secrets", json=body)


async def test_sealed_values_are_opened_to_the_exact_bytes(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    store_id = await create_store(api)
    value = bytes(range(256)) * 4 + b"\x00\xff"
    response = await sealed_write(api, store_id, "BINARY", value)
    assert response.status_code == 200
    assert emulator.plaintext(store_id, "BINARY") == value
    # The full 64 KiB of plaintext is allowed sealed too: the cap counts plaintext, not ciphertext.
    assert (await sealed_write(api, store_id, "MAX", b"x" * 65536)).status_code == 200
    assert (await sealed_write(api, store_id, "OVER", b"x" * 65537)).status_code == 400


async def test_no_endpoint_serves_a_value(api: httpx.AsyncClient) -> None:
    store_id = await create_store(api)
    value = b"do-not-echo-this-value"
    await api.put(f"{STORES}/{store_id}/secrets", json={"name": "PLAIN", "secret": b64(value)})
    await sealed_write(api, store_id, "SEALED", value)
    bodies = [
        (await api.get(f"{STORES}/{store_id}/secrets")).content,
        (await api.get(f"{STORES}/{store_id}/secrets/PLAIN")).content,
        (await api.get(f"{STORES}/{store_id}/secrets/SEALED")).content,
    ]
    for body in bodies:
        assert value not in body
        assert b64(value).encode() not in body


async def test_unknown_client_keys_are_refused(api: httpx.AsyncClient) -> None:
    store_id = await create_store(api)
    stranger = nacl.public.PrivateKey.generate().public_key
    sealed = nacl.public.SealedBox(stranger).encrypt(b"value")
    body = {"name": "KEY", "secret": b64(sealed), "client_key": b64(bytes(stranger))}
    response = await api.post(f"{STORES}/{store_id}/secrets", json=body)
    assert response.status_code == 400
    assert "unknown client key" in response.json()["detail"]


async def test_values_not_sealed_to_the_client_key_are_refused(api: httpx.AsyncClient) -> None:
    store_id = await create_store(api)
    client_key = (await api.post(f"{STORES}/client-key")).json()
    body = {"name": "KEY", "secret": b64(b"\x00" * 64), "client_key": client_key["public_key"]}
    response = await api.post(f"{STORES}/{store_id}/secrets", json=body)
    assert response.status_code == 400


async def test_expired_client_keys_are_refused() -> None:
    emulator = FastlyEmulator(client_key_ttl=timedelta(0))
    async with emulator, httpx.AsyncClient(base_url=emulator.url, headers={"Fastly-Key": "t"}) as api:
        response = await sealed_write(api, await create_store(api), "KEY", b"value")
    assert response.status_code == 400
    assert "expired" in response.json()["detail"]


async def test_a_seed_makes_ids_digests_and_keys_reproducible() -> None:
    def fixed_clock() -> float:
        return 1_700_000_000.0

    def run() -> tuple[str, str, bytes]:
        emulator = FastlyEmulator(seed=42, clock=fixed_clock)
        store = emulator.create_store_direct("s")
        return store.id, emulator.put_secret_direct(store.id, "k", b"v").digest, emulator.verify_key

    assert run() == run()
    assert FastlyEmulator(seed=1).verify_key != FastlyEmulator(seed=2).verify_key


async def test_out_of_band_changes_show_through_the_api(api: httpx.AsyncClient, emulator: FastlyEmulator) -> None:
    store = emulator.create_store_direct("out-of-band")
    assert (await api.get(f"{STORES}/{store.id}")).json() == store.to_json()
    first = emulator.put_secret_direct(store.id, "KEY", b"one")
    second = emulator.put_secret_direct(store.id, "KEY", b"two")
    assert first.digest != second.digest
    assert (await api.get(f"{STORES}/{store.id}/secrets/KEY")).json()["digest"] == second.digest
    assert emulator.plaintext(store.id, "KEY") == b"two"
    assert b"two" not in repr(second).encode()  # values stay out of reprs and assertion messages

    emulator.delete_secret_direct(store.id, "KEY")
    assert (await api.get(f"{STORES}/{store.id}/secrets/KEY")).status_code == 404
    emulator.delete_store_direct(store.id)
    assert (await api.get(f"{STORES}/{store.id}")).status_code == 404
    assert emulator.store_named("out-of-band") is None
