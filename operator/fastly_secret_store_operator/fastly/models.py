"""What the Fastly secret store API returns, as immutable values, and the parsers that build them.

The parsers are strict about types and lenient about extra fields: a field Fastly adds tomorrow is ignored,
a field that changes type is an error rather than a silently wrong value.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from .errors import UnexpectedResponseError

T = TypeVar("T")

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


@dataclass(frozen=True, slots=True)
class Store:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Secret:
    name: str
    digest: str  # opaque: changes on every (re)write, says nothing about the value
    created_at: datetime
    recreated: bool = False


@dataclass(frozen=True, slots=True)
class ClientKey:
    public_key: bytes  # X25519, 32 bytes
    signature: bytes  # Ed25519 over the raw public key, 64 bytes
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What ``GET /tokens/self`` says about the token making the request."""

    id: str
    customer_id: str  # the Fastly account the token belongs to
    user_id: str
    expires_at: datetime | None  # None: never expires
    scope: str  # space-separated, e.g. "global" or "global:read purge_select"
    services: tuple[str, ...]  # the service ids it is limited to; empty for all


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    data: list[T]
    next_cursor: str | None  # None on the last page
    limit: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    remaining: int | None
    reset_at: datetime | None


@dataclass(frozen=True, slots=True)
class SealedValue:
    """A value sealed for Fastly: base64 text, ready for the request body."""

    secret: str
    client_key: str

    def __repr__(self) -> str:
        # Ciphertext is not plaintext, but it has no business in logs either.
        return f"SealedValue(secret=<{len(self.secret)} chars>, client_key={self.client_key!r})"


# RFC 3339. Python 3.11's fromisoformat takes at most 6 fractional digits; Fastly sends 9 (RFC3339Nano).
_RFC3339 = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime (sub-microsecond digits are truncated)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    fraction = (match["fraction"] or "")[:6]
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    iso = match["base"] + (f".{fraction.ljust(6, '0')}" if fraction else "") + offset
    return datetime.fromisoformat(iso).astimezone(UTC)


class _Fields:
    """Typed access to one JSON object, raising UnexpectedResponseError that names the object and field."""

    def __init__(self, value: object, what: str) -> None:
        if not isinstance(value, Mapping):
            raise UnexpectedResponseError(f"Fastly returned a {what} that is not a JSON object")
        self._object: Mapping[str, object] = value
        self._what = what

    def _bad(self, key: str, expected: str) -> UnexpectedResponseError:
        return UnexpectedResponseError(f"Fastly returned a {self._what} whose {key!r} is not {expected}")

    def optional(self, key: str) -> object:
        return self._object.get(key)

    def text(self, key: str) -> str:
        value = self._object.get(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def time(self, key: str) -> datetime:
        try:
            return parse_time(self.text(key))
        except ValueError:
            raise self._bad(key, "an RFC 3339 time") from None

    def base64(self, key: str, size: int) -> bytes:
        try:
            raw = base64.b64decode(self.text(key), validate=True)
        except binascii.Error:
            raise self._bad(key, "standard base64") from None
        if len(raw) != size:
            raise self._bad(key, f"{size} bytes")
        return raw

    def optional_time(self, key: str) -> datetime | None:
        return None if self._object.get(key) is None else self.time(key)

    def texts(self, key: str) -> tuple[str, ...]:
        """A list of strings; absent or null is empty."""
        value = self._object.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._bad(key, "a list of strings")
        return tuple(value)

    def flag(self, key: str) -> bool:
        value = self._object.get(key, False)
        if not isinstance(value, bool):
            raise self._bad(key, "a boolean")
        return value


def parse_store(body: object) -> Store:
    fields = _Fields(body, "store")
    return Store(id=fields.text("id"), name=fields.text("name"), created_at=fields.time("created_at"))


def parse_secret(body: object) -> Secret:
    fields = _Fields(body, "secret")
    return Secret(
        name=fields.text("name"),
        digest=fields.text("digest"),
        created_at=fields.time("created_at"),
        recreated=fields.flag("recreated"),
    )


def parse_client_key(body: object) -> ClientKey:
    fields = _Fields(body, "client key")
    # The real API says "public_key"; Fastly's docs and generated clients say "client_key".
    key_field = "client_key" if fields.optional("public_key") is None else "public_key"
    return ClientKey(
        public_key=fields.base64(key_field, PUBLIC_KEY_BYTES),
        signature=fields.base64("signature", SIGNATURE_BYTES),
        expires_at=fields.time("expires_at"),
    )


def parse_signing_key(body: object) -> bytes:
    return _Fields(body, "signing key").base64("signing_key", PUBLIC_KEY_BYTES)


def parse_token_info(body: object) -> TokenInfo:
    fields = _Fields(body, "token")
    identity = {key: fields.text(key) for key in ("id", "customer_id", "user_id")}
    for key, value in identity.items():
        if not value:
            raise UnexpectedResponseError(f"Fastly returned a token whose {key!r} is empty")
    # "scope" is the space-separated form; "scopes" the list (both recorded). Either will do.
    scope = fields.text("scope") if fields.optional("scope") is not None else " ".join(fields.texts("scopes"))
    return TokenInfo(
        **identity,
        expires_at=fields.optional_time("expires_at"),
        scope=scope,
        services=fields.texts("services"),
    )


def parse_page(body: object, parse_item: Callable[[object], T], *, requested_limit: int) -> Page[T]:
    fields = _Fields(body, "list")
    items = fields.optional("data")
    if not isinstance(items, list):
        raise UnexpectedResponseError("Fastly returned a list whose 'data' is not an array")
    meta = _Fields(fields.optional("meta") or {}, "list meta")
    cursor = meta.optional("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise UnexpectedResponseError("Fastly returned a list whose 'next_cursor' is not a string")
    limit = meta.optional("limit")
    if limit is None:
        limit = requested_limit
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise UnexpectedResponseError("Fastly returned a list whose 'limit' is not a number")
    return Page(data=[parse_item(item) for item in items], next_cursor=cursor or None, limit=limit)
