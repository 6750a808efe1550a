"""What the emulated API stores and how it renders it: stores, secrets, errors, ids, digests and times."""

from __future__ import annotations

import base64
import random
import re
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ID_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 22  # real ids are 22 alphanumeric characters (the docs call them UUIDs; they are not)
DIGEST_BYTES = 32
MAX_NAME_BYTES = 255
MAX_VALUE_BYTES = 64 * 1024
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")

JsonObject = dict[str, Any]


class ApiError(Exception):
    """An error the API answers with Fastly's usual body: {"msg": ..., "detail": ...}."""

    def __init__(self, status: int, msg: str, detail: str | None = None) -> None:
        super().__init__(f"{status} {msg}" + (f" ({detail})" if detail else ""))
        self.status = status
        self.msg = msg
        self.detail = detail

    def body(self) -> JsonObject:
        return {"msg": self.msg} if self.detail is None else {"msg": self.msg, "detail": self.detail}


def not_found() -> ApiError:
    return ApiError(404, "Record not found")


def bad_request(detail: str) -> ApiError:
    return ApiError(400, "Bad Request", detail)


def rfc3339_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(epoch_ns: int) -> str:
    """Go's time.RFC3339Nano: nanoseconds with trailing zeros dropped, as the real client-key expiry is."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def check_name(name: object, what: str = "name") -> str:
    if not isinstance(name, str) or not name:
        raise bad_request(f"{what}: required")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise bad_request(f"{what}: at most {MAX_NAME_BYTES} bytes")
    if not _NAME_PATTERN.fullmatch(name):
        raise bad_request(f"{what}: only letters, digits, '-', '_' and '.' are allowed")
    return name


@dataclass(frozen=True)
class Store:
    id: str
    name: str
    created_at: datetime

    def to_json(self) -> JsonObject:
        return {"id": self.id, "name": self.name, "created_at": rfc3339_seconds(self.created_at)}


@dataclass(frozen=True)
class Secret:
    name: str
    digest: str
    created_at: datetime
    # Kept for tests (FastlyEmulator.plaintext); never rendered by to_json and kept out of repr.
    plaintext: bytes = field(repr=False)

    def to_json(self, *, recreated: bool = False) -> JsonObject:
        body: JsonObject = {
            "name": self.name,
            "digest": self.digest,
            "created_at": rfc3339_seconds(self.created_at),
        }
        if recreated:  # the real API omits the field unless the write replaced a secret
            body["recreated"] = True
        return body


class Randomness:
    """Ids, digests and key material; reproducible when seeded."""

    def __init__(self, seed: int | None) -> None:
        self._rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()

    def new_id(self) -> str:
        return "".join(self._rng.choice(ID_ALPHABET) for _ in range(ID_LENGTH))

    def new_digest(self) -> str:
        # Opaque and never repeated, like the real one: not a hash of the value.
        return base64.b64encode(self.random_bytes(DIGEST_BYTES)).decode()

    def random_bytes(self, count: int) -> bytes:
        return self._rng.randbytes(count)

    def chance(self, rate: float) -> bool:
        return self._rng.random() < rate
