"""Helpers the reconcile tests share: Secrets in a dict, an object view, a create-mark counter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastly_secret_store_operator.reconcile.object import ObjectView

TOKEN = "token-canary-7f3a9c"
NAMESPACE = "shop"


class DictSecrets:
    """Secrets by (namespace, name); counts reads so tests can see what was read."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, bytes]] = {}

    def put(self, name: str, namespace: str = NAMESPACE, **values: bytes | str) -> None:
        self.data[(namespace, name)] = {
            key: value.encode() if isinstance(value, str) else value for key, value in values.items()
        }

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        return self.data.get((namespace, name))


def view(
    spec: Mapping[str, Any] | None = None, status: Mapping[str, Any] | None = None, generation: int = 1
) -> ObjectView:
    base: dict[str, Any] = {"apiTokenSecretRef": {"name": "fastly-api-token"}}
    base.update(spec or {})
    return ObjectView(NAMESPACE, "checkout", generation, base, dict(status or {}), uid="uid-checkout")


class Marks:
    """Counts how often reconcile asked to persist 'a create is in flight'."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, requested_at: str) -> None:
        self.count += 1
