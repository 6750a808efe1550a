"""Starting Kopf with the project's handlers and settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import kopf

from fastly_secret_store_operator import handlers, health, kube
from fastly_secret_store_operator.config import OperatorConfig
from fastly_secret_store_operator.leader_election import LeaderElector, LeaseTimings, default_identity, run_as_leader
from fastly_secret_store_operator.metrics import Metrics
from fastly_secret_store_operator.sessions import FastlyOptions


@dataclass(frozen=True, slots=True)
class OperatorOptions:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    standalone: bool = True
    liveness: str | None = None
    metrics_port: int | None = None
    fastly_endpoint: str = "https://api.fastly.com"
    fastly_timeout: float = 10.0
    create_grace: float = 60.0
    trust_api_signing_key: bool = False
    operator_namespace: str = "default"
    log_format: str = "text"
    verbose: bool = False
    debug: bool = False
    quiet: bool = False
    max_concurrent_reconciles: int = 32
    kubeconfig: str | None = None
    context: str | None = None
    leader_elect: bool = False
    lease_timings: LeaseTimings = field(default_factory=LeaseTimings)
    #: This candidate's name in the Lease; None: the pod's name (POD_NAME) or host name, plus a random suffix.
    leader_identity: str | None = None


async def run_operator(
    options: OperatorOptions,
    *,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    connection: kopf.ConnectionInfo | None = None,
) -> None:
    """Run until stopped. `connection` overrides the usual login (kubeconfig or in-cluster), e.g. for the demo."""
    kopf.configure(
        debug=options.debug,
        verbose=options.verbose,
        quiet=options.quiet,
        log_format=kopf.LogFormat.JSON if options.log_format == "json" else kopf.LogFormat.FULL,
    )
    # HTTP libraries log URLs, headers or bodies at their debug levels, and some versions of the kubernetes
    # client log whole response bodies (a Secret's data): never let them, whatever the level asked for. The
    # operator's own loggers say what happened with route templates and names only.
    for name in ("httpx", "httpcore", "urllib3", "kubernetes", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    config = OperatorConfig(
        fastly=FastlyOptions(
            endpoint=options.fastly_endpoint,
            trust_api_signing_key=options.trust_api_signing_key,
            timeout=options.fastly_timeout,
        ),
        operator_namespace=options.operator_namespace,
        kubeconfig=options.kubeconfig,
        namespaced=not options.all_namespaces,
        namespaces=options.namespaces,
        max_concurrent_reconciles=options.max_concurrent_reconciles,
        create_grace=options.create_grace,
    )
    scope = () if options.all_namespaces else options.namespaces
    # Raises kube.StartupError (one line for a person) when there are no credentials or the API server cannot
    # be reached, refuses them, or does not let the operator list its objects: before Kopf, which would retry.
    credentials = (
        kube.from_connection_info(connection)
        if connection is not None
        else kube.load_credentials(options.kubeconfig, options.context)
    )
    client = kube.connect(credentials, connections=options.max_concurrent_reconciles + 8 + max(1, len(scope)))
    metrics = Metrics()
    try:
        await kube.preflight(client, scope)
        registry = kopf.get_default_registry()
        assert handlers.RESOURCE  # importing the module registered the handlers in the default registry
        kopf.on.login(id="kube-credentials", registry=registry)(login)
        health.register(registry)
        audit = health.WatchAudit(health.kube_lister(client, scope)) if options.liveness else None
        if options.metrics_port is not None:
            metrics.serve(options.metrics_port)
        memo = kopf.Memo(
            config=config, metrics=metrics, watch_audit=audit, kube_client=client, kube_credentials=credentials
        )

        async def serve(*, standalone: bool, stop: asyncio.Event | None) -> None:
            await kopf.operator(
                registry=registry,
                ready_flag=ready_flag,
                clusterwide=options.all_namespaces,
                namespaces=options.namespaces,
                standalone=standalone,
                liveness_endpoint=options.liveness,
                memo=memo,
                stop_flag=stop,
            )

        if not options.leader_elect:
            await serve(standalone=options.standalone, stop=stop_flag)
            return
        stop = stop_flag if stop_flag is not None else asyncio.Event()
        # A client of its own: the handlers close theirs when Kopf stops, before the Lease is released, and
        # renewals must never queue behind reconciles for a connection.
        lease_client = kube.connect(credentials, connections=2)
        elector = LeaderElector(
            lease_client,
            options.operator_namespace,
            options.leader_identity or default_identity(),
            options.lease_timings,
        )

        async def lead() -> None:
            # Only the leader runs Kopf, so Kopf's own peering (which needs KopfPeering objects) has nothing to
            # coordinate: run it standalone whatever --standalone says.
            await serve(standalone=True, stop=stop)

        # Kopf handles SIGTERM and SIGINT while it runs; before (a standby) and after it (the release), so do we.
        try:
            with _stopping_on_signals(stop):
                await run_as_leader(elector, lead, stop, liveness_url=options.liveness)
        finally:
            await lease_client.aclose()
    finally:
        await client.aclose()
        metrics.shutdown()


@contextlib.contextmanager
def _stopping_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` (in the main thread only: elsewhere signals cannot be handled)."""
    numbers = (signal.SIGTERM, signal.SIGINT) if threading.current_thread() is threading.main_thread() else ()
    loop = asyncio.get_running_loop()
    for number in numbers:
        loop.add_signal_handler(number, stop.set)
    try:
        yield
    finally:
        for number in numbers:
            loop.remove_signal_handler(number)


def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """Kopf logs in with the operator's own credentials, so `--kubeconfig` and `--context` apply to it too.
    Kopf calls this again after a 401: the token is read afresh (refreshed when it expired)."""
    credentials: kube.Credentials = memo.kube_credentials
    return credentials.connection_info()
