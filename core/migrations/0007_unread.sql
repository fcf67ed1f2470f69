-- Unread counting: the live messages of a conversation in commit order, with their sender,
-- so counting "messages from others after my marker" (and finding the newest live message)
-- reads the index alone, never the table, while the visibility map is current.
CREATE INDEX messages_live_by_conversation ON messages (conversation_id, seq) INCLUDE (sender_id)
    WHERE deleted_at IS NULL;
