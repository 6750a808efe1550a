"""Fastly requests per entry written: this operator against the Fastly CLI's pattern and the minimum.

Runs the operator's reconcile functions against the local Fastly emulator and counts the requests it serves:

    .venv/bin/python benchmarks/entry_writes.py [--entries 100]

Scenarios: a first sync of N entries; a resync with nothing changed (the same as an operator restart, which
starts from the recorded status); a change to 10% of the values. The Fastly CLI's pattern is what
`fastly secret-store-entry create` does per entry: GET signing-key, POST client-key, then the write.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Any

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.owners import ClaimIndex
from fastly_secret_store_operator.reconcile.fingerprint import Fingerprinter
from fastly_secret_store_operator.reconcile.object import Environment, ObjectView, reconcile_object
from fastly_secret_store_operator.sessions import FastlyOptions, SessionPool

TOKEN = "benchmark-token"  # noqa: S105 - the emulator's made-up token


class Secrets:
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return {"token": TOKEN.encode()} if name == "token" else dict(self.values)


async def _noop(fields: Mapping[str, Any]) -> None:
    return None


def _count(fastly: FastlyEmulator) -> Counter[str]:
    counts: Counter[str] = Counter()
    for request in fastly.requests:
        if request.method == "GET":
            counts["reads"] += 1
        else:
            counts["writes"] += 1
            if request.route and "client-key" in request.route:
                counts["client-key POSTs"] += 1
            elif request.route and request.route.endswith("/secrets"):
                counts["entry writes"] += 1
    return counts


async def run(entries: int) -> list[tuple[str, int, Counter[str]]]:
    secrets = Secrets()
    secrets.values = {f"KEY_{index}": f"value-{index}".encode() for index in range(entries)}
    spec: dict[str, Any] = {"apiTokenSecretRef": {"name": "token"}, "entriesFrom": [{"secretRef": {"name": "app"}}]}
    rows = []
    async with FastlyEmulator(tokens=[TOKEN]) as fastly:
        pool = SessionPool(FastlyOptions(endpoint=fastly.url, trust_api_signing_key=True))
        env = Environment(
            secrets=secrets, connect=pool, fingerprinter=Fingerprinter(b"b" * 32), owners=ClaimIndex(lambda _: None)
        )
        status: dict[str, Any] = {}

        async def sync(label: str, changed: int, resync: bool = False) -> None:
            nonlocal status
            fastly.requests.clear()
            view = ObjectView("bench", "bench", 1, spec, status)
            result = await reconcile_object(view, env, resync=resync, checkpoint=_noop)
            status = result.status
            rows.append((label, changed, _count(fastly)))

        await sync("first sync (store created)", entries)
        await sync("restart / event with nothing changed", 0)
        await sync("periodic resync, nothing changed", 0, resync=True)
        changed = max(1, entries // 10)
        for index in range(changed):
            secrets.values[f"KEY_{index}"] = f"new-value-{index}".encode()
        await sync(f"{changed} of {entries} values changed", changed)
        await pool.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100)
    args = parser.parse_args()
    rows = asyncio.run(run(args.entries))
    print(
        "| scenario | entries changed | writes: this operator | writes: minimum | writes: Fastly CLI pattern |"
        " reads: this operator | reads: Fastly CLI pattern |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, changed, counts in rows:
        first = label.startswith("first")
        # The minimum: the store create, one write per changed entry, one client key per key lifetime (this run
        # fits in one lifetime, so only the first sync needs one).
        minimum = changed + (2 if first else 0)
        # The CLI: per entry, GET signing-key (a read), POST client-key and the write (two writes).
        cli_writes = 2 * changed + (1 if first else 0)
        print(
            f"| {label} | {changed} | {counts['writes']} | {minimum} | {cli_writes} | {counts['reads']} | {changed} |"
        )


if __name__ == "__main__":
    main()
