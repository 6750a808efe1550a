"""The operator's metrics endpoint and liveness check, as Prometheus and the kubelet see them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from harness import NAMESPACE, TOKEN, Cluster, OperatorProcess, free_port, unique, wait_for

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator

CANARY = "metrics-canary-value-77e1"


@pytest.fixture(scope="module")
def observed(
    cluster: Cluster, fastly: FastlyEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, str, str]]:
    cluster.ensure_namespace(NAMESPACE)
    cluster.put_secret(NAMESPACE, "fastly-api-token", token=TOKEN)
    metrics_port, health_port = free_port(), free_port()
    liveness = f"http://127.0.0.1:{health_port}/healthz"
    process = OperatorProcess(
        cluster.kubeconfig,
        fastly.url,
        [NAMESPACE],
        tmp_path_factory.mktemp("observed") / "operator.log",
        extra_args=("--metrics-port", str(metrics_port), "--liveness", liveness, "--log-format", "json"),
    )
    process.start()
    yield process, f"http://127.0.0.1:{metrics_port}/metrics", liveness
    process.stop()


def scrape(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.TransportError:
        return None


def test_metrics_count_reconciles_requests_and_entries(
    cluster: Cluster, observed: tuple[OperatorProcess, str, str]
) -> None:
    _, metrics, _ = observed
    name, source = unique("metrics"), unique("source")
    cluster.put_secret(NAMESPACE, source, key=CANARY)
    cluster.apply(
        NAMESPACE,
        name,
        {
            "apiTokenSecretRef": {"name": "fastly-api-token"},
            "entries": [{"name": "CANARY", "secretKeyRef": {"name": source, "key": "key"}}],
        },
    )
    cluster.wait_ready(NAMESPACE, name)
    text = wait_for("metrics are served", lambda: scrape(metrics), 15)
    expected = [
        'fastly_secret_store_operator_reconciles_total{result="Synced"}',
        'fastly_secret_store_operator_fastly_requests_total{endpoint="POST /resources/stores/secret",status="201"}',
        "fastly_secret_store_operator_entries_written_total",
        'fastly_secret_store_operator_objects{condition="Ready",reason="Synced",status="True"}',
        "fastly_secret_store_operator_fastly_rate_limit_remaining",
        "fastly_secret_store_operator_reconcile_duration_seconds_bucket",
    ]
    for series in expected:
        assert series in text, series
    for needle in (CANARY, base64.b64encode(CANARY.encode()).decode(), TOKEN, name, NAMESPACE + "/"):
        assert needle not in text, f"{needle!r} in metrics"


def test_liveness_answers_while_the_watch_is_alive(observed: tuple[OperatorProcess, str, str]) -> None:
    _, _, liveness = observed
    response = wait_for("the liveness endpoint answers", lambda: _get(liveness), 15)
    assert response.status_code == 200


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


def test_json_logs_are_one_object_per_line(observed: tuple[OperatorProcess, str, str]) -> None:
    process, _, liveness = observed
    wait_for("the operator is up", lambda: _get(liveness), 15)
    lines = [line for line in process.logs().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert records
    assert all("message" in record and "severity" in record and "timestamp" in record for record in records)
