"""What every tool, resource and prompt acts with, and how results and errors travel."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from ..document import validation_failed
from ..errors import LoremasterError
from ..manager import ContextManager
from ..translation import ContextTranslator

__all__ = ["Bridge", "as_json", "error_body", "json_text", "parse_arguments"]

log = logging.getLogger("loremaster.mcp")

A = TypeVar("A", bound=BaseModel)


@dataclass(frozen=True)
class Bridge:
    """The manager the bridge calls, the user every call acts as (None: trusted, as the
    CLI without ``--user``), and whether each connection gets a session context."""

    manager: ContextManager
    user_id: str | None = None
    track_session: bool = False

    @cached_property
    def translator(self) -> ContextTranslator:
        """Window fitting with the manager's model registry (CONTEXT_MODELS)."""
        return ContextTranslator(self.manager.settings)


def as_json(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json")
    return dumped


def json_text(value: Any) -> str:
    """JSON as a model reads it in a text block: compact, in order, non-ASCII as is."""
    return orjson.dumps(value).decode()


def parse_arguments(kind: type[A], arguments: dict[str, Any], what: str) -> A:
    """Arguments checked against their model: `ValidationFailed` naming each bad one."""
    try:
        return kind.model_validate(arguments)
    except ValidationError as exc:
        raise validation_failed(f"invalid arguments for {what}", exc) from exc


def error_body(exc: Exception) -> dict[str, Any]:
    """``{"code", "message", "details"}``: a library error by its code; anything else,
    which is a bug, as ``internal_error`` (logged, its text not shown)."""
    if isinstance(exc, LoremasterError):
        return {"code": exc.code, "message": exc.message, "details": exc.details}
    log.error("unexpected error in the MCP bridge", exc_info=exc)
    return {"code": "internal_error", "message": "internal error (logged)", "details": {}}
