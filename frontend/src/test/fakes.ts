// In-memory stand-ins for component tests only: the gateway's HTTP routes (enough of the
// contract for the UI) and a Socket.IO client socket the test drives, its events typed by the
// contract so that what a test delivers is what the server may send.
import type { ClientEventPayload, ServerEventPayload, ServerToClientEvents, ClientToServerEvents } from "@chat-platform/client";
import type { Attachment, Call, Conversation, Member, Message, ReadMarker, Upload, User } from "../types";

type Handler = (...args: any[]) => void;

export class FakeSocket {
  handlers = new Map<string, Handler[]>();
  sent: { event: keyof ClientToServerEvents; data: unknown }[] = [];
  active = true;
  on(event: string, fn: Handler) {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), fn]);
    return this;
  }
  emit<E extends keyof ClientToServerEvents>(event: E, data: ClientEventPayload<E>) {
    this.sent.push({ event, data });
    return this;
  }
  /** The server sends an event to this client. */
  deliver<E extends keyof ServerToClientEvents>(event: E, data: ServerEventPayload<E>) {
    for (const h of this.handlers.get(event) ?? []) h(data);
  }
  disconnect() {
    this.active = false;
    return this;
  }
  connect() {
    return this;
  }
}

/** What a FakeXhr's request was; `respond` answers it (after any progress the test reports). */
export interface XhrRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
  progress(loaded: number, total: number): void;
  respond(status: number, body: unknown, headers?: Record<string, string>): void;
  fail(): void;
  aborted: boolean;
}

/** An XMLHttpRequest stand-in: `onSend` gets each request and answers it when it likes. */
export class FakeXhr {
  status = 0;
  statusText = "";
  responseText = "";
  private method = "";
  private url = "";
  private headers: Record<string, string> = {};
  private responseHeaders: Record<string, string> = {};
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  private req?: XhrRequest;

  constructor(private readonly onSend: (req: XhrRequest) => void) {}

  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  getResponseHeader(name: string) {
    const k = Object.keys(this.responseHeaders).find((h) => h.toLowerCase() === name.toLowerCase());
    return k ? this.responseHeaders[k] : null;
  }
  abort() {
    if (this.req) this.req.aborted = true;
  }
  send(body: unknown) {
    const req: XhrRequest = {
      method: this.method,
      url: this.url,
      headers: this.headers,
      body,
      aborted: false,
      progress: (loaded, total) => {
        if (!req.aborted) this.upload.onprogress?.({ loaded, total, lengthComputable: true });
      },
      respond: (status, data, headers = {}) => {
        if (req.aborted) return;
        this.status = status;
        this.responseText = typeof data === "string" ? data : JSON.stringify(data);
        this.responseHeaders = headers;
        this.onload?.();
      },
      fail: () => {
        if (!req.aborted) this.onerror?.();
      },
    };
    this.req = req;
    this.onSend(req);
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

const error = (status: number, message: string) =>
  json(status, { statusCode: status, error: status === 404 ? "Not Found" : "Error", message });

let clock = Date.UTC(2026, 0, 1);
const now = () => new Date((clock += 1000)).toISOString();

export class FakeGateway {
  conversations: Conversation[] = [];
  messages: Message[] = [];
  calls: Call[] = [];
  requests: { method: string; path: string; body?: any }[] = [];
  /** Identity routes answer 404 (a server before identity) when false. */
  identity = true;
  /** The next N requests fail as if the network were down. */
  failNext = 0;
  /** Read markers by conversation and user. */
  reads: Record<string, Record<string, ReadMarker>> = {};
  /** The listing's page size when set (pages follow with `Link: rel="next"`). */
  listPage = 0;
  /** Read routes answer 404 "no such route" (a server before read state) when false. */
  hasReadRoutes = true;
  /** Who the bearer token stands for. */
  caller = "alice";
  /** Requests to hold until released (to see optimistic states). */
  hold: ((path: string, method: string) => boolean) | null = null;
  private held: (() => void)[] = [];
  private seq = 0;

  release() {
    const h = this.held.splice(0);
    for (const r of h) r();
  }

  /** Uploads by id, with the message that claimed them. */
  uploads = new Map<string, Upload & { messageId?: string }>();
  /** Every upload request, and whether uploads wait for `releaseUploads` (to see progress). */
  uploadRequests: XhrRequest[] = [];
  holdUploads = false;
  /** Answer the next uploads with this status (and message) instead of storing them. */
  uploadFailures: { status: number; message: string }[] = [];
  /** Bumped by every read, so each hands out new URLs (as signing does). */
  private signed = 0;

  /** The XMLHttpRequest factory for the Api: uploads land here. */
  xhr = () =>
    new FakeXhr((req) => {
      this.uploadRequests.push(req);
      if (!this.holdUploads) queueMicrotask(() => this.finishUpload(req));
    }) as unknown as XMLHttpRequest;

  /** Answers every upload held so far, after reporting half of it sent. */
  releaseUploads() {
    for (const req of this.uploadRequests) if (!req.aborted) this.finishUpload(req);
  }

  private finishUpload(req: XhrRequest) {
    const file = req.body as File;
    const fail = this.uploadFailures.shift();
    if (fail) return req.respond(fail.status, { statusCode: fail.status, error: "Error", message: fail.message });
    req.progress(Math.floor(file.size / 2), file.size);
    req.progress(file.size, file.size);
    const up: Upload = {
      id: `a${++this.seq}`,
      name: decodeURIComponent(req.headers["x-filename"]),
      contentType: req.headers["Content-Type"],
      size: file.size,
      ...(req.headers["Content-Type"].startsWith("image/") ? { width: 640, height: 480 } : {}),
    };
    this.uploads.set(up.id, up);
    req.respond(201, up);
  }

  /** The message's attachments as a read hands them out: freshly signed URLs. */
  private attachmentsOf(m: Message): Attachment[] {
    const n = ++this.signed;
    return (m.attachments ?? []).map((a) => ({ ...a, url: `/attachments/${a.id}?i=${n}&e=${n}&s=sig${n}` }));
  }

  /** Deleted messages, for the deleted form of a reply's quote. */
  deletedIds = new Set<string>();

  addMessage(conversationId: string, senderId: string, body: string, clientMessageId?: string, replyToId?: string): Message {
    const m: Message = {
      id: `m${++this.seq}`,
      conversationId,
      senderId,
      body,
      sentAt: now(),
      editedAt: null,
      clientMessageId,
      replyTo: replyToId ? { id: replyToId, senderId: "", body: "" } : null,
      reactions: [],
      attachments: [],
    };
    this.messages.push(m);
    return this.hydrate(m);
  }

  /** A message as the server answers it: the reply preview read now (as hydrate does). */
  hydrate(m: Message): Message {
    if (m.attachments?.length) m = { ...m, attachments: this.attachmentsOf(m) };
    if (!m.replyTo) return { ...m };
    const o = this.messages.find((x) => x.id === m.replyTo!.id);
    const replyTo =
      !o || this.deletedIds.has(o.id)
        ? { id: m.replyTo.id, deleted: true as const }
        : { id: o.id, senderId: o.senderId, body: Array.from(o.body).slice(0, 200).join("") };
    return { ...m, replyTo };
  }

  /** A conversation; members given without a role are plain members, as the server makes them. */
  addConversation(members: (User & Partial<Member>)[], extra: Partial<Conversation> = {}): Conversation {
    const c: Conversation = {
      id: `c${++this.seq}`,
      type: "one_to_one",
      members: members.map((m) => ({ ...m, role: m.role ?? "member" })),
      createdAt: now(),
      ...extra,
    };
    this.conversations.push(c);
    return c;
  }

  setRead(conversationId: string, userId: string, messageId: string) {
    (this.reads[conversationId] ??= {})[userId] = { userId, lastReadMessageId: messageId, readAt: now() };
  }

  /** The listing's read state for one user, as the server computes it. */
  readState(c: Conversation, userId: string) {
    const all = this.messages.filter((m) => m.conversationId === c.id);
    const marker = this.reads[c.id]?.[userId]?.lastReadMessageId ?? null;
    const from = marker ? all.findIndex((m) => m.id === marker) + 1 : 0;
    return { unreadCount: all.slice(from).filter((m) => m.senderId !== userId).length, lastReadMessageId: marker };
  }

  fetch = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(String(input), "http://gw");
    const method = init.method ?? "GET";
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    this.requests.push({ method, path: url.pathname + url.search, body });
    if (this.failNext > 0) {
      this.failNext--;
      throw new TypeError("Failed to fetch");
    }
    if (this.hold?.(url.pathname, method)) await new Promise<void>((r) => this.held.push(r));
    return this.route(method, url, body, init);
  };

  private route(method: string, url: URL, body: any, init: RequestInit): Response {
    const p = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const auth = (init.headers as Record<string, string> | undefined)?.Authorization;
    if (p[0] === "auth" || p[0] === "me") {
      if (!this.identity) return error(404, `cannot ${url.pathname}: no such route`);
      if (p[0] === "me") return auth ? json(200, { userId: "alice", displayName: "Alice" }) : error(401, "missing token");
      if (p[1] === "register") {
        if (body.userId === "taken") return error(409, "user id taken");
        return json(201, { token: "tok", expiresAt: "2999-01-01T00:00:00.000Z", user: { userId: body.userId, displayName: body.displayName } });
      }
      if (p[1] === "login") {
        if (body.password !== "correct horse") return error(401, "wrong user id or password");
        return json(200, { token: "tok", expiresAt: "2999-01-01T00:00:00.000Z", user: { userId: body.userId, displayName: body.userId } });
      }
      if (p[1] === "logout") return new Response(null, { status: 204 });
    }
    if (p[0] === "conversations") {
      if (method === "POST" && p.length === 1) {
        const c = this.addConversation(body.members, { type: body.type, ...(body.name ? { name: body.name } : {}) });
        return json(201, c);
      }
      if (p[1] === "user") {
        const list = this.conversations
          .filter((c) => c.members.some((m) => m.userId === p[2]))
          .map((c) => ({
            ...c,
            lastMessage: this.messages.filter((m) => m.conversationId === c.id).at(-1) ?? null,
            ...this.readState(c, p[2]),
          }));
        if (!this.listPage) return json(200, list);
        const from = Number(url.searchParams.get("cursor") ?? 0);
        const page = list.slice(from, from + this.listPage);
        const more = from + this.listPage < list.length;
        const next = `<${url.pathname}?limit=${this.listPage}&cursor=${from + this.listPage}>; rel="next"`;
        return json(200, page, more ? { Link: next } : {});
      }
      const c = this.conversations.find((x) => x.id === p[1]);
      if (!c) return error(404, `conversation ${p[1]} not found`);
      if (p.length === 2 && method === "PATCH") {
        if (!this.manages(c)) return error(403, "only an owner or admin may rename");
        if (body.name) c.name = body.name;
        else delete c.name;
        return json(200, c);
      }
      if (p.length === 2) return json(200, c);
      if (p[2] === "members") return this.members(c, method, p[3], body);
      if ((p[2] === "read" || p[2] === "reads") && !this.hasReadRoutes) return error(404, `cannot ${url.pathname}: no such route`);
      if (p[2] === "read") {
        if (!this.messages.some((m) => m.id === body.messageId && m.conversationId === c.id)) return error(404, "message not found");
        this.setRead(c.id, this.caller, body.messageId);
        return json(200, { conversationId: c.id, userId: this.caller, ...this.readState(c, this.caller) });
      }
      if (p[2] === "reads") return json(200, Object.values(this.reads[c.id] ?? {}));
      const all = this.messages.filter((m) => m.conversationId === c.id);
      if (p.length === 3 && method === "GET") {
        const limit = Number(url.searchParams.get("limit") ?? 100);
        const before = url.searchParams.get("before");
        const after = url.searchParams.get("after");
        let list = all;
        if (before) list = all.slice(0, all.findIndex((m) => m.id === before));
        if (after) list = all.slice(all.findIndex((m) => m.id === after) + 1);
        const page = after ? list.slice(0, limit) : list.slice(-limit);
        const older = !after && list.length > limit;
        return json(200, page.map((m) => this.hydrate(m)), older ? { Link: `<${url.pathname}?before=${page[0].id}>; rel="prev"` } : {});
      }
      if (p.length === 3 && method === "POST") {
        const dup = all.find((m) => m.clientMessageId && m.clientMessageId === body.clientMessageId);
        if (dup) return json(201, this.hydrate(dup));
        if (body.replyToId && !all.some((m) => m.id === body.replyToId)) return error(400, "replyToId is not a message of this conversation");
        const ids: string[] = body.attachmentIds ?? [];
        const ups = ids.map((id) => this.uploads.get(id));
        if (ids.length > 10 || ups.some((u) => !u || u.messageId)) return error(400, "attachmentIds: not uploads of the sender");
        const added = this.addMessage(c.id, body.senderId, body.body, body.clientMessageId, body.replyToId);
        if (!ids.length) return json(201, added);
        const stored = this.messages.find((x) => x.id === added.id) as Message;
        for (const u of ups) u!.messageId = stored.id;
        stored.attachments = ups.map((u) => {
          const { messageId: _, ...a } = u!;
          return { ...a, url: "" };
        });
        return json(201, this.hydrate(stored));
      }
      const m = all.find((x) => x.id === p[3]);
      if (!m) return error(404, `message ${p[3]} not found`);
      if (p[4] === "reactions" && p[5]) return this.react(m, p[5], method === "PUT");
      if (method === "PATCH") {
        m.body = body.body;
        m.editedAt = now();
        return json(200, this.hydrate(m));
      }
      if (method === "DELETE") {
        this.messages = this.messages.filter((x) => x !== m);
        this.deletedIds.add(m.id);
        return json(200, this.hydrate(m));
      }
    }
    if (p[0] === "search" && p[1] === "messages") return this.search(url);
    if (p[0] === "calls") {
      if (method === "POST" && p.length === 1) {
        const call: Call = { id: `call${++this.seq}`, conversationId: body.conversationId, type: body.type, status: "ringing", startedAt: now(), participants: body.participants };
        this.calls.push(call);
        return json(201, call);
      }
      if (p[1] === "conversation") return json(200, this.calls.filter((c) => c.conversationId === p[2]));
      const call = this.calls.find((c) => c.id === p[1]);
      if (!call) return error(404, "call not found");
      if (p[2] === "status") {
        call.status = body.status === "active" ? "in_progress" : body.status;
        return json(200, call);
      }
      if (p[2] === "signals") return method === "POST" ? json(201, { status: "ok" }) : json(200, []);
    }
    return error(404, `cannot ${url.pathname}: no such route`);
  }

  private react(m: Message, emoji: string, on: boolean): Response {
    const list = m.reactions ?? [];
    const r = list.find((x) => x.emoji === emoji);
    if (on && !r) m.reactions = [...list, { emoji, count: 1, userIds: [this.caller] }];
    else if (on && r && !r.userIds.includes(this.caller)) Object.assign(r, { count: r.count + 1, userIds: [...r.userIds, this.caller] });
    else if (!on && r?.userIds.includes(this.caller)) {
      r.userIds = r.userIds.filter((u) => u !== this.caller);
      r.count--;
      if (!r.count) m.reactions = list.filter((x) => x !== r);
    }
    return json(200, this.hydrate(m));
  }

  /** Word match ignoring case and accents, newest first, in the caller's conversations. */
  private search(url: URL): Response {
    const fold = (s: string) => s.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
    const q = url.searchParams.get("q") ?? "";
    const words = (fold(q).match(/[\p{L}\p{N}]+/gu) ?? []);
    if (!words.length) return error(400, "the query has no word to look for");
    const limit = Number(url.searchParams.get("limit") ?? 20);
    const mine = new Set(this.conversations.filter((c) => c.members.some((m) => m.userId === this.caller)).map((c) => c.id));
    let list = this.messages
      .filter((m) => mine.has(m.conversationId))
      .filter((m) => {
        const have = new Set(fold(m.body).match(/[\p{L}\p{N}]+/gu) ?? []);
        return words.every((w) => have.has(w));
      })
      .reverse();
    const before = url.searchParams.get("before");
    if (before) {
      const i = this.messages.findIndex((m) => m.id === before);
      if (i < 0) return error(400, "before is not a message");
      list = list.filter((m) => this.messages.indexOf(m) < i);
    }
    return json(200, list.slice(0, limit).map((m) => this.hydrate(m)));
  }

  private role(c: Conversation, userId: string) {
    return c.members.find((m) => m.userId === userId)?.role;
  }

  private manages(c: Conversation) {
    const r = this.role(c, this.caller);
    return r === "owner" || r === "admin";
  }

  private members(c: Conversation, method: string, target: string | undefined, body: any): Response {
    if (method === "POST") {
      if (!this.manages(c)) return error(403, "only an owner or admin may add members");
      for (const m of body.members as User[]) {
        if (!c.members.some((x) => x.userId === m.userId)) c.members.push({ ...m, role: "member" });
      }
      return json(200, c);
    }
    const m = c.members.find((x) => x.userId === target);
    if (!m) return error(404, `${target} is not a member`);
    if (method === "PATCH") {
      if (this.role(c, this.caller) !== "owner") return error(403, "only the owner may change roles");
      (m as Member).role = body.role;
      return json(200, c);
    }
    if (target !== this.caller && (!this.manages(c) || (m.role === "owner" && this.role(c, this.caller) !== "owner"))) {
      return error(403, "an admin cannot remove the owner");
    }
    c.members = c.members.filter((x) => x !== m);
    return new Response(null, { status: 204 });
  }
}
