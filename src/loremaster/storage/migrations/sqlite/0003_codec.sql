-- Message bodies over the codec threshold are stored through the codec (compressed,
-- checksummed envelope) in body_blob; body is then ''. Trained zstd dictionaries live here.

ALTER TABLE messages ADD COLUMN body_blob BLOB;

CREATE TABLE codec_dictionaries (
    dictionary_id INTEGER PRIMARY KEY,
    context_type  TEXT NOT NULL,
    sample_count  INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    data          BLOB NOT NULL
);
