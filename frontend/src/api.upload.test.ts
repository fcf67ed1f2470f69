import { afterEach, describe, expect, it, vi } from "vitest";
import { Api, ApiError, NetworkError, UPLOAD_STALL_MS, describeError } from "./api";
import { FakeXhr, type XhrRequest } from "./test/fakes";

function apiWith(onSend: (req: XhrRequest) => void) {
  const fetch = vi.fn(async () => new Response(JSON.stringify({}), { status: 201, headers: { "Content-Type": "application/json" } }));
  const api = new Api("http://gw", fetch as unknown as typeof globalThis.fetch, () => new FakeXhr(onSend) as unknown as XMLHttpRequest);
  api.token = "t0k";
  return { api, fetch };
}

const pdf = () => new File([new Uint8Array(1000)], "Résumé 2026/ü.pdf", { type: "application/pdf" });

afterEach(() => {
  vi.useRealTimers();
});

describe("uploadAttachment", () => {
  it("posts the raw file with its type, its percent-encoded name and the token, and reports progress", async () => {
    let req!: XhrRequest;
    const { api } = apiWith((r) => (req = r));
    const progress: [number, number][] = [];
    const done = api.uploadAttachment(pdf(), { onProgress: (l, t) => progress.push([l, t]) });
    expect(req.method).toBe("POST");
    expect(req.url).toBe("http://gw/attachments");
    expect(req.headers["Content-Type"]).toBe("application/pdf");
    expect(req.headers["x-filename"]).toBe("R%C3%A9sum%C3%A9%202026%2F%C3%BC.pdf");
    expect(req.headers.Authorization).toBe("Bearer t0k");
    expect(req.body).toBeInstanceOf(File);
    req.progress(400, 1000);
    req.progress(1000, 1000);
    req.respond(201, { id: "a1", name: "Résumé 2026/ü.pdf", contentType: "application/pdf", size: 1000 });
    await expect(done).resolves.toEqual({ id: "a1", name: "Résumé 2026/ü.pdf", contentType: "application/pdf", size: 1000 });
    expect(progress).toEqual([
      [400, 1000],
      [1000, 1000],
    ]);
  });

  it("sends a file without a type as application/octet-stream", async () => {
    let req!: XhrRequest;
    const { api } = apiWith((r) => (req = r));
    const done = api.uploadAttachment(new File(["x"], "notes"));
    expect(req.headers["Content-Type"]).toBe("application/octet-stream");
    req.respond(201, { id: "a2", name: "notes", contentType: "application/octet-stream", size: 1 });
    await done;
  });

  it("names the limit on a 413, from the server's message or the default", async () => {
    for (const [message, shown] of [
      ["the file is larger than 26214400 bytes", "too large (max 25 MB)"],
      ["at most 10 MiB", "too large (max 10 MB)"],
      ["payload too large", "too large (max 25 MB)"],
      ["unsent uploads past 262144000 bytes in total: send or wait", "unsent uploads past 262144000 bytes in total: send or wait"],
    ]) {
      const { api } = apiWith((r) => r.respond(413, { statusCode: 413, error: "Payload Too Large", message }));
      const err = await api.uploadAttachment(pdf()).catch((e) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect(err.status).toBe(413);
      expect(err.message).toBe(shown);
    }
    const { api } = apiWith((r) => r.respond(413, "<html>too big</html>"));
    expect(describeError(await api.uploadAttachment(pdf()).catch((e) => e))).toBe("Too large (max 25 MB)");
  });

  it("maps other errors like the other calls: 400 message, 401 signs out, 429 retry, network", async () => {
    const { api: bad } = apiWith((r) => r.respond(400, { statusCode: 400, error: "Bad Request", message: "x-filename is required" }));
    expect((await bad.uploadAttachment(pdf()).catch((e) => e)).message).toBe("x-filename is required");

    const { api: refused } = apiWith((r) => r.respond(401, { statusCode: 401, error: "Unauthorized", message: "bad token" }));
    refused.onUnauthorized = vi.fn();
    expect((await refused.uploadAttachment(pdf()).catch((e) => e)).status).toBe(401);
    expect(refused.onUnauthorized).toHaveBeenCalledTimes(1);

    const { api: busy } = apiWith((r) => r.respond(429, { statusCode: 429, error: "Too Many Requests", message: "slow down" }, { "Retry-After": "7" }));
    expect(describeError(await busy.uploadAttachment(pdf()).catch((e) => e))).toBe("Too many attempts; try again in 7 seconds.");

    const { api: down } = apiWith((r) => r.fail());
    expect(await down.uploadAttachment(pdf()).catch((e) => e)).toBeInstanceOf(NetworkError);
  });

  it("cancels on its signal, and gives up on an upload that stalls", async () => {
    let req!: XhrRequest;
    const { api } = apiWith((r) => (req = r));
    const ctrl = new AbortController();
    const done = api.uploadAttachment(pdf(), { signal: ctrl.signal });
    ctrl.abort();
    expect((await done.catch((e) => e)).name).toBe("AbortError");
    expect(req.aborted).toBe(true);

    vi.useFakeTimers();
    const stalled = api.uploadAttachment(pdf()).catch((e) => e);
    req.progress(10, 1000);
    vi.advanceTimersByTime(UPLOAD_STALL_MS - 1);
    req.progress(20, 1000); // progress keeps it alive
    vi.advanceTimersByTime(UPLOAD_STALL_MS - 1);
    expect(req.aborted).toBe(false);
    vi.advanceTimersByTime(2);
    expect(await stalled).toBeInstanceOf(NetworkError);
    expect(req.aborted).toBe(true);
  });
});

describe("attachments in messages", () => {
  it("sends attachmentIds only when there are some", async () => {
    const { api, fetch } = apiWith(() => {});
    await api.sendMessage("c", "alice", "hi", "cm1");
    await api.sendMessage("c", "alice", "files", "cm2", undefined, ["a1", "a2"]);
    const bodies = fetch.mock.calls.map((c) => JSON.parse(String((c as unknown as [string, RequestInit])[1].body)));
    expect(bodies[0]).toEqual({ senderId: "alice", body: "hi", clientMessageId: "cm1" });
    expect(bodies[1].attachmentIds).toEqual(["a1", "a2"]);
  });

  it("resolves the server's URLs against the API's base", () => {
    expect(new Api("http://gw:3000").resolveUrl("/attachments/a1?i=1&e=2&s=x")).toBe("http://gw:3000/attachments/a1?i=1&e=2&s=x");
    expect(new Api("https://example.org/api").resolveUrl("/attachments/a1?s=x")).toBe("https://example.org/api/attachments/a1?s=x");
    expect(new Api("").resolveUrl("/attachments/a1")).toBe("/attachments/a1");
    expect(new Api("http://gw").resolveUrl("https://cdn.example/attachments/a1")).toBe("https://cdn.example/attachments/a1");
  });
});
