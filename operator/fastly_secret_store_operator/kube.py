"""The few Kubernetes API calls the operator makes itself, beyond what Kopf does for it.

The `kubernetes` client is synchronous; its calls run in worker threads so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import kubernetes
import urllib3

from fastly_secret_store_operator.reconcile.fingerprint import KEY_BYTES

logger = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "fastly.operator.dev", "v1alpha1", "fastlysecretstores"
FINGERPRINT_KEY_FIELD = "key"
#: What a call to the API server raises when it fails: an error status (a 409, a 5xx), or no answer at all.
API_ERRORS: tuple[type[Exception], ...] = (kubernetes.client.ApiException, urllib3.exceptions.HTTPError)
#: (connect, read) seconds for every call: a silently dropped connection must fail, not hang a sync loop.
REQUEST_TIMEOUT = (5.0, 30.0)


def load_config(kubeconfig: str | None = None, *, connections: int | None = None) -> kubernetes.client.ApiClient:
    """The in-cluster service account when there is one, else the usual kubeconfig. `connections`: the most
    requests in flight at once (one per thread making calls); a smaller pool would open and discard a connection
    for every request beyond it."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    if connections is not None:
        configuration.connection_pool_maxsize = connections
    return kubernetes.client.ApiClient(configuration)


def call(
    api_client: kubernetes.client.ApiClient,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    read_timeout: float = REQUEST_TIMEOUT[1],
) -> Any:
    """One request to the API server, through the client's configuration and credentials, without its generated
    API classes: CoreV1Api alone costs 22 MiB of memory to import. Returns the raw urllib3 response, unread, to
    stream (a watch); `request` reads one whole. Raises ApiException on an error status. Blocking: run it in a
    thread."""
    method, url, header_params, serialized, _ = api_client.param_serialize(
        method,
        path,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": "application/json", **(headers or {})},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(
        method, url, header_params=header_params, body=serialized, _request_timeout=(REQUEST_TIMEOUT[0], read_timeout)
    )
    if not 200 <= response.status < 300:
        _finish(response.response)
        raise kubernetes.client.ApiException(status=response.status, reason=response.reason)
    return response.response


def request(api_client: kubernetes.client.ApiClient, method: str, path: str, **options: Any) -> bytes:
    """`call`, with the response body read in full and the connection handed back to the pool."""
    response = call(api_client, method, path, **options)
    try:
        return bytes(response.data)
    except BaseException:
        response.close()  # read part way (a timeout): this connection must not serve another request
        raise
    finally:
        response.release_conn()


def _finish(response: urllib3.BaseHTTPResponse) -> None:
    # The client never preloads a body: a connection released with its answer unread would be handed to the next
    # request with that answer still in it (http.client's ResponseNotReady, or a new connection every time).
    try:
        response.drain_conn()
    finally:
        response.release_conn()


def status_of(error: Exception) -> int | None:
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def is_forbidden(error: Exception) -> bool:
    return status_of(error) == 403


def describe(error: Exception) -> str:
    """A short description of a failed call; never the response body (it may echo what was sent)."""
    status = getattr(error, "status", None)
    return f"HTTP {status} {getattr(error, 'reason', '') or ''}".strip() if status else type(error).__name__


def _missing(error: kubernetes.client.ApiException) -> bool:
    return getattr(error, "status", None) == 404


class KubeApi:
    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self._api = api_client

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        try:
            # The raw JSON, not a V1Secret: building the client's model objects cost more CPU than the request.
            body = await asyncio.to_thread(self._read_secret_json, namespace, name)
        except kubernetes.client.ApiException as error:
            if _missing(error):
                return None
            raise
        return {key: base64.b64decode(value) for key, value in (body.get("data") or {}).items()}

    def _read_secret_json(self, namespace: str, name: str) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(request(self._api, "GET", f"/api/v1/namespaces/{namespace}/secrets/{name}"))
        return body

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """Merge-patch the status subresource; an object already gone needs no status."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
        try:
            await asyncio.to_thread(
                request,
                self._api,
                "PATCH",
                path,
                body={"status": dict(patch)},
                headers={"Content-Type": "application/merge-patch+json"},
            )
        except kubernetes.client.ApiException as error:
            if not _missing(error):
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
                await asyncio.to_thread(
                    request, self._api, "POST", f"/api/v1/namespaces/{namespace}/secrets", body=body
                )
                logger.info("Created the fingerprint key Secret %s/%s", namespace, name)
            except kubernetes.client.ApiException as error:
                if getattr(error, "status", None) != 409:  # another replica won the race: read theirs
                    raise
            data = await self.read_secret(namespace, name)
        key = (data or {}).get(FINGERPRINT_KEY_FIELD)
        if key is None or len(key) < KEY_BYTES:
            raise RuntimeError(
                f"Secret {namespace}/{name} must hold at least {KEY_BYTES} random bytes under the key "
                f"{FINGERPRINT_KEY_FIELD!r}; delete it to let the operator create a new one"
            )
        return key
