"""Starting Kopf with the project's handlers and settings."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

import kopf

from fastly_secret_store_operator import handlers, health, kube
from fastly_secret_store_operator.config import OperatorConfig
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
    trust_api_signing_key: bool = False
    operator_namespace: str = "default"
    log_format: str = "text"
    verbose: bool = False
    debug: bool = False
    quiet: bool = False
    max_concurrent_reconciles: int = 32
    kubeconfig: str | None = None


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
    )
    registry = kopf.get_default_registry()
    assert handlers.RESOURCE  # importing the module registered the handlers in the default registry
    if connection is not None:

        @kopf.on.login(registry=registry)
        def login(**_: object) -> kopf.ConnectionInfo:
            return connection

    health.register(registry)
    audit = None
    if options.liveness:
        scope = () if options.all_namespaces else options.namespaces
        audit = health.WatchAudit(health.kube_lister(functools.partial(kube.load_config, options.kubeconfig), scope))
    metrics = Metrics()
    if options.metrics_port is not None:
        metrics.serve(options.metrics_port)
    try:
        await kopf.operator(
            registry=registry,
            ready_flag=ready_flag,
            clusterwide=options.all_namespaces,
            namespaces=options.namespaces,
            standalone=options.standalone,
            liveness_endpoint=options.liveness,
            memo=kopf.Memo(config=config, metrics=metrics, watch_audit=audit),
            stop_flag=stop_flag,
        )
    finally:
        metrics.shutdown()
