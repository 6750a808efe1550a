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
#: Kubernetes' rule for a Secret's name (a DNS-1123 subdomain) and for the keys of its data. Checked before any
#: request: a name is a path segment, and `..` in one would walk the request to another namespace.
SECRET_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SECRET_KEY_PATTERN = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_SECRET_NAME = 253
#: Names Fastly's pattern allows but that mean "this path" and "the parent path" in a URL.
DOT_NAMES = frozenset({".", ".."})
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
    #: The token Secret in the object's namespace; None when the token comes through `account`.
    token_ref: SecretKeyRef | None
    adoption: AdoptionPolicy = AdoptionPolicy.ADOPT_OR_CREATE
    #: None: delete a store this object created, keep one it adopted.
    deletion: DeletionPolicy | None = None
    resync_seconds: float = 600.0
    entries: tuple[EntrySource, ...] = ()
    entries_from: tuple[EntriesFrom, ...] = ()
    prune: bool = False
    referenced_secrets: frozenset[str] = field(default=frozenset())
    #: spec.accountRef.name: the FastlyAccount whose token (in the operator's namespace) this object uses.
    account: str | None = None


def name_problem(name: str) -> str | None:
    """What is wrong with `name` as a Fastly store or entry name, or None."""
    if not NAME_PATTERN.match(name):
        return "use only letters, digits, '-', '_' and '.'"
    if name in DOT_NAMES:
        return "'.' and '..' cannot be names (they mean paths in a URL)"
    if len(name.encode()) > MAX_NAME_BYTES:
        return f"it is {len(name.encode())} bytes long; Fastly allows {MAX_NAME_BYTES}"
    return None


def check_name(name: str, what: str, *, reason: str = "InvalidSpec") -> None:
    """Fastly's rule for store and entry names; raises an error that says what to fix."""
    problem = name_problem(name)
    if problem is not None:
        shown = name if len(name) <= 64 else name[:64] + "…"
        raise ReconcileError(reason, f"{what} {shown!r} is not a valid Fastly name: {problem}")


def _secret_name(mapping: Mapping[str, Any], where: str) -> str:
    name = _required_str(mapping, "name", where)
    if len(name) > MAX_SECRET_NAME or not SECRET_NAME_PATTERN.match(name):
        raise ReconcileError(
            "InvalidSpec",
            f"{where}.name {name[:64]!r} is not a Secret name: use lower-case letters, digits, '-' and '.' "
            f"(at most {MAX_SECRET_NAME}); Secrets are read from the object's own namespace only",
        )
    return name


def _secret_key(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ReconcileError("InvalidSpec", f"{where} is required")
    if len(value) > MAX_SECRET_NAME or not SECRET_KEY_PATTERN.match(value) or value in DOT_NAMES:
        raise ReconcileError(
            "InvalidSpec",
            f"{where} {value[:64]!r} is not a Secret key: use letters, digits, '-', '_' and '.' (not '.' or "
            f"'..', at most {MAX_SECRET_NAME})",
        )
    return value


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


def _choice(spec: Mapping[str, Any], key: str, enum: type[StrEnum], default: StrEnum | None) -> Any:
    value = spec.get(key, default.value if default is not None else None)
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

    token, account_ref = spec.get("apiTokenSecretRef"), spec.get("accountRef")
    if (token is None) == (account_ref is None):
        raise ReconcileError(
            "InvalidSpec",
            "set exactly one of spec.apiTokenSecretRef (the Secret, in this namespace, holding the token) and "
            "spec.accountRef (a FastlyAccount the platform team offers)",
        )
    token_ref: SecretKeyRef | None = None
    account: str | None = None
    if account_ref is not None:
        if not isinstance(account_ref, Mapping):
            raise ReconcileError("InvalidSpec", "spec.accountRef must name a FastlyAccount: {name: ...}")
        account = account_ref.get("name")
        if not isinstance(account, str) or len(account) > MAX_SECRET_NAME or not SECRET_NAME_PATTERN.match(account):
            shown = account[:64] if isinstance(account, str) else account
            raise ReconcileError(
                "InvalidSpec",
                f"spec.accountRef.name {shown!r} is not a FastlyAccount name: use lower-case letters, digits, '-' "
                f"and '.' (at most {MAX_SECRET_NAME})",
            )
    elif not isinstance(token, Mapping):
        raise ReconcileError("InvalidSpec", "spec.apiTokenSecretRef must name the Secret holding the token")
    else:
        token_ref = SecretKeyRef(
            _secret_name(token, "spec.apiTokenSecretRef"),
            _secret_key(token.get("key") or "token", "spec.apiTokenSecretRef.key"),
        )

    entries: list[EntrySource] = []
    seen: set[str] = set()
    for index, item in enumerate(spec.get("entries") or ()):
        where = f"spec.entries[{index}]"
        entry_name = _required_str(item, "name", where)
        check_name(entry_name, f"{where}.name", reason="InvalidEntryName")
        if entry_name in seen:
            raise ReconcileError("InvalidSpec", f"{where}.name {entry_name!r} is declared twice")
        seen.add(entry_name)
        ref = item.get("secretKeyRef") or {}
        entries.append(
            EntrySource(
                entry_name,
                SecretKeyRef(
                    _secret_name(ref, f"{where}.secretKeyRef"),
                    _secret_key(ref.get("key"), f"{where}.secretKeyRef.key"),
                ),
            )
        )

    entries_from: list[EntriesFrom] = []
    for index, item in enumerate(spec.get("entriesFrom") or ()):
        where = f"spec.entriesFrom[{index}]"
        secret = _secret_name(item.get("secretRef") or {}, f"{where}.secretRef")
        prefix = item.get("prefix") or ""
        if prefix and (not NAME_PATTERN.match(prefix) or len(prefix.encode()) >= MAX_NAME_BYTES):
            raise ReconcileError(
                "InvalidSpec",
                f"{where}.prefix {prefix[:64]!r} cannot start Fastly entry names: use only letters, digits, '-', "
                f"'_' and '.', shorter than {MAX_NAME_BYTES} bytes",
            )
        entries_from.append(EntriesFrom(secret, prefix))

    referenced = {token_ref.secret} if token_ref is not None else set()
    referenced.update(entry.ref.secret for entry in entries)
    referenced.update(source.secret for source in entries_from)
    return StoreSpec(
        name=name,
        token_ref=token_ref,
        adoption=_choice(spec, "adoptionPolicy", AdoptionPolicy, AdoptionPolicy.ADOPT_OR_CREATE),
        deletion=_choice(spec, "deletionPolicy", DeletionPolicy, None) if spec.get("deletionPolicy") else None,
        resync_seconds=parse_duration(str(spec.get("resyncInterval", "10m"))),
        entries=tuple(entries),
        entries_from=tuple(entries_from),
        prune=bool(spec.get("pruneEntries", False)),
        referenced_secrets=frozenset(referenced),
        account=account,
    )
