"""Before Kopf starts: can the operator reach the API server, is it who it says, may it list its objects?
Each failure becomes one line saying which, for `run` to print and exit 1 (Kopf itself would retry forever,
printing tracebacks)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from fastly_secret_store_operator.kube.api import GROUP, PLURAL, VERSION, stores_path
from fastly_secret_store_operator.kube.client import REQUEST_TIMEOUT, KubeClient, api_path
from fastly_secret_store_operator.kube.errors import KubeError, StartupError

#: Read timeout of the preflight calls: with the connect timeout, `run` fails well within 15 s.
PREFLIGHT_READ_TIMEOUT = 8.0


#: The cluster-scoped kind the operator also watches (FastlyAccount).
ACCOUNTS = "fastlyaccounts"


async def preflight(client: KubeClient, namespaces: Sequence[str] = ()) -> None:
    """List fastlysecretstores (limit 1) in each namespace, or cluster-wide when `namespaces` is empty, and
    fastlyaccounts: Kopf would wait forever for a kind the API server does not serve (an upgrade that skipped the
    new CRD), reconciling nothing."""
    timeout = httpx.Timeout(PREFLIGHT_READ_TIMEOUT, connect=REQUEST_TIMEOUT[0])
    for namespace in namespaces or (None,):
        try:
            await client.request("GET", stores_path(namespace), query={"limit": 1}, timeouts=timeout)
        except KubeError as error:
            raise StartupError(explain(error, client, namespace)) from None
    try:
        await client.request("GET", api_path("apis", GROUP, VERSION, ACCOUNTS), query={"limit": 1}, timeouts=timeout)
    except KubeError as error:
        raise StartupError(explain(error, client, None, plural=ACCOUNTS)) from None


def explain(error: KubeError, client: KubeClient, namespace: str | None, *, plural: str = PLURAL) -> str:
    server, source = client.server, client.credentials.source
    where = f"in namespace {namespace}" if namespace else "in all namespaces"
    if plural != PLURAL:
        where = "(cluster-scoped)"
    if error.status is None:
        return f"cannot reach the Kubernetes API server at {server} ({error.reason}; credentials from {source})"
    if error.status == 401:
        return f"the Kubernetes API server at {server} refused the credentials from {source} (HTTP 401 Unauthorized)"
    if error.status == 403:
        return (
            f"not allowed to list {plural}.{GROUP} {where} (HTTP 403 Forbidden): "
            "the operator's RBAC must allow get, list, watch and patch on them"
        )
    if error.status == 404:
        return f"the API server at {server} does not serve {plural}.{GROUP} (HTTP 404): install the CRDs from crds/"
    return f"the Kubernetes API server at {server} answered {error} when listing {plural} {where}"
