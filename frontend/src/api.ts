// The HTTP client for the gateway: one place that adds the bearer token, turns the
// contract's error body into an ApiError, and bounds every request in time. Each route's
// path, body and answer are typed by the OpenAPI document (through @chat-platform/client),
// so a route or shape the contract changes fails the type check here.
import type { PathMethod, PathParams, RequestBody, ResponseBody, paths } from "@chat-platform/client";
import type { CallStatus, CallType, Conversation, Message, Role, SignalKind, Upload, User } from "./types";

/** A route's path parameters: required when its path has any, absent when it has none. */
type ParamsOption<P extends keyof paths, M extends PathMethod<P>> =
  PathParams<P, M> extends Record<string, never> ? { params?: undefined } : { params: PathParams<P, M> };

/** How a route is called: its path parameters, JSON body, query string and expected status. */
type RouteOptions<P extends keyof paths, M extends PathMethod<P>, S extends number> = ParamsOption<P, M> & {
  body?: RequestBody<P, M>;
  /** Appended as is (`?limit=50`). */
  query?: string;
  /** Without the bearer token. */
  anonymous?: boolean;
  /** The success status whose answer is read (200 unless given). */
  status?: S;
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The server has no such route (identity not deployed, for /auth/*). */
  get isMissingRoute(): boolean {
    return this.status === 404 && /no such route/.test(this.message);
  }
}

/** The request never got an answer (network down, server gone, timed out). */
export class NetworkError extends Error {
  constructor(message = "The server could not be reached.") {
    super(message);
    this.name = "NetworkError";
  }
}

const TIMEOUT_MS = 20_000;
/** An upload that has sent nothing (and heard nothing) for this long is given up on. */
export const UPLOAD_STALL_MS = 60_000;
/** The server's default upload limit (ATTACHMENT_MAX_BYTES), named in a 413 that gives none. */
export const DEFAULT_UPLOAD_MAX_BYTES = 25 * 1024 * 1024;

export interface UploadOptions {
  /** Bytes of the body sent so far, and the total. */
  onProgress?(loaded: number, total: number): void;
  signal?: AbortSignal;
}

export interface Page {
  messages: Message[];
  /** A `Link: rel="prev"` header was present: older messages exist. */
  hasOlder: boolean;
}

/** One page of the conversation listing and, when there is one, the path of the next. */
export interface ConversationPage {
  conversations: Conversation[];
  next?: string;
}

/** The target of a `Link` header's `rel="next"`, as a path (and query) on the gateway. */
export function nextLink(link: string | null): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(",")) {
    const m = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (!m || !/rel="?([^"]*\s)?next(\s[^"]*)?"?(;|$)/.test(m[2].trim())) continue;
    // Absolute or relative, only the path and query are kept: the gateway's address is ours.
    const u = new URL(m[1], "http://gateway.invalid");
    return u.pathname + u.search;
  }
  return undefined;
}

export class Api {
  token: string | null = null;
  /** Called when a token is refused, so the app can return to sign-in. */
  onUnauthorized: (() => void) | null = null;

  constructor(
    readonly baseUrl: string,
    private readonly fetchImpl: typeof fetch = (...a) => fetch(...a),
    // fetch reports no upload progress: uploads go through XMLHttpRequest.
    private readonly xhrImpl: () => XMLHttpRequest = () => new XMLHttpRequest(),
  ) {}

  /**
   * An attachment's URL as the server hands it out (a path relative to the API's base, or
   * absolute when the server is configured with ATTACHMENT_URL_BASE) made usable by the page.
   */
  resolveUrl(url: string): string {
    if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith("//")) return url;
    return this.baseUrl + (url.startsWith("/") ? url : `/${url}`);
  }

  /**
   * `POST /attachments` with the file as the raw body, its type, and its name
   * percent-encoded in `x-filename`. Rejects with an ApiError (413: "too large (max N MB)"),
   * a NetworkError (also when nothing moved for UPLOAD_STALL_MS), or an AbortError.
   */
  uploadAttachment(file: File, opts: UploadOptions = {}): Promise<Upload> {
    return new Promise<Upload>((resolve, reject) => {
      const xhr = this.xhrImpl();
      let stall: ReturnType<typeof setTimeout> | undefined;
      let settled = false;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(stall);
        opts.signal?.removeEventListener("abort", onAbort);
        f();
      };
      const armStall = () => {
        clearTimeout(stall);
        stall = setTimeout(() => {
          xhr.abort();
          finish(() => reject(new NetworkError("The upload stalled. Check your connection and try again.")));
        }, UPLOAD_STALL_MS);
      };
      const onAbort = () => {
        xhr.abort();
        finish(() => reject(new DOMException("The upload was cancelled.", "AbortError")));
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener("abort", onAbort);
      xhr.open("POST", `${this.baseUrl}/attachments`);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
      xhr.setRequestHeader("x-filename", encodeURIComponent(file.name));
      const token = this.token;
      if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.upload.onprogress = (e) => {
        armStall();
        opts.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
      };
      xhr.onerror = () => finish(() => reject(new NetworkError()));
      xhr.onload = () =>
        finish(() => {
          let body: { message?: unknown } | null = null;
          try {
            body = JSON.parse(xhr.responseText);
          } catch {
            // not JSON: the status says enough
          }
          if (xhr.status === 201 || xhr.status === 200) {
            if (body && typeof (body as Upload).id === "string") return resolve(body as Upload);
            return reject(new ApiError(xhr.status, "the server's answer to the upload was not understood"));
          }
          const serverMessage = typeof body?.message === "string" ? body.message : xhr.statusText || `HTTP ${xhr.status}`;
          if (xhr.status === 401 && token) this.onUnauthorized?.();
          const retry = Number(xhr.getResponseHeader("Retry-After"));
          reject(
            new ApiError(
              xhr.status,
              xhr.status === 413 ? tooLarge(serverMessage) : serverMessage,
              Number.isFinite(retry) && retry > 0 ? retry : undefined,
            ),
          );
        });
      armStall();
      xhr.send(file);
    });
  }

  private async raw(method: string, path: string, body?: unknown, anonymous = false): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const token = anonymous ? null : this.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
    let res: Response;
    try {
      res = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctrl.signal,
      });
    } catch {
      throw new NetworkError();
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) {
      let message = res.statusText || `HTTP ${res.status}`;
      try {
        const err = await res.json();
        if (err && typeof err.message === "string") message = err.message;
      } catch {
        // not the contract's error body; keep the status text
      }
      const retry = Number(res.headers.get("Retry-After"));
      // Only a token that was presented can have been refused.
      if (res.status === 401 && token) this.onUnauthorized?.();
      throw new ApiError(res.status, message, Number.isFinite(retry) && retry > 0 ? retry : undefined);
    }
    return res;
  }

  private async json<T>(method: string, path: string, body?: unknown, anonymous = false): Promise<T> {
    const res = await this.raw(method, path, body, anonymous);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  /** A call of the route `method template`, its answer typed as the contract gives it. */
  private route<P extends keyof paths, M extends PathMethod<P>, S extends number = 200>(
    method: M,
    template: P,
    opts: RouteOptions<P, M, S> = {} as RouteOptions<P, M, S>,
  ): Promise<ResponseBody<P, M, S>> {
    const params: Record<string, string> = opts.params ?? {};
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => enc(params[name]));
    return this.json(method.toUpperCase(), path + (opts.query ?? ""), opts.body, opts.anonymous);
  }

  register(userId: string, displayName: string, password: string) {
    return this.route("post", "/auth/register", { body: { userId, displayName, password }, status: 201 });
  }

  login(userId: string, password: string) {
    return this.route("post", "/auth/login", { body: { userId, password } });
  }

  logout() {
    return this.route("post", "/auth/logout", { status: 204 });
  }

  me() {
    return this.route("get", "/me");
  }

  /** GET /me without a token: 401 on a server with accounts, 404 on one without. */
  probeIdentity() {
    return this.route("get", "/me", { anonymous: true });
  }

  /** The first page of the user's conversations, or the page at `next` (from the last one). */
  async conversations(userId: string, opts: { limit?: number; next?: string } = {}): Promise<ConversationPage> {
    const path = opts.next ?? `/conversations/user/${enc(userId)}${opts.limit ? `?limit=${opts.limit}` : ""}`;
    const res = await this.raw("GET", path);
    const listed: ResponseBody<"/conversations/user/{userId}", "get"> = await res.json();
    return { conversations: listed, next: nextLink(res.headers.get("Link")) };
  }

  conversation(conversationId: string) {
    return this.route("get", "/conversations/{conversationId}", { params: { conversationId } });
  }

  createConversation(input: { type: Conversation["type"]; name?: string; members: User[] }) {
    return this.route("post", "/conversations", { body: input, status: 201 });
  }

  rename(conversationId: string, name: string | null) {
    return this.route("patch", "/conversations/{conversationId}", { params: { conversationId }, body: { name } });
  }

  addMembers(conversationId: string, members: User[]) {
    return this.route("post", "/conversations/{conversationId}/members", { params: { conversationId }, body: { members } });
  }

  setRole(conversationId: string, userId: string, role: Exclude<Role, "owner">) {
    return this.route("patch", "/conversations/{conversationId}/members/{userId}", {
      params: { conversationId, userId },
      body: { role },
    });
  }

  /** Removes a member, or with the caller's own id, leaves. */
  removeMember(conversationId: string, userId: string) {
    return this.route("delete", "/conversations/{conversationId}/members/{userId}", {
      params: { conversationId, userId },
      status: 204,
    });
  }

  markRead(conversationId: string, messageId: string) {
    return this.route("post", "/conversations/{conversationId}/read", { params: { conversationId }, body: { messageId } });
  }

  reads(conversationId: string) {
    return this.route("get", "/conversations/{conversationId}/reads", { params: { conversationId } });
  }

  async messages(
    conversationId: string,
    opts: { limit?: number; before?: string; after?: string } = {},
  ): Promise<Page> {
    const q = new URLSearchParams();
    if (opts.limit) q.set("limit", String(opts.limit));
    if (opts.before) q.set("before", opts.before);
    if (opts.after) q.set("after", opts.after);
    const qs = q.toString();
    const res = await this.raw(
      "GET",
      `/conversations/${enc(conversationId)}/messages${qs ? `?${qs}` : ""}`,
    );
    const link = res.headers.get("Link") ?? "";
    const messages: ResponseBody<"/conversations/{conversationId}/messages", "get"> = await res.json();
    return { messages, hasOlder: /rel="?prev"?/.test(link) };
  }

  sendMessage(
    conversationId: string,
    senderId: string,
    body: string,
    clientMessageId: string,
    replyToId?: string,
    attachmentIds?: string[],
  ) {
    return this.route("post", "/conversations/{conversationId}/messages", {
      params: { conversationId },
      body: {
        senderId,
        body,
        clientMessageId,
        ...(replyToId ? { replyToId } : {}),
        ...(attachmentIds && attachmentIds.length ? { attachmentIds } : {}),
      },
      status: 201,
    });
  }

  /** Adds (`on`) or removes the caller's reaction; idempotent. 200 the whole message. */
  react(conversationId: string, messageId: string, emoji: string, on: boolean) {
    return this.route(on ? "put" : "delete", "/conversations/{conversationId}/messages/{messageId}/reactions/{emoji}", {
      params: { conversationId, messageId, emoji },
    });
  }

  /** Messages matching `q` in the caller's conversations, newest first; `before` pages on. */
  search(q: string, opts: { conversationId?: string; before?: string; limit?: number } = {}) {
    const p = new URLSearchParams({ q });
    if (opts.conversationId) p.set("conversationId", opts.conversationId);
    if (opts.before) p.set("before", opts.before);
    if (opts.limit) p.set("limit", String(opts.limit));
    return this.route("get", "/search/messages", { query: `?${p.toString()}` });
  }

  editMessage(conversationId: string, messageId: string, body: string) {
    return this.route("patch", "/conversations/{conversationId}/messages/{messageId}", {
      params: { conversationId, messageId },
      body: { body },
    });
  }

  deleteMessage(conversationId: string, messageId: string) {
    return this.route("delete", "/conversations/{conversationId}/messages/{messageId}", {
      params: { conversationId, messageId },
    });
  }

  createCall(conversationId: string, type: CallType, participants: User[]) {
    return this.route("post", "/calls", { body: { conversationId, type, participants }, status: 201 });
  }

  setCallStatus(callId: string, status: CallStatus) {
    return this.route("patch", "/calls/{callId}/status", { params: { callId }, body: { status } });
  }

  calls(conversationId: string) {
    return this.route("get", "/calls/conversation/{conversationId}", { params: { conversationId } });
  }

  sendSignal(callId: string, kind: SignalKind, senderId: string, payload: Record<string, unknown>, targetId?: string) {
    return this.route("post", "/calls/{callId}/signals/{kind}", {
      params: { callId, kind },
      body: { senderId, payload, ...(targetId ? { targetId } : {}) },
      status: 201,
    });
  }

  signals(callId: string, kind: SignalKind) {
    return this.route("get", "/calls/{callId}/signals/{kind}", { params: { callId, kind } });
  }
}

/**
 * A 413's message: the size limit the server names (its message's first byte count, or
 * "N MB"), else the default limit. A 413 that is not about one file's size (the per-user
 * total of unsent uploads) keeps the server's words.
 */
function tooLarge(serverMessage: string): string {
  if (/unsent|total|quota/i.test(serverMessage)) return serverMessage;
  const mb = /(\d+(?:\.\d+)?)\s*(MiB|MB)/i.exec(serverMessage);
  const bytes = /(\d{4,})\s*(bytes)?/i.exec(serverMessage);
  const max = mb ? Number(mb[1]) : bytes ? Number(bytes[1]) / (1024 * 1024) : DEFAULT_UPLOAD_MAX_BYTES / (1024 * 1024);
  return `too large (max ${Math.round(max * 10) / 10} MB)`;
}

function enc(s: string) {
  return encodeURIComponent(s);
}

/** A message for people: what went wrong and, where it helps, what to do. */
export function describeError(e: unknown): string {
  if (e instanceof NetworkError) return "The server could not be reached. Check your connection and try again.";
  if (e instanceof ApiError) {
    if (e.status === 429) return `Too many attempts; try again in ${e.retryAfter ?? "a few"} seconds.`;
    if (e.status >= 500) return "The service is having trouble right now; try again shortly.";
    return e.message.charAt(0).toUpperCase() + e.message.slice(1);
  }
  return e instanceof Error ? e.message : String(e);
}
