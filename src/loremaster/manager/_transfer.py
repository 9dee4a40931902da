"""Moving a whole database: the full export and import (``loremaster export --full``,
``loremaster import``), the I/O around the dump format of `_dump`.

The export reads one context at a time (all its rows in one read transaction), checks that
every version rebuilds, and yields its lines one by one; the import reads lines one by one,
and for each complete, checked context group writes all its rows in one transaction, then
reads them back. Memory holds one context, never the database.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ..codec import Codec, inspect_blob
from ..document._records import MessageBodies, verify_checksum
from ..errors import (
    DataCorrupted,
    LoremasterError,
    PermissionDenied,
    UnsupportedFormat,
    ValidationFailed,
)
from ..models import ContextState
from ..storage import (
    ContextRecord,
    ContextRows,
    MessageRecord,
    RecordQuery,
    Storage,
    VersionRecord,
)
from ..versioning import reconstruct
from ._dump import (
    DumpedContext,
    DumpedVersion,
    DumpReader,
    check_versions,
    context_lines,
    footer_line,
    header_line,
)

__all__ = ["ImportReport", "Progress", "export_dump", "import_dump", "refuse_unless_administrator"]

Progress = Callable[[int, int], None]
"""Called after each context with the contexts done so far and the bytes written or read."""

_PAGE = 200
_STATES = tuple(state.value for state in ContextState)


@dataclasses.dataclass(frozen=True, slots=True)
class ImportReport:
    """What `import_full` did: contexts written, contexts skipped (they existed), lines
    read."""

    imported: int
    skipped: int
    lines: int


def refuse_unless_administrator(user_id: str | None, action: str) -> None:
    """A full export or import reads or writes every context whoever owns it: only the
    trusted caller (no user) may."""
    if user_id is not None:
        denied = PermissionDenied(user_id, action, "*")
        denied.message = (
            f"user {user_id!r} may not {action}: a full export or import is an "
            "administrator's operation on the whole database (give no user)"
        )
        denied.args = (denied.message,)
        raise denied


# -- export -----------------------------------------------------------------------------


async def export_dump(
    storage: Storage,
    *,
    version_codec: Codec,
    bodies: MessageBodies,
    reload_dictionaries: Callable[[], Awaitable[None]],
    progress: Progress | None = None,
) -> AsyncIterator[bytes]:
    """Every context of `storage` as dump lines (each ending in ``\\n``), in creation
    order, one context read at a time."""
    status = await storage.migration_status()
    exported_at = datetime.now(UTC).isoformat()
    line = header_line(
        exported_at=exported_at, backend=storage.backend, schema_version=status.version
    )
    written = len(line)
    yield line
    done = 0
    dictionaries: set[int] = set()
    async for context_id in _context_ids(storage):
        rows = await storage.load_rows(context_id)
        if rows is None:
            continue  # removed since it was listed
        await _with_dictionaries(rows, bodies, reload_dictionaries, dictionaries)
        payloads = {v.version_id: _decoded(version_codec, rows.record, v) for v in rows.versions}
        _check_source(rows, payloads)
        for line in context_lines(
            rows,
            payload_of=functools.partial(_payload, payloads),
            body_of=functools.partial(_body, bodies, rows.record),
        ):
            written += len(line)
            yield line
        done += 1
        if progress is not None:
            progress(done, written)
    yield footer_line(done)


def _payload(payloads: dict[str, Any], version: VersionRecord) -> Any:
    return payloads[version.version_id]


def _check_source(rows: ContextRows, payloads: dict[str, Any]) -> None:
    """Refuse to export a context whose versions do not rebuild: better now than at the
    import."""
    try:
        check_versions([DumpedVersion(v, payloads[v.version_id], 0) for v in rows.versions])
    except DataCorrupted as exc:
        raise DataCorrupted(
            f"context {rows.record.context_id} is damaged in this database: "
            f"{exc.message.removeprefix('dump line 0: ')}"
        ) from exc


async def _context_ids(storage: Storage) -> AsyncIterator[str]:
    """Every context id, in creation order, a page at a time."""
    after: tuple[Any, str] | None = None
    while True:
        page = await storage.query_contexts(
            RecordQuery(
                context_type=None,
                states=_STATES,
                owner_id=None,
                collaborator=None,
                title_contains=None,
                metadata_match=(),
                created_after=None,
                created_before=None,
                modified_after=None,
                modified_before=None,
                order_by="created_at",
                descending=False,
                limit=_PAGE,
                offset=0,
                after=after,
                reader=None,
            )
        )
        for record in page:
            yield record.context_id
        if len(page) < _PAGE:
            return
        after = (page[-1].created_at, page[-1].context_id)


async def _with_dictionaries(
    rows: ContextRows,
    bodies: MessageBodies,
    reload: Callable[[], Awaitable[None]],
    known: set[int],
) -> None:
    """Make sure the dictionaries the context's message blobs name are loaded (one may
    have been trained since this manager started)."""
    for _, message in rows.messages:
        if message.blob is None:
            continue
        try:
            dictionary_id = inspect_blob(message.blob).dictionary_id
        except LoremasterError:
            continue  # reported, with its context, when the body is read
        if dictionary_id and dictionary_id not in known:
            try:
                bodies.unpack(message)
            except UnsupportedFormat:
                await reload()
            known.add(dictionary_id)


def _body(bodies: MessageBodies, record: ContextRecord, message: MessageRecord) -> bytes:
    try:
        return bodies.unpack(message)
    except LoremasterError as exc:
        raise DataCorrupted(
            f"context {record.context_id}: message {message.seq} does not decode: {exc.message}"
        ) from exc


def _decoded(codec: Codec, record: ContextRecord, version: VersionRecord) -> Any:
    try:
        return codec.decode(version.payload)
    except LoremasterError as exc:
        raise DataCorrupted(
            f"context {record.context_id}: version {version.version_id} does not decode: "
            f"{exc.message}"
        ) from exc


# -- import -----------------------------------------------------------------------------


async def import_dump(
    storage: Storage,
    lines: Iterable[bytes] | AsyncIterable[bytes],
    *,
    version_codec: Codec,
    bodies: MessageBodies,
    skip_existing: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Store every context of a dump, one transaction each, checked before and after."""
    reader = DumpReader()
    imported = skipped = read = 0
    async for raw in _each(lines):
        read += len(raw)
        group = reader.feed(raw)
        if group is None:
            continue
        if await _import_context(storage, group, version_codec, bodies, skip_existing):
            imported += 1
        else:
            skipped += 1
        if progress is not None:
            progress(imported + skipped, read)
    reader.finish()
    return ImportReport(imported, skipped, reader.line)


async def _each(lines: Iterable[bytes] | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(lines, AsyncIterable):
        async for line in lines:
            yield line
    else:
        for line in lines:
            yield line


async def _import_context(
    storage: Storage,
    group: DumpedContext,
    version_codec: Codec,
    bodies: MessageBodies,
    skip_existing: bool,
) -> bool:
    """Write one context; False if it exists and is skipped."""
    record = group.record
    where = f"context {record.context_id} (dump line {group.line})"
    if await storage.load_context(record.context_id) is not None:
        if skip_existing:
            return False
        raise _exists(where)
    try:
        verify_checksum(record)
    except DataCorrupted as exc:
        raise DataCorrupted(f"{where} fails its checksum: the dump was altered") from exc
    versions = [
        dataclasses.replace(v.record, payload=payload, size_bytes=len(payload))
        for v in group.versions
        for payload in [version_codec.encode(v.content, format="json")]
    ]
    check_versions(group.versions)
    rows = ContextRows(
        record=record,
        branches=group.branches,
        messages=[(segment, _packed(bodies, m)) for segment, m in group.messages],
        versions=versions,
        events=group.events,
    )
    try:
        await storage.insert_rows(rows)
    except ValidationFailed as exc:
        if skip_existing and "exists" in exc.message:
            return False  # created meanwhile by someone else
        raise ValidationFailed(f"{where}: {exc.message}", exc.issues) from exc
    except DataCorrupted as exc:
        raise DataCorrupted(f"{where}: {exc.message}") from exc
    await _read_back(storage, rows, version_codec, where)
    return True


def _exists(where: str) -> ValidationFailed:
    return ValidationFailed(
        f"{where} exists in this database already; nothing of it was written "
        "(skip existing contexts to go on)"
    )


def _packed(bodies: MessageBodies, message: MessageRecord) -> MessageRecord:
    stored, blob = bodies.pack(message.body)
    return dataclasses.replace(message, body=stored, blob=blob)


async def _read_back(storage: Storage, rows: ContextRows, codec: Codec, where: str) -> None:
    """Check what was written: the row as committed, and every branch's head version
    rebuilt from its stored chain. A context that fails is removed again."""
    record = rows.record
    try:
        stored = await storage.load_context(record.context_id)
        if not isinstance(stored, ContextRecord) or (stored.revision, stored.checksum) != (
            record.revision,
            record.checksum,
        ):
            raise DataCorrupted("the stored row differs from the dump's")
        verify_checksum(stored)
        heads = {record.versioning.head, *(b.versioning.head for b in rows.branches)}
        for head in sorted(h for h in heads if h is not None):
            reconstruct(codec, await storage.load_version_chain(record.context_id, head))
    except DataCorrupted as exc:
        await storage.delete_context(record.context_id, lambda _: None)
        raise DataCorrupted(
            f"{where} did not read back as written ({exc.message}); it was removed again"
        ) from exc
