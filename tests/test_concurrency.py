"""Several managers writing one SQLite file at once lose nothing and never fail."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from typing import Any

import pytest

from loremaster import ContextManager, ConversationContext

WORKERS = 4
SECONDS = float(os.environ.get("LOREMASTER_SOAK_SECONDS", "10"))


def _write_for_a_while(
    sqlite_url: str, context_id: str, worker: int, seconds: float, results: Any
) -> None:
    async def run() -> dict[str, int]:
        done = {"updates": 0, "appends": 0, "creates": 0, "last": 0}
        async with ContextManager(database_url=sqlite_url) as cm:
            deadline = time.monotonic() + seconds
            step = 0
            while time.monotonic() < deadline:
                step += 1
                await cm.update_context(context_id, {"data": {f"w{worker}": step}}, user_id="dm")
                done["updates"] += 1
                await cm.append_messages(
                    context_id, {"role": "user", "content": f"w{worker} step {step}"}, user_id="dm"
                )
                done["appends"] += 1
                if step % 10 == 0:
                    await cm.create_context(ConversationContext(title=f"w{worker} {step}"))
                    done["creates"] += 1
                done["last"] = step
        return done

    try:
        results.put((worker, asyncio.run(run()), None))
    except BaseException as exc:  # report every failure to the parent, whatever it is
        import traceback

        results.put((worker, None, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


@pytest.mark.slow
async def test_four_processes_write_one_file_for_ten_seconds(sqlite_url: str) -> None:
    async with ContextManager(database_url=sqlite_url) as cm:
        context_id = await cm.create_context(ConversationContext(title="busy table"), user_id="dm")

    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    processes = [
        spawn.Process(target=_write_for_a_while, args=(sqlite_url, context_id, w, SECONDS, results))
        for w in range(WORKERS)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=SECONDS + 120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0

    errors = [error for _, _, error in reports if error]
    assert errors == []  # in particular, never "database is locked"
    done = {worker: counts for worker, counts, _ in reports}
    updates = sum(c["updates"] for c in done.values())
    appends = sum(c["appends"] for c in done.values())
    creates = sum(c["creates"] for c in done.values())
    assert updates > WORKERS * 10  # the writers really did contend

    async with ContextManager(database_url=sqlite_url) as cm:
        context = await cm.get_context(context_id)
        assert context.revision == 1 + updates + appends
        assert context.data == {f"w{w}": done[w]["last"] for w in range(WORKERS)}
        assert context.message_count == appends  # type: ignore[attr-defined]
        for worker in range(WORKERS):
            own = [m.text for m in context.messages if m.text.startswith(f"w{worker} ")]  # type: ignore[attr-defined]
            assert own == [f"w{worker} step {s}" for s in range(1, done[worker]["last"] + 1)]
        events = await cm.get_events(context_id)
        assert [e.revision for e in events] == list(range(1, context.revision + 1))
        assert (await cm.health_check())["storage"]["contexts"] == 1 + creates
