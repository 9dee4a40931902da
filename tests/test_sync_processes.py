"""Real-time sync end to end: several processes writing one context over PostgreSQL and
Redis while their Redis connections are cut, edit locks whose holder is paused past its
lease, the embedded mode (SQLite file, in-process bus) doing the same in one process, and
several processes on one SQLite file without Redis, hearing each other through its commit
feed.

What a user may rely on, checked here against the tables read behind the library's back:
every subscriber sees every committed revision exactly once and in order; an update either
lands (and is in the final document) or is refused, and nobody's change to a key of its own
is lost; every process reads the same document at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import random
import signal
import sqlite3
import sys
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import jsonpatch
import orjson
import pytest
from redis.asyncio import Redis

from loremaster import Context, ContextEvent, ContextManager, LockHeld, RevisionConflict
from loremaster.sync import ConflictStrategy, UpdateOrigin

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

pytest_plugins = ["_redis"]

PROCESSES = 4
WRITERS_PER_PROCESS = 2
WRITE_SECONDS = 3.0
SHARED_KEYS = ("k0", "k1", "k2")
PROVIDERS = ("anthropic", "openai", "gemini")
STRATEGIES: tuple[str | None, ...] = (None, *(strategy.value for strategy in ConflictStrategy))
USERS = ("dm", *(f"w{n}" for n in range(PROCESSES)))
SPAWN = multiprocessing.get_context("spawn")

Row = tuple[int, str, list[dict[str, Any]], str | None, str]
"""An event as compared: revision, op, changes (JSON Patch), user_id, branch."""


def as_row(event: ContextEvent) -> Row:
    return (event.revision, event.op, event.changes, event.user_id, event.branch)


# -- what every writer and every subscriber does, in any process ---------------------------


@dataclass
class Tally:
    """What one writer did: the own key of each update, by outcome."""

    landed: dict[str, int] = field(default_factory=dict)
    """own key -> the revision its update committed at"""
    refused: list[str] = field(default_factory=list)
    stale_landed: int = 0
    """updates made against an old revision that were merged and committed"""
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    """anything raised but RevisionConflict, and read-your-writes violations"""

    def add(self, other: Tally) -> None:
        self.landed |= other.landed
        self.refused += other.refused
        self.stale_landed += other.stale_landed
        self.outcomes += other.outcomes
        self.errors += other.errors


async def write_randomly(
    cm: ContextManager, context_id: str, user: str, name: str, *, seconds: float, seed: int
) -> Tally:
    """Random updates for `seconds`: each sets a key of its own (`data.own.<name>-<n>`),
    most also one of a few shared keys; half carry an expected revision, often a stale one;
    each names a random conflict strategy (or none) and origin."""
    rng = random.Random(seed)
    tally = Tally()
    until = time.monotonic() + seconds
    n = 0
    while time.monotonic() < until:
        n += 1
        key = f"{name}-{n}"
        data: dict[str, Any] = {"own": {key: n}}
        if rng.random() < 0.7:
            data["shared"] = {rng.choice(SHARED_KEYS): key}
        expected = None
        if rng.random() < 0.5:
            read = await cm.get_context(context_id, user_id=user, include_messages=False)
            expected = max(1, read.revision - rng.choice((0, 0, 1, 2, 3)))
            await asyncio.sleep(rng.uniform(0, 0.005))  # others move on meanwhile
        strategy = rng.choice(STRATEGIES)
        provider = rng.choice((None, *PROVIDERS))
        try:
            context = await cm.update_context(
                context_id,
                {"data": data},
                user_id=user,
                expected_revision=expected,
                strategy=strategy,
                origin=UpdateOrigin(user_id=user, provider=provider),
            )
        except RevisionConflict:
            tally.refused.append(key)
            tally.outcomes[f"{strategy}: refused"] += 1
            continue
        except Exception as exc:  # every other failure is reported, and the run goes on
            tally.errors.append(f"update {key} ({strategy}, expected {expected}): {exc!r}")
            continue
        tally.landed[key] = context.revision
        tally.outcomes[f"{strategy}: landed"] += 1
        if expected is not None and context.revision - 1 > expected:
            tally.stale_landed += 1
        if rng.random() < 0.3:  # a writer sees its own write at once
            read = await cm.get_context(context_id, user_id=user, include_messages=False)
            if read.revision < context.revision or read.data["own"].get(key) != n:
                tally.errors.append(
                    f"read-your-writes: {key} committed at {context.revision}, then read "
                    f"revision {read.revision} with own[{key}]={read.data['own'].get(key)}"
                )
    return tally


class Follower:
    """A subscription read into a list by a task of its own."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.events: list[ContextEvent] = []
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(
        cls, cm: ContextManager, context_id: str, since_revision: int | None
    ) -> Follower:
        return cls(await cm.subscribe(context_id, user_id="dm", since_revision=since_revision))

    async def _read(self) -> None:
        async for event in self._stream:
            self.events.append(event)
            self._arrived.set()

    async def wait_for(self, revision: int, seconds: float) -> None:
        """Until an event at `revision` or later has arrived; TimeoutError after `seconds`."""
        async with asyncio.timeout(seconds):
            while not any(e.revision >= revision for e in self.events):
                if self._task.done():
                    self._task.result()  # the stream failed: raise its error
                    raise AssertionError("the subscription ended before the last revision")
                self._arrived.clear()
                arrival = asyncio.ensure_future(self._arrived.wait())
                try:
                    await asyncio.wait([arrival, self._task], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    arrival.cancel()

    async def close(self) -> None:
        await self._stream.close()
        try:
            async with asyncio.timeout(5):
                await self._task
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def read_until_settled(
    cm: ContextManager, context_id: str, revision: int, seconds: float = 2.0
) -> tuple[tuple[int, dict[str, Any]], tuple[int, dict[str, Any]]]:
    """(the first read, the read once at `revision` or after `seconds`) of the document."""
    context = await cm.get_context(context_id, user_id="dm", include_messages=False)
    first = (context.revision, context.data)
    deadline = time.monotonic() + seconds
    while context.revision < revision and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        context = await cm.get_context(context_id, user_id="dm", include_messages=False)
    return first, (context.revision, context.data)


def check_followed(name: str, events: list[ContextEvent], first: int, table: list[Row]) -> None:
    """`events` are exactly the table's rows from revision `first` on, in order."""
    revisions = [e.revision for e in events]
    expected = list(range(first, len(table) + 1))
    if revisions != expected:
        seen = Counter(revisions)
        missing = sorted(set(expected) - set(revisions))
        twice = sorted(r for r, count in seen.items() if count > 1)
        out_of_order = [(a, b) for a, b in itertools.pairwise(revisions) if b <= a]
        raise AssertionError(
            f"{name}: {len(revisions)} events, expected revisions {first}..{len(table)}; "
            f"missing {missing[:20]}, twice {twice[:20]}, out of order {out_of_order[:10]}, "
            f"snapshots {[e.revision for e in events if e.op == 'snapshot']}"
        )
    assert [as_row(e) for e in events] == table[first - 1 :], f"{name}: events differ"


def check_converged(
    table: list[Row], stored: tuple[int, dict[str, Any]], created: dict[str, Any], tally: Tally
) -> None:
    """The stored document is what the events say, and what the writers were told."""
    revision, data = stored
    assert [row[0] for row in table] == list(range(1, len(table) + 1))
    assert revision == len(table)
    # creation, every update that said it landed, and the closing update: nothing else
    assert len(table) == 1 + len(tally.landed) + 1
    assert sorted(tally.landed.values()) == sorted(set(tally.landed.values()))
    own = {key: int(key.rsplit("-", 1)[1]) for key in tally.landed}
    assert data["own"] == own, "an own key was lost, or a refused update left one"
    assert set(data["shared"]) <= set(SHARED_KEYS)
    document = created
    for row in table[1:]:
        # Events also record changes beside the fields (a conflict kept for a person).
        fields = [op for op in row[2] if op["path"].split("/")[1] in created]
        document = jsonpatch.apply_patch(document, fields)
    assert document["data"] == data, "replaying the events does not give the stored document"


def created_document(context: Context) -> dict[str, Any]:
    document: dict[str, Any] = context.model_dump(mode="json")
    return document


def new_room() -> Context:
    return Context(
        title="contested room",
        data={"own": {}, "shared": dict.fromkeys(SHARED_KEYS, "start")},
        collaborators=list(USERS[1:]),
    )


# -- reading the tables behind the library's back ---------------------------------------------


async def postgres_table(url: str, context_id: str) -> tuple[list[Row], tuple[int, Any]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT revision, op, changes::text AS changes, user_id, branch FROM events "
            "WHERE context_id = $1::uuid ORDER BY revision",
            context_id,
        )
        stored = await conn.fetchrow(
            "SELECT revision, data::text AS data FROM contexts WHERE context_id = $1::uuid",
            context_id,
        )
    finally:
        await conn.close()
    assert stored is not None
    table = [
        (r["revision"], r["op"], orjson.loads(r["changes"]), r["user_id"], r["branch"])
        for r in rows
    ]
    return table, (stored["revision"], orjson.loads(stored["data"]))


def sqlite_table(url: str, context_id: str) -> tuple[list[Row], tuple[int, Any]]:
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
        rows = conn.execute(
            "SELECT revision, op, changes, user_id, branch FROM events WHERE context_row = "
            "(SELECT row_id FROM contexts WHERE context_id = ?) ORDER BY revision",
            (context_id,),
        ).fetchall()
        stored = conn.execute(
            "SELECT revision, data FROM contexts WHERE context_id = ?", (context_id,)
        ).fetchone()
    table = [(r[0], r[1], orjson.loads(r[2]), r[3], r[4]) for r in rows]
    return table, (stored[0], orjson.loads(stored[1]))


# -- (a) convergence: four processes, PostgreSQL and Redis, connections cut ---------------------


@dataclass(frozen=True)
class Job:
    database_url: str
    redis_url: str | None
    context_id: str
    worker: int
    since_revision: int | None
    seconds: float


@dataclass
class Report:
    worker: int
    tally: Tally
    events: list[ContextEvent]
    first_read: tuple[int, dict[str, Any]]
    settled_read: tuple[int, dict[str, Any]]
    cache: dict[str, Any]


def _converge(job: Job, start: Event, final: Queue[int], reports: Queue[Any]) -> None:
    async def run() -> Report:
        user = USERS[1 + job.worker]
        async with ContextManager(
            database_url=job.database_url,
            redis_url=job.redis_url,
            pool_size=4,
            pool_max_overflow=0,
        ) as cm:
            await cm.get_context(job.context_id, user_id=user)  # connected and warm
            follower = await Follower.start(cm, job.context_id, job.since_revision)
            reports.put(("ready", job.worker))
            await asyncio.to_thread(start.wait, 60)
            tallies = await asyncio.gather(
                *(
                    write_randomly(
                        cm,
                        job.context_id,
                        user,
                        f"w{job.worker}t{task}",
                        seconds=job.seconds,
                        seed=job.worker * 100 + task,
                    )
                    for task in range(WRITERS_PER_PROCESS)
                )
            )
            tally = Tally()
            for one in tallies:
                tally.add(one)
            reports.put(("wrote", job.worker))
            last = await asyncio.to_thread(final.get, True, 60)
            try:
                await follower.wait_for(last, seconds=15)
            except TimeoutError:
                tally.errors.append(f"the subscriber did not reach revision {last} in 15 s")
            await follower.close()
            first_read, settled_read = await read_until_settled(cm, job.context_id, last)
            cache = (await cm.get_performance_stats())["cache"]
            return Report(job.worker, tally, follower.events, first_read, settled_read, cache)

    try:
        reports.put(("report", asyncio.run(run())))
    except BaseException:  # the parent reports every failure
        reports.put(("failed", f"worker {job.worker}: {traceback.format_exc()}"))


def local_ports(pids: Iterable[int]) -> set[int]:
    """The local TCP ports of the sockets these processes hold (Linux /proc)."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def cut_randomly(
    redis_url: str, pids: list[int], stop: asyncio.Event, seed: int
) -> Counter[str]:
    """Until `stop`: every 0.3-0.7 s, kill the Pub/Sub (then the command) connections to
    Redis of a random few of these processes, as a network failure would; how many of
    each type were killed. Only these processes' connections are touched: the Redis
    server may be shared."""
    rng = random.Random(seed)
    killed: Counter[str] = Counter()
    client = Redis.from_url(redis_url)
    try:
        own = await client.client_id()
        kinds = ("pubsub", "normal")
        round_ = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(rng.uniform(0.3, 0.7)):
                    await stop.wait()
            if stop.is_set():
                break
            kind = kinds[round_ % 2]
            round_ += 1
            victims = rng.sample(pids, rng.randint(1, len(pids)))
            ports = await asyncio.to_thread(local_ports, victims)
            for client_info in await client.client_list(_type=kind):
                port = int(client_info["addr"].rsplit(":", 1)[1])
                if port in ports and int(client_info["id"]) != own:
                    await client.client_kill_filter(_id=client_info["id"])
                    killed[kind] += 1
    finally:
        await client.aclose()
    return killed


async def next_report(reports: Queue[Any], seconds: float) -> tuple[str, Any]:
    kind, payload = await asyncio.to_thread(reports.get, True, seconds)
    if kind == "failed":
        raise AssertionError(payload)
    return kind, payload


@contextlib.contextmanager
def running(processes: list[SpawnProcess]) -> Iterator[None]:
    """Start the processes; on the way out, wait briefly for each, then kill what is left."""
    try:
        for process in processes:
            process.start()
        yield
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()


@pytest.mark.slow
@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the processes' connections in /proc"
)
async def test_processes_converge_while_their_redis_connections_are_cut(
    postgres_url: str, redis_url: str
) -> None:
    async with ContextManager(database_url=postgres_url, redis_url=redis_url) as cm:
        context_id = await cm.create_context(new_room(), user_id="dm")
        created = await cm.get_context(context_id, user_id="dm")
        follower = await Follower.start(cm, context_id, None)
        since = (None, 0, None, 1)  # replays from the table, or from now on
        jobs = [
            Job(postgres_url, redis_url, context_id, n, since[n], WRITE_SECONDS)
            for n in range(PROCESSES)
        ]
        start = SPAWN.Event()
        reports: Queue[Any] = SPAWN.Queue()
        finals: list[Queue[int]] = [SPAWN.Queue() for _ in jobs]
        processes = [
            SPAWN.Process(target=_converge, args=(job, start, final, reports))
            for job, final in zip(jobs, finals, strict=True)
        ]
        with running(processes):
            for _ in processes:
                assert (await next_report(reports, 60))[0] == "ready"
            pids = [os.getpid(), *(p.pid for p in processes if p.pid is not None)]
            stop = asyncio.Event()
            cutter = asyncio.create_task(cut_randomly(redis_url, pids, stop, seed=7))
            start.set()
            try:
                for _ in processes:
                    assert (await next_report(reports, WRITE_SECONDS + 60))[0] == "wrote"
            finally:
                stop.set()
                killed = await cutter
            # Published with every connection up: whoever missed an event before it
            # notices the skip and reads the table.
            closing = await cm.update_context(context_id, {"data": {"closed": True}}, user_id="dm")
            for final in finals:
                final.put(closing.revision)
            results: list[Report] = [(await next_report(reports, 60))[1] for _ in processes]
        await follower.wait_for(closing.revision, seconds=15)
        await follower.close()
        _, settled_here = await read_until_settled(cm, context_id, closing.revision)

    assert killed["pubsub"] >= 1, killed
    assert killed["normal"] >= 1, killed
    table, stored = await postgres_table(postgres_url, context_id)
    tally = Tally()
    for report in results:
        tally.add(report.tally)
    assert tally.errors == [], "\n".join(tally.errors)
    assert tally.stale_landed > 0, "no stale update was merged: the run tested too little"
    check_converged(table, stored, created_document(created), tally)

    check_followed("test process", follower.events, 2, table)
    assert settled_here == stored
    for report in sorted(results, key=lambda r: r.worker):
        name = f"worker {report.worker}"
        first = 1 + (since[report.worker] if since[report.worker] is not None else 1)
        check_followed(name, report.events, first, table)
        assert report.settled_read == stored, f"{name} reads another document than stored"
        assert report.first_read == stored, (
            f"{name}: stale read after its subscriber saw the last revision"
        )
        assert {"hits", "misses", "hit_rate", "entries"} <= set(report.cache), report.cache
        assert report.cache["hits"] > 0, f"{name}: the cache never served a read"


# -- (b) edit locks: a holder paused past its lease -------------------------------------------

LEASE = 0.5


def _act(database_url: str, user: str, commands: Queue[Any], replies: Queue[Any]) -> None:
    """Run the parent's commands as `user`: ("ok", result) or ("raised", class, LockHeld?,
    message)."""

    async def one(cm: ContextManager, command: str, context_id: str, argument: Any) -> Any:
        if command == "acquire":
            lock = await cm.acquire_context_lock(context_id, user_id=user, timeout=argument)
            return lock.model_dump(mode="json")
        if command == "renew":
            lock = await cm.renew_context_lock(context_id, user_id=user, timeout=argument)
            return lock.model_dump(mode="json")
        if command == "release":
            return await cm.release_context_lock(context_id, user_id=user)
        assert command == "write"
        context = await cm.update_context(context_id, {"data": {"hp": argument}}, user_id=user)
        return context.revision

    async def run() -> None:
        async with ContextManager(database_url=database_url, pool_size=2) as cm:
            replies.put(("ready", None))
            while True:
                command, context_id, argument = await asyncio.to_thread(commands.get, True, 60)
                if command == "stop":
                    return
                try:
                    replies.put(("ok", await one(cm, command, context_id, argument)))
                except Exception as exc:
                    replies.put(("raised", type(exc).__name__, isinstance(exc, LockHeld), str(exc)))

    try:
        asyncio.run(run())
    except BaseException:
        replies.put(("failed", traceback.format_exc()))


class Actor:
    """A process of its own acting as one user, one command at a time."""

    def __init__(self, database_url: str, user: str) -> None:
        self.user = user
        self._commands: Queue[Any] = SPAWN.Queue()
        self._replies: Queue[Any] = SPAWN.Queue()
        self.process = SPAWN.Process(
            target=_act, args=(database_url, user, self._commands, self._replies)
        )

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    async def call(self, command: str, context_id: str, argument: Any) -> tuple[Any, ...]:
        self._commands.put((command, context_id, argument))
        reply: tuple[Any, ...] = await asyncio.to_thread(self._replies.get, True, 30)
        if reply[0] == "failed":
            raise AssertionError(f"{self.user}: {reply[1]}")
        return reply

    async def ok(self, command: str, context_id: str, argument: Any = None) -> Any:
        reply = await self.call(command, context_id, argument)
        assert reply[0] == "ok", f"{self.user} {command}: {reply}"
        return reply[1]

    async def lock_held(self, command: str, context_id: str, argument: Any = None) -> str:
        """Run a command that must raise LockHeld; the exception's class name."""
        reply = await self.call(command, context_id, argument)
        assert reply[0] == "raised", f"{self.user} {command} was not refused: {reply}"
        assert reply[2], f"{self.user} {command} raised {reply[1]}, not LockHeld: {reply[3]}"
        return str(reply[1])

    async def started(self) -> None:
        assert (await asyncio.to_thread(self._replies.get, True, 60))[0] == "ready"

    def stop(self) -> None:
        self._commands.put(("stop", "", None))


@contextlib.asynccontextmanager
async def actors(database_url: str, *users: str) -> AsyncIterator[list[Actor]]:
    made = [Actor(database_url, user) for user in users]
    with running([actor.process for actor in made]):
        try:
            for actor in made:
                await actor.started()
            yield made
        finally:
            for actor in made:
                actor.stop()


def hp_writes(events: list[ContextEvent]) -> list[tuple[str | None, Any]]:
    return [
        (event.user_id, change["value"])
        for event in events
        for change in event.changes
        if change.get("path") == "/data/hp"
    ]


async def locked_room(database_url: str) -> str:
    async with ContextManager(database_url=database_url) as cm:
        return await cm.create_context(
            Context(title="locked room", data={"hp": 0}, collaborators=["alice", "bob"]),
            user_id="dm",
        )


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="pauses a process with SIGSTOP")
async def test_a_holder_paused_past_its_lease_cannot_write(postgres_url: str) -> None:
    context_id = await locked_room(postgres_url)
    async with actors(postgres_url, "alice", "bob") as (alice, bob):
        lock = await alice.ok("acquire", context_id, LEASE)
        assert (lock["holder"], lock["context_id"]) == ("alice", context_id)
        await alice.ok("write", context_id, 1)
        await bob.lock_held("acquire", context_id)
        await bob.lock_held("write", context_id, 2)

        os.kill(alice.pid, signal.SIGSTOP)  # a pause the holder does not notice
        try:
            await asyncio.sleep(LEASE + 0.3)
            async with asyncio.timeout(5):  # the lease ends by the database's clock
                while True:
                    reply = await bob.call("acquire", context_id, 30)
                    if reply[0] == "ok":
                        break
                    assert reply[2], reply
                    await asyncio.sleep(0.1)
        finally:
            os.kill(alice.pid, signal.SIGCONT)
        bob_lock = reply[1]
        assert bob_lock["holder"] == "bob"
        assert bob_lock["token"] > lock["token"]

        await alice.lock_held("write", context_id, 3)
        await alice.lock_held("renew", context_id, LEASE)
        await bob.ok("write", context_id, 4)
        await bob.ok("release", context_id)
        await alice.ok("write", context_id, 5)  # nobody holds it now

    async with ContextManager(database_url=postgres_url) as cm:
        assert (await cm.get_context(context_id)).data["hp"] == 5
        assert hp_writes(await cm.get_events(context_id)) == [
            ("alice", 1),
            ("bob", 4),
            ("alice", 5),
        ]


async def test_an_expired_lease_refuses_its_holder_and_frees_the_context(db_url: str) -> None:
    context_id = await locked_room(db_url)
    async with ContextManager(database_url=db_url) as cm:
        lock = await cm.acquire_context_lock(context_id, user_id="alice", timeout=LEASE)
        await cm.update_context(context_id, {"data": {"hp": 1}}, user_id="alice")
        with pytest.raises(LockHeld):
            await cm.update_context(context_id, {"data": {"hp": 2}}, user_id="bob")
        await asyncio.sleep(LEASE + 0.5)
        with pytest.raises(LockHeld):  # alice believes she holds it; the lease says no
            await cm.update_context(context_id, {"data": {"hp": 3}}, user_id="alice")
        await cm.update_context(context_id, {"data": {"hp": 4}}, user_id="bob")
        again = await cm.acquire_context_lock(context_id, user_id="alice", timeout=LEASE)
        assert again.token > lock.token
        await cm.update_context(context_id, {"data": {"hp": 5}}, user_id="alice")
        await cm.release_context_lock(context_id, user_id="alice")
        assert (await cm.get_context(context_id)).data["hp"] == 5
        assert hp_writes(await cm.get_events(context_id)) == [
            ("alice", 1),
            ("bob", 4),
            ("alice", 5),
        ]


# -- (c) the embedded mode: one process, SQLite file, in-process bus ----------------------------


@pytest.mark.slow
async def test_embedded_subscribers_see_every_revision_once_in_order(sqlite_url: str) -> None:
    async with ContextManager(database_url=sqlite_url) as cm:
        context_id = await cm.create_context(new_room(), user_id="dm")
        created = await cm.get_context(context_id, user_id="dm")
        since = (None, 0, 1, None)
        followers = [await Follower.start(cm, context_id, s) for s in since]
        tallies = await asyncio.gather(
            *(
                write_randomly(cm, context_id, USERS[1 + n], f"w{n}", seconds=2.0, seed=n)
                for n in range(PROCESSES)
            )
        )
        closing = await cm.update_context(context_id, {"data": {"closed": True}}, user_id="dm")
        for follower in followers:
            await follower.wait_for(closing.revision, seconds=10)
            await follower.close()
        read = await cm.get_context(context_id, user_id="dm", include_messages=False)

    table, stored = sqlite_table(sqlite_url, context_id)
    tally = Tally()
    for one in tallies:
        tally.add(one)
    assert tally.errors == [], "\n".join(tally.errors)
    assert tally.stale_landed > 0, "no stale update was merged: the run tested too little"
    check_converged(table, stored, created_document(created), tally)
    assert (read.revision, read.data) == stored
    for n, (follower, s) in enumerate(zip(followers, since, strict=True)):
        check_followed(f"subscriber {n}", follower.events, 1 + (s if s is not None else 1), table)


# -- (d) one SQLite file, several processes, no Redis: the commit feed --------------------------


@pytest.mark.slow
async def test_processes_on_one_sqlite_file_hear_each_other_live(sqlite_url: str) -> None:
    """Every process's subscriber sees every revision once, in order, within seconds of the
    last commit: the streams would read the event log on their own only after 30 s, so
    what they see came through the commit feed."""
    async with ContextManager(database_url=sqlite_url) as cm:
        context_id = await cm.create_context(new_room(), user_id="dm")
        created = await cm.get_context(context_id, user_id="dm")
        follower = await Follower.start(cm, context_id, None)
        since = (None, 0, None, 1)
        jobs = [
            Job(sqlite_url, None, context_id, n, since[n], WRITE_SECONDS) for n in range(PROCESSES)
        ]
        start = SPAWN.Event()
        reports: Queue[Any] = SPAWN.Queue()
        finals: list[Queue[int]] = [SPAWN.Queue() for _ in jobs]
        processes = [
            SPAWN.Process(target=_converge, args=(job, start, final, reports))
            for job, final in zip(jobs, finals, strict=True)
        ]
        with running(processes):
            for _ in processes:
                assert (await next_report(reports, 60))[0] == "ready"
            start.set()
            for _ in processes:
                assert (await next_report(reports, WRITE_SECONDS + 60))[0] == "wrote"
            closing = await cm.update_context(context_id, {"data": {"closed": True}}, user_id="dm")
            for final in finals:
                final.put(closing.revision)
            results: list[Report] = [(await next_report(reports, 60))[1] for _ in processes]
        await follower.wait_for(closing.revision, seconds=15)
        await follower.close()

    table, stored = sqlite_table(sqlite_url, context_id)
    tally = Tally()
    for report in results:
        tally.add(report.tally)
    assert tally.errors == [], "\n".join(tally.errors)
    assert tally.stale_landed > 0, "no stale update was merged: the run tested too little"
    check_converged(table, stored, created_document(created), tally)
    check_followed("test process", follower.events, 2, table)
    for report in sorted(results, key=lambda r: r.worker):
        first = 1 + (since[report.worker] if since[report.worker] is not None else 1)
        check_followed(f"worker {report.worker}", report.events, first, table)
        assert report.settled_read == stored
