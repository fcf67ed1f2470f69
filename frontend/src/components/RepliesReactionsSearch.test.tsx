import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { FakeGateway, FakeSocket } from "../test/fakes";
import { live } from "../test/live";
import { saveSession } from "../session";
import { alice, bob, signedInAsAlice, startApp } from "../test/harness";

vi.mock("../realtime", () => import("../test/live"));

let gw: FakeGateway;

beforeEach(() => {
  gw = new FakeGateway();
  live.socket = new FakeSocket();
  signedInAsAlice();
});

const item = (text: string) => screen.getByText(text, { selector: "p.body" }).closest("li") as HTMLElement;

async function openWithBob(user: ReturnType<typeof userEvent.setup>) {
  await user.click(await screen.findByRole("button", { name: /^Bob/ }));
  await screen.findByRole("heading", { name: "Bob", level: 2 });
}

describe("replies", () => {
  it("quotes the message in the composer, sends replyToId, shows the quote, and cancels", async () => {
    const c = gw.addConversation([alice, bob]);
    gw.addMessage(c.id, "bob", "Lunch at noon?");
    const user = startApp(gw);
    await openWithBob(user);
    await screen.findByText("Lunch at noon?");

    await user.click(within(item("Lunch at noon?")).getByRole("button", { name: "Reply to message" }));
    expect(screen.getByTestId("replying-to").textContent).toMatch(/Replying to Bob: Lunch at noon\?/);
    // The cursor is in the box: typing answers.
    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("replying-to")).toBeNull();

    await user.click(within(item("Lunch at noon?")).getByRole("button", { name: "Reply to message" }));
    await user.keyboard("Yes!{Enter}");
    expect(screen.queryByTestId("replying-to")).toBeNull();
    const post = gw.requests.find((r) => r.method === "POST" && r.path.endsWith("/messages"));
    expect(post?.body.replyToId).toBe(gw.messages[0].id);
    await waitFor(() => expect(item("Yes!").dataset.delivery).toBe("sent"));
    const quote = within(item("Yes!")).getByRole("button", { name: /Reply to Bob: Lunch at noon\?/ });
    expect(quote.textContent).toBe("BobLunch at noon?");
  });

  it("updates quotes when the original is edited or deleted", async () => {
    const c = gw.addConversation([alice, bob]);
    const original = gw.addMessage(c.id, "bob", "first draft");
    gw.addMessage(c.id, "alice", "my answer", undefined, original.id);
    const user = startApp(gw);
    await openWithBob(user);
    await screen.findByText("my answer");
    expect(within(item("my answer")).getByRole("button", { name: /first draft/ })).toBeTruthy();

    act(() => live.socket.deliver("message:updated", { ...original, body: "final text", editedAt: new Date().toISOString() }));
    expect(within(item("my answer")).getByRole("button", { name: /final text/ })).toBeTruthy();

    act(() => live.socket.deliver("message:deleted", original));
    await waitFor(() => expect(screen.queryByText("final text", { selector: "p.body" })).toBeNull());
    expect(within(item("my answer")).getByText("Original message deleted")).toBeTruthy();
    expect(within(item("my answer")).queryByRole("button", { name: /Go to the original/ })).toBeNull();
  });

  it("a click on the quote loads older pages until the original is there, and highlights it", async () => {
    const c = gw.addConversation([alice, bob]);
    const original = gw.addMessage(c.id, "bob", "the very first message");
    for (let i = 1; i <= 260; i++) gw.addMessage(c.id, "bob", `filler ${i}`);
    gw.addMessage(c.id, "alice", "about that first one", undefined, original.id);
    const user = startApp(gw);
    await openWithBob(user);
    await screen.findByText("about that first one");
    expect(screen.queryByText("the very first message", { selector: "p.body" })).toBeNull();
    await user.click(within(item("about that first one")).getByRole("button", { name: /Go to the original/ }));
    await waitFor(() => expect(item("the very first message").dataset.highlighted).toBe("true"));
    const pages = gw.requests.filter((r) => r.path.includes("/messages?")).map((r) => r.path.replace(/.*\?/, ""));
    // The newest 50, then older pages of 200 until the original is in.
    expect(pages).toEqual(["limit=50", `limit=200&before=${gw.messages[212].id}`, `limit=200&before=${gw.messages[12].id}`]);
    expect(screen.getByText("Start of the conversation")).toBeTruthy();
  });
  it("a jump is shown once: reopening the conversation does not jump again", async () => {
    const c = gw.addConversation([alice, bob]);
    const d = gw.addConversation([alice, { userId: "cat", displayName: "Cat" }]);
    gw.addMessage(d.id, "cat", "elsewhere");
    const original = gw.addMessage(c.id, "bob", "original");
    gw.addMessage(c.id, "alice", "the reply", undefined, original.id);
    const user = startApp(gw);
    await openWithBob(user);
    await user.click(within(await screen.findByText("the reply", { selector: "p.body" }).then((p) => p.closest("li") as HTMLElement)).getByRole("button", { name: /Go to the original/ }));
    await waitFor(() => expect(item("original").dataset.highlighted).toBe("true"));
    await user.click(screen.getByRole("button", { name: /^Cat/ }));
    await screen.findByText("elsewhere");
    await user.click(screen.getByRole("button", { name: /^Bob/ }));
    await screen.findByText("original", { selector: "p.body" });
    expect(item("original").dataset.highlighted).toBeUndefined();
  });

  it("says so when the original was deleted before the click, its event missed", async () => {
    const c = gw.addConversation([alice, bob]);
    const original = gw.addMessage(c.id, "bob", "will go");
    for (let i = 1; i <= 60; i++) gw.addMessage(c.id, "bob", `filler ${i}`);
    gw.addMessage(c.id, "alice", "the reply", undefined, original.id);
    const user = startApp(gw);
    await openWithBob(user);
    await screen.findByText("the reply", { selector: "p.body" });
    gw.messages = gw.messages.filter((m) => m.id !== original.id);
    await user.click(within(item("the reply")).getByRole("button", { name: /Go to the original/ }));
    expect((await screen.findByRole("alert")).textContent).toMatch(/That message is no longer available/);
    expect(screen.getByText("filler 1", { selector: "p.body" })).toBeTruthy();
    expect(within(item("the reply")).getByText("Original message deleted")).toBeTruthy();
  });
});

describe("reactions", () => {
  it("adds and removes the user's reaction from the picker and the chip, and shows others' live", async () => {
    const c = gw.addConversation([alice, bob]);
    const m = gw.addMessage(c.id, "bob", "ship it");
    const user = startApp(gw);
    await openWithBob(user);
    await screen.findByText("ship it");

    await user.click(within(item("ship it")).getByRole("button", { name: "Add reaction" }));
    await user.click(within(item("ship it")).getByRole("button", { name: "React with 🎉" }));
    const chip = () => within(item("ship it")).getByRole("button", { name: /^🎉 / });
    expect(chip().getAttribute("aria-pressed")).toBe("true");
    expect(chip().dataset.count).toBe("1");
    expect(chip().title).toBe("You reacted with 🎉");
    const put = gw.requests.find((r) => r.method === "PUT");
    expect(put?.path).toBe(`/conversations/${c.id}/messages/${m.id}/reactions/${encodeURIComponent("🎉")}`);

    // Bob's reaction arrives as the whole message.
    gw.caller = "bob";
    await gw.fetch(`/conversations/${c.id}/messages/${m.id}/reactions/${encodeURIComponent("🎉")}`, { method: "PUT" });
    await gw.fetch(`/conversations/${c.id}/messages/${m.id}/reactions/${encodeURIComponent("👍")}`, { method: "PUT" });
    gw.caller = "alice";
    act(() => live.socket.deliver("message:updated", gw.hydrate(gw.messages[0])));
    expect(chip().dataset.count).toBe("2");
    expect(chip().title).toBe("You and Bob reacted with 🎉");
    const thumbs = within(item("ship it")).getByRole("button", { name: /^👍 / });
    expect(thumbs.getAttribute("aria-pressed")).toBe("false");
    expect(thumbs.title).toBe("Bob reacted with 👍");

    // A click on my chip takes mine back.
    await user.click(chip());
    await waitFor(() => expect(chip().dataset.count).toBe("1"));
    expect(chip().getAttribute("aria-pressed")).toBe("false");
    expect(gw.requests.filter((r) => r.method === "DELETE").map((r) => r.path)).toHaveLength(1);
    expect(gw.messages[0].reactions?.map((r) => [r.emoji, r.userIds])).toEqual([
      ["🎉", ["bob"]],
      ["👍", ["bob"]],
    ]);
  });

  it("sends quick clicks on one chip in click order; the last click stays", async () => {
    const c = gw.addConversation([alice, bob]);
    gw.addMessage(c.id, "bob", "ship it");
    gw.messages[0].reactions = [{ emoji: "👍", count: 1, userIds: ["bob"] }];
    const user = startApp(gw);
    await openWithBob(user);
    await screen.findByText("ship it", { selector: "p.body" });
    gw.hold = (path) => path.includes("/reactions/");
    const chip = () => within(item("ship it")).getByRole("button", { name: /^👍 / });
    await user.click(chip());
    await user.click(chip());
    await user.click(chip());
    expect(chip().dataset.count).toBe("2");
    // One request at a time: the second waits for the first's answer.
    const sent = () => gw.requests.filter((r) => r.path.includes("/reactions/")).map((r) => r.method);
    expect(sent()).toEqual(["PUT"]);
    for (let i = 0; i < 3; i++) {
      await act(async () => gw.release());
      await waitFor(() => expect(sent().length).toBe(Math.min(i + 2, 3)));
    }
    expect(sent()).toEqual(["PUT", "DELETE", "PUT"]);
    await waitFor(() => expect(gw.messages[0].reactions?.[0].userIds).toEqual(["bob", "alice"]));
    expect(chip().dataset.count).toBe("2");
    expect(chip().getAttribute("aria-pressed")).toBe("true");
  });

  it("undoes a toggle the server refused and says why", async () => {
    const c = gw.addConversation([alice, bob]);
    gw.addMessage(c.id, "bob", "ship it");
    const user = startApp(gw);
    await openWithBob(user);
    await screen.findByText("ship it");
    gw.failNext = 1;
    await user.click(within(item("ship it")).getByRole("button", { name: "Add reaction" }));
    await user.click(within(item("ship it")).getByRole("button", { name: "React with 👍" }));
    expect(await screen.findByRole("alert")).toBeTruthy();
    expect(within(item("ship it")).queryByRole("button", { name: /^👍 / })).toBeNull();
  });
});

describe("search", () => {
  it("finds messages accent-insensitively, pages with More, and opens one highlighted", async () => {
    const c = gw.addConversation([alice, bob]);
    const other = gw.addConversation([alice, { userId: "cat", displayName: "Cat" }], { type: "group", name: "Team" });
    gw.addMessage(other.id, "cat", "Meet at the Café at 9");
    for (let i = 1; i <= 24; i++) gw.addMessage(c.id, "bob", `cafe round ${i}`);
    for (let i = 1; i <= 80; i++) gw.addMessage(c.id, "bob", `later ${i}`);
    const user = startApp(gw);
    await screen.findByRole("button", { name: /^Bob/ });

    await user.type(screen.getByRole("searchbox", { name: "Search messages" }), "cafe");
    const results = await screen.findByRole("list", { name: "Messages found" });
    await waitFor(() => expect(within(results).getAllByRole("button")).toHaveLength(20));
    const first = within(results).getAllByRole("button")[0];
    expect(first.textContent).toMatch(/^Bob in Bob/);
    expect(within(first).getByText("cafe", { selector: "mark" })).toBeTruthy();
    expect(screen.queryByRole("list", { name: "Your conversations" })).toBeNull();

    await user.click(screen.getByRole("button", { name: "More results" }));
    await waitFor(() => expect(within(results).getAllByRole("button")).toHaveLength(25));
    const last = within(results).getAllByRole("button")[24];
    expect(last.textContent).toMatch(/^Cat in Team/);
    expect(within(last).getByText("Café", { selector: "mark" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "More results" })).toBeNull();

    // Round 3 is older than the newest page of 50: opening it pages back to it.
    await user.click(within(results).getAllByRole("button").find((b) => /cafe round 3$/.test(b.textContent ?? ""))!);
    await screen.findByRole("heading", { name: "Bob", level: 2 });
    await waitFor(() => expect(item("cafe round 3").dataset.highlighted).toBe("true"));
    expect(location.pathname).toBe(`/c/${c.id}`);

    await user.click(screen.getByRole("button", { name: "Clear search" }));
    expect(screen.getByRole("list", { name: "Your conversations" })).toBeTruthy();
  });

  it("asks for a word when the query only excludes", async () => {
    gw.addConversation([alice, bob]);
    const user = startApp(gw);
    await screen.findByRole("button", { name: /^Bob/ });
    await user.type(screen.getByRole("searchbox", { name: "Search messages" }), "-draft");
    expect(await screen.findByText(/Type a word to look for/)).toBeTruthy();
    await new Promise((r) => setTimeout(r, 400));
    expect(gw.requests.some((r) => r.path.startsWith("/search"))).toBe(false);
  });
});

describe("without a token (a server without accounts)", () => {
  it("offers replies but neither reacting nor search, which need a signed-in caller", async () => {
    saveSession({ mode: "open", user: alice });
    const c = gw.addConversation([alice, bob]);
    gw.addMessage(c.id, "bob", "hello");
    gw.messages[0].reactions = [{ emoji: "👍", count: 1, userIds: ["bob"] }];
    const user = startApp(gw);
    await openWithBob(user);
    await screen.findByText("hello", { selector: "p.body" });
    expect(within(item("hello")).getByRole("button", { name: "Reply to message" })).toBeTruthy();
    expect(within(item("hello")).queryByRole("button", { name: "Add reaction" })).toBeNull();
    expect((within(item("hello")).getByRole("button", { name: /^👍 1/ }) as HTMLButtonElement).disabled).toBe(true);
    expect(screen.queryByRole("searchbox", { name: "Search messages" })).toBeNull();
  });
});
