"""`fastly-secret-store-operator demo`: the whole job on one machine, with no cluster and no Fastly account.

Starts the Kubernetes and Fastly emulators on 127.0.0.1, runs the operator against them, applies an example
FastlySecretStore with an entry, prints its status and the store as the Fastly API sees it, deletes the object,
shows the store gone, and exits 0.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.fastly import FastlyClient

NAMESPACE = "default"
TOKEN = "demo-token"  # noqa: S105 - the emulator's made-up token
EXAMPLE: dict[str, Any] = {
    "apiVersion": "fastly.operator.dev/v1alpha1",
    "kind": "FastlySecretStore",
    "metadata": {"name": "checkout", "namespace": NAMESPACE},
    "spec": {
        "name": "checkout-demo",
        "apiTokenSecretRef": {"name": "fastly-api-token"},
        "entries": [{"name": "STRIPE_KEY", "secretKeyRef": {"name": "stripe", "key": "api-key"}}],
    },
}


def _secret(name: str, **values: str) -> dict[str, Any]:
    data = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE}, "data": data}


async def _until(what: str, check: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: timed out waiting until {what}")
        await asyncio.sleep(0.1)


def _ready(body: dict[str, Any] | None) -> bool:
    conditions = (body or {}).get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def run_demo() -> int:
    from fastly_secret_store_operator import crds
    from fastly_secret_store_operator.emulators.kubernetes import ApiError, KubernetesEmulator
    from fastly_secret_store_operator.operator import OperatorOptions, run_operator

    with crds.paths() as crd_paths:  # the CRDs shipped in the package: a wheel has no crds/ directory
        emulator = KubernetesEmulator(crds=crd_paths)
    with tempfile.TemporaryDirectory() as scratch:
        async with FastlyEmulator(tokens=[TOKEN]) as fastly, emulator as kube:
            print(f"Fastly API emulator:     {fastly.url}")
            print(f"Kubernetes API emulator: {kube.server_url}")
            kubeconfig = kube.write_kubeconfig(Path(scratch) / "kubeconfig")
            store = kube.store
            store.create("secrets", _secret("fastly-api-token", token=TOKEN))
            store.create("secrets", _secret("stripe", **{"api-key": "sk_test_demo"}))

            stop, ready = asyncio.Event(), asyncio.Event()
            options = OperatorOptions(
                namespaces=(NAMESPACE,),
                all_namespaces=False,
                fastly_endpoint=fastly.url,
                trust_api_signing_key=True,
                operator_namespace=NAMESPACE,
                kubeconfig=str(kubeconfig),
                quiet=True,
            )
            operator = asyncio.create_task(
                run_operator(options, stop_flag=stop, ready_flag=ready, connection=kube.connection_info())
            )
            try:
                await asyncio.wait_for(ready.wait(), 30)
                print("\n$ kubectl apply -f checkout.yaml")
                store.create("fastlysecretstores", EXAMPLE)

                def current() -> dict[str, Any] | None:
                    with contextlib.suppress(ApiError):
                        return dict(store.get("fastlysecretstores", NAMESPACE, "checkout"))
                    return None

                await _until("the FastlySecretStore is Ready", lambda: _ready(current()))
                print("\nstatus:")
                print(json.dumps((current() or {}).get("status"), indent=2))

                async with FastlyClient(TOKEN, endpoint=fastly.url) as client:
                    found = await client.find_stores("checkout-demo")
                    print("\nThe store as the Fastly API sees it:")
                    for item in found:
                        print(f"  store {item.name} id={item.id} created_at={item.created_at.isoformat()}")
                        async for secret in client.list_secrets(item.id):
                            print(f"    entry {secret.name} digest={secret.digest}")

                print("\n$ kubectl delete fastlysecretstore checkout")
                store.delete("fastlysecretstores", NAMESPACE, "checkout")
                await _until("the object is gone", lambda: current() is None)
                await _until("the Fastly store is deleted", lambda: fastly.store_named("checkout-demo") is None)
                print("The object is gone and the Fastly store is deleted.")
            finally:
                stop.set()
                await asyncio.wait_for(operator, 30)
    return 0
