import { describe, expect, it } from "vitest";
import type { Message } from "../types";
import * as th from "./thread";

const msg = (n: number, extra: Partial<Message> = {}): Message => ({
  id: `m${n}`,
  conversationId: "c1",
  senderId: "alice",
  body: `body ${n}`,
  sentAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
  editedAt: null,
  replyTo: null,
  reactions: [],
  attachments: [],
  ...extra,
});

const ids = (t: th.Thread) => t.messages.map((m) => m.id);

describe("thread", () => {
  it("prepends older pages without repeating a message", () => {
    let t = th.loadLatest(th.emptyThread, [msg(3), msg(4)], true);
    t = th.prependOlder(t, [msg(1), msg(2), msg(3)], false);
    expect(ids(t)).toEqual(["m1", "m2", "m3", "m4"]);
    expect(t.hasOlder).toBe(false);
    expect(th.oldestConfirmed(t)?.id).toBe("m1");
  });

  it("shows a send at once and reconciles it when the server answers", () => {
    let t = th.loadLatest(th.emptyThread, [msg(1)], false);
    t = th.addPending(t, { ...msg(2), id: "local:x", clientMessageId: "x" });
    expect(t.messages[1].delivery).toBe("pending");
    t = th.appendNewer(t, [{ ...msg(2), id: "server-2", clientMessageId: "x" }]);
    expect(ids(t)).toEqual(["m1", "server-2"]);
    expect(t.messages[1].delivery).toBe("sent");
    // The live event for the same message arriving after the answer changes nothing.
    const again = th.appendNewer(t, [{ ...msg(2), id: "server-2", clientMessageId: "x" }]);
    expect(ids(again)).toEqual(["m1", "server-2"]);
  });

  it("keeps local sends after messages that arrive meanwhile", () => {
    let t = th.loadLatest(th.emptyThread, [], false);
    t = th.addPending(t, { ...msg(5), id: "local:a", clientMessageId: "a" });
    t = th.appendNewer(t, [msg(6, { senderId: "bob" })]);
    expect(ids(t)).toEqual(["m6", "local:a"]);
  });

  it("marks a failed send, and a retry makes it pending again", () => {
    let t = th.addPending(th.emptyThread, { ...msg(1), id: "local:a", clientMessageId: "a" });
    t = th.markFailed(t, "a");
    expect(t.messages[0].delivery).toBe("failed");
    t = th.markPending(t, "a");
    expect(t.messages[0].delivery).toBe("pending");
    expect(th.discardLocal(t, "a").messages).toEqual([]);
  });

  it("applies edits optimistically and takes the server's copy", () => {
    let t = th.loadLatest(th.emptyThread, [msg(1)], false);
    t = th.applyEdit(t, "m1", "changed");
    expect(t.messages[0]).toMatchObject({ body: "changed", editPending: true });
    t = th.applyUpdated(t, msg(1, { body: "changed", editedAt: "2026-01-01T00:01:00.000Z" }));
    expect(t.messages[0].editPending).toBeUndefined();
    expect(t.messages[0].editedAt).not.toBeNull();
    // A later edit seen through paging replaces the older copy.
    t = th.appendNewer(t, [msg(1, { body: "again", editedAt: "2026-01-01T00:02:00.000Z" })]);
    expect(t.messages[0].body).toBe("again");
  });

  it("deletes", () => {
    const t = th.applyDeleted(th.loadLatest(th.emptyThread, [msg(1), msg(2)], false), "m1");
    expect(ids(t)).toEqual(["m2"]);
  });

  it("reconciles the newest page after a reconnect: edits and deletes made while away", () => {
    let t = th.loadLatest(th.emptyThread, [msg(1), msg(2), msg(3), msg(4)], false);
    t = th.addPending(t, { ...msg(9), id: "local:z", clientMessageId: "z" });
    // While away: m3 deleted, m4 edited, m5 sent. The newest page starts at m2.
    t = th.reconcileLatest(t, [msg(2), msg(4, { body: "edited", editedAt: msg(6).sentAt }), msg(5)]);
    expect(ids(t)).toEqual(["m1", "m2", "m4", "m5", "local:z"]);
    expect(t.messages[2].body).toBe("edited");
    expect(th.lastConfirmed(t)?.id).toBe("m5");
  });
});
