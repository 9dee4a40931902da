"""Version cleanup racing writers in other processes, and what cleanup keeps.

Several processes append and make versions (some tagged) on one context while their own
cleanups remove old versions. Every version still listed must rebuild, and no call may fail
with anything but our own errors.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from loremaster import ContextManager, ConversationContext, LoremasterError

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

SPAWN = multiprocessing.get_context("spawn")
PROCESSES = 3
SECONDS = 8.0
LIMITS = {"max_versions": 12, "max_checkpoints": 15}


async def _write(url: str, context_id: str, number: int, report: Queue[dict[str, int]]) -> None:
    outcomes: Counter[str] = Counter()
    async with ContextManager(database_url=url, **LIMITS) as cm:
        deadline = time.monotonic() + SECONDS
        step = 0
        while time.monotonic() < deadline:
            step += 1
            try:
                await cm.append_messages(
                    context_id, {"role": "user", "content": f"p{number} says {step}"}
                )
                version = await cm.create_version(
                    context_id,
                    message=f"p{number} checkpoint {step}",
                    tags=[f"p{number}-{step}"] if step % 10 == 0 else [],
                )
                await cm.get_version(context_id, version.version_id)
                outcomes["ok"] += 1
            except LoremasterError as exc:  # typed: allowed, counted
                outcomes[type(exc).__name__] += 1
            except Exception as exc:
                outcomes["untyped " + type(exc).__name__] += 1
    report.put(dict(outcomes))


def _writer(url: str, context_id: str, number: int, report: Queue[dict[str, int]]) -> None:
    asyncio.run(_write(url, context_id, number, report))


async def _all_versions(cm: ContextManager, context_id: str) -> list[str]:
    listed: list[str] = []
    before = None
    while True:
        page = await cm.get_version_history(context_id, limit=1000, before=before)
        listed += [v.version_id for v in page]
        if len(page) < 1000:
            return listed
        before = page[-1].number


@pytest.mark.slow
async def test_cleanup_and_writers_in_several_processes_leave_every_version_readable(
    db_url: str,
) -> None:
    async with ContextManager(database_url=db_url, **LIMITS) as cm:
        context_id = await cm.create_context(ConversationContext(title="The long campaign"))
    report: Queue[dict[str, int]] = SPAWN.Queue()
    processes = [
        SPAWN.Process(target=_writer, args=(db_url, context_id, n, report))
        for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        totals: Counter[str] = Counter()
        for _ in processes:
            totals.update(await asyncio.to_thread(report.get, True, SECONDS + 60))
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    assert not [k for k in totals if k.startswith("untyped")], totals
    assert totals["ok"] > 50, totals

    async with ContextManager(database_url=db_url, **LIMITS) as cm:
        listed = await _all_versions(cm, context_id)
        for version_id in listed:
            await cm.get_version(context_id, version_id)  # raises DataCorrupted if broken
        history = await cm.get_version_history(context_id, limit=1000)
        tagged = [v for v in history if v.tags]
        automatic = [v for v in history if v.automatic]
        checkpoints = [v for v in history if not v.automatic and not v.tags]
        assert len(tagged) == sum(1 for v in history if v.tags)  # tagged: all kept
        assert len(tagged) >= totals["ok"] // 10 - PROCESSES
        # Each kind stays near its limit: cleanup runs each tenth of the smaller limit.
        assert len(automatic) <= LIMITS["max_versions"] + PROCESSES * 2
        assert len(checkpoints) <= LIMITS["max_checkpoints"] + PROCESSES * 2


async def test_a_checkpoint_outlives_many_automatic_versions(db_url: str) -> None:
    async with ContextManager(database_url=db_url, max_versions=10, max_checkpoints=3) as cm:
        context_id = await cm.create_context(ConversationContext(title="Dragon's Lair"))
        dragon = await cm.create_version(context_id, message="Before the dragon")
        assert not dragon.automatic
        for turn in range(60):
            await cm.update_context(context_id, {"data": {"turn": turn}})
        history = await cm.get_version_history(context_id, limit=1000)
        assert dragon.version_id in {v.version_id for v in history}
        assert sum(v.automatic for v in history) <= 11
        past = await cm.get_version(context_id, dragon.version_id)
        assert past.data == {}

        # Checkpoints have a limit of their own: the oldest untagged ones go first.
        kept = await cm.create_version(context_id, message="Tagged", tags=["boss"])
        made = [await cm.create_version(context_id, message=f"cp {n}") for n in range(12)]
        await cm.run_cleanup()
        left = {v.version_id for v in await cm.get_version_history(context_id, limit=1000)}
        assert kept.version_id in left
        assert dragon.version_id not in left
        assert made[-1].version_id in left
        assert sum(v.version_id in left for v in made) <= 3
