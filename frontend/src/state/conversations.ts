// The conversation list: newest activity first, each with its last message.
import type { Conversation, Message } from "../types";

function activity(c: Conversation): string {
  return c.lastMessage?.sentAt ?? c.createdAt;
}

export function sortByActivity(list: Conversation[]): Conversation[] {
  return [...list].sort((a, b) => (activity(a) < activity(b) ? 1 : activity(a) > activity(b) ? -1 : 0));
}

/**
 * Adds or replaces a conversation with the server's copy (an answer, `conversation:created`
 * or `updated`), keeping the list ordered. The copy is the truth for the name (absent when
 * cleared) and the members; what only the listing carries (last message, read state) is
 * kept when the copy lacks it.
 */
export function upsert(list: Conversation[], c: Conversation): Conversation[] {
  const existing = list.find((x) => x.id === c.id);
  const merged = existing
    ? {
        ...existing,
        ...c,
        name: c.name,
        lastMessage: c.lastMessage ?? existing.lastMessage,
        unreadCount: c.unreadCount ?? existing.unreadCount,
        lastReadMessageId: c.lastReadMessageId !== undefined ? c.lastReadMessageId : existing.lastReadMessageId,
      }
    : c;
  return sortByActivity([...list.filter((x) => x.id !== c.id), merged]);
}

export function without(list: Conversation[], id: string): Conversation[] {
  return list.some((c) => c.id === id) ? list.filter((c) => c.id !== id) : list;
}

/** Changes one conversation in place (no reordering). */
export function update(list: Conversation[], id: string, f: (c: Conversation) => Conversation): Conversation[] {
  return list.map((c) => (c.id === id ? f(c) : c));
}

/** Pages of the listing joined: a conversation that moved up between pages shows once. */
export function appendPage(list: Conversation[], page: Conversation[]): Conversation[] {
  const have = new Set(list.map((c) => c.id));
  return [...list, ...page.filter((c) => !have.has(c.id))];
}

/** A new message becomes its conversation's last one when it is newer. */
export function withMessage(list: Conversation[], m: Message): Conversation[] {
  let changed = false;
  const next = list.map((c) => {
    if (c.id !== m.conversationId) return c;
    if (c.lastMessage && c.lastMessage.sentAt > m.sentAt) return c;
    changed = true;
    return { ...c, lastMessage: m };
  });
  return changed ? sortByActivity(next) : list;
}

export function withUpdated(list: Conversation[], m: Message): Conversation[] {
  return list.map((c) => (c.lastMessage?.id === m.id ? { ...c, lastMessage: m } : c));
}

/** True when the deleted message was a conversation's last one (the list must be re-read). */
export function lastWasDeleted(list: Conversation[], m: Pick<Message, "id" | "conversationId">): boolean {
  return list.some((c) => c.id === m.conversationId && c.lastMessage?.id === m.id);
}

/** What the list shows as a conversation's title, from one member's point of view. */
export function title(c: Conversation, me: string): string {
  if (c.name) return c.name;
  const others = c.members.filter((m) => m.userId !== me);
  if (others.length === 0) return "Just you";
  return others.map((m) => m.displayName).join(", ");
}
