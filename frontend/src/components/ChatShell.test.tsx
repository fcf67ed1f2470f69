import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { Api } from "../api";
import { FakeGateway, FakeSocket } from "../test/fakes";
import { live } from "../test/live";
import { alice, bob, signedInAsAlice, startApp } from "../test/harness";
import type { Message } from "../types";
import { App } from "./App";

vi.mock("../realtime", () => import("../test/live"));

let gw: FakeGateway;

beforeEach(() => {
  gw = new FakeGateway();
  live.socket = new FakeSocket();
  signedInAsAlice();
});

const start = () => startApp(gw);

async function openWithBob(user: ReturnType<typeof userEvent.setup>) {
  const c = gw.addConversation([alice, bob]);
  start();
  await user.click(await screen.findByRole("button", { name: /^Bob/ }));
  await screen.findByRole("heading", { name: "Bob", level: 2 });
  return c;
}

describe("chat", () => {
  it("shows the empty list, then starts a one-to-one conversation", async () => {
    const user = start();
    expect(await screen.findByText(/No conversations yet/)).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "New conversation" }));
    await user.type(screen.getByLabelText("User id"), "bob");
    await user.type(screen.getByLabelText("Display name (optional)"), "Bob");
    await user.click(screen.getByRole("button", { name: "Start conversation" }));
    expect(await screen.findByRole("heading", { name: "Bob", level: 2 })).toBeTruthy();
    expect(await screen.findByText(/Say hello/)).toBeTruthy();
    const created = gw.requests.find((r) => r.method === "POST" && r.path === "/conversations");
    expect(created?.body).toEqual({ type: "one_to_one", members: [alice, bob] });
    expect(location.pathname).toBe(`/c/${gw.conversations[0].id}`);
  });

  it("refuses a member that is the user themself before asking the server", async () => {
    const user = start();
    await user.click(await screen.findByRole("button", { name: "New conversation" }));
    await user.type(screen.getByLabelText("User id"), "alice");
    await user.click(screen.getByRole("button", { name: "Start conversation" }));
    expect((await screen.findByRole("alert")).textContent).toMatch(/someone else/);
    expect(gw.requests.some((r) => r.method === "POST")).toBe(false);
  });

  it("shows a send at once, then confirmed, and live messages from others", async () => {
    const user = userEvent.setup();
    const c = await openWithBob(user);
    gw.hold = (path, method) => method === "POST" && path.endsWith("/messages");
    await user.type(screen.getByLabelText("Message Bob"), "Hello Bob{Enter}");
    const mine = await screen.findByText("Hello Bob");
    expect(mine.closest("li")?.dataset.delivery).toBe("pending");
    expect(screen.getByText("Sending…")).toBeTruthy();
    await act(async () => gw.release());
    await waitFor(() => expect(screen.getByText("Hello Bob").closest("li")?.dataset.delivery).toBe("sent"));
    const sent = gw.requests.find((r) => r.method === "POST" && r.path.endsWith("/messages"));
    expect(sent?.body.clientMessageId).toBeTruthy();

    // The live event of the same message does not show it twice.
    const stored = gw.messages[0];
    act(() => live.socket.deliver("message:created", stored));
    expect(screen.getAllByText("Hello Bob")).toHaveLength(1);

    const reply = gw.addMessage(c.id, "bob", "Hi Alice");
    act(() => live.socket.deliver("message:created", reply));
    expect(await screen.findByText("Hi Alice")).toBeTruthy();
    expect(screen.getByText("New message from Bob: Hi Alice")).toBeTruthy();
    const list = screen.getByRole("list", { name: "Your conversations" });
    expect(within(list).getByText("Bob: Hi Alice")).toBeTruthy();
  });

  it("keeps a failed send with a retry that reuses its clientMessageId", async () => {
    const user = userEvent.setup();
    await openWithBob(user);
    gw.failNext = 1;
    await user.type(screen.getByLabelText("Message Bob"), "Are you there?{Enter}");
    expect(await screen.findByText(/Not sent/)).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Retry" }));
    await waitFor(() => expect(screen.getByText("Are you there?").closest("li")?.dataset.delivery).toBe("sent"));
    const posts = gw.requests.filter((r) => r.method === "POST" && r.path.endsWith("/messages"));
    expect(posts).toHaveLength(2);
    expect(posts[0].body.clientMessageId).toBe(posts[1].body.clientMessageId);
    expect(gw.messages).toHaveLength(1);
  });

  it("edits and deletes the user's own messages, and follows others' edits and deletes", async () => {
    const user = userEvent.setup();
    const c = gw.addConversation([alice, bob]);
    gw.addMessage(c.id, "alice", "tpyo");
    const theirs = gw.addMessage(c.id, "bob", "from bob");
    start();
    await user.click(await screen.findByRole("button", { name: /^Bob/ }));
    await screen.findByText("tpyo");
    // Only the author gets edit and delete.
    expect(screen.getAllByRole("button", { name: "Edit message" })).toHaveLength(1);

    await user.click(screen.getByRole("button", { name: "Edit message" }));
    const box = screen.getByLabelText("Edit message");
    await user.clear(box);
    await user.type(box, "typo fixed{Enter}");
    expect(await screen.findByText("typo fixed")).toBeTruthy();
    await waitFor(() => expect(screen.getByText("(edited)")).toBeTruthy());
    expect(gw.messages[0].body).toBe("typo fixed");

    await user.click(screen.getByRole("button", { name: "Delete message" }));
    await user.click(screen.getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(screen.queryByText("typo fixed")).toBeNull());
    expect(gw.requests.some((r) => r.method === "DELETE")).toBe(true);

    act(() => live.socket.deliver("message:updated", { ...theirs, body: "bob edited", editedAt: new Date().toISOString() }));
    expect(await screen.findByText("bob edited")).toBeTruthy();
    act(() => live.socket.deliver("message:deleted", theirs));
    await waitFor(() => expect(screen.queryByText("bob edited")).toBeNull());
    expect(await screen.findByText(/Say hello/)).toBeTruthy();
  });

  it("shows who is typing and who is online, and says when it is typing", async () => {
    const user = userEvent.setup();
    const c = await openWithBob(user);
    act(() => live.socket.deliver("typing:update", { conversationId: c.id, userId: "bob", displayName: "Bob", isTyping: true }));
    expect(screen.getByTestId("typing").textContent).toBe("Bob is typing…");
    act(() => live.socket.deliver("typing:update", { conversationId: c.id, userId: "bob", displayName: "Bob", isTyping: false }));
    expect(screen.getByTestId("typing").textContent).toBe("");

    const members = screen.getByRole("list", { name: "Members" });
    expect(within(members).getByText("Bob").closest("li")?.dataset.online).toBe("false");
    act(() => live.socket.deliver("presence:update", [alice, bob]));
    expect(within(members).getByText("Bob").closest("li")?.dataset.online).toBe("true");

    await user.type(screen.getByLabelText("Message Bob"), "x");
    expect(live.socket.sent).toContainEqual({
      event: "typing:update",
      data: { conversationId: c.id, userId: "alice", displayName: "Alice", isTyping: true },
    });
  });

  it("pages older history and keeps the start of the conversation in sight", async () => {
    const user = userEvent.setup();
    const c = gw.addConversation([alice, bob]);
    for (let i = 1; i <= 120; i++) gw.addMessage(c.id, "bob", `history ${i}`);
    start();
    await user.click(await screen.findByRole("button", { name: /^Bob/ }));
    await screen.findByText("history 120");
    expect(screen.queryByText("history 70")).toBeNull();
    await user.click(screen.getByRole("button", { name: "Load older messages" }));
    await screen.findByText("history 21");
    await user.click(screen.getByRole("button", { name: "Load older messages" }));
    await screen.findByText("history 1");
    expect(screen.getByText("Start of the conversation")).toBeTruthy();
    expect(screen.getAllByRole("listitem").filter((li) => li.classList.contains("message"))).toHaveLength(120);
    const pages = gw.requests.filter((r) => r.path.includes("/messages?"));
    expect(pages.map((r) => r.path.replace(/.*\?/, ""))).toEqual([
      "limit=50",
      `limit=50&before=${gw.messages[70].id}`,
      `limit=50&before=${gw.messages[20].id}`,
    ]);
  });

  it("shows a lost connection and fetches what was missed on reconnecting", async () => {
    const user = userEvent.setup();
    const c = gw.addConversation([alice, bob]);
    gw.addMessage(c.id, "bob", "before the outage");
    start();
    await user.click(await screen.findByRole("button", { name: /^Bob/ }));
    await screen.findByText("before the outage");
    act(() => live.hooks.onState("reconnecting"));
    expect(screen.getByText(/Connection lost/)).toBeTruthy();
    expect((screen.getByRole("button", { name: "Video call" }) as HTMLButtonElement).disabled).toBe(true);
    const missed: Message = gw.addMessage(c.id, "bob", "sent while you were away");
    act(() => {
      live.hooks.onState("online");
      live.hooks.onReconnect(false);
    });
    expect(await screen.findByText("sent while you were away")).toBeTruthy();
    expect(screen.queryByText(/Connection lost/)).toBeNull();
    expect(gw.requests.some((r) => r.path.endsWith(`after=${gw.messages[0].id}`))).toBe(true);
    expect(screen.getAllByText("sent while you were away")).toHaveLength(1);
    expect(missed.id).toBeTruthy();
  });

  it("after a recovered reconnect re-reads nothing over HTTP, and still retries a failed send", async () => {
    const user = userEvent.setup();
    const c = gw.addConversation([alice, bob]);
    gw.addMessage(c.id, "bob", "before the outage");
    start();
    await user.click(await screen.findByRole("button", { name: /^Bob/ }));
    await screen.findByText("before the outage");
    act(() => live.hooks.onState("reconnecting"));
    gw.failNext = 1;
    await user.type(screen.getByLabelText("Message Bob"), "sent while offline{Enter}");
    expect(await screen.findByText(/Not sent/)).toBeTruthy();
    const missed = gw.addMessage(c.id, "bob", "sent while you were away");
    const before = gw.requests.length;
    act(() => {
      live.hooks.onState("online");
      live.hooks.onReconnect(true);
      // The server's replay, on the socket.
      live.socket.deliver("message:created", missed);
    });
    expect(await screen.findByText("sent while you were away")).toBeTruthy();
    await waitFor(() =>
      expect(screen.getByText("sent while offline").closest("li")?.dataset.delivery).toBe("sent"),
    );
    const reads = gw.requests.slice(before).filter((r) => r.method === "GET");
    expect(reads.map((r) => r.path)).toEqual([]);
    expect(screen.getAllByText("sent while you were away")).toHaveLength(1);
  });

  it("signs out when the server refuses the token", async () => {
    gw.identity = true;
    const api = new Api("", gw.fetch);
    render(<App config={{ apiUrl: "", iceServers: [] }} api={api} />);
    await screen.findByText(/No conversations yet/);
    act(() => api.onUnauthorized?.());
    expect(await screen.findByText(/session has ended/)).toBeTruthy();
    expect(localStorage.getItem("chat.session")).toBeNull();
  });
});
