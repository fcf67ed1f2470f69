import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Api } from "../api";
import { FakeGateway } from "../test/fakes";
import type { Message } from "../types";
import { SEARCH_PAGE, SearchController, appendResults, fold, queryWords, searchable, snippet } from "./search";

const text = (segs: { text: string; mark: boolean }[]) => segs.map((s) => (s.mark ? `[${s.text}]` : s.text)).join("");

describe("search text", () => {
  it("folds case and accents as the server does", () => {
    expect(fold("Café ÉTÉ Ångström")).toBe("cafe ete angstrom");
  });

  it("reads the words of a websearch query: phrases count, -words and or do not", () => {
    expect(queryWords('Café "launch plan" -draft or budget')).toEqual(["launch", "plan", "cafe", "budget"]);
    expect(queryWords("-only -excluded")).toEqual([]);
    expect(searchable("-only")).toBe(false);
    expect(searchable("   ")).toBe(false);
    expect(searchable("x".repeat(257))).toBe(false);
    expect(searchable("cafe")).toBe(true);
  });

  it("marks whole words whatever their accents and case", () => {
    expect(text(snippet("Meet at the Café, not the cafeteria. CAFE!", ["cafe"]))).toBe(
      "Meet at the [Café], not the cafeteria. [CAFE]!",
    );
  });

  it("cuts a long body around the first match with ellipses", () => {
    const body = `${"a ".repeat(200)}needle ${"b ".repeat(200)}`;
    const out = text(snippet(body, ["needle"], 60));
    expect(out).toMatch(/^….*\[needle\].*…$/);
    expect(out.replace(/[[\]…]/g, "").length).toBe(60);
    // No match (the server matched a form the UI does not know): the start, cut.
    expect(text(snippet(body, ["zzz"], 10))).toBe("a a a a a …");
  });

  it("appends a page without repeating a result", () => {
    const m = (id: string): Message => ({
      id,
      conversationId: "c",
      senderId: "a",
      body: "",
      sentAt: "",
      editedAt: null,
      replyTo: null,
      reactions: [],
      attachments: [],
    });
    expect(appendResults([m("3"), m("2")], [m("2"), m("1")]).map((x) => x.id)).toEqual(["3", "2", "1"]);
  });
});

describe("SearchController", () => {
  let gw: FakeGateway;
  let search: SearchController;
  beforeEach(() => {
    vi.useFakeTimers();
    gw = new FakeGateway();
    const c = gw.addConversation([
      { userId: "alice", displayName: "Alice" },
      { userId: "bob", displayName: "Bob" },
    ]);
    for (let i = 1; i <= 45; i++) gw.addMessage(c.id, "bob", `café number ${i}`);
    gw.addMessage(c.id, "bob", "something else");
    search = new SearchController(new Api("", gw.fetch), 300);
  });
  afterEach(() => {
    search.dispose();
    vi.useRealTimers();
  });
  const searches = () => gw.requests.filter((r) => r.path.startsWith("/search/messages")).map((r) => r.path);

  it("waits for typing to pause, then pages with before while an older page exists", async () => {
    search.setQuery("c");
    search.setQuery("ca");
    search.setQuery("cafe");
    expect(searches()).toEqual([]);
    await vi.advanceTimersByTimeAsync(300);
    expect(searches()).toEqual([`/search/messages?q=cafe&limit=${SEARCH_PAGE + 1}`]);
    let s = search.store.get();
    expect(s.results.map((m) => m.body)[0]).toBe("café number 45");
    expect(s.results).toHaveLength(20);
    expect(s.hasMore).toBe(true);
    await search.more();
    s = search.store.get();
    expect(searches()[1]).toBe(`/search/messages?q=cafe&before=${s.results[19].id}&limit=21`);
    expect(s.results).toHaveLength(40);
    await search.more();
    s = search.store.get();
    expect(s.results).toHaveLength(45);
    expect(s.results[44].body).toBe("café number 1");
    // The third page held the last 5: no fourth request, nothing more offered.
    expect(s.hasMore).toBe(false);
    await search.more();
    expect(searches()).toHaveLength(3);
  });

  it("drops the answer of a query typed over, and sends nothing for an excluded-only query", async () => {
    gw.hold = (path) => path.startsWith("/search");
    search.setQuery("number");
    await vi.advanceTimersByTimeAsync(300);
    search.setQuery("-number");
    gw.release();
    await vi.advanceTimersByTimeAsync(300);
    expect(searches()).toHaveLength(1);
    expect(search.store.get()).toMatchObject({ query: "-number", results: [], loading: false });
  });

  it("narrows to one conversation and widens again, searching anew each time", async () => {
    search.setQuery("number");
    await vi.advanceTimersByTimeAsync(300);
    search.setScope(gw.conversations[0].id);
    expect(search.store.get().results).toEqual([]);
    await vi.advanceTimersByTimeAsync(300);
    await search.more();
    search.setScope(undefined);
    await vi.advanceTimersByTimeAsync(300);
    const c = gw.conversations[0].id;
    expect(searches()).toEqual([
      "/search/messages?q=number&limit=21",
      `/search/messages?q=number&conversationId=${c}&limit=21`,
      `/search/messages?q=number&conversationId=${c}&before=${search.store.get().results[19].id}&limit=21`,
      "/search/messages?q=number&limit=21",
    ]);
  });

  it("says why the server refused a query, and follows edits and deletes of results", async () => {
    search.setQuery("else");
    await vi.advanceTimersByTimeAsync(300);
    const [hit] = search.store.get().results;
    search.updated({ ...hit, body: "something else, edited" });
    expect(search.store.get().results[0].body).toBe("something else, edited");
    search.deleted(hit.id);
    expect(search.store.get().results).toEqual([]);
    // Only punctuation: nothing the server could look up, so nothing is asked.
    search.setQuery("¿?");
    await vi.advanceTimersByTimeAsync(300);
    expect(searches()).toHaveLength(1);
    // A refusal is shown with the server's reason.
    const refusing = new SearchController(
      new Api("", async () => new Response(JSON.stringify({ statusCode: 400, error: "Bad Request", message: "query too long" }), { status: 400 })),
      0,
    );
    refusing.setQuery("word");
    await vi.advanceTimersByTimeAsync(0);
    expect(refusing.store.get()).toMatchObject({ loading: false, error: "This search cannot be run: query too long" });
  });
});
