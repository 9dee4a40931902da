"""`loremaster mcp`: the MCP bridge, for an assistant to start (standard input and output)
or over streamable HTTP on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib

import click

from ..errors import LoremasterError
from ..manager import ContextManager
from ._app import cli
from ._render import error_console

__all__ = ["mcp_command"]


def _say(text: str) -> None:
    error_console.print(text, markup=False, highlight=False, soft_wrap=True)


async def _serve(
    database_url: str | None,
    redis_url: str | None,
    user_id: str | None,
    track_session: bool,
    http: tuple[str, int] | None,
) -> None:
    from ..mcp import serve_http, serve_stdio  # the SDK loads only for this command

    async with ContextManager(database_url, redis_url) as cm:
        if http is None:
            await serve_stdio(cm, user_id, track_session=track_session)
            return
        host, port = http
        await serve_http(
            cm,
            host,
            port,
            user_id,
            track_session=track_session,
            ready=lambda url: _say(f"loremaster MCP on {url} (Ctrl-C stops)"),
        )


@cli.command(name="mcp")
@click.option(
    "--database-url",
    envvar="CONTEXT_DATABASE_URL",
    default=None,
    help="sqlite:///path.db or postgresql://... (default: ./loremaster.db)",
)
@click.option("--redis-url", envvar="CONTEXT_REDIS_URL", default=None, help="redis://...")
@click.option("--user", "user_id", default=None, help="act as this user (default: trusted)")
@click.option(
    "--track-session",
    is_flag=True,
    help="record each client connection as a session context",
)
@click.option("--http", is_flag=True, help="serve streamable HTTP instead of stdio")
@click.option("--host", default="127.0.0.1", show_default=True, help="with --http (loopback)")
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="with --http"
)
def mcp_command(
    database_url: str | None,
    redis_url: str | None,
    user_id: str | None,
    track_session: bool,
    http: bool,
    host: str,
    port: int,
) -> None:
    """Serve the Model Context Protocol: loremaster as an assistant's memory
    (docs/mcp.md). An assistant starts it and speaks on standard input and output; with
    --http it serves http://HOST:PORT/mcp until Ctrl-C."""
    where = (host, port) if http else None
    try:
        if http:
            from ..mcp import check_loopback

            check_loopback(host)  # before the database is opened, let alone made
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server ends
            asyncio.run(_serve(database_url, redis_url, user_id, track_session, where))
    except LoremasterError as exc:
        raise click.ClickException(exc.message) from exc
