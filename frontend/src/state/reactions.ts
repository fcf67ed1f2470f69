//! Reactions and reply quotes as the user sees them: the optimistic toggle of the user's own
//! reaction (the server's copy replaces it when it answers or announces the message), who
//! reacted in words, and the quote a reply shows of its original.
import type { Message, Reaction, ReplyPreview } from "../types";

/** The picker's choice; any single emoji the server accepts can still arrive from others. */
export const COMMON_EMOJI = ["👍", "❤️", "😂", "😮", "😢", "🎉", "🙏", "👀"] as const;

/** The server's limit on distinct emoji per message (a 21st is refused with 409). */
export const MAX_DISTINCT_EMOJI = 20;

/** The server keeps this much of the original's body in a reply's preview. */
export const PREVIEW_CHARS = 200;

export function hasReacted(m: Pick<Message, "reactions">, emoji: string, userId: string): boolean {
  return Boolean(m.reactions?.some((r) => r.emoji === emoji && r.userIds.includes(userId)));
}

/**
 * The reactions with `userId`'s `emoji` added (`on`) or removed: counts kept consistent, a
 * new emoji last (the server orders by first reaction), an emoji nobody has left dropped.
 */
export function withReaction(reactions: Reaction[] | undefined, emoji: string, userId: string, on: boolean): Reaction[] {
  const list = reactions ?? [];
  const i = list.findIndex((r) => r.emoji === emoji);
  if (on) {
    if (i < 0) return [...list, { emoji, count: 1, userIds: [userId] }];
    const r = list[i];
    if (r.userIds.includes(userId)) return list;
    return list.map((x, j) => (j === i ? { ...r, count: r.count + 1, userIds: [...r.userIds, userId] } : x));
  }
  if (i < 0 || !list[i].userIds.includes(userId)) return list;
  const r = list[i];
  const userIds = r.userIds.filter((u) => u !== userId);
  const count = Math.max(0, r.count - 1);
  return count === 0 ? list.filter((_, j) => j !== i) : list.map((x, j) => (j === i ? { ...r, count, userIds } : x));
}

/** A new emoji past the server's limit would be refused: the picker offers it disabled. */
export function canAdd(m: Pick<Message, "reactions">, emoji: string): boolean {
  const list = m.reactions ?? [];
  return list.length < MAX_DISTINCT_EMOJI || list.some((r) => r.emoji === emoji);
}

/** "Alice, Bob and you" for a chip's title: display names where known, else the user id. */
export function whoReacted(r: Reaction, names: ReadonlyMap<string, string>, me: string): string {
  const who = r.userIds.map((u) => (u === me ? "you" : (names.get(u) ?? u)));
  // `count` can exceed the ids listed (a server may cap the list): the rest are counted.
  const others = r.count - r.userIds.length;
  if (others > 0) who.push(`${others} other${others === 1 ? "" : "s"}`);
  if (who.length === 0) return r.emoji;
  const text = who.length === 1 ? who[0] : `${who.slice(0, -1).join(", ")} and ${who[who.length - 1]}`;
  return `${text.charAt(0).toUpperCase()}${text.slice(1)} reacted with ${r.emoji}`;
}

/** The live original's preview (the contract's ReplyTo with `senderId` and `body` present). */
export type LivePreview = ReplyPreview & Required<Pick<ReplyPreview, "senderId" | "body">>;

/** The preview a reply to `m` carries (what the server computes), for an optimistic send. */
export function previewOf(m: Pick<Message, "id" | "senderId" | "body">): LivePreview {
  return { id: m.id, senderId: m.senderId, body: Array.from(m.body).slice(0, PREVIEW_CHARS).join("") };
}

/** A reply's quote after its original changed (`message:updated`); others unchanged. */
export function quoteUpdated(m: Message, original: Message): Message {
  const q = m.replyTo;
  if (!q || q.id !== original.id || !("body" in q)) return m;
  const next = previewOf(original);
  return q.body === next.body ? m : { ...m, replyTo: next };
}

/** A reply's quote after its original was deleted. */
export function quoteDeleted(m: Message, originalId: string): Message {
  if (!m.replyTo || m.replyTo.id !== originalId || m.replyTo.deleted) return m;
  return { ...m, replyTo: { id: originalId, deleted: true } };
}
