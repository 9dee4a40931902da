-- Versioning: versions (snapshots or JSON Patches through the codec), branches other
-- than main, each change's branch in the event log, and the context row's versioning
-- state. Message ids are unique per segment: a fork or a rollback starts a new segment.

ALTER TABLE contexts ADD COLUMN versioning JSONB NOT NULL DEFAULT '{}';
ALTER TABLE contexts ADD COLUMN version_number BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN branch TEXT NOT NULL DEFAULT 'main';

DROP INDEX ux_messages_message_id;
CREATE UNIQUE INDEX ux_messages_message_id ON messages (context_id, branch, message_id);

CREATE TABLE versions (
    version_id  TEXT PRIMARY KEY,
    context_id  UUID NOT NULL,
    number      BIGINT NOT NULL,
    branch      TEXT NOT NULL,
    parent_id   TEXT,
    merge_parent_id TEXT,
    kind        VARCHAR(10) NOT NULL,
    payload     BYTEA NOT NULL,
    size_bytes  INTEGER NOT NULL,
    message_seq BIGINT NOT NULL,
    view        JSONB NOT NULL,
    turn_count  BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    author      TEXT,
    message     TEXT NOT NULL,
    tags        TEXT[] NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    checksum    TEXT NOT NULL
);

CREATE UNIQUE INDEX ux_versions_number ON versions (context_id, number);
CREATE INDEX idx_versions_branch ON versions (context_id, branch, number);
CREATE INDEX idx_versions_parent ON versions (parent_id);
-- Tagged versions are few (checkpoints): a page of them reads only them.
CREATE INDEX idx_versions_tagged ON versions (context_id, number) WHERE cardinality(tags) > 0;

CREATE TABLE branches (
    context_id     UUID NOT NULL,
    name           TEXT NOT NULL,
    document       JSONB NOT NULL,
    message_count  BIGINT NOT NULL,
    turn_count     BIGINT NOT NULL,
    messages_bytes BIGINT NOT NULL,
    versioning     JSONB NOT NULL,
    base_version   TEXT,
    created_by     TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    last_modified  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (context_id, name)
);
