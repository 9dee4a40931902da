-- Contexts, their append-only messages, the event log and full-text search.
-- Times are integer microseconds since the epoch (UTC); JSON columns hold JSON text.

CREATE TABLE contexts (
    row_id          INTEGER PRIMARY KEY,
    context_id      TEXT NOT NULL UNIQUE,
    context_type    TEXT NOT NULL,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    data            TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    extra           TEXT NOT NULL,
    state           TEXT NOT NULL,
    owner_id        TEXT,
    collaborators   TEXT NOT NULL,
    permissions     TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    message_count   INTEGER NOT NULL DEFAULT 0,
    turn_count      INTEGER NOT NULL DEFAULT 0,
    doc_bytes       INTEGER NOT NULL,
    messages_bytes  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_modified   INTEGER NOT NULL,
    last_accessed   INTEGER NOT NULL
);

CREATE INDEX idx_contexts_type_state ON contexts (context_type, state);
CREATE INDEX idx_contexts_owner ON contexts (owner_id);
CREATE INDEX idx_contexts_created ON contexts (created_at, context_id);
CREATE INDEX idx_contexts_modified ON contexts (last_modified, context_id);
CREATE INDEX idx_contexts_accessed ON contexts (last_accessed, context_id);

CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    context_id  TEXT NOT NULL,
    branch      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    message_id  TEXT NOT NULL,
    role        TEXT NOT NULL,
    body        TEXT NOT NULL,
    search_text TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE UNIQUE INDEX ux_messages_position ON messages (context_id, branch, seq);
CREATE UNIQUE INDEX ux_messages_message_id ON messages (context_id, message_id);

CREATE TABLE events (
    context_id  TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    op          TEXT NOT NULL,
    changes     TEXT NOT NULL,
    user_id     TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (context_id, revision)
) WITHOUT ROWID;

CREATE VIRTUAL TABLE contexts_fts USING fts5 (
    title, description,
    content = 'contexts', content_rowid = 'row_id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER contexts_fts_insert AFTER INSERT ON contexts BEGIN
    INSERT INTO contexts_fts (rowid, title, description)
    VALUES (new.row_id, new.title, new.description);
END;

CREATE TRIGGER contexts_fts_delete AFTER DELETE ON contexts BEGIN
    INSERT INTO contexts_fts (contexts_fts, rowid, title, description)
    VALUES ('delete', old.row_id, old.title, old.description);
END;

CREATE TRIGGER contexts_fts_update AFTER UPDATE OF title, description ON contexts
WHEN old.title IS NOT new.title OR old.description IS NOT new.description BEGIN
    INSERT INTO contexts_fts (contexts_fts, rowid, title, description)
    VALUES ('delete', old.row_id, old.title, old.description);
    INSERT INTO contexts_fts (rowid, title, description)
    VALUES (new.row_id, new.title, new.description);
END;

-- Storage indexes new messages with one INSERT ... SELECT per batch: a per-row trigger
-- would make FTS5 flush its buffer at every row, five times slower.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    search_text,
    content = 'messages', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, search_text)
    VALUES ('delete', old.id, old.search_text);
END;
