-- Idempotency keys, per user, shared by every process: a claim (the request's fingerprint
-- and who claimed it), then the response to replay. A key expires 24 hours after its
-- claim; expired rows are claimed afresh and purged by retention.

CREATE TABLE idempotency_keys (
    user_id         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    claim_id        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    status          INTEGER,
    body            BLOB,
    headers         TEXT,
    PRIMARY KEY (user_id, idempotency_key)
) WITHOUT ROWID;

CREATE INDEX idx_idempotency_keys_created ON idempotency_keys (created_at);
