"""The messages a WebSocket client sends (docs/protocol.md), read strictly: a wrong type,
a missing or unknown field is an error answered with ``validation_failed``."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..models import ConflictStrategy
from ._http import parse_json
from ._problems import ApiError

__all__ = [
    "Auth",
    "ClientMessage",
    "MessageRefused",
    "Ping",
    "Presence",
    "Subscribe",
    "Unsubscribe",
    "Update",
    "read_message",
]

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
RequestId = Annotated[str, Field(max_length=200)] | Int64
"""Any message may carry one; the answers to it echo it."""
ContextId = Annotated[str, Field(min_length=1, max_length=200)]
Revision = Annotated[int, Field(ge=0)]


class _Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    request_id: RequestId | None = None


class Auth(_Message):
    type: Literal["auth"]
    access_token: Annotated[str, Field(min_length=1, max_length=8192)]


class Subscribe(_Message):
    type: Literal["subscribe"]
    context_id: ContextId
    since_revision: Revision | None = None


class Unsubscribe(_Message):
    type: Literal["unsubscribe"]
    context_id: ContextId


class Update(_Message):
    type: Literal["update"]
    request_id: RequestId
    context_id: ContextId
    changes: dict[str, Any] | list[dict[str, Any]]
    expected_revision: Revision | None = None
    strategy: Annotated[ConflictStrategy, Field(strict=False)] | None = None
    lock_token: Int64 | None = None
    branch: Annotated[str, Field(min_length=1, max_length=200)] = "main"


class Presence(_Message):
    type: Literal["presence"]
    context_id: ContextId
    viewing: Annotated[str, Field(max_length=1000)] | None = None
    typing: bool = False


class Ping(_Message):
    type: Literal["ping"]


ClientMessage = Auth | Subscribe | Unsubscribe | Update | Presence | Ping

_READER: TypeAdapter[ClientMessage] = TypeAdapter(
    Annotated[ClientMessage, Field(discriminator="type")]
)


MESSAGE_TYPES = tuple(
    get_args(kind.model_fields["type"].annotation)[0] for kind in get_args(ClientMessage)
)


class MessageRefused(ApiError):
    """A frame that is not a message of the protocol; `request_id` is the one it carried,
    if any, for the error answer to echo."""

    def __init__(
        self, code: str, message: str, raw: Any = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(400 if code == "malformed_json" else 422, code, message, details)
        self.request_id = _request_id_of(raw)


def _request_id_of(raw: Any) -> str | int | None:
    if not isinstance(raw, dict):
        return None
    value = raw.get("request_id")
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return value if isinstance(value, str) and len(value) <= 200 else None


def _issues(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "path": "/" + "/".join(str(p) for p in error["loc"][1:]),
            "message": error["msg"],
            "code": error["type"],
        }
        for error in exc.errors(include_url=False)
    ]


def read_message(text: str) -> ClientMessage:
    """The message a text frame holds (`MessageRefused` if it holds none)."""
    try:
        raw = parse_json(text.encode("utf-8", "surrogatepass"))
    except ValueError as exc:
        raise MessageRefused("malformed_json", f"the message is not valid JSON: {exc}") from exc
    try:
        return _READER.validate_python(raw)
    except ValidationError as exc:
        kind = raw.get("type") if isinstance(raw, dict) else None
        message = (
            f"the {kind} message is not valid"
            if kind in MESSAGE_TYPES
            else f"a message is a JSON object whose type is one of {', '.join(MESSAGE_TYPES)}"
        )
        details = {"issues": _issues(exc)}
        raise MessageRefused("validation_failed", message, raw, details) from exc
