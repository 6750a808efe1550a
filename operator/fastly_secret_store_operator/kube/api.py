"""The few Kubernetes API calls the operator makes itself, beyond what Kopf does for it."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from fastly_secret_store_operator.kube.client import KubeClient, api_path
from fastly_secret_store_operator.kube.errors import KubeError
from fastly_secret_store_operator.reconcile.fingerprint import KEY_BYTES

logger = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "fastly.operator.dev", "v1alpha1", "fastlysecretstores"
FINGERPRINT_KEY_FIELD = "key"
MERGE_PATCH = "application/merge-patch+json"


def secret_path(namespace: str, name: str | None = None) -> str:
    return api_path("api", "v1", "namespaces", namespace, "secrets", *([name] if name is not None else []))


def stores_path(namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
    """fastlysecretstores: every namespace's when `namespace` is None, else one namespace's, or one object."""
    scope = ("namespaces", namespace) if namespace is not None else ()
    rest = [part for part in (name, subresource) if part is not None]
    return api_path("apis", GROUP, VERSION, *scope, PLURAL, *rest)


class KubeApi:
    """Reads Secrets, writes FastlySecretStore status. Owns `client`: `aclose()` closes it."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The Secret's data, None when there is no such Secret. Raises KubeError (`.forbidden` for a 403)."""
        try:
            body = await self.client.get_json(secret_path(namespace, name))
        except KubeError as error:
            if error.missing:
                return None
            raise
        data = body.get("data") or {}
        return {str(key): base64.b64decode(value) for key, value in data.items()}

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """Merge-patch the status subresource; an object already gone needs no status."""
        try:
            await self.client.request(
                "PATCH",
                stores_path(namespace, name, "status"),
                body={"status": dict(patch)},
                content_type=MERGE_PATCH,
            )
        except KubeError as error:
            if not error.missing:
                raise

    async def fingerprint_key(self, namespace: str, name: str) -> bytes:
        """The operator's HMAC key, from its own Secret; created on first start."""
        data = await self.read_secret(namespace, name)
        if data is None:
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "fastly-secret-store-operator"}},
                "data": {FINGERPRINT_KEY_FIELD: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()},
            }
            try:
                await self.client.request("POST", secret_path(namespace), body=body)
                logger.info("Created the fingerprint key Secret %s/%s", namespace, name)
            except KubeError as error:
                if error.status != 409:  # another replica won the race: read theirs
                    raise
            data = await self.read_secret(namespace, name)
        key = (data or {}).get(FINGERPRINT_KEY_FIELD)
        if key is None or len(key) < KEY_BYTES:
            raise RuntimeError(
                f"Secret {namespace}/{name} must hold at least {KEY_BYTES} random bytes under the key "
                f"{FINGERPRINT_KEY_FIELD!r}; delete it to let the operator create a new one"
            )
        return key

    async def aclose(self) -> None:
        await self.client.aclose()


__all__ = ["FINGERPRINT_KEY_FIELD", "GROUP", "PLURAL", "VERSION", "KubeApi"]
