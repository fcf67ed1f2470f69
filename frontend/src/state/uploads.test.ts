import { describe, expect, it } from "vitest";
import type { UploadOptions } from "../api";
import { ApiError } from "../api";
import type { Upload } from "../types";
import { MAX_ATTACHMENTS, UploadQueue, bodyForFiles, formatSize, namePasted } from "./uploads";

/** Uploads the test finishes by hand: `calls[i].done()` / `.fail(e)`, progress through `opts`. */
function manual() {
  const calls: { file: File; opts: UploadOptions; done(): void; fail(e: unknown): void }[] = [];
  const upload = (file: File, opts: UploadOptions) =>
    new Promise<Upload>((resolve, reject) => {
      const id = `a${calls.length + 1}`;
      opts.signal?.addEventListener("abort", () => reject(new DOMException("cancelled", "AbortError")));
      calls.push({
        file,
        opts,
        done: () => resolve({ id, name: file.name, contentType: file.type, size: file.size }),
        fail: reject,
      });
    });
  return { calls, upload };
}

const file = (name: string, size = 10, type = "text/plain") => new File([new Uint8Array(size)], name, { type });
const tick = () => new Promise((r) => setTimeout(r, 0));

describe("UploadQueue", () => {
  it("uploads each file as it is added, shows progress, and is ready when all are done, in order", async () => {
    const { calls, upload } = manual();
    const q = new UploadQueue(upload);
    q.add([file("a.txt", 100), file("b.txt", 50)]);
    expect(calls.map((c) => c.file.name)).toEqual(["a.txt", "b.txt"]);
    expect(q.uploading).toBe(true);
    expect(q.ready).toBeUndefined();
    calls[0].opts.onProgress?.(40, 100);
    expect(q.store.get().files[0].loaded).toBe(40);
    calls[1].done();
    await tick();
    expect(q.ready).toBeUndefined();
    calls[0].done();
    await tick();
    expect(q.uploading).toBe(false);
    expect(q.ready?.map((u) => u.id)).toEqual(["a1", "a2"]);
  });

  it("takes at most MAX_ATTACHMENTS files and says how many were left out", () => {
    const { calls, upload } = manual();
    const q = new UploadQueue(upload);
    q.add(Array.from({ length: 8 }, (_, i) => file(`${i}.txt`)));
    q.add(Array.from({ length: 4 }, (_, i) => file(`more-${i}.txt`)));
    expect(q.store.get().files).toHaveLength(MAX_ATTACHMENTS);
    expect(calls).toHaveLength(MAX_ATTACHMENTS);
    expect(q.store.get().notice).toBe("At most 10 files per message: 2 not added.");
  });

  it("removing a file cancels its upload; a failed one shows why and can be retried", async () => {
    const { calls, upload } = manual();
    const q = new UploadQueue(upload);
    q.add([file("big.bin"), file("ok.txt")]);
    const [first] = q.store.get().files;
    q.remove(first.key);
    expect(calls[0].opts.signal?.aborted).toBe(true);
    expect(q.store.get().files.map((f) => f.file.name)).toEqual(["ok.txt"]);

    calls[1].fail(new ApiError(413, "too large (max 25 MB)"));
    await tick();
    const [failed] = q.store.get().files;
    expect(failed.status).toBe("failed");
    expect(failed.error).toBe("Too large (max 25 MB)");
    expect(q.failed).toBe(true);
    expect(q.ready).toBeUndefined();
    q.retry(failed.key);
    expect(calls).toHaveLength(3);
    expect(q.store.get().files[0].status).toBe("uploading");
    calls[2].done();
    await tick();
    expect(q.ready?.map((u) => u.name)).toEqual(["ok.txt"]);
  });

  it("clear() forgets every file and cancels what is still running", () => {
    const { calls, upload } = manual();
    const q = new UploadQueue(upload);
    q.add([file("a"), file("b")]);
    q.clear();
    expect(calls.every((c) => c.opts.signal?.aborted)).toBe(true);
    expect(q.store.get().files).toEqual([]);
  });
});

describe("helpers", () => {
  it("formats sizes for people", () => {
    expect(formatSize(0)).toBe("0 B");
    expect(formatSize(1023)).toBe("1023 B");
    expect(formatSize(1536)).toBe("1.5 KB");
    expect(formatSize(200 * 1024)).toBe("200 KB");
    expect(formatSize(25 * 1024 * 1024)).toBe("25 MB");
    expect(formatSize(3.25 * 1024 ** 3)).toBe("3.3 GB");
  });

  it("names pasted images by time, keeps other names", () => {
    const at = new Date(2026, 0, 2, 15, 4, 5);
    expect(namePasted(file("image.png", 3, "image/png"), at).name).toBe("pasted-20260102-150405.png");
    expect(namePasted(file("image.png", 3, "image/jpeg"), at).name).toBe("pasted-20260102-150405.jpg");
    expect(namePasted(file("", 3, "image/png"), at).name).toBe("pasted-20260102-150405.png");
    expect(namePasted(file("holiday.png", 3, "image/png"), at).name).toBe("holiday.png");
    expect(namePasted(file("image.png", 3, "text/plain"), at).name).toBe("image.png");
    expect(namePasted(file("image.png", 3, "image/png"), at).type).toBe("image/png");
  });

  it("a message of files only is their names, cut to the limit", () => {
    expect(bodyForFiles(["a.png", "b.pdf"], 4000)).toBe("a.png, b.pdf");
    expect(bodyForFiles(["abcdef", "ghi"], 5)).toBe("abcd…");
  });
});
