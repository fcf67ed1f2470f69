// The connection's recovery decision: signed in, the socket asks the server for connection
// state recovery, and after a reconnect it re-reads over HTTP only when the server did not
// recover the session (the recovered one already replayed every missed event).
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

const { connect, needsCatchUp } = await import("./realtime");

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

  it("does not re-read over HTTP after a recovered reconnect", () => {
    const { socket, hooks } = start(signedIn);
    socket.fire("connect");
    expect(hooks.onReconnect).not.toHaveBeenCalled();
    socket.fire("disconnect", "transport close");
    expect(hooks.onState).toHaveBeenLastCalledWith("reconnecting");
    socket.recovered = true;
    socket.fire("connect");
    expect(hooks.onReconnect).not.toHaveBeenCalled();
    expect(hooks.onState).toHaveBeenLastCalledWith("online");
    // It says who it is again all the same (harmless on a recovered session).
    expect(socket.emitted.filter((e) => e === "presence:join")).toHaveLength(2);
  });

  it("catches up over HTTP after a reconnect the server did not recover", () => {
    const { socket, hooks } = start(signedIn);
    socket.fire("connect");
    socket.fire("disconnect", "transport close");
    socket.recovered = false; // past the window, or an unknown session
    socket.fire("connect");
    expect(hooks.onReconnect).toHaveBeenCalledTimes(1);
    // A later recovered reconnect does not.
    socket.fire("disconnect", "ping timeout");
    socket.recovered = true;
    socket.fire("connect");
    expect(hooks.onReconnect).toHaveBeenCalledTimes(1);
  });

  it("the decision itself", () => {
    expect(needsCatchUp(false, false)).toBe(false);
    expect(needsCatchUp(false, true)).toBe(false);
    expect(needsCatchUp(true, true)).toBe(false);
    expect(needsCatchUp(true, false)).toBe(true);
  });
});
