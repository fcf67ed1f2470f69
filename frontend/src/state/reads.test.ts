import { describe, expect, it } from "vitest";
import type { Conversation, Member, Message } from "../types";
import * as rd from "./reads";

const msg = (n: number, senderId = "bob"): Message => ({
  id: `m${n}`,
  conversationId: "c",
  senderId,
  body: `body ${n}`,
  sentAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
  editedAt: null,
  replyTo: null,
  reactions: [],
  attachments: [],
});
const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
const members: Member[] = [
  { userId: "alice", displayName: "Alice", role: "owner" },
  { userId: "bob", displayName: "Bob", role: "member" },
  { userId: "carol", displayName: "Carol", role: "member" },
  { userId: "dan", displayName: "Dan", role: "member" },
];
const c = (extra: Partial<Conversation> = {}): Conversation => ({ id: "c", type: "group", members, createdAt: at(0), ...extra });

describe("unread bookkeeping", () => {
  it("counts others' messages unless being read, once each; the user's own send reads", () => {
    let x = c({ unreadCount: 2, lastMessage: msg(2) });
    x = rd.countMessage(x, msg(3), "alice", false);
    expect(x.unreadCount).toBe(3);
    // The same message again (a duplicate event) once it is the last one: not counted twice.
    expect(rd.countMessage({ ...x, lastMessage: msg(3) }, msg(3), "alice", false).unreadCount).toBe(3);
    expect(rd.countMessage(x, msg(4), "alice", true).unreadCount).toBe(3);
    const sent = rd.countMessage(x, msg(5, "alice"), "alice", false);
    expect(sent.unreadCount).toBe(0);
    expect(sent.lastReadMessageId).toBe("m5");
    // No count from the listing yet: starts at zero.
    expect(rd.countMessage(c(), msg(1), "alice", false).unreadCount).toBe(1);
  });

  it("takes the server's count after a read", () => {
    const x = rd.applyReadResult(c({ unreadCount: 4 }), {
      conversationId: "c",
      userId: "alice",
      lastReadMessageId: "m9",
      unreadCount: 1,
    });
    expect(x).toMatchObject({ unreadCount: 1, lastReadMessageId: "m9" });
  });

  it("clears or recounts on the user's read on another device, never moving back", () => {
    const ev = (id: string) => ({ conversationId: "c", userId: "alice", lastReadMessageId: id, readAt: at(9) });
    const loaded = [msg(1), msg(2), msg(3, "alice"), msg(4), msg(5)];
    // Read up to m2: m4 and m5 (from others) are left; m3 is the user's own.
    expect(rd.applyOwnRead(c({ unreadCount: 4 }), ev("m2"), "alice", loaded)).toMatchObject({
      unreadCount: 2,
      lastReadMessageId: "m2",
    });
    // An older marker than the one known changes nothing.
    const known = c({ unreadCount: 1, lastReadMessageId: "m4" });
    expect(rd.applyOwnRead(known, ev("m2"), "alice", loaded)).toBe(known);
    // Without the messages here (the conversation is not open): the other device read all.
    expect(rd.applyOwnRead(c({ unreadCount: 7 }), ev("m5"), "alice", undefined).unreadCount).toBe(0);
  });
});

describe("seen by", () => {
  const markers = rd.markersFrom([
    { userId: "bob", lastReadMessageId: "m3", readAt: at(3) },
    { userId: "carol", lastReadMessageId: "m2", readAt: at(2) },
    { userId: "dan", lastReadMessageId: "m0", readAt: at(5) },
  ]);
  const loaded = [msg(1), msg(2), msg(3, "alice")];

  it("names the members whose marker reached the last message, not the user or the author", () => {
    // Dan's marker is not among the loaded messages but was set after the last one was sent.
    expect(rd.seenBy(c(), loaded, markers, "alice")).toEqual(["Bob", "Dan"]);
    expect(rd.seenBy(c(), loaded, markers, "bob")).toEqual(["Dan"]);
    const moved = rd.withMarker(markers, { conversationId: "c", userId: "carol", lastReadMessageId: "m3", readAt: at(6) }, loaded);
    expect(rd.seenBy(c(), loaded, moved, "alice")).toEqual(["Bob", "Carol", "Dan"]);
  });

  it("ignores a marker moving back, and is not shown in large groups", () => {
    const back = rd.withMarker(markers, { conversationId: "c", userId: "bob", lastReadMessageId: "m1", readAt: at(7) }, loaded);
    expect(back.bob.lastReadMessageId).toBe("m3");
    const big = c({ members: Array.from({ length: 11 }, (_, i): Member => ({ userId: `u${i}`, displayName: `U${i}`, role: "member" })) });
    expect(rd.seenBy(big, loaded, markers, "alice")).toEqual([]);
    expect(rd.seenBy(c(), [], markers, "alice")).toEqual([]);
  });
});

describe("the New messages divider", () => {
  const loaded = [msg(1), msg(2, "alice"), msg(3), msg(4, "alice"), msg(5), msg(6)];

  it("goes before the first message of someone else after the marker", () => {
    expect(rd.firstUnread(loaded, { lastReadMessageId: "m2", unreadCount: 3 }, "alice")).toBe("m3");
    expect(rd.firstUnread(loaded, { lastReadMessageId: "m4", unreadCount: 2 }, "alice")).toBe("m5");
  });

  it("is absent when nothing is unread", () => {
    expect(rd.firstUnread(loaded, { lastReadMessageId: "m6", unreadCount: 0 }, "alice")).toBeUndefined();
    expect(rd.firstUnread(loaded, undefined, "alice")).toBeUndefined();
  });

  it("counts back from the newest when the marker is older than the loaded page or unset", () => {
    expect(rd.firstUnread(loaded, { lastReadMessageId: "m0", unreadCount: 2 }, "alice")).toBe("m5");
    expect(rd.firstUnread(loaded, { lastReadMessageId: null, unreadCount: 40 }, "alice")).toBe("m1");
  });
});
