"""The integration tier's moving parts: a cluster (the Kubernetes emulator, or a real one when FSSO_E2E=1),
the Fastly emulator, and the operator itself, run as `fastly-secret-store-operator run` in a subprocess."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
import yaml

GROUP, VERSION, PLURAL = "fastly.operator.dev", "v1alpha1", "fastlysecretstores"
TOKEN = "fastly-token-canary-4b1d"
NAMESPACE = "shop"
CRDS = sorted((Path(__file__).resolve().parents[2] / "crds").glob("*.*.yaml"))
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail, saying what never happened, after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Cluster:
    """What a test does with kubectl, through the kubernetes client (so it works on a real cluster too)."""

    def __init__(self, kubeconfig: Path) -> None:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        self.kubeconfig = kubeconfig
        api = kubernetes.client.ApiClient(configuration)
        self.core = kubernetes.client.CoreV1Api(api)
        self.custom = kubernetes.client.CustomObjectsApi(api)

    def install_crds(self, paths: list[Path]) -> None:
        """Create or replace the CRDs (for a real cluster; the emulator reads crds/ itself)."""
        extensions = kubernetes.client.ApiextensionsV1Api(self.core.api_client)
        for path in paths:
            crd = yaml.safe_load(path.read_text())
            try:
                extensions.create_custom_resource_definition(crd)
            except kubernetes.client.ApiException as error:
                if error.status != 409:
                    raise
                current = extensions.read_custom_resource_definition(crd["metadata"]["name"])
                crd["metadata"]["resourceVersion"] = current.metadata.resource_version
                extensions.replace_custom_resource_definition(crd["metadata"]["name"], crd)

    def ensure_namespace(self, name: str) -> None:
        try:
            self.core.create_namespace({"metadata": {"name": name}})
        except kubernetes.client.ApiException as error:
            if error.status != 409:
                raise

    def put_secret(self, namespace: str, name: str, **values: bytes | str) -> None:
        data = {
            key: base64.b64encode(value.encode() if isinstance(value, str) else value).decode()
            for key, value in values.items()
        }
        body = {"metadata": {"name": name, "namespace": namespace}, "data": data}
        try:
            self.core.create_namespaced_secret(namespace, body)
        except kubernetes.client.ApiException as error:
            if error.status != 409:
                raise
            self.core.patch_namespaced_secret(name, namespace, {"data": data})

    def delete_secret(self, namespace: str, name: str) -> None:
        self.core.delete_namespaced_secret(name, namespace)

    def label_secret(self, namespace: str, name: str, **labels: str) -> None:
        self.core.patch_namespaced_secret(name, namespace, {"metadata": {"labels": labels}})

    def apply(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FastlySecretStore",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        return result

    def patch_spec(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}, _content_type="application/merge-patch+json"
        )

    def annotate_reconcile(self, namespace: str, name: str) -> None:
        """Ask for a reconcile now, as a user would (`fastly.operator.dev/reconcile-requested-at`)."""
        annotations = {"fastly.operator.dev/reconcile-requested-at": uuid.uuid4().hex}
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"metadata": {"annotations": annotations}},
            _content_type="application/merge-patch+json",
        )

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return body

    def delete(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def events(self, namespace: str) -> list[dict[str, Any]]:
        items = self.core.list_namespaced_event(namespace).items
        return [kubernetes.client.ApiClient().sanitize_for_serialization(item) for item in items]

    def condition(self, namespace: str, name: str, kind: str = "Ready") -> dict[str, Any] | None:
        body = self.get(namespace, name) or {}
        for condition in body.get("status", {}).get("conditions", []):
            if condition.get("type") == kind:
                return dict(condition)
        return None

    def wait_reason(self, namespace: str, name: str, reason: str, timeout: float = 20.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            ready = self.condition(namespace, name)
            return ready if ready and ready.get("reason") == reason else None

        try:
            return wait_for(f"{namespace}/{name} is Ready with reason {reason}", check, timeout)
        except AssertionError:
            raise AssertionError(f"{namespace}/{name} never reached {reason}: {self.get(namespace, name)}") from None

    def wait_ready(self, namespace: str, name: str, timeout: float = 20.0) -> dict[str, Any]:
        """Ready=True for the current generation; returns the object."""

        def check() -> dict[str, Any] | None:
            body = self.get(namespace, name) or {}
            status = body.get("status", {})
            # From the same body: a second GET could see a newer status than the one returned.
            ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
            current = status.get("observedGeneration") == body.get("metadata", {}).get("generation")
            return body if ready and ready.get("status") == "True" and current else None

        try:
            return wait_for(f"{namespace}/{name} is Ready", check, timeout)
        except AssertionError:
            raise AssertionError(f"{namespace}/{name} never became Ready: {self.get(namespace, name)}") from None

    def wait_gone(self, namespace: str, name: str, timeout: float = 20.0) -> None:
        wait_for(f"{namespace}/{name} is gone", lambda: self.get(namespace, name) is None, timeout)


class OperatorProcess:
    """`fastly-secret-store-operator run` in a subprocess, logging at debug level into a file."""

    def __init__(
        self, kubeconfig: Path, fastly_url: str, namespaces: list[str], log: Path, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.kubeconfig, self.fastly_url, self.namespaces, self.log = kubeconfig, fastly_url, namespaces, log
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "fastly_secret_store_operator.cli", "run", "--standalone", "--verbose"]
        for namespace in self.namespaces:
            command += ["--namespace", namespace]
        command += ["--fastly-endpoint", self.fastly_url, "--operator-namespace", self.namespaces[0]]
        command += self.extra_args
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "FASTLY_USE_API_SIGNING_KEY": "1"}
        if os.environ.get("FSSO_OPERATOR_PYTHONPATH"):
            # Runs another checkout's operator against this checkout's emulators and tests: to see a test fail on
            # the code before a fix, e.g. FSSO_OPERATOR_PYTHONPATH=/tmp/old/operator.
            env["PYTHONPATH"] = os.environ["FSSO_OPERATOR_PYTHONPATH"]
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as when a node dies."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def logs(self) -> str:
        return self.log.read_text(errors="replace")
