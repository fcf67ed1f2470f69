-- Who blocked whom: a blocked user cannot open a one-to-one with the blocker, nor add the
-- blocker to a group (nor can the blocker open a one-to-one with them).
CREATE TABLE user_blocks (
    blocker    text NOT NULL,
    blocked    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker, blocked)
);
-- "Who blocked X": checked when X creates a conversation.
CREATE INDEX user_blocks_by_blocked ON user_blocks (blocked, blocker);
