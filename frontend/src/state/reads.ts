//! Read state as the list and the open conversation show it: unread badges kept live between
//! listings, whose read marker has reached the last message ("seen by"), and where the
//! "New messages" divider goes. Pure functions over the contract's shapes.
import type { Conversation, Message, ReadEvent, ReadMarker, ReadResult } from "../types";

/** "Seen by" is shown in conversations of at most this many members. */
export const SEEN_BY_MAX_MEMBERS = 10;

/**
 * A new message in the list's copy of its conversation: one more unread when it is someone
 * else's and not being read right now (`reading`: open in a visible tab); the user's own
 * send moves their marker to it, as the server does.
 */
export function countMessage(c: Conversation, m: Message, me: string, reading: boolean): Conversation {
  if (c.lastMessage?.id === m.id) return c; // already counted (the send's answer and its event)
  if (m.senderId === me) return { ...c, unreadCount: 0, lastReadMessageId: m.id };
  if (reading) return c;
  return { ...c, unreadCount: (c.unreadCount ?? 0) + 1 };
}

/** The server's answer to marking read: its count is the truth. */
export function applyReadResult(c: Conversation, r: ReadResult): Conversation {
  return { ...c, unreadCount: r.unreadCount, lastReadMessageId: r.lastReadMessageId };
}

/**
 * The user's own marker moved on some device (`conversation:read` with their id). The
 * event has no count: what is left unread is counted in the loaded messages when the marker
 * is among them, else the other device read up to what it had, which was the newest.
 * A marker older than the one known here is ignored (markers never move backwards).
 */
export function applyOwnRead(c: Conversation, ev: ReadEvent, me: string, loaded: Message[] | undefined): Conversation {
  if (ev.lastReadMessageId === c.lastReadMessageId) return c;
  if (loaded) {
    const at = loaded.findIndex((m) => m.id === ev.lastReadMessageId);
    const known = c.lastReadMessageId ? loaded.findIndex((m) => m.id === c.lastReadMessageId) : -1;
    if (at >= 0 && known > at) return c;
    if (at >= 0) {
      const left = loaded.slice(at + 1).filter((m) => m.senderId !== me).length;
      return { ...c, unreadCount: left, lastReadMessageId: ev.lastReadMessageId };
    }
  }
  return { ...c, unreadCount: 0, lastReadMessageId: ev.lastReadMessageId };
}

/** Markers by user id, from `GET /reads`, then moved by `conversation:read` events. */
export type Markers = Record<string, ReadMarker>;

export function markersFrom(list: ReadMarker[]): Markers {
  return Object.fromEntries(list.map((r) => [r.userId, r]));
}

export function withMarker(markers: Markers | undefined, ev: ReadEvent, loaded: Message[] | undefined): Markers {
  const have = markers?.[ev.userId];
  if (have && loaded) {
    const at = loaded.findIndex((m) => m.id === ev.lastReadMessageId);
    const known = loaded.findIndex((m) => m.id === have.lastReadMessageId);
    if (at >= 0 && known > at) return markers as Markers;
  }
  const { userId, lastReadMessageId, readAt } = ev;
  return { ...markers, [userId]: { userId, lastReadMessageId, readAt } };
}

/**
 * The members (other than the user and the author) whose marker is at or past the last
 * message: the marker is that message or a later one, or, when it is not among the loaded
 * messages, was set after the message was sent.
 */
export function seenBy(c: Conversation, messages: Message[], markers: Markers | undefined, me: string): string[] {
  const last = messages[messages.length - 1];
  if (!last || !markers || c.members.length > SEEN_BY_MAX_MEMBERS) return [];
  const lastAt = messages.length - 1;
  const out: string[] = [];
  for (const m of c.members) {
    if (m.userId === me || m.userId === last.senderId) continue;
    const r = markers[m.userId];
    if (!r) continue;
    const at = messages.findIndex((x) => x.id === r.lastReadMessageId);
    if (at >= lastAt || (at < 0 && r.readAt >= last.sentAt)) out.push(m.displayName);
  }
  return out;
}

/** What the list said about the conversation when it was opened. */
export interface OpenedState {
  lastReadMessageId: string | null;
  unreadCount: number;
}

/**
 * The id of the first unread message, where "New messages" goes, worked out once when the
 * conversation opens: the first message of someone else after the marker; when the marker
 * is not among the loaded messages (nothing read, or read before the loaded page), the
 * unread count says how many of the newest messages of others are unread.
 */
export function firstUnread(messages: Message[], opened: OpenedState | undefined, me: string): string | undefined {
  if (!opened || opened.unreadCount <= 0) return undefined;
  const at = opened.lastReadMessageId ? messages.findIndex((m) => m.id === opened.lastReadMessageId) : -1;
  if (at >= 0) return messages.slice(at + 1).find((m) => m.senderId !== me)?.id;
  const theirs = messages.filter((m) => m.senderId !== me);
  return theirs[Math.max(0, theirs.length - opened.unreadCount)]?.id;
}
