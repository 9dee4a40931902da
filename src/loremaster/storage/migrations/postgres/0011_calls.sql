-- Calls to AI providers recorded into a context (loremaster.calls): one row each, beside
-- the reply message it stored (none for a call that failed). The reply's
-- metadata["call"] holds the same record; these columns are what listings and the
-- statistics per provider read.
CREATE TABLE calls (
    context_id    UUID NOT NULL,
    call_id       TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    branch        TEXT NOT NULL,
    message_id    TEXT,
    provider      TEXT NOT NULL,
    model         TEXT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION,
    latency_ms    DOUBLE PRECISION NOT NULL,
    failed        BOOLEAN NOT NULL,
    call          JSON NOT NULL,
    PRIMARY KEY (context_id, call_id)
);

CREATE INDEX idx_calls_time ON calls (context_id, created_at);
