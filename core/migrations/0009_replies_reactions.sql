-- Replies and reactions.

-- The message a reply quotes. Only the id is stored: its preview is read at read time, so
-- an edit or delete of the original shows in every reply without touching them.
ALTER TABLE messages ADD COLUMN reply_to_id uuid;

-- One row per (message, emoji, user). The message row itself is never written by a
-- reaction (no counters on it: a burst of reactions would otherwise rewrite one hot row).
-- No foreign key to messages: its check takes a KEY SHARE row lock on the message, which
-- writes that row's header (a MultiXact under a burst of concurrent reactions); messages are
-- soft-deleted, and readers only read reactions of messages they found.
CREATE TABLE message_reactions (
    message_id uuid        NOT NULL,
    emoji      text        NOT NULL,
    user_id    text        NOT NULL,
    reacted_at timestamptz NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);
