-- Messages partitioned by hash of their conversation: 16 partitions (`messages_p0` to
-- `messages_p15`).
--
-- Every query of the contract that reads or writes messages names its conversation, so it
-- reads one partition: PostgreSQL prunes the others when it plans the statement, or when it
-- starts it for a generic plan. Each partition is a sixteenth of the table: its indexes, its
-- vacuums and its statistics stay that size, and a partition can be moved to its own
-- tablespace. Hash, not time: pages of a conversation's history, its unread count and its
-- newest message are lookups of one conversation at any age, which time partitions would
-- spread over every partition. Retention is not a partitioning matter here: messages are kept
-- until their conversation is deleted (ON DELETE CASCADE), as before.
--
-- The partition count is fixed by this migration; changing it means copying the table again
-- (as below). More is not free: PostgreSQL 15 locks every partition of a generic plan before
-- pruning, and each insert opens the indexes of every partition its rows go to
-- (docs/perf/2026-12-messages-partitioned.md). 16 splits the table's maintenance well past
-- the capacity model's yearly volume (docs/capacity.md).
--
-- On an existing database the rows are copied into the new table in this migration's
-- transaction: sends keep being accepted into the Redis stream meanwhile, and the worker
-- stores them once the migration commits. The copy keeps each row's `seq`, and the new
-- sequence starts after the old identity's last value, so commit order and every read
-- marker, cursor and unread count stay as they were.

ALTER TABLE messages RENAME TO messages_unpartitioned;
ALTER TABLE messages_unpartitioned RENAME CONSTRAINT messages_pkey TO messages_unpartitioned_pkey;
ALTER TABLE messages_unpartitioned
    RENAME CONSTRAINT messages_conversation_id_fkey TO messages_unpartitioned_conversation_id_fkey;
ALTER INDEX messages_by_conversation RENAME TO messages_unpartitioned_by_conversation;
ALTER INDEX messages_client_id RENAME TO messages_unpartitioned_client_id;
ALTER INDEX messages_live_by_conversation RENAME TO messages_unpartitioned_live_by_conversation;
ALTER INDEX messages_by_sender RENAME TO messages_unpartitioned_by_sender;
ALTER INDEX messages_search RENAME TO messages_unpartitioned_search;

-- PostgreSQL 15 has no identity columns on partitioned tables: a sequence of its own, in the
-- same commit order under the worker's commit locks.
CREATE SEQUENCE messages_seq AS bigint;

CREATE TABLE messages (
    seq               bigint NOT NULL DEFAULT nextval('messages_seq'),
    id                uuid NOT NULL,
    conversation_id   uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id         text NOT NULL,
    body              text NOT NULL,
    client_message_id text,
    sent_at           timestamptz NOT NULL,
    edited_at         timestamptz,
    deleted_at        timestamptz,
    reply_to_id       uuid,
    -- A unique key must hold the partition key. The id comes first: the one lookup by id
    -- alone (a search's `before` cursor) probes each partition's index.
    PRIMARY KEY (id, conversation_id)
) PARTITION BY HASH (conversation_id);
ALTER SEQUENCE messages_seq OWNED BY messages.seq;

DO $$
BEGIN
    FOR p IN 0..15 LOOP
        EXECUTE format(
            'CREATE TABLE messages_p%s PARTITION OF messages FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
            p, p);
    END LOOP;
END
$$;

-- The copy before the secondary indexes: each is then built once per partition, in bulk.
INSERT INTO messages (seq, id, conversation_id, sender_id, body, client_message_id, sent_at,
                      edited_at, deleted_at, reply_to_id)
SELECT seq, id, conversation_id, sender_id, body, client_message_id, sent_at,
       edited_at, deleted_at, reply_to_id
FROM messages_unpartitioned;

-- `messages_seq_seq` is the identity's sequence of migration 1 (it kept its name through the
-- rename, and goes with the old table). Not called on a fresh database: its first message
-- still gets 1.
SELECT setval('messages_seq',
              greatest(s.last_value, (SELECT coalesce(max(seq), 0) FROM messages_unpartitioned)),
              s.is_called OR EXISTS (SELECT 1 FROM messages_unpartitioned))
FROM messages_seq_seq s;

-- The indexes of migrations 1, 7, 8, 10 and 12, on every partition.
CREATE UNIQUE INDEX messages_by_conversation ON messages (conversation_id, seq);
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, sender_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
CREATE INDEX messages_live_by_conversation ON messages (conversation_id, seq) INCLUDE (sender_id)
    WHERE deleted_at IS NULL;
CREATE INDEX messages_by_sender ON messages (conversation_id, sender_id, seq);
CREATE INDEX messages_search ON messages
    USING gin (to_tsvector('chat_search', body))
    WITH (gin_pending_list_limit = 4096)
    WHERE deleted_at IS NULL;

-- Migration 11's trigger: a message's attachments are deleted with it (it went with the old
-- table). On a partitioned table PostgreSQL clones it onto every partition.
CREATE TRIGGER attachments_message_deleted
    AFTER UPDATE OF deleted_at ON messages
    FOR EACH ROW WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION attachments_message_deleted();

-- Statistics on the search expression, per partition. The search index is partial, and
-- PostgreSQL does not use a partial index's statistics: without these, two common words were
-- estimated at a few rows per partition (a default selectivity), so each partition read every
-- matching row to check its conversation, where ANDing the word index's bitmap with the
-- (conversation_id, seq) index's reads only the caller's: 3 times slower for two common words
-- on the 1,000,000-message benchmark (docs/perf/2026-12-messages-partitioned.md).
DO $$
BEGIN
    FOR p IN 0..15 LOOP
        EXECUTE format(
            'CREATE STATISTICS messages_p%s_words ON (to_tsvector(''chat_search'', body)) FROM messages_p%s',
            p, p);
    END LOOP;
END
$$;

DROP TABLE messages_unpartitioned;
-- Every partition's statistics, the search expression's included.
ANALYZE messages;
