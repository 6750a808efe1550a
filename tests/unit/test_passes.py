"""A pass as the handlers run it, without Kopf: failures of any kind become a condition on the object and a retry,
never a dead sync loop; the status written is diffed against what the API server holds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import kopf
import pytest

from fastly_secret_store_operator import kube
from fastly_secret_store_operator.config import OperatorConfig
from fastly_secret_store_operator.metrics import Metrics
from fastly_secret_store_operator.owners import ClaimIndex
from fastly_secret_store_operator.passes import run_pass
from fastly_secret_store_operator.reconcile.conditions import find
from fastly_secret_store_operator.reconcile.fingerprint import Fingerprinter
from fastly_secret_store_operator.reconcile.object import Environment
from fastly_secret_store_operator.runtime import Runtime
from fastly_secret_store_operator.sessions import FastlyOptions, SessionPool
from fastly_secret_store_operator.tracking import Tracker

CANARY = "secret-value-canary-77aa"


class Patches:
    """Records status patches; can refuse them as an API server would."""

    def __init__(self, refuse: int | None = None, times: int = 0) -> None:
        self.sent: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self.refuse, self.times = refuse, times

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        if self.refuse is not None and len(self.refused) < self.times:
            self.refused.append(dict(patch))
            raise kube.KubeError(self.refuse, "Request Entity Too Large")
        self.sent.append(dict(patch))


class ExplodingSecrets:
    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        raise RuntimeError(f"a defect ({CANARY} must not show on the object)")


class FailingSecrets:
    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        raise kube.KubeError(None, "ConnectError")


@pytest.fixture
async def sessions() -> AsyncIterator[SessionPool]:
    pool = SessionPool(FastlyOptions(endpoint="http://127.0.0.1:9"))
    yield pool
    await pool.aclose()


def make_runtime(secrets: Any, patches: Patches, sessions: SessionPool) -> Runtime:
    tracker = Tracker()
    owners = ClaimIndex(tracker.wake_waiting)
    env = Environment(secrets=secrets, connect=sessions, fingerprinter=Fingerprinter(b"k" * 32), owners=owners)
    return Runtime(
        config=OperatorConfig(fastly=FastlyOptions(endpoint="http://127.0.0.1:9")),
        kube=patches,  # type: ignore[arg-type]
        sessions=sessions,
        env=env,
        tracker=tracker,
        owners=owners,
        slots=asyncio.Semaphore(1),
        metrics=Metrics(),
        secret_watch=None,  # type: ignore[arg-type]
        accounts=None,  # type: ignore[arg-type]
    )


def body(status: Mapping[str, Any] | None = None) -> kopf.Body:
    return kopf.Body(
        {
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "u1", "generation": 2},
            "spec": {"apiTokenSecretRef": {"name": "token"}},
            "status": dict(status or {}),
        }
    )


async def test_an_unexpected_error_becomes_a_condition_and_a_retry(
    sessions: SessionPool, caplog: pytest.LogCaptureFixture
) -> None:
    patches = Patches()
    runtime = make_runtime(ExplodingSecrets(), patches, sessions)
    tracked = runtime.tracker.track("u1", "shop", "checkout")
    with caplog.at_level(logging.ERROR):
        verdict = await run_pass(runtime, tracked, body(), "u1", resync=False, failures=0)
    assert verdict is not None
    assert verdict.delay is not None
    assert 1 <= verdict.delay <= 3
    assert verdict.failures == 1
    [written] = patches.sent
    ready = find(written["conditions"], "Ready")
    assert ready is not None
    assert ready["reason"] == "InternalError"
    assert written["observedGeneration"] == 2
    assert CANARY not in repr(written)
    assert "shop/checkout" in caplog.text  # the log names the object, with the traceback
    assert "Traceback" in caplog.text


async def test_a_kubernetes_failure_is_shown_and_retried_within_30_seconds(sessions: SessionPool) -> None:
    patches = Patches()
    runtime = make_runtime(FailingSecrets(), patches, sessions)
    tracked = runtime.tracker.track("u1", "shop", "checkout")
    verdict = None
    for failures in range(12):
        verdict = await run_pass(runtime, tracked, body(), "u1", resync=False, failures=failures)
    assert verdict is not None
    assert verdict.delay is not None
    assert verdict.delay <= 30 * 1.2
    ready = find(patches.sent[0]["conditions"], "Ready")
    assert ready is not None
    assert ready["reason"] == "KubernetesUnavailable"


async def test_a_status_the_api_server_refuses_is_reported_not_retried_blind(
    sessions: SessionPool, caplog: pytest.LogCaptureFixture
) -> None:
    patches = Patches(refuse=413, times=1)
    runtime = make_runtime(ExplodingSecrets(), patches, sessions)
    tracked = runtime.tracker.track("u1", "shop", "checkout")
    with caplog.at_level(logging.ERROR):
        verdict = await run_pass(runtime, tracked, body(), "u1", resync=False, failures=0)
    assert verdict is not None
    [fallback] = patches.sent
    assert set(fallback) == {"conditions", "observedGeneration"}
    ready = find(fallback["conditions"], "Ready")
    assert ready is not None
    assert ready["reason"] == "StatusRejected"
    assert "HTTP 413" in ready["message"]
    assert "refused the status" in caplog.text


async def test_the_status_is_diffed_against_what_the_cluster_holds(sessions: SessionPool) -> None:
    patches = Patches()
    runtime = make_runtime(ExplodingSecrets(), patches, sessions)
    tracked = runtime.tracker.track("u1", "shop", "checkout")
    await run_pass(runtime, tracked, body(), "u1", resync=False, failures=0)
    first = patches.sent[-1]
    # The cluster now holds it: a second identical pass writes nothing new.
    held = {key: value for key, value in first.items() if value is not None}
    await run_pass(runtime, tracked, body(held), "u1", resync=False, failures=1)
    assert len(patches.sent) == 1
    # Someone wiped the status: the next pass puts it back, though this process wrote it before.
    await run_pass(runtime, tracked, body({}), "u1", resync=False, failures=1)
    assert patches.sent[-1]["conditions"] == first["conditions"]
