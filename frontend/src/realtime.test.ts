// The connection's recovery decision: signed in, the socket asks the server for connection
// state recovery, and a reconnect says whether the server recovered the session (then the
// chat does not re-read over HTTP: the replay brought every missed event).
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Session } from "./types";

type Handler = (...args: unknown[]) => void;

/** Stands in for socket.io-client's socket: records `io()`'s options, lets the test fire
 * events and set `recovered` as the client library would before `connect`. */
class ScriptedSocket {
  handlers = new Map<string, Handler[]>();
  emitted: string[] = [];
  recovered = false;
  active = true;
  constructor(public options: Record<string, unknown>) {}
  on(event: string, fn: Handler) {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), fn]);
    return this;
  }
  emit(event: string) {
    this.emitted.push(event);
    return this;
  }
  fire(event: string, ...args: unknown[]) {
    for (const h of this.handlers.get(event) ?? []) h(...args);
  }
  connect() {
    return this;
  }
}

const made: ScriptedSocket[] = [];
vi.mock("socket.io-client", () => ({
  io: (_url: unknown, options: Record<string, unknown>) => {
    const s = new ScriptedSocket(options);
    made.push(s);
    return s;
  },
}));

const { connect } = await import("./realtime");

const user = { userId: "u-1", displayName: "U" };
const signedIn: Session = { mode: "token", token: "t0k", expiresAt: "2099-01-01T00:00:00.000Z", user };
const open: Session = { mode: "open", user };

function start(session: Session) {
  const hooks = { onState: vi.fn(), onReconnect: vi.fn(), onUnauthorized: vi.fn() };
  connect("http://gw", session, hooks);
  return { socket: made[made.length - 1], hooks };
}

describe("connection state recovery", () => {
  beforeEach(() => {
    made.length = 0;
  });

  it("asks for recovery with the token when signed in, and not without identity", () => {
    expect(start(signedIn).socket.options.auth).toEqual({ token: "t0k", recovery: true });
    expect(start(open).socket.options.auth).toBeUndefined();
  });

  it("reports a recovered reconnect as such, and an unrecovered one as needing a catch-up", () => {
    const { socket, hooks } = start(signedIn);
    socket.fire("connect");
    expect(hooks.onReconnect).not.toHaveBeenCalled();
    socket.fire("disconnect", "transport close");
    expect(hooks.onState).toHaveBeenLastCalledWith("reconnecting");
    socket.recovered = true;
    socket.fire("connect");
    expect(hooks.onReconnect).toHaveBeenLastCalledWith(true);
    expect(hooks.onState).toHaveBeenLastCalledWith("online");
    socket.fire("disconnect", "ping timeout");
    socket.recovered = false; // past the window, or an unknown session
    socket.fire("connect");
    expect(hooks.onReconnect).toHaveBeenLastCalledWith(false);
    expect(hooks.onReconnect).toHaveBeenCalledTimes(2);
    // It says who it is again all the same (harmless on a recovered session).
    expect(socket.emitted.filter((e) => e === "presence:join")).toHaveLength(3);
  });

  it("a server without recovery leaves `recovered` unset: a catch-up", () => {
    const { socket, hooks } = start(signedIn);
    socket.fire("connect");
    socket.fire("disconnect", "transport close");
    (socket as { recovered: unknown }).recovered = undefined;
    socket.fire("connect");
    expect(hooks.onReconnect).toHaveBeenLastCalledWith(false);
  });
});
