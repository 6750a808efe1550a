"""Sealing: verified keys only, one client-key POST per key lifetime, values Fastly (alone) can open."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nacl.public import PrivateKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

from fastly_secret_store_operator.fastly import (
    FASTLY_SIGNING_KEY,
    MAX_VALUE_BYTES,
    ClientKey,
    Sealer,
    ServerUnavailableError,
    SigningKeyMismatchError,
    ValueTooLargeError,
    verify_client_key,
)

KEY_LIFETIME = timedelta(minutes=10)


class FakeKeyService:
    """Fastly's key endpoints: mints X25519 keys signed by ``signing_key`` and keeps the private halves."""

    def __init__(self, fake_time: Any, signing_key: SigningKey | None = None) -> None:
        self.signing_key = signing_key or SigningKey.generate()
        self.fake_time = fake_time
        self.private_keys: dict[bytes, PrivateKey] = {}
        self.fail_next = 0
        self.expires_at: datetime | None = None  # of the last key minted

    @property
    def verify_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail_next:
            self.fail_next -= 1
            return httpx.Response(503, json={"msg": "Service Unavailable"})
        if request.url.path.endswith("/signing-key"):
            return httpx.Response(200, json={"signing_key": base64.b64encode(self.verify_key).decode()})
        assert request.url.path.endswith("/client-key"), f"the sealer must not call {request.url}"
        private = PrivateKey.generate()
        public = bytes(private.public_key)
        self.private_keys[public] = private
        # RFC3339Nano, as Fastly sends it; the client keeps microseconds.
        self.expires_at = self.fake_time.now + KEY_LIFETIME + timedelta(microseconds=123456)
        return httpx.Response(
            200,
            json={
                "public_key": base64.b64encode(public).decode(),
                "signature": base64.b64encode(self.signing_key.sign(public).signature).decode(),
                "expires_at": self.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%f789Z"),
            },
        )

    def open(self, secret: str, client_key: str) -> bytes:
        return SealedBox(self.private_keys[base64.b64decode(client_key)]).decrypt(base64.b64decode(secret))


@pytest.fixture
def keys(fake_time: Any) -> FakeKeyService:
    return FakeKeyService(fake_time)


@pytest.fixture
def api(make_api: Any, keys: FakeKeyService) -> Any:
    return make_api(keys)


def sealer_for(api: Any, keys: FakeKeyService, fake_time: Any, **options: Any) -> Sealer:
    options.setdefault("signing_key", keys.verify_key)
    return Sealer(api.client, clock=fake_time.clock, **options)


class TestSeal:
    async def test_fastly_can_open_what_was_sealed(self, api: Any, keys: FakeKeyService, fake_time: Any) -> None:
        sealed = await sealer_for(api, keys, fake_time).seal(b"sk_live_123")
        assert keys.open(sealed.secret, sealed.client_key) == b"sk_live_123"
        assert len(base64.b64decode(sealed.secret)) == 48 + len(b"sk_live_123")
        assert b"sk_live_123" not in base64.b64decode(sealed.secret)

    async def test_the_largest_allowed_value_seals(self, api: Any, keys: FakeKeyService, fake_time: Any) -> None:
        sealed = await sealer_for(api, keys, fake_time).seal(b"x" * MAX_VALUE_BYTES)
        assert len(keys.open(sealed.secret, sealed.client_key)) == 64 * 1024

    async def test_a_larger_value_is_refused_before_any_request(
        self, api: Any, keys: FakeKeyService, fake_time: Any
    ) -> None:
        with pytest.raises(ValueTooLargeError, match="65537 bytes"):
            await sealer_for(api, keys, fake_time).seal(b"x" * (MAX_VALUE_BYTES + 1))
        assert api.requests == []

    async def test_a_key_signed_by_another_key_is_refused(self, api: Any, keys: FakeKeyService, fake_time: Any) -> None:
        sealer = sealer_for(api, keys, fake_time, signing_key=bytes(SigningKey.generate().verify_key))
        with pytest.raises(SigningKeyMismatchError):
            await sealer.seal(b"value")
        assert api.routes == ["POST /resources/stores/secret/client-key"]  # and nothing written

    async def test_the_default_trusts_only_fastlys_production_key(
        self, api: Any, keys: FakeKeyService, fake_time: Any
    ) -> None:
        with pytest.raises(SigningKeyMismatchError):
            await Sealer(api.client, clock=fake_time.clock).seal(b"value")
        assert api.routes == ["POST /resources/stores/secret/client-key"]

    async def test_a_tampered_signature_is_refused(self, make_api: Any, keys: FakeKeyService, fake_time: Any) -> None:
        def tampered(request: httpx.Request) -> httpx.Response:
            body = json.loads(keys(request).content)
            other = bytes(PrivateKey.generate().public_key)  # a key the signature does not cover
            body["public_key"] = base64.b64encode(other).decode()
            return httpx.Response(200, json=body)

        api = make_api(tampered)
        with pytest.raises(SigningKeyMismatchError):
            await sealer_for(api, keys, fake_time).seal(b"value")

    def test_a_signing_key_of_the_wrong_size_is_refused(self, api: Any) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            Sealer(api.client, signing_key=b"short")


class TestClientKeyReuse:
    async def test_concurrent_seals_share_one_client_key_fetch(
        self, api: Any, keys: FakeKeyService, fake_time: Any
    ) -> None:
        sealer = sealer_for(api, keys, fake_time)
        values = [f"value-{i}".encode() for i in range(20)]
        sealed = await asyncio.gather(*(sealer.seal(value) for value in values))
        assert api.routes == ["POST /resources/stores/secret/client-key"]
        assert [keys.open(s.secret, s.client_key) for s in sealed] == values
        assert len({s.client_key for s in sealed}) == 1

    async def test_the_key_is_reused_until_the_refresh_margin(
        self, api: Any, keys: FakeKeyService, fake_time: Any
    ) -> None:
        sealer = sealer_for(api, keys, fake_time, refresh_margin=timedelta(minutes=2))
        first = await sealer.seal(b"a")
        refresh_at = keys.expires_at - timedelta(minutes=2)
        fake_time.now = refresh_at - timedelta(microseconds=1)
        second = await sealer.seal(b"b")
        fake_time.now = refresh_at
        third = await sealer.seal(b"c")
        assert first.client_key == second.client_key != third.client_key
        assert len(api.requests) == 2

    async def test_a_failed_fetch_is_shared_then_retried_by_the_next_seal(
        self, api: Any, keys: FakeKeyService, fake_time: Any
    ) -> None:
        sealer = sealer_for(api, keys, fake_time)
        keys.fail_next = 4  # every attempt of the retry policy
        results = await asyncio.gather(*(sealer.seal(b"v") for _ in range(5)), return_exceptions=True)
        assert all(isinstance(result, ServerUnavailableError) for result in results)
        assert len(api.requests) == 4  # one fetch (with its retries) for all five callers
        sealed = await sealer.seal(b"v")
        assert keys.open(sealed.secret, sealed.client_key) == b"v"

    async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(
        self, make_api: Any, keys: FakeKeyService, fake_time: Any
    ) -> None:
        on_the_wire, release = asyncio.Event(), asyncio.Event()

        async def slow(request: httpx.Request) -> httpx.Response:
            on_the_wire.set()
            await release.wait()
            return keys(request)

        api = make_api(slow)
        sealer = sealer_for(api, keys, fake_time)
        first = asyncio.create_task(sealer.seal(b"first"))
        second = asyncio.create_task(sealer.seal(b"second"))
        await on_the_wire.wait()
        first.cancel()
        release.set()
        sealed = await second
        assert keys.open(sealed.secret, sealed.client_key) == b"second"
        assert first.cancelled()
        assert len(api.requests) == 1

    async def test_trusting_the_api_fetches_the_signing_key_once(
        self, api: Any, keys: FakeKeyService, fake_time: Any
    ) -> None:
        sealer = Sealer(api.client, signing_key=None, clock=fake_time.clock)
        await asyncio.gather(*(sealer.seal(b"v") for _ in range(3)))
        fake_time.now += KEY_LIFETIME
        await sealer.seal(b"v")
        assert api.routes == [
            "GET /resources/stores/secret/signing-key",
            "POST /resources/stores/secret/client-key",
            "POST /resources/stores/secret/client-key",
        ]


class TestRecordedKeys:
    def test_the_pinned_key_is_fastlys_production_key(self) -> None:
        assert base64.b64encode(FASTLY_SIGNING_KEY).decode() == "CrO/A92vkxEZjtTW7D/Sr+1EMf/q9BahC0sfLkWa+0k="

    def test_the_recorded_client_key_verifies_with_the_recorded_signing_key(self, recorded: Any) -> None:
        bodies = {
            source.rsplit("/", 1)[-1]: json.loads(interaction["response"]["body"])
            for source, interaction in recorded("secret_store/TestClient_CreateSecret_clientEncryption")
            if interaction["response"]["body"].strip()
        }
        signing_key = base64.b64decode(bodies["get_signing_key.yaml"]["signing_key"])
        raw = bodies["create_client_key.yaml"]
        client_key = ClientKey(
            public_key=base64.b64decode(raw["public_key"]),
            signature=base64.b64decode(raw["signature"]),
            expires_at=datetime(2023, 11, 27, 16, 4, 54, tzinfo=UTC),
        )
        assert signing_key == FASTLY_SIGNING_KEY
        verify_client_key(client_key, FASTLY_SIGNING_KEY)  # raises if it does not verify
        VerifyKey(signing_key).verify(client_key.public_key, client_key.signature)  # the signature is over raw bytes
        with pytest.raises(SigningKeyMismatchError):
            verify_client_key(client_key, bytes(SigningKey.generate().verify_key))

    async def test_the_sealer_accepts_the_recorded_key(self, make_api: Any, recorded: Any, replay: Any) -> None:
        [(_, interaction)] = [
            item
            for item in recorded("secret_store/TestClient_CreateSecret_clientEncryption")
            if item[0].endswith("create_client_key.yaml")
        ]
        api = make_api(lambda request: replay(interaction))
        recorded_at = datetime(2023, 11, 27, 15, 54, 55, tzinfo=UTC)
        sealed = await Sealer(api.client, clock=lambda: recorded_at).seal(b"secretum servare")
        assert sealed.client_key == "2iMPR4MnTZ3vC2PjShB6PQM8wLb2ckfUOLKwex5sYUc="
        assert len(base64.b64decode(sealed.secret)) == 48 + len(b"secretum servare")
