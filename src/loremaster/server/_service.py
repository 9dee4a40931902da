"""What every route reaches: the manager, the settings, who the caller is, and whether
the server is shutting down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from ..manager import ContextManager
from ._auth import ACT_AS_HEADER, Authenticator, Caller
from ._settings import ServerSettings

__all__ = [
    "CallerDep",
    "ManagerDep",
    "Service",
    "ServiceDep",
    "caller_of",
    "service_of",
]


@dataclass(eq=False)
class Service:
    manager: ContextManager
    settings: ServerSettings
    authenticator: Authenticator
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the server begins to shut down: streams and sockets end."""


def service_of(request: HTTPConnection) -> Service:
    service: Service = request.app.state.service
    return service


async def _service(request: HTTPConnection) -> Service:
    return service_of(request)


async def _manager(request: HTTPConnection) -> ContextManager:
    return service_of(request).manager


async def _caller(request: HTTPConnection) -> Caller:
    return caller_of(request)


def caller_of(request: HTTPConnection) -> Caller:
    """The authenticated caller (cached on the request: middleware may have asked)."""
    known = getattr(request.state, "caller", None)
    if isinstance(known, Caller):
        return known
    headers = request.headers
    caller = service_of(request).authenticator.caller(
        headers.get("authorization"), headers.get(ACT_AS_HEADER)
    )
    request.state.caller = caller
    return caller


# Dependencies are coroutines: FastAPI runs a plain function in a worker thread.
ServiceDep = Annotated[Service, Depends(_service)]
ManagerDep = Annotated[ContextManager, Depends(_manager)]
CallerDep = Annotated[Caller, Depends(_caller)]
