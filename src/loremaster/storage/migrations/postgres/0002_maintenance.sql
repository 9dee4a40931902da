-- Retention: leases so one process at a time runs maintenance, the materialized
-- statistics view (refreshed on demand and on a schedule), an index to find old events.

CREATE TABLE maintenance_leases (
    name             TEXT PRIMARY KEY,
    holder           TEXT,
    expires_at       TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    last_finished_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);

CREATE INDEX idx_events_created ON events (created_at);

CREATE MATERIALIZED VIEW context_statistics AS
SELECT context_type,
       state,
       count(*)                          AS contexts,
       sum(doc_bytes + messages_bytes)   AS bytes,
       sum(message_count)                AS messages,
       max(message_count)                AS max_messages
FROM contexts
GROUP BY context_type, state;

CREATE UNIQUE INDEX ux_context_statistics ON context_statistics (context_type, state);
