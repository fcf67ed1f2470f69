-- Attachments: files uploaded on their own, then claimed by one message at send time.

-- An upload is owned by its uploader until a send claims it (message_id, conversation_id,
-- claimed_at, position set in one statement). Soft-deleted (deleted_at) when its message or
-- conversation goes; the sweeper then removes the stored objects and the row. No foreign key
-- to messages: a claim is made before the worker stores the message (it is queued), and
-- messages are soft-deleted anyway.
CREATE TABLE attachments (
    id              uuid PRIMARY KEY,
    owner_id        text        NOT NULL,
    name            text        NOT NULL,
    content_type    text        NOT NULL,
    size            bigint      NOT NULL,
    storage_key     text        NOT NULL,
    width           int,
    height          int,
    thumbnail_key   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    message_id      uuid,
    conversation_id uuid,
    claimed_at      timestamptz,
    position        smallint,
    deleted_at      timestamptz
);
-- A message's attachments (hydrate, every read of messages).
CREATE INDEX attachments_by_message ON attachments (message_id) WHERE message_id IS NOT NULL;
-- A user's unsent uploads (the quota) and the sweeper's old unsent uploads.
CREATE INDEX attachments_unsent ON attachments (owner_id, created_at)
    WHERE message_id IS NULL AND deleted_at IS NULL;
CREATE INDEX attachments_unsent_age ON attachments (created_at)
    WHERE message_id IS NULL AND deleted_at IS NULL;
-- What the sweeper removes.
CREATE INDEX attachments_deleted ON attachments (deleted_at) WHERE deleted_at IS NOT NULL;
-- Conversation deletion marks its attachments.
CREATE INDEX attachments_by_conversation ON attachments (conversation_id)
    WHERE conversation_id IS NOT NULL;

-- URLs issued before this instant are refused: set whenever a member leaves or is removed.
ALTER TABLE conversations ADD COLUMN attachments_revoked_at timestamptz;

-- Triggers rather than code in each delete path: messages are soft-deleted by the chat
-- service and by the worker (a delete queued behind its message), and deleted with their
-- conversation by a cascade; one rule in the schema catches them all, in the same
-- transaction, so a read never shows a deleted message's files.
CREATE FUNCTION attachments_message_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE attachments SET deleted_at = now()
    WHERE message_id = NEW.id AND deleted_at IS NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER attachments_message_deleted
    AFTER UPDATE OF deleted_at ON messages
    FOR EACH ROW WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION attachments_message_deleted();

CREATE FUNCTION attachments_conversation_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE attachments SET deleted_at = now()
    WHERE conversation_id = OLD.id AND deleted_at IS NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER attachments_conversation_deleted
    AFTER DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION attachments_conversation_deleted();
