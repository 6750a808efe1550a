"""Accounts and their tokens: every token belongs to one account, and an account sees only its own stores.

A token is given as ``TOKEN`` (the default account) or ``ACCOUNT:TOKEN``. With no token given at all, any
non-empty token is accepted, in the default account. ``GET /tokens/self`` renders a token's record.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from .model import ID_ALPHABET, ID_LENGTH, ApiError, JsonObject, Randomness, rfc3339_seconds

DEFAULT_ACCOUNT = "default"
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def unauthorized() -> ApiError:
    return ApiError(401, "Provided credentials are missing or invalid")


def parse_token_spec(spec: str) -> tuple[str, str]:
    """``"ACCOUNT:TOKEN"`` or ``"TOKEN"`` (the default account) as (account, token)."""
    account, colon, token = spec.partition(":")
    if not colon:
        account, token = DEFAULT_ACCOUNT, spec
    if not _ACCOUNT_NAME.fullmatch(account):
        raise ValueError("an account name is letters, digits, '-', '_' and '.'; give a token as ACCOUNT:TOKEN")
    if not token.strip():
        raise ValueError("a token must not be empty")
    return account, token


def account_id(account: str) -> str:
    """The account's customer_id: derived from its name (which is no secret), so it is the same in every run and
    every emulator, as a real account's id is."""
    return _derived_id("customer", account)


def _derived_id(kind: str, name: str) -> str:
    number = int.from_bytes(hashlib.sha256(f"fastly-emulator {kind} {name}".encode()).digest())
    characters = []
    for _ in range(ID_LENGTH):
        number, index = divmod(number, len(ID_ALPHABET))
        characters.append(ID_ALPHABET[index])
    return "".join(characters)


@dataclass
class TokenRecord:
    account: str
    id: str  # random, never derived from the token: a hash of a secret is not shown anywhere
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    ip: str | None = None
    user_agent: str | None = None

    def to_json(self) -> JsonObject:
        # The recorded shape (fastly-recordings/tokens/get_self.yaml): a global token limited to no service.
        return {
            "id": self.id,
            "user_id": _derived_id("user", self.account),
            "customer_id": account_id(self.account),
            "name": f"emulator token ({self.account})",
            "last_used_at": _time_or_null(self.last_used_at),
            "created_at": rfc3339_seconds(self.created_at),
            "expires_at": _time_or_null(self.expires_at),
            "ip": self.ip,
            "user_agent": self.user_agent,
            "sudo_expires_at": None,
            "scopes": ["global"],
            "scope": "global",
            "services": [],
            "service_id": None,
        }


def _time_or_null(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339_seconds(moment)


class Accounts:
    """The tokens an emulator accepts. Thread-safe: tests add tokens and set expiries from other threads."""

    def __init__(self, specs: Iterable[str] | None, randomness: Randomness, clock: Callable[[], float]) -> None:
        self._random = randomness
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenRecord] = {}
        self._revoked: set[str] = set()
        self.accepts_any = specs is None  # then any non-empty token is accepted, in the default account
        for spec in specs or ():
            self.add(*reversed(parse_token_spec(spec)))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(int(self._clock()), UTC)

    def add(self, token: str, account: str = DEFAULT_ACCOUNT, *, expires_at: datetime | None = None) -> None:
        """Accept ``token`` as one of ``account``'s (moving it there if it was known)."""
        parse_token_spec(f"{account}:{token}")  # the same checks as the command line's
        with self._lock:
            record = self._record(token)
            record.account, record.expires_at = account, expires_at

    def set_expiry(self, token: str, expires_at: datetime | None) -> None:
        """When ``token`` expires (None: never). From then on it is refused with 401, as an expired one is."""
        with self._lock:
            if self._known(token) is None:
                raise KeyError("no such token")  # the token itself stays out of the message
            self._record(token).expires_at = expires_at

    def remove(self, token: str) -> None:
        """Revoke ``token``: it is refused with 401 from now on (also when any token is accepted)."""
        with self._lock:
            self._tokens.pop(token, None)
            self._revoked.add(token)

    def authenticate(self, token: str, *, ip: str | None = None, user_agent: str | None = None) -> TokenRecord:
        """The record of an accepted, unexpired token; ApiError 401 otherwise."""
        if not token:
            raise unauthorized()
        with self._lock:
            record = self._known(token)
            if record is None:
                if not self.accepts_any or token in self._revoked:
                    raise unauthorized()
                record = self._record(token)
            now = self._now()
            if record.expires_at is not None and record.expires_at <= now:
                raise unauthorized()
            record.last_used_at, record.ip, record.user_agent = now, ip, user_agent
            return record

    def account_of(self, token: str) -> str:
        """The account of a token that authenticate() has accepted."""
        with self._lock:
            record = self._known(token)
        if record is None:
            raise unauthorized()
        return record.account

    def _known(self, token: str) -> TokenRecord | None:
        return self._tokens.get(token)

    def _record(self, token: str) -> TokenRecord:
        record = self._tokens.get(token)
        if record is None:
            record = self._tokens[token] = TokenRecord(DEFAULT_ACCOUNT, self._random.new_id(), self._now())
            self._revoked.discard(token)
        return record

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._tokens)

    @property
    def names(self) -> set[str]:
        with self._lock:
            return {record.account for record in self._tokens.values()}
