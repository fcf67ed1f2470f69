import { describe, expect, it } from "vitest";
import type { Message } from "../types";
import { canAdd, hasReacted, previewOf, quoteDeleted, quoteUpdated, whoReacted, withReaction } from "./reactions";
import * as th from "./thread";

const msg = (id: string, extra: Partial<Message> = {}): Message => ({
  id,
  conversationId: "c1",
  senderId: "bob",
  body: `body ${id}`,
  sentAt: "2026-01-01T00:00:00.000Z",
  editedAt: null,
  replyTo: null,
  reactions: [],
  attachments: [],
  ...extra,
});

describe("reactions", () => {
  it("adds to an existing emoji, adds a new one last, and is idempotent", () => {
    let r = withReaction([{ emoji: "👍", count: 1, userIds: ["bob"] }], "👍", "alice", true);
    expect(r).toEqual([{ emoji: "👍", count: 2, userIds: ["bob", "alice"] }]);
    expect(withReaction(r, "👍", "alice", true)).toBe(r);
    r = withReaction(r, "🎉", "alice", true);
    expect(r.map((x) => x.emoji)).toEqual(["👍", "🎉"]);
    expect(withReaction(undefined, "❤️", "alice", true)).toEqual([{ emoji: "❤️", count: 1, userIds: ["alice"] }]);
  });

  it("removes the user's own reaction and drops an emoji nobody has left", () => {
    const two = [
      { emoji: "👍", count: 2, userIds: ["bob", "alice"] },
      { emoji: "🎉", count: 1, userIds: ["alice"] },
    ];
    expect(withReaction(two, "👍", "alice", false)).toEqual([
      { emoji: "👍", count: 1, userIds: ["bob"] },
      { emoji: "🎉", count: 1, userIds: ["alice"] },
    ]);
    expect(withReaction(two, "🎉", "alice", false)).toEqual([two[0]]);
    // Removing what is not there changes nothing.
    expect(withReaction(two, "😢", "alice", false)).toBe(two);
    expect(withReaction(two, "🎉", "carol", false)).toBe(two);
  });

  it("knows the user's own reactions and the limit of distinct emoji", () => {
    const m = msg("m1", { reactions: [{ emoji: "👍", count: 1, userIds: ["alice"] }] });
    expect(hasReacted(m, "👍", "alice")).toBe(true);
    expect(hasReacted(m, "👍", "bob")).toBe(false);
    const full = msg("m2", { reactions: Array.from({ length: 20 }, (_, i) => ({ emoji: `e${i}`, count: 1, userIds: ["bob"] })) });
    expect(canAdd(full, "👍")).toBe(false);
    expect(canAdd(full, "e3")).toBe(true);
    expect(canAdd(m, "🎉")).toBe(true);
  });

  it("says who reacted with display names, the user as you", () => {
    const names = new Map([["bob", "Bob"], ["carol", "Carol"]]);
    expect(whoReacted({ emoji: "👍", count: 1, userIds: ["bob"] }, names, "alice")).toBe("Bob reacted with 👍");
    expect(whoReacted({ emoji: "👍", count: 3, userIds: ["bob", "zed", "alice"] }, names, "alice")).toBe(
      "Bob, zed and you reacted with 👍",
    );
    expect(whoReacted({ emoji: "👍", count: 1, userIds: ["alice"] }, names, "alice")).toBe("You reacted with 👍");
    expect(whoReacted({ emoji: "🎉", count: 4, userIds: ["carol"] }, names, "alice")).toBe("Carol and 3 others reacted with 🎉");
  });

  it("toggles in a thread without touching other messages", () => {
    let t = th.loadLatest(th.emptyThread, [msg("m1"), msg("m2")], false);
    t = th.applyReaction(t, "m2", "👀", "alice", true);
    expect(t.messages[1].reactions).toEqual([{ emoji: "👀", count: 1, userIds: ["alice"] }]);
    expect(t.messages[0].reactions).toEqual([]);
    t = th.applyReaction(t, "m2", "👀", "alice", false);
    expect(t.messages[1].reactions).toEqual([]);
  });
});

describe("reply quotes", () => {
  it("previews the first 200 characters, counting emoji as one", () => {
    const long = "😀".repeat(250);
    const p = previewOf(msg("m1", { body: long }));
    expect(Array.from(p.body)).toHaveLength(200);
    expect(p).toMatchObject({ id: "m1", senderId: "bob" });
  });

  it("follows an edit of the original and its deletion, in the thread too", () => {
    const original = msg("m1", { body: "old text" });
    const reply = msg("m2", { senderId: "alice", replyTo: { id: "m1", senderId: "bob", body: "old text" } });
    const other = msg("m3", { replyTo: { id: "m9", senderId: "bob", body: "x" } });
    let t = th.loadLatest(th.emptyThread, [original, reply, other], false);
    t = th.applyUpdated(t, { ...original, body: "new text", editedAt: "2026-01-01T00:01:00.000Z" });
    expect(t.messages[1].replyTo).toEqual({ id: "m1", senderId: "bob", body: "new text" });
    expect(t.messages[2].replyTo).toEqual(other.replyTo);
    t = th.applyDeleted(t, "m1");
    expect(t.messages.map((m) => m.id)).toEqual(["m2", "m3"]);
    expect(t.messages[0].replyTo).toEqual({ id: "m1", deleted: true });
    // A quote already deleted stays so, whatever comes later.
    expect(quoteUpdated(t.messages[0], original).replyTo).toEqual({ id: "m1", deleted: true });
    expect(quoteDeleted(reply, "m1").replyTo).toEqual({ id: "m1", deleted: true });
    expect(quoteDeleted(reply, "m7")).toBe(reply);
  });

  it("keeps a reply unchanged when only the original's reactions changed", () => {
    const reply = msg("m2", { replyTo: { id: "m1", senderId: "bob", body: "body m1" } });
    expect(quoteUpdated(reply, msg("m1", { reactions: [{ emoji: "👍", count: 1, userIds: ["x"] }] }))).toBe(reply);
  });
});
