-- Retention: leases so one process at a time runs maintenance, the statistics view,
-- and an index to find old events.

CREATE TABLE maintenance_leases (
    name             TEXT PRIMARY KEY,
    holder           TEXT,
    expires_at       INTEGER NOT NULL DEFAULT 0,
    last_finished_at INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX idx_events_created ON events (created_at);

-- PostgreSQL keeps this as a materialized view; SQLite computes it on demand.
CREATE VIEW context_statistics AS
SELECT context_type,
       state,
       count(*)                          AS contexts,
       sum(doc_bytes + messages_bytes)   AS bytes,
       sum(message_count)                AS messages,
       max(message_count)                AS max_messages
FROM contexts
GROUP BY context_type, state;
