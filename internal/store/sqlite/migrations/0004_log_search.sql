-- logs_fts indexes every log line's words for GET /api/v1/logs/search. It holds no text
-- of its own (content='logs'): triggers keep it in step with logs, and an INSERT OR IGNORE
-- that stores nothing fires nothing.
CREATE VIRTUAL TABLE logs_fts USING fts5(text, content='logs', content_rowid='rowid', tokenize='unicode61');

CREATE TRIGGER logs_fts_insert AFTER INSERT ON logs BEGIN
	INSERT INTO logs_fts (rowid, text) VALUES (new.rowid, new.text);
END;

CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
	INSERT INTO logs_fts (logs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;

INSERT INTO logs_fts (logs_fts) VALUES ('rebuild');
