"""The FastlySecretStore spec, parsed and checked before any Fastly request is made."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fastly_secret_store_operator.reconcile.errors import ReconcileError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_NAME_BYTES = 255
#: Shorter resyncs would turn drift checks into a busy loop against Fastly and the API server.
MIN_RESYNC_SECONDS = 1.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class AdoptionPolicy(StrEnum):
    ADOPT_OR_CREATE = "AdoptOrCreate"
    ADOPT = "Adopt"
    MUST_CREATE = "MustCreate"


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    RETAIN = "Retain"


@dataclass(frozen=True, slots=True)
class SecretKeyRef:
    secret: str
    key: str


@dataclass(frozen=True, slots=True)
class EntrySource:
    """One declared entry: the Fastly entry `name` takes its value from `ref`."""

    name: str
    ref: SecretKeyRef


@dataclass(frozen=True, slots=True)
class EntriesFrom:
    secret: str
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class StoreSpec:
    name: str
    token_ref: SecretKeyRef
    adoption: AdoptionPolicy = AdoptionPolicy.ADOPT_OR_CREATE
    deletion: DeletionPolicy = DeletionPolicy.DELETE
    resync_seconds: float = 600.0
    entries: tuple[EntrySource, ...] = ()
    entries_from: tuple[EntriesFrom, ...] = ()
    prune: bool = False
    referenced_secrets: frozenset[str] = field(default=frozenset())


def check_name(name: str, what: str) -> None:
    """Fastly's rule for store and entry names; raises an InvalidSpec error that says what to fix."""
    if not NAME_PATTERN.match(name):
        raise ReconcileError(
            "InvalidSpec",
            f"{what} {name!r} is not a valid Fastly name: use only letters, digits, '-', '_' and '.'",
        )
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ReconcileError("InvalidSpec", f"{what} is {len(name.encode())} bytes long; Fastly allows 255")


def parse_duration(text: str) -> float:
    """Seconds in a Kubernetes-style duration ("90s", "10m", "1h30m"); "0" means never."""
    text = text.strip()
    if text == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ReconcileError(
            "InvalidSpec",
            f"spec.resyncInterval {text!r} is not a duration: write it as 30s, 10m, 1h or 0 (off)",
        )
    if total < MIN_RESYNC_SECONDS:
        raise ReconcileError(
            "InvalidSpec", f"spec.resyncInterval {text!r} is too short: at least 1s (10m is the default), or 0 (off)"
        )
    return total


def _choice(spec: Mapping[str, Any], key: str, enum: type[StrEnum], default: StrEnum) -> Any:
    value = spec.get(key, default.value)
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ReconcileError("InvalidSpec", f"spec.{key} {value!r} is not one of {allowed}") from None


def _required_str(mapping: Mapping[str, Any], key: str, where: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise ReconcileError("InvalidSpec", f"{where}.{key} is required")
    return value


def parse_spec(spec: Mapping[str, Any], *, default_name: str) -> StoreSpec:
    """Check the whole spec up front: a spec the operator cannot act on never reaches Fastly."""
    name = spec.get("name") or default_name
    check_name(name, "spec.name")

    token = spec.get("apiTokenSecretRef")
    if not isinstance(token, Mapping):
        raise ReconcileError("InvalidSpec", "spec.apiTokenSecretRef is required: name the Secret holding the token")
    token_ref = SecretKeyRef(_required_str(token, "name", "spec.apiTokenSecretRef"), token.get("key") or "token")

    entries: list[EntrySource] = []
    seen: set[str] = set()
    for index, item in enumerate(spec.get("entries") or ()):
        where = f"spec.entries[{index}]"
        entry_name = _required_str(item, "name", where)
        check_name(entry_name, f"{where}.name")
        if entry_name in seen:
            raise ReconcileError("InvalidSpec", f"{where}.name {entry_name!r} is declared twice")
        seen.add(entry_name)
        ref = item.get("secretKeyRef") or {}
        entries.append(
            EntrySource(
                entry_name,
                SecretKeyRef(
                    _required_str(ref, "name", f"{where}.secretKeyRef"),
                    _required_str(ref, "key", f"{where}.secretKeyRef"),
                ),
            )
        )

    entries_from: list[EntriesFrom] = []
    for index, item in enumerate(spec.get("entriesFrom") or ()):
        where = f"spec.entriesFrom[{index}]"
        secret = _required_str(item.get("secretRef") or {}, "name", f"{where}.secretRef")
        prefix = item.get("prefix") or ""
        if prefix:
            check_name(prefix, f"{where}.prefix")
        entries_from.append(EntriesFrom(secret, prefix))

    referenced = {token_ref.secret}
    referenced.update(entry.ref.secret for entry in entries)
    referenced.update(source.secret for source in entries_from)
    return StoreSpec(
        name=name,
        token_ref=token_ref,
        adoption=_choice(spec, "adoptionPolicy", AdoptionPolicy, AdoptionPolicy.ADOPT_OR_CREATE),
        deletion=_choice(spec, "deletionPolicy", DeletionPolicy, DeletionPolicy.DELETE),
        resync_seconds=parse_duration(str(spec.get("resyncInterval", "10m"))),
        entries=tuple(entries),
        entries_from=tuple(entries_from),
        prune=bool(spec.get("pruneEntries", False)),
        referenced_secrets=frozenset(referenced),
    )
