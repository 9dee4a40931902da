"""The contract every storage backend fulfils; the contract tests run against each."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ._schema import MigrationStatus
from ._types import (
    BranchPlan,
    BranchRecord,
    ContextRecord,
    ContextRows,
    EventRecord,
    IdempotencyRecord,
    MessageRecord,
    NewContext,
    NotModified,
    Plan,
    RecordQuery,
    SearchRecord,
    StorageHealth,
    VersionRecord,
)

__all__ = ["Storage"]


class Storage(Protocol):
    """Durable contexts, messages and events.

    Every method that writes runs one transaction: rows, messages and events commit
    together or not at all. Revisions of a context are gapless. Times are microseconds
    since the epoch.
    """

    backend: str
    read_only: bool
    trouble: str | None
    """Why the latest attempt to reach the database failed, while operations retry; None
    once one succeeds. What a read with a cached answer at hand looks at before it waits
    (a database that is slow but answering is waited for)."""
    """Whether the database only reads (known once opened); writes then raise
    ``ReadOnlyDatabase`` at once."""

    # -- lifecycle and schema ------------------------------------------------------------

    async def open(self, *, create: bool = True) -> None:
        """Connect (no schema changes). Without `create`, a database that does not exist
        is ``DatabaseNotFound`` instead of being made (SQLite: no file, no folder)."""

    async def close(self) -> None: ...

    async def migrate(self) -> MigrationStatus:
        """Apply pending migrations in order; safe when several processes start at once."""

    async def migration_status(self) -> MigrationStatus: ...

    # -- writes --------------------------------------------------------------------------

    async def insert_contexts(self, contexts: Sequence[NewContext]) -> None:
        """Store new contexts in one transaction (``ValidationFailed`` if an id is taken)."""

    async def modify_contexts(self, plans: Mapping[str, Plan]) -> dict[str, ContextRecord]:
        """Run each plan on its current row inside one write transaction and commit the
        mutations; returns the rows as committed (the current row where a plan returned
        None). ``ContextNotFound`` if any context is missing; then nothing is written."""

    async def modify_context(self, context_id: str, plan: Plan) -> ContextRecord:
        """`modify_contexts` for one context."""

    async def modify_branch(
        self, context_id: str, name: str, plan: BranchPlan
    ) -> tuple[ContextRecord, BranchRecord | None]:
        """Run `plan` on the context row and the branch `name` (None if there is none yet)
        in one write transaction and commit its mutation; returns both as committed."""

    async def delete_context(
        self, context_id: str, authorize: Callable[[ContextRecord], None]
    ) -> None:
        """Remove the row and its messages, events, versions and branches for good, if
        `authorize` allows."""

    async def touch(self, context_id: str, *, when: int, not_since: int) -> None:
        """Set last_accessed to `when` unless it is already at or after `not_since`."""

    # -- reads ---------------------------------------------------------------------------

    async def load_context(
        self, context_id: str, known: tuple[int, int] | None = None
    ) -> ContextRecord | NotModified | None:
        """The row; `NotModified` if it still has the `known` (revision, last_modified) —
        both, because a context deleted and created again restarts at revision 1; None if
        missing."""

    async def load_messages(
        self,
        context_id: str,
        *,
        branch: str,
        limit: int | None,
        before_seq: int | None,
        after_seq: int = 0,
    ) -> list[MessageRecord]:
        """The last `limit` messages of segment `branch` between `after_seq` and
        `before_seq` (exclusive; all when None), oldest first."""

    async def load_events(
        self, context_id: str, *, since_revision: int, limit: int | None, branch: str | None = None
    ) -> list[EventRecord]:
        """Events with revision > `since_revision` (only those made on `branch`, when
        given), in revision order."""

    async def query_contexts(self, query: RecordQuery) -> list[ContextRecord]: ...

    async def search(self, text: str, *, reader: str | None, limit: int) -> list[SearchRecord]:
        """Full-text search over titles, descriptions and message text, best first."""

    async def health(self) -> StorageHealth: ...

    async def statistics(self, *, refresh: bool, max_age: float | None = None) -> dict[str, Any]:
        """Counts and sizes by type and state, and messages per context: recomputed if
        `refresh`, else at most `max_age` seconds old when given (a stale precomputed
        view is passed over for counting the contexts table)."""

    # -- retention -----------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, *, ttl: float, every: float) -> bool:
        """Take the named lease unless another holder has it or it last finished less than
        `every` seconds ago (database clock). One process at a time runs maintenance."""

    async def release_lease(self, name: str, holder: str, *, finished: bool) -> None: ...

    async def contexts_idle_since(self, before: int, *, state: str, limit: int) -> list[str]:
        """Ids of contexts in `state` whose last_accessed (deleted: last_modified) is
        before `before`."""

    async def trim_events(self, before: int, *, dry_run: bool) -> int:
        """Delete events older than `before`, keeping each context's latest; the count."""

    # -- idempotency keys ----------------------------------------------------------------

    async def claim_idempotency_key(
        self, user_id: str, key: str, fingerprint: str, *, ttl: float
    ) -> IdempotencyRecord:
        """Claim `user_id`'s `key` for a request with `fingerprint`, atomically: of any
        number of claims at once, exactly one is `claimed`; the others get the row as it
        is. A row claimed more than `ttl` seconds ago is claimed afresh."""

    async def finish_idempotency_key(
        self, user_id: str, key: str, *, status: int, body: bytes, headers: Mapping[str, str]
    ) -> None:
        """Store the response of a claimed key that is not finished yet (else nothing)."""

    async def release_idempotency_key(self, user_id: str, key: str) -> None:
        """Forget a claimed key that is not finished (a finished one stays)."""

    async def purge_idempotency_keys(self, older_than: float, *, dry_run: bool) -> int:
        """Delete keys claimed more than `older_than` seconds ago; the count."""

    # -- versions and branches -----------------------------------------------------------

    async def load_branch(self, context_id: str, name: str) -> BranchRecord | None: ...

    async def list_branches(self, context_id: str) -> list[BranchRecord]:
        """Every branch other than main, by name."""

    async def load_versions(
        self, context_id: str, version_ids: Sequence[str]
    ) -> list[VersionRecord]:
        """The named versions with their payloads, in no particular order."""

    async def load_version_chain(self, context_id: str, version_id: str) -> list[VersionRecord]:
        """The version and its ancestors back to the snapshot it rests on, snapshot first;
        empty if there is no such version."""

    async def list_versions(
        self,
        context_id: str,
        *,
        branch: str | None = None,
        tag: str | None = None,
        before_number: int | None = None,
        limit: int | None = None,
    ) -> list[VersionRecord]:
        """Versions numbered below `before_number`, newest first, without payloads."""

    async def rewrite_versions(
        self, context_id: str, *, delete: Sequence[str], replace: Sequence[VersionRecord]
    ) -> bool:
        """In one transaction delete versions and rewrite others' parent, kind and payload;
        False (nothing written) if some version to delete is already gone or has become a
        branch's fork point meanwhile."""

    async def contexts_over_version_limit(
        self, automatic: int, checkpoints: int, *, max_contexts: int
    ) -> list[str]:
        """Ids of contexts with more than `automatic` automatic versions or more than
        `checkpoints` untagged checkpoints."""

    async def load_rows(self, context_id: str) -> ContextRows | None:
        """Every row of the context as stored — the row, its branches, the messages of
        every segment, its versions with their payloads, its events — read in one
        transaction (one consistent snapshot); None if there is no such context."""

    async def insert_rows(self, rows: ContextRows) -> None:
        """Store a context exactly as given (revisions, times, versions and events kept) in
        one transaction: ``ValidationFailed`` if its id is taken; the rows written are
        counted again in that transaction, ``DataCorrupted`` (nothing written) if any is
        missing."""

    # -- codec dictionaries --------------------------------------------------------------

    async def load_dictionaries(self) -> list[tuple[int, str, bytes]]:
        """Every trained zstd dictionary: (id, context type, data), oldest first."""

    async def save_dictionary(self, context_type: str, data: bytes, *, sample_count: int) -> int:
        """Store a trained dictionary; its new id."""

    async def sample_messages(self, limit: int) -> list[MessageRecord]:
        """Up to `limit` stored messages picked at random, for training a dictionary."""
