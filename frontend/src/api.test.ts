import { describe, expect, it, vi } from "vitest";
import { Api, ApiError, NetworkError, describeError, nextLink } from "./api";
import { loadConfig } from "./config";

function reply(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

describe("Api", () => {
  it("sends the bearer token and JSON, and reads the Link header for paging", async () => {
    const fetch = vi.fn(async () => reply(200, [], { Link: '</conversations/c/messages?before=x>; rel="prev"' }));
    const api = new Api("http://gw", fetch as unknown as typeof globalThis.fetch);
    api.token = "t0k";
    const page = await api.messages("c 1", { limit: 50, before: "m9" });
    expect(page.hasOlder).toBe(true);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("http://gw/conversations/c%201/messages?limit=50&before=m9");
    expect((init.headers as Record<string, string>).Authorization).toBe("Bearer t0k");
  });

  it("follows the listing's Link rel=\"next\" on the gateway, whatever host it names", async () => {
    expect(nextLink('<http://chat:3001/conversations/user/a?limit=100&cursor=x>; rel="next"')).toBe(
      "/conversations/user/a?limit=100&cursor=x",
    );
    expect(nextLink('</c?before=1>; rel="prev", </c?cursor=2>; rel=next')).toBe("/c?cursor=2");
    expect(nextLink('</c?before=1>; rel="prev"')).toBeUndefined();
    expect(nextLink(null)).toBeUndefined();
    const fetch = vi.fn(async () => reply(200, [], { Link: '</conversations/user/a?cursor=z>; rel="next"' }));
    const api = new Api("http://gw", fetch as unknown as typeof globalThis.fetch);
    const page = await api.conversations("a", { limit: 100 });
    expect(page.next).toBe("/conversations/user/a?cursor=z");
    await api.conversations("a", { next: page.next });
    expect(fetch.mock.calls.map((c) => (c as unknown as [string])[0])).toEqual([
      "http://gw/conversations/user/a?limit=100",
      "http://gw/conversations/user/a?cursor=z",
    ]);
  });

  it("turns the contract's error body into an ApiError", async () => {
    const api = new Api("", (async () =>
      reply(404, { statusCode: 404, error: "Not Found", message: "cannot /auth/login: no such route" })) as typeof fetch);
    const err = await api.login("u", "p").catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(404);
    expect(err.isMissingRoute).toBe(true);
  });

  it("reports a refused token once, and network failures as such", async () => {
    const onUnauthorized = vi.fn();
    const api = new Api("", (async () => reply(401, { statusCode: 401, error: "Unauthorized", message: "bad token" })) as typeof fetch);
    api.token = "old";
    api.onUnauthorized = onUnauthorized;
    await expect(api.me()).rejects.toBeInstanceOf(ApiError);
    expect(onUnauthorized).toHaveBeenCalledTimes(1);

    const down = new Api("", (async () => {
      throw new TypeError("Failed to fetch");
    }) as typeof fetch);
    const err = await down.me().catch((e) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect(describeError(err)).toMatch(/could not be reached/);
    expect(describeError(new ApiError(429, "slow down", 3))).toMatch(/3 seconds/);
  });
});

describe("config", () => {
  it("reads the gateway address, trimming a trailing slash; empty means same origin", async () => {
    const cfg = await loadConfig((async () =>
      reply(200, {
        apiUrl: "http://gw:3000/",
        iceServers: [{ urls: ["stun:s"] }, { urls: ["turn:t"], username: "u", credential: "c" }, { urls: 7 }, "junk"],
      })) as typeof fetch);
    expect(cfg.apiUrl).toBe("http://gw:3000");
    expect(cfg.iceServers).toEqual([{ urls: ["stun:s"] }, { urls: ["turn:t"], username: "u", credential: "c" }]);
    expect((await loadConfig((async () => reply(200, { apiUrl: "" })) as typeof fetch)).apiUrl).toBe("");
    await expect(loadConfig((async () => reply(200, { apiUrl: "javascript:alert(1)" })) as typeof fetch)).rejects.toThrow(
      /invalid/,
    );
    await expect(loadConfig((async () => reply(500, {})) as typeof fetch)).rejects.toThrow(/HTTP 500/);
  });
});

describe("Api: replies, reactions, search", () => {
  const calls = () => {
    const fetch = vi.fn(async () => reply(200, []));
    return { fetch, api: new Api("http://gw", fetch as unknown as typeof globalThis.fetch) };
  };
  const sent = (fetch: ReturnType<typeof vi.fn>, i = 0) => {
    const [url, init] = fetch.mock.calls[i] as unknown as [string, RequestInit];
    return { url, method: init.method, body: init.body ? JSON.parse(String(init.body)) : undefined };
  };

  it("sends replyToId only for a reply", async () => {
    const { fetch, api } = calls();
    await api.sendMessage("c1", "alice", "yes", "cm1", "m7");
    await api.sendMessage("c1", "alice", "plain", "cm2");
    expect(sent(fetch, 0).body).toEqual({ senderId: "alice", body: "yes", clientMessageId: "cm1", replyToId: "m7" });
    expect(sent(fetch, 1).body).toEqual({ senderId: "alice", body: "plain", clientMessageId: "cm2" });
  });

  it("puts and deletes a reaction with the emoji percent-encoded", async () => {
    const { fetch, api } = calls();
    await api.react("c1", "m1", "👍", true);
    await api.react("c1", "m1", "❤️", false);
    expect(sent(fetch, 0)).toMatchObject({ method: "PUT", url: "http://gw/conversations/c1/messages/m1/reactions/%F0%9F%91%8D" });
    expect(sent(fetch, 1)).toMatchObject({ method: "DELETE", url: "http://gw/conversations/c1/messages/m1/reactions/%E2%9D%A4%EF%B8%8F" });
    expect(sent(fetch, 0).body).toBeUndefined();
  });

  it("searches with q, conversationId, before and limit encoded", async () => {
    const { fetch, api } = calls();
    await api.search('café "a b" & more');
    await api.search("x", { conversationId: "c 1", before: "m9", limit: 20 });
    expect(sent(fetch, 0).url).toBe("http://gw/search/messages?q=caf%C3%A9+%22a+b%22+%26+more");
    expect(sent(fetch, 1).url).toBe("http://gw/search/messages?q=x&conversationId=c+1&before=m9&limit=20");
  });
});
