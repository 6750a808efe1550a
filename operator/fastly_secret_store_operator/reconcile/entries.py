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
    ClientKeyRejectedError,
    FastlyClient,
    FastlyError,
    InvalidRequestError,
    NotFoundError,
    Sealer,
    Secret,
)
from fastly_secret_store_operator.reconcile.conditions import rfc3339
from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.fingerprint import Fingerprinter
from fastly_secret_store_operator.reconcile.sources import SecretReader, SecretReadError
from fastly_secret_store_operator.reconcile.spec import StoreSpec, name_problem

#: Entry writes one object keeps in flight at once (objects at once are bounded by --max-concurrent-reconciles).
ENTRY_WRITES_AT_ONCE = 4
#: Entries one object may hold: entries plus every key of every entriesFrom Secret. Bounds the status (well under
#: the API server's 1.5 MiB object limit with 255-byte names) and one object's share of Fastly's write budget.
MAX_ENTRIES = 1000


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
    """The values the spec asks for, read from Secrets in the object's namespace (each Secret read once).

    Raises TooManyEntries before anything is written when the sources give more than MAX_ENTRIES names."""
    desired = DesiredEntries()
    cache: dict[str, Mapping[str, bytes] | None] = {}
    #: entry name -> (where it comes from, its value), for every source that gives it.
    offered: dict[str, list[tuple[str, bytes]]] = {}

    async def read(name: str, entry: str) -> Mapping[str, bytes] | SecretReadError | None:
        if name not in cache:
            try:
                cache[name] = await reader.read_secret(namespace, name)
            except SecretReadError as error:
                if not error.forbidden:
                    raise  # the API server is failing: the whole pass is retried
                desired.complete = False
                desired.problems.append(EntryProblem(entry, "SecretForbidden", error.message))
                return error
        return cache[name]

    total = len(spec.entries)
    for index, source in enumerate(spec.entries_from):
        data = await read(source.secret, f"{source.prefix}*")
        if isinstance(data, SecretReadError):
            continue
        if data is None:
            desired.complete = False
            desired.problems.append(
                EntryProblem(
                    f"{source.prefix}*",
                    "SecretNotFound",
                    f"Secret {namespace}/{source.secret} (spec.entriesFrom[{index}]) does not exist: create it",
                )
            )
            continue
        total += len(data)
        for key, value in data.items():
            name = source.prefix + key
            problem = name_problem(name)
            if problem is not None:
                prefix = f" with prefix {source.prefix!r}" if source.prefix else ""
                desired.problems.append(
                    EntryProblem(
                        name[:64],
                        "InvalidEntryName",
                        f"key {key[:64]!r} of Secret {namespace}/{source.secret}{prefix} makes the entry name "
                        f"{name[:64]!r}, which is not a valid Fastly name ({problem}): rename the key"
                        + (" or shorten the prefix" if prefix else ""),
                    )
                )
                continue
            offered.setdefault(name, []).append(
                (f"key {key!r} of Secret {source.secret} (spec.entriesFrom[{index}])", value)
            )
    if total > MAX_ENTRIES:
        raise ReconcileError(
            "TooManyEntries",
            f"this object declares {total} entries (spec.entries plus every key of its entriesFrom Secrets); at "
            f"most {MAX_ENTRIES} are allowed per object: split them over several FastlySecretStores. No entry was "
            "written or deleted",
        )

    for index, entry in enumerate(spec.entries):
        data = await read(entry.ref.secret, entry.name)
        if isinstance(data, SecretReadError):
            continue
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
            where = f"key {entry.ref.key!r} of Secret {entry.ref.secret} (spec.entries[{index}])"
            offered.setdefault(entry.name, []).append((where, data[entry.ref.key]))

    for name, sources in offered.items():
        if len(sources) > 1:
            # Guessing which source wins would push a value nobody chose: refuse, and leave the entry as it is.
            desired.problems.append(
                EntryProblem(
                    name,
                    "EntryConflict",
                    f"entry {name} is given by {' and by '.join(where for where, _ in sources[:3])}: keep one "
                    "(rename a key, or set a prefix); the entry is left as it is until then",
                )
            )
            continue
        value = sources[0][1]
        if len(value) > MAX_VALUE_BYTES:
            desired.problems.append(
                EntryProblem(
                    name,
                    "ValueTooLarge",
                    f"the value for entry {name} is {len(value)} bytes; Fastly accepts at most {MAX_VALUE_BYTES}: "
                    "shrink it",
                )
            )
            continue
        desired.values[name] = value
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
                written = await _write(client, sealer, store_id, name, value)
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
            elif name_problem(name) is not None:
                pass  # a name an older version accepted ('.', '..'): not addressable in a URL; forget the record
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


async def _write(client: FastlyClient, sealer: Sealer, store_id: str, name: str, value: bytes) -> Secret:
    """PUT one sealed entry. A client key Fastly refuses (expired early, revoked) is dropped, and the write is
    sealed again with a new, verified key, once."""
    sealed = await sealer.seal(value)
    try:
        return await client.put_secret(store_id, name, sealed)
    except ClientKeyRejectedError:
        sealer.discard(sealed.client_key)
        return await client.put_secret(store_id, name, await sealer.seal(value))
