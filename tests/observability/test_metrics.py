"""The Prometheus metrics: each moves as it should, and no label ever carries a name, token or value."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fastly_secret_store_operator.fastly import FastlyClient, RateLimit, RequestInfo, ServerUnavailableError
from fastly_secret_store_operator.metrics import PREFIX, Metrics

TOKEN = "canary-tok-9Hq4Zr2KxW7mNb3V"  # a token that must never reach the exposition
STORE_ID = "canary-store-4Tn8Qw1Ls6Yd"
ENTRY = "CANARY_ENTRY_NAME"
PUT_SECRETS = "PUT /resources/stores/secret/{store_id}/secrets"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(PREFIX + name, labels)


def info(endpoint: str = PUT_SECRETS, status: int | None = 200, remaining: int | None = None) -> RequestInfo:
    return RequestInfo(
        method=endpoint.split()[0],
        endpoint=endpoint,
        status=status,
        elapsed=0.3,
        rate_limit=RateLimit(remaining=remaining, reset_at=None),
    )


def test_reconciles_count_by_result_and_time_every_pass(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_reconcile("Synced", 0.2)
    metrics.observe_reconcile("Synced", 0.4)
    metrics.observe_reconcile("RateLimited", 3.0)
    assert value(registry, "reconciles_total", result="Synced") == 2
    assert value(registry, "reconciles_total", result="RateLimited") == 1
    assert value(registry, "reconcile_duration_seconds_count") == 3
    assert value(registry, "reconcile_duration_seconds_sum") == pytest.approx(3.6)
    assert value(registry, "reconcile_duration_seconds_bucket", le="0.25") == 1


def test_a_reason_outside_the_vocabulary_is_counted_as_other(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_reconcile("shop/checkout", 0.1)
    metrics.observe_reconcile("Synced-2", 0.1)
    assert value(registry, "reconciles_total", result="Other") == 2


def test_fastly_requests_count_by_route_and_status(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_fastly(info(status=200))
    metrics.observe_fastly(info(status=429))
    metrics.observe_fastly(info(status=None))  # no response: a transport error
    assert value(registry, "fastly_requests_total", endpoint=PUT_SECRETS, status="200") == 1
    assert value(registry, "fastly_requests_total", endpoint=PUT_SECRETS, status="429") == 1
    assert value(registry, "fastly_requests_total", endpoint=PUT_SECRETS, status="error") == 1
    assert value(registry, "fastly_request_duration_seconds_count", endpoint=PUT_SECRETS) == 3


def test_an_endpoint_that_is_not_a_known_route_is_counted_as_other(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.observe_fastly(info(endpoint=f"PUT /resources/stores/secret/{STORE_ID}/secrets"))
    assert value(registry, "fastly_requests_total", endpoint="other", status="200") == 1


def test_rate_limit_remaining_keeps_the_last_value_seen(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_fastly(info(remaining=900))
    metrics.observe_fastly(info(remaining=899))
    metrics.observe_fastly(info(remaining=None))  # a response without the header changes nothing
    assert value(registry, "fastly_rate_limit_remaining") == 899


def test_entries_written_and_skipped_add_up(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_entries(written=2, skipped=5)
    metrics.observe_entries(written=0, skipped=7)
    assert value(registry, "entries_written_total") == 2
    assert value(registry, "entries_skipped_total") == 12


def test_objects_by_condition_follow_set_and_forget(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.set_object_state("uid-1", True, "Synced")
    metrics.set_object_state("uid-2", True, "Synced")
    metrics.set_object_state("uid-3", False, "RateLimited")
    ready = {"condition": "Ready", "status": "True", "reason": "Synced"}
    limited = {"condition": "Ready", "status": "False", "reason": "RateLimited"}
    assert registry.get_sample_value(PREFIX + "objects", ready) == 2
    assert registry.get_sample_value(PREFIX + "objects", limited) == 1

    metrics.set_object_state("uid-3", True, "Synced")  # the same object, recovered
    metrics.forget_object("uid-1")
    metrics.forget_object("uid-unknown")  # forgetting twice or never set is harmless
    assert registry.get_sample_value(PREFIX + "objects", ready) == 2
    assert registry.get_sample_value(PREFIX + "objects", limited) is None  # no stale series left behind


async def test_no_token_name_or_value_reaches_the_exposition(metrics: Metrics, registry: CollectorRegistry) -> None:
    """Drive a real client (its `on_response` hook) with a canary token, store id and entry name, then feed
    canaries through every other method: none may appear in what Prometheus scrapes."""

    def fastly(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/signing-key"):
            raise httpx.ConnectError("refused", request=request)
        headers = {"Fastly-RateLimit-Remaining": "41", "Fastly-RateLimit-Reset": "1900000000"}
        body = {"id": STORE_ID, "name": ENTRY, "created_at": datetime.now(UTC).isoformat()}
        return httpx.Response(200, json=body, headers=headers)

    client = FastlyClient(
        TOKEN, endpoint="https://fastly.test", transport=httpx.MockTransport(fastly), on_response=metrics.observe_fastly
    )
    async with client:
        await client.get_store(STORE_ID)
        with pytest.raises(ServerUnavailableError):
            await client.get_signing_key()
    metrics.observe_reconcile(TOKEN, 1.0)
    metrics.observe_reconcile(f"InvalidSpec {ENTRY}", 1.0)
    metrics.set_object_state(STORE_ID, False, TOKEN)
    metrics.observe_fastly(info(endpoint=f"GET /resources/stores/secret/{STORE_ID}/secrets/{ENTRY}"))

    text = generate_latest(registry).decode()
    for canary in (TOKEN, STORE_ID, ENTRY, "canary", "CANARY"):
        assert canary not in text
    assert value(registry, "fastly_requests_total", endpoint="GET /resources/stores/secret/{store_id}", status="200")
    assert value(registry, "fastly_rate_limit_remaining") == 41
    errors = value(
        registry, "fastly_requests_total", endpoint="GET /resources/stores/secret/signing-key", status="error"
    )
    assert errors is not None
    assert errors >= 1


def test_serve_exposes_the_registry_over_http_until_shut_down(metrics: Metrics) -> None:
    metrics.observe_entries(written=3, skipped=0)
    server, _ = metrics.serve(0, host="127.0.0.1")
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    try:
        text = httpx.get(url, timeout=5).text
    finally:
        metrics.shutdown()
    assert f"{PREFIX}entries_written_total 3.0" in text
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)
    metrics.shutdown()  # twice is harmless


def test_the_default_registry_is_fresh_and_carries_process_metrics() -> None:
    first, second = Metrics(), Metrics()  # two instances would clash in one shared registry
    assert first.registry is not second.registry
    names = {metric.name for metric in first.registry.collect()}
    assert {"process_cpu_seconds", "python_gc_objects_collected"} & names


def test_every_route_the_client_defines_is_a_known_endpoint() -> None:
    # A route left out of fastly.ROUTES would be counted as "other", hiding what the operator called.
    from fastly_secret_store_operator.fastly import client
    from fastly_secret_store_operator.metrics import KNOWN_ENDPOINTS

    defined = {value.label for value in vars(client).values() if type(value).__name__ == "Route"}
    assert defined
    assert defined == set(KNOWN_ENDPOINTS)
