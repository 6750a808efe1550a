"""Client-side sealing: values leave this process only as libsodium sealed boxes for a verified Fastly key."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta

from nacl.exceptions import BadSignatureError
from nacl.public import PublicKey, SealedBox
from nacl.signing import VerifyKey

from ._http import Clock, utc_now
from .client import FastlyClient
from .errors import SigningKeyMismatchError, ValueTooLargeError
from .models import PUBLIC_KEY_BYTES, ClientKey, SealedValue

# Fastly's production Ed25519 signing key, pinned as the Fastly CLI pins it.
FASTLY_SIGNING_KEY = base64.b64decode("CrO/A92vkxEZjtTW7D/Sr+1EMf/q9BahC0sfLkWa+0k=")
MAX_VALUE_BYTES = 64 * 1024  # plaintext, before encryption and base64


def verify_client_key(client_key: ClientKey, signing_key: bytes) -> None:
    """Raise SigningKeyMismatchError unless ``signing_key`` signed the raw 32 bytes of the client key."""
    try:
        VerifyKey(signing_key).verify(client_key.public_key, client_key.signature)
    except BadSignatureError:
        raise SigningKeyMismatchError(
            "Fastly's client key is not signed by the trusted signing key",
            detail="refusing to encrypt for it; if this is an emulator, trust the API's signing key",
        ) from None


def seal_with(client_key: ClientKey, value: bytes) -> SealedValue:
    """Seal ``value`` for ``client_key`` (which the caller has verified)."""
    ciphertext = SealedBox(PublicKey(client_key.public_key)).encrypt(value)
    return SealedValue(
        secret=base64.b64encode(ciphertext).decode("ascii"),
        client_key=base64.b64encode(client_key.public_key).decode("ascii"),
    )


class Sealer:
    """Seals values with a verified client key; reuses the key until shortly before expires_at.

    Concurrent seal() calls share one in-flight key fetch, so N writes cost one client-key POST (a
    rate-limited write) per key lifetime. ``signing_key=None`` trusts whatever signing key the API serves
    (fetched once): for the emulator only.
    """

    def __init__(
        self,
        client: FastlyClient,
        *,
        signing_key: bytes | None = FASTLY_SIGNING_KEY,
        refresh_margin: timedelta = timedelta(minutes=2),
        clock: Clock = utc_now,
    ) -> None:
        if signing_key is not None and len(signing_key) != PUBLIC_KEY_BYTES:
            raise ValueError(f"an Ed25519 signing key is {PUBLIC_KEY_BYTES} bytes, not {len(signing_key)}")
        self._client = client
        self._signing_key = signing_key
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._client_key: ClientKey | None = None
        self._fetching: asyncio.Task[ClientKey] | None = None

    async def seal(self, value: bytes) -> SealedValue:
        if len(value) > MAX_VALUE_BYTES:
            raise ValueTooLargeError(
                f"the value is {len(value)} bytes; Fastly accepts at most {MAX_VALUE_BYTES} bytes",
            )
        return seal_with(await self._usable_client_key(), value)

    def discard(self, client_key: str) -> bool:
        """Stop using ``client_key`` (SealedValue.client_key, base64) after Fastly refused it
        (ClientKeyRejectedError); the next seal() fetches and verifies a new key. Only that key is dropped: when
        many writes fail with one key, the first discard drops it and the others find a newer key in its place,
        so they still share one fetch. True if the key was the cached one."""
        key = self._client_key
        if key is None or base64.b64encode(key.public_key).decode("ascii") != client_key:
            return False
        self._client_key = None
        return True

    async def _usable_client_key(self) -> ClientKey:
        key = self._client_key
        if key is not None and self._clock() < key.expires_at - self._refresh_margin:
            return key
        # No await between the check and the assignment, so exactly one caller starts the fetch.
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch_client_key())
            self._fetching.add_done_callback(self._fetch_done)
        # shield: a cancelled caller must not cancel the fetch the other callers are waiting for.
        return await asyncio.shield(self._fetching)

    async def _fetch_client_key(self) -> ClientKey:
        if self._signing_key is None:
            self._signing_key = await self._client.get_signing_key()
        key = await self._client.create_client_key()
        verify_client_key(key, self._signing_key)
        self._client_key = key
        return key

    def _fetch_done(self, task: asyncio.Task[ClientKey]) -> None:
        self._fetching = None
        if not task.cancelled():
            task.exception()  # retrieved here so a fetch whose callers all went away logs no warning
