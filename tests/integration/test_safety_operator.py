"""Issue 10, end to end: the real operator (`run` in a subprocess) against the Kubernetes and Fastly emulators,
each defect of the issue driven as an adversarial tenant or an unlucky operator would.

Every test gets a namespace and an operator process of its own (so the Fastly requests a test counts are its own
operator's), against one Kubernetes emulator and one Fastly emulator with two accounts. The Kubernetes emulator
serves the CRD as it was before Secret names were checked by the schema, so that objects the CRD now refuses can
still be stored, as they may have been before an upgrade: the operator's own defence is what is tested.
"""

from __future__ import annotations

import base64
import collections
import functools
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web
from harness import CRDS, TOKEN, Cluster, OperatorProcess, free_port, unique, wait_for

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator, Route, run_in_thread
from fastly_secret_store_operator.emulators.kubernetes import ApiError, KubernetesEmulator

#: A second token of the default account, and a token of another account.
SAME_ACCOUNT_TOKEN = TOKEN + "-same-account"
OTHER_TOKEN = "fastly-token-other-account-93f0"
OTHER = "other"
VICTIM = "victim"
VICTIM_VALUE = "victim-canary-value-5e21"
TRAVERSAL = f"../../{VICTIM}/secrets/victim-secret"
REQUESTED = "fastly.operator.dev/reconcile-requested-at"
#: Create requests longer than this are not answered in time by an operator run with --fastly-timeout 1.
SHORT_TIMEOUT = "1"
#: The grace period after a create request without a usable answer (the default is 60 s).
GRACE = "3"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DNS_1123 = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class TrackedFastly(FastlyEmulator):
    """The Fastly emulator, counting requests in flight per route: a test can wait until a request held by a
    fault has been carried out, whether or not the operator still waits for its answer."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.in_flight: collections.Counter[str] = collections.Counter()

    def make_app(self) -> web.Application:
        app = super().make_app()

        @web.middleware
        async def count(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
            resource = request.match_info.route.resource
            key = f"{request.method} {resource.canonical if resource is not None else request.path}"
            self.in_flight[key] += 1
            try:
                return await handler(request)
            finally:
                self.in_flight[key] -= 1

        app.middlewares.insert(0, count)
        return app

    def creates_in_flight(self) -> int:
        return self.in_flight[Route.CREATE_STORE.value]


def _relaxed_crd() -> dict[str, Any]:
    """The CRD without the DNS-1123 rule on Secret names (and their length limit): as it was before the rule."""
    crd: dict[str, Any] = yaml.safe_load(next(path for path in CRDS if "fastlysecretstores" in path.name).read_text())

    def relax(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("pattern") == DNS_1123:
                node.pop("pattern")
                node.pop("maxLength", None)
            for value in node.values():
                relax(value)
        elif isinstance(node, list):
            for value in node:
                relax(value)

    relax(crd)
    return crd


@pytest.fixture(scope="module")
def kube() -> Iterator[KubernetesEmulator]:
    others = [path for path in CRDS if "fastlysecretstores" not in path.name]  # the FastlyAccount CRD
    emulator = KubernetesEmulator(crds=[_relaxed_crd(), *others], namespaces=("default",))
    with emulator.run_in_thread():
        yield emulator


@pytest.fixture(scope="module")
def cluster(kube: KubernetesEmulator, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return Cluster(kube.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig"))


@pytest.fixture(scope="module")
def fastly() -> Iterator[TrackedFastly]:
    emulator = TrackedFastly(tokens=[TOKEN, SAME_ACCOUNT_TOKEN, f"{OTHER}:{OTHER_TOKEN}"])
    with run_in_thread(emulator):
        yield emulator


@pytest.fixture
def namespace(cluster: Cluster) -> str:
    name = unique("safety")
    cluster.ensure_namespace(name)
    cluster.put_secret(name, "fastly-api-token", token=TOKEN)
    return name


class Operator:
    """The test's operator process, with its metrics endpoint: the reconcile passes it counts (by reason) are
    the positive sign that it has looked at an object."""

    def __init__(self, process: OperatorProcess, metrics_port: int) -> None:
        self.process = process
        self.metrics = f"http://127.0.0.1:{metrics_port}/metrics"

    def passes(self, reason: str) -> int:
        try:
            text = httpx.get(self.metrics, timeout=2).text
        except httpx.TransportError:
            return 0
        found = re.search(rf'^fastly_secret_store_operator_reconciles_total{{result="{reason}"}} (\S+)$', text, re.M)
        return int(float(found.group(1))) if found else 0

    def wait_passes(self, reason: str, at_least: int, timeout: float = 20.0) -> None:
        wait_for(f"{at_least} passes concluded {reason}", lambda: self.passes(reason) >= at_least, timeout)

    def restart(self) -> None:
        """SIGKILL (no cleanup, as when a node dies), then start again."""
        self.process.kill()
        self.process.start()

    def logs(self) -> str:
        return self.process.logs()


@pytest.fixture
def start_operator(
    cluster: Cluster, fastly: FastlyEmulator, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Operator]]:
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    started: list[Operator] = []

    def start(*extra: str) -> Operator:
        port = free_port()
        process = OperatorProcess(
            cluster.kubeconfig,
            fastly.url,
            [namespace],
            tmp_path / "operator.log",
            extra_args=("--metrics-port", str(port), "--create-grace", GRACE, *extra),
        )
        process.start()
        started.append(Operator(process, port))
        return started[-1]

    yield start
    for operator in started:
        operator.process.stop()
    if started:  # pytest shows this only for a failed test
        print("".join(started[0].logs().splitlines(keepends=True)[-200:]))


# Helpers


def spec(token_secret: str = "fastly-api-token", **extra: Any) -> dict[str, Any]:  # noqa: S107 (a Secret name)
    return {"apiTokenSecretRef": {"name": token_secret}, **extra}


def entry(name: str, secret: str, key: str = "value") -> dict[str, Any]:
    return {"name": name, "secretKeyRef": {"name": secret, "key": key}}


def writes_since(fastly: FastlyEmulator, mark: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in fastly.requests[mark:] if r.method in WRITES]


def request_reconcile(cluster: Cluster, namespace: str, name: str) -> None:
    stamp = datetime.now(UTC).isoformat()
    cluster.custom.patch_namespaced_custom_object(
        "fastly.operator.dev",
        "v1alpha1",
        namespace,
        "fastlysecretstores",
        name,
        {"metadata": {"annotations": {REQUESTED: stamp}}},
        _content_type="application/merge-patch+json",
    )


def wait_reason_current(cluster: Cluster, namespace: str, name: str, reason: str, timeout: float = 20.0) -> Any:
    """The Ready condition has `reason` for the object's current generation."""

    def check() -> Any:
        body = cluster.get(namespace, name) or {}
        ready = next((c for c in body.get("status", {}).get("conditions", []) if c.get("type") == "Ready"), None)
        generation = body.get("metadata", {}).get("generation")
        fresh = body.get("status", {}).get("observedGeneration") == generation
        return (
            ready
            if ready and ready.get("reason") == reason and ready.get("observedGeneration") == generation and fresh
            else None
        )

    try:
        return wait_for(f"{namespace}/{name} is {reason}", check, timeout)
    except AssertionError:
        raise AssertionError(f"{namespace}/{name} never reached {reason}: {cluster.get(namespace, name)}") from None


def observed(cluster: Cluster, namespace: str, name: str) -> bool:
    """A pass has concluded on the object's current generation, whatever it concluded."""
    body = cluster.get(namespace, name) or {}
    conditions = body.get("status", {}).get("conditions", [])
    generation = body.get("metadata", {}).get("generation")
    return any(c.get("type") == "Ready" and c.get("observedGeneration") == generation for c in conditions)


def event_reasons(cluster: Cluster, namespace: str, name: str) -> list[str]:
    return [
        event["reason"]
        for event in cluster.events(namespace)
        if (event.get("involvedObject") or {}).get("name") == name
    ]


def assert_nothing_leaked(cluster: Cluster, namespace: str, operator: Operator, *canaries: str) -> None:
    texts = {
        "logs": operator.logs(),
        "events": str(cluster.events(namespace)),
        "objects": str(
            cluster.custom.list_namespaced_custom_object(
                "fastly.operator.dev", "v1alpha1", namespace, "fastlysecretstores"
            )
        ),
    }
    for canary in (TOKEN, SAME_ACCOUNT_TOKEN, OTHER_TOKEN, *canaries):
        for where, text in texts.items():
            assert canary not in text, f"{canary!r} in the {where}"
            assert base64.b64encode(canary.encode()).decode() not in text, f"{canary!r} (base64) in the {where}"


# 1. Traversal


def test_secret_names_cannot_walk_to_another_namespace(
    cluster: Cluster,
    kube: KubernetesEmulator,
    fastly: FastlyEmulator,
    namespace: str,
    start_operator: Callable[..., Operator],
) -> None:
    """Objects stored before the CRD checked Secret names, each naming a Secret of namespace `victim` by a path
    that walks up: each is InvalidSpec, nothing of `victim` is requested, and nothing reaches Fastly."""
    cluster.ensure_namespace(VICTIM)
    cluster.put_secret(VICTIM, "victim-secret", token=VICTIM_VALUE, value=VICTIM_VALUE)
    cluster.put_secret(namespace, "mine", value="my-value")
    objects = {
        unique("token"): spec(TRAVERSAL),
        unique("entry"): spec(entries=[entry("STOLEN", TRAVERSAL)]),
        unique("from"): spec(entries=[entry("MINE", "mine")], entriesFrom=[{"secretRef": {"name": TRAVERSAL}}]),
    }
    today = KubernetesEmulator(crds=CRDS).store  # the CRD of today, in memory: it refuses each of them at the door
    for name, body in objects.items():
        with pytest.raises(ApiError) as refused:
            today.create("fastlysecretstores", {"metadata": {"name": name}, "spec": body}, namespace="default")
        assert refused.value.code == 422
        cluster.apply(namespace, name, body)  # the relaxed CRD stores them, as the old one did
    fastly_before, kube_before = len(fastly.requests), len(list(kube))
    operator = start_operator()

    for name in objects:
        wait_for(f"{name} is reconciled", functools.partial(observed, cluster, namespace, name))
    # Whatever each concluded: nothing outside the namespace was asked for.
    requested = [str(r.url) for r in list(kube)[kube_before:] if VICTIM in str(r.url) or "%2F" in str(r.url)]
    assert requested == [], "the operator requested a path outside its objects' namespace"
    for name in objects:
        ready = wait_reason_current(cluster, namespace, name, "InvalidSpec")
        assert ready["status"] == "False"
        assert "name" in ready["message"]
    assert cluster.condition(namespace, next(iter(objects)), "Stalled")["status"] == "True"  # type: ignore[index]

    assert [s for s in fastly.stores() if s.name in objects] == []
    assert writes_since(fastly, fastly_before) == []
    for store in fastly.stores():
        assert VICTIM_VALUE.encode() not in [secret.plaintext for secret in fastly.secrets(store.id)]
    assert_nothing_leaked(cluster, namespace, operator, VICTIM_VALUE)
    # Refused objects made nothing, so they go at once.
    for name in objects:
        cluster.delete(namespace, name)
    for name in objects:
        cluster.wait_gone(namespace, name)


# 2. Ownership across restarts


def test_original_owner_keeps_its_store_through_restarts(
    cluster: Cluster, fastly: FastlyEmulator, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    """Two more objects name the owner's store; they sort first, so after a restart they would reconcile first.
    Through three SIGKILL restarts the owner keeps the store and they write nothing; deleting one leaves the
    store; once the owner is deleted (Retain), the other takes the store over within seconds."""
    store_name = unique("shared")
    owner, first, second = "zz-owner", "aa-claimant", "ab-claimant"
    for name in (owner, first, second):
        cluster.put_secret(namespace, f"{name}-source", value=f"value-of-{name}")
    operator = start_operator()
    cluster.apply(
        namespace,
        owner,
        spec(name=store_name, deletionPolicy="Retain", entries=[entry("VALUE", f"{owner}-source")]),
    )
    store_id = cluster.wait_ready(namespace, owner)["status"]["id"]
    for name in (first, second):
        cluster.apply(namespace, name, spec(name=store_name, entries=[entry("VALUE", f"{name}-source")]))
        refused = wait_reason_current(cluster, namespace, name, "StoreInUse")
        assert f"{namespace}/{owner}" in refused["message"]
    mark = len(fastly.requests)

    for _ in range(3):
        operator.restart()
        # The restarted operator has looked at all three: one pass Synced, two StoreInUse.
        operator.wait_passes("Synced", 1)
        operator.wait_passes("StoreInUse", 2)
        assert cluster.condition(namespace, owner)["reason"] == "Synced"  # type: ignore[index]
        for name in (first, second):
            assert cluster.condition(namespace, name)["reason"] == "StoreInUse"  # type: ignore[index]
            assert "id" not in cluster.get(namespace, name)["status"]  # type: ignore[index]
        assert cluster.get(namespace, owner)["status"]["id"] == store_id  # type: ignore[index]
    assert writes_since(fastly, mark) == []
    assert fastly.plaintext(store_id, "VALUE") == f"value-of-{owner}".encode()

    # Deleting a refused object deletes nothing (its policy is the default: it created nothing).
    cluster.delete(namespace, first)
    cluster.wait_gone(namespace, first)
    assert [s.id for s in fastly.stores_named(store_name)] == [store_id]
    assert writes_since(fastly, mark) == []
    assert cluster.condition(namespace, owner)["reason"] == "Synced"  # type: ignore[index]

    # The owner goes (Retain): the one still waiting proceeds within seconds, not at its next 5-minute retry.
    cluster.delete(namespace, owner)
    cluster.wait_gone(namespace, owner)
    taken = cluster.wait_ready(namespace, second, timeout=5)["status"]
    assert taken["id"] == store_id
    assert taken["adopted"] is True
    assert fastly.plaintext(store_id, "VALUE") == f"value-of-{second}".encode()
    assert [s.id for s in fastly.stores_named(store_name)] == [store_id]
    assert_nothing_leaked(cluster, namespace, operator, *(f"value-of-{n}" for n in (owner, first, second)))


# 3. Token rotation within one account


def test_second_token_of_the_same_account_changes_no_owner(
    cluster: Cluster, fastly: FastlyEmulator, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    store_name = unique("rotation")
    cluster.put_secret(namespace, "token-a", token=TOKEN)
    cluster.put_secret(namespace, "token-b", token=SAME_ACCOUNT_TOKEN)
    cluster.put_secret(namespace, "source-a", value="value-a")
    cluster.put_secret(namespace, "source-b", value="value-b")
    operator = start_operator()
    cluster.apply(namespace, "owner", spec("token-a", name=store_name, entries=[entry("VALUE", "source-a")]))
    status = cluster.wait_ready(namespace, "owner")["status"]
    # Another object, with another token of the same account, naming the same store: refused.
    cluster.apply(namespace, "other", spec("token-b", name=store_name, entries=[entry("VALUE", "source-b")]))
    refused = wait_reason_current(cluster, namespace, "other", "StoreInUse")
    assert f"{namespace}/owner" in refused["message"]
    assert status["accountId"] == fastly.account_id()
    mark = len(fastly.requests)

    # Rotate the owner's token to the other token of its account, then the other object's: nothing moves.
    synced, in_use = operator.passes("Synced"), operator.passes("StoreInUse")
    cluster.put_secret(namespace, "token-a", token=SAME_ACCOUNT_TOKEN)
    operator.wait_passes("Synced", synced + 1)
    cluster.put_secret(namespace, "token-b", token=TOKEN)
    operator.wait_passes("StoreInUse", in_use + 1)

    assert cluster.condition(namespace, "owner")["reason"] == "Synced"  # type: ignore[index]
    assert cluster.get(namespace, "owner")["status"]["id"] == status["id"]  # type: ignore[index]
    assert cluster.condition(namespace, "other")["reason"] == "StoreInUse"  # type: ignore[index]
    assert [s.id for s in fastly.stores_named(store_name)] == [status["id"]]
    assert writes_since(fastly, mark) == []
    assert fastly.plaintext(status["id"], "VALUE") == b"value-a"
    assert_nothing_leaked(cluster, namespace, operator, "value-a", "value-b")


# 4. Another account's token


def test_token_of_another_account_moves_nothing(
    cluster: Cluster, fastly: FastlyEmulator, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    name = unique("account")
    cluster.put_secret(namespace, "token", token=TOKEN)
    cluster.put_secret(namespace, "source", value="account-canary")
    operator = start_operator()
    cluster.apply(namespace, name, spec("token", entries=[entry("VALUE", "source")], resyncInterval="1s"))
    status = cluster.wait_ready(namespace, name)["status"]
    mark = len(fastly.requests)

    cluster.put_secret(namespace, "token", token=OTHER_TOKEN)
    mismatch = cluster.wait_reason(namespace, name, "AccountMismatch")
    assert mismatch["status"] == "False"
    assert cluster.condition(namespace, name, "Stalled")["status"] == "True"  # type: ignore[index]
    assert fastly.account_id(OTHER) in mismatch["message"]
    assert status["accountId"] in mismatch["message"]
    assert "deletionPolicy: Retain" in mismatch["message"]  # how to move on
    # A changed value meanwhile is not pushed anywhere either.
    before = operator.passes("AccountMismatch")
    cluster.put_secret(namespace, "source", value="account-canary-2")
    request_reconcile(cluster, namespace, name)
    operator.wait_passes("AccountMismatch", before + 1)
    assert fastly.stores(account=OTHER) == []
    assert writes_since(fastly, mark) == []
    assert fastly.plaintext(status["id"], "VALUE") == b"account-canary"

    # The right token back: the object heals, on the same store.
    cluster.put_secret(namespace, "token", token=TOKEN)
    healed = cluster.wait_reason(namespace, name, "Synced")
    assert healed["status"] == "True"
    assert cluster.get(namespace, name)["status"]["id"] == status["id"]  # type: ignore[index]
    wait_for("the changed value is pushed", lambda: fastly.plaintext(status["id"], "VALUE") == b"account-canary-2")
    assert fastly.stores(account=OTHER) == []

    # Deleting the object while its token is another account's deletes nothing, and says how to release it.
    cluster.put_secret(namespace, "token", token=OTHER_TOKEN)
    cluster.wait_reason(namespace, name, "AccountMismatch")
    mark = len(fastly.requests)
    cluster.delete(namespace, name)

    def deletion_waits() -> dict[str, Any] | None:
        ready = cluster.condition(namespace, name)
        return ready if ready and "cannot delete" in ready["message"] else None

    held = wait_for("the deletion waits for a token of the store's account", deletion_waits)
    assert held is not None
    assert held["reason"] == "AccountMismatch"
    assert "deletionPolicy: Retain" in held["message"]
    assert cluster.get(namespace, name) is not None
    assert writes_since(fastly, mark) == []
    assert [store.id for store in fastly.stores_named(name)] == [status["id"]]
    # The right token back: the deletion completes, and deletes the store this object created.
    cluster.put_secret(namespace, "token", token=TOKEN)
    cluster.wait_gone(namespace, name, timeout=30)
    assert fastly.stores_named(name) == []
    assert fastly.stores(account=OTHER) == []
    assert_nothing_leaked(cluster, namespace, operator, "account-canary", "account-canary-2")


# 5. Delete during a slow create


@pytest.mark.parametrize("seconds", [2.0, 6.0])
def test_delete_during_a_slow_create_leaves_no_store(
    cluster: Cluster,
    fastly: TrackedFastly,
    namespace: str,
    start_operator: Callable[..., Operator],
    seconds: float,
) -> None:
    name = unique("slow")
    start_operator()
    fastly.faults.add(route=Route.CREATE_STORE.value, kind="latency", delay=seconds, count=1)
    cluster.apply(namespace, name, spec())
    wait_for("the create request is held", lambda: fastly.creates_in_flight() == 1)
    cluster.delete(namespace, name)
    cluster.wait_gone(namespace, name, timeout=seconds + 15)
    # The create has been carried out (its store landed), whatever the operator made of it.
    wait_for("the create request is done", lambda: fastly.creates_in_flight() == 0, timeout=seconds + 5)
    assert fastly.stores_named(name) == []


# 6. A lost create answer


@pytest.mark.parametrize("kind", ["lost", "latency"])
def test_lost_create_answer_makes_no_duplicate(
    cluster: Cluster,
    fastly: TrackedFastly,
    namespace: str,
    start_operator: Callable[..., Operator],
    kind: str,
) -> None:
    """The create outlasts the client's 1 s timeout: "lost", the store is made at once and the answer never comes;
    "latency", the store lands 4 s after the request, so lookups for a while after the timeout find nothing (the
    grace period is 6 s here: longer than the create takes). Fastly accepts duplicate names here: only the
    operator keeps the name unique."""
    name = unique(kind)
    fastly.allow_duplicate_names = True
    try:
        start_operator("--fastly-timeout", SHORT_TIMEOUT, "--create-grace", "6")
        if kind == "lost":
            fastly.faults.add(route=Route.CREATE_STORE.value, kind="lost", hold=2.0, count=1)
        else:
            fastly.faults.add(route=Route.CREATE_STORE.value, kind="latency", delay=4.0, count=1)
        cluster.apply(namespace, name, spec())
        status = cluster.wait_ready(namespace, name, timeout=30)["status"]
        wait_for("no create request is in flight", lambda: fastly.creates_in_flight() == 0, timeout=10)
        stores = fastly.stores_named(name)
        assert [store.id for store in stores] == [status["id"]]
        assert status["adopted"] is False
        # Deleting it (policy omitted) deletes it: the operator knows it created it.
        cluster.delete(namespace, name)
        cluster.wait_gone(namespace, name)
        assert fastly.stores_named(name) == []
    finally:
        fastly.allow_duplicate_names = False


# 7. An unreadable 201


@pytest.mark.parametrize("garbling", ["no-created-at", "not-json"])
def test_unreadable_create_answer_is_not_a_refusal(
    cluster: Cluster, fastly: FastlyEmulator, namespace: str, start_operator: Callable[..., Operator], garbling: str
) -> None:
    name = unique("garbled")
    start_operator()
    fastly.faults.add(route=Route.CREATE_STORE.value, kind="garble", garbling=garbling, count=1)  # type: ignore[arg-type]
    cluster.apply(namespace, name, spec(adoptionPolicy="MustCreate"))
    status = cluster.wait_ready(namespace, name, timeout=15)["status"]
    assert status["adopted"] is False
    assert [store.id for store in fastly.stores_named(name)] == [status["id"]]
    assert "FastlyRejected" not in event_reasons(cluster, namespace, name)


# 8. A refused client key


def test_refused_client_key_is_replaced(
    cluster: Cluster, fastly: FastlyEmulator, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    name = unique("client-key")
    cluster.put_secret(namespace, "source", value="client-key-canary")
    operator = start_operator()
    fastly.refuse_client_keys(count=1)
    cluster.apply(namespace, name, spec(entries=[entry("VALUE", "source")]))
    status = cluster.wait_ready(namespace, name, timeout=15)["status"]
    assert fastly.plaintext(status["id"], "VALUE") == b"client-key-canary"
    assert [record["name"] for record in status["entries"]] == ["VALUE"]
    assert_nothing_leaked(cluster, namespace, operator, "client-key-canary")


# 9. A wiped status


def test_wiped_status_is_restored_by_the_next_pass(
    cluster: Cluster, fastly: FastlyEmulator, namespace: str, start_operator: Callable[..., Operator]
) -> None:
    name = unique("wiped")
    cluster.put_secret(namespace, "source", value="wiped-canary")
    operator = start_operator()
    cluster.apply(namespace, name, spec(entries=[entry("VALUE", "source")]))
    before = cluster.wait_ready(namespace, name)["status"]
    mark = len(fastly.requests)

    cluster.custom.patch_namespaced_custom_object_status(
        "fastly.operator.dev",
        "v1alpha1",
        namespace,
        "fastlysecretstores",
        name,
        [{"op": "replace", "path": "/status", "value": {}}],
        _content_type="application/json-patch+json",
    )
    assert "id" not in (cluster.get(namespace, name) or {}).get("status", {})
    request_reconcile(cluster, namespace, name)

    def restored() -> Any:
        status = (cluster.get(namespace, name) or {}).get("status", {})
        return status if status.get("id") and status.get("entries") else None

    after = wait_for("the status is restored", restored)
    for key in ("id", "storeName", "accountId", "adopted", "createdAt"):
        assert after[key] == before[key], key
    assert [e["name"] for e in after["entries"]] == [e["name"] for e in before["entries"]]
    assert cluster.condition(namespace, name)["reason"] == "Synced"  # type: ignore[index]
    assert writes_since(fastly, mark) == []
    assert_nothing_leaked(cluster, namespace, operator, "wiped-canary")


# 10. Adopt, then delete


@pytest.mark.parametrize("policy", [None, "Delete"])
def test_deleting_an_adopting_object(
    cluster: Cluster,
    fastly: FastlyEmulator,
    namespace: str,
    start_operator: Callable[..., Operator],
    policy: str | None,
) -> None:
    name = unique("adopted")
    existing = fastly.create_store_direct(name)
    fastly.put_secret_direct(existing.id, "NOT_MINE", b"written outside the operator")
    start_operator()
    cluster.apply(namespace, name, spec(**({"deletionPolicy": policy} if policy else {})))
    assert cluster.wait_ready(namespace, name)["status"]["adopted"] is True
    cluster.delete(namespace, name)
    cluster.wait_gone(namespace, name)
    if policy is None:
        assert [store.id for store in fastly.stores_named(name)] == [existing.id]
        assert fastly.secret_names(existing.id) == ["NOT_MINE"]
        reasons = wait_for("a Retained event", lambda: "Retained" in event_reasons(cluster, namespace, name))
        assert reasons
        retained = [e for e in cluster.events(namespace) if e["reason"] == "Retained"]
        assert "deletionPolicy: Delete" in retained[0]["message"]
    else:
        assert fastly.stores_named(name) == []
