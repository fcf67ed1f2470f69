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
