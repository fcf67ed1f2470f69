// The contract's shapes (../shared/API.md and the README's "Identity and access").

export interface User {
  userId: string;
  displayName: string;
}

export interface Message {
  id: string;
  conversationId: string;
  senderId: string;
  body: string;
  sentAt: string;
  editedAt: string | null;
  clientMessageId?: string;
}

export interface Conversation {
  id: string;
  name?: string;
  type: "one_to_one" | "group";
  members: User[];
  createdAt: string;
  lastMessage?: Message | null;
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
