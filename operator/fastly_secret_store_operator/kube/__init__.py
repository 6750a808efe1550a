"""The operator's own Kubernetes I/O: credentials, an async client on httpx, the calls it makes, the preflight.

Build it with `connect(credentials)`, credentials from `load_credentials(kubeconfig, context)` or
`from_connection_info(info)`."""

from __future__ import annotations

from fastly_secret_store_operator.kube.api import (
    FINGERPRINT_KEY_FIELD,
    GROUP,
    PLURAL,
    VERSION,
    KubeApi,
    secret_path,
    stores_path,
)
from fastly_secret_store_operator.kube.client import DEFAULT_CONNECTIONS, REQUEST_TIMEOUT, KubeClient, api_path
from fastly_secret_store_operator.kube.credentials import Credentials, CredentialsError, from_connection_info
from fastly_secret_store_operator.kube.credentials import load as load_credentials
from fastly_secret_store_operator.kube.errors import API_ERRORS, KubeError, KubeForbidden, StartupError
from fastly_secret_store_operator.kube.preflight import preflight


def connect(credentials: Credentials, *, connections: int = DEFAULT_CONNECTIONS) -> KubeClient:
    return KubeClient(credentials, connections=connections)


__all__ = [
    "API_ERRORS",
    "FINGERPRINT_KEY_FIELD",
    "GROUP",
    "PLURAL",
    "REQUEST_TIMEOUT",
    "VERSION",
    "Credentials",
    "CredentialsError",
    "KubeApi",
    "KubeClient",
    "KubeError",
    "KubeForbidden",
    "StartupError",
    "api_path",
    "connect",
    "from_connection_info",
    "load_credentials",
    "preflight",
    "secret_path",
    "stores_path",
]
