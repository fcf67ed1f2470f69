// One conversation's messages as the user sees them: confirmed messages in the server's
// order, then the user's own sends still in flight. Pure functions, so every merge rule
// (paging, live events, optimistic sends and their confirmation) is unit-tested.
import type { Message } from "../types";
import { quoteDeleted, quoteUpdated, withReaction } from "./reactions";

export type Delivery = "sent" | "pending" | "failed";

export interface UiMessage extends Message {
  delivery: Delivery;
  /** An edit sent but not yet confirmed: the body shown is the new one. */
  editPending?: boolean;
}

export interface Thread {
  messages: UiMessage[];
  loaded: boolean;
  hasOlder: boolean;
  loadingOlder: boolean;
  error?: string;
}

export const emptyThread: Thread = { messages: [], loaded: false, hasOlder: false, loadingOlder: false };

const sent = (m: Message): UiMessage => ({ ...m, delivery: "sent" });

function split(t: Thread) {
  const confirmed = t.messages.filter((m) => m.delivery === "sent");
  const local = t.messages.filter((m) => m.delivery !== "sent");
  return { confirmed, local };
}

/** Drops local sends that a confirmed message now stands for. */
function withoutConfirmed(local: UiMessage[], confirmed: UiMessage[]) {
  const cmids = new Set(confirmed.map((m) => m.clientMessageId).filter(Boolean));
  return local.filter((m) => !cmids.has(m.clientMessageId));
}

/** The newest page, on opening a conversation: replaces what was confirmed, keeps local sends. */
export function loadLatest(t: Thread, page: Message[], hasOlder: boolean): Thread {
  const confirmed = page.map(sent);
  const { local } = split(t);
  return {
    ...t,
    messages: [...confirmed, ...withoutConfirmed(local, confirmed)],
    loaded: true,
    hasOlder,
    loadingOlder: false,
    error: undefined,
  };
}

/** An older page (`?before=`), prepended; anything already shown is not repeated. */
export function prependOlder(t: Thread, page: Message[], hasOlder: boolean): Thread {
  const have = new Set(t.messages.map((m) => m.id));
  const older = page.filter((m) => !have.has(m.id)).map(sent);
  return { ...t, messages: [...older, ...t.messages], hasOlder, loadingOlder: false };
}

/** Newer messages (a live event, a send's answer, or `?after=` after a reconnect). */
export function appendNewer(t: Thread, msgs: Message[]): Thread {
  let { confirmed, local } = split(t);
  for (const m of msgs) {
    const i = confirmed.findIndex((c) => c.id === m.id);
    if (i >= 0) {
      // Already shown: only take the newer edit.
      if (m.editedAt && m.editedAt !== confirmed[i].editedAt) {
        confirmed = confirmed.map((c, j) => (j === i ? { ...sent(m) } : c));
      }
      continue;
    }
    confirmed = [...confirmed, sent(m)];
  }
  return { ...t, messages: [...confirmed, ...withoutConfirmed(local, confirmed)] };
}

export function addPending(t: Thread, m: Message): Thread {
  return { ...t, messages: [...t.messages, { ...m, delivery: "pending" }] };
}

export function markFailed(t: Thread, clientMessageId: string): Thread {
  return {
    ...t,
    messages: t.messages.map((m) =>
      m.clientMessageId === clientMessageId && m.delivery === "pending" ? { ...m, delivery: "failed" } : m,
    ),
  };
}

export function markPending(t: Thread, clientMessageId: string): Thread {
  return {
    ...t,
    messages: t.messages.map((m) =>
      m.clientMessageId === clientMessageId && m.delivery === "failed" ? { ...m, delivery: "pending" } : m,
    ),
  };
}

export function discardLocal(t: Thread, clientMessageId: string): Thread {
  return {
    ...t,
    messages: t.messages.filter((m) => !(m.delivery !== "sent" && m.clientMessageId === clientMessageId)),
  };
}

/** An edit: shown at once with `editPending`, then the server's copy replaces it. */
export function applyEdit(t: Thread, id: string, body: string): Thread {
  return {
    ...t,
    messages: t.messages.map((m) => (m.id === id ? { ...m, body, editPending: true } : m)),
  };
}

/**
 * The server's copy of a message (an edit confirmed, `message:updated`, reactions
 * included); the quotes of replies to it follow its new text.
 */
export function applyUpdated(t: Thread, msg: Message): Thread {
  return {
    ...t,
    messages: t.messages.map((m) => (m.id === msg.id ? sent(msg) : (quoteUpdated(m, msg) as UiMessage))),
  };
}

/** A message gone: removed, and replies to it now quote "Original message deleted". */
export function applyDeleted(t: Thread, id: string): Thread {
  return { ...t, messages: t.messages.filter((m) => m.id !== id).map((m) => quoteDeleted(m, id) as UiMessage) };
}

/** The user's own reaction toggled before the server answers (its copy then replaces it). */
export function applyReaction(t: Thread, id: string, emoji: string, userId: string, on: boolean): Thread {
  return {
    ...t,
    messages: t.messages.map((m) => (m.id === id ? { ...m, reactions: withReaction(m.reactions, emoji, userId, on) } : m)),
  };
}

export function has(t: Thread, id: string): boolean {
  return t.messages.some((m) => m.id === id && m.delivery === "sent");
}

/** The newest confirmed message, the anchor for `?after=` when catching up. */
export function lastConfirmed(t: Thread): UiMessage | undefined {
  const { confirmed } = split(t);
  return confirmed[confirmed.length - 1];
}

export function oldestConfirmed(t: Thread): UiMessage | undefined {
  return t.messages.find((m) => m.delivery === "sent");
}

/**
 * The newest page read again after a reconnect: within the page's time span it is the
 * truth (edits applied, deleted messages gone); older messages are kept as they were.
 */
export function reconcileLatest(t: Thread, page: Message[]): Thread {
  const { confirmed, local } = split(t);
  const ids = new Set(page.map((m) => m.id));
  const start = page[0]?.sentAt;
  const older = start === undefined ? [] : confirmed.filter((m) => m.sentAt <= start && !ids.has(m.id));
  const fresh = page.map(sent);
  return { ...t, messages: [...older, ...fresh, ...withoutConfirmed(local, fresh)] };
}
