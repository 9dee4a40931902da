"""JSON in and out: bodies read with orjson and refused with the one error shape, answers
written with orjson, revisions as ETags."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from ._problems import ApiError

__all__ = [
    "JSON",
    "JSON_PATCH",
    "MERGE_PATCH",
    "etag",
    "expected_revision",
    "json_body",
    "json_response",
    "jsonable",
    "object_body",
    "parse_json",
    "request_body",
]

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


def jsonable(value: Any) -> Any:
    """Models as their JSON form; containers of them too."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, Mapping):
        return {key: jsonable(item) for key, item in value.items()}
    return value


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(jsonable(value)), status, dict(headers or {}), media_type=JSON)


def etag(revision: int) -> dict[str, str]:
    return {"ETag": f'"{revision}"'}


def expected_revision(request: Request) -> int | None:
    """The revision an ``If-Match: "<revision>"`` header expects (None: no header, or
    ``*``)."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise ApiError(400, "bad_if_match", 'If-Match must be a revision: "<revision>"')
    return int(value)


_LONG_NUMBER = re.compile(rb"\d{19}")
"""Digits enough to be an integer past 64 bits, which orjson would turn into a float."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes) -> Any:
    """JSON as written: integers exact whatever their size, NaN and Infinity refused.
    Raises ValueError (`ApiError` 400 from `json_body`)."""
    if _LONG_NUMBER.search(data) is None:
        return orjson.loads(data)
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise ValueError("the JSON is nested too deeply") from exc


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def json_body(request: Request, accept: tuple[str, ...] = (JSON,)) -> Any:
    """The request's JSON body (415 for another media type, 400 if it does not parse)."""
    if _media_type(request) not in accept:
        raise ApiError(415, "unsupported_media_type", f"the body must be {' or '.join(accept)}")
    try:
        return parse_json(await request.body())
    except ValueError as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc


async def request_body(request: Request) -> tuple[str, Any]:
    """A body that may be a merge patch or a JSON Patch: (media type, parsed body)."""
    body = await json_body(request, (JSON, MERGE_PATCH, JSON_PATCH))
    return _media_type(request), body


def object_body(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(422, "validation_failed", f"the body must be a JSON object ({what})")
    return body
