-- Versions that came with a change (automatic, kept up to CONTEXT_MAX_VERSIONS) apart
-- from those asked for (checkpoints, kept up to CONTEXT_MAX_CHECKPOINTS). Older
-- versions with no message, or the first one, were automatic.

ALTER TABLE versions ADD COLUMN automatic BOOLEAN NOT NULL DEFAULT false;
UPDATE versions SET automatic = true WHERE message IN ('', 'created');
