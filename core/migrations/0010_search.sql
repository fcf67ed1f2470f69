-- Full-text search over message bodies (`GET /search/messages`).
--
-- `chat_search` is the `simple` configuration (no stemming, no stop words: it works the same
-- for any language) with `unaccent` before it, so `cafe`, `Café` and `CAFÉ` are one lexeme.
-- `unaccent` is a trusted extension (PostgreSQL 13+), so a database owner may create it.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION chat_search (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION chat_search
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple;

-- An expression index, not a stored column: an edit re-indexes its row by itself, and the
-- table is not rewritten on an existing database (CREATE INDEX reads the rows that are there).
-- Partial over live messages: a delete drops its row from what a search can find, and the
-- index does not grow with deleted rows' entries. The queries must spell the expression
-- exactly as here (`to_tsvector('chat_search', body)`, the two-argument, immutable form).
--
-- New rows go to the index's pending list and are merged into it by whichever insert finds
-- the list over `gin_pending_list_limit`: that batch's commit waits for the merge. At the
-- default 4 MB (about 40,000 short messages) the merge doubled the send benchmark's p99.9
-- (24 -> 50 ms); 512 kB merges eight times as often, each an eighth as long, and keeps the
-- list a search must scan short (docs/perf/2026-12-search.md).
CREATE INDEX messages_search ON messages
    USING gin (to_tsvector('chat_search', body))
    WITH (gin_pending_list_limit = 512)
    WHERE deleted_at IS NULL;
