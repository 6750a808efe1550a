"""Client-side encryption: the emulator's signing key and the X25519 client keys it issues."""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import nacl.exceptions
import nacl.public
import nacl.signing

from .model import ApiError, JsonObject, Randomness, bad_request, rfc3339_nano


def client_key_expired() -> ApiError:
    # How real Fastly refuses an expired client key is unrecorded; this is a plausible 400 in its usual shape.
    return bad_request("client key expired; fetch a new one from POST /resources/stores/secret/client-key")


def client_key_unknown() -> ApiError:
    return bad_request("unknown client key; fetch one from POST /resources/stores/secret/client-key")


def decode_base64(text: object, field_name: str) -> bytes:
    if not isinstance(text, str):
        raise bad_request(f"{field_name}: must be a base64 string")
    try:
        return base64.b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{field_name}: invalid base64") from None


@dataclass(frozen=True)
class IssuedClientKey:
    private_key: nacl.public.PrivateKey
    expires_at_ns: int


class ClientKeyring:
    """Issues signed client keys and opens values sealed to them, refusing unknown and expired keys."""

    def __init__(
        self,
        signing_key: nacl.signing.SigningKey,
        randomness: Randomness,
        ttl: timedelta,
        clock: Callable[[], float],
    ) -> None:
        self.signing_key = signing_key
        self._random = randomness
        self._ttl_ns = int(ttl.total_seconds() * 1e9)
        self._clock = clock
        self._lock = threading.Lock()
        self._issued: dict[bytes, IssuedClientKey] = {}
        self._refusals_left = 0

    @property
    def verify_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    def signing_key_json(self) -> JsonObject:
        return {"signing_key": base64.b64encode(self.verify_key).decode()}

    def issue(self) -> JsonObject:
        private_key = nacl.public.PrivateKey(self._random.random_bytes(nacl.public.PrivateKey.SIZE))
        public_key = bytes(private_key.public_key)
        expires_at_ns = int(self._clock() * 1e9) + self._ttl_ns
        with self._lock:
            self._forget_long_expired()
            self._issued[public_key] = IssuedClientKey(private_key, expires_at_ns)
        # Signed over the raw 32 key bytes, not their base64 text, as the real API does.
        signature = self.signing_key.sign(public_key).signature
        return {
            "public_key": base64.b64encode(public_key).decode(),
            "signature": base64.b64encode(signature).decode(),
            "expires_at": rfc3339_nano(expires_at_ns),
        }

    def refuse_next(self, count: int = 1) -> None:
        """Refuse the client key of the next ``count`` sealed writes as expired, whatever its expiry."""
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._refusals_left += count

    def expire_all(self) -> None:
        """Every key issued so far expires now (they keep answering "expired", as a real expired key would)."""
        now_ns = int(self._clock() * 1e9)
        with self._lock:
            for public_key, issued in self._issued.items():
                self._issued[public_key] = IssuedClientKey(issued.private_key, min(issued.expires_at_ns, now_ns))

    def forget_all(self) -> None:
        """Forget every key issued so far: writes sealed to one are refused as unknown keys."""
        with self._lock:
            self._issued.clear()

    def open(self, client_key_b64: object, sealed: bytes) -> bytes:
        public_key = decode_base64(client_key_b64, "client_key")
        with self._lock:
            issued = self._issued.get(public_key)
            refused = issued is not None and self._refusals_left > 0
            if refused:
                self._refusals_left -= 1
        if issued is None:
            raise client_key_unknown()
        if refused or int(self._clock() * 1e9) >= issued.expires_at_ns:
            raise client_key_expired()
        try:
            return nacl.public.SealedBox(issued.private_key).decrypt(sealed)
        except nacl.exceptions.CryptoError:
            raise bad_request("secret: cannot be opened with the given client_key") from None

    def _forget_long_expired(self) -> None:
        # Bounded memory for long runs; keys stay known (and answer "expired") for an hour past expiry.
        horizon = int(self._clock() * 1e9) - 3600 * 1_000_000_000
        for public_key in [key for key, issued in self._issued.items() if issued.expires_at_ns < horizon]:
            del self._issued[public_key]
