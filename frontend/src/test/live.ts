// The realtime connection of component tests: `vi.mock("../realtime", () => import("../test/live"))`
// makes the app's `connect` hand out `live.socket` (a FakeSocket the test drives), online at
// once, and keep the app's hooks in `live.hooks`. Tests give `live.socket` a fresh socket in
// their `beforeEach`.
import type { RealtimeHooks } from "../realtime";
import { FakeSocket } from "./fakes";

export const live = { socket: new FakeSocket(), hooks: null as unknown as RealtimeHooks };

export function connect(_url: string, _session: unknown, hooks: RealtimeHooks): FakeSocket {
  live.hooks = hooks;
  hooks.onState("online");
  return live.socket;
}
