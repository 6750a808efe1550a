"""What `fastly-secret-store-operator run` was asked to do; handed to the handlers through Kopf's memo."""

from __future__ import annotations

from dataclasses import dataclass

from fastly_secret_store_operator.sessions import FastlyOptions

FINALIZER = "fastly.operator.dev/finalizer"
ANNOTATION_PREFIX = "fastly.operator.dev"
#: Setting this annotation (to any new value, e.g. a timestamp) asks for a reconcile now.
RECONCILE_REQUESTED_ANNOTATION = f"{ANNOTATION_PREFIX}/reconcile-requested-at"
DEFAULT_FINGERPRINT_SECRET = "fastly-secret-store-operator-fingerprint-key"  # noqa: S105 - a name, not a key


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    fastly: FastlyOptions
    operator_namespace: str = "default"
    fingerprint_secret: str = DEFAULT_FINGERPRINT_SECRET
    kubeconfig: str | None = None
    namespaced: bool = False
    namespaces: tuple[str, ...] = ()
    #: How many objects are reconciled at once; the rest wait their turn (bounds Fastly and API server load).
    max_concurrent_reconciles: int = 32
    #: Upper bound, in seconds, on the wait before retrying after a failure that heals on its own.
    max_backoff: float = 300.0
    #: Wait, in seconds, before retrying a stalled object when nothing it reads has changed.
    stalled_retry: float = 300.0
    #: Seconds a store create whose answer was lost may still land before its name may be created again.
    create_grace: float = 60.0
