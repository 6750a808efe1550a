"""Prometheus metrics: what the operator did, how Fastly answered, and how many objects are Ready.

Every label comes from a small vocabulary fixed by the code (condition reasons, route templates, HTTP status
codes), never from an object, a Secret or a token: the exposition can be scraped and stored anywhere, and its
cardinality does not grow with the number of objects. Values that could break that rule are folded into
"Other" / "other" before they reach a label. docs/metrics.md lists the metrics.
"""

from __future__ import annotations

import platform
import re
import threading
from collections import Counter as Tally
from collections.abc import Iterable
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fastly_secret_store_operator import __version__
from fastly_secret_store_operator.fastly import ROUTES, RequestInfo

PREFIX = "fastly_secret_store_operator_"

#: A condition reason is one CamelCase word (conditions.py); anything else is not trusted into a label.
_REASON = re.compile(r"[A-Z][A-Za-z]{0,47}")
OTHER_REASON = "Other"
OTHER_ENDPOINT = "other"

#: The route templates the client can call: a label outside this set could carry a concrete id or name.
KNOWN_ENDPOINTS = frozenset(route.label for route in ROUTES)

# Reconciles span a cached no-op (milliseconds) to a rate-limited write of many entries (tens of seconds).
_RECONCILE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_REQUEST_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def reason_label(reason: str) -> str:
    return reason if _REASON.fullmatch(reason) else OTHER_REASON


def endpoint_label(endpoint: str) -> str:
    return endpoint if endpoint in KNOWN_ENDPOINTS else OTHER_ENDPOINT


def status_label(status: int | None) -> str:
    return "error" if status is None else str(status)


class ObjectStates(Collector):
    """Objects by their Ready condition, counted at scrape time from what the handlers last reported.

    Counting at scrape time (rather than moving a labelled gauge up and down) means a reason that no object
    has any more simply disappears, and a missed decrement can never leave a series stale.
    """

    def __init__(self) -> None:
        # The exposition runs in prometheus-client's server thread, the handlers in the event loop.
        self._lock = threading.Lock()
        self._states: dict[str, tuple[bool, str]] = {}

    def set(self, uid: str, ready: bool, reason: str) -> None:
        with self._lock:
            self._states[uid] = (ready, reason_label(reason))

    def forget(self, uid: str) -> None:
        with self._lock:
            self._states.pop(uid, None)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            counts = Tally(self._states.values())
        family = GaugeMetricFamily(
            PREFIX + "objects",
            "FastlySecretStore objects by the status and reason of their Ready condition.",
            labels=("condition", "status", "reason"),
        )
        for (ready, reason), count in sorted(counts.items()):
            family.add_metric(("Ready", "True" if ready else "False", reason), count)
        yield family


class TokenExpiries(Collector):
    """When each account's API tokens expire (the soonest per account), from GET /tokens/self; the account id is
    no secret and there are few of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiries: dict[str, tuple[str, float]] = {}

    def set(self, uid: str, account_id: str, expires_at: datetime | None) -> None:
        with self._lock:
            if expires_at is None:
                self._expiries.pop(uid, None)
            else:
                self._expiries[uid] = (account_id, expires_at.timestamp())

    def forget(self, uid: str) -> None:
        with self._lock:
            self._expiries.pop(uid, None)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            soonest: dict[str, float] = {}
            for account, when in self._expiries.values():
                soonest[account] = min(when, soonest.get(account, when))
        family = GaugeMetricFamily(
            PREFIX + "token_expiry_timestamp_seconds",
            "When the soonest-expiring Fastly API token in use for an account expires (Unix time).",
            labels=("account_id",),
        )
        for account, when in sorted(soonest.items()):
            family.add_metric((account,), when)
        yield family


class Metrics:
    """The operator's metrics, registered in one registry (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        if registry is None:
            registry = CollectorRegistry()
            # The process and runtime metrics prometheus-client puts in its global registry, kept here too.
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.registry = registry
        self.reconciles = Counter(
            PREFIX + "reconciles",
            "Reconcile passes, by the reason of the Ready condition they concluded with.",
            ("result",),
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            PREFIX + "reconcile_duration_seconds",
            "How long one reconcile pass took.",
            buckets=_RECONCILE_BUCKETS,
            registry=registry,
        )
        self.fastly_requests = Counter(
            PREFIX + "fastly_requests",
            "Fastly API requests (each retry counts), by route template and HTTP status ('error': no response).",
            ("endpoint", "status"),
            registry=registry,
        )
        self.fastly_request_duration = Histogram(
            PREFIX + "fastly_request_duration_seconds",
            "How long one Fastly API request took, by route template.",
            ("endpoint",),
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        self.rate_limit_remaining = Gauge(
            PREFIX + "fastly_rate_limit_remaining",
            "Fastly-RateLimit-Remaining in the last response that carried it (any token).",
            registry=registry,
        )
        self.rate_limit_reset = Gauge(
            PREFIX + "fastly_rate_limit_reset_timestamp_seconds",
            "Fastly-RateLimit-Reset in the last response that carried it: when the write budget refills (Unix time).",
            registry=registry,
        )
        self.build_info = Gauge(
            PREFIX + "build_info",
            "Always 1: the operator's version and Python version as labels.",
            ("version", "python_version"),
            registry=registry,
        )
        self.build_info.labels(version=__version__, python_version=platform.python_version()).set(1)
        self.reconciles_in_flight = Gauge(
            PREFIX + "reconciles_in_flight",
            "Reconcile passes running now (at most --max-concurrent-reconciles).",
            registry=registry,
        )
        self.reconciles_waiting = Gauge(
            PREFIX + "reconciles_waiting",
            "Objects due for a pass and waiting for a free slot.",
            registry=registry,
        )
        self.entries_written = Counter(
            PREFIX + "entries_written", "Secret store entries written to Fastly.", registry=registry
        )
        self.entries_skipped = Counter(
            PREFIX + "entries_skipped",
            "Secret store entries found in sync and not written.",
            registry=registry,
        )
        self.objects = ObjectStates()
        registry.register(self.objects)
        self.token_expiries = TokenExpiries()
        registry.register(self.token_expiries)
        self._server: tuple[WSGIServer, threading.Thread] | None = None

    def observe_reconcile(self, reason: str, seconds: float) -> None:
        self.reconciles.labels(result=reason_label(reason)).inc()
        self.reconcile_duration.observe(seconds)

    def observe_fastly(self, info: RequestInfo) -> None:
        """The FastlyClient `on_response` hook."""
        endpoint = endpoint_label(info.endpoint)
        self.fastly_requests.labels(endpoint=endpoint, status=status_label(info.status)).inc()
        self.fastly_request_duration.labels(endpoint=endpoint).observe(info.elapsed)
        if info.rate_limit.remaining is not None:
            self.rate_limit_remaining.set(info.rate_limit.remaining)
        if info.rate_limit.reset_at is not None:
            self.rate_limit_reset.set(info.rate_limit.reset_at.timestamp())

    def observe_entries(self, written: int, skipped: int) -> None:
        self.entries_written.inc(written)
        self.entries_skipped.inc(skipped)

    def set_object_state(self, uid: str, ready: bool, reason: str) -> None:
        self.objects.set(uid, ready, reason)

    def forget_object(self, uid: str) -> None:
        self.objects.forget(uid)
        self.token_expiries.forget(uid)

    def set_token_expiry(self, uid: str, account_id: str, expires_at: datetime | None) -> None:
        self.token_expiries.set(uid, account_id, expires_at)

    def serve(self, port: int, host: str = "0.0.0.0") -> tuple[WSGIServer, threading.Thread]:  # noqa: S104 - scraped from other pods
        """Serve the exposition from a daemon thread until `shutdown()`; returns the server and its thread."""
        self.shutdown()
        self._server = start_http_server(port, addr=host, registry=self.registry)
        return self._server

    def shutdown(self) -> None:
        """Stop serving (the port is free again); a no-op when not serving."""
        served, self._server = self._server, None
        if served is not None:
            server, thread = served
            server.shutdown()
            server.server_close()
            thread.join()
