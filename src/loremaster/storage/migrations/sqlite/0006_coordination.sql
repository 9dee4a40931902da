-- Collaboration: each context row holds its edit lock (holder, fencing token, expiry) and
-- the conflicts waiting for a person; each event names the AI provider that wrote it, if any.

ALTER TABLE contexts ADD COLUMN coordination TEXT NOT NULL DEFAULT '{}';
ALTER TABLE events ADD COLUMN provider TEXT;
