// Conversations, messages, presence, typing and read state for the signed-in user: the REST
// calls, the live events, optimistic sends reconciled by `clientMessageId`, group settings,
// replies and reactions, jumping to a message (a quote's original, a search result), and
// catching up after a lost connection.
import { Api, ApiError, NetworkError, describeError } from "../api";
import type { Conversation, Message, ReadEvent, Role, TypingEvent, Upload, User } from "../types";
import type { ChatSocket, ConnectionState } from "../realtime";
import * as conv from "./conversations";
import * as rd from "./reads";
import { hasReacted, previewOf } from "./reactions";
import * as th from "./thread";
import { Store } from "./store";

export const PAGE_SIZE = 50;
/** The listing is read in pages of this many, following `rel="next"` up to the cap. */
export const CONVERSATION_PAGE = 100;
export const CONVERSATION_PAGES_MAX = 10;
/** Typing notices are repeated this often while typing, and forgotten after TYPING_TTL_MS. */
const TYPING_REPEAT_MS = 2000;
const TYPING_IDLE_MS = 3000;
export const TYPING_TTL_MS = 6000;
/** Jumping to an older message reads pages this big, at most this many (then gives up). */
export const JUMP_PAGE = 200;
export const JUMP_PAGES_MAX = 25;
/** A message's attachments are re-read for fresh URLs at most this often (a file that is
 * really gone must not make a loop of requests). */
export const ATTACHMENT_REFRESH_MS = 60_000;

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
  /** Read markers of the members of open small conversations ("seen by"), by conversation. */
  reads: Record<string, rd.Markers>;
  /** Where "New messages" goes in each opened conversation (the first unread message's id). */
  dividers: Record<string, string | undefined>;
  /** Conversations the user left or was removed from: closed, and ignored from then on. */
  removed: Record<string, true>;
  /** More conversations exist than the listing reads (past the page cap). */
  conversationsCapped?: boolean;
  /** The last failed action (or a conversation closed under the user), for an alert. */
  notice?: string;
  /** The message each conversation's composer is replying to. */
  replying: Record<string, Message | undefined>;
  /** The message to scroll to and highlight; `seq` tells a second jump to the same one. */
  highlight?: { conversationId: string; messageId: string; seq: number };
}

export const initialChatState: ChatState = {
  conversations: [],
  conversationsLoaded: false,
  threads: {},
  online: {},
  typing: {},
  reads: {},
  dividers: {},
  removed: {},
  replying: {},
  connection: "connecting",
};

export function newClientMessageId(): string {
  return typeof crypto !== "undefined" && "randomUUID" in crypto
    ? crypto.randomUUID()
    : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

export class ChatController {
  readonly store = new Store<ChatState>(initialChatState);
  private socket: ChatSocket | null = null;
  private typingSent: Record<string, { at: number; idle?: ReturnType<typeof setTimeout> }> = {};
  private sweep?: ReturnType<typeof setInterval>;
  /** The conversation on screen, what the list said of it then, and whether the tab is seen. */
  private active: string | null = null;
  private opened: rd.OpenedState | undefined;
  private visible = typeof document === "undefined" || document.visibilityState !== "hidden";
  /** The message a read is being posted for, by conversation (one request at a time). */
  private readPosting: Record<string, string> = {};
  private leaving = new Set<string>();
  /** The server has no read routes (one from before read state): stop asking. */
  private noReadState = false;
  private listRun = 0;
  /** The newest page being read, by conversation: opening and jumping share one request. */
  private opening: Record<string, Promise<void>> = {};
  private jumps = 0;
  /** The last reaction request of each message and emoji (requests for one go in order). */
  private reacting = new Map<string, Promise<void>>();
  /** When each message's attachments were last re-read for fresh URLs. */
  private refreshedAt = new Map<string, number>();
  /** Told of every message changed or deleted (the search results follow them). */
  onMessageChanged: ((m: Message, deleted: boolean) => void) | null = null;

  constructor(
    readonly api: Api,
    readonly me: User,
  ) {}

  /** A bearer token is presented: the routes that act for a person (reactions) can be used. */
  get signedIn(): boolean {
    return this.api.token !== null;
  }

  /** Subscribes to the live events of `socket` and loads the conversation list. */
  attach(socket: ChatSocket) {
    this.socket = socket;
    // The payloads' types come from the contract (ChatSocket); the handlers take them as is.
    socket.on("message:created", (m) => this.onCreated(m));
    socket.on("message:updated", (m) => this.onUpdated(m));
    socket.on("message:deleted", (m) => this.onDeleted(m));
    socket.on("presence:update", (users) => this.onPresence(users));
    socket.on("typing:update", (t) => this.onTyping(t));
    socket.on("conversation:created", (c) => this.onConversationCreated(c));
    socket.on("conversation:updated", (c) => this.onConversationUpdated(c));
    socket.on("conversation:removed", (r) => this.onConversationRemoved(r.conversationId));
    socket.on("conversation:read", (r) => this.onRead(r));
    if (typeof document !== "undefined") document.addEventListener("visibilitychange", this.onVisibility);
    this.sweep = setInterval(() => this.expireTyping(), 1000);
    void this.loadConversations();
  }

  detach() {
    if (typeof document !== "undefined") document.removeEventListener("visibilitychange", this.onVisibility);
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

  /**
   * The listing: the first page shown at once, then the next ones (`rel="next"`) appended,
   * up to CONVERSATION_PAGES_MAX pages. A newer call (a reconnect) supersedes a running one.
   */
  async loadConversations() {
    const run = ++this.listRun;
    let next: string | undefined;
    try {
      const first = await this.api.conversations(this.me.userId, { limit: CONVERSATION_PAGE });
      if (run !== this.listRun) return;
      const ids = new Set(first.conversations.map((c) => c.id));
      this.store.set((s) => ({
        ...s,
        conversations: conv.sortByActivity(first.conversations),
        removed: Object.fromEntries(Object.entries(s.removed).filter(([id]) => !ids.has(id))),
        conversationsLoaded: true,
        conversationsError: undefined,
        conversationsCapped: false,
      }));
      next = first.next;
    } catch (e) {
      if (run === this.listRun) this.store.set({ conversationsError: describeError(e), conversationsLoaded: true });
      return;
    }
    for (let page = 1; next && page < CONVERSATION_PAGES_MAX; page++) {
      try {
        const more = await this.api.conversations(this.me.userId, { next });
        if (run !== this.listRun) return;
        this.store.set((s) => ({
          ...s,
          conversations: conv.sortByActivity(conv.appendPage(s.conversations, more.conversations)),
        }));
        next = more.next;
      } catch (e) {
        if (run === this.listRun) this.notify(e);
        return;
      }
    }
    if (next && run === this.listRun) this.store.set({ conversationsCapped: true });
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

  /**
   * The user opened a conversation: its messages, where "New messages" goes (from the
   * list's read state at this moment), the members' markers for "seen by", and a read.
   */
  async open(id: string) {
    this.active = id;
    const c = this.store.get().conversations.find((x) => x.id === id);
    const opened = { lastReadMessageId: c?.lastReadMessageId ?? null, unreadCount: c?.unreadCount ?? 0 };
    this.opened = opened;
    this.store.set((s) => ({ ...s, dividers: { ...s.dividers, [id]: undefined } }));
    if (c && c.members.length <= rd.SEEN_BY_MAX_MEMBERS) void this.loadReads(id);
    await this.openThread(id);
    if (this.active !== id || this.opened !== opened) return;
    const divider = rd.firstUnread(this.confirmed(id), opened, this.me.userId);
    this.store.set((s) => ({ ...s, dividers: { ...s.dividers, [id]: divider } }));
    void this.markRead(id);
  }

  /** The conversation left the screen. */
  close(id: string) {
    if (this.active === id) this.active = null;
  }

  private confirmed(id: string): Message[] {
    return this.thread(id).messages.filter((m) => m.delivery === "sent");
  }

  private reading(id: string): boolean {
    return this.active === id && this.visible && this.thread(id).loaded;
  }

  private onVisibility = () => {
    this.visible = document.visibilityState !== "hidden";
    if (this.visible && this.active) void this.markRead(this.active);
  };

  /** Marks the newest message of the open conversation read, when the user can see it. */
  async markRead(id: string) {
    if (!this.reading(id) || this.noReadState) return;
    const confirmed = this.confirmed(id);
    const newest = confirmed[confirmed.length - 1];
    const c = this.store.get().conversations.find((x) => x.id === id);
    if (!newest || !c || this.readPosting[id] === newest.id) return;
    if (c.lastReadMessageId === newest.id && !c.unreadCount) return;
    this.readPosting[id] = newest.id;
    try {
      const r = await this.api.markRead(id, newest.id);
      this.store.set((s) => ({ ...s, conversations: conv.update(s.conversations, id, (c) => rd.applyReadResult(c, r)) }));
    } catch (e) {
      // Not worth an alert: the message may be gone, or the user no longer a member; the
      // next message or opening tries again.
      if (e instanceof ApiError && e.isMissingRoute) this.noReadState = true;
    } finally {
      if (this.readPosting[id] === newest.id) delete this.readPosting[id];
    }
  }

  private async loadReads(id: string) {
    if (this.noReadState) return;
    try {
      const list = await this.api.reads(id);
      if (this.store.get().removed[id]) return;
      this.store.set((s) => ({ ...s, reads: { ...s.reads, [id]: rd.markersFrom(list) } }));
    } catch (e) {
      // "Seen by" is a nicety: without the markers it is not shown.
      if (e instanceof ApiError && e.isMissingRoute) this.noReadState = true;
    }
  }

  /** Renames a group (null or empty clears the name). Errors are thrown for the form. */
  async rename(id: string, name: string | null) {
    const c = await this.api.rename(id, name && name.trim() ? name.trim() : null);
    this.store.set((s) => ({ ...s, conversations: conv.upsert(s.conversations, c) }));
  }

  async addMembers(id: string, members: User[]) {
    const c = await this.api.addMembers(id, members);
    this.store.set((s) => ({ ...s, conversations: conv.upsert(s.conversations, c) }));
  }

  async setRole(id: string, userId: string, role: Exclude<Role, "owner">) {
    const c = await this.api.setRole(id, userId, role);
    this.store.set((s) => ({ ...s, conversations: conv.upsert(s.conversations, c) }));
  }

  /** Removes someone else; the `conversation:updated` that follows brings the truth. */
  async removeMember(id: string, userId: string) {
    await this.api.removeMember(id, userId);
    this.store.set((s) => ({
      ...s,
      conversations: conv.update(s.conversations, id, (c) => ({ ...c, members: c.members.filter((m) => m.userId !== userId) })),
    }));
  }

  async leave(id: string) {
    this.leaving.add(id);
    try {
      await this.api.removeMember(id, this.me.userId);
      this.onConversationRemoved(id);
    } finally {
      this.leaving.delete(id);
    }
  }

  /** The newest page of a conversation (on opening it, and when catching up). */
  openThread(id: string): Promise<void> {
    if (this.thread(id).loaded) return Promise.resolve();
    // One request for concurrent callers: a second `loadLatest` landing after older pages
    // were prepended would drop them.
    this.opening[id] ??= (async () => {
      try {
        const page = await this.api.messages(id, { limit: PAGE_SIZE });
        this.setThread(id, (t) => th.loadLatest(t, page.messages, page.hasOlder));
      } catch (e) {
        this.setThread(id, (t) => ({ ...t, error: describeError(e) }));
      } finally {
        delete this.opening[id];
      }
    })();
    return this.opening[id];
  }

  loadOlder(id: string) {
    return this.fetchOlder(id, PAGE_SIZE);
  }

  /** The page before the oldest shown; false when there was nothing to read or it failed. */
  private async fetchOlder(id: string, limit: number): Promise<boolean> {
    const t = this.thread(id);
    const oldest = th.oldestConfirmed(t);
    if (!t.hasOlder || t.loadingOlder || !oldest) return false;
    this.setThread(id, (t) => ({ ...t, loadingOlder: true }));
    try {
      const page = await this.api.messages(id, { limit, before: oldest.id });
      this.setThread(id, (t) => th.prependOlder(t, page.messages, page.hasOlder));
      return true;
    } catch (e) {
      this.setThread(id, (t) => ({ ...t, loadingOlder: false }));
      this.notify(e);
      return false;
    }
  }

  /**
   * Shows a message of a conversation (a quote's original, a search result): older pages
   * are read until it is loaded (the thread stays one unbroken run up to the newest
   * message), then it is scrolled to and highlighted. A newer jump supersedes this one.
   */
  async jumpTo(conversationId: string, messageId: string): Promise<boolean> {
    const jump = ++this.jumps;
    await this.openThread(conversationId);
    for (let i = 0; i < JUMP_PAGES_MAX && jump === this.jumps; i++) {
      const t = this.thread(conversationId);
      if (th.has(t, messageId) || !t.loaded || !t.hasOlder) break;
      if (t.loadingOlder) {
        // A page the reader asked for is on its way; it counts towards the bound too.
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (!(await this.fetchOlder(conversationId, JUMP_PAGE))) break;
    }
    if (jump !== this.jumps) return false;
    if (!th.has(this.thread(conversationId), messageId)) {
      const t = this.thread(conversationId);
      // The whole conversation is loaded and it is not there: deleted, its event missed;
      // quotes of it say so from now on.
      if (t.loaded && !t.hasOlder) this.setThread(conversationId, (t) => th.applyDeleted(t, messageId));
      if (t.loaded) {
        this.store.set({
          notice: t.hasOlder
            ? "That message is too far back to open here; scroll up to read older messages."
            : "That message is no longer available.",
        });
      }
      return false;
    }
    this.store.set({ highlight: { conversationId, messageId, seq: jump } });
    return true;
  }

  /** The list scrolled to the jump's message: forget it (a reopened list must not jump). */
  highlightShown(seq: number) {
    if (this.store.get().highlight?.seq === seq) this.store.set({ highlight: undefined });
  }

  startReply(conversationId: string, m: Message) {
    this.store.set((s) => ({ ...s, replying: { ...s.replying, [conversationId]: m } }));
  }

  cancelReply(conversationId: string) {
    this.store.set((s) => ({ ...s, replying: { ...s.replying, [conversationId]: undefined } }));
  }

  /**
   * Adds the user's `emoji` to a message or takes it back: shown at once, then the server's
   * copy (the committed reactions) replaces it; on failure the toggle is undone.
   */
  async toggleReaction(conversationId: string, messageId: string, emoji: string) {
    const m = this.thread(conversationId).messages.find((x) => x.id === messageId);
    if (!m) return;
    const on = !hasReacted(m, emoji, this.me.userId);
    this.setThread(conversationId, (t) => th.applyReaction(t, messageId, emoji, this.me.userId, on));
    // Quick clicks on one chip go to the server in click order (not racing on two
    // connections), so the last click is the state that stays.
    const key = `${messageId} ${emoji}`;
    const previous = this.reacting.get(key) ?? Promise.resolve();
    const request = previous.then(() => this.api.react(conversationId, messageId, emoji, on));
    const done = request.then(
      () => undefined,
      () => undefined,
    );
    this.reacting.set(key, done);
    try {
      const saved = await request;
      // A later click of the same chip is still on its way: its answer will be the truth.
      if (this.reacting.get(key) === done) this.onUpdated(saved);
    } catch (e) {
      // Undo only this toggle: events that arrived meanwhile stay.
      this.setThread(conversationId, (t) => th.applyReaction(t, messageId, emoji, this.me.userId, !on));
      if (e instanceof ApiError && e.status === 404) {
        this.setThread(conversationId, (t) => th.applyDeleted(t, messageId));
      }
      this.notify(e);
    } finally {
      if (this.reacting.get(key) === done) this.reacting.delete(key);
    }
  }

  /** Sends `text` with the uploaded `files` (their ids in `attachmentIds`, in this order). */
  async send(conversationId: string, text: string, files: Upload[] = []) {
    const body = text.trim();
    if (!body) return;
    const clientMessageId = newClientMessageId();
    const original = this.store.get().replying[conversationId];
    const pending: Message = {
      id: `local:${clientMessageId}`,
      conversationId,
      senderId: this.me.userId,
      body,
      sentAt: new Date().toISOString(),
      editedAt: null,
      clientMessageId,
      replyTo: original ? previewOf(original) : null,
      reactions: [],
      // Shown while sending (no URL yet: the server signs them once the message exists).
      attachments: files.map((f) => ({ ...f, url: "" })),
    };
    if (original) this.cancelReply(conversationId);
    this.setThread(conversationId, (t) => th.addPending(t, pending));
    this.stopTyping(conversationId);
    await this.deliver(pending);
  }

  /** Sends (or re-sends: the same `clientMessageId` never makes a second copy). */
  private async deliver(m: Message) {
    const cmid = m.clientMessageId as string;
    try {
      const ids = m.attachments?.map((a) => a.id);
      const saved = await this.api.sendMessage(m.conversationId, m.senderId, m.body, cmid, m.replyTo?.id, ids);
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

  /**
   * An attachment of a message did not load: its URL expired, or a member's removal revoked
   * every URL handed out before it. The message is read again (the page around it) for
   * fresh URLs, at most once per ATTACHMENT_REFRESH_MS. False when it was not read again.
   */
  async refreshAttachments(conversationId: string, messageId: string): Promise<boolean> {
    const now = Date.now();
    const last = this.refreshedAt.get(messageId);
    if (last !== undefined && now - last < ATTACHMENT_REFRESH_MS) return false;
    this.refreshedAt.set(messageId, now);
    const confirmed = this.confirmed(conversationId);
    const i = confirmed.findIndex((m) => m.id === messageId);
    if (i < 0) return false;
    // There is no route for one message: the page just after the one before it starts with it.
    const prev = confirmed[i - 1];
    const next = confirmed[i + 1];
    try {
      const page = prev
        ? await this.api.messages(conversationId, { after: prev.id, limit: 1 })
        : next
          ? await this.api.messages(conversationId, { before: next.id, limit: 1 })
          : await this.api.messages(conversationId, { limit: 1 });
      const fresh = page.messages.find((m) => m.id === messageId);
      if (!fresh) return false;
      const current = this.thread(conversationId).messages.find((m) => m.id === messageId);
      // Only the URLs are taken: an edit or reaction that the events bring stays theirs.
      if (current) this.setThread(conversationId, (t) => th.applyUpdated(t, { ...current, attachments: fresh.attachments }));
      return true;
    } catch {
      // The image stays broken; the next failure after ATTACHMENT_REFRESH_MS tries again.
      return false;
    }
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

  /** After a reconnect: the list, what each open conversation missed, and failed sends.
   * A `recovered` session already got every missed event replayed over the socket
   * (connection state recovery): then nothing is re-read over HTTP, and only failed sends
   * are retried and the open conversation marked read. */
  async catchUp({ recovered = false }: { recovered?: boolean } = {}) {
    if (!recovered) {
      await this.loadConversations();
      const threads = this.store.get().threads;
      await Promise.all(
        Object.entries(threads)
          .filter(([, t]) => t.loaded)
          .map(([id]) => this.catchUpThread(id)),
      );
    }
    for (const [id, t] of Object.entries(this.store.get().threads)) {
      for (const m of t.messages) {
        if (m.delivery === "failed" && m.clientMessageId) void this.retry(id, m.clientMessageId);
      }
    }
    // Read markers moved while away (a recovered session got their events); what arrived in
    // the open conversation is now read.
    if (!recovered) for (const id of Object.keys(this.store.get().reads)) void this.loadReads(id);
    if (this.active) void this.markRead(this.active);
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
    const id = m.conversationId;
    if (this.store.get().removed[id]) return;
    this.setThread(id, (t) => (t.loaded || t.messages.length ? th.appendNewer(t, [m]) : t));
    const reading = this.reading(id);
    const counted = (list: Conversation[]) =>
      conv.withMessage(conv.update(list, id, (c) => rd.countMessage(c, m, this.me.userId, reading)), m);
    const s = this.store.get();
    if (!s.conversations.some((c) => c.id === id)) {
      // A conversation whose `conversation:created` was missed: fetch it for the list.
      void this.ensureConversation(id).then(() => this.store.set((s) => ({ ...s, conversations: counted(s.conversations) })));
    } else {
      this.store.set((s) => ({ ...s, conversations: counted(s.conversations) }));
    }
    this.clearTyping(id, m.senderId);
    if (reading && m.senderId !== this.me.userId) void this.markRead(id);
  }

  private onConversationCreated(c: Conversation) {
    this.store.set((s) => {
      const { [c.id]: _, ...removed } = s.removed;
      return { ...s, removed, conversations: conv.upsert(s.conversations, c) };
    });
  }

  private onConversationUpdated(c: Conversation) {
    if (this.store.get().removed[c.id]) return;
    if (!c.members.some((m) => m.userId === this.me.userId)) return this.onConversationRemoved(c.id);
    this.store.set((s) => ({ ...s, conversations: conv.upsert(s.conversations, c) }));
  }

  /** The user left or was removed: the conversation goes, and closes with a notice if open. */
  private onConversationRemoved(id: string) {
    const s0 = this.store.get();
    const c = s0.conversations.find((x) => x.id === id);
    if (s0.removed[id] && !c) return;
    const wasOpen = this.active === id;
    if (wasOpen) this.active = null;
    const name = c ? conv.title(c, this.me.userId) : "the conversation";
    const notice = this.leaving.has(id)
      ? `You left “${name}”.`
      : wasOpen
        ? `You were removed from “${name}”.`
        : s0.notice;
    delete this.readPosting[id];
    this.store.set((s) => {
      const { [id]: _t, ...threads } = s.threads;
      const { [id]: _r, ...reads } = s.reads;
      const { [id]: _y, ...typing } = s.typing;
      return {
        ...s,
        conversations: conv.without(s.conversations, id),
        threads,
        reads,
        typing,
        removed: { ...s.removed, [id]: true },
        notice,
      };
    });
  }

  private onRead(ev: ReadEvent) {
    const id = ev.conversationId;
    if (this.store.get().removed[id]) return;
    const t = this.thread(id);
    const loaded = t.loaded ? this.confirmed(id) : undefined;
    this.store.set((s) => ({
      ...s,
      conversations:
        ev.userId === this.me.userId
          ? conv.update(s.conversations, id, (c) => rd.applyOwnRead(c, ev, this.me.userId, loaded))
          : s.conversations,
      reads: s.reads[id] ? { ...s.reads, [id]: rd.withMarker(s.reads[id], ev, loaded) } : s.reads,
    }));
  }

  private onUpdated(m: Message) {
    this.setThread(m.conversationId, (t) => th.applyUpdated(t, m));
    this.store.set((s) => {
      const r = s.replying[m.conversationId];
      return {
        ...s,
        conversations: conv.withUpdated(s.conversations, m),
        replying: r?.id === m.id ? { ...s.replying, [m.conversationId]: m } : s.replying,
      };
    });
    this.onMessageChanged?.(m, false);
  }

  private onDeleted(m: Message) {
    const wasLast = conv.lastWasDeleted(this.store.get().conversations, m);
    this.setThread(m.conversationId, (t) => th.applyDeleted(t, m.id));
    // A reply to a message that is gone would be refused: the composer drops the quote.
    if (this.store.get().replying[m.conversationId]?.id === m.id) this.cancelReply(m.conversationId);
    this.onMessageChanged?.(m, true);
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
