// The contract's shapes as the UI names them. None is written here: each is a type the
// client package (clients/typescript, @chat-platform/client) generates from the OpenAPI and
// AsyncAPI documents in services/gateway/api/, so a contract change that breaks the UI fails
// its type check. What is the UI's own (the signed-in `Session`, `FINAL_CALL_STATUSES`) is
// built from them.
import type {
  Call,
  Conversation as ConversationSchema,
  ConversationMember,
  ListedConversation,
  ReadState,
  ReplyTo,
  ServerEventPayload,
  Session as SessionSchema,
  Signal,
  User,
} from "@chat-platform/client";

export type { Attachment, Call, Message, Reaction, ReadMarker, Upload, User } from "@chat-platform/client";

/** The quoted original of a reply: `{id, senderId, body}`, or `{id, deleted: true}`. */
export type ReplyPreview = ReplyTo;
/** The answer to `POST /conversations/:id/read`. */
export type ReadResult = ReadState;
/** A signal as `GET /calls/:id/signals/:kind` returns it. */
export type StoredSignal = Signal;

/** A member of a conversation, with their role. */
export type Member = ConversationMember;
export type Role = ConversationMember["role"];

/**
 * A conversation as the UI keeps it: from `conversation:*` events and the create and
 * lifecycle routes, or from the listing, which adds the caller's unread count and marker.
 */
export type Conversation = ConversationSchema &
  Partial<Pick<ListedConversation, "unreadCount" | "lastReadMessageId">>;

/** `conversation:read`: a member's marker moved. */
export type ReadEvent = ServerEventPayload<"conversation:read">;
export type TypingEvent = ServerEventPayload<"typing:update">;
export type SignalEvent = ServerEventPayload<"call:signal">;
export type SignalKind = SignalEvent["kind"];
export type CallType = Call["type"];
export type CallStatus = Call["status"];

/**
 * A signed-in user. `token` mode carries the bearer token the identity routes answer with;
 * `open` mode is for a server without the identity routes (the original API, or one before
 * identity landed), where requests act as whoever they name.
 */
export type Session = ({ mode: "token" } & SessionSchema) | { mode: "open"; user: User };

export const FINAL_CALL_STATUSES: CallStatus[] = ["declined", "missed", "ended"];
