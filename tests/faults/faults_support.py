"""A fleet of FastlySecretStore objects driven through create, rotate and delete, and the invariants that must
hold through any fault: every object converges, one store per name, no orphan, no entry lost, no finalizer
released before the store is gone."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

from harness import Cluster

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.emulators.kubernetes import ApiError, KubernetesEmulator

TOKEN = "fastly-token-faults-7c3e"
KIND = "fastlysecretstores"
#: The Secret keys each object's source holds; entries: TOKEN <- key "token", and CFG_<key> for every key.
KEYS = ("token", "config")


class Fleet:
    """`size` objects named `<prefix>-<i>`, each reading its own Secret; every `retain_every`-th one Retains."""

    def __init__(
        self,
        cluster: Cluster,
        kube: KubernetesEmulator,
        fastly: FastlyEmulator,
        namespace: str,
        *,
        seed: int,
        size: int = 6,
        retain_every: int = 4,
        resync: str = "1s",
    ) -> None:
        self.cluster, self.kube, self.fastly, self.namespace = cluster, kube, fastly, namespace
        self.seed = seed
        self.rng = random.Random(seed)
        self.prefix = f"fleet{seed}"
        self.names = [f"{self.prefix}-{index}" for index in range(size)]
        self.retained = {name for index, name in enumerate(self.names) if retain_every and index % retain_every == 1}
        self.resync = resync
        self.values: dict[str, dict[str, bytes]] = {name: self._fresh_values() for name in self.names}
        self.deleted: set[str] = set()
        self.violations: list[str] = []
        self._sampling = threading.Event()

    # Driving

    def _fresh_values(self) -> dict[str, bytes]:
        # Binary on purpose: every byte value may appear, and must arrive unchanged.
        return {key: self.rng.randbytes(self.rng.randint(1, 48)) for key in KEYS}

    @staticmethod
    def source(name: str) -> str:
        return f"{name}-source"

    def spec(self, name: str) -> dict[str, Any]:
        return {
            "apiTokenSecretRef": {"name": "fastly-api-token"},
            "resyncInterval": self.resync,
            "deletionPolicy": "Retain" if name in self.retained else "Delete",
            # A store this object created must never be mistaken for someone else's, even after a lost answer.
            "adoptionPolicy": "MustCreate" if self.names.index(name) % 3 == 2 else "AdoptOrCreate",
            "entries": [{"name": "TOKEN", "secretKeyRef": {"name": self.source(name), "key": "token"}}],
            "entriesFrom": [{"secretRef": {"name": self.source(name)}, "prefix": "CFG_"}],
            "pruneEntries": True,
        }

    def create(self) -> None:
        for name in self.names:
            self.cluster.put_secret(self.namespace, self.source(name), **self.values[name])
            self.cluster.apply(self.namespace, name, self.spec(name))

    def rotate(self) -> list[str]:
        """A new "token" value for a seeded half of the objects (at least one); returns their names."""
        chosen = sorted(self.rng.sample(self.names, max(1, len(self.names) // 2)))
        for name in chosen:
            self.values[name]["token"] = self.rng.randbytes(32)
            self.cluster.put_secret(self.namespace, self.source(name), **self.values[name])
        return chosen

    def delete(self, names: list[str] | None = None) -> None:
        for name in names if names is not None else self.names:
            self.deleted.add(name)
            self.cluster.delete(self.namespace, name)

    def lifecycle(self) -> None:
        """Create, rotate values, delete: each step converged, every invariant sampled all along."""
        with self.sampling():
            self.create()
            self.wait_converged()
            self.rotate()
            self.wait_converged()
            self.delete()
            self.wait_deleted()

    # Observing (directly in the emulators' state: no HTTP, so no fault and no load on the operator's path)

    def body(self, name: str) -> dict[str, Any] | None:
        try:
            return self.kube.store.get(KIND, self.namespace, name)
        except ApiError as error:
            if error.code == 404:
                return None
            raise

    def stores_named(self, name: str) -> list[str]:
        return [store.id for store in self.fastly.stores() if store.name == name]

    def expected_entries(self, name: str) -> dict[str, bytes]:
        values = self.values[name]
        return {"TOKEN": values["token"], **{f"CFG_{key}": value for key, value in values.items()}}

    def problem(self, name: str) -> str | None:
        """What keeps `name` from being converged, or None when it is: Ready for its generation, exactly one
        store of its name, recorded in its status, holding exactly the declared entries with the source bytes."""
        body = self.body(name)
        if body is None:
            return f"{name} does not exist"
        status = body.get("status") or {}
        ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            return f"{name} is not Ready: {ready}"
        if status.get("observedGeneration") != body["metadata"].get("generation"):
            return f"{name}: status is for generation {status.get('observedGeneration')}"
        stores = self.stores_named(name)
        if stores != [status.get("id")]:
            return f"{name}: status.id {status.get('id')} but the stores of that name are {stores}"
        if status.get("adopted") is not False:
            return f"{name}: its store counts as adopted, but the operator created it"
        expected = self.expected_entries(name)
        remote = {secret.name: secret.plaintext for secret in self.fastly.secrets(stores[0])}
        if remote.keys() != expected.keys():
            return f"{name}: entries {sorted(remote)}, expected {sorted(expected)}"
        wrong = sorted(entry for entry, value in expected.items() if remote[entry] != value)
        return f"{name}: entries {wrong} do not hold the source bytes" if wrong else None

    def orphans(self) -> list[str]:
        """Stores with this fleet's prefix that no live object accounts for (Retained ones of deleted objects are
        accounted for: they are meant to stay)."""
        live = {name for name in self.names if name not in self.deleted} | (self.deleted & self.retained)
        return sorted(
            f"{store.name} ({store.id})"
            for store in self.fastly.stores()
            if store.name.startswith(self.prefix + "-") and store.name not in live
        )

    # Waiting (bounded, on state)

    def wait_converged(self, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            problems = [problem for name in self.names if (problem := self.problem(name))]
            problems += [f"orphan store {orphan}" for orphan in self.orphans()]
            if not problems:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"seed {self.seed}: not converged after {timeout}s: {problems}")
            time.sleep(0.1)

    def wait_deleted(self, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = [name for name in sorted(self.deleted) if self.body(name) is not None]
            if not left:
                break
            if time.monotonic() > deadline:
                bodies = {name: (self.body(name) or {}).get("status", {}).get("conditions") for name in left}
                raise AssertionError(f"seed {self.seed}: still there after {timeout}s: {bodies}")
            time.sleep(0.1)
        # Retained stores stay (exactly one each); every other store of a deleted object is gone.
        for name in sorted(self.deleted):
            stores = self.stores_named(name)
            assert len(stores) == (1 if name in self.retained else 0), f"seed {self.seed}: {name} left {stores}"
        assert self.orphans() == [], f"seed {self.seed}: orphan stores {self.orphans()}"

    # Watching the invariants all along

    def sample(self) -> None:
        """One look at what must hold at every instant: at most one store per name; an object with the Delete
        policy never disappears while its store exists (its finalizer stays until the work is done)."""
        for name in self.names:
            body = self.body(name)  # the object first: a store seen after its object is gone must be a leak
            stores = self.stores_named(name)
            if len(stores) > 1:
                self.violations.append(f"{name}: {len(stores)} stores of that name: {stores}")
            if body is None and stores and name in self.deleted and name not in self.retained:
                self.violations.append(f"{name} disappeared while its store {stores} still existed")

    @contextlib.contextmanager
    def sampling(self, interval: float = 0.02) -> Iterator[None]:
        """Samples the invariants in a thread while the block runs, then asserts none was ever broken."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval):
                self.sample()

        sampler = threading.Thread(target=run, name="fleet-sampler", daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop.set()
            sampler.join(10)
        self.sample()
        assert self.violations == [], f"seed {self.seed}: invariants broken: {self.violations[:10]}"
