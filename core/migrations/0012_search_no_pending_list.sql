-- The search index takes new rows directly instead of through its pending list.
--
-- With the pending list (migration 10), the insert that found the list over 512 kB merged
-- all of it into the index before its statement returned: every few hundred milliseconds
-- under load one batch's commit waited 10 to 30 ms, and every send waiting on that batch
-- with it (the send benchmark's p99 20 to 22 ms; 15.7 and 16.7 ms without the list:
-- docs/perf/2026-12-send-path.md, "2026-12-07, second sitting"). Each insert now updates the
-- index itself: a little more work per row, spread evenly, and searches no longer scan an
-- unsorted list.
ALTER INDEX messages_search SET (fastupdate = off);
-- Turning the option off stops new entries going to the list; what is in it already is
-- merged now rather than left for a search to scan until the next vacuum.
SELECT gin_clean_pending_list('messages_search'::regclass);
