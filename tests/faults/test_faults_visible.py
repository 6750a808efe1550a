"""Kubernetes failures a user can see and that end quickly: a Secret the operator may not read is named on the
object, an API outage shows as a condition and heals within seconds, and the Secret watch comes back at once."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from faults_support import TOKEN
from harness import Cluster, OperatorProcess, wait_for
from test_faults_kube import status

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator

VALUE, EDITED = "visible-value-canary-1", "visible-value-canary-2"


def spec(*secrets: str) -> dict[str, Any]:
    return {
        "apiTokenSecretRef": {"name": "fastly-api-token"},
        "entries": [{"name": name.upper(), "secretKeyRef": {"name": name, "key": "value"}} for name in secrets],
    }


def test_a_forbidden_secret_is_named_with_the_rbac_it_needs(
    kube: KubernetesEmulator,
    cluster: Cluster,
    namespace: str,
    fastly_factory: Callable[..., FastlyEmulator],
    operator_factory: Callable[[FastlyEmulator], OperatorProcess],
) -> None:
    forbidden = lambda request: request.method == "GET"  # noqa: E731 - a kmock criterion
    kube[forbidden, re.compile(rf".*/namespaces/{namespace}/secrets/locked")] << 403 << status(403, "Forbidden")
    cluster.put_secret(namespace, "locked", value=VALUE)
    cluster.put_secret(namespace, "open", value=VALUE)
    fastly = fastly_factory()
    operator = operator_factory(fastly)
    cluster.apply(namespace, "guarded", spec("locked", "open"))
    ready = cluster.wait_reason(namespace, "guarded", "SecretForbidden")
    assert f"Secret {namespace}/locked" in ready["message"]
    assert "get secrets" in ready["message"]
    store_id = wait_for(
        "the readable entry is written", lambda: (cluster.get(namespace, "guarded") or {}).get("status", {}).get("id")
    )
    assert fastly.secret_names(store_id) == ["OPEN"]
    assert VALUE not in operator.logs()
    assert TOKEN not in operator.logs()


def test_an_api_outage_shows_and_heals_and_secret_edits_arrive_within_seconds(
    kube: KubernetesEmulator,
    cluster: Cluster,
    namespace: str,
    fastly_factory: Callable[..., FastlyEmulator],
    operator_factory: Callable[[FastlyEmulator], OperatorProcess],
) -> None:
    down = threading.Event()
    failing = lambda request: down.is_set() and "/secrets" in request.url.path  # noqa: E731 - a kmock criterion
    kube[failing] << 503 << status(503, "ServiceUnavailable")
    cluster.put_secret(namespace, "app", value=VALUE)
    fastly = fastly_factory()
    operator_factory(fastly)
    cluster.apply(namespace, "steady", spec("app"))
    store_id = cluster.wait_ready(namespace, "steady")["status"]["id"]

    down.set()  # Secrets cannot be read, and the Secret watch fails too
    cluster.annotate_reconcile(namespace, "steady")
    unavailable = cluster.wait_reason(namespace, "steady", "KubernetesUnavailable")
    assert f"Secret {namespace}/" in unavailable["message"]
    down.clear()
    cluster.wait_reason(namespace, "steady", "Synced", timeout=35)
    cluster.put_secret(namespace, "app", value=EDITED)
    wait_for("the edit reaches Fastly", lambda: fastly.plaintext(store_id, "APP") == EDITED.encode(), timeout=8)
