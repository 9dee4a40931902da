"""What recording a call stores: the messages it brought, read into the neutral model, and
its row of the calls table, with the reply's change or alone."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..document import Append, Write
from ..errors import LoremasterError
from ..models import Message, ProviderType
from ..storage import CallRecord, ContextRecord, Mutation
from ._facts import Reply, Request
from ._history import Fingerprint, fingerprint
from ._ports import Translator
from ._wire import WireJson

__all__ = [
    "RecordCall",
    "SentMessages",
    "StoredHistoryChanged",
    "call_messages",
    "call_row",
    "with_call",
]


class StoredHistoryChanged(LoremasterError):
    """The stored history a request was compared with changed before its messages were
    stored: compare again."""


def call_messages(
    translator: Translator, request: Request, reply: Reply
) -> tuple[list[Message], Message]:
    """The request's messages and the reply, neutral. Read as one conversation, so that
    what depends on a part's place (Gemini's function calls without ids) reads the same
    as when a later request sends the reply back."""
    key = "contents" if request.provider is ProviderType.GOOGLE else "messages"
    payload = {**request.fragment, key: [*request.fragment.get(key, []), reply.turn]}
    read = translator.from_provider(payload, request.provider, model=_origin(request, reply))
    return read[:-1], read[-1]


def _origin(request: Request, reply: Reply) -> str:
    return reply.response_model or request.model


class SentMessages:
    """The requests of one recorded client, read: each request's messages are read into
    the neutral model once. A request that repeats the previous one's messages (as JSON,
    compared byte for byte) and adds some reads only those it adds, so that recording a
    call costs about the same at message 10 as at message 1,000.

    A request of Anthropic's or of Chat Completions (`Request.separable`) comes with the
    messages as the application gave them (SDK objects and all): `json` makes them JSON.
    """

    def __init__(self, json: WireJson | None = None) -> None:
        self.json = json or WireJson()
        self._head = b""
        self._keys: list[bytes] = []
        self._read: list[Message] = []
        self._prints: list[Fingerprint] = []

    def read(
        self, translator: Translator, request: Request, reply: Reply
    ) -> tuple[list[Message], list[Fingerprint], Message]:
        """The request's messages, their fingerprints, and the reply."""
        if not request.separable:
            sent, answer = call_messages(translator, request, reply)
            return sent, [fingerprint(message) for message in sent], answer
        given = request.fragment["messages"]
        head = self.json.key(request.fragment.get("system"))
        keys = [self.json.key(message) for message in given]
        known = len(self._keys)
        if known and head == self._head and keys[:known] == self._keys:
            sent, prints = self._read, self._prints
            if len(given) > known:
                added = translator.from_provider(
                    {"messages": self.json(given[known:])}, request.provider
                )
                sent, prints = [*sent, *added], [*prints, *map(fingerprint, added)]
        else:
            sent = translator.from_provider(self.json(request.fragment), request.provider)
            prints = [fingerprint(message) for message in sent]
        self._head, self._keys, self._read, self._prints = head, keys, sent, prints
        read = translator.from_provider(
            {"messages": [reply.turn]}, request.provider, model=_origin(request, reply)
        )
        return sent, prints, read[-1]


def with_call(reply: Message, call: Mapping[str, Any]) -> Message:
    """The reply with its call's record as ``metadata["call"]``."""
    return reply.model_copy(update={"metadata": {**reply.metadata, "call": dict(call)}})


def call_row(
    context_id: str,
    branch: str,
    call: Mapping[str, Any],
    *,
    created_at: int,
    message_id: str | None,
) -> CallRecord:
    """The calls table's row of a call's record."""
    usage = call.get("usage") or {}
    return CallRecord(
        context_id=context_id,
        call_id=uuid.uuid4().hex,
        created_at=created_at,
        branch=branch,
        message_id=message_id,
        provider=call["provider"],
        model=call["model"]["request"],
        input_tokens=usage.get("input_tokens", 0),
        output_tokens=usage.get("output_tokens", 0),
        cost_usd=call.get("cost_usd"),
        latency_ms=call["latency_ms"],
        failed=message_id is None,
        call=dict(call),
    )


@dataclass(frozen=True, slots=True)
class RecordCall:
    """A call's messages (the request's new ones, then the reply, last) and its row, in
    one change. With `expected_revision`, only onto the context as it was then (the
    history the request was compared with): else `StoredHistoryChanged`, nothing
    written."""

    append: Append
    call: Mapping[str, Any]
    branch: str
    expected_revision: int | None = None

    def plan(self, current: ContextRecord, write: Write) -> Mutation:
        expected = self.expected_revision
        if expected is not None and current.revision != expected:
            raise StoredHistoryChanged(
                f"context {current.context_id} is at revision {current.revision}, not the "
                f"{expected} its history was compared at"
            )
        mutation = self.append.plan(current, write)
        reply = mutation.messages[-1]
        row = call_row(
            current.context_id,
            self.branch,
            self.call,
            created_at=write.now,
            message_id=reply.message_id,
        )
        return dataclasses.replace(mutation, calls=(row,))
