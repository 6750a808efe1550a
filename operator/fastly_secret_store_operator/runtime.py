"""What the handlers share while the operator runs: built once at startup, closed at cleanup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastly_secret_store_operator import kube
from fastly_secret_store_operator.account_registry import ClusterAccounts
from fastly_secret_store_operator.config import OperatorConfig
from fastly_secret_store_operator.metrics import Metrics
from fastly_secret_store_operator.owners import ClaimIndex
from fastly_secret_store_operator.reconcile.fingerprint import Fingerprinter
from fastly_secret_store_operator.reconcile.object import Environment
from fastly_secret_store_operator.reconcile.sources import SecretReadError
from fastly_secret_store_operator.secret_watch import SecretWatch
from fastly_secret_store_operator.sessions import SessionPool
from fastly_secret_store_operator.tracking import Tracker

logger = logging.getLogger(__name__)


class ClusterSecrets:
    """Secrets read from the API server, with failures in the reconcile layer's terms."""

    def __init__(self, api: kube.KubeApi) -> None:
        self._api = api

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        try:
            return await self._api.read_secret(namespace, name)
        except kube.KubeError as error:
            raise SecretReadError(namespace, name, forbidden=error.forbidden, detail=str(error)) from None


@dataclass(slots=True)
class Runtime:
    config: OperatorConfig
    kube: kube.KubeApi
    sessions: SessionPool
    env: Environment
    tracker: Tracker
    owners: ClaimIndex
    slots: asyncio.Semaphore
    metrics: Metrics
    secret_watch: SecretWatch
    accounts: ClusterAccounts


async def start_runtime(config: OperatorConfig, metrics: Metrics, client: kube.KubeClient) -> Runtime:
    """Everything the handlers share, on the Kubernetes client run_operator made (and checked) before Kopf."""
    api = kube.KubeApi(client)
    key = await api.fingerprint_key(config.operator_namespace, config.fingerprint_secret)
    sessions = SessionPool(config.fastly, on_response=metrics.observe_fastly)
    tracker = Tracker()

    def remembered(uid: str) -> Mapping[str, Any] | None:
        tracked = tracker.get(uid)
        return tracked.status if tracked is not None else None

    owners = ClaimIndex(tracker.wake_waiting, remembered=remembered, on_lost=tracker.wake_object)
    accounts = ClusterAccounts(
        api,
        token_namespace=config.operator_namespace,
        selectors_evaluated=not config.namespaced,
        wake_object=tracker.wake_object,
        claims_through=owners.claims_through,
    )
    env = Environment(
        secrets=ClusterSecrets(api),
        connect=sessions,
        fingerprinter=Fingerprinter(key),
        owners=owners,
        create_grace=config.create_grace,
        accounts=accounts,
    )

    # Secret edits wake the objects that read them (FastlyAccount tokens: the account and its users); see
    # secret_watch for why this is not a Kopf handler.
    def wake_readers(namespace: str, secret: str) -> None:
        tracker.wake_readers(namespace, secret)
        accounts.secret_changed(namespace, secret)

    # Namespaced mode watches the operator's own namespace too: the FastlyAccount token Secrets live there.
    scopes = dict.fromkeys([*config.namespaces, config.operator_namespace]) if config.namespaced else {}
    watch = SecretWatch(client, scopes, wake_readers)
    watch.start()
    logger.info("Fastly endpoint %s", config.fastly.endpoint)
    return Runtime(
        config=config,
        kube=api,
        sessions=sessions,
        env=env,
        tracker=tracker,
        owners=owners,
        slots=asyncio.Semaphore(config.max_concurrent_reconciles),
        metrics=metrics,
        secret_watch=watch,
        accounts=accounts,
    )


async def stop_runtime(runtime: Runtime) -> None:
    await runtime.secret_watch.stop()
    await runtime.sessions.aclose()
    await runtime.kube.aclose()
