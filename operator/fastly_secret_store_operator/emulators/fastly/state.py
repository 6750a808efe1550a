"""The emulator's in-memory secret stores. Thread-safe: tests inspect and change it from other threads."""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TypeVar

from .accounts import DEFAULT_ACCOUNT
from .model import (
    MAX_VALUE_BYTES,
    ApiError,
    JsonObject,
    Randomness,
    Secret,
    Store,
    bad_request,
    check_name,
    not_found,
)

DEFAULT_PAGE_LIMIT = 10  # what the real API answered without `limit` (the docs say 100)
MAX_PAGE_LIMIT = 200

Item = TypeVar("Item", Store, Secret)


class WriteMode(Enum):
    CREATE = "create"  # POST: fails if the name exists
    UPSERT = "upsert"  # PUT: create or recreate
    RECREATE = "recreate"  # PATCH: fails if the name is missing


@dataclass(frozen=True)
class Page:
    items: Sequence[Store | Secret]
    limit: int
    next_cursor: str | None

    def meta(self) -> JsonObject:
        meta: JsonObject = {"limit": self.limit}
        if self.next_cursor is not None:  # absent on the last page, as the real API does
            meta["next_cursor"] = self.next_cursor
        return meta


def paginate(items: Sequence[Item], key: Callable[[Item], str], cursor: str | None, limit: int) -> Page:
    """Pages over `items` sorted by `key`; the cursor is the base64 of the last key served."""
    ordered = sorted(items, key=key)
    if cursor:
        after = _decode_cursor(cursor)
        ordered = [item for item in ordered if key(item) > after]
    page = ordered[:limit]
    more = len(ordered) > limit
    next_cursor = base64.urlsafe_b64encode(key(page[-1]).encode()).decode() if more else None
    return Page(items=page, limit=limit, next_cursor=next_cursor)


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request("cursor: invalid") from None


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request("limit: must be an integer") from None
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise bad_request(f"limit: must be between 1 and {MAX_PAGE_LIMIT}")
    return limit


class SecretStores:
    """Every account's stores. Each call names the account it acts for; a store of another account answers as
    a missing one does (404). ``account=None`` (tests, out of band) sees every account's stores."""

    def __init__(self, randomness: Randomness, clock: Callable[[], float]) -> None:
        self._random = randomness
        self._clock = clock
        self._lock = threading.Lock()
        self._stores: dict[str, Store] = {}
        self._accounts: dict[str, str] = {}  # store id -> account
        self._secrets: dict[str, dict[str, Secret]] = {}
        # Whether real Fastly refuses a second store of the same name is unrecorded: tests run both ways.
        self.allow_duplicate_names = False

    def _now(self) -> datetime:
        return datetime.fromtimestamp(int(self._clock()), UTC)  # the API keeps second precision

    def create_store(self, name: object, account: str = DEFAULT_ACCOUNT) -> Store:
        checked = check_name(name)
        with self._lock:
            taken = any(store.name == checked for store in self._visible(account))
            if taken and not self.allow_duplicate_names:
                # Not recorded for secret stores; the sibling KV store API answers this.
                raise ApiError(409, f"store with name '{checked}' already exists")
            store = Store(id=self._unused_id(), name=checked, created_at=self._now())
            self._stores[store.id] = store
            self._accounts[store.id] = account
            self._secrets[store.id] = {}
            return store

    def account_of(self, store_id: str) -> str:
        with self._lock:
            if store_id not in self._accounts:
                raise not_found()
            return self._accounts[store_id]

    def _visible(self, account: str | None) -> list[Store]:
        return [store for store in self._stores.values() if account is None or self._accounts[store.id] == account]

    def _check_visible(self, store_id: str, account: str | None) -> None:
        if store_id not in self._stores or (account is not None and self._accounts[store_id] != account):
            raise not_found()

    def _unused_id(self) -> str:
        while (store_id := self._random.new_id()) in self._stores:
            pass
        return store_id

    def get_store(self, store_id: str, account: str | None = None) -> Store:
        with self._lock:
            self._check_visible(store_id, account)
            return self._stores[store_id]

    def delete_store(self, store_id: str, account: str | None = None) -> None:
        with self._lock:
            self._check_visible(store_id, account)
            del self._stores[store_id], self._accounts[store_id]
            del self._secrets[store_id]  # deleting a store deletes every secret in it

    def all_stores(self, account: str | None = None) -> list[Store]:
        with self._lock:
            return sorted(self._visible(account), key=lambda store: store.id)

    def list_stores(self, *, name: str | None, cursor: str | None, limit: int, account: str | None = None) -> Page:
        stores = self.all_stores(account)
        if name is not None:
            stores = [store for store in stores if store.name == name]
        return paginate(stores, lambda store: store.id, cursor, limit)

    def write_secret(
        self, store_id: str, name: object, plaintext: bytes, mode: WriteMode, account: str | None = None
    ) -> tuple[Secret, bool]:
        """Creates or recreates a secret; returns it and whether it replaced one."""
        checked = check_name(name)
        if len(plaintext) > MAX_VALUE_BYTES:
            raise bad_request(f"secret: at most {MAX_VALUE_BYTES} bytes of plaintext")
        with self._lock:
            secrets = self._secrets_of(store_id, account)
            exists = checked in secrets
            if exists and mode is WriteMode.CREATE:
                raise bad_request("duplicate: name")
            if not exists and mode is WriteMode.RECREATE:
                raise not_found()
            secret = Secret(name=checked, digest=self._random.new_digest(), created_at=self._now(), plaintext=plaintext)
            secrets[checked] = secret
            return secret, exists

    def get_secret(self, store_id: str, name: str, account: str | None = None) -> Secret:
        with self._lock:
            secret = self._secrets_of(store_id, account).get(name)
            if secret is None:
                raise not_found()
            return secret

    def delete_secret(self, store_id: str, name: str, account: str | None = None) -> None:
        with self._lock:
            if self._secrets_of(store_id, account).pop(name, None) is None:
                raise not_found()

    def all_secrets(self, store_id: str, account: str | None = None) -> list[Secret]:
        with self._lock:
            return sorted(self._secrets_of(store_id, account).values(), key=lambda secret: secret.name)

    def list_secrets(self, store_id: str, *, cursor: str | None, limit: int, account: str | None = None) -> Page:
        return paginate(self.all_secrets(store_id, account), lambda secret: secret.name, cursor, limit)

    def _secrets_of(self, store_id: str, account: str | None) -> dict[str, Secret]:
        self._check_visible(store_id, account)
        return self._secrets[store_id]
