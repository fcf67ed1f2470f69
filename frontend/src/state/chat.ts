// Conversations, messages, presence and typing for the signed-in user: the REST calls,
// the live events, optimistic sends reconciled by `clientMessageId`, and catching up
// after a lost connection.
import type { Socket } from "socket.io-client";
import { Api, ApiError, NetworkError, describeError } from "../api";
import type { Conversation, Message, TypingEvent, User } from "../types";
import type { ConnectionState } from "../realtime";
import * as conv from "./conversations";
import * as th from "./thread";
import { Store } from "./store";

export const PAGE_SIZE = 50;
/** Typing notices are repeated this often while typing, and forgotten after TYPING_TTL_MS. */
const TYPING_REPEAT_MS = 2000;
const TYPING_IDLE_MS = 3000;
export const TYPING_TTL_MS = 6000;

export interface ChatState {
  conversations: Conversation[];
  conversationsLoaded: boolean;
  conversationsError?: string;
  threads: Record<string, th.Thread>;
  /** Online users by id (from `presence:update`). */
  online: Record<string, User>;
  /** Who is typing, by conversation then user id, with when it was last heard. */
  typing: Record<string, Record<string, { displayName: string; at: number }>>;
  connection: ConnectionState;
  /** The last failed action, for an alert. */
  notice?: string;
}

export const initialChatState: ChatState = {
  conversations: [],
  conversationsLoaded: false,
  threads: {},
  online: {},
  typing: {},
  connection: "connecting",
};

export function newClientMessageId(): string {
  return typeof crypto !== "undefined" && "randomUUID" in crypto
    ? crypto.randomUUID()
    : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

export class ChatController {
  readonly store = new Store<ChatState>(initialChatState);
  private socket: Socket | null = null;
  private typingSent: Record<string, { at: number; idle?: ReturnType<typeof setTimeout> }> = {};
  private sweep?: ReturnType<typeof setInterval>;

  constructor(
    readonly api: Api,
    readonly me: User,
  ) {}

  /** Subscribes to the live events of `socket` and loads the conversation list. */
  attach(socket: Socket) {
    this.socket = socket;
    socket.on("message:created", (m: Message) => this.onCreated(m));
    socket.on("message:updated", (m: Message) => this.onUpdated(m));
    socket.on("message:deleted", (m: Message) => this.onDeleted(m));
    socket.on("presence:update", (users: User[]) => this.onPresence(users));
    socket.on("typing:update", (t: TypingEvent) => this.onTyping(t));
    this.sweep = setInterval(() => this.expireTyping(), 1000);
    void this.loadConversations();
  }

  detach() {
    clearInterval(this.sweep);
    for (const t of Object.values(this.typingSent)) clearTimeout(t.idle);
    this.socket = null;
  }

  setConnection(connection: ConnectionState) {
    this.store.set({ connection });
    if (connection !== "online") this.store.set({ online: {}, typing: {} });
  }

  private thread(id: string): th.Thread {
    return this.store.get().threads[id] ?? th.emptyThread;
  }

  private setThread(id: string, f: (t: th.Thread) => th.Thread) {
    this.store.set((s) => ({ ...s, threads: { ...s.threads, [id]: f(s.threads[id] ?? th.emptyThread) } }));
  }

  private notify(e: unknown) {
    this.store.set({ notice: describeError(e) });
  }

  dismissNotice() {
    this.store.set({ notice: undefined });
  }

  async loadConversations() {
    try {
      const list = await this.api.conversations(this.me.userId);
      this.store.set({
        conversations: conv.sortByActivity(list),
        conversationsLoaded: true,
        conversationsError: undefined,
      });
    } catch (e) {
      this.store.set({ conversationsError: describeError(e), conversationsLoaded: true });
    }
  }

  /** Fetches a conversation that is not in the list yet (opened by link, or just created). */
  async ensureConversation(id: string): Promise<Conversation | undefined> {
    const have = this.store.get().conversations.find((c) => c.id === id);
    if (have) return have;
    try {
      const c = await this.api.conversation(id);
      this.store.set((s) => ({ ...s, conversations: conv.upsert(s.conversations, c) }));
      return c;
    } catch (e) {
      this.notify(e);
      return undefined;
    }
  }

  async createConversation(input: { type: Conversation["type"]; name?: string; members: User[] }) {
    const c = await this.api.createConversation(input);
    this.store.set((s) => ({ ...s, conversations: conv.upsert(s.conversations, c) }));
    return c;
  }

  /** The newest page of a conversation (on opening it, and when catching up). */
  async openThread(id: string) {
    const t = this.thread(id);
    if (t.loaded) return;
    try {
      const page = await this.api.messages(id, { limit: PAGE_SIZE });
      this.setThread(id, (t) => th.loadLatest(t, page.messages, page.hasOlder));
    } catch (e) {
      this.setThread(id, (t) => ({ ...t, error: describeError(e) }));
    }
  }

  async loadOlder(id: string) {
    const t = this.thread(id);
    const oldest = th.oldestConfirmed(t);
    if (!t.hasOlder || t.loadingOlder || !oldest) return;
    this.setThread(id, (t) => ({ ...t, loadingOlder: true }));
    try {
      const page = await this.api.messages(id, { limit: PAGE_SIZE, before: oldest.id });
      this.setThread(id, (t) => th.prependOlder(t, page.messages, page.hasOlder));
    } catch (e) {
      this.setThread(id, (t) => ({ ...t, loadingOlder: false }));
      this.notify(e);
    }
  }

  async send(conversationId: string, text: string) {
    const body = text.trim();
    if (!body) return;
    const clientMessageId = newClientMessageId();
    const pending: Message = {
      id: `local:${clientMessageId}`,
      conversationId,
      senderId: this.me.userId,
      body,
      sentAt: new Date().toISOString(),
      editedAt: null,
      clientMessageId,
    };
    this.setThread(conversationId, (t) => th.addPending(t, pending));
    this.stopTyping(conversationId);
    await this.deliver(pending);
  }

  /** Sends (or re-sends: the same `clientMessageId` never makes a second copy). */
  private async deliver(m: Message) {
    const cmid = m.clientMessageId as string;
    try {
      const saved = await this.api.sendMessage(m.conversationId, m.senderId, m.body, cmid);
      this.onCreated({ ...saved, clientMessageId: saved.clientMessageId ?? cmid });
    } catch (e) {
      this.setThread(m.conversationId, (t) => th.markFailed(t, cmid));
      if (!(e instanceof NetworkError)) this.notify(e);
    }
  }

  async retry(conversationId: string, clientMessageId: string) {
    const m = this.thread(conversationId).messages.find(
      (x) => x.clientMessageId === clientMessageId && x.delivery === "failed",
    );
    if (!m) return;
    this.setThread(conversationId, (t) => th.markPending(t, clientMessageId));
    await this.deliver(m);
  }

  discard(conversationId: string, clientMessageId: string) {
    this.setThread(conversationId, (t) => th.discardLocal(t, clientMessageId));
  }

  async edit(conversationId: string, messageId: string, text: string) {
    const body = text.trim();
    const before = this.thread(conversationId).messages.find((m) => m.id === messageId);
    if (!before || !body || body === before.body) return;
    this.setThread(conversationId, (t) => th.applyEdit(t, messageId, body));
    try {
      const saved = await this.api.editMessage(conversationId, messageId, body);
      this.onUpdated(saved);
    } catch (e) {
      this.setThread(conversationId, (t) => th.applyUpdated(t, before));
      this.notify(e);
    }
  }

  async remove(conversationId: string, messageId: string) {
    const t0 = this.thread(conversationId);
    this.setThread(conversationId, (t) => th.applyDeleted(t, messageId));
    try {
      const gone = await this.api.deleteMessage(conversationId, messageId);
      this.onDeleted(gone);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return; // already gone
      this.setThread(conversationId, () => t0);
      this.notify(e);
    }
  }

  /** Call on every keystroke in the composer; sends `isTyping` at most every 2 s. */
  typing(conversationId: string) {
    const now = Date.now();
    const sent = this.typingSent[conversationId];
    if (!sent || now - sent.at > TYPING_REPEAT_MS) {
      this.emitTyping(conversationId, true);
      this.typingSent[conversationId] = { at: now };
    }
    const entry = this.typingSent[conversationId];
    clearTimeout(entry.idle);
    entry.idle = setTimeout(() => this.stopTyping(conversationId), TYPING_IDLE_MS);
  }

  stopTyping(conversationId: string) {
    const sent = this.typingSent[conversationId];
    if (!sent) return;
    clearTimeout(sent.idle);
    delete this.typingSent[conversationId];
    this.emitTyping(conversationId, false);
  }

  private emitTyping(conversationId: string, isTyping: boolean) {
    this.socket?.emit("typing:update", {
      conversationId,
      userId: this.me.userId,
      displayName: this.me.displayName,
      isTyping,
    });
  }

  /** After a reconnect: the list, what each open conversation missed, and failed sends. */
  async catchUp() {
    await this.loadConversations();
    const threads = this.store.get().threads;
    await Promise.all(
      Object.entries(threads)
        .filter(([, t]) => t.loaded)
        .map(([id]) => this.catchUpThread(id)),
    );
    for (const [id, t] of Object.entries(this.store.get().threads)) {
      for (const m of t.messages) {
        if (m.delivery === "failed" && m.clientMessageId) void this.retry(id, m.clientMessageId);
      }
    }
  }

  private async catchUpThread(id: string) {
    try {
      // Everything newer than what is shown, page by page...
      for (let i = 0; i < 20; i++) {
        const anchor = th.lastConfirmed(this.thread(id));
        if (!anchor) break;
        const page = await this.api.messages(id, { limit: PAGE_SIZE, after: anchor.id });
        this.setThread(id, (t) => th.appendNewer(t, page.messages));
        if (page.messages.length < PAGE_SIZE) break;
      }
    } catch {
      // The anchor may have been deleted meanwhile; the newest page below still applies.
    }
    try {
      // ...then the newest page again, for edits and deletes made while away.
      const page = await this.api.messages(id, { limit: PAGE_SIZE });
      this.setThread(id, (t) => th.reconcileLatest(t, page.messages));
    } catch (e) {
      this.setThread(id, (t) => ({ ...t, error: describeError(e) }));
    }
  }

  private onCreated(m: Message) {
    this.setThread(m.conversationId, (t) => (t.loaded || t.messages.length ? th.appendNewer(t, [m]) : t));
    const s = this.store.get();
    if (!s.conversations.some((c) => c.id === m.conversationId)) {
      // A conversation someone else started with us: fetch it for the list.
      void this.ensureConversation(m.conversationId).then(() =>
        this.store.set((s) => ({ ...s, conversations: conv.withMessage(s.conversations, m) })),
      );
    } else {
      this.store.set((s) => ({ ...s, conversations: conv.withMessage(s.conversations, m) }));
    }
    this.clearTyping(m.conversationId, m.senderId);
  }

  private onUpdated(m: Message) {
    this.setThread(m.conversationId, (t) => th.applyUpdated(t, m));
    this.store.set((s) => ({ ...s, conversations: conv.withUpdated(s.conversations, m) }));
  }

  private onDeleted(m: Message) {
    const wasLast = conv.lastWasDeleted(this.store.get().conversations, m);
    this.setThread(m.conversationId, (t) => th.applyDeleted(t, m.id));
    if (wasLast) void this.loadConversations();
  }

  private onPresence(users: User[]) {
    const online: Record<string, User> = {};
    for (const u of users) online[u.userId] = u;
    this.store.set({ online });
  }

  private onTyping(t: TypingEvent) {
    if (t.userId === this.me.userId) return;
    this.store.set((s) => {
      const forConv = { ...(s.typing[t.conversationId] ?? {}) };
      if (t.isTyping) forConv[t.userId] = { displayName: t.displayName, at: Date.now() };
      else delete forConv[t.userId];
      return { ...s, typing: { ...s.typing, [t.conversationId]: forConv } };
    });
  }

  private clearTyping(conversationId: string, userId: string) {
    if (!this.store.get().typing[conversationId]?.[userId]) return;
    this.onTyping({ conversationId, userId, displayName: "", isTyping: false });
  }

  /** A member whose "stopped typing" never came (closed tab) stops showing after a while. */
  private expireTyping() {
    const now = Date.now();
    const s = this.store.get();
    let changed = false;
    const typing: ChatState["typing"] = {};
    for (const [cid, users] of Object.entries(s.typing)) {
      typing[cid] = {};
      for (const [uid, v] of Object.entries(users)) {
        if (now - v.at < TYPING_TTL_MS) typing[cid][uid] = v;
        else changed = true;
      }
    }
    if (changed) this.store.set({ typing });
  }
}
