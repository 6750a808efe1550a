"""A tiny Kopf operator, defined here, runs against the Kubernetes emulator over real HTTP: the full cycle of
finalizer, status patch (pruned by the CRD schema), deletion and event posting works as on a real cluster.

This is also the reference for pointing Kopf at the emulator: a login handler returning
`emulator.connection_info()` (in-process), or a kubeconfig from `emulator.write_kubeconfig(path)` read by
`kopf.login_with_kubeconfig` (or by `kopf run` in a subprocess with KUBECONFIG set)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import kopf
import kopf.testing
import pytest

from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator

STORES = ("fastly.operator.dev", "v1alpha1", "fastlysecretstores")
FINALIZER = "fastly.operator.dev/finalizer"
BOUND = 10.0  # seconds any awaited condition may take; each needs well under one


@pytest.fixture
def emulator() -> Iterator[KubernetesEmulator]:
    """Served from its own thread: Kopf takes every task created in its loop after it starts for its own, and
    waits for (then cancels) them when it stops; the emulator's connection handlers would be among them."""
    emulator = KubernetesEmulator(namespaces=["default", "shop"])
    with emulator.run_in_thread():
        yield emulator


def configure(settings: kopf.OperatorSettings) -> None:
    """What the real operator sets too: our finalizer, and Kopf's state in our annotations (not status.kopf,
    which the CRD does not declare: a real API server prunes it, and so does the emulator)."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="fastly.operator.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="fastly.operator.dev")
    settings.watching.server_timeout = 30


def tiny_operator(registry: kopf.OperatorRegistry, deleted: asyncio.Event | None = None) -> None:
    @kopf.on.startup(registry=registry)
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings)

    @kopf.on.create(*STORES, registry=registry)
    def create(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        patch.status["id"] = "7nLoGzCcs1ZbDD8BaX3jKR"  # declared in the CRD
        patch.status["undeclared"] = "dropped"  # not declared: the server prunes it
        kopf.info(body, reason="Created", message="The Fastly store was created.")  # an Event, by generateName

    @kopf.on.delete(*STORES, registry=registry)
    def delete(**_: Any) -> None:
        if deleted is not None:
            deleted.set()


def store(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"apiTokenSecretRef": {"name": "fastly-api-token"}}}


async def eventually(emulator: KubernetesEmulator, condition: Callable[[], bool], what: str) -> None:
    """Wait until the condition on the emulator's objects holds, at most BOUND seconds."""
    try:
        async with asyncio.timeout(BOUND):
            await emulator.store.wait_until(condition)
    except TimeoutError:
        raise AssertionError(f"not within {BOUND}s: {what}") from None


def exists(emulator: KubernetesEmulator, name: str) -> bool:
    return any(obj["metadata"]["name"] == name for obj in emulator.store.objects("fastlysecretstores", "shop"))


async def run_operator(registry: kopf.OperatorRegistry, scenario: Callable[[], Awaitable[None]]) -> None:
    stop, ready = asyncio.Event(), asyncio.Event()
    operator = asyncio.create_task(
        kopf.operator(registry=registry, namespaces=["shop"], standalone=True, stop_flag=stop, ready_flag=ready)
    )
    try:
        async with asyncio.timeout(BOUND):
            await ready.wait()
        await scenario()
    finally:
        stop.set()
        async with asyncio.timeout(BOUND):
            await operator


async def test_kopf_operator_full_cycle(emulator: KubernetesEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kopf")
    registry = kopf.OperatorRegistry()
    deleted = asyncio.Event()
    tiny_operator(registry, deleted)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return emulator.connection_info()

    async def scenario() -> None:
        emulator.store.create("fastlysecretstores", store("checkout"), namespace="shop")

        def handled() -> bool:
            obj = emulator.store.get("fastlysecretstores", "shop", "checkout")
            return FINALIZER in obj["metadata"].get("finalizers", []) and "id" in obj.get("status", {})

        await eventually(emulator, handled, "finalizer added and status written")
        obj = emulator.store.get("fastlysecretstores", "shop", "checkout")
        # "undeclared" was pruned; observedGeneration is the CRD's default, -1, which the handler left alone.
        assert obj["status"] == {"observedGeneration": -1, "id": "7nLoGzCcs1ZbDD8BaX3jKR"}
        assert obj["metadata"]["generation"] == 1  # status and metadata writes left it alone

        await eventually(emulator, lambda: bool(emulator.store.objects("events", "shop")), "an event posted")
        event = emulator.store.objects("events", "shop")[0]
        assert (event["reason"], event["involvedObject"]["name"]) == ("Created", "checkout")

        emulator.store.delete("fastlysecretstores", "shop", "checkout")
        await eventually(emulator, lambda: not exists(emulator, "checkout"), "the object gone with its finalizer")
        assert deleted.is_set()  # the handler ran before Kopf removed the finalizer

    await run_operator(registry, scenario)
    # Kopf notices the pruned field as a real cluster makes it notice; nothing else went wrong.
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert warnings == [
        "Merge-patching finished with inconsistencies: (('remove', ('status', 'undeclared'), 'dropped', None),)"
    ]


async def test_kopf_logs_in_with_a_kubeconfig(
    emulator: KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The `kubernetes` client reads $KUBECONFIG once, at import; Kopf's own kubeconfig login reads it each time.
    monkeypatch.setenv("KUBECONFIG", str(emulator.write_kubeconfig(tmp_path / "kubeconfig")))
    registry = kopf.OperatorRegistry()
    tiny_operator(registry)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    async def scenario() -> None:
        emulator.store.create("fastlysecretstores", store("cart"), namespace="shop")
        await eventually(
            emulator,
            lambda: "id" in emulator.store.get("fastlysecretstores", "shop", "cart").get("status", {}),
            "status written",
        )

    await run_operator(registry, scenario)


def test_kopf_run_cli_against_the_emulator(emulator: KubernetesEmulator) -> None:
    """`kopf run`, the CLI the real operator wraps, in KopfRunner's thread."""
    registry = kopf.OperatorRegistry()
    tiny_operator(registry)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return emulator.connection_info()

    def status_written() -> bool:
        return "id" in emulator.store.get("fastlysecretstores", "shop", "basket").get("status", {})

    args = ["run", "--standalone", "--namespace", "shop"]
    with kopf.testing.KopfRunner(args, registry=registry, timeout=BOUND) as runner:
        emulator.store.create("fastlysecretstores", store("basket"), namespace="shop")
        asyncio.run(eventually(emulator, status_written, "status written by `kopf run`"))
        emulator.store.delete("fastlysecretstores", "shop", "basket")
        asyncio.run(eventually(emulator, lambda: not exists(emulator, "basket"), "the object gone"))
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
