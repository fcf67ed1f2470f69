// Group settings, unread badges, read markers and the conversation events, against the fake
// gateway and a socket the test drives.
import { act, screen, waitFor, within } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { FakeGateway, FakeSocket } from "../test/fakes";
import { live } from "../test/live";
import { alice, bob, signedInAsAlice, startApp } from "../test/harness";
import type { Conversation, Member } from "../types";

vi.mock("../realtime", () => import("../test/live"));

const carol = { userId: "carol", displayName: "Carol" };
const as = (u: typeof alice, role: Member["role"]): Member => ({ ...u, role });

let gw: FakeGateway;

beforeEach(() => {
  gw = new FakeGateway();
  live.socket = new FakeSocket();
  signedInAsAlice();
});

const start = () => startApp(gw);

const item = (name: RegExp) => screen.findByRole("button", { name });
const reads = () => gw.requests.filter((r) => r.method === "POST" && r.path.endsWith("/read"));
const copy = (c: Conversation) => JSON.parse(JSON.stringify(c)) as Conversation;

function team(aliceRole: Member["role"] = "owner") {
  const owner = aliceRole === "owner" ? as(alice, "owner") : as(alice, aliceRole);
  const others = aliceRole === "owner" ? [as(bob, "member"), as(carol, "member")] : [as(bob, "owner"), as(carol, "member")];
  return gw.addConversation([owner, ...others], { type: "group", name: "Team" });
}

describe("unread badges and read markers", () => {
  it("counts from the listing, live, then reads on opening and shows New messages", async () => {
    const c = team();
    const read = gw.addMessage(c.id, "alice", "before");
    gw.setRead(c.id, "alice", read.id);
    gw.addMessage(c.id, "bob", "first unread");
    gw.addMessage(c.id, "carol", "second unread");
    const user = start();
    const entry = await item(/^Team/);
    expect(entry.dataset.unread).toBe("2");
    expect(entry.textContent).toContain("2 unread messages");

    const third = gw.addMessage(c.id, "bob", "third unread");
    act(() => live.socket.deliver("message:created", third));
    await waitFor(() => expect(entry.dataset.unread).toBe("3"));
    // The user's own message from another device reads everything before it.
    await user.click(entry);
    await screen.findByText("third unread");
    await waitFor(() => expect(reads().map((r) => r.body)).toEqual([{ messageId: third.id }]));
    const divider = await screen.findByTestId("new-divider");
    expect(divider.nextElementSibling?.textContent).toContain("first unread");
    expect(divider.textContent).toBe("New messages");

    // Arriving while open and visible: read at once, no badge.
    const more = gw.addMessage(c.id, "bob", "while open");
    act(() => live.socket.deliver("message:created", more));
    await waitFor(() => expect(reads().at(-1)?.body).toEqual({ messageId: more.id }));
    await user.click(screen.getByRole("button", { name: "Back to conversations" }));
    expect((await item(/^Team/)).dataset.unread).toBe("0");
    // The divider was placed at opening; reopening with nothing unread shows none.
    await user.click(await item(/^Team/));
    await screen.findByText("while open");
    expect(screen.queryByTestId("new-divider")).toBeNull();
  });

  it("clears the badge when the user reads on another device", async () => {
    const c = team();
    gw.addMessage(c.id, "bob", "one");
    const two = gw.addMessage(c.id, "bob", "two");
    start();
    const entry = await item(/^Team/);
    expect(entry.dataset.unread).toBe("2");
    // Someone else's read changes nothing here.
    act(() => live.socket.deliver("conversation:read", { conversationId: c.id, userId: "bob", lastReadMessageId: two.id, readAt: two.sentAt }));
    expect(entry.dataset.unread).toBe("2");
    act(() => live.socket.deliver("conversation:read", { conversationId: c.id, userId: "alice", lastReadMessageId: two.id, readAt: two.sentAt }));
    await waitFor(() => expect(entry.dataset.unread).toBe("0"));
    expect(entry.querySelector(".badge")).toBeNull();
    expect(reads()).toHaveLength(0);
  });

  it("shows who has seen the last message, from the markers and then live", async () => {
    const c = team();
    gw.addMessage(c.id, "bob", "hello");
    const last = gw.addMessage(c.id, "alice", "hi all");
    gw.setRead(c.id, "bob", last.id);
    const user = start();
    await user.click(await item(/^Team/));
    expect((await screen.findByTestId("seen-by")).textContent).toBe("Seen by Bob");
    act(() => live.socket.deliver("conversation:read", { conversationId: c.id, userId: "carol", lastReadMessageId: last.id, readAt: new Date().toISOString() }));
    expect(screen.getByTestId("seen-by").textContent).toBe("Seen by Bob, Carol");
  });

  it("stops asking for read state on a server without it", async () => {
    gw.hasReadRoutes = false;
    const c = team();
    gw.addMessage(c.id, "bob", "one");
    const user = start();
    await user.click(await item(/^Team/));
    await screen.findByText("one");
    // The markers are asked for first; their 404 says the server has no read state.
    await waitFor(() => expect(gw.requests.filter((r) => r.path.endsWith("/reads"))).toHaveLength(1));
    act(() => live.socket.deliver("message:created", gw.addMessage(c.id, "bob", "two")));
    await screen.findByText("two");
    await user.click(screen.getByRole("button", { name: "Back to conversations" }));
    await user.click(await item(/^Team/));
    await new Promise((r) => setTimeout(r, 20));
    expect(reads()).toHaveLength(0);
    expect(gw.requests.filter((r) => r.path.endsWith("/reads"))).toHaveLength(1);
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("follows the listing's next pages", async () => {
    gw.listPage = 2;
    for (let i = 1; i <= 5; i++) gw.addConversation([alice, { userId: `u${i}`, displayName: `User ${i}` }]);
    start();
    await item(/^User 5/);
    for (let i = 1; i <= 5; i++) expect(screen.getByRole("button", { name: new RegExp(`^User ${i}`) })).toBeTruthy();
    const pages = gw.requests.filter((r) => r.path.startsWith("/conversations/user/")).map((r) => r.path);
    expect(pages).toEqual([
      "/conversations/user/alice?limit=100",
      "/conversations/user/alice?limit=2&cursor=2",
      "/conversations/user/alice?limit=2&cursor=4",
    ]);
  });
});

describe("conversation events", () => {
  it("adds, renames and removes conversations as others change them", async () => {
    const user = start();
    await screen.findByText(/No conversations yet/);
    const c = gw.addConversation([as(bob, "owner"), as(alice, "member")], { type: "group", name: "Plans" });
    act(() => live.socket.deliver("conversation:created", copy(c)));
    await user.click(await item(/^Plans/));
    await screen.findByRole("heading", { name: "Plans", level: 2 });

    act(() => live.socket.deliver("conversation:updated", { ...copy(c), name: "Big plans", members: [...c.members, as(carol, "member")] }));
    await screen.findByRole("heading", { name: "Big plans", level: 2 });
    expect(within(screen.getByRole("list", { name: "Members" })).getByText("Carol")).toBeTruthy();

    act(() => live.socket.deliver("conversation:removed", { conversationId: c.id }));
    expect((await screen.findByRole("alert")).textContent).toContain("You were removed from “Big plans”.");
    expect(screen.queryByRole("heading", { name: "Big plans", level: 2 })).toBeNull();
    expect(location.pathname).toBe("/");
    expect(screen.queryByRole("button", { name: /^Big plans/ })).toBeNull();
    // Nothing from it is shown or fetched any more.
    const before = gw.requests.length;
    act(() => live.socket.deliver("message:created", gw.addMessage(c.id, "bob", "after removal")));
    await new Promise((r) => setTimeout(r, 20));
    expect(gw.requests.length).toBe(before);
    expect(screen.queryByText(/after removal/)).toBeNull();
  });
});

describe("group settings", () => {
  async function openSettings(aliceRole: Member["role"]) {
    const c = team(aliceRole);
    const user = start();
    await user.click(await item(/^Team/));
    await user.click(screen.getByRole("button", { name: "Group settings" }));
    return { c, user, panel: screen.getByRole("region", { name: "Group settings" }) };
  }

  it("lets the owner rename, add, promote, demote and remove", async () => {
    const { c, user, panel } = await openSettings("owner");
    const name = within(panel).getByLabelText("Group name");
    await user.clear(name);
    await user.type(name, "Core team");
    await user.click(within(panel).getByRole("button", { name: "Rename" }));
    await screen.findByRole("heading", { name: "Core team", level: 2 });
    expect(gw.requests.find((r) => r.method === "PATCH")?.body).toEqual({ name: "Core team" });

    await user.type(within(panel).getByLabelText("User id to add"), "dave");
    await user.click(within(panel).getByRole("button", { name: "Add to group" }));
    await waitFor(() => expect(panel.querySelector('li[data-user-id="dave"]')).toBeTruthy());
    expect(gw.requests.find((r) => r.path.endsWith("/members") && r.method === "POST")?.body).toEqual({
      members: [{ userId: "dave", displayName: "dave" }],
    });

    await user.click(within(panel).getByRole("button", { name: "Make Bob an admin" }));
    await within(panel).findByRole("button", { name: "Make Bob a member" });
    expect(panel.querySelector('li[data-user-id="bob"]')?.getAttribute("data-role")).toBe("admin");
    await user.click(within(panel).getByRole("button", { name: "Make Bob a member" }));
    await within(panel).findByRole("button", { name: "Make Bob an admin" });

    await user.click(within(panel).getByRole("button", { name: "Remove Carol" }));
    await waitFor(() => expect(panel.querySelector('li[data-user-id="carol"]')).toBeNull());
    expect(gw.requests.some((r) => r.method === "DELETE" && r.path === `/conversations/${c.id}/members/carol`)).toBe(true);
    // No role change or removal offered on the owner themself.
    expect(within(panel).queryByRole("button", { name: /Alice/ })).toBeNull();
  });

  it("gives an admin rename, add and removal of members but not of the owner, nor roles", async () => {
    const { panel } = await openSettings("admin");
    expect(within(panel).getByLabelText("Group name")).toBeTruthy();
    expect(within(panel).getByRole("button", { name: "Remove Carol" })).toBeTruthy();
    expect(within(panel).queryByRole("button", { name: "Remove Bob" })).toBeNull(); // Bob owns it
    expect(within(panel).queryByRole("button", { name: /^Make / })).toBeNull();
  });

  it("gives a member only leaving, and leaving closes the conversation", async () => {
    const { c, user, panel } = await openSettings("member");
    expect(within(panel).queryByLabelText("Group name")).toBeNull();
    expect(within(panel).queryByLabelText("User id to add")).toBeNull();
    expect(within(panel).queryByRole("button", { name: /^Remove / })).toBeNull();
    await user.click(within(panel).getByRole("button", { name: "Leave group" }));
    await user.click(within(panel).getByRole("button", { name: "Leave" }));
    expect((await screen.findByRole("alert")).textContent).toContain("You left “Team”.");
    expect(gw.requests.some((r) => r.method === "DELETE" && r.path === `/conversations/${c.id}/members/alice`)).toBe(true);
    expect(screen.queryByRole("button", { name: /^Team/ })).toBeNull();
  });

  it("shows the server's refusal", async () => {
    const { c, user, panel } = await openSettings("admin");
    // Demoted on the server meanwhile: the rename is refused there.
    c.members.find((m) => m.userId === "alice")!.role = "member";
    await user.type(within(panel).getByLabelText("Group name"), " 2");
    await user.click(within(panel).getByRole("button", { name: "Rename" }));
    expect((await within(panel).findByRole("alert")).textContent).toBe("Only an owner or admin may rename");
  });
});
