-- Calls, their participants, and their WebRTC signals.

CREATE TABLE calls (
    id              uuid PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    type            text NOT NULL CHECK (type IN ('audio', 'video')),
    status          text NOT NULL CHECK (status IN ('ringing', 'in_progress', 'declined', 'missed', 'ended')),
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    -- Signals stored so far and the newest one's time: bounds storage and keeps times unique.
    signal_count    int NOT NULL DEFAULT 0,
    last_signal_at  timestamptz
);
CREATE INDEX calls_by_conversation ON calls (conversation_id, started_at, id);
-- The missed-call sweep looks only at ringing calls.
CREATE INDEX calls_ringing ON calls (started_at) WHERE status = 'ringing';

CREATE TABLE call_participants (
    call_id      uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    user_id      text NOT NULL,
    display_name text NOT NULL,
    position     int  NOT NULL,
    PRIMARY KEY (call_id, user_id)
);

CREATE TABLE call_signals (
    call_id    uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('offer', 'answer', 'ice')),
    sender_id  text NOT NULL,
    target_id  text,
    payload    jsonb NOT NULL,
    -- Unique per call (bumped by a millisecond on collision), so `?after=` never skips.
    created_at timestamptz NOT NULL,
    PRIMARY KEY (call_id, created_at)
);
CREATE INDEX call_signals_by_kind ON call_signals (call_id, kind, created_at);
