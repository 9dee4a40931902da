"""The full dump's wire format: a whole database as JSON Lines. Pure: no I/O.

``loremaster-dump`` version 1. Line 1 is the header, then one group of lines per context,
then the footer. Each line is one JSON object; its ``record`` says what it holds::

    {"format": "loremaster-dump", "version": 1, "exported_at": "…", "backend": "sqlite", …}
    {"record": "context", "context_id": "…", "revision": 12, …}    the row, as stored
    {"record": "branch", "name": "went-left", …}                  each branch but main
    {"record": "message", "segment": "main", "seq": 1, "body": "{…}", …}
    {"record": "version", "number": 3, "kind": "delta", "payload": [{"op": …}], …}
    {"record": "event", "revision": 3, "op": "append", "changes": […], …}
    {"record": "end", "context_id": "…", "lines": 40, "sha256": "…"}
    {"record": "footer", "contexts": 200}

Keys are sorted (the outline above shows the tag first for reading), so a database's dump
depends on what it holds, not on the backend that holds it: PostgreSQL's JSONB keeps keys
in its own order. Version payloads and event changes keep the order they were stored in
(both backends keep those bytes as written), so a target with the same codec settings
stores the same payload bytes. Rows are written as stored, times in microseconds since the
epoch (UTC), with two exceptions: the context's edit lock (a live lease) is left out, and
no codec blob is written — a message's ``body`` is its JSON text and a version's
``payload`` its snapshot (the fields) or its JSON Patch, as plain JSON. The importer
encodes both again with its own codec, so a dump does not depend on compression settings,
trained dictionaries or codec secrets. ``end`` closes a context's group with the number of
its lines and the SHA-256 of their bytes (each line followed by ``\n``); the footer
counts the groups, so a dump cut short or altered is found and named by line.

Tag and field names are a wire format: they never change within a version; a new version
is added beside this one, and version 1 stays readable.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from ..errors import DataCorrupted, Issue, UnsupportedFormat, ValidationFailed
from ..patch import apply_stored_patch
from ..storage import (
    BranchRecord,
    ContextRecord,
    ContextRows,
    Coordination,
    EventRecord,
    MessageRecord,
    VersionRecord,
    VersionState,
)
from ..versioning import version_checksum

__all__ = [
    "DUMP_FORMAT",
    "DUMP_VERSION",
    "DumpReader",
    "DumpedContext",
    "DumpedVersion",
    "check_versions",
    "context_lines",
    "footer_line",
    "header_line",
    "is_dump",
]

DUMP_FORMAT = "loremaster-dump"
DUMP_VERSION = 1

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Header(BaseModel):
    model_config = _STRICT
    format: Literal["loremaster-dump"]
    version: Literal[1]
    exported_at: str
    backend: str
    schema_version: int


class _VersionState(BaseModel):
    model_config = _STRICT
    segment: str
    lineage: list[tuple[str, int]]
    head: str | None
    depth: int
    pending: list[dict[str, Any]] | None
    changes_since: int
    head_at: int


class _Context(BaseModel):
    model_config = _STRICT
    record: Literal["context"]
    context_id: str
    context_type: str
    title: str
    description: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    extra: dict[str, Any]
    state: str
    owner_id: str | None
    collaborators: list[str]
    permissions: dict[str, list[str]]
    revision: int
    message_count: int
    turn_count: int
    doc_bytes: int
    messages_bytes: int
    created_at: int
    last_modified: int
    last_accessed: int
    checksum: str | None
    version_number: int
    versioning: _VersionState
    conflicts: list[dict[str, Any]]


class _Branch(BaseModel):
    model_config = _STRICT
    record: Literal["branch"]
    name: str
    document: dict[str, Any]
    message_count: int
    turn_count: int
    messages_bytes: int
    versioning: _VersionState
    base_version: str | None
    created_by: str | None
    created_at: int
    last_modified: int


class _Message(BaseModel):
    model_config = _STRICT
    record: Literal["message"]
    segment: str
    seq: int
    message_id: str
    role: str
    body: str
    search_text: str
    created_at: int


class _Version(BaseModel):
    model_config = _STRICT
    record: Literal["version"]
    version_id: str
    number: int
    branch: str
    parent_id: str | None
    merge_parent_id: str | None
    kind: Literal["snapshot", "delta"]
    payload: Any
    message_seq: int
    view: list[tuple[str, int]]
    turn_count: int
    revision: int
    author: str | None
    message: str
    tags: list[str]
    created_at: int
    checksum: str
    automatic: bool


class _Event(BaseModel):
    model_config = _STRICT
    record: Literal["event"]
    revision: int
    op: str
    changes: list[dict[str, Any]]
    user_id: str | None
    created_at: int
    branch: str
    provider: str | None
    tool: str | None = None


class _End(BaseModel):
    model_config = _STRICT
    record: Literal["end"]
    context_id: str
    lines: int
    sha256: str


class _Footer(BaseModel):
    model_config = _STRICT
    record: Literal["footer"]
    contexts: int


_Line = Annotated[
    _Context | _Branch | _Message | _Version | _Event | _End | _Footer,
    Field(discriminator="record"),
]
_LINE: TypeAdapter[_Line] = TypeAdapter(_Line)


# -- writing ----------------------------------------------------------------------------


def header_line(*, exported_at: str, backend: str, schema_version: int) -> bytes:
    header = {
        "format": DUMP_FORMAT,
        "version": DUMP_VERSION,
        "exported_at": exported_at,
        "backend": backend,
        "schema_version": schema_version,
    }
    return orjson.dumps(header) + b"\n"


def footer_line(contexts: int) -> bytes:
    return orjson.dumps({"contexts": contexts, "record": "footer"}) + b"\n"


def context_lines(
    rows: ContextRows,
    *,
    payload_of: Callable[[VersionRecord], Any],
    body_of: Callable[[MessageRecord], bytes],
) -> Iterator[bytes]:
    """The lines of one context's group, made one at a time, ending with its ``end``.

    `payload_of` decodes a version's stored payload, `body_of` a message's stored body
    (JSON text)."""
    digest = hashlib.sha256()
    count = 0
    for fields in _records(rows, payload_of, body_of):
        line = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        digest.update(line)
        digest.update(b"\n")
        count += 1
        yield line + b"\n"
    end = {
        "record": "end",
        "context_id": rows.record.context_id,
        "lines": count,
        "sha256": digest.hexdigest(),
    }
    yield orjson.dumps(end, option=orjson.OPT_SORT_KEYS) + b"\n"


def _records(
    rows: ContextRows,
    payload_of: Callable[[VersionRecord], Any],
    body_of: Callable[[MessageRecord], bytes],
) -> Iterator[dict[str, Any]]:
    record = rows.record
    yield {
        "record": "context",
        "context_id": record.context_id,
        "context_type": record.context_type,
        "title": record.title,
        "description": record.description,
        "data": record.data,
        "metadata": record.metadata,
        "extra": record.extra,
        "state": record.state,
        "owner_id": record.owner_id,
        "collaborators": record.collaborators,
        "permissions": record.permissions,
        "revision": record.revision,
        "message_count": record.message_count,
        "turn_count": record.turn_count,
        "doc_bytes": record.doc_bytes,
        "messages_bytes": record.messages_bytes,
        "created_at": record.created_at,
        "last_modified": record.last_modified,
        "last_accessed": record.last_accessed,
        "checksum": record.checksum,
        "version_number": record.version_number,
        "versioning": record.versioning.to_json(),
        "conflicts": list(record.coordination.conflicts),  # the lease is left out
    }
    for branch in rows.branches:
        yield {
            "record": "branch",
            "name": branch.name,
            "document": branch.document,
            "message_count": branch.message_count,
            "turn_count": branch.turn_count,
            "messages_bytes": branch.messages_bytes,
            "versioning": branch.versioning.to_json(),
            "base_version": branch.base_version,
            "created_by": branch.created_by,
            "created_at": branch.created_at,
            "last_modified": branch.last_modified,
        }
    for segment, message in rows.messages:
        yield {
            "record": "message",
            "segment": segment,
            "seq": message.seq,
            "message_id": message.message_id,
            "role": message.role,
            "body": body_of(message).decode(),
            "search_text": message.search_text,
            "created_at": message.created_at,
        }
    for version in rows.versions:
        yield {
            "record": "version",
            "version_id": version.version_id,
            "number": version.number,
            "branch": version.branch,
            "parent_id": version.parent_id,
            "merge_parent_id": version.merge_parent_id,
            "kind": version.kind,
            "payload": orjson.Fragment(orjson.dumps(payload_of(version))),
            "message_seq": version.message_seq,
            "view": [list(piece) for piece in version.view],
            "turn_count": version.turn_count,
            "revision": version.revision,
            "author": version.author,
            "message": version.message,
            "tags": list(version.tags),
            "created_at": version.created_at,
            "checksum": version.checksum,
            "automatic": version.automatic,
        }
    for event in rows.events:
        yield {
            "record": "event",
            "revision": event.revision,
            "op": event.op,
            "changes": orjson.Fragment(orjson.dumps(event.changes)),
            "user_id": event.user_id,
            "created_at": event.created_at,
            "branch": event.branch,
            "provider": event.provider,
            **({} if event.tool is None else {"tool": event.tool}),
        }


# -- reading ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DumpedVersion:
    """A version read from a dump: its record (``payload`` empty, ``size_bytes`` 0), its
    payload decoded, and the line it was on."""

    record: VersionRecord
    content: Any
    line: int


@dataclass(slots=True)
class DumpedContext:
    """One context's group, read and checked against its ``end`` line. Message bodies
    are JSON text in ``body`` (never a blob)."""

    record: ContextRecord
    line: int
    """The line of its ``context`` record."""
    branches: list[BranchRecord] = field(default_factory=list)
    messages: list[tuple[str, MessageRecord]] = field(default_factory=list)
    versions: list[DumpedVersion] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    end_line: int = 0


def is_dump(first_line: bytes) -> bool:
    """Whether `first_line` is a full dump's header (of any version)."""
    try:
        header = orjson.loads(first_line)
    except orjson.JSONDecodeError:
        return False
    return isinstance(header, dict) and header.get("format") == DUMP_FORMAT


class DumpReader:
    """Reads a dump one line at a time: `feed` each line as read (it returns a context
    once its group is complete and checked), then `finish`. Memory holds one context.

    Malformed lines raise `ValidationFailed`, a group or dump that does not add up
    (truncated, altered) `DataCorrupted`, an unknown format or version
    `UnsupportedFormat`; every message names the line.
    """

    def __init__(self) -> None:
        self.line = 0
        self.contexts = 0
        self.header: dict[str, Any] | None = None
        self._group: DumpedContext | None = None
        self._digest = hashlib.sha256()
        self._count = 0
        self._ended = False

    def feed(self, raw: bytes) -> DumpedContext | None:
        self.line += 1
        text = raw.rstrip(b"\r\n")
        if self.header is None:
            self.header = _header(text)
            return None
        if self._ended:
            raise ValidationFailed(f"dump line {self.line}: nothing may follow the footer")
        line = self._parse(text)
        group = self._group
        if isinstance(line, _Context):
            if group is not None:
                raise self._cut(group)
            self._group = DumpedContext(_context(line, self.line), self.line)
            self._digest = hashlib.sha256()
            self._count = 0
        elif isinstance(line, _Footer):
            if group is not None:
                raise self._cut(group)
            if line.contexts != self.contexts:
                raise DataCorrupted(
                    f"dump line {self.line}: the footer counts {line.contexts} contexts, "
                    f"the dump holds {self.contexts}"
                )
            self._ended = True
            return None
        elif group is None:
            raise ValidationFailed(
                f"dump line {self.line}: a {line.record} record outside a context's group"
            )
        elif isinstance(line, _End):
            return self._close(group, line)
        else:
            self._add(group, line)
        self._digest.update(text)
        self._digest.update(b"\n")
        self._count += 1
        return None

    def finish(self) -> None:
        """At the end of the input: `DataCorrupted` if the dump stops short."""
        if self.header is None:
            raise ValidationFailed("the dump is empty")
        if self._group is not None:
            raise self._cut(self._group)
        if not self._ended:
            raise DataCorrupted(
                f"the dump ends at line {self.line} without its footer: it was cut short"
            )

    def _parse(self, text: bytes) -> _Line:
        try:
            return _LINE.validate_json(text, strict=True)
        except PydanticValidationError as exc:
            raise ValidationFailed(
                f"dump line {self.line} is not a valid record", _issues(exc)
            ) from exc

    def _cut(self, group: DumpedContext) -> DataCorrupted:
        return DataCorrupted(
            f"dump line {self.line}: context {group.record.context_id} (from line {group.line}) "
            "has no end record: the dump was cut short or altered"
        )

    def _add(self, group: DumpedContext, line: _Line) -> None:
        context_id = group.record.context_id
        if isinstance(line, _Branch):
            group.branches.append(_branch(line, context_id))
        elif isinstance(line, _Message):
            message = MessageRecord(
                line.seq,
                line.message_id,
                line.role,
                line.body.encode(),
                None,
                line.search_text,
                line.created_at,
            )
            group.messages.append((line.segment, message))
        elif isinstance(line, _Version):
            group.versions.append(
                DumpedVersion(_version(line, context_id), line.payload, self.line)
            )
        elif isinstance(line, _Event):
            group.events.append(
                EventRecord(
                    context_id,
                    line.revision,
                    line.op,
                    line.changes,
                    line.user_id,
                    line.created_at,
                    line.branch,
                    line.provider,
                    line.tool,
                )
            )

    def _close(self, group: DumpedContext, end: _End) -> DumpedContext:
        where = f"dump line {self.line}: context {group.record.context_id}"
        if end.context_id != group.record.context_id:
            raise DataCorrupted(f"{where} ends with the end record of {end.context_id}")
        if end.lines != self._count:
            raise DataCorrupted(f"{where} has {self._count} lines, its end record says {end.lines}")
        if end.sha256 != self._digest.hexdigest():
            raise DataCorrupted(f"{where} fails its SHA-256: the dump was altered")
        group.end_line = self.line
        self._group = None
        self.contexts += 1
        return group


def _header(text: bytes) -> dict[str, Any]:
    if not is_dump(text):
        raise UnsupportedFormat(f"line 1 is not the header of a {DUMP_FORMAT} file")
    header = orjson.loads(text)
    if header.get("version") != DUMP_VERSION:
        raise UnsupportedFormat(f"{DUMP_FORMAT} version {header.get('version')!r} is not supported")
    try:
        return _Header.model_validate_json(text, strict=True).model_dump()
    except PydanticValidationError as exc:
        raise ValidationFailed("dump line 1 is not a valid header", _issues(exc)) from exc


def _issues(exc: PydanticValidationError) -> list[Issue]:
    return [
        Issue("/" + "/".join(str(part) for part in error["loc"]), error["msg"])
        for error in exc.errors(include_url=False)
    ]


def _state(value: _VersionState) -> VersionState:
    return VersionState(
        segment=value.segment,
        lineage=tuple(value.lineage),
        head=value.head,
        depth=value.depth,
        pending=value.pending,
        changes_since=value.changes_since,
        head_at=value.head_at,
    )


def _context(line: _Context, number: int) -> ContextRecord:
    try:
        canonical = str(uuid.UUID(line.context_id)) == line.context_id
    except ValueError:
        canonical = False
    if not canonical:
        raise ValidationFailed(
            f"dump line {number}: context_id {line.context_id!r} is not a lowercase UUID"
        )
    return ContextRecord(
        context_id=line.context_id,
        context_type=line.context_type,
        title=line.title,
        description=line.description,
        data=line.data,
        metadata=line.metadata,
        extra=line.extra,
        state=line.state,
        owner_id=line.owner_id,
        collaborators=line.collaborators,
        permissions=line.permissions,
        revision=line.revision,
        message_count=line.message_count,
        turn_count=line.turn_count,
        doc_bytes=line.doc_bytes,
        messages_bytes=line.messages_bytes,
        created_at=line.created_at,
        last_modified=line.last_modified,
        last_accessed=line.last_accessed,
        checksum=line.checksum,
        version_number=line.version_number,
        versioning=_state(line.versioning),
        coordination=Coordination(lease=None, conflicts=tuple(line.conflicts)),
    )


def _branch(line: _Branch, context_id: str) -> BranchRecord:
    return BranchRecord(
        context_id=context_id,
        name=line.name,
        document=line.document,
        message_count=line.message_count,
        turn_count=line.turn_count,
        messages_bytes=line.messages_bytes,
        versioning=_state(line.versioning),
        base_version=line.base_version,
        created_by=line.created_by,
        created_at=line.created_at,
        last_modified=line.last_modified,
    )


def _version(line: _Version, context_id: str) -> VersionRecord:
    return VersionRecord(
        version_id=line.version_id,
        context_id=context_id,
        number=line.number,
        branch=line.branch,
        parent_id=line.parent_id,
        kind=line.kind,
        payload=b"",
        message_seq=line.message_seq,
        view=tuple(line.view),
        turn_count=line.turn_count,
        revision=line.revision,
        author=line.author,
        message=line.message,
        tags=tuple(line.tags),
        created_at=line.created_at,
        checksum=line.checksum,
        size_bytes=0,
        merge_parent_id=line.merge_parent_id,
        automatic=line.automatic,
    )


# -- checking ---------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def check_versions(versions: Sequence[DumpedVersion]) -> None:
    """Rebuild every version from the decoded payloads and check it against its checksum
    (`DataCorrupted` naming the line of the first that fails). Each version is rebuilt
    once, from its parent's document; a document is kept only while a version resting on
    it waits. The payloads are left as they are."""
    by_id = {v.record.version_id: v for v in versions}
    children: defaultdict[str, list[DumpedVersion]] = defaultdict(list)
    for version in versions:
        if version.record.kind == "delta":
            parent = version.record.parent_id
            if parent is None or parent not in by_id:
                raise DataCorrupted(
                    f"dump line {version.line}: version {version.record.version_id} is a patch "
                    f"on version {parent}, which the dump does not hold"
                )
            children[parent].append(version)
    rebuilt = 0
    for snapshot in versions:
        if snapshot.record.kind != "snapshot":
            continue
        if not isinstance(snapshot.content, dict):
            raise DataCorrupted(
                f"dump line {snapshot.line}: snapshot {snapshot.record.version_id} does not "
                "hold a document"
            )
        waiting: list[tuple[DumpedVersion, dict[str, Any]]] = [(snapshot, _copy(snapshot.content))]
        while waiting:
            version, document = waiting.pop()
            if version_checksum(document, version.record.view) != version.record.checksum:
                raise DataCorrupted(
                    f"dump line {version.line}: version {version.record.version_id} of context "
                    f"{version.record.context_id} fails its checksum"
                )
            rebuilt += 1
            kids = children.pop(version.record.version_id, [])
            for index, child in enumerate(kids):
                base = document if index == len(kids) - 1 else _copy(document)
                waiting.append((child, _patched(base, child)))
    if rebuilt != len(versions):
        stray = next(iter(children.values()))[0]
        raise DataCorrupted(
            f"dump line {stray.line}: version {stray.record.version_id} does not rest on a snapshot"
        )


def _patched(document: dict[str, Any], version: DumpedVersion) -> dict[str, Any]:
    patch = version.content
    if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
        raise DataCorrupted(
            f"dump line {version.line}: version {version.record.version_id} is a delta without "
            "a JSON Patch"
        )
    try:
        return apply_stored_patch(document, _copy(patch))
    except DataCorrupted as exc:
        raise DataCorrupted(f"dump line {version.line}: {exc.message}") from exc
