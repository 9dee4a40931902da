"""Requests and responses as the JSON that crosses the wire, whatever objects an
application handed its SDK; and which failures another provider may be tried after."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from pydantic import BaseModel

__all__ = ["WireJson", "listed", "status_of", "transient"]

_TRANSPORT_LIBRARIES = frozenset({"httpx", "httpx2", "httpcore", "aiohttp", "anyio"})
_RETRYABLE_STATUSES = frozenset({408, 429})
_MODELS_KEPT = 10_000


class WireJson:
    """Request values as the plain JSON that crosses the wire, for one recorded client:
    SDK models dumped as they would be sent (None fields left out), mappings and
    sequences copied, the SDK's "not given" markers (`omitted`) dropped from mappings.

    A model is dumped once: applications send the same reply objects back call after
    call, and dumping them anew each time would make a call's cost grow with its history.
    (An SDK model changed in place after it was sent is read as it was.)"""

    def __init__(self, omitted: tuple[type, ...] = ()) -> None:
        self._omitted = omitted
        self._dumped: OrderedDict[int, tuple[BaseModel, Any, orjson.Fragment]] = OrderedDict()

    def __call__(self, value: Any) -> Any:
        if isinstance(value, BaseModel):
            return self._dump(value)
        if isinstance(value, Mapping):
            return {
                str(key): self(item)
                for key, item in value.items()
                if not isinstance(item, self._omitted)
            }
        if isinstance(value, (list, tuple)):
            return [self(item) for item in value]
        return value

    def key(self, value: Any) -> bytes:
        """`value`'s JSON, as bytes to compare: what it would be as plain JSON, without
        building it (a model's JSON is the one kept)."""
        return orjson.dumps(value, default=self._default)

    def _default(self, value: Any) -> Any:
        if isinstance(value, BaseModel):
            return self._known(value)[1]
        if isinstance(value, self._omitted):
            return None
        if isinstance(value, tuple):
            return list(value)
        raise TypeError(f"{type(value).__name__} is not JSON")

    def _dump(self, model: BaseModel) -> Any:
        return self._known(model)[0]

    def _known(self, model: BaseModel) -> tuple[Any, orjson.Fragment]:
        """A model's dump and its JSON, made once."""
        known = self._dumped.get(id(model))
        if known is not None and known[0] is model:
            return known[1], known[2]
        dumped = model.model_dump(mode="json", exclude_none=True, by_alias=False)
        text = orjson.Fragment(orjson.dumps(dumped))
        self._dumped[id(model)] = (model, dumped, text)  # kept, so that its id is not reused
        if len(self._dumped) > _MODELS_KEPT:
            self._dumped.popitem(last=False)
        return dumped, text


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
