"""The HTTP face of the Kubernetes API emulator: a kmock handler that serves the object store as a real API
server would, with kmock's discovery, request log and reaction DSL (faults can still be injected with
`emulator["patch", kmock.resource(...)] << 500`, which win over the emulation)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

import aiohttp.web
import attrs
import kmock
from kmock import Response  # type: ignore[attr-defined]  # exported, but left out of __all__
from typing_extensions import override

from fastly_secret_store_operator.emulators.kubernetes.store import (
    CORE_RESOURCES,
    ApiError,
    Body,
    ObjectStore,
    PatchType,
    ResourceType,
    Selectors,
    load_crd_resources,
)

if TYPE_CHECKING:
    import kopf
    import kubernetes

_THREAD_TIMEOUT = 30.0  # seconds to start or stop in a thread; a healthy local server needs milliseconds
_PATCH_TYPES: dict[str, PatchType] = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


def project_crds() -> list[Path]:
    """The CRDs in this project's crds/ directory (present in a source checkout)."""
    for parent in Path(__file__).resolve().parents:
        crds = parent / "crds"
        if (parent / "pyproject.toml").is_file() and crds.is_dir():
            return sorted(crds.glob("*.yaml"))  # load_crd_resources skips what is not a CRD
    raise FileNotFoundError("no crds/ directory above this package: pass crds=[...] to KubernetesEmulator")


@dataclass(frozen=True)
class ApiPath:
    """What a resource URL names: /api/v1/namespaces/NS/PLURAL/NAME/SUBRESOURCE and the /apis/GROUP/... kind."""

    group: str
    version: str
    plural: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    @classmethod
    def parse(cls, path: str) -> ApiPath | None:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        # namespaces/NS/... is a scope, except namespaces/NS/status, which is a namespace's own subresource.
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3 or not all(rest):
            return None
        plural, name, subresource = (*rest, None, None)[:3]
        return cls(group, version, cast(str, plural), namespace, name, subresource)


@attrs.define(kw_only=True, eq=False)
class KubernetesEmulator(kmock.KubernetesScaffold):
    """A Kubernetes API server in memory, on 127.0.0.1, for the operator's tests and demo.

    Serves v1 namespaces, secrets and events, coordination.k8s.io/v1 leases and the custom resources of `crds`
    (by default this project's crds/), with a real server's metadata, status subresource, schema, finalizer and
    watch semantics.
    Read and change objects directly through `emulator.store` (thread-safe, same semantics as HTTP).

    Point Kopf at it with a login handler (or a kubeconfig from `write_kubeconfig()` read by
    `kopf.login_with_kubeconfig`, or by `kopf run` in a subprocess with KUBECONFIG set)::

        emulator = KubernetesEmulator()
        with emulator.run_in_thread():  # see below why a thread of its own

            @kopf.on.login(registry=registry)
            def login(**_: Any) -> kopf.ConnectionInfo:
                return emulator.connection_info()

            await kopf.operator(registry=registry, namespaces=["default"], standalone=True, stop_flag=stop)

    Serve it from its own thread when Kopf runs in the same process: Kopf takes every task created in its loop
    after it starts for its own, and on stopping waits 5 s for them (the emulator's connection handlers among
    them), then cancels them. Keep Kopf's state in annotations (`kopf.AnnotationsProgressStorage`,
    `kopf.AnnotationsDiffBaseStorage`): `status.kopf` is not in the CRD, so it is pruned, as on a real cluster.
    """

    crds: Sequence[Path | str | Mapping[str, Any]] | None = None  # None: this project's crds/
    namespaces: Sequence[str] = ("default",)  # created up front, as a fresh cluster has them
    watch_history: int = 10_000  # events kept for resuming watches; older resourceVersions get 410 Gone

    store: ObjectStore = attrs.field(init=False, repr=False)
    server_url: str | None = attrs.field(default=None, init=False)  # while running: http://127.0.0.1:PORT
    _runner: aiohttp.web.BaseRunner | None = attrs.field(default=None, init=False)
    _builtin_payloads: tuple[Any, ...] = attrs.field(default=(), init=False, repr=False)

    @override
    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        crds = project_crds() if self.crds is None else self.crds
        resources = [*CORE_RESOURCES, *(resource for crd in crds for resource in load_crd_resources(crd))]
        self.store = ObjectStore(resources, self.namespaces, self.watch_history)
        for resource in resources:
            self.resources[f"{resource.api_version}/{resource.plural}"] = kmock.ResourceInfo(
                kind=resource.kind,
                namespaced=resource.namespaced,
                singular=resource.singular or resource.kind.lower(),
                verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
                shortnames=set(resource.short_names),
                categories=set(resource.categories),
                subresources={"status"} if resource.status_subresource else set(),
            )
        self.fallback[_names_a_resource] << self._serve
        # The reactions served before any test adds its own: the scaffold's discovery and our emulation (last).
        self._builtin_payloads = tuple(self._payloads)

    # Running

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: any free port); returns the base URL."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        await super().__aenter__()
        runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self), shutdown_timeout=1.0)
        await runner.setup()
        try:
            await aiohttp.web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            await super().__aexit__(None, None, None)
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.server_url = (
            f"http://[{bound_host}]:{bound_port}" if ":" in bound_host else f"http://{bound_host}:{bound_port}"
        )
        return self.server_url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner, self.server_url = self._runner, None, None
            self.store.close_watches()  # watch streams end, or shutdown would wait for them
            await runner.cleanup()
            await super().__aexit__(None, None, None)

    @override
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    @override
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve from a thread and event loop of its own while the block runs (sync callers); yields the URL."""
        ready: Future[tuple[str, asyncio.AbstractEventLoop, asyncio.Event]] = Future()

        async def serve() -> None:
            stopping = asyncio.Event()
            try:
                url = await self.start(host, port)
            except BaseException as error:
                ready.set_exception(error)
                return
            ready.set_result((url, asyncio.get_running_loop(), stopping))
            try:
                await stopping.wait()
            finally:
                await self.stop()

        thread = threading.Thread(target=asyncio.run, args=(serve(),), name="kubernetes-emulator", daemon=True)
        thread.start()
        url, loop, stopping = ready.result(timeout=_THREAD_TIMEOUT)
        try:
            yield url
        finally:
            loop.call_soon_threadsafe(stopping.set)
            thread.join(_THREAD_TIMEOUT)

    # Connecting

    def _base_url(self) -> str:
        if self.server_url is None:
            raise RuntimeError("the emulator is not running: start() it first")
        return self.server_url

    def connection_info(self) -> kopf.ConnectionInfo:
        """What a `@kopf.on.login()` handler returns to make Kopf talk to this emulator."""
        import kopf

        return kopf.ConnectionInfo(server=self._base_url(), default_namespace="default")

    def write_kubeconfig(self, path: Path | str) -> Path:
        """A kubeconfig whose current context is this emulator (for `kopf run`, kubectl, the kubernetes client)."""
        name = "kubernetes-emulator"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": self._base_url()}}],
            # Any token will do: the emulator does not authenticate, but clients want some credentials.
            "users": [{"name": name, "user": {"token": "emulator"}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
            "current-context": name,
        }
        path = Path(path)
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        return path

    def client_configuration(self) -> kubernetes.client.Configuration:
        """Configures the `kubernetes` client: `kubernetes.client.ApiClient(emulator.client_configuration())`."""
        import kubernetes

        configuration = kubernetes.client.Configuration()
        configuration.host = self._base_url()
        configuration.api_key = {"authorization": "emulator"}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return configuration

    # Serving

    @override
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw_request.path.rstrip("/") != "/api/v1/namespaces":
            return await super().__call__(raw_request)
        # kmock 0.8's path parser crashes on the bare namespaces collection: describe that request ourselves.
        body = await raw_request.read()
        request = kmock.Request(
            id=len(self._requests),
            method=raw_request.method,
            url=raw_request.url,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            body=body,
            text=body.decode(errors="replace"),
            data=json.loads(body) if body else None,
            resource=kmock.resource("", "v1", "namespaces"),
            raw_request=raw_request,
        )
        self._requests.append(request)  # reactions only see requests the handler has logged
        return await self._handle(request)

    @override
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # kmock finds the reaction for a request by re-filtering its whole request log for every reaction: a
        # cost per request that grows with every request served (quadratic in total; minutes of CPU for 1,000
        # objects). While no reaction (a fault) has been added, a request naming a resource can only reach our
        # emulation, the scaffold's discovery reactions matching other paths only: serve it directly.
        payloads = self._payloads
        if (
            len(payloads) == len(self._builtin_payloads)
            and all(a is b for a, b in zip(payloads, self._builtin_payloads, strict=True))
            and _names_a_resource(request)
        ):
            emulation: Any = payloads[-1]
            response: aiohttp.web.StreamResponse = await emulation(request)
            return response
        return await super()._handle(request)

    @override
    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        payload = await super()._serve_version(request)
        # kmock says "/v1" for the core group; kubectl and clients expect "v1".
        if isinstance(payload, dict) and payload.get("groupVersion", "").startswith("/"):
            payload["groupVersion"] = payload["groupVersion"][1:]
        return payload

    async def _serve(self, request: kmock.Request) -> kmock.Payload:
        target = ApiPath.parse(request.url.path)
        assert target is not None  # the fallback's criterion checked it
        try:
            status, payload = await self._dispatch(request, self._resource(target), target)
        except ApiError as error:
            status, payload = error.code, error.status()
        # Always a fresh status: kmock keeps the status of a returned Response on the reaction for later ones.
        return Response(status=status, headers={"Content-Type": "application/json"}, payload=payload)

    def _resource(self, target: ApiPath) -> ResourceType:
        resource = self.store.resources.get((target.group, target.version, target.plural))
        if resource is None or (target.namespace is not None and not resource.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return resource

    async def _dispatch(
        self, request: kmock.Request, resource: ResourceType, target: ApiPath
    ) -> tuple[int, kmock.Payload]:
        method, params, store = request.method.value, request.params, self.store
        namespace = target.namespace if resource.namespaced else None
        if target.name is None:
            if target.subresource is not None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            selectors = Selectors.parse(params.get("labelSelector"), params.get("fieldSelector"))
            if method == "GET" and params.get("watch", "").lower() in ("true", "1"):
                return 200, self._watch(resource, namespace, selectors, params)
            if method == "GET":
                return 200, store.list_body(resource, namespace, selectors)
            if method == "POST":
                return 201, store.create(resource, _object(request.data), namespace)
        else:
            name, subresource = target.name, target.subresource
            if method == "GET":
                if subresource not in (None, "status") or (subresource and not resource.status_subresource):
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return 200, store.get(resource, namespace, name)
            if method == "PUT":
                return 200, store.replace(resource, namespace, name, _object(request.data), subresource)
            if method == "PATCH":
                content_type = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
                patch_type = _PATCH_TYPES.get(content_type.split(";")[0].strip())
                if patch_type is None:
                    raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
                return 200, store.patch(resource, namespace, name, request.data, patch_type, subresource)
            if method == "DELETE" and subresource is None:
                options = request.data if isinstance(request.data, dict) else {}
                return 200, store.delete(resource, namespace, name, options.get("preconditions"))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    async def _watch(
        self, resource: ResourceType, namespace: str | None, selectors: Selectors, params: Mapping[str, str]
    ) -> AsyncIterator[kmock.Payload]:
        yield b""  # send the headers now: a client waits for them before it reads events
        initial_events = params.get("sendInitialEvents") == "true"
        since = None if initial_events else params.get("resourceVersion")
        subscription, first, revision = self.store.subscribe(resource, namespace, selectors, since)
        try:
            for event in first:
                yield event
            if first and first[-1]["type"] == "ERROR":
                return  # the server closes the stream after an error event
            if initial_events:
                end = {"resourceVersion": revision, "annotations": {"k8s.io/initial-events-end": "true"}}
                bookmark = {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": end}
                yield {"type": "BOOKMARK", "object": bookmark}
            timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
            async with asyncio.timeout(timeout):
                while (item := await subscription.queue.get()) is not None:
                    yield item
        except TimeoutError:
            return  # timeoutSeconds: the server ends the stream, the client watches again
        finally:
            self.store.unsubscribe(subscription)


def _names_a_resource(request: kmock.Request) -> bool:
    return ApiPath.parse(request.url.path) is not None


def _object(data: Any) -> Body:
    if not isinstance(data, dict):
        raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
    return data
