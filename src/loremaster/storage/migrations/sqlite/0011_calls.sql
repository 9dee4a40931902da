-- Calls to AI providers recorded into a context (loremaster.calls): one row each, beside
-- the reply message it stored (none for a call that failed). The reply's
-- metadata["call"] holds the same record; these columns are what listings and the
-- statistics per provider read.
CREATE TABLE calls (
    context_id    TEXT NOT NULL,
    call_id       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    branch        TEXT NOT NULL,
    message_id    TEXT,
    provider      TEXT NOT NULL,
    model         TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL,
    latency_ms    REAL NOT NULL,
    failed        INTEGER NOT NULL,
    call          TEXT NOT NULL,
    PRIMARY KEY (context_id, call_id)
) WITHOUT ROWID;

CREATE INDEX idx_calls_time ON calls (context_id, created_at);
