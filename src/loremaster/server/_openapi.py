"""Request bodies as OpenAPI documents them (the routes read bodies themselves, to refuse
bad JSON and wrong media types with the one error shape)."""

from __future__ import annotations

from typing import Any

__all__ = ["OBJECT_BODY", "PATCH_BODY", "body"]


def body(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``openapi_extra`` declaring a required body in each media type given."""
    content = {media_type: {"schema": schema} for media_type, schema in schemas.items()}
    return {"requestBody": {"required": True, "content": content}}


OBJECT_BODY = body({"application/json": {"type": "object"}})
PATCH_BODY = body(
    {
        "application/json": {"type": "object", "description": "an RFC 7396 merge patch"},
        "application/merge-patch+json": {"type": "object"},
        "application/json-patch+json": {
            "type": "array",
            "items": {"type": "object"},
            "description": "RFC 6902 operations",
        },
    }
)
