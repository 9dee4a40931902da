"""Requests and responses as the JSON that crosses the wire, whatever objects an
application handed its SDK; and which failures another provider may be tried after."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["as_json", "listed", "status_of", "transient"]

_TRANSPORT_LIBRARIES = frozenset({"httpx", "httpx2", "httpcore", "aiohttp", "anyio"})
_RETRYABLE_STATUSES = frozenset({408, 429})


def as_json(value: Any, omitted: tuple[type, ...] = ()) -> Any:
    """`value` as plain JSON: SDK models dumped as they would be sent (unset and None
    fields left out), mappings and sequences copied, values of the `omitted` types (an
    SDK's "not given" markers) dropped from mappings."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True, by_alias=False)
    if isinstance(value, Mapping):
        return {
            str(key): as_json(item, omitted)
            for key, item in value.items()
            if not isinstance(item, omitted)
        }
    if isinstance(value, (list, tuple)):
        return [as_json(item, omitted) for item in value]
    return value


def listed(body: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """`body` with the named fields made lists, should the application have passed an
    iterator (which the SDK and loremaster could not both read)."""
    fixed = dict(body)
    for name in names:
        value = fixed.get(name)
        if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping, list)):
            fixed[name] = list(value)
    return fixed


def status_of(error: BaseException) -> int | None:
    """The HTTP status a provider's error carries, if any."""
    for name in ("status_code", "code", "status"):
        status = getattr(error, name, None)
        if isinstance(status, int) and not isinstance(status, bool):
            return status
    return None


def transient(error: BaseException, connection_errors: tuple[type[BaseException], ...]) -> bool:
    """Whether another provider is worth trying after `error`: a rate limit, an overload,
    a server error, a timeout, a connection that failed or dropped. Not a request the
    provider refused (400, 401, 403, 404, 422): another would refuse it too, or the
    application must fix it."""
    status = status_of(error)
    if status is not None:
        return status in _RETRYABLE_STATUSES or status >= 500
    if isinstance(error, (ConnectionError, TimeoutError, *connection_errors)):
        return True
    return type(error).__module__.split(".")[0] in _TRANSPORT_LIBRARIES
