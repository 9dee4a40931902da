-- The specification's schema, corrected: the primary key of a table partitioned by
-- context_type must include context_type, and the full-text index needs the description
-- column the specification forgot. A default partition takes any new context type.

CREATE TABLE contexts (
    context_id      UUID NOT NULL,
    context_type    VARCHAR(50) NOT NULL,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    data            JSONB NOT NULL,
    metadata        JSONB NOT NULL,
    extra           JSONB NOT NULL,
    state           VARCHAR(20) NOT NULL,
    owner_id        TEXT,
    collaborators   TEXT[] NOT NULL DEFAULT '{}',
    permissions     JSONB NOT NULL DEFAULT '{}',
    revision        BIGINT NOT NULL,
    message_count   BIGINT NOT NULL DEFAULT 0,
    turn_count      BIGINT NOT NULL DEFAULT 0,
    doc_bytes       BIGINT NOT NULL,
    messages_bytes  BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    last_modified   TIMESTAMPTZ NOT NULL,
    last_accessed   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (context_id, context_type)
) PARTITION BY LIST (context_type);

CREATE TABLE contexts_conversation PARTITION OF contexts FOR VALUES IN ('conversation');
CREATE TABLE contexts_session PARTITION OF contexts FOR VALUES IN ('session');
CREATE TABLE contexts_collaborative PARTITION OF contexts FOR VALUES IN ('collaborative');
CREATE TABLE contexts_default PARTITION OF contexts DEFAULT;

CREATE INDEX idx_contexts_type_state ON contexts (context_type, state);
CREATE INDEX idx_contexts_owner ON contexts (owner_id);
CREATE INDEX idx_contexts_created ON contexts (created_at, context_id);
CREATE INDEX idx_contexts_modified ON contexts (last_modified, context_id);
CREATE INDEX idx_contexts_accessed ON contexts (last_accessed, context_id);
CREATE INDEX idx_contexts_metadata ON contexts USING GIN (metadata);
CREATE INDEX idx_contexts_data ON contexts USING GIN (data);
CREATE INDEX idx_contexts_collaborators ON contexts USING GIN (collaborators);
CREATE INDEX idx_contexts_text_search ON contexts
    USING GIN (to_tsvector('english', title || ' ' || description));

-- Append-only; a conversation's messages are one index range.
CREATE TABLE messages (
    context_id  UUID NOT NULL,
    branch      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    message_id  TEXT NOT NULL,
    role        VARCHAR(20) NOT NULL,
    body        JSON NOT NULL,
    search_text TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (context_id, branch, seq)
);

CREATE UNIQUE INDEX ux_messages_message_id ON messages (context_id, message_id);
CREATE INDEX idx_messages_text_search ON messages
    USING GIN (to_tsvector('english', search_text));

-- Message bodies and event changes are JSON, not JSONB: stored as written (cheaper to
-- insert and to hand back), never queried inside.
-- One row per committed change, in the change's transaction: audit log and sync feed.
-- write_id lets a writer whose COMMIT was cut off learn whether it landed.
CREATE TABLE events (
    context_id  UUID NOT NULL,
    revision    BIGINT NOT NULL,
    op          VARCHAR(40) NOT NULL,
    changes     JSON NOT NULL,
    user_id     TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    write_id    UUID,
    PRIMARY KEY (context_id, revision)
);
