"""The SQL both backends run, written once over a `Dialect`: column lists, the statements
that differ only in how they are spelled, who may read a context, and context queries."""

from __future__ import annotations

import re

from ..errors import Issue, ValidationFailed
from ._dialect import Dialect, Params
from ._types import RecordQuery

__all__ = [
    "BRANCH_COLUMNS",
    "CONTEXT_COLUMNS",
    "VERSION_COLUMNS",
    "Statements",
    "query_sql",
    "readable_by",
]

CONTEXT_COLUMNS = (
    "context_id, context_type, title, description, data, metadata, extra, state, owner_id, "
    "collaborators, permissions, revision, message_count, turn_count, doc_bytes, "
    "messages_bytes, created_at, last_modified, last_accessed, checksum, versioning, "
    "version_number, coordination"
)
VERSION_COLUMNS = (
    "version_id, context_id, number, branch, parent_id, kind, payload, size_bytes, "
    "message_seq, view, turn_count, revision, author, message, tags, created_at, checksum, "
    "merge_parent_id, automatic"
)
BRANCH_COLUMNS = (
    "context_id, name, document, message_count, turn_count, messages_bytes, versioning, "
    "base_version, created_by, created_at, last_modified"
)
_MESSAGE_COLUMNS = "seq, message_id, role, body, body_blob, search_text, created_at"
_EVENT_COLUMNS = "revision, op, changes, user_id, created_at, branch, provider"
_TIME_COLUMNS = frozenset({"created_at", "last_modified", "last_accessed"})
_ORDER_COLUMNS = _TIME_COLUMNS | {"title"}
_TABLES_OF_A_CONTEXT = ("messages", "events", "versions", "branches", "contexts")


def _placeholders(dialect: Dialect, count: int) -> str:
    return ", ".join(dialect.param(n) for n in range(1, count + 1))


class Statements:
    """The statements both backends run, in one dialect's spelling."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        p = dialect.param
        by_context = f"WHERE context_id = {p(1)}"
        self.select_context = f"SELECT {CONTEXT_COLUMNS} FROM contexts {by_context}"
        self.select_revision = f"SELECT revision, last_modified FROM contexts {by_context}"
        self.select_branch = f"SELECT {BRANCH_COLUMNS} FROM branches {by_context} AND name = {p(2)}"
        self.select_branches = (
            f"SELECT {BRANCH_COLUMNS} FROM branches {by_context} ORDER BY name{dialect.byte_order}"
        )
        self.select_messages = (
            f"SELECT {_MESSAGE_COLUMNS} FROM messages {by_context} AND branch = {p(2)} "
            f"AND seq < {p(3)} AND seq > {p(4)} ORDER BY seq DESC LIMIT {p(5)}"
        )
        self.select_all_messages = (
            f"SELECT {_MESSAGE_COLUMNS}, branch FROM messages {by_context} "
            f"ORDER BY branch{dialect.byte_order}, seq"
        )
        self.select_message_span = (
            f"SELECT {_MESSAGE_COLUMNS} FROM messages {by_context} AND branch = {p(2)} "
            f"AND seq BETWEEN {p(3)} AND {p(4)}"
        )
        self.sample_messages = (
            f"SELECT {_MESSAGE_COLUMNS} FROM messages ORDER BY random() LIMIT {p(1)}"
        )
        self.select_events = (
            f"SELECT {_EVENT_COLUMNS} FROM events {by_context} AND revision > {p(2)} "
            f"AND ({dialect.nullable_text(4)} IS NULL OR branch = {p(4)}) "
            f"ORDER BY revision LIMIT {p(3)}"
        )
        self.select_all_events = (
            f"SELECT {_EVENT_COLUMNS} FROM events {by_context} ORDER BY revision"
        )
        self.select_versions = (
            f"SELECT {VERSION_COLUMNS} FROM versions {by_context} ORDER BY number"
        )
        self.version_chain = _version_chain(dialect)
        self.row_counts = "SELECT " + ", ".join(
            f"(SELECT count(*) FROM {table} {by_context})" for table in _TABLES_OF_A_CONTEXT[:-1]
        )
        self.delete_context = [
            f"DELETE FROM {table} {by_context}" for table in _TABLES_OF_A_CONTEXT
        ]
        self.touch = (
            f"UPDATE contexts SET last_accessed = {p(2)} {by_context} AND last_accessed < {p(3)}"
        )
        self.insert_context = (
            f"INSERT INTO contexts ({CONTEXT_COLUMNS}) VALUES ({_placeholders(dialect, 23)})"
        )
        self.insert_version = (
            f"INSERT INTO versions ({VERSION_COLUMNS}) VALUES ({_placeholders(dialect, 19)})"
        )
        self.load_dictionaries = (
            "SELECT dictionary_id, context_type, data FROM codec_dictionaries "
            "ORDER BY dictionary_id"
        )

        by_key = f"WHERE user_id = {p(1)} AND idempotency_key = {p(2)}"
        self.claim_key = (
            "INSERT INTO idempotency_keys (user_id, idempotency_key, fingerprint, claim_id, "
            f"created_at) VALUES ({_placeholders(dialect, 5)}) "
            "ON CONFLICT (user_id, idempotency_key) DO UPDATE SET "
            "fingerprint = excluded.fingerprint, claim_id = excluded.claim_id, "
            "created_at = excluded.created_at, status = NULL, body = NULL, headers = NULL "
            f"WHERE idempotency_keys.created_at < {p(6)}"
        )
        self.select_key = (
            f"SELECT claim_id, fingerprint, status, body, headers FROM idempotency_keys {by_key}"
        )
        self.finish_key = (
            f"UPDATE idempotency_keys SET status = {p(3)}, body = {p(4)}, headers = {p(5)} "
            f"{by_key} AND status IS NULL"
        )
        self.release_key = f"DELETE FROM idempotency_keys {by_key} AND status IS NULL"
        self.count_old_keys = f"SELECT count(*) FROM idempotency_keys WHERE created_at < {p(1)}"
        self.purge_old_keys = f"DELETE FROM idempotency_keys WHERE created_at < {p(1)}"

    def list_versions(
        self,
        key: object,
        *,
        branch: str | None,
        tag: str | None,
        before_number: int | None,
        limit: int | None,
    ) -> tuple[str, list[object]]:
        """Versions of context `key` numbered below `before_number`, newest first, their
        payloads left empty; and the statement's parameters."""
        dialect = self._dialect
        p = Params(dialect)
        before = 2**62 if before_number is None else before_number
        sql = (
            f"SELECT {VERSION_COLUMNS.replace('payload', dialect.empty_payload)} FROM versions "
            f"WHERE context_id = {p(key)} AND number < {p(before)}"
        )
        if branch is not None:
            sql += f" AND branch = {p(branch)}"
        if tag is not None:
            sql += f" AND {dialect.tagged} AND {dialect.has_member('tags', p(tag))}"
        sql += f" ORDER BY number DESC LIMIT {p(dialect.no_limit if limit is None else limit)}"
        return sql, p.values

    def idle_since(self, state: str) -> str:
        """Ids of contexts in a state (parameter 1) idle since parameter 2, up to
        parameter 3: deleted ones by when they were deleted, others by last access."""
        p = self._dialect.param
        column = "last_modified" if state == "deleted" else "last_accessed"
        return (
            f"SELECT context_id FROM contexts WHERE state = {p(1)} AND {column} < {p(2)} "
            f"ORDER BY {column} LIMIT {p(3)}"
        )


def _version_chain(dialect: Dialect) -> str:
    """From a version back to the snapshot it rests on: its ancestors while they are
    patches, the version first."""
    p = dialect.param
    return f"""
WITH RECURSIVE chain(version_id, parent_id, kind, depth) AS (
    SELECT version_id, parent_id, kind, 0 FROM versions
    WHERE context_id = {p(1)} AND version_id = {p(2)}
    UNION ALL
    SELECT v.version_id, v.parent_id, v.kind, chain.depth + 1
    FROM versions v JOIN chain ON v.version_id = chain.parent_id
    WHERE chain.kind = 'delta'
)
SELECT {", ".join("v." + c for c in VERSION_COLUMNS.split(", "))}
FROM chain JOIN versions v ON v.version_id = chain.version_id ORDER BY chain.depth
"""


def readable_by(dialect: Dialect, reader: str) -> str:
    """Who may read a context ``c``: its owner, its collaborators and anyone its
    permissions grant something."""
    return (
        f"(c.owner_id = {reader} OR {dialect.has_member('c.collaborators', reader)} "
        f"OR {dialect.grants_any('c.permissions', reader)})"
    )


def query_sql(dialect: Dialect, query: RecordQuery) -> tuple[str, list[object]]:
    """The SELECT of a context query, and its parameters."""
    if query.order_by not in _ORDER_COLUMNS:
        raise ValidationFailed("unknown order", [Issue("/order_by", query.order_by)])
    p = Params(dialect)
    where = [*_filters(dialect, query, p), *_time_bounds(dialect, query, p)]
    column = f"c.{query.order_by}"
    if query.order_by == "title":
        column += dialect.byte_order
    direction = "DESC" if query.descending else "ASC"
    if query.after is not None:
        value, after_id = query.after
        if query.order_by in _TIME_COLUMNS:
            value = dialect.time(int(value))
        compare = "<" if query.descending else ">"
        key = p(dialect.lookup_key(after_id))
        where.append(f"({column}, c.context_id) {compare} ({p(value)}, {key})")
    sql = (
        f"SELECT {CONTEXT_COLUMNS} FROM contexts c WHERE {' AND '.join(where)} "
        f"ORDER BY {column} {direction}, c.context_id {direction} "
        f"LIMIT {p(query.limit)} OFFSET {p(query.offset)}"
    )
    return sql, p.values


def _filters(dialect: Dialect, query: RecordQuery, p: Params) -> list[str]:
    where = [dialect.one_of("c.state", query.states, p)]
    if query.reader is not None:
        where.append(readable_by(dialect, p(query.reader)))
    if query.context_type is not None:
        where.append(f"c.context_type = {p(query.context_type)}")
    if query.owner_id is not None:
        where.append(f"c.owner_id = {p(query.owner_id)}")
    if query.collaborator is not None:
        where.append(dialect.has_member("c.collaborators", p(query.collaborator)))
    if query.title_contains is not None:
        escaped = re.sub(r"([\\%_])", r"\\\1", query.title_contains)
        where.append(dialect.contains("c.title", p(f"%{escaped}%")))
    where += dialect.metadata_matches(query.metadata_match, p)
    return where


def _time_bounds(dialect: Dialect, query: RecordQuery, p: Params) -> list[str]:
    bounds = (
        ("created_at", query.created_after, ">="),
        ("created_at", query.created_before, "<"),
        ("last_modified", query.modified_after, ">="),
        ("last_modified", query.modified_before, "<"),
    )
    return [
        f"c.{column} {op} {p(dialect.time(bound))}"
        for column, bound, op in bounds
        if bound is not None
    ]
