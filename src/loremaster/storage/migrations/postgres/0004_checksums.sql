-- Integrity: a SHA-256 of each context's content, written with every change and checked
-- on read. Rows written before this migration have none and are not checked.

ALTER TABLE contexts ADD COLUMN checksum TEXT;
