"""Reading the Kubernetes Secrets an object names: its API token and its entry values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.spec import SecretKeyRef

#: Printable ASCII without spaces: anything else cannot be a token, and must never reach an HTTP header.
_TOKEN = re.compile(r"[\x21-\x7e]+")


class SecretReadError(Exception):
    """A Secret could not be read: the operator may not (`forbidden`), or the API server did not answer."""

    def __init__(self, namespace: str, name: str, *, forbidden: bool, detail: str) -> None:
        self.namespace, self.name, self.forbidden = namespace, name, forbidden
        if forbidden:
            message = (
                f"the operator may not read Secret {namespace}/{name} ({detail}): let its ServiceAccount get "
                f"secrets in namespace {namespace} (the chart and deploy/ RBAC grant it for watched namespaces)"
            )
        else:
            message = f"reading Secret {namespace}/{name} failed ({detail}); retrying"
        super().__init__(message)
        self.message = message


class SecretReader(Protocol):
    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The Secret's decoded data, or None when it does not exist; raises SecretReadError."""


async def read_token(
    reader: SecretReader, namespace: str, ref: SecretKeyRef, *, field: str = "spec.apiTokenSecretRef"
) -> str:
    """The token under `ref` in `namespace`; `field` names the field that points there, for messages."""
    where = f"Secret {namespace}/{ref.secret}"
    try:
        data = await reader.read_secret(namespace, ref.secret)
    except SecretReadError as error:
        if error.forbidden:
            raise ReconcileError("SecretForbidden", f"{error.message} ({field})") from None
        raise
    if data is None:
        raise ReconcileError(
            "CredentialsNotFound",
            f"{where} ({field}) does not exist: create it with the Fastly API token under the key {ref.key!r}",
        )
    raw = data.get(ref.key)
    token = raw.decode("utf-8", "replace").strip() if raw is not None else ""
    if token and not _TOKEN.fullmatch(token):
        raise ReconcileError(
            "CredentialsNotFound",
            f"{where} key {ref.key!r} does not hold a Fastly API token (it has characters no token has): put the "
            "token there, with nothing around it",
        )
    if not token:
        keys = ", ".join(sorted(data)) or "none"
        raise ReconcileError(
            "CredentialsNotFound",
            f"{where} has no non-empty key {ref.key!r} (its keys: {keys}): put the Fastly API token there, or set "
            "spec.apiTokenSecretRef.key",
        )
    return token
