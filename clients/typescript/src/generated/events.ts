// Generated from services/gateway/api/asyncapi.json and services/gateway/api/openapi.json by
// clients/typescript/scripts/generate.mjs (npm run generate); do not edit.
// The Socket.IO events: `Socket<ServerToClientEvents, ClientToServerEvents>` of socket.io-client.
import type { components } from "./openapi";

/** Each event's payload, by its message's key in the AsyncAPI document's components. */
export interface EventPayloads {
    messageCreated: components["schemas"]["Message"];
    messageUpdated: components["schemas"]["Message"];
    messageDeleted: components["schemas"]["Message"];
    conversationCreated: components["schemas"]["Conversation"];
    conversationUpdated: components["schemas"]["Conversation"];
    conversationRemoved: {
        /** Format: uuid */
        conversationId: string;
    };
    conversationRead: {
        /** Format: uuid */
        conversationId: string;
        userId: string;
        /** Format: uuid */
        lastReadMessageId: string;
        /** Format: date-time */
        readAt: string;
    };
    callCreated: components["schemas"]["Call"];
    callUpdated: components["schemas"]["Call"];
    callSignal: {
        /** Format: uuid */
        callId: string;
        /** @enum {string} */
        kind: "offer" | "answer" | "ice";
        senderId: string;
        targetId?: string;
        payload: Record<string, unknown>;
        /** Format: date-time */
        createdAt: string;
    };
    presenceUpdate: {
        userId: string;
        displayName: string;
    }[];
    typingUpdateSent: {
        /** Format: uuid */
        conversationId: string;
        userId: string;
        displayName: string;
        isTyping: boolean;
    };
    presenceJoin: {
        userId: string;
        displayName: string;
    };
    typingUpdateReceived: {
        /** Format: uuid */
        conversationId: string;
        userId: string;
        displayName: string;
        isTyping: boolean;
    };
}

/**
 * The payload of the ack a client-to-server event is answered with (`x-ack`), when the client asks for one.
 */
export interface EventAcks {
    presenceJoin: {
        ok: boolean;
        /** @description Why not, e.g. "rate limited" (the event was dropped; the socket stays connected). */
        error?: string;
    };
    typingUpdateReceived: {
        ok: boolean;
        /** @description Why not, e.g. "rate limited" (the event was dropped; the socket stays connected). */
        error?: string;
    };
}

/**
 * The events the server sends (the AsyncAPI document's `send` operations). A socket that asked for
 * connection state recovery receives a recorded event's offset as a second argument.
 */
export interface ServerToClientEvents {
    /** A message was stored (after its commit). */
    "message:created": (payload: EventPayloads["messageCreated"], offset?: string) => void;
    /** A message was edited, or its reactions changed. */
    "message:updated": (payload: EventPayloads["messageUpdated"], offset?: string) => void;
    /** A message was deleted. */
    "message:deleted": (payload: EventPayloads["messageDeleted"], offset?: string) => void;
    /** A conversation the user is a member of was created, or the user was added to one. */
    "conversation:created": (payload: EventPayloads["conversationCreated"], offset?: string) => void;
    /** A conversation was renamed, or its members or roles changed. */
    "conversation:updated": (payload: EventPayloads["conversationUpdated"], offset?: string) => void;
    /** The user is no longer a member (removed, or left). */
    "conversation:removed": (payload: EventPayloads["conversationRemoved"], offset?: string) => void;
    /** A member's read marker moved. */
    "conversation:read": (payload: EventPayloads["conversationRead"], offset?: string) => void;
    /** A call started. */
    "call:created": (payload: EventPayloads["callCreated"], offset?: string) => void;
    /** A call's status changed. */
    "call:updated": (payload: EventPayloads["callUpdated"], offset?: string) => void;
    /** A WebRTC signal for the call. */
    "call:signal": (payload: EventPayloads["callSignal"], offset?: string) => void;
    /** Who is online. */
    "presence:update": (payload: EventPayloads["presenceUpdate"], offset?: string) => void;
    /** A member started or stopped typing. */
    "typing:update": (payload: EventPayloads["typingUpdateSent"], offset?: string) => void;
}

/**
 * The events a client sends (the AsyncAPI document's `receive` operations), with the ack each may ask for.
 */
export interface ClientToServerEvents {
    /** Says who the socket is and marks the user online. */
    "presence:join": (payload: EventPayloads["presenceJoin"], ack?: (ack: EventAcks["presenceJoin"]) => void) => void;
    /** The client's user started or stopped typing. */
    "typing:update": (payload: EventPayloads["typingUpdateReceived"], ack?: (ack: EventAcks["typingUpdateReceived"]) => void) => void;
}
