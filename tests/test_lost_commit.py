"""A COMMIT whose answer never arrives: the retry must not apply the write a second time.

A loopback TCP proxy between the manager and PostgreSQL forwards everything, and once armed
it cuts the client's connection right after passing on a COMMIT. A deferred trigger makes
that commit take half a second, so the retry starts while the first transaction is still
committing — the hardest case for "retry what did not commit, never what did".
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from loremaster import ContextManager, ConversationContext

SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON events
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
"""


class CommitCutter:
    """Forwards connections to PostgreSQL; when armed, drops the next COMMIT's answer."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.armed = False
        self.cuts = 0
        self.server: asyncio.Server | None = None
        self.held: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        server_in, server_out = await asyncio.open_connection(*self.target)

        async def upstream() -> None:
            while data := await client_in.read(65536):
                server_out.write(data)
                await server_out.drain()
                if self.armed and b"COMMIT" in data:
                    self.armed = False
                    self.cuts += 1
                    self.held.append(server_out)  # the server goes on committing
                    client_out.close()
                    return
            server_out.close()

        async def downstream() -> None:
            while data := await server_in.read(65536):
                if client_out.is_closing():
                    return
                client_out.write(data)
                await client_out.drain()
            client_out.close()

        with contextlib.suppress(ConnectionError, OSError):
            await asyncio.gather(upstream(), downstream())

    async def close(self) -> None:
        for writer in self.held:
            writer.close()
        if self.server is not None:
            self.server.close()


async def test_a_lost_commit_is_not_applied_twice(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    await conn.execute(SLOW_COMMIT)
    await conn.close()

    parts = urlsplit(postgres_url)
    cutter = CommitCutter(parts.hostname or "127.0.0.1", parts.port or 5432)
    port = await cutter.start()
    through_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))
    try:
        async with ContextManager(database_url=through_proxy, sync_timeout=20) as cm:
            context_id = await cm.create_context(ConversationContext(title="t", data={"items": []}))
            cutter.armed = True
            updated = await cm.update_context(
                context_id, [{"op": "add", "path": "/data/items/-", "value": "potion"}]
            )
            assert cutter.cuts == 1, "the proxy did not cut the commit"
            assert updated.revision == 2
            cutter.armed = True
            revision = await cm.append_messages(context_id, {"role": "user", "content": "once"})
            assert cutter.cuts == 2
            assert revision == 3

        async with ContextManager(database_url=postgres_url) as check:
            context = await check.get_context(context_id)
            assert context.data == {"items": ["potion"]}
            assert context.revision == 3
            assert [m.text for m in context.messages] == ["once"]  # type: ignore[attr-defined]
            assert [e.revision for e in await check.get_events(context_id)] == [1, 2, 3]
    finally:
        await cutter.close()
