"""The JSON Schema of each context type, generated from the models and published.

`loremaster schema export` writes them; a dict is checked against its type's schema with
the ``jsonschema`` library, so every error points at its exact place.
"""

from __future__ import annotations

import copy
import functools
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import jsonschema

from ..models import ContextType, context_class
from ._issues import Severity, ValidationIssue

__all__ = ["SCHEMA_DIALECT", "export_schemas", "schema_for", "schema_issues"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_SHORTHAND = {
    "type": "object",
    "description": 'The shorthand {"role": "user", "content": "text"} (or a list of parts).',
    "properties": {
        "role": {"$ref": "#/$defs/MessageRole"},
        "content": {
            "anyOf": [
                {"type": "string"},
                {"type": "null"},
                {"type": "array", "items": {"$ref": "#/$defs/MessagePart"}},
            ]
        },
        "id": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "metadata": {"type": "object"},
        "seq": {"type": ["integer", "null"]},
    },
    "required": ["role", "content"],
    "additionalProperties": False,
}


@functools.cache
def _schema(context_type: ContextType) -> dict[str, Any]:
    schema = context_class(context_type).model_json_schema(mode="validation")
    definitions = schema.get("$defs", {})
    if "Message" in definitions:
        parts = definitions["Message"]["properties"]["parts"]["items"]
        definitions["MessagePart"] = parts
        definitions["Message"] = {"anyOf": [definitions["Message"], _SHORTHAND]}
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:loremaster:schema:{context_type.value}",
        **schema,
    }


def schema_for(context_type: ContextType | str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a context type; a copy, yours to change."""
    return copy.deepcopy(_schema(ContextType(context_type)))


def export_schemas() -> dict[str, dict[str, Any]]:
    return {kind.value: schema_for(kind) for kind in ContextType}


@functools.cache
def _validator(context_type: ContextType) -> jsonschema.protocols.Validator:
    schema = _schema(context_type)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def _pointer(parts: Iterator[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _most_relevant(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Inside anyOf/oneOf, the alternative the value came closest to (fewest failures, a
    tag that matched), and its deepest failure: "'id' is a required property" at
    /messages/2/parts/0, not "is not valid under any of the given schemas" at /messages/2."""
    while error.context:
        alternatives: dict[Any, list[jsonschema.ValidationError]] = defaultdict(list)
        for sub in error.context:
            alternatives[sub.relative_schema_path[0]].append(sub)
        closest = min(
            alternatives.values(),
            key=lambda errors: (len(errors), all(e.validator == "const" for e in errors)),
        )
        error = max(closest, key=lambda e: len(e.absolute_path))
    return error


def schema_issues(value: Any, context_type: ContextType) -> list[ValidationIssue]:
    """Every place `value` breaks its type's schema (deepest first within a branch)."""
    issues = []
    for found in _validator(context_type).iter_errors(value):
        error = _most_relevant(found)
        path = _pointer(iter(error.absolute_path))
        code = (
            "context.unknown_permission" if path.startswith("/permissions/") else "schema.invalid"
        )
        issues.append(
            ValidationIssue(severity=Severity.ERROR, code=code, message=error.message, path=path)
        )
    return sorted(issues, key=lambda issue: issue.path)
