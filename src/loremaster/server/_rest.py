"""What the REST routers share: request bodies read into typed models (and documented
from them), the error answers every route documents, and the answer to a creation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from ._http import json_body, json_response, object_body
from ._openapi import body

__all__ = ["ERRORS", "RequestBody", "created", "documented", "read"]


class RequestBody(BaseModel):
    """A JSON object body: the fields declared, no others."""

    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    code: str = Field(description="stable, machine-readable")
    message: str
    details: dict[str, Any]


class ErrorBody(BaseModel):
    error: Problem


ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "the request was refused; nothing changed"},
    "5XX": {"model": ErrorBody, "description": "the server or its database failed"},
}
"""Every route's error answers: ``{"error": {"code", "message", "details"}}``."""

Body = TypeVar("Body", bound=RequestBody)


def _optional(model: type[RequestBody]) -> bool:
    """Whether every field has a default: then the body may be left out."""
    return not any(field.is_required() for field in model.model_fields.values())


def _inlined(schema: Any, definitions: Mapping[str, Any]) -> Any:
    """`schema` with each ``$ref`` to its own ``$defs`` replaced by the definition (an
    OpenAPI document would read those references from its root)."""
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    reference = schema.get("$ref", "")
    if reference.startswith("#/$defs/"):
        rest = {key: value for key, value in schema.items() if key != "$ref"}
        return _inlined({**definitions[reference.removeprefix("#/$defs/")], **rest}, definitions)
    return {key: _inlined(value, definitions) for key, value in schema.items()}


def documented(model: type[RequestBody]) -> dict[str, Any]:
    """``openapi_extra`` declaring `model` as the route's JSON body."""
    schema = model.model_json_schema()
    extra = body({"application/json": _inlined(schema, schema.pop("$defs", {}))})
    extra["requestBody"]["required"] = not _optional(model)
    return extra


async def read(request: Request, model: type[Body]) -> Body:
    """The request's JSON object body as `model` (400, 415 or 422 with the one error
    shape when it is not); with no body, `model`'s defaults if it has them all."""
    if _optional(model) and not await request.body():
        return model()
    what = (model.__doc__ or model.__name__).strip().splitlines()[0].rstrip(".")
    value = object_body(await json_body(request), what)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from exc


def created(value: Any, location: str, headers: Mapping[str, str] | None = None) -> Response:
    """201 with `value` and where the new thing is."""
    return json_response(value, 201, {**(headers or {}), "Location": location})
