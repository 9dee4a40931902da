-- A context's messages, events, versions and branches name it by its row in the contexts
-- table (context_row, an integer of a few bytes), not by its 36-character id, which every
-- row and every index entry over it repeated. Versions lose their index on parent_id: the
-- one query that used it also names the context, whose versions the same cleanup scans
-- already. Each table is rebuilt (SQLite cannot change a column in place), rows and
-- message ids (the full-text index's rowids) kept.

CREATE TABLE messages_0009 (
    id          INTEGER PRIMARY KEY,
    context_row INTEGER NOT NULL,
    branch      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    message_id  TEXT NOT NULL,
    role        TEXT NOT NULL,
    body        TEXT NOT NULL,
    search_text TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    body_blob   BLOB
);
INSERT INTO messages_0009
SELECT m.id, c.row_id, m.branch, m.seq, m.message_id, m.role, m.body, m.search_text,
       m.created_at, m.body_blob
FROM messages m JOIN contexts c ON c.context_id = m.context_id;
DROP TABLE messages;
ALTER TABLE messages_0009 RENAME TO messages;
CREATE UNIQUE INDEX ux_messages_position ON messages (context_row, branch, seq);
CREATE UNIQUE INDEX ux_messages_message_id ON messages (context_row, branch, message_id);
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, search_text)
    VALUES ('delete', old.id, old.search_text);
END;

CREATE TABLE events_0009 (
    context_row INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    op          TEXT NOT NULL,
    changes     TEXT NOT NULL,
    user_id     TEXT,
    created_at  INTEGER NOT NULL,
    branch      TEXT NOT NULL DEFAULT 'main',
    provider    TEXT,
    PRIMARY KEY (context_row, revision)
) WITHOUT ROWID;
INSERT INTO events_0009
SELECT c.row_id, e.revision, e.op, e.changes, e.user_id, e.created_at, e.branch, e.provider
FROM events e JOIN contexts c ON c.context_id = e.context_id;
DROP TABLE events;
ALTER TABLE events_0009 RENAME TO events;
CREATE INDEX idx_events_created ON events (created_at);

CREATE TABLE versions_0009 (
    version_id      TEXT PRIMARY KEY,
    context_row     INTEGER NOT NULL,
    number          INTEGER NOT NULL,
    branch          TEXT NOT NULL,
    parent_id       TEXT,
    merge_parent_id TEXT,
    kind            TEXT NOT NULL,
    payload         BLOB NOT NULL,
    size_bytes      INTEGER NOT NULL,
    message_seq     INTEGER NOT NULL,
    view            TEXT NOT NULL,
    turn_count      INTEGER NOT NULL,
    revision        INTEGER NOT NULL,
    author          TEXT,
    message         TEXT NOT NULL,
    tags            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    checksum        TEXT NOT NULL,
    automatic       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO versions_0009
SELECT v.version_id, c.row_id, v.number, v.branch, v.parent_id, v.merge_parent_id, v.kind,
       v.payload, v.size_bytes, v.message_seq, v.view, v.turn_count, v.revision, v.author,
       v.message, v.tags, v.created_at, v.checksum, v.automatic
FROM versions v JOIN contexts c ON c.context_id = v.context_id;
DROP TABLE versions;
ALTER TABLE versions_0009 RENAME TO versions;
CREATE UNIQUE INDEX ux_versions_number ON versions (context_row, number);
CREATE INDEX idx_versions_branch ON versions (context_row, branch, number);
-- Tagged versions are few (checkpoints): a page of them reads only them.
CREATE INDEX idx_versions_tagged ON versions (context_row, number) WHERE tags != '[]';

CREATE TABLE branches_0009 (
    context_row    INTEGER NOT NULL,
    name           TEXT NOT NULL,
    document       TEXT NOT NULL,
    message_count  INTEGER NOT NULL,
    turn_count     INTEGER NOT NULL,
    messages_bytes INTEGER NOT NULL,
    versioning     TEXT NOT NULL,
    base_version   TEXT,
    created_by     TEXT,
    created_at     INTEGER NOT NULL,
    last_modified  INTEGER NOT NULL,
    PRIMARY KEY (context_row, name)
) WITHOUT ROWID;
INSERT INTO branches_0009
SELECT c.row_id, b.name, b.document, b.message_count, b.turn_count, b.messages_bytes,
       b.versioning, b.base_version, b.created_by, b.created_at, b.last_modified
FROM branches b JOIN contexts c ON c.context_id = b.context_id;
DROP TABLE branches;
ALTER TABLE branches_0009 RENAME TO branches;
