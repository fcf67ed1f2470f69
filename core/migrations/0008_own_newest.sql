-- A member's own newest message in a conversation: a send moves its sender's read marker, and
-- the marker in effect is read as the newer of the one they set and this (one index probe),
-- instead of every send updating its sender's member row.
CREATE INDEX messages_by_sender ON messages (conversation_id, sender_id, seq);
