"""The floor of bench_server.py: a bare Starlette app calling the manager methods the
server's GET and PATCH of a context call, with the arguments the server passes, on
uvicorn with the server's settings (one process, the same graceful shutdown, INFO logs
with one access line a request). No authentication, rate limit, body limit, error
mapping, request id or metrics: what is left is the manager, JSON and HTTP.

Run: python benchmarks/_bare_starlette.py PORT   (the database from CONTEXT_DATABASE_URL)
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from loremaster import ContextManager

manager = ContextManager()


def as_json(value: bytes | str) -> Response:
    return Response(value, media_type="application/json")


async def get_context(request: Request) -> Response:
    context = await manager.get_context(
        request.path_params["context_id"], None, include_messages=True, branch="main"
    )
    return as_json(context.model_dump_json())


async def update_context(request: Request) -> Response:
    changes = orjson.loads(await request.body())
    context = await manager.update_context(
        request.path_params["context_id"], changes, None, None, branch="main", settle=False
    )
    return as_json(context.model_dump_json())


async def healthz(request: Request) -> Response:
    return as_json(b'{"status":"ok"}')


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with manager:
        yield


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/v1/contexts/{context_id}", get_context, methods=["GET"]),
        Route("/v1/contexts/{context_id}", update_context, methods=["PATCH"]),
    ],
    lifespan=lifespan,
)

if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), timeout_graceful_shutdown=10, log_level="info"
    )
