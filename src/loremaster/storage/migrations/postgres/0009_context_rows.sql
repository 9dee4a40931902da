-- Versions lose their index on parent_id: the one query that used it also names the
-- context, whose versions the same cleanup scans already. (SQLite's 0009 also makes a
-- context's rows name it by an integer; here its id is a 16-byte uuid already.)

DROP INDEX idx_versions_parent;
