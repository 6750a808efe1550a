"""Starting Kopf with the project's handlers and settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import kopf

from fastly_secret_store_operator import handlers
from fastly_secret_store_operator.config import OperatorConfig
from fastly_secret_store_operator.connections import FastlyOptions


@dataclass(frozen=True, slots=True)
class OperatorOptions:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    standalone: bool = True
    liveness: str | None = None
    metrics_port: int | None = None
    fastly_endpoint: str = "https://api.fastly.com"
    trust_api_signing_key: bool = False
    operator_namespace: str = "default"
    log_format: str = "text"
    verbose: bool = False
    debug: bool = False
    kubeconfig: str | None = None


async def run_operator(options: OperatorOptions, *, stop_flag: asyncio.Event | None = None) -> None:
    kopf.configure(
        debug=options.debug,
        verbose=options.verbose,
        log_format=kopf.LogFormat.JSON if options.log_format == "json" else kopf.LogFormat.FULL,
    )
    config = OperatorConfig(
        fastly=FastlyOptions(endpoint=options.fastly_endpoint, trust_api_signing_key=options.trust_api_signing_key),
        operator_namespace=options.operator_namespace,
        kubeconfig=options.kubeconfig,
    )
    assert handlers.RESOURCE  # importing the module registers the handlers
    await kopf.operator(
        clusterwide=options.all_namespaces,
        namespaces=options.namespaces,
        standalone=options.standalone,
        liveness_endpoint=options.liveness,
        memo=kopf.Memo(config=config),
        stop_flag=stop_flag,
    )
