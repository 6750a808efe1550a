"""Scale: N FastlySecretStore objects, 10 entries each, against the emulators with Fastly's real latency.

The operator runs as users run it (`fastly-secret-store-operator run`, a subprocess); the Fastly emulator
(latency 50 ms per request) and the Kubernetes emulator run in threads of this process. Objects and Secrets are
written straight into the emulator's store (as a `kubectl apply` of many objects lands at once).

    .venv/bin/python benchmarks/scale.py --objects 10 100 1000
    .venv/bin/python benchmarks/scale.py --rate-limited   # Fastly's write limit, scaled down: 50 writes per 60 s

To compare two versions of the operator, run the same script with each one's source root first on PYTHONPATH
(`PYTHONPATH=<checkout>/operator`), alternating the two in one sitting, and compare operator CPU per object.

For each N: the time from applying all objects until all are Ready for their current generation; Fastly
requests by kind against the minimum; an idle resync interval (nothing changed); the operator's memory
(VmRSS / VmHWM of the subprocess); CPU seconds of the operator and of each emulator thread. The bound is what
Fastly's latency and the operator's concurrency limits allow: N / (objects reconciled at once) x one object's
first sync alone (its Fastly round trips one after another, writes ENTRY_WRITES_AT_ONCE at a time, and its
Kubernetes calls).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastly_secret_store_operator.emulators.fastly import FastlyEmulator, run_in_thread
from fastly_secret_store_operator.emulators.kubernetes import KubernetesEmulator
from fastly_secret_store_operator.reconcile.entries import ENTRY_WRITES_AT_ONCE

TOKEN = "benchmark-token"  # noqa: S105 - the emulator's made-up token
NAMESPACE = "bench"
FINGERPRINT_SECRET = "fastly-secret-store-operator-fingerprint-key"  # noqa: S105 - a name
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# In a slot: read the token Secret and the source Secret; patch the status for the claim, the create mark, the result.
KUBE_CALLS_PER_OBJECT = 5


# -- measuring ------------------------------------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def _cpu_seconds(stat_path: str) -> float:
    """user + system CPU seconds from a /proc stat file (a process or one thread of it)."""
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _thread_cpu(name: str) -> float:
    for thread in threading.enumerate():
        if thread.name == name and thread.native_id is not None:
            return _cpu_seconds(f"/proc/self/task/{thread.native_id}/stat")
    return 0.0


def _kind(method: str, route: str | None) -> str:
    """A Fastly request's kind, as the table reports it."""
    route = route or "?"
    if route.endswith("/client-key"):
        return "client key (POST)"
    if route.endswith("/signing-key"):
        return "signing key (GET)"
    if route.endswith("/tokens/self"):
        return "token record (GET)"
    if route.endswith("/secrets"):
        return "entry write (PUT)" if method != "GET" else "entry list (GET)"
    if route.endswith("/secret/{store_id}"):
        return f"store {method}"
    if route.endswith("/secret"):
        return "store create (POST)" if method == "POST" else "store list/lookup (GET)"
    return f"{method} {route}"


def _fastly_counts(fastly: FastlyEmulator, start: int = 0, end: int | None = None) -> Counter[str]:
    counts: Counter[str] = Counter()
    for request in fastly.requests[start:end]:
        counts[_kind(request.method, request.route)] += 1
        counts["total"] += 1
        counts["writes" if request.method not in ("GET", "HEAD") else "reads"] += 1
        if request.status == 429:
            counts["429"] += 1
    return counts


def _kube_counts(kube: KubernetesEmulator, start: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    for request in list(kube)[start:]:
        method = str(getattr(request.method, "value", request.method))
        path = request.url.path
        watch = request.params.get("watch") in ("true", "1")
        what = "watch" if watch else ("status patch" if path.endswith("/status") and method == "PATCH" else method)
        if "/secrets" in path and method == "GET" and not watch:
            what = "Secret GET"
        counts[what] += 1
        counts["total"] += 1
    return counts


# -- the cluster ----------------------------------------------------------------------------------------------


@dataclass
class Bench:
    fastly: FastlyEmulator
    kube: KubernetesEmulator
    fastly_url: str
    kubeconfig: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    peak_rss_kb: int = 0


@contextmanager
def bench(fastly: FastlyEmulator, workdir: Path) -> Iterator[Bench]:
    kube = KubernetesEmulator(namespaces=("default", NAMESPACE), watch_history=1_000_000)
    with run_in_thread(fastly) as fastly_url, kube.run_in_thread():
        kubeconfig = kube.write_kubeconfig(workdir / "kubeconfig")
        token = base64.b64encode(TOKEN.encode()).decode()
        kube.store.create(
            "secrets", {"metadata": {"name": "fastly-api-token", "namespace": NAMESPACE}, "data": {"token": token}}
        )
        yield Bench(fastly, kube, fastly_url, kubeconfig, workdir / "operator.log")


def start_operator(b: Bench, max_concurrent: int, extra: list[str]) -> None:
    command = [sys.executable, "-m", "fastly_secret_store_operator.cli", "run", "--standalone"]
    command += ["--namespace", NAMESPACE, "--fastly-endpoint", b.fastly_url, "--operator-namespace", NAMESPACE]
    command += ["--max-concurrent-reconciles", str(max_concurrent), *extra]
    env = {**os.environ, "KUBECONFIG": str(b.kubeconfig), "FASTLY_USE_API_SIGNING_KEY": "1"}
    with b.log.open("ab") as sink:
        b.process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    _wait("the operator made its fingerprint key", lambda: _exists(b.kube, "secrets", FINGERPRINT_SECRET), 30)
    time.sleep(1.0)  # its watches are up: applying now measures reconciling, not starting


def kube_round_trip(b: Bench, samples: int = 50) -> float:
    """Seconds per Kubernetes API request (a Secret GET over HTTP with the kubernetes client), idle emulator."""
    import kubernetes

    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(b.kubeconfig), client_configuration=configuration
    )
    core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(configuration))
    core.read_namespaced_secret("fastly-api-token", NAMESPACE)  # connect
    started = time.monotonic()
    for _ in range(samples):
        core.read_namespaced_secret("fastly-api-token", NAMESPACE)
    return (time.monotonic() - started) / samples


def stop_operator(b: Bench) -> None:
    if b.process is not None and b.process.poll() is None:
        b.process.send_signal(signal.SIGTERM)
        try:
            b.process.wait(30)
        except subprocess.TimeoutExpired:
            b.process.kill()
            b.process.wait()


def _exists(kube: KubernetesEmulator, resource: str, name: str) -> bool:
    try:
        kube.store.get(resource, NAMESPACE, name)
    except Exception:  # ApiError 404 or anything else: not there yet
        return False
    return True


def _wait(what: str, check: Any, timeout: float, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout}s waiting until {what}")
        time.sleep(interval)


def apply_objects(kube: KubernetesEmulator, n: int, entries: int, resync: str, prefix: str = "store") -> None:
    for index in range(n):
        name = f"{prefix}-{index:04d}"
        data = {f"KEY_{key}": base64.b64encode(f"{name}-value-{key}".encode()).decode() for key in range(entries)}
        kube.store.create("secrets", {"metadata": {"name": f"{name}-src", "namespace": NAMESPACE}, "data": data})
    for index in range(n):
        name = f"{prefix}-{index:04d}"
        spec = {
            "apiTokenSecretRef": {"name": "fastly-api-token"},
            "resyncInterval": resync,
            "entriesFrom": [{"secretRef": {"name": f"{name}-src"}}],
        }
        body = {"apiVersion": "fastly.operator.dev/v1alpha1", "kind": "FastlySecretStore"}
        kube.store.create(
            "fastlysecretstores", {**body, "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}
        )


def _ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())


def _reasons(kube: KubernetesEmulator) -> Counter[str]:
    reasons: Counter[str] = Counter()
    for obj in kube.store.objects("fastlysecretstores", NAMESPACE):
        ready = next((c for c in (obj.get("status") or {}).get("conditions") or () if c.get("type") == "Ready"), None)
        reasons["Ready" if _ready(obj) else (ready or {}).get("reason", "none")] += 1
    return reasons


def _sample_rss(b: Bench) -> dict[str, int]:
    assert b.process is not None
    values = _proc_status(b.process.pid)
    b.peak_rss_kb = max(b.peak_rss_kb, values.get("VmRSS", 0))
    return values


# -- scale ----------------------------------------------------------------------------------------------------


@dataclass
class ScaleResult:
    n: int
    entries: int
    latency: float
    concurrency: int
    seconds_to_ready: float
    apply_seconds: float
    ramp: Counter[str]
    ramp_kube: Counter[str]
    idle_seconds: float
    idle: Counter[str]
    idle_kube: Counter[str]
    rss_kb: int
    hwm_kb: int
    idle_rss_kb: int
    cpu: dict[str, float] = field(default_factory=dict)
    kube_rtt: float = 0.0

    @property
    def sequential_per_object(self) -> int:
        """Fastly round trips one object's first sync makes one after another: the store lookup, the create,
        then its entry writes, ENTRY_WRITES_AT_ONCE at a time (a first sync lists no entries)."""
        return 2 + math.ceil(self.entries / ENTRY_WRITES_AT_ONCE)

    @property
    def object_seconds(self) -> float:
        """One object's first sync, done alone: its sequential Fastly round trips plus the Kubernetes calls made
        while it holds a slot (two Secret reads, two status patches), at the round trip measured here."""
        return self.sequential_per_object * self.latency + KUBE_CALLS_PER_OBJECT * self.kube_rtt

    @property
    def bound_seconds(self) -> float:
        """N objects through `concurrency` slots (never less than one object's own time)."""
        return max(1, self.n / self.concurrency) * self.object_seconds


def run_scale(
    n: int,
    entries: int,
    latency: float,
    concurrency: int,
    resync_seconds: float,
    workdir: Path,
    *,
    measure_idle: bool = True,
) -> ScaleResult:
    fastly = FastlyEmulator(tokens=[TOKEN], latency=latency, seed=n)
    with bench(fastly, workdir) as b:
        start_operator(b, concurrency, [])
        rtt = kube_round_trip(b)
        cpu0 = _cpu_seconds(f"/proc/{b.process.pid}/stat") if b.process else 0.0
        kube_cpu0, fastly_cpu0 = _thread_cpu("kubernetes-emulator"), _thread_cpu("fastly-emulator")
        kube_start = len(list(b.kube))
        fastly.requests.clear()
        started = time.monotonic()
        apply_objects(b.kube, n, entries, f"{resync_seconds:g}s")
        applied = time.monotonic() - started
        interval = 0.1 if n <= 100 else 0.25

        def all_ready() -> bool:
            _sample_rss(b)
            objects = b.kube.store.objects("fastlysecretstores", NAMESPACE)
            return len(objects) == n and all(_ready(obj) for obj in objects)

        try:
            _wait(f"all {n} objects are Ready", all_ready, timeout=max(120.0, n * 0.5), interval=interval)
        except SystemExit:
            kept = Path(tempfile.gettempdir()) / f"scale-operator-{n}.log"
            kept.write_bytes(b.log.read_bytes())
            print(f"not all Ready: {dict(_reasons(b.kube))}; the operator's log: {kept}", file=sys.stderr)
            stop_operator(b)
            raise
        ready_at = time.monotonic()
        seconds = ready_at - started
        ramp, ramp_kube = _fastly_counts(fastly), _kube_counts(b.kube, kube_start)
        cpu = {
            "operator": _cpu_seconds(f"/proc/{b.process.pid}/stat") - cpu0 if b.process else 0.0,
            "kube emulator": _thread_cpu("kubernetes-emulator") - kube_cpu0,
            "fastly emulator": _thread_cpu("fastly-emulator") - fastly_cpu0,
        }
        status = _sample_rss(b)
        # Idle: one resync interval from here; each object resyncs about once in it (interval x U(0.9, 1.1)).
        fastly_mark, kube_mark = len(fastly.requests), len(list(b.kube))
        idle_started = time.monotonic()
        while time.monotonic() - idle_started < (resync_seconds if measure_idle else 0):
            time.sleep(1.0)
            _sample_rss(b)
        idle, idle_kube = _fastly_counts(fastly, fastly_mark), _kube_counts(b.kube, kube_mark)
        idle_seconds = time.monotonic() - idle_started
        idle_status = _sample_rss(b)
        not_ready = n - _reasons(b.kube)["Ready"]
        stop_operator(b)
        if not_ready:
            print(f"warning: {not_ready} objects left Ready during the idle interval", file=sys.stderr)
        # Anything the operator warned about (a retry, a failed call) explains a slow run: show it.
        warnings = [line for line in b.log.read_text().splitlines() if "[WARNING" in line or "[ERROR" in line]
        for line in warnings[:10]:
            print(f"operator log: {line}", file=sys.stderr)
        return ScaleResult(
            n=n,
            entries=entries,
            latency=latency,
            concurrency=concurrency,
            seconds_to_ready=seconds,
            apply_seconds=applied,
            ramp=ramp,
            ramp_kube=ramp_kube,
            idle_seconds=idle_seconds,
            idle=idle,
            idle_kube=idle_kube,
            rss_kb=status.get("VmRSS", 0),
            hwm_kb=max(status.get("VmHWM", 0), idle_status.get("VmHWM", 0)),
            idle_rss_kb=idle_status.get("VmRSS", 0),
            cpu=cpu,
            kube_rtt=rtt,
        )


def _row(*cells: object) -> None:
    print("| " + " | ".join(str(cell) for cell in cells) + " |")


def _header(*cells: str) -> None:
    _row(*cells)
    _row(*("---" for _ in cells))


def print_scale(results: list[ScaleResult]) -> None:
    print("\n### Time to Ready\n")
    _header(
        "objects",
        "entries",
        "all Ready (s)",
        "kube RTT (ms)",
        "bound (s)",
        "ratio",
        "operator CPU (s)",
        "operator CPU per object (ms)",
        "kube emulator CPU (s)",
        "fastly emulator CPU (s)",
    )
    for r in results:
        _row(
            r.n,
            r.n * r.entries,
            f"{r.seconds_to_ready:.1f}",
            f"{r.kube_rtt * 1000:.1f}",
            f"{r.bound_seconds:.1f}",
            f"{r.seconds_to_ready / r.bound_seconds:.2f}",
            f"{r.cpu['operator']:.1f}",
            f"{r.cpu['operator'] * 1000 / r.n:.0f}",
            f"{r.cpu['kube emulator']:.1f}",
            f"{r.cpu['fastly emulator']:.1f}",
        )
    print("\n### Fastly requests, first sync (measured / minimum)\n")
    _header(
        "objects",
        "store lookup (GET)",
        "store create (POST)",
        "entry list (GET)",
        "entry writes (PUT)",
        "client key (POST)",
        "signing key (GET)",
        "token record (GET)",
        "writes",
        "429",
    )
    for r in results:
        c, n = r.ramp, r.n
        _row(
            n,
            f"{c['store list/lookup (GET)']} / {n}",
            f"{c['store create (POST)']} / {n}",
            f"{c['entry list (GET)']} / {n}",
            f"{c['entry write (PUT)']} / {n * r.entries}",
            f"{c['client key (POST)']} / 1",
            f"{c['signing key (GET)']} / 1",
            f"{c['token record (GET)']} / 1",
            f"{c['writes']} / {n + n * r.entries + 1}",
            c["429"],
        )
    print("\n### Idle resync interval (nothing changed)\n")
    _header(
        "objects",
        "interval (s)",
        "store list pages (GET)",
        "store GETs",
        "entry lists (GET)",
        "Fastly writes",
        "status patches",
        "Secret GETs",
        "other kube requests",
    )
    for r in results:
        c, k = r.idle, r.idle_kube
        _row(
            r.n,
            f"{r.idle_seconds:.0f}",
            c["store list/lookup (GET)"],
            c["store GET"],
            c["entry list (GET)"],
            c["writes"],
            k["status patch"],
            k["Secret GET"],
            k["total"] - k["status patch"] - k["Secret GET"] - k["watch"],
        )
    print("\n### Operator memory\n")
    _header("objects", "VmRSS when all Ready (MB)", "VmHWM (MB)", "VmRSS after the idle interval (MB)")
    for r in results:
        _row(r.n, f"{r.rss_kb / 1024:.0f}", f"{r.hwm_kb / 1024:.0f}", f"{r.idle_rss_kb / 1024:.0f}")
    print("\n### Kubernetes requests, first sync\n")
    for r in results:
        print(f"- {r.n} objects: {dict(sorted(r.ramp_kube.items()))}")


# -- rate limited ---------------------------------------------------------------------------------------------


def run_rate_limited(n: int, entries: int, budget: int, window: float, latency: float, workdir: Path) -> dict[str, Any]:
    """Fastly's write limit scaled down: `budget` writes per `window` seconds. Counts requests per window."""
    fastly = FastlyEmulator(tokens=[TOKEN], latency=latency, write_budget=budget, budget_window=window, seed=7)
    log = StampedLog()
    fastly.requests = log
    with bench(fastly, workdir) as b:
        start_operator(b, 32, [])
        # Windows align to multiples of `window` since the epoch; start just after one begins.
        time.sleep(window - time.time() % window + 0.2)
        fastly.requests.clear()
        started_wall, started = time.time(), time.monotonic()
        apply_objects(b.kube, n, entries, "10m")
        seen_reasons: Counter[str] = Counter()
        done_at = None
        while time.monotonic() - started < window * (2 + (n * entries + n + 1) / budget):
            reasons = _reasons(b.kube)
            for reason in reasons:
                seen_reasons[reason] = max(seen_reasons[reason], reasons[reason])
            if reasons["Ready"] == n:
                done_at = time.monotonic()
                break
            time.sleep(0.25)
        # Per window: writes accepted, writes refused (429), requests sent while the budget was spent.
        windows: list[dict[str, Any]] = []
        requests, stamps = list(log), list(log.times)
        first_window = int(started_wall // window)
        for request, stamp in zip(requests, stamps, strict=False):
            index = int(stamp // window) - first_window
            while len(windows) <= index:
                windows.append(Counter())
            row = windows[index]
            spent = row["writes accepted"] >= budget  # the budget of this window was gone before this request
            row["total"] += 1
            row["requests while spent"] += spent
            row["writes while spent"] += spent and request.method not in ("GET", "HEAD")
            if request.method not in ("GET", "HEAD"):
                row["writes accepted" if request.status != 429 else "writes refused (429)"] += 1
        stop_operator(b)
        return {
            "n": n,
            "entries": n * entries,
            "budget": budget,
            "window": window,
            "seconds": (done_at - started) if done_at else None,
            "reasons seen": dict(seen_reasons),
            "windows": windows,
            "log": b.log,
        }


class StampedLog(list[Any]):
    """The emulator's request log, with when each request was served (the log itself has no times)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Any) -> None:
        self.times.append(time.time())
        super().append(item)

    def clear(self) -> None:
        self.times.clear()
        super().clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--entries", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per Fastly request")
    parser.add_argument("--max-concurrent-reconciles", type=int, default=32)
    parser.add_argument("--resync", type=float, default=0.0, help="idle interval in seconds (default: by N)")
    parser.add_argument("--no-idle", action="store_true", help="skip the idle resync interval (profiling)")
    parser.add_argument("--rate-limited", action="store_true", help="run the write-limit scenario instead")
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    print(f"# {os.uname().nodename}: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.rate_limited:
            n = args.objects[0] if args.objects != [10, 100, 1000] else 10
            limited = run_rate_limited(n, args.entries, args.budget, args.window, args.latency, Path(tmp))
            print(
                f"\n{limited['n']} objects, {limited['entries']} entries; "
                f"budget {limited['budget']} writes per {limited['window']:g} s"
            )
            print(f"all Ready after {limited['seconds']:.1f} s" if limited["seconds"] else "not all Ready in time")
            print(f"Ready reasons seen (max objects at once): {limited['reasons seen']}")
            print()
            _header(
                "window",
                "requests",
                "writes accepted",
                "writes refused (429)",
                "requests after the budget was spent",
                "of them writes",
            )
            for index, row in enumerate(limited["windows"]):
                _row(
                    index + 1,
                    row["total"],
                    row["writes accepted"],
                    row["writes refused (429)"],
                    row["requests while spent"],
                    row["writes while spent"],
                )
            return
        results = []
        for n in args.objects:
            resync = args.resync or (30.0 if n <= 100 else 60.0)
            workdir = Path(tmp) / f"n{n}"
            workdir.mkdir()
            result = run_scale(
                n,
                args.entries,
                args.latency,
                args.max_concurrent_reconciles,
                resync,
                workdir,
                measure_idle=not args.no_idle,
            )
            print(
                f"N={n}: all Ready in {result.seconds_to_ready:.1f} s (bound {result.bound_seconds:.1f} s)", flush=True
            )
            results.append(result)
        print_scale(results)
        if args.json:
            args.json.write_text(json.dumps([r.__dict__ for r in results], default=str, indent=2))


if __name__ == "__main__":
    main()
