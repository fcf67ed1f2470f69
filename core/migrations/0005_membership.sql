-- Living membership: roles, join order, a version bumped by every membership change (the
-- chat instances compare it to what they cached), a log of the changes, and read markers.

ALTER TABLE conversations ADD COLUMN member_version bigint NOT NULL DEFAULT 1;

ALTER TABLE conversation_members
    ADD COLUMN role text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
    -- "Member longest" when the owner leaves: earliest joined_at, then position.
    ADD COLUMN joined_at timestamptz NOT NULL DEFAULT now(),
    -- Read state. Messages with seq <= read_seq are not unread for this member: the marker's
    -- message, or for someone added later, the conversation's last message at their joining.
    ADD COLUMN read_seq bigint NOT NULL DEFAULT 0,
    -- The message the member marked read (or last sent), null until they read something.
    ADD COLUMN last_read_id uuid,
    ADD COLUMN read_at timestamptz;

-- Groups created before roles: the first listed member (the creator, as clients list them)
-- becomes the owner.
UPDATE conversation_members cm SET role = 'owner'
FROM conversations c
WHERE c.id = cm.conversation_id AND c.type = 'group'
  AND cm.position = (SELECT min(position) FROM conversation_members f
                     WHERE f.conversation_id = cm.conversation_id);

-- Every membership change, in version order: who did what to whom.
CREATE TABLE membership_changes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    version         bigint NOT NULL,
    -- null when no signed-in caller made it (compat mode).
    actor           text,
    action          text NOT NULL CHECK (action IN
                        ('created', 'added', 'removed', 'left', 'role', 'owner', 'renamed')),
    user_id         text,
    role            text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX membership_changes_by_conversation ON membership_changes (conversation_id, version);
