"""`loremaster serve`: the server over the embedded default or PostgreSQL + Redis."""

from __future__ import annotations

import asyncio

import click

from ..errors import LoremasterError
from ..manager import ContextManager
from ..server import load_server_settings, serve
from ._app import cli
from ._demo import find_demo, seed_demo
from ._render import console

__all__ = ["serve_command"]


async def _seed_demo(database_url: str | None, redis_url: str | None) -> None:
    async with ContextManager(database_url, redis_url) as cm:
        if await find_demo(cm) is None and not (await cm.query_contexts(limit=1)).items:
            await seed_demo(cm)


@cli.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--database-url",
    envvar="CONTEXT_DATABASE_URL",
    default=None,
    help="sqlite:///path.db or postgresql://... (default: ./loremaster.db)",
)
@click.option("--redis-url", envvar="CONTEXT_REDIS_URL", default=None, help="redis://...")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--demo", is_flag=True, help="seed the demo campaign into an empty database")
def serve_command(
    host: str,
    port: int,
    database_url: str | None,
    redis_url: str | None,
    workers: int,
    demo: bool,
) -> None:
    """Serve HTTP, SSE and WebSocket (docs/server.md) until Ctrl-C."""
    try:
        settings = load_server_settings()
        if demo:
            asyncio.run(_seed_demo(database_url, redis_url))
        mode = "local mode, no authentication" if settings.local_mode else "bearer tokens"
        console.print(f"loremaster serving on http://{host}:{port}/ ({mode})", markup=False)
        serve(
            host,
            port,
            database_url=database_url,
            redis_url=redis_url,
            workers=workers,
            settings=settings,
        )
    except LoremasterError as exc:
        raise click.ClickException(exc.message) from exc
