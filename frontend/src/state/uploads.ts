// The files waiting in a composer: each uploads as soon as it is added (so sending waits for
// the slowest one, not for all of them one after another), shows its progress, and can be
// removed (an upload still running is cancelled) or, after a failure, retried. The message
// is sent with the ids of the finished uploads.
import { describeError, type UploadOptions } from "../api";
import type { Upload } from "../types";
import { Store } from "./store";

/** The server takes at most this many attachments in one message. */
export const MAX_ATTACHMENTS = 10;

export type PendingStatus = "uploading" | "done" | "failed";

export interface PendingFile {
  /** Local identity of the entry (the same file may be added twice). */
  key: string;
  file: File;
  status: PendingStatus;
  /** Bytes sent so far. */
  loaded: number;
  error?: string;
  upload?: Upload;
}

export interface UploadsState {
  files: PendingFile[];
  /** Why the last files could not be added (too many), until the next change. */
  notice?: string;
}

export type UploadFn = (file: File, opts: UploadOptions) => Promise<Upload>;

let keys = 0;

export class UploadQueue {
  readonly store = new Store<UploadsState>({ files: [] });
  private aborts = new Map<string, AbortController>();

  constructor(private readonly upload: UploadFn) {}

  /** Adds files (up to MAX_ATTACHMENTS in all) and starts their uploads. */
  add(files: Iterable<File>) {
    const list = [...files];
    if (!list.length) return;
    const room = MAX_ATTACHMENTS - this.store.get().files.length;
    const taken = list.slice(0, Math.max(0, room));
    const notice =
      taken.length < list.length
        ? `At most ${MAX_ATTACHMENTS} files per message: ${list.length - taken.length} not added.`
        : undefined;
    const added: PendingFile[] = taken.map((file) => ({ key: `f${++keys}`, file, status: "uploading", loaded: 0 }));
    this.store.set((s) => ({ files: [...s.files, ...added], notice }));
    for (const p of added) void this.start(p.key);
  }

  remove(key: string) {
    this.aborts.get(key)?.abort();
    this.aborts.delete(key);
    this.store.set((s) => ({ files: s.files.filter((f) => f.key !== key), notice: undefined }));
  }

  retry(key: string) {
    const f = this.find(key);
    if (f?.status !== "failed") return;
    void this.start(key);
  }

  /** Forgets every file (after a send; uploads still running are cancelled). */
  clear() {
    for (const a of this.aborts.values()) a.abort();
    this.aborts.clear();
    this.store.set({ files: [], notice: undefined });
  }

  get uploading(): boolean {
    return this.store.get().files.some((f) => f.status === "uploading");
  }

  get failed(): boolean {
    return this.store.get().files.some((f) => f.status === "failed");
  }

  /** Every file is uploaded: the message can go (with these, in the order added). */
  get ready(): Upload[] | undefined {
    const files = this.store.get().files;
    if (files.some((f) => f.status !== "done")) return undefined;
    return files.map((f) => f.upload as Upload);
  }

  private find(key: string) {
    return this.store.get().files.find((f) => f.key === key);
  }

  private patch(key: string, p: Partial<PendingFile>) {
    this.store.set((s) => ({ ...s, files: s.files.map((f) => (f.key === key ? { ...f, ...p } : f)) }));
  }

  private async start(key: string) {
    const f = this.find(key);
    if (!f) return;
    const ctrl = new AbortController();
    this.aborts.set(key, ctrl);
    this.patch(key, { status: "uploading", loaded: 0, error: undefined });
    try {
      const upload = await this.upload(f.file, {
        signal: ctrl.signal,
        onProgress: (loaded) => {
          if (!ctrl.signal.aborted) this.patch(key, { loaded });
        },
      });
      if (ctrl.signal.aborted) return;
      this.patch(key, { status: "done", loaded: f.file.size, upload });
    } catch (e) {
      if (ctrl.signal.aborted) return; // removed or cleared: nothing to show
      this.patch(key, { status: "failed", error: describeError(e) });
    } finally {
      if (this.aborts.get(key) === ctrl) this.aborts.delete(key);
    }
  }
}

/** Sizes as people read them: 1023 B, 1.5 KB, 12 MB (powers of 1024, one decimal under 10). */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? Math.round(v * 10) / 10 : Math.round(v)} ${units[i]}`;
}

/**
 * A pasted image's file: browsers name every one "image.png", so it gets a name of its own
 * (`pasted-20260102-150405.png`); other files keep theirs.
 */
export function namePasted(file: File, now: Date = new Date()): File {
  if (!file.type.startsWith("image/") || (file.name && file.name !== "image.png" && file.name !== "image")) return file;
  const ext = file.type.slice("image/".length).replace(/[^a-z0-9]/gi, "").replace(/^jpeg$/, "jpg") || "png";
  const p = (n: number) => String(n).padStart(2, "0");
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return new File([file], `pasted-${stamp}.${ext}`, { type: file.type, lastModified: file.lastModified });
}

/** The body of a message sent with files and no text: the server requires one. */
export function bodyForFiles(names: string[], max: number): string {
  const joined = names.join(", ");
  return Array.from(joined).length <= max ? joined : `${Array.from(joined).slice(0, max - 1).join("")}…`;
}
