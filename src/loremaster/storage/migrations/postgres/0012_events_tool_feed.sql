-- Each event names the tool call that made it, if any (an MCP tool, say: `mcp:update_context`).
-- The commit feed of SQLite's 0011 has no table here: processes sharing PostgreSQL hear each
-- other through Redis.

ALTER TABLE events ADD COLUMN tool TEXT;
