-- words are a log line's words, lowercased (LogAppend splits the text as SQLite's FTS5
-- unicode61 tokenizer does: runs of letters and digits), for GET /api/v1/logs/search. A
-- GIN index finds the lines holding every word of a query.
ALTER TABLE logs ADD COLUMN words text[] NOT NULL DEFAULT '{}';
CREATE INDEX logs_words ON logs USING gin (words);
