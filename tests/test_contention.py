"""Optimistic concurrency under real contention: four processes, one context."""

from __future__ import annotations

import asyncio
import multiprocessing
from dataclasses import dataclass
from typing import Any

from loremaster import Context, ContextManager, RevisionConflict

PROCESSES = 4


@dataclass(frozen=True)
class Job:
    url: str
    context_id: str
    worker: int
    tasks: int
    updates_per_task: int
    expected_revision: int | None


def _contend(job: Job, start: Any, results: Any) -> None:
    async def one_task(cm: ContextManager, task: int) -> tuple[int, int]:
        landed = conflicts = 0
        for n in range(job.updates_per_task):
            writer = f"w{job.worker}-t{task}-n{n}"
            # Stale writers all set one path (so automatic merging cannot reconcile them);
            # fresh writers each set their own.
            key = "contested" if job.expected_revision is not None else writer
            try:
                await cm.update_context(
                    job.context_id, {"data": {key: writer}}, expected_revision=job.expected_revision
                )
                landed += 1
            except RevisionConflict:
                conflicts += 1
        return landed, conflicts

    async def run() -> tuple[int, int]:
        async with ContextManager(database_url=job.url, pool_size=4, pool_max_overflow=0) as cm:
            await cm.get_context(job.context_id)  # connected and warm before the start line
            start.wait()
            outcomes = await asyncio.gather(*(one_task(cm, t) for t in range(job.tasks)))
            return sum(o[0] for o in outcomes), sum(o[1] for o in outcomes)

    try:
        results.put((job.worker, asyncio.run(run()), None))
    except BaseException as exc:  # the parent reports every failure
        results.put((job.worker, None, f"{type(exc).__name__}: {exc}"))


def run_in_processes(jobs: list[Job]) -> tuple[int, int]:
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    results = spawn.Queue()
    processes = [spawn.Process(target=_contend, args=(job, start, results)) for job in jobs]
    for process in processes:
        process.start()
    start.set()
    reports = [results.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    errors = [error for _, _, error in reports if error]
    assert errors == []
    landed = sum(counts[0] for _, counts, _ in reports)
    conflicts = sum(counts[1] for _, counts, _ in reports)
    return landed, conflicts


def jobs_for(
    url: str, context_id: str, total_tasks: int, updates: int, expected: int | None
) -> list[Job]:
    share = [total_tasks // PROCESSES + (w < total_tasks % PROCESSES) for w in range(PROCESSES)]
    return [Job(url, context_id, w, share[w], updates, expected) for w in range(PROCESSES)]


async def test_same_expected_revision_exactly_one_commits(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await cm.create_context(Context(title="contested"))
    landed, conflicts = await asyncio.to_thread(
        run_in_processes, jobs_for(db_url, context_id, 50, 1, expected=1)
    )
    assert (landed, conflicts) == (1, 49)
    async with ContextManager(database_url=db_url) as cm:
        context = await cm.get_context(context_id)
        assert context.revision == 2
        assert len(context.data) == 1
        assert [e.revision for e in await cm.get_events(context_id)] == [1, 2]


async def test_a_thousand_concurrent_updates_all_land(db_url: str) -> None:
    async with ContextManager(database_url=db_url) as cm:
        context_id = await cm.create_context(Context(title="busy"))
    landed, conflicts = await asyncio.to_thread(
        run_in_processes, jobs_for(db_url, context_id, 100, 10, expected=None)
    )
    assert (landed, conflicts) == (1000, 0)
    async with ContextManager(database_url=db_url) as cm:
        context = await cm.get_context(context_id)
        assert context.revision == 1 + 1000
        assert len(context.data) == 1000
        events = await cm.get_events(context_id)
        assert [e.revision for e in events] == list(range(1, 1002))
