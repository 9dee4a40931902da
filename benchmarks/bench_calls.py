"""What recording a call costs: the same SDK call, recorded and not, in the same run.

The official Anthropic client calls the providers' stand-in (tests/_providers.py, served
from a process of its own so that it does not share this one's interpreter lock) with a
conversation growing by a turn per call: once as the application's own client, once as
`record_calls` returned it, alternately, so that drift hits both alike. Printed: the
median latency of each and what recording adds, for a plain call and for a streamed one
read to its end (the recording, an append of the turn and the reply in one SQLite
transaction, happens before the call returns or the stream's last item is handed over),
over the first turns (a conversation of a usual length: the target) and the last ones (a
long one), beside the same turn stored with `append_messages` (what storing costs
anyway). Wall-clock figures swing with the machine's load; processor time (this
process's, its SQLite thread's included) much less.
Then the bookkeeping per streamed chunk alone: a stream of in-memory chunks read through
the tap that watches it, beside the same chunks read directly.

Run: python benchmarks/bench_calls.py [--quick]
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

from loremaster import ContextManager, ConversationContext
from loremaster.calls import StreamTap

from _common import QUICK, row, run

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from _providers import Answer, StandIn

CALLS = 150 if QUICK else 600
WARM_UP = 20
BAND = 50
"""Turns per band: the first ones, and the last."""
CHUNKS = 20_000 if QUICK else 200_000
STREAMED = Answer(" ".join(f"word{n}" for n in range(100)))  # 100 text deltas, 106 events
MODEL = "claude-sonnet-4-6"


def serve(ports: Any) -> None:
    """The stand-in, in a process of its own; it answers every call with `STREAMED`."""
    stand_in = StandIn.start()
    stand_in.script("anthropic", *([STREAMED] * 10 * (CALLS + WARM_UP)))
    ports.put(stand_in.port)
    time.sleep(3600)


Sample = tuple[float, float]
"""A duration: wall-clock and processor time (this process's threads, its SQLite
writer's among them), seconds."""


async def measured(call: Awaitable[Any]) -> tuple[Any, Sample]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = await call
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


async def compare(port: int, url: str, *, stream: bool) -> dict[str, list[Sample]]:
    """Each of `CALLS` turns (after a warm-up) sent by the application's own client and
    by the recorded one, and the same two messages appended to another conversation with
    `append_messages` (what storing the turn costs by itself), one after the other."""
    stand_in = StandIn()
    stand_in.port = port
    samples: dict[str, list[Sample]] = {"plain": [], "recorded": [], "append": []}
    async with ContextManager(url) as cm:
        context_id = await cm.create_context(ConversationContext(title="benchmark"))
        floor_id = await cm.create_context(ConversationContext(title="the floor"))
        own = stand_in.anthropic()
        recorded = cm.record_calls(stand_in.anthropic(), context_id)

        async def once(client: Any, history: list[dict[str, Any]]) -> Any:
            request = {"model": MODEL, "max_tokens": 256, "messages": history}
            if not stream:
                return (await client.messages.create(**request)).content
            async with client.messages.stream(**request) as events:
                return (await events.get_final_message()).content

        history: list[dict[str, Any]] = []
        for turn in range(WARM_UP + CALLS):
            history.append({"role": "user", "content": f"And then, {turn}?"})
            # The append follows a call, as the recording does: a thread woken after a
            # wait on the network is slower to run on a busy machine than one kept busy.
            reply, plain = await measured(once(own, history))
            turn_messages = [history[-1], {"role": "assistant", "content": reply[0].text}]
            _, append = await measured(cm.append_messages(floor_id, turn_messages))
            reply, watched = await measured(once(recorded, history))
            history.append({"role": "assistant", "content": reply})
            if turn >= WARM_UP:
                for name, sample in (("plain", plain), ("recorded", watched), ("append", append)):
                    samples[name].append(sample)
        stats = await cm.get_performance_stats(max_age=0)
        assert stats["calls"]["record_failures"] == 0
        await stand_in.close_clients()
    return samples


def report(label: str, found: dict[str, list[Sample]], band: str) -> None:
    """The wall-clock and processor-time rows of one kind of call in one band of turns;
    the target is judged on the early band (a conversation of a usual length)."""
    judged = band == "early"
    (plain, plain_cpu), (recorded, recorded_cpu), (append, append_cpu) = (
        medians(found[name]) for name in ("plain", "recorded", "append")
    )
    for name, figures in (
        (label, (plain, recorded, append)),
        ("  processor time", (plain_cpu, recorded_cpu, append_cpu)),
    ):
        alone, watched, floor = figures
        added = watched - alone
        row(
            name,
            alone,
            watched,
            added,
            floor,
            target="added <= 2 ms" if judged else "",
            ok=added <= 2 if judged else None,
        )


def medians(samples: list[Sample]) -> tuple[float, float]:
    """Median wall-clock and processor milliseconds."""
    return (
        statistics.median(wall for wall, _ in samples) * 1000,
        statistics.median(cpu for _, cpu in samples) * 1000,
    )


async def chunks(count: int) -> AsyncIterator[int]:
    for number in range(count):
        yield number


async def per_chunk() -> tuple[float, float]:
    """Microseconds per chunk read directly, and through a tap."""

    async def ended(tap: StreamTap, error: BaseException | None, partial: bool) -> None:
        assert len(tap.items) == CHUNKS

    started = time.perf_counter()
    async for _ in chunks(CHUNKS):
        pass
    direct = time.perf_counter() - started
    started = time.perf_counter()
    async for _ in StreamTap(ended).watch(chunks(CHUNKS)):
        pass
    tapped = time.perf_counter() - started
    return direct / CHUNKS * 1e6, tapped / CHUNKS * 1e6


async def main() -> None:
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    server = context.Process(target=serve, args=(ports,), daemon=True)
    server.start()
    port = ports.get(timeout=60)
    try:
        print(f"Recording calls: {CALLS} turns, each sent by the Anthropic SDK's own client and")
        print("by the recorded one, against the stand-in (the answer streamed in 100 deltas),")
        print("into SQLite; beside it, the turn stored by append_messages. Medians of the first")
        early, late = 2 * (WARM_UP + BAND), 2 * (WARM_UP + CALLS)
        print(f"{BAND} turns after a warm-up (a conversation of up to {early} messages) and")
        print(f"of the last {BAND} (up to {late}), ms: wall clock, then processor time.")
        row("figure (ms)", "SDK alone", "recorded", "added", "append alone")
        with tempfile.TemporaryDirectory() as folder:
            for stream in (False, True):
                url = f"sqlite:///{folder}/{'stream' if stream else 'plain'}.db"
                found = await compare(port, url, stream=stream)
                kind = "streamed call, read whole" if stream else "plain call"
                for band, label in ((slice(0, BAND), "early"), (slice(-BAND, None), "late")):
                    report(f"{kind}, {label}", {k: v[band] for k, v in found.items()}, label)
        direct, tapped = await per_chunk()
        row(
            "per streamed chunk (µs): direct, tapped, added",
            direct,
            tapped,
            tapped - direct,
            target="added ~1 µs",
            ok=tapped - direct <= 1.5,
        )
    finally:
        server.terminate()


if __name__ == "__main__":
    run(main)
