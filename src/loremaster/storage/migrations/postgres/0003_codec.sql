-- Message bodies over the codec threshold are stored through the codec (compressed,
-- checksummed envelope) in body_blob; body is then NULL. Trained zstd dictionaries live here.

ALTER TABLE messages ADD COLUMN body_blob BYTEA;
ALTER TABLE messages ALTER COLUMN body DROP NOT NULL;

CREATE TABLE codec_dictionaries (
    dictionary_id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    context_type  TEXT NOT NULL,
    sample_count  INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    data          BYTEA NOT NULL
);
