"""`run` fails fast and clearly: one line on stderr saying what is wrong, exit 1 (cannot start) or 2 (bad flag),
no traceback; `--kubeconfig` and `--context` choose the cluster for the operator and Kopf alike."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import CRDS, free_port, wait_for

from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator

BOUND = 15.0  # seconds within which `run` must have given up


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    base = {key: value for key, value in os.environ.items() if key not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "fastly_secret_store_operator.cli", "run", "--standalone", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**base, **(env or {})},
    )
    return result, time.monotonic() - started


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def _kubeconfig(path: Path, servers: dict[str, str], current: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}} for name, url in servers.items()],
        "users": [{"name": "user", "user": {"token": "t0ken-canary"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "user"}} for name in servers],
        "current-context": current,
    }
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def refusing() -> Iterator[tuple[str, list[int]]]:
    """An API server answering every request with the status in the returned list (401 until told otherwise)."""
    answer = [401]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer[0])
            body = b'{"kind":"Status","message":"echo t0ken-canary"}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_no_kubeconfig_at_all(tmp_path: Path) -> None:
    result, elapsed = _run(env={"HOME": str(tmp_path)})
    assert result.returncode == 1
    assert "no Kubernetes configuration" in _one_line(result)
    assert elapsed < BOUND


def test_an_unreachable_api_server(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "config", {"dead": f"http://127.0.0.1:{free_port()}"}, "dead")
    result, elapsed = _run("--kubeconfig", str(kubeconfig))
    assert result.returncode == 1
    line = _one_line(result)
    assert "cannot reach the Kubernetes API server at http://127.0.0.1:" in line
    assert "t0ken-canary" not in line
    assert elapsed < BOUND


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "refused the credentials"),
        (403, "not allowed to list fastlysecretstores.fastly.operator.dev in namespace shop"),
    ],
)
def test_bad_credentials_or_no_permission(
    tmp_path: Path, refusing: tuple[str, list[int]], status: int, says: str
) -> None:
    url, answer = refusing
    answer[0] = status
    kubeconfig = _kubeconfig(tmp_path / "config", {"refusing": url}, "refusing")
    result, elapsed = _run("--kubeconfig", str(kubeconfig), "--namespace", "shop")
    assert result.returncode == 1
    line = _one_line(result)
    assert says in line
    assert "t0ken-canary" not in line
    assert elapsed < BOUND


def test_a_cluster_without_the_fastly_account_crd_is_named(tmp_path: Path) -> None:
    # An upgrade that applied the new version but not its new CRD: Kopf would wait for it forever, silently.
    only_stores = [path for path in CRDS if "fastlysecretstores" in path.name]
    emulator = KubernetesEmulator(crds=only_stores, namespaces=("default", "shop"))
    with emulator.run_in_thread() as live:
        kubeconfig = _kubeconfig(tmp_path / "config", {"live": live}, current="live")
        result, elapsed = _run("--kubeconfig", str(kubeconfig), "--namespace", "shop")
    assert result.returncode == 1
    line = _one_line(result)
    assert "does not serve fastlyaccounts.fastly.operator.dev" in line
    assert "crds/" in line
    assert elapsed < BOUND


def test_the_context_flag_chooses_the_cluster(tmp_path: Path) -> None:
    emulator = KubernetesEmulator(crds=CRDS, namespaces=("default", "shop"))
    with emulator.run_in_thread() as live:
        kubeconfig = _kubeconfig(
            tmp_path / "config", {"dead": f"http://127.0.0.1:{free_port()}", "live": live}, current="live"
        )
        result, _ = _run("--kubeconfig", str(kubeconfig), "--context", "dead", "--namespace", "shop")
        assert result.returncode == 1
        assert "cannot reach" in _one_line(result)

        # The current context is the dead one; --context live must carry both the operator and Kopf there.
        kubeconfig = _kubeconfig(
            tmp_path / "config", {"dead": f"http://127.0.0.1:{free_port()}", "live": live}, current="dead"
        )
        spec = {"apiTokenSecretRef": {"name": "fastly-api-token"}}
        emulator.store.create("fastlysecretstores", {"metadata": {"name": "checkout"}, "spec": spec}, "shop")
        command = [sys.executable, "-m", "fastly_secret_store_operator.cli", "run", "--standalone"]
        command += ["--kubeconfig", str(kubeconfig), "--context", "live", "--namespace", "shop"]
        command += ["--operator-namespace", "shop", "--fastly-endpoint", f"http://127.0.0.1:{free_port()}"]
        env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
        with (tmp_path / "operator.log").open("wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:

            def finalized() -> bool:
                metadata = emulator.store.get("fastlysecretstores", "shop", "checkout")["metadata"]
                return bool(metadata.get("finalizers"))

            wait_for("Kopf, logged in through --context, adds its finalizer", finalized, timeout=30)
            assert emulator.store.get("secrets", "shop", "fastly-secret-store-operator-fingerprint-key")
            assert process.poll() is None
        finally:
            process.terminate()
            process.wait(30)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--metrics-port", "70000"], "not a port number"),
        (["--metrics-port", "http"], "not a port number"),
        (["--liveness", "foo"], "not an http(s) URL with a host and a port"),
        (["--liveness", "http://0.0.0.0/healthz"], "not an http(s) URL with a host and a port"),
        (["--fastly-endpoint", "http://api.fastly.com"], "must be an https:// URL"),
        (["--namespace", "team-*"], "namespaces are exact names"),
        (["--namespace", "shop", "--namespace", "!kube-system"], "namespaces are exact names"),
        (["--namespace", "Shop_1"], "namespaces are exact names"),
    ],
)
def test_invalid_flag_values_exit_2_with_argparse_message(flags: list[str], says: str) -> None:
    result, elapsed = _run(*flags)
    assert result.returncode == 2
    assert says in result.stderr
    assert "error: argument" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < BOUND
