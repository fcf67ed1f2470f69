-- Conversations, their members, and messages.

CREATE TABLE conversations (
    id          uuid PRIMARY KEY,
    name        text,
    type        text NOT NULL CHECK (type IN ('one_to_one', 'group')),
    -- one_to_one only: the two member ids, sorted and joined, so a pair has one conversation.
    pair_key    text UNIQUE,
    created_at  timestamptz NOT NULL
);

CREATE TABLE conversation_members (
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         text NOT NULL,
    display_name    text NOT NULL,
    position        int  NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
-- "Conversations of user X"; the primary key answers "is X a member of C".
CREATE INDEX conversation_members_by_user ON conversation_members (user_id, conversation_id);

CREATE TABLE messages (
    -- Commit order: the worker assigns it under a lock, so a reader paging by seq never
    -- sees a smaller seq appear after a larger one.
    seq               bigint GENERATED ALWAYS AS IDENTITY,
    id                uuid PRIMARY KEY,
    conversation_id   uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id         text NOT NULL,
    body              text NOT NULL,
    client_message_id text,
    sent_at           timestamptz NOT NULL,
    edited_at         timestamptz,
    deleted_at        timestamptz
);
CREATE UNIQUE INDEX messages_by_conversation ON messages (conversation_id, seq);
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, sender_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
