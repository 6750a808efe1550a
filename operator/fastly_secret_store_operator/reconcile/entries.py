"""Entries: Secret values pushed into the store, sealed client-side, written only when they change.

A value is written when its keyed fingerprint differs from the one recorded at the last write, or when the
remote entry is missing or was rewritten by someone else (its digest or created_at differ from the record).
Anything else, a restart or a resync included, writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastly_secret_store_operator.fastly import (
    MAX_VALUE_BYTES,
    FastlyClient,
    FastlyError,
    InvalidRequestError,
    NotFoundError,
    Sealer,
    Secret,
)
from fastly_secret_store_operator.reconcile.conditions import rfc3339
from fastly_secret_store_operator.reconcile.fingerprint import Fingerprinter
from fastly_secret_store_operator.reconcile.sources import SecretReader
from fastly_secret_store_operator.reconcile.spec import MAX_NAME_BYTES, NAME_PATTERN, StoreSpec

#: Entry writes one object keeps in flight at once (objects at once are bounded by --max-concurrent-reconciles).
ENTRY_WRITES_AT_ONCE = 4


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """What status.entries records of an entry this object wrote."""

    name: str
    created_at: str
    digest: str
    fingerprint: str

    @classmethod
    def from_status(cls, item: Mapping[str, Any]) -> EntryRecord:
        return cls(
            name=str(item.get("name", "")),
            created_at=str(item.get("createdAt", "")),
            digest=str(item.get("digest", "")),
            fingerprint=str(item.get("fingerprint", "")),
        )

    def as_status(self) -> dict[str, str]:
        return {
            "name": self.name,
            "createdAt": self.created_at,
            "digest": self.digest,
            "fingerprint": self.fingerprint,
        }

    def matches(self, remote: Secret) -> bool:
        return remote.digest == self.digest and rfc3339(remote.created_at) == self.created_at


@dataclass(frozen=True, slots=True)
class EntryProblem:
    """An entry that cannot be synced this pass; the others still are."""

    entry: str
    reason: str
    message: str


@dataclass(slots=True)
class DesiredEntries:
    values: dict[str, bytes] = field(default_factory=dict)
    problems: list[EntryProblem] = field(default_factory=list)
    #: False when a whole source is unreadable: the names it would give are unknown, so nothing may be pruned.
    complete: bool = True


async def resolve_entries(reader: SecretReader, namespace: str, spec: StoreSpec) -> DesiredEntries:
    """The values the spec asks for, read from Secrets in the object's namespace (each Secret read once)."""
    desired = DesiredEntries()
    cache: dict[str, Mapping[str, bytes] | None] = {}

    async def read(name: str) -> Mapping[str, bytes] | None:
        if name not in cache:
            cache[name] = await reader.read_secret(namespace, name)
        return cache[name]

    for source in spec.entries_from:
        data = await read(source.secret)
        if data is None:
            desired.complete = False
            desired.problems.append(
                EntryProblem(
                    f"{source.prefix}*",
                    "SecretNotFound",
                    f"Secret {namespace}/{source.secret} (spec.entriesFrom) does not exist: create it",
                )
            )
            continue
        for key, value in data.items():
            name = source.prefix + key
            if not NAME_PATTERN.match(name) or len(name.encode()) > MAX_NAME_BYTES:
                desired.problems.append(
                    EntryProblem(
                        name,
                        "InvalidEntryName",
                        f"key {key!r} of Secret {namespace}/{source.secret} does not make a valid Fastly entry "
                        "name (letters, digits, '-', '_', '.', at most 255 bytes): rename the key",
                    )
                )
                continue
            desired.values[name] = value

    for entry in spec.entries:  # explicit entries win over entriesFrom for the same name
        desired.values.pop(entry.name, None)
        data = await read(entry.ref.secret)
        if data is None:
            desired.problems.append(
                EntryProblem(
                    entry.name,
                    "SecretNotFound",
                    f"Secret {namespace}/{entry.ref.secret} for entry {entry.name} does not exist: create it",
                )
            )
        elif entry.ref.key not in data:
            desired.problems.append(
                EntryProblem(
                    entry.name,
                    "KeyNotFound",
                    f"Secret {namespace}/{entry.ref.secret} has no key {entry.ref.key!r} for entry {entry.name}: "
                    "add it, or fix spec.entries.secretKeyRef.key",
                )
            )
        else:
            desired.values[entry.name] = data[entry.ref.key]

    for name, value in list(desired.values.items()):
        if len(value) > MAX_VALUE_BYTES:
            del desired.values[name]
            desired.problems.append(
                EntryProblem(
                    name,
                    "ValueTooLarge",
                    f"the value for entry {name} is {len(value)} bytes; Fastly accepts at most {MAX_VALUE_BYTES}: "
                    "shrink it",
                )
            )
    return desired


@dataclass(slots=True)
class EntriesResult:
    records: list[EntryRecord]
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: int = 0
    problems: list[EntryProblem] = field(default_factory=list)
    #: Set when Fastly stopped the pass part way; `records` still holds every write that did happen.
    error: FastlyError | None = None


async def sync_entries(
    client: FastlyClient,
    sealer: Sealer,
    fingerprinter: Fingerprinter,
    store_id: str,
    desired: DesiredEntries,
    recorded: Sequence[EntryRecord],
    *,
    prune: bool,
) -> EntriesResult:
    """Write changed or drifted entries, prune what this object wrote and no longer declares."""
    records = {record.name: record for record in recorded}
    # With no records (a first sync, a new store) every entry is written and nothing pruned whatever the store
    # holds: the listing could change nothing, so it is not fetched (one request and round trip per object).
    remote = {secret.name: secret async for secret in client.list_secrets(store_id)} if records else {}
    result = EntriesResult(records=[], problems=list(desired.problems))
    problem_names = {problem.entry for problem in desired.problems}
    kept: dict[str, EntryRecord] = {}

    changed: list[tuple[str, bytes, str]] = []
    for name in sorted(desired.values):
        value = desired.values[name]
        fingerprint = fingerprinter.fingerprint(store_id, name, value)
        record = records.get(name)
        current = remote.get(name)
        if record and record.fingerprint == fingerprint and current and record.matches(current):
            kept[name] = record
            result.skipped += 1
        else:
            changed.append((name, value, fingerprint))

    pending = iter(changed)

    async def write_pending() -> None:
        for name, value, fingerprint in pending:
            if result.error is not None:
                return  # a write failed (rate limited, say): start no more; the next pass resumes
            try:
                written = await client.put_secret(store_id, name, await sealer.seal(value))
            except InvalidRequestError as error:
                # Fastly refused this entry alone: say so, and go on with the others.
                result.problems.append(EntryProblem(name, "EntryRejected", f"Fastly refused entry {name}: {error}"))
                problem_names.add(name)
                continue
            except FastlyError as error:
                result.error = result.error or error
                return
            kept[name] = EntryRecord(name, rfc3339(written.created_at), written.digest, fingerprint)
            result.written.append(name)

    try:
        # A few writes at once: one after another, an object's first sync takes one Fastly round trip per entry
        # while the slot it holds keeps other objects waiting (benchmarks/scale.py). Few, because each in-flight
        # write may meet the rate limit once more before the others stop.
        await asyncio.gather(*(write_pending() for _ in range(min(ENTRY_WRITES_AT_ONCE, len(changed)))))
        result.written.sort()
        if result.error is not None:
            raise result.error

        for name, record in records.items():
            if name in kept:
                continue
            if name in problem_names or not desired.complete:
                kept[name] = record  # unreadable source: keep the entry and its record, decide later
            elif prune:
                with contextlib.suppress(NotFoundError):  # already gone is as good as deleted
                    await client.delete_secret(store_id, name)
                result.deleted.append(name)
            # else: no longer declared and not pruned: released, left in Fastly as it is
    except FastlyError as error:
        result.error = error
        # Keep the records not yet reached, so the next pass picks up where this one stopped.
        for name, record in records.items():
            if name not in result.deleted:
                kept.setdefault(name, record)

    result.records = [kept[name] for name in sorted(kept)]
    return result
