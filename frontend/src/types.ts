// The contract's shapes (../shared/API.md and the README's "Identity and access").

export interface User {
  userId: string;
  displayName: string;
}

/** The quoted original of a reply: its first 200 characters, or only that it was deleted. */
export type ReplyPreview =
  | { id: string; senderId: string; body: string; deleted?: false }
  | { id: string; deleted: true };

/** One emoji on a message: how many reacted and who, in reaction order. */
export interface Reaction {
  emoji: string;
  count: number;
  userIds: string[];
}

/** A file in a message. `url` (and `thumbnailUrl`) are signed paths that expire and work
 * without a header (an `<img src>`); they are relative to the API's base URL. */
export interface Attachment {
  id: string;
  name: string;
  contentType: string;
  size: number;
  url: string;
  /** Pixel size, for images whose dimensions the server could read. */
  width?: number;
  height?: number;
  thumbnailUrl?: string;
}

/** The answer to `POST /attachments`: an upload not yet in a message (no URL yet). */
export interface Upload {
  id: string;
  name: string;
  contentType: string;
  size: number;
  width?: number;
  height?: number;
}

export interface Message {
  id: string;
  conversationId: string;
  senderId: string;
  body: string;
  sentAt: string;
  editedAt: string | null;
  clientMessageId?: string;
  /** Optional here only because servers from before replies leave them out. */
  replyTo?: ReplyPreview | null;
  /** Oldest emoji first; absent from servers before reactions. */
  reactions?: Reaction[];
  /** In `attachmentIds` order; absent from servers before attachments. */
  attachments?: Attachment[];
}

export type Role = "owner" | "admin" | "member";

/** A member as the lifecycle routes return it; `role` is absent from older servers. */
export interface Member extends User {
  role?: Role;
}

export interface Conversation {
  id: string;
  name?: string | null;
  type: "one_to_one" | "group";
  members: Member[];
  createdAt: string;
  lastMessage?: Message | null;
  /** Messages from others after the caller's read marker (listing only). */
  unreadCount?: number;
  /** The caller's read marker (listing only); null when nothing was read. */
  lastReadMessageId?: string | null;
}

/** One member's read marker (`GET /conversations/:id/reads`). */
export interface ReadMarker {
  userId: string;
  lastReadMessageId: string;
  readAt: string;
}

/** `conversation:read`: a member's marker moved. */
export interface ReadEvent extends ReadMarker {
  conversationId: string;
}

/** The answer to `POST /conversations/:id/read`. */
export interface ReadResult {
  conversationId: string;
  userId: string;
  lastReadMessageId: string;
  unreadCount: number;
}

export type CallType = "audio" | "video";
export type CallStatus = "ringing" | "in_progress" | "declined" | "missed" | "ended";

export interface Call {
  id: string;
  conversationId: string;
  type: CallType;
  status: CallStatus;
  startedAt: string;
  endedAt?: string;
  participants: User[];
}

export type SignalKind = "offer" | "answer" | "ice";

export interface SignalEvent {
  callId: string;
  kind: SignalKind;
  senderId: string;
  targetId?: string;
  payload: unknown;
  createdAt: string;
}

export interface StoredSignal {
  senderId: string;
  targetId?: string;
  payload: unknown;
  createdAt: string;
}

export interface TypingEvent {
  conversationId: string;
  userId: string;
  displayName: string;
  isTyping: boolean;
}

/**
 * A signed-in user. `token` mode carries a bearer token; `open` mode is for a server
 * without the identity routes (the original API, or one before identity landed), where
 * requests act as whoever they name.
 */
export type Session =
  | { mode: "token"; token: string; expiresAt: string; user: User }
  | { mode: "open"; user: User };

export const FINAL_CALL_STATUSES: CallStatus[] = ["declined", "missed", "ended"];
