"""The in-memory object store behind the Kubernetes API emulator, with the semantics of a real API server.

It is plain synchronous Python under one lock, so tests may call it from any thread while the HTTP server
serves it; watchers are fed through their own event loops. Nothing here knows about HTTP or kmock."""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import copy
import datetime
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jsonpatch
import yaml

from fastly_secret_store_operator.emulators.kubernetes import schema as structural

Body = dict[str, Any]
PatchType = Literal["merge", "json", "strategic", "apply"]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GENERATED_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the server's: no vowels, no look-alikes

# Fields only the server sets; what a client sends for them is ignored (or compared, for resourceVersion).
_SYSTEM_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "selfLink",
)


class ApiError(Exception):
    """A refusal, carried to the client as a v1 Status with this HTTP code and reason."""

    def __init__(self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, dict(details or {})

    def status(self) -> Body:
        body: Body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        body |= {"message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


@dataclass(frozen=True)
class ResourceType:
    """One served resource (group, version, plural) and what the server knows about it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    status_subresource: bool = False
    schema: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)  # custom resources only
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified_plural(self) -> str:
        """How the server names the resource in messages: "secrets", "fastlysecretstores.fastly.operator.dev"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def is_custom(self) -> bool:
        return self.schema is not None


NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, status_subresource=True)
SECRETS = ResourceType("", "v1", "secrets", "Secret", namespaced=True)
EVENTS = ResourceType("", "v1", "events", "Event", namespaced=True, short_names=("ev",))
#: What leader election holds (`run --leader-elect`); a plain built-in object, updated with its resourceVersion.
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True)
CORE_RESOURCES = (NAMESPACES, SECRETS, EVENTS, LEASES)


def load_crd_resources(crd: Mapping[str, Any] | Path | str) -> list[ResourceType]:
    """The served versions of a CustomResourceDefinition (a dict, or a YAML file holding one or more)."""
    if isinstance(crd, Path | str):
        return [
            resource
            for document in yaml.safe_load_all(Path(crd).read_text())
            if document and document.get("kind") == "CustomResourceDefinition"
            for resource in load_crd_resources(document)
        ]
    spec, names = crd["spec"], crd["spec"]["names"]
    return [
        ResourceType(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            status_subresource="status" in version.get("subresources", {}),
            schema=version["schema"]["openAPIV3Schema"],
            singular=names.get("singular", ""),
            short_names=tuple(names.get("shortNames", ())),
            categories=tuple(names.get("categories", ())),
        )
        for version in spec["versions"]
        if version.get("served", True)
    ]


@dataclass(frozen=True)
class Selectors:
    """labelSelector and fieldSelector of a list or watch, parsed."""

    labels: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (key, operator, values)
    fields: tuple[tuple[str, bool, str], ...] = ()  # (path, equal?, value)

    @classmethod
    def parse(cls, label_selector: str | None = None, field_selector: str | None = None) -> Selectors:
        return cls(_parse_label_selector(label_selector or ""), _parse_field_selector(field_selector or ""))

    def match(self, obj: Mapping[str, Any]) -> bool:
        labels: Mapping[str, str] = obj.get("metadata", {}).get("labels") or {}
        for key, operator, values in self.labels:
            present = key in labels
            ok = {
                "exists": present,
                "!": not present,
                "in": present and labels[key] in values,
                "notin": not present or labels[key] not in values,
            }[operator]
            if not ok:
                return False
        return all((_field_value(obj, path) == value) == equal for path, equal, value in self.fields)


def _parse_label_selector(text: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    requirements = []
    # Commas separate requirements except inside "in (a, b)" sets.
    for part in re.findall(r"(?:[^,(]|\([^)]*\))+", text):
        part = part.strip()
        if set_match := re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", part):
            values = tuple(value.strip() for value in set_match[3].split(",") if value.strip())
            requirements.append((set_match[1], set_match[2], values))
        elif compare := re.fullmatch(r"([^\s!=]+)\s*(==|=|!=)\s*(\S*)", part):
            operator = "notin" if compare[2] == "!=" else "in"
            requirements.append((compare[1], operator, (compare[3],)))
        elif part.startswith("!"):
            requirements.append((part[1:].strip(), "!", ()))
        elif part:
            requirements.append((part, "exists", ()))
    return tuple(requirements)


def _parse_field_selector(text: str) -> tuple[tuple[str, bool, str], ...]:
    selectors = []
    for part in filter(None, (part.strip() for part in text.split(","))):
        parsed = re.fullmatch(r"([^!=]+)(==|=|!=)(.*)", part)
        if parsed is None:
            raise ApiError(400, "BadRequest", f"invalid field selector: {part!r}")
        selectors.append((parsed[1].strip(), parsed[2] != "!=", parsed[3].strip()))
    return tuple(selectors)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


@dataclass(frozen=True)
class WatchEvent:
    resource_version: int
    type: Literal["ADDED", "MODIFIED", "DELETED"]
    resource: ResourceType
    obj: Body
    old: Body | None  # the state before a MODIFIED, to tell when an object enters or leaves a selection


class Subscription:
    """One watch: the events of one resource (in one namespace, through selectors) since it started."""

    def __init__(self, resource: ResourceType, namespace: str | None, selectors: Selectors) -> None:
        self.resource, self.namespace, self.selectors = resource, namespace, selectors
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Body | None] = asyncio.Queue()  # None: the server is going away

    def offer(self, event: WatchEvent) -> None:
        """Queue what this watcher should see of the event, if anything (called under the store's lock)."""
        item = self.view(event)
        if item is not None:
            self.put(item)

    def view(self, event: WatchEvent) -> Body | None:
        """The watch event this watcher gets for a store event: None when it is outside its selection."""
        if event.resource != self.resource:
            return None
        if self.namespace is not None and event.obj.get("metadata", {}).get("namespace") != self.namespace:
            return None
        seen_before = event.old is not None and self.selectors.match(event.old)
        seen_now = self.selectors.match(event.obj)
        event_type: str = event.type
        if event.type == "MODIFIED" and seen_before != seen_now:
            event_type = "ADDED" if seen_now else "DELETED"  # it entered or left the selection
        elif not seen_now:
            return None
        return {"type": event_type, "object": event.obj}

    def put(self, item: Body | None) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class ObjectStore:
    """The objects of the declared resources and their history, as a real API server keeps them."""

    def __init__(
        self,
        resources: Iterable[ResourceType],
        namespaces: Iterable[str] = ("default",),
        watch_history: int = 10_000,
    ) -> None:
        self.resources = {(r.group, r.version, r.plural): r for r in resources}
        self._lock = threading.RLock()
        self._objects: dict[tuple[ResourceType, str | None, str], Body] = {}
        self._revision = 0
        self._history: collections.deque[WatchEvent] = collections.deque(maxlen=watch_history)
        self._forgotten_revision = 0  # events up to this revision have left the history: watching from there is 410
        self._subscriptions: set[Subscription] = set()
        self._change_listeners: set[Callable[[], None]] = set()
        for namespace in namespaces:
            self.create(NAMESPACES, {"metadata": {"name": namespace}})

    @property
    def resource_version(self) -> str:
        return str(self._revision)

    def resource(self, name: str | ResourceType) -> ResourceType:
        """Find a declared resource by plural, plural.group, group/version/plural, v1/plural or kind."""
        if isinstance(name, ResourceType):
            return name
        for resource in self.resources.values():
            names = {resource.plural, resource.qualified_plural, resource.kind, resource.singular}
            if name in (names - {""}) | {f"{resource.api_version}/{resource.plural}"}:
                return resource
        raise KeyError(f"no such resource: {name!r}; declared: {sorted(r.plural for r in self.resources.values())}")

    # Reading

    def get(self, resource: str | ResourceType, namespace: str | None, name: str) -> Body:
        resource = self.resource(resource)
        with self._lock:
            return copy.deepcopy(self._existing(resource, namespace, name))

    def objects(
        self, resource: str | ResourceType, namespace: str | None = None, selectors: Selectors | None = None
    ) -> list[Body]:
        """The objects of a resource, in one namespace or all (None), ordered as the server orders them."""
        resource, selectors = self.resource(resource), selectors or Selectors()
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (res, ns, _), obj in sorted(self._objects.items(), key=lambda item: (item[0][1] or "", item[0][2]))
                if res == resource and namespace in (None, ns) and selectors.match(obj)
            ]

    def list_body(self, resource: ResourceType, namespace: str | None, selectors: Selectors) -> Body:
        """The body of a list response: items, the list kind and the revision the list is as of."""
        with self._lock:
            items = self.objects(resource, namespace, selectors)
            revision = self.resource_version
        if not resource.is_custom:  # the server strips apiVersion and kind from built-in items
            for item in items:
                item.pop("apiVersion", None)
                item.pop("kind", None)
        return {
            "apiVersion": resource.api_version,
            "kind": f"{resource.kind}List",
            "metadata": {"resourceVersion": revision},
            "items": items,
        }

    # Writing

    def create(self, resource: str | ResourceType, body: Mapping[str, Any], namespace: str | None = None) -> Body:
        """POST: name or generateName, server metadata, defaults, pruning, validation; 409 if the name is taken."""
        resource = self.resource(resource)
        if not isinstance(body, Mapping):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        obj: Body = copy.deepcopy(dict(body))
        self._check_type(resource, obj)
        metadata: Body = obj.setdefault("metadata", {})
        namespace = self._request_namespace(resource, namespace, metadata)
        with self._lock:
            if resource.namespaced:
                self._existing(NAMESPACES, None, namespace or "")  # the server refuses objects in no namespace
                metadata["namespace"] = namespace
            else:
                metadata.pop("namespace", None)
            if not metadata.get("name") and metadata.get("generateName"):
                metadata["name"] = self._generated_name(resource, namespace, metadata["generateName"])
            for key in _SYSTEM_METADATA:
                metadata.pop(key, None)
            if resource.status_subresource and resource.is_custom:
                obj.pop("status", None)  # the main resource cannot set status; only /status can
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = _now()
            if resource.is_custom:
                metadata["generation"] = 1
            obj = self._admit(resource, obj, old=None)
            object_key = (resource, namespace, metadata["name"])
            if object_key in self._objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{resource.qualified_plural} "{metadata["name"]}" already exists',
                    self._details(resource, metadata["name"]),
                )
            return self._commit(resource, object_key, obj, old=None)

    def replace(
        self,
        resource: str | ResourceType,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        subresource: str | None = None,
    ) -> Body:
        """PUT: the whole object (or its status with subresource="status"); 409 on a stale resourceVersion."""
        resource = self.resource(resource)
        if not isinstance(body, Mapping):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        if resource.is_custom and not body.get("metadata", {}).get("resourceVersion"):
            raise self._invalid(
                resource,
                name,
                [_field("metadata.resourceVersion", "Invalid value: 0: must be specified for an update")],
            )
        with self._lock:
            return self._update(resource, namespace, name, copy.deepcopy(dict(body)), subresource)

    def patch(
        self,
        resource: str | ResourceType,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any] | list[Any],
        patch_type: PatchType | None = None,
        subresource: str | None = None,
    ) -> Body:
        """PATCH: a merge-patch (a dict) or a JSON-patch (a list); 422 when a JSON-patch `test` fails."""
        resource = self.resource(resource)
        patch_type = patch_type or ("json" if isinstance(patch, list) else "merge")
        if patch_type == "apply" or (patch_type == "strategic" and resource.is_custom):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json-patch+json, application/merge-patch+json"
                f"{'' if resource.is_custom else ', application/strategic-merge-patch+json'}",
            )
        with self._lock:
            current = self._existing(resource, namespace, name)
            if patch_type == "json":
                patched = _json_patch(current, patch)
            elif isinstance(patch, Mapping):
                # Strategic merge on built-ins is served as a merge-patch: good enough for what we patch.
                patched = _merge_patch(current, patch)
            else:
                raise ApiError(400, "BadRequest", "a merge-patch must be a JSON object")
            return self._update(resource, namespace, name, patched, subresource)

    def delete(
        self,
        resource: str | ResourceType,
        namespace: str | None,
        name: str,
        preconditions: Mapping[str, Any] | None = None,
    ) -> Body:
        """DELETE: gone at once without finalizers; else marked with deletionTimestamp until they are removed."""
        resource = self.resource(resource)
        with self._lock:
            old = self._existing(resource, namespace, name)
            for key, value in (preconditions or {}).items():
                if value is not None and old["metadata"].get(key) != value:
                    raise self._conflict(
                        resource,
                        name,
                        f"Precondition failed: {key} in precondition: {value}, "
                        f"{key} in object meta: {old['metadata'].get(key)}",
                    )
            if old["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(old)
            obj = copy.deepcopy(old)
            finalized = bool(obj["metadata"].get("finalizers"))
            if finalized:
                obj["metadata"]["deletionTimestamp"] = _now()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                if "generation" in obj["metadata"]:  # marking for deletion is a change controllers must see
                    obj["metadata"]["generation"] += 1
            object_key = (resource, namespace if resource.namespaced else None, name)
            return self._commit(resource, object_key, obj, old=old, gone=not finalized)

    # Watching

    def subscribe(
        self, resource: ResourceType, namespace: str | None, selectors: Selectors, since: str | None
    ) -> tuple[Subscription, list[Body], str]:
        """Start a watch: the subscription that gets the events to come, those to send first, and the revision
        they bring the watcher up to.

        Without `since` (or "0") the first events are ADDED for each existing object; with `since`, the events
        after that revision, or a 410 Expired error when the history no longer reaches back that far."""
        with self._lock:
            subscription = Subscription(resource, namespace, selectors)
            first: list[Body] = []
            if since in (None, "", "0"):
                for obj in self.objects(resource, namespace, selectors):
                    first.append({"type": "ADDED", "object": obj})
            elif not since.isdigit() or int(since) < self._forgotten_revision:
                expired = ApiError(410, "Expired", f"too old resource version: {since} ({self._revision})")
                return subscription, [{"type": "ERROR", "object": expired.status()}], self.resource_version
            else:
                for event in self._history:
                    item = subscription.view(event) if event.resource_version > int(since) else None
                    if item is not None:
                        first.append(item)
            self._subscriptions.add(subscription)
            return subscription, first, self.resource_version

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition()` holds, checking it again after each change to any object. For tests, bounded
        by `asyncio.timeout()`: a wait on a state, with no polling interval to tune."""
        changed, loop = asyncio.Event(), asyncio.get_running_loop()

        def notify() -> None:
            loop.call_soon_threadsafe(changed.set)

        with self._lock:
            self._change_listeners.add(notify)
        try:
            while not condition():
                await changed.wait()
                changed.clear()
        finally:
            with self._lock:
                self._change_listeners.discard(notify)

    def close_watches(self) -> None:
        """End every watch stream (the server is stopping)."""
        with self._lock:
            for subscription in self._subscriptions:
                subscription.put(None)
            self._subscriptions.clear()

    # Internals (called under the lock)

    def _existing(self, resource: ResourceType, namespace: str | None, name: str) -> Body:
        obj = self._objects.get((resource, namespace if resource.namespaced else None, name))
        if obj is None:
            raise ApiError(
                404,
                "NotFound",
                f'{resource.qualified_plural} "{name}" not found',
                self._details(resource, name),
            )
        return obj

    def _update(
        self, resource: ResourceType, namespace: str | None, name: str, new: Body, subresource: str | None
    ) -> Body:
        if subresource not in (None, "status") or (subresource == "status" and not resource.status_subresource):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = namespace if resource.namespaced else None
        old = self._existing(resource, namespace, name)
        metadata: Body = new.setdefault("metadata", {})
        if metadata.get("name", name) != name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})",
            )
        if metadata.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]):
            raise self._conflict(
                resource,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if subresource == "status":
            # A /status write changes status and nothing else.
            obj = copy.deepcopy(old)
            obj.pop("status", None)
            if "status" in new:
                obj["status"] = new["status"]
        else:
            self._check_type(resource, new)
            obj = new
            for key in (*_SYSTEM_METADATA, "name", "namespace"):
                obj["metadata"].pop(key, None)
                if key in old["metadata"]:
                    obj["metadata"][key] = old["metadata"][key]
            if resource.status_subresource:
                obj.pop("status", None)  # a write to the main resource ignores status
                if "status" in old:
                    obj["status"] = copy.deepcopy(old["status"])
            added = set(obj["metadata"].get("finalizers") or ()) - set(old["metadata"].get("finalizers") or ())
            if old["metadata"].get("deletionTimestamp") and added:
                raise self._invalid(
                    resource,
                    name,
                    [
                        structural.FieldError(
                            "metadata.finalizers",
                            "FieldValueForbidden",
                            f"Forbidden: no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers {json.dumps(sorted(added))}",
                        )
                    ],
                )
        obj = self._admit(resource, obj, old=old)
        if resource.is_custom and _spec_of(obj, resource) != _spec_of(old, resource):
            obj["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if obj == old:
            return copy.deepcopy(old)  # a no-op write changes nothing: no new resourceVersion, no event
        # Removing the last finalizer of an object marked for deletion deletes it.
        gone = bool(obj["metadata"].get("deletionTimestamp")) and not obj["metadata"].get("finalizers")
        return self._commit(resource, (resource, namespace, name), obj, old=old, gone=gone)

    def _admit(self, resource: ResourceType, obj: Body, old: Body | None) -> Body:
        """Type-specific normalisation, then the CRD schema: prune, default, validate."""
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        name = obj["metadata"].get("name", "")
        errors = _name_errors(resource, name)
        if resource.kind == "Secret":
            _normalise_secret(obj)
        elif resource.kind == "Namespace":
            obj.setdefault("status", {"phase": "Active"})
        if resource.schema is not None:
            structural.prune(obj, resource.schema)
            structural.apply_defaults(obj, resource.schema)
            errors += structural.validate(obj, old, resource.schema)
        if errors:
            raise self._invalid(resource, name, errors)
        return obj

    def _commit(
        self,
        resource: ResourceType,
        key: tuple[ResourceType, str | None, str],
        obj: Body,
        old: Body | None,
        *,
        gone: bool = False,
    ) -> Body:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        if gone:
            del self._objects[key]
            self._publish(WatchEvent(self._revision, "DELETED", resource, obj, old))
        else:
            self._objects[key] = obj
            self._publish(WatchEvent(self._revision, "ADDED" if old is None else "MODIFIED", resource, obj, old))
        return copy.deepcopy(obj)

    def _publish(self, event: WatchEvent) -> None:
        if len(self._history) == self._history.maxlen:
            self._forgotten_revision = self._history[0].resource_version
        self._history.append(event)
        for subscription in self._subscriptions:
            subscription.offer(event)
        for notify in self._change_listeners:
            notify()

    def _generated_name(self, resource: ResourceType, namespace: str | None, prefix: str) -> str:
        while True:
            name = prefix + "".join(secrets.choice(_GENERATED_SUFFIX_ALPHABET) for _ in range(5))
            if (resource, namespace, name) not in self._objects:
                return name

    @staticmethod
    def _request_namespace(resource: ResourceType, namespace: str | None, metadata: Mapping[str, Any]) -> str | None:
        if not resource.namespaced:
            return None
        body_namespace = metadata.get("namespace")
        if namespace is not None and body_namespace not in (None, "", namespace):
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        namespace = namespace or body_namespace
        if not namespace:
            raise ApiError(400, "BadRequest", f"{resource.kind} is namespaced: a namespace is required")
        return str(namespace)

    @staticmethod
    def _check_type(resource: ResourceType, obj: Mapping[str, Any]) -> None:
        for key, expected in (("apiVersion", resource.api_version), ("kind", resource.kind)):
            if obj.get(key) not in (None, expected):
                raise ApiError(
                    400,
                    "BadRequest",
                    f"the API version in the data ({obj.get('apiVersion')}) or the "
                    f"kind ({obj.get('kind')}) does not match the expected {resource.api_version}, "
                    f"{resource.kind}",
                )

    @staticmethod
    def _details(resource: ResourceType, name: str) -> Body:
        return {"name": name, "group": resource.group, "kind": resource.plural}

    def _conflict(self, resource: ResourceType, name: str, why: str) -> ApiError:
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {resource.qualified_plural} "{name}": {why}',
            self._details(resource, name),
        )

    @staticmethod
    def _invalid(resource: ResourceType, name: str, errors: list[structural.FieldError]) -> ApiError:
        messages = [error.message for error in errors]
        summary = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
        group_kind = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
        causes = [{"reason": error.reason, "message": error.detail, "field": error.field} for error in errors]
        return ApiError(
            422,
            "Invalid",
            f'{group_kind} "{name}" is invalid: {summary}',
            {"name": name, "group": resource.group, "kind": resource.kind, "causes": causes},
        )


def _field(path: str, detail: str) -> structural.FieldError:
    return structural.FieldError(path, "FieldValueInvalid", detail)


def _spec_of(obj: Mapping[str, Any], resource: ResourceType) -> Body:
    """What bumps generation: everything but metadata (and status, when it is a subresource)."""
    ignored = {"metadata", "status"} if resource.status_subresource else {"metadata"}
    return {key: value for key, value in obj.items() if key not in ignored}


def _name_errors(resource: ResourceType, name: str) -> list[structural.FieldError]:
    if not name:
        return [
            structural.FieldError(
                "metadata.name", "FieldValueRequired", "Required value: name or generateName is required"
            )
        ]
    if resource.kind == "Event":
        return []
    if resource.kind == "Namespace" and not _DNS_LABEL.match(name):
        rule = (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character"
        )
        return [_field("metadata.name", f"Invalid value: {json.dumps(name)}: {rule}")]
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        rule = (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character"
        )
        return [_field("metadata.name", f"Invalid value: {json.dumps(name)}: {rule}")]
    return []


def _normalise_secret(secret: Body) -> None:
    """stringData folds into data (base64) and is never stored; data values must be base64; type defaults."""
    secret.setdefault("type", "Opaque")
    data: dict[str, str] = secret.get("data") or {}
    for value in data.values():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError) as error:
            # The server fails to decode the request at all: 400, before any validation.
            message = 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data'
            raise ApiError(400, "BadRequest", message) from error
    for key, value in (secret.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    if data:
        secret["data"] = data


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge-patch: objects merge, null deletes, everything else (lists too) replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _json_patch(target: Body, patch: Any) -> Body:
    if not isinstance(patch, list):
        raise ApiError(400, "BadRequest", "a JSON-patch must be a JSON array of operations")
    try:
        result: Body = jsonpatch.apply_patch(target, patch, in_place=False)
    except (jsonpatch.InvalidJsonPatch, TypeError, KeyError) as error:
        raise ApiError(400, "BadRequest", f"invalid JSON-patch: {error}") from error
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
        # The server words a failed `test` (or a missing path) as an invalid patch: 422, not 409.
        raise ApiError(
            422,
            "Invalid",
            f'"" is invalid: patch: Invalid value: {json.dumps(json.dumps(patch))}: {error}',
            {"causes": [{"reason": "FieldValueInvalid", "message": str(error), "field": "patch"}]},
        ) from error
    return result


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
