// The Socket.IO connection to the gateway: signs in with the token (or, on a server
// without identity, only with `presence:join`), says who it is again after every
// reconnect, and reports the connection's state for the banner. Signed in, it asks for
// connection state recovery, and tells whether a reconnect was recovered (every missed
// event replayed) or needs an HTTP catch-up.
import type { ClientToServerEvents, ServerToClientEvents } from "@chat-platform/client";
import { io, type Socket } from "socket.io-client";
import type { Session } from "./types";

/** The socket to the gateway, its events and payloads typed by the AsyncAPI document. */
export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export type ConnectionState = "connecting" | "online" | "reconnecting" | "offline";

export interface RealtimeHooks {
  onState(state: ConnectionState): void;
  /** Called after a reconnect (not the first connect): fetch what was missed, over HTTP
   * unless `recovered` (the server replayed every missed event on the socket). */
  onReconnect(recovered: boolean): void;
  onUnauthorized(): void;
}

export function connect(apiUrl: string, session: Session, hooks: RealtimeHooks): ChatSocket {
  const socket: ChatSocket = io(apiUrl || undefined, {
    path: "/socket.io/",
    // The official client resends this auth with the session's `pid` and last offset.
    auth: session.mode === "token" ? { token: session.token, recovery: true } : undefined,
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
    timeout: 10_000,
  });
  let connectedBefore = false;
  hooks.onState("connecting");
  socket.on("connect", () => {
    socket.emit("presence:join", session.user);
    hooks.onState("online");
    // The client library sets `recovered` when the server answered with the same session.
    if (connectedBefore) hooks.onReconnect(Boolean(socket.recovered));
    connectedBefore = true;
  });
  socket.on("disconnect", (reason) => {
    // A disconnect we asked for is final; anything else is retried by the client.
    hooks.onState(reason === "io client disconnect" ? "offline" : "reconnecting");
  });
  socket.on("connect_error", (err) => {
    if (/unauthori[sz]ed/i.test(err.message)) {
      hooks.onUnauthorized();
      return;
    }
    hooks.onState(connectedBefore ? "reconnecting" : "connecting");
    // A refusal by the server (not a transport failure) is not retried by the client.
    if (!socket.active) setTimeout(() => socket.connect(), 2000);
  });
  return socket;
}

