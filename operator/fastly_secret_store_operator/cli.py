"""The `fastly-secret-store-operator` command: run the operator, the Fastly emulator, or the demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from fastly_secret_store_operator import __version__, fastly
from fastly_secret_store_operator.fastly import DEFAULT_ENDPOINT

_TRUE = {"1", "true", "yes", "on"}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastly-secret-store-operator",
        description="Fastly secret stores, declared as Kubernetes objects.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        type=_namespace,
        help="watch this namespace (an exact name; repeatable)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument("--standalone", action="store_true", help="do not coordinate with other replicas (peering)")
    run.add_argument(
        "--liveness", metavar="URL", type=_liveness_url, help="serve a health check, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument("--metrics-port", type=_port, metavar="N", help="serve Prometheus metrics on this port")
    run.add_argument("--kubeconfig", metavar="PATH", help="the kubeconfig to use (default: in-cluster, $KUBECONFIG)")
    run.add_argument("--context", metavar="NAME", help="the kubeconfig context to use (default: its current one)")
    run.add_argument(
        "--fastly-endpoint",
        type=_fastly_endpoint,
        default=os.environ.get("FASTLY_API_ENDPOINT", DEFAULT_ENDPOINT),
        help="the Fastly API (env FASTLY_API_ENDPOINT; default %(default)s)",
    )
    run.add_argument(
        "--trust-api-signing-key",
        action="store_true",
        default=_env_flag("FASTLY_USE_API_SIGNING_KEY"),
        help="trust whatever signing key the API serves instead of Fastly's pinned key (for the emulator; env "
        "FASTLY_USE_API_SIGNING_KEY)",
    )
    run.add_argument(
        "--operator-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        help="where the operator keeps its fingerprint key Secret and its leader-election Lease (env POD_NAMESPACE; "
        "default %(default)s)",
    )
    run.add_argument(
        "--max-concurrent-reconciles",
        type=_at_least_one,
        default=32,
        metavar="N",
        help="how many objects are reconciled at once (default %(default)s)",
    )
    # For tests that make Fastly slower than the client waits; undocumented on purpose.
    run.add_argument("--fastly-timeout", type=_positive_seconds, default=10.0, help=argparse.SUPPRESS)
    # For tests of lost creates: how long an unanswered create may still land (60 s); undocumented on purpose.
    run.add_argument("--create-grace", type=_positive_seconds, default=60.0, help=argparse.SUPPRESS)
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="run several replicas: the one holding the Lease fastly-secret-store-operator in the operator "
        "namespace reconciles, the others wait as standbys",
    )
    # For tests that must see a takeover in seconds; controller-runtime's defaults otherwise. Undocumented.
    run.add_argument("--leader-elect-lease-duration", type=_positive_seconds, default=15.0, help=argparse.SUPPRESS)
    run.add_argument("--leader-elect-renew-deadline", type=_positive_seconds, default=10.0, help=argparse.SUPPRESS)
    run.add_argument("--leader-elect-retry-period", type=_positive_seconds, default=2.0, help=argparse.SUPPRESS)
    run.add_argument("--log-format", choices=["text", "json"], default="text")
    run.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    run.add_argument("--debug", action="store_true", help="log at debug level, Kopf's internals included")

    emulator = commands.add_parser("emulator", help="run the local Fastly API emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8790)
    emulator.add_argument(
        "--token",
        action="append",
        default=[],
        help="accept this token (repeatable): TOKEN puts it in the default account, ACCOUNT:TOKEN in a named one; "
        "stores are visible to their account's tokens only. Default: any non-empty token, in the default account",
    )

    commands.add_parser("demo", help="run the operator against local emulators of Kubernetes and Fastly")
    return parser


def check_endpoint(url: str) -> str:
    """Plain http only to loopback (a token must never cross a network unencrypted); no credentials in the URL
    (it is logged). Exits saying why not."""
    problem = _endpoint_problem(url)
    if problem:
        raise SystemExit(f"--fastly-endpoint: {problem}")
    return url.rstrip("/")


def _endpoint_problem(url: str) -> str | None:
    try:
        parsed = fastly.check_endpoint(url)
    except ValueError as error:
        return str(error)
    except Exception:  # httpx's InvalidURL is no ValueError
        return f"{url!r} is not a URL"
    if parsed.userinfo:
        return "must not carry credentials: the token comes from each object's Secret"
    return None


def _fastly_endpoint(text: str) -> str:
    problem = _endpoint_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text.rstrip("/")


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _namespace(text: str) -> str:
    if any(mark in text for mark in "*?[]!"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: namespaces are exact names, not patterns; give --namespace once per namespace"
        )
    if len(text) > 63 or not _DNS_LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a namespace name (namespaces are exact names: DNS-1123 labels, lower-case letters, "
            "digits and '-', at most 63 characters)"
        )
    return text


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)")
    return port


def _liveness_url(text: str) -> str:
    try:
        parsed = urlsplit(text)
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL with a host and a port, e.g. http://0.0.0.0:8080/healthz"
        )
    return text


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _run(args: argparse.Namespace) -> int:
    from fastly_secret_store_operator.kube import StartupError
    from fastly_secret_store_operator.leader_election import LeadershipLost, LeaseTimings
    from fastly_secret_store_operator.operator import OperatorOptions, run_operator

    try:
        timings = LeaseTimings(
            lease_duration=args.leader_elect_lease_duration,
            renew_deadline=args.leader_elect_renew_deadline,
            retry_period=args.leader_elect_retry_period,
        )
    except ValueError as error:
        print(f"fastly-secret-store-operator: {error}", file=sys.stderr)
        return 2
    options = OperatorOptions(
        namespaces=tuple(args.namespace),
        all_namespaces=args.all_namespaces or not args.namespace,
        standalone=args.standalone,
        liveness=args.liveness,
        metrics_port=args.metrics_port,
        fastly_endpoint=args.fastly_endpoint,
        fastly_timeout=args.fastly_timeout,
        create_grace=args.create_grace,
        trust_api_signing_key=args.trust_api_signing_key,
        operator_namespace=args.operator_namespace,
        log_format=args.log_format,
        verbose=args.verbose,
        debug=args.debug,
        max_concurrent_reconciles=args.max_concurrent_reconciles,
        kubeconfig=args.kubeconfig,
        context=args.context,
        leader_elect=args.leader_elect,
        lease_timings=timings,
    )
    try:
        asyncio.run(run_operator(options))
    except StartupError as error:
        print(f"fastly-secret-store-operator: {error}", file=sys.stderr)
        return 1
    except LeadershipLost as error:
        # As controller-runtime: a replica that lost its lease exits, and comes back as a standby.
        print(f"fastly-secret-store-operator: lost the leader election: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _emulator(args: argparse.Namespace) -> int:
    from fastly_secret_store_operator.emulators.fastly import serve

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.token or None))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from fastly_secret_store_operator.demo import run_demo

    return asyncio.run(run_demo())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"run": _run, "emulator": _emulator, "demo": _demo}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
