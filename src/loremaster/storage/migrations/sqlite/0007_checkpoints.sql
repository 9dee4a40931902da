-- Versions that came with a change (automatic, kept up to CONTEXT_MAX_VERSIONS) apart
-- from those asked for (checkpoints, kept up to CONTEXT_MAX_CHECKPOINTS). Older
-- versions with no message, or the first one, were automatic.

ALTER TABLE versions ADD COLUMN automatic INTEGER NOT NULL DEFAULT 0;
UPDATE versions SET automatic = 1 WHERE message IN ('', 'created');
