import { describe, expect, it } from "vitest";
import type { Conversation, Message } from "../types";
import * as conv from "./conversations";

const c = (id: string, createdAt: string, extra: Partial<Conversation> = {}): Conversation => ({
  id,
  type: "one_to_one",
  members: [
    { userId: "alice", displayName: "Alice", role: "member" },
    { userId: "bob", displayName: "Bob", role: "member" },
  ],
  createdAt,
  ...extra,
});
const m = (conversationId: string, sentAt: string, id = "m"): Message => ({
  id,
  conversationId,
  senderId: "bob",
  body: "hi",
  sentAt,
  editedAt: null,
  replyTo: null,
  reactions: [],
  attachments: [],
});

describe("conversation list", () => {
  it("orders by latest activity and moves a conversation up on a new message", () => {
    let list = conv.sortByActivity([c("a", "2026-01-01T00:00:00.000Z"), c("b", "2026-01-02T00:00:00.000Z")]);
    expect(list.map((x) => x.id)).toEqual(["b", "a"]);
    list = conv.withMessage(list, m("a", "2026-01-03T00:00:00.000Z"));
    expect(list.map((x) => x.id)).toEqual(["a", "b"]);
    expect(list[0].lastMessage?.sentAt).toBe("2026-01-03T00:00:00.000Z");
    // An older message (a late event) does not replace the last one.
    const same = conv.withMessage(list, m("a", "2026-01-02T12:00:00.000Z", "old"));
    expect(same[0].lastMessage?.id).toBe("m");
  });

  it("updates and detects a deleted last message", () => {
    const list = conv.withMessage([c("a", "2026-01-01T00:00:00.000Z")], m("a", "2026-01-02T00:00:00.000Z"));
    const updated = conv.withUpdated(list, { ...m("a", "2026-01-02T00:00:00.000Z"), body: "edited" });
    expect(updated[0].lastMessage?.body).toBe("edited");
    expect(conv.lastWasDeleted(list, { id: "m", conversationId: "a" })).toBe(true);
    expect(conv.lastWasDeleted(list, { id: "x", conversationId: "a" })).toBe(false);
  });

  it("titles a conversation by its name or the other members", () => {
    expect(conv.title(c("a", ""), "alice")).toBe("Bob");
    expect(conv.title(c("a", "", { name: "Team" }), "alice")).toBe("Team");
    expect(conv.upsert([c("a", "")], c("a", "", { name: "Renamed" }))[0].name).toBe("Renamed");
  });
});

describe("conversation events and pages", () => {
  it("takes the server's copy for the name and members, keeping the list's read state", () => {
    const mine = c("a", "", { name: "Team", unreadCount: 3, lastReadMessageId: "m1", lastMessage: m("a", "2026-01-02T00:00:00.000Z") });
    const [renamedAway] = conv.upsert([mine], c("a", "", { members: [{ userId: "alice", displayName: "Alice", role: "member" }] }));
    expect(renamedAway.name).toBeUndefined();
    expect(renamedAway.members).toHaveLength(1);
    expect(renamedAway).toMatchObject({ unreadCount: 3, lastReadMessageId: "m1" });
    expect(renamedAway.lastMessage?.id).toBe("m");
    expect(conv.without([mine], "a")).toEqual([]);
  });

  it("joins pages without repeating a conversation that moved up meanwhile", () => {
    const joined = conv.appendPage([c("a", ""), c("b", "")], [c("b", ""), c("d", "")]);
    expect(joined.map((x) => x.id)).toEqual(["a", "b", "d"]);
  });
});
