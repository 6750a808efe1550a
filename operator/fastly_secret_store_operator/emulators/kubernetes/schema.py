"""What a real API server does with a custom resource's structural schema on every write: prune the fields
the schema does not declare, apply `default`s, and validate (OpenAPI v3 via jsonschema, list-type keys,
x-kubernetes-validations CEL rules with `oldSelf` on update), reporting errors the way the server words them."""

from __future__ import annotations

import copy
import datetime
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cel
import jsonschema  # type: ignore[import-untyped]  # no types-jsonschema in the test extra

Schema = Mapping[str, Any]

# ObjectMeta fields a client may send; the server drops any other key under metadata.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
        "selfLink",
    }
)

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class FieldError:
    """One cause of a 422, as the server's field.Error renders it."""

    field: str  # "spec.entries[1].name"; "<nil>" for the object itself
    reason: str  # FieldValueInvalid, FieldValueRequired, ...
    detail: str  # "Required value", 'Unsupported value: "x": supported values: ...'

    @property
    def message(self) -> str:
        return f"{self.field}: {self.detail}"


def prune(obj: dict[str, Any], schema: Schema) -> None:
    """Drop, in place, what the schema does not declare, and nulls where it does not allow them."""
    for key in list(obj):
        if key == "metadata" and isinstance(obj[key], dict):
            for meta_key in set(obj[key]) - OBJECT_META_FIELDS:
                del obj[key][meta_key]
        elif key not in ("apiVersion", "kind", "metadata"):
            _prune_property(obj, key, schema)


def _prune_value(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        for key in list(value):
            _prune_property(value, key, schema)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _prune_value(item, schema["items"])


def _prune_property(obj: dict[str, Any], key: str, schema: Schema) -> None:
    properties: Mapping[str, Schema] = schema.get("properties", {})
    additional = schema.get("additionalProperties")
    sub_schema: Schema | None = properties.get(key)
    if sub_schema is None and isinstance(additional, Mapping):
        sub_schema = additional
    if sub_schema is None:
        if not schema.get("x-kubernetes-preserve-unknown-fields") and additional is not True:
            del obj[key]
        return
    if obj[key] is None and not sub_schema.get("nullable"):
        del obj[key]
        return
    _prune_value(obj[key], sub_schema)


def apply_defaults(value: Any, schema: Schema) -> None:
    """Set, in place, each absent property that declares a `default` (recursively, as the server does)."""
    if isinstance(value, dict):
        for key, sub_schema in schema.get("properties", {}).items():
            if key not in value and "default" in sub_schema:
                value[key] = copy.deepcopy(sub_schema["default"])
            if key in value and key != "metadata":
                apply_defaults(value[key], sub_schema)
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            for key in set(value) - set(schema.get("properties", {})):
                apply_defaults(value[key], additional)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(item, schema["items"])


def validate(obj: Mapping[str, Any], old: Mapping[str, Any] | None, schema: Schema) -> list[FieldError]:
    """All the reasons the server would refuse `obj` (an update of `old`, or a create if None)."""
    errors = [_field_error(error) for error in _validator(_freeze(schema)).iter_errors(obj)]
    errors += list(_list_type_errors(obj, schema, ""))
    errors += list(_cel_errors(_cel_view(obj), _cel_view(old) if old is not None else None, schema, ""))
    return sorted(errors, key=lambda error: error.field)


def _freeze(schema: Schema) -> str:
    return json.dumps(schema, sort_keys=True)


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    try:
        datetime.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return False
    return True


_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("date-time")(_is_date_time)


@functools.lru_cache(maxsize=16)
def _validator(frozen_schema: str) -> jsonschema.Draft4Validator:
    # Kubernetes' OpenAPI v3.0 schemas are closest to draft 4 (exclusiveMinimum is a boolean there).
    return jsonschema.Draft4Validator(json.loads(frozen_schema), format_checker=_FORMATS)


def _path(parts: Iterator[str | int] | list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


_GO_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}


def _type_name(value: Any) -> str:
    return "null" if value is None else _GO_TYPES.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    # Like Go's %#v for scalars; the server names containers only by their type.
    return json.dumps(value) if not isinstance(value, dict | list) else json.dumps(_type_name(value))


def _field_error(error: jsonschema.ValidationError) -> FieldError:
    field = _path(list(error.absolute_path)) or "<nil>"
    value, rule, kind = error.instance, error.validator_value, error.validator
    if kind == "required":
        missing = [name for name in rule if isinstance(value, dict) and name not in value]
        name = missing[0] if missing else "?"
        return FieldError(f"{field}.{name}" if field != "<nil>" else name, "FieldValueRequired", "Required value")
    if kind == "enum":
        allowed = ", ".join(json.dumps(choice) for choice in rule)
        return FieldError(
            field,
            "FieldValueNotSupported",
            f"Unsupported value: {_shown(value)}: supported values: {allowed}",
        )
    if kind == "maxLength":
        return FieldError(field, "FieldValueTooLong", f"Too long: may not be more than {rule} bytes")
    if kind == "maxItems":
        return FieldError(field, "FieldValueTooMany", f"Too many: {len(value)}: must have at most {rule} items")
    details = {
        "pattern": f"{field} in body should match '{rule}'",
        "minLength": f"{field} in body should be at least {rule} chars long",
        "minItems": f"{field} in body should have at least {rule} items",
        "minimum": f"{field} in body should be greater than or equal to {rule}",
        "maximum": f"{field} in body should be less than or equal to {rule}",
        "type": f"{field} in body must be of type {rule}: {json.dumps(_type_name(value))}",
        "format": f"{field} in body must be of type {rule}: {_shown(value)}",
    }
    detail = details.get(str(kind), error.message)
    shown = json.dumps(_type_name(value)) if kind == "type" else _shown(value)
    return FieldError(field, "FieldValueInvalid", f"Invalid value: {shown}: {detail}")


def _list_type_errors(value: Any, schema: Schema, path: str) -> Iterator[FieldError]:
    """Duplicate keys in `x-kubernetes-list-type: map` lists and duplicate items in `set` lists."""
    if isinstance(value, dict):
        for key, sub_schema in schema.get("properties", {}).items():
            if key in value:
                yield from _list_type_errors(value[key], sub_schema, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        keys: list[str] = schema.get("x-kubernetes-list-map-keys", [])
        seen: list[Any] = []
        for index, item in enumerate(value):
            identity = {key: item.get(key) for key in keys} if list_type == "map" and isinstance(item, dict) else item
            if list_type in ("map", "set") and identity in seen:
                shown = _go_map(identity) if isinstance(identity, dict) else _shown(identity)
                yield FieldError(f"{path}[{index}]", "FieldValueDuplicate", f"Duplicate value: {shown}")
            seen.append(identity)
            yield from _list_type_errors(item, schema.get("items", {}), f"{path}[{index}]")


def _go_map(value: Mapping[str, Any]) -> str:
    return "map[string]interface {}{" + ", ".join(f'"{k}":{json.dumps(v)}' for k, v in value.items()) + "}"


def _cel_view(obj: Mapping[str, Any]) -> dict[str, Any]:
    # At the root, CEL rules see only metadata.name and metadata.generateName.
    view = dict(obj)
    metadata = obj.get("metadata", {})
    view["metadata"] = {key: metadata[key] for key in ("name", "generateName") if key in metadata}
    return view


def _cel_errors(value: Any, old: Any, schema: Schema, path: str) -> Iterator[FieldError]:
    for rule in schema.get("x-kubernetes-validations", []):
        error = _check_rule(rule, value, old, path)
        if error is not None:
            yield error
    if isinstance(value, dict):
        for key, sub_schema in schema.get("properties", {}).items():
            if key in value:
                old_value = old.get(key) if isinstance(old, dict) else None
                yield from _cel_errors(value[key], old_value, sub_schema, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and "items" in schema:
        old_items = _correlate(value, old, schema)
        for index, item in enumerate(value):
            yield from _cel_errors(item, old_items[index], schema["items"], f"{path}[{index}]")


def _correlate(items: list[Any], old: Any, schema: Schema) -> list[Any]:
    """The old item each new item is a newer version of: only map-lists correlate, by their keys."""
    if schema.get("x-kubernetes-list-type") != "map" or not isinstance(old, list):
        return [None] * len(items)
    keys: list[str] = schema.get("x-kubernetes-list-map-keys", [])

    def identity(item: Any) -> Any:
        return tuple(item.get(key) for key in keys) if isinstance(item, dict) else None

    by_identity = {identity(item): item for item in old}
    return [by_identity.get(identity(item)) for item in items]


@functools.lru_cache(maxsize=64)
def _compiled(rule: str) -> tuple[cel.Program, bool]:
    program = cel.compile(rule)
    return program, "oldSelf" in program.variables()


def _check_rule(rule: Mapping[str, Any], value: Any, old: Any, path: str) -> FieldError | None:
    program, is_transition_rule = _compiled(rule["rule"])
    if is_transition_rule and old is None:
        return None  # transition rules run only on updates, when there is an old value to compare with
    variables = {"self": value, "oldSelf": old} if is_transition_rule else {"self": value}
    try:
        passed = program.execute(variables)
        message = rule.get("message") or f"failed rule: {rule['rule']}"
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        passed, message = (
            False,
            f"no such key: {error.args[0]}" if isinstance(error, KeyError) else str(error),
        )
    if passed is True:
        return None
    field = path + rule["fieldPath"] if rule.get("fieldPath") else path or "<nil>"
    reason = str(rule.get("reason", "FieldValueInvalid"))
    return FieldError(field, reason, f"Invalid value: {_shown(_type_name(value))}: {message}")
