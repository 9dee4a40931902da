-- Compact storage: message bodies leave out what their row holds elsewhere and events of
-- appends name the message rows they added (both read in either form, see
-- storage/_compact.py); no column changes. The message text index takes new entries
-- straight into its tree: a pending list grew it to 6x its size and every search read it.

ALTER INDEX idx_messages_text_search SET (fastupdate = off);
SELECT gin_clean_pending_list('idx_messages_text_search'::regclass);
