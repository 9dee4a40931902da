-- Each event names the tool call that made it, if any (an MCP tool, say: `mcp:update_context`).
-- And the commit feed: every event row inserted, by anyone, adds (context, revision) here under
-- a sequence number that only grows (AUTOINCREMENT: never reused, not even after a delete),
-- in commit order since SQLite commits one writer at a time. Other processes on the same file
-- read it after `PRAGMA data_version` says something was committed (sync/_watched.py, the
-- embedded bus). Only the latest 16,384 entries are kept: a reader further behind than that
-- reads the events table instead.

ALTER TABLE events ADD COLUMN tool TEXT;

CREATE TABLE event_feed (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    context_id  TEXT NOT NULL,
    revision    INTEGER NOT NULL
);

CREATE TRIGGER event_feed_add AFTER INSERT ON events
BEGIN
    INSERT INTO event_feed (context_id, revision)
    VALUES ((SELECT context_id FROM contexts WHERE row_id = NEW.context_row), NEW.revision);
END;

CREATE TRIGGER event_feed_trim AFTER INSERT ON event_feed WHEN NEW.seq % 1024 = 0
BEGIN
    DELETE FROM event_feed WHERE seq <= NEW.seq - 16384;
END;
