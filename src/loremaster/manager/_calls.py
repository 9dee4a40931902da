"""Calls to AI providers: recorded clients (this is what they record into), `complete` with
its fallback from one provider to the next, and the recorded calls listed."""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._storable import describe
from ..calls import (
    Caller,
    CallRecorder,
    Fingerprint,
    Finished,
    HistoryPlan,
    RecordCall,
    Reply,
    Request,
    StoredHistoryChanged,
    Timing,
    call_messages,
    call_record,
    call_row,
    caller_of,
    check_on_record_error,
    cost_of,
    describe_error,
    fingerprint,
    plan_history,
    record_client,
    with_call,
)
from ..document import Append, canonical_id, writable
from ..errors import BackendUnavailable, Issue, ValidationFailed
from ..models import Message, ProviderCall, RecordedCall, from_micros
from ..storage import ContextRecord, Storage
from ..versioning import (
    CreateBranch,
    CreateVersion,
    ForkPoint,
    VersionRequest,
    branch_document,
    cut,
    view_of,
)
from . import _arguments as arg
from ._contexts import Contexts, MessageInput
from ._metrics import Metrics
from ._providers import Providers
from ._wiring import Core
from ._writer import now

__all__ = ["Calls", "call_statistics"]

log = logging.getLogger("loremaster.calls")

_ATTEMPTS = 4
_HISTORIES_KEPT = 256
_PORTABLE_OPTIONS = ("max_tokens", "temperature", "top_p", "stop_sequences")


@dataclass(frozen=True, slots=True)
class _Known:
    """What a branch holds as of the context's `revision`: its messages' fingerprints,
    and the branch as read (None: as this manager wrote it)."""

    revision: int
    prints: list[Fingerprint]
    view: ContextRecord | None = None


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a call is recorded: a context's branch, written as a user."""

    context_id: str
    branch: str
    user_id: str | None


class Calls:
    """Records the calls of recorded clients (a `CallSink`) and makes `complete`'s."""

    def __init__(self, core: Core, contexts: Contexts, providers: Providers) -> None:
        self._core = core
        self._contexts = contexts
        self._providers = providers
        self._histories: OrderedDict[tuple[str, str], _Known] = OrderedDict()
        """What a branch held when this manager last read or wrote it: spares reading
        every message anew for each call."""

    # -- recorded clients ----------------------------------------------------------------

    def record_calls(
        self,
        client: Any,
        context_id: str,
        user_id: str | None,
        branch: str | None,
        on_record_error: Any,
    ) -> Any:
        recorder = CallRecorder(
            self,
            self._core.translator,
            self._core.metrics.measure,
            canonical_id(context_id),
            user_id=arg.user(user_id),
            branch=arg.text(branch or "main", "branch"),
            on_record_error=check_on_record_error(on_record_error),
        )
        return record_client(client, recorder)

    async def record(
        self, recorder: CallRecorder, finished: Finished, call: dict[str, Any]
    ) -> RecordedCall:
        """Store a call: the request's messages the branch does not hold yet and the
        reply, in one change; a request whose history departs from the branch's on a new
        branch; a call that failed as its record alone."""
        where = _Where(recorder.context_id, recorder.branch, recorder.user_id)
        if finished.reply is None:
            return await self._failed(where, finished.request, call)
        sent, prints, reply = recorder.sent.read(
            self._core.translator, finished.request, finished.reply
        )
        reply = with_call(reply, call)
        for attempt in range(_ATTEMPTS):
            known = await self._stored(where, fresh=attempt > 0)
            plan = plan_history(known.prints, sent, prints, continues=finished.request.continues)
            try:
                if not plan.departs:
                    return await self._store(where, known, plan, reply)
                forked, start = await self._fork(known, plan.keep, where)
                return await self._store(forked, start, plan, reply, branched_from=where.branch)
            except StoredHistoryChanged:
                continue
        raise StoredHistoryChanged(
            f"the history of context {where.context_id} on {where.branch} kept changing "
            "while a call was recorded into it"
        )

    async def _stored(self, where: _Where, *, fresh: bool) -> _Known:
        """What the branch holds: as this manager last wrote or read it, unless `fresh`
        (a stale answer costs nothing: the write it leads to is refused, see
        `RecordCall`); else read, as the user sees it."""
        key = (where.context_id, where.branch)
        if not fresh and key in self._histories:
            return self._histories[key]
        reader = self._core.reader
        view = await reader.on_branch(
            await reader.readable(where.context_id, where.user_id, fresh=fresh), where.branch
        )
        prints = [fingerprint(message) for message in await reader.messages(view)]
        return self._remember(key, _Known(view.revision, prints, view))

    def _remember(self, key: tuple[str, str], known: _Known) -> _Known:
        self._histories[key] = known
        self._histories.move_to_end(key)
        if len(self._histories) > _HISTORIES_KEPT:
            self._histories.popitem(last=False)
        return known

    async def _fork(self, known: _Known, keep: int, where: _Where) -> tuple[_Where, _Known]:
        """A new branch holding the first `keep` messages of the branch (nothing is
        copied): where the call goes, and what it holds. The branch's newest version must
        hold what it holds now: if it does not, one is made, and the history compared
        again."""
        view, writer = known.view, self._core.writer
        if view is None:
            raise StoredHistoryChanged("read the branch to fork it")
        state = view.versioning
        if state.head is None or state.changes_since:
            version = CreateVersion(
                VersionRequest(where.user_id, "before a call's history departed"),
                where.branch,
                self._core.versioning,
            )
            await writer.commit(
                where.context_id, version, user_id=where.user_id, branch=where.branch
            )
            raise StoredHistoryChanged("versioned the branch to fork it")
        name = f"call-{uuid.uuid4().hex[:8]}"
        fork = ForkPoint(
            version_id=state.head,
            document=branch_document(view),
            view=cut(view_of(state, view.message_count), keep),
            turn_count=sum(role == "user" for role, _ in known.prints[:keep]),
        )
        change = CreateBranch(name, fork, self._core.versioning)
        record, _ = await writer.create_branch(
            where.context_id, name, change, user_id=where.user_id
        )
        start = self._remember(
            (where.context_id, name), _Known(record.revision, known.prints[:keep])
        )
        return _Where(where.context_id, name, where.user_id), start

    async def _store(
        self,
        where: _Where,
        known: _Known,
        plan: HistoryPlan,
        reply: Message,
        *,
        branched_from: str | None = None,
    ) -> RecordedCall:
        """Append the plan's new messages and `reply` to the branch, with the call's row,
        if it is still as `known`, what the plan was made from (else
        `StoredHistoryChanged`)."""
        key = (where.context_id, where.branch)
        call = reply.metadata["call"]
        # Ids of their own: a message read for an earlier call may have been stored then.
        messages = [
            *(message.model_copy(update={"id": uuid.uuid4().hex}) for message in plan.new),
            reply,
        ]
        change = RecordCall(Append(messages, self._core.bodies), call, where.branch, known.revision)
        try:
            done = await self._core.writer.commit(
                where.context_id,
                change,
                user_id=where.user_id,
                branch=where.branch,
                provider=call["provider"],
            )
        except StoredHistoryChanged:
            self._histories.pop(key, None)
            raise
        # The request's own fingerprints (equal to the stored ones they matched): the next
        # request's are the same objects, and compare by identity first.
        prints = [*plan.kept_prints, *plan.new_prints, fingerprint(reply)]
        self._remember(key, _Known(done.record.revision, prints))
        assert done.mutation is not None
        stored_reply = reply.model_copy(update={"seq": done.mutation.messages[-1].seq})
        return _recorded(
            where,
            call,
            stored_reply,
            messages,
            revision=done.record.revision,
            branched_from=branched_from,
        )

    async def _failed(self, where: _Where, request: Request, call: dict[str, Any]) -> RecordedCall:
        """A call that failed: its record alone, no message."""
        writable(await self._core.reader.readable(where.context_id, where.user_id), where.user_id)
        row = call_row(where.context_id, where.branch, call, created_at=now(), message_id=None)
        await self._core.storage.insert_calls([row])
        return RecordedCall(
            context_id=where.context_id,
            branch=where.branch,
            provider=request.provider,
            model=request.model,
            call=call,
        )

    # -- complete ------------------------------------------------------------------------

    async def complete(
        self,
        context_id: str,
        messages: Sequence[MessageInput] | MessageInput | str,
        *,
        providers: Sequence[tuple[Any, str]],
        user_id: str | None,
        branch: str,
        options: Mapping[str, Any],
    ) -> RecordedCall:
        where = _Where(canonical_id(context_id), branch, user_id)
        callers = _callers(providers)
        _check_options(options)
        if isinstance(messages, str):
            messages = {"role": "user", "content": messages}
        await self._contexts.append_one(
            where.context_id, messages, user_id, None, branch=branch, lock_token=None
        )
        fallbacks: list[dict[str, Any]] = []
        for number, (caller, client, model) in enumerate(callers, start=1):
            request, body, warnings = await self._request(caller, model, where, options)
            started = time.perf_counter()
            try:
                reply, request_id, first = await _attempt(caller, client, body)
            except Exception as exc:
                failure = Finished(request, Timing(started, time.perf_counter()), error=exc)
                if caller.is_transient(exc) and number < len(callers):
                    fallbacks.append(_fallback(failure))
                    continue
                await self._record_failure(where, failure, fallbacks)
                raise
            timing = Timing(started, time.perf_counter(), first)
            finished = Finished(request, timing, reply, request_id=request_id)
            return await self._store_completion(where, finished, fallbacks, warnings)
        raise AssertionError("providers is not empty")  # checked by _callers

    async def _request(
        self, caller: Caller, model: str, where: _Where, options: Mapping[str, Any]
    ) -> tuple[Request, dict[str, Any], list[str]]:
        """The conversation as `model` takes it: fitted to its window if the registry knows
        the model (else as it is, with a warning); the request's body."""
        info = self._core.translator.model(caller.provider, model)
        warnings = []
        if not info.known:
            warnings.append(
                f"{model!r} is a model loremaster does not know: the conversation was not "
                "fitted to its window"
            )
            log.warning("%s", warnings[-1])
        fragment = await self._providers.export(
            where.context_id,
            caller.provider,
            where.user_id,
            model,
            branch=where.branch,
            fit=info.known,
            reserve_output=None,
        )
        body = caller.request_body(fragment, model, options, info.max_output)
        settings = dict(options)
        if "max_tokens" in body:
            settings["max_tokens"] = body["max_tokens"]
        request = Request(caller.provider, caller.operation, model, fragment, True, settings)
        return request, body, warnings

    async def _store_completion(
        self,
        where: _Where,
        finished: Finished,
        fallbacks: list[dict[str, Any]],
        warnings: list[str],
    ) -> RecordedCall:
        """Store the reply that served (the user's messages are stored already). The
        reply is returned even when storing it fails: logged and counted."""
        translator, metrics = self._core.translator, self._core.metrics
        assert finished.reply is not None
        call = call_record(finished, cost_of(finished, translator))
        if fallbacks:
            call["fallbacks"] = fallbacks
        if warnings:
            call["warnings"] = warnings
        reply = with_call(call_messages(translator, finished.request, finished.reply)[1], call)
        try:
            with metrics.measure("record_call"):
                change = RecordCall(Append([reply], self._core.bodies), call, where.branch)
                done = await self._core.writer.commit(
                    where.context_id,
                    change,
                    user_id=where.user_id,
                    branch=where.branch,
                    provider=call["provider"],
                )
        except Exception as exc:
            log.warning("a completion of context %s was not recorded: %s", where.context_id, exc)
            unstored = _recorded(where, call, reply, [reply])
            return unstored.model_copy(
                update={"recorded": False, "record_error": f"{type(exc).__name__}: {exc}"}
            )
        assert done.mutation is not None
        stored = reply.model_copy(update={"seq": done.mutation.messages[-1].seq})
        return _recorded(where, call, stored, [reply], revision=done.record.revision)

    async def _record_failure(
        self, where: _Where, failure: Finished, fallbacks: list[dict[str, Any]]
    ) -> None:
        """Record the call that ended `complete` without a reply (the last attempt, the
        ones before it in its ``fallbacks``); a failure to record it is logged only: the
        provider's error is what the caller gets."""
        call = call_record(failure, None)
        if fallbacks:
            call["fallbacks"] = fallbacks
        try:
            with self._core.metrics.measure("record_call"):
                await self._failed(where, failure.request, call)
        except Exception as exc:
            log.warning(
                "a failed completion of context %s was not recorded: %s", where.context_id, exc
            )

    # -- listing -------------------------------------------------------------------------

    async def list(
        self, context_id: str, user_id: str | None, limit: int, branch: str | None
    ) -> list[ProviderCall]:
        context_id = canonical_id(context_id)
        arg.count(limit, "limit", lowest=1, highest=1000)
        if branch is not None:
            arg.text(branch, "branch")
        await self._core.reader.readable(context_id, user_id, include_deleted=True)
        rows = await self._core.storage.load_calls(context_id, branch=branch, limit=limit)
        return [
            ProviderCall(
                call_id=row.call_id,
                context_id=row.context_id,
                branch=row.branch,
                message_id=row.message_id,
                created_at=from_micros(row.created_at),
                provider=row.provider,
                model=row.model,
                input_tokens=row.input_tokens,
                output_tokens=row.output_tokens,
                cost_usd=row.cost_usd,
                latency_ms=row.latency_ms,
                failed=row.failed,
                call=row.call,
            )
            for row in rows
        ]


def _recorded(
    where: _Where,
    call: dict[str, Any],
    reply: Message,
    messages: Sequence[Message],
    *,
    revision: int | None = None,
    branched_from: str | None = None,
) -> RecordedCall:
    return RecordedCall(
        context_id=where.context_id,
        branch=where.branch,
        provider=call["provider"],
        model=call["model"]["request"],
        call=call,
        reply=reply,
        message_ids=[message.id for message in messages],
        revision=revision,
        branched_from=branched_from,
    )


def _callers(providers: Any) -> list[tuple[Caller, Any, str]]:
    if not isinstance(providers, Sequence) or isinstance(providers, (str, bytes)) or not providers:
        raise ValidationFailed(
            "providers is a list of (client, model) pairs, at least one",
            [Issue("/providers", describe(providers))],
        )
    callers = []
    for index, entry in enumerate(providers):
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
            raise ValidationFailed(
                "each provider is a (client, model) pair",
                [Issue(f"/providers/{index}", describe(entry))],
            )
        client, model = entry
        callers.append((caller_of(client), client, arg.text(model, f"providers/{index}/model")))
    return callers


def _check_options(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - set(_PORTABLE_OPTIONS))
    if unknown:
        raise ValidationFailed(
            f"complete() takes the options every provider understands: "
            f"{', '.join(_PORTABLE_OPTIONS)}",
            [Issue(f"/{name}", "not a portable option", "option.unknown") for name in unknown],
        )


async def _attempt(
    caller: Caller, client: Any, body: Mapping[str, Any]
) -> tuple[Reply, str | None, float | None]:
    """One provider's streamed answer, read whole: the reply, the request id and when
    its first chunk came. A stream that ends before its reply does is a failure."""
    stream, request_id = await caller.open_stream(client, body)
    items: list[Any] = []
    first: float | None = None
    async for item in stream:
        if first is None:
            first = time.perf_counter()
        items.append(item)
    reply = caller.read_stream(items)
    if not reply.complete:
        raise ConnectionError(f"the {caller.provider.value} stream ended before its reply did")
    return reply, request_id, first


def _fallback(failure: Finished) -> dict[str, Any]:
    """A failed attempt as the reply's ``metadata["call"]["fallbacks"]`` lists it."""
    assert failure.error is not None
    return {
        "provider": failure.request.provider.value,
        "model": failure.request.model,
        "latency_ms": failure.timing.latency_ms,
        "error": describe_error(failure.error),
    }


async def call_statistics(storage: Storage, metrics: Metrics) -> dict[str, Any]:
    """The recorded calls per provider (tokens, cost) and the calls this process failed
    to record; with the database unavailable, why the totals are missing."""
    recording = metrics.operations.get("record_call")
    figures: dict[str, Any] = {"record_failures": 0 if recording is None else recording.errors}
    try:
        totals = await storage.call_totals()
    except BackendUnavailable as exc:
        return figures | {"unavailable": str(exc)}
    figures["by_provider"] = {
        total.provider: {
            "calls": total.calls,
            "failed": total.failed,
            "input_tokens": total.input_tokens,
            "output_tokens": total.output_tokens,
            "cost_usd": round(total.cost_usd, 6),
        }
        for total in totals
    }
    return figures
