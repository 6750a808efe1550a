"""Reading the Kubernetes Secrets an object names: its API token and its entry values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from fastly_secret_store_operator.reconcile.errors import ReconcileError
from fastly_secret_store_operator.reconcile.spec import SecretKeyRef

#: Printable ASCII without spaces: anything else cannot be a token, and must never reach an HTTP header.
_TOKEN = re.compile(r"[\x21-\x7e]+")


class SecretReader(Protocol):
    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The Secret's decoded data, or None when it does not exist."""


async def read_token(reader: SecretReader, namespace: str, ref: SecretKeyRef) -> str:
    data = await reader.read_secret(namespace, ref.secret)
    where = f"Secret {namespace}/{ref.secret}"
    if data is None:
        raise ReconcileError(
            "CredentialsNotFound",
            f"{where} (spec.apiTokenSecretRef) does not exist: create it with the Fastly API token under the key "
            f"{ref.key!r}",
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
