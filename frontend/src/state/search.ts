//! Message search: the debounced query, its pages (`before` the last result), stale answers
//! dropped, and the snippet shown for a result with the query's words marked.
import { ApiError, describeError, type Api } from "../api";
import type { Message } from "../types";
import { Store } from "./store";

export const SEARCH_DEBOUNCE_MS = 300;
export const SEARCH_PAGE = 20;
/** The server refuses longer queries (400); the box stops there. */
export const SEARCH_MAX_CHARS = 256;
export const SNIPPET_CHARS = 160;

export interface SearchState {
  /** What the box holds. */
  query: string;
  /** The query the results are for (after the debounce). */
  searched: string;
  results: Message[];
  loading: boolean;
  /** An older page exists (the last request found one more than it shows). */
  hasMore: boolean;
  error?: string;
  /** Only this conversation's messages (`conversationId=`), or all of the user's. */
  conversationId?: string;
}

export const initialSearch: SearchState = { query: "", searched: "", results: [], loading: false, hasMore: false };

/** Case and accents do not matter to the server (`cafe` finds `Café`), nor here. */
export function fold(s: string): string {
  return s.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
}

const WORD = /[\p{L}\p{N}]+/gu;

/**
 * The words a result must contain, as the server reads the query (websearch syntax): words
 * and "phrases" count, `-word` excludes and `or` joins, so neither is marked.
 */
export function queryWords(q: string): string[] {
  const words = new Set<string>();
  // A quoted phrase's words, then the loose words (minus -excluded ones).
  const rest = q.replace(/"([^"]*)"?/g, (_, phrase: string) => {
    for (const w of phrase.match(WORD) ?? []) words.add(fold(w));
    return " ";
  });
  for (const token of rest.split(/\s+/)) {
    if (!token || token.startsWith("-") || token.toLowerCase() === "or") continue;
    for (const w of token.match(WORD) ?? []) words.add(fold(w));
  }
  return [...words];
}

export interface Segment {
  text: string;
  mark: boolean;
}

/**
 * Up to `max` characters of `body` around its first matching word, split into plain and
 * marked segments (whole words equal to a query word once case and accents are folded, as
 * the server's `simple` dictionary matches them), with "…" where text was cut.
 */
export function snippet(body: string, words: string[], max = SNIPPET_CHARS): Segment[] {
  const wanted = new Set(words);
  const hits: [number, number][] = [];
  for (const m of body.matchAll(WORD)) {
    if (wanted.has(fold(m[0]))) hits.push([m.index, m.index + m[0].length]);
  }
  let start = 0;
  let end = body.length;
  if (body.length > max) {
    // Start a little before the first hit so it reads in context.
    const first = hits[0]?.[0] ?? 0;
    start = Math.max(0, Math.min(first - Math.floor(max / 4), body.length - max));
    end = start + max;
  }
  const out: Segment[] = [];
  const push = (text: string, mark: boolean) => {
    if (text) out.push({ text, mark });
  };
  if (start > 0) push("…", false);
  let at = start;
  for (const [a, b] of hits) {
    if (b <= start || a >= end) continue;
    const from = Math.max(a, start);
    const to = Math.min(b, end);
    push(body.slice(at, from), false);
    push(body.slice(from, to), true);
    at = to;
  }
  push(body.slice(at, end), false);
  if (end < body.length) push("…", false);
  return out;
}

/** A query the server can answer: not blank, and at least one word that is not excluded. */
export function searchable(q: string): boolean {
  return q.trim().length > 0 && q.length <= SEARCH_MAX_CHARS && queryWords(q).length > 0;
}

export class SearchController {
  readonly store = new Store<SearchState>(initialSearch);
  private timer?: ReturnType<typeof setTimeout>;
  /** Bumped by every new query: an answer for an older one is dropped. */
  private run = 0;

  constructor(
    private readonly api: Api,
    private readonly debounceMs = SEARCH_DEBOUNCE_MS,
  ) {}

  /** The box changed: searches once typing pauses. */
  setQuery(query: string) {
    clearTimeout(this.timer);
    const run = ++this.run;
    if (!searchable(query)) {
      // Nothing the server could answer (blank, or only excluded words): no request.
      this.store.set((s) => ({ ...initialSearch, query, conversationId: s.conversationId }));
      return;
    }
    this.store.set({ query, loading: true });
    this.timer = setTimeout(() => void this.first(run, query), this.debounceMs);
  }

  /** Narrows the search to one conversation (or widens it again) and searches anew. */
  setScope(conversationId: string | undefined) {
    if (this.store.get().conversationId === conversationId) return;
    this.store.set({ conversationId, results: [], hasMore: false, searched: "" });
    this.setQuery(this.store.get().query);
  }

  clear() {
    this.setQuery("");
  }

  dispose() {
    clearTimeout(this.timer);
    this.run++;
  }

  private async first(run: number, q: string) {
    try {
      // One more than shown: whether an older page exists is known without asking for it.
      const found = await this.api.search(q, { limit: SEARCH_PAGE + 1, conversationId: this.store.get().conversationId });
      if (run !== this.run) return;
      const results = found.slice(0, SEARCH_PAGE);
      this.store.set({ searched: q, results, hasMore: found.length > SEARCH_PAGE, loading: false, error: undefined });
    } catch (e) {
      if (run !== this.run) return;
      this.store.set({ searched: q, results: [], hasMore: false, loading: false, error: searchError(e) });
    }
  }

  /** The next older page of the same query (`before` the last result). */
  async more() {
    const s = this.store.get();
    const last = s.results[s.results.length - 1];
    if (!s.hasMore || s.loading || !last) return;
    const run = this.run;
    this.store.set({ loading: true });
    try {
      const found = await this.api.search(s.searched, { limit: SEARCH_PAGE + 1, before: last.id, conversationId: s.conversationId });
      if (run !== this.run) return;
      const page = found.slice(0, SEARCH_PAGE);
      this.store.set((x) => ({ ...x, results: appendResults(x.results, page), hasMore: found.length > SEARCH_PAGE, loading: false }));
    } catch (e) {
      if (run !== this.run) return;
      this.store.set({ loading: false, error: searchError(e) });
    }
  }

  /** A shown result was edited (its new text) or deleted (gone): the list follows. */
  updated(m: Message) {
    this.store.set((s) => (s.results.some((r) => r.id === m.id) ? { ...s, results: s.results.map((r) => (r.id === m.id ? m : r)) } : s));
  }

  deleted(id: string) {
    this.store.set((s) => (s.results.some((r) => r.id === id) ? { ...s, results: s.results.filter((r) => r.id !== id) } : s));
  }
}

/** Another page appended; a result already shown (a page boundary moved) is not repeated. */
export function appendResults(have: Message[], page: Message[]): Message[] {
  const ids = new Set(have.map((m) => m.id));
  return [...have, ...page.filter((m) => !ids.has(m.id))];
}

function searchError(e: unknown): string {
  // The result the user can act on: the server's reason for a query it refuses.
  if (e instanceof ApiError && e.status === 400) return `This search cannot be run: ${e.message}`;
  return describeError(e);
}
