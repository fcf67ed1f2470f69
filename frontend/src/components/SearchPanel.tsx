// Message search in the sidebar: the box (searches once typing pauses), then in place of the
// conversation list the results, newest first (sender, conversation, the text around the
// match with the query's words marked, time), "More results" for the next page. Choosing
// a result opens its conversation scrolled to the message.
import { useEffect, useId } from "react";
import type { ChatState } from "../state/chat";
import { title } from "../state/conversations";
import { SEARCH_MAX_CHARS, queryWords, searchable, snippet, type SearchController } from "../state/search";
import { useStore } from "../state/store";
import type { Message } from "../types";
import { formatTime } from "./format";

interface Props {
  search: SearchController;
  chat: ChatState;
  me: string;
  onOpen(m: Message): void;
}

/** `scope` is the open conversation, which the search can be narrowed to. */
export function SearchBox({ search, scope }: { search: SearchController; scope?: { id: string; name: string } }) {
  const s = useStore(search.store);
  const id = useId();
  // The open conversation changed: a narrowed search follows it, or widens if none is open.
  const scopeId = scope?.id;
  useEffect(() => {
    if (s.conversationId && s.conversationId !== scopeId) search.setScope(scopeId);
  }, [search, s.conversationId, scopeId]);
  return (
    <form className="search-box" role="search" onSubmit={(e) => e.preventDefault()}>
      <label htmlFor={id} className="sr-only">
        Search messages
      </label>
      <input
        id={id}
        type="search"
        placeholder="Search messages"
        value={s.query}
        maxLength={SEARCH_MAX_CHARS}
        onChange={(e) => search.setQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") search.clear();
        }}
      />
      {s.query && (
        <button type="button" onClick={() => search.clear()} aria-label="Clear search">
          ×
        </button>
      )}
      {scope && (
        <label className="inline search-scope">
          <input
            type="checkbox"
            checked={s.conversationId === scope.id}
            onChange={(e) => search.setScope(e.target.checked ? scope.id : undefined)}
          />
          Only in “{scope.name}”
        </label>
      )}
    </form>
  );
}

export function SearchResults({ search, chat, me, onOpen }: Props) {
  const s = useStore(search.store);
  if (!s.query.trim()) return null;
  if (!searchable(s.query)) {
    return <p className="muted pad">Type a word to look for (words after “-” are only excluded).</p>;
  }
  const words = queryWords(s.searched || s.query);
  const pending = s.loading && s.searched !== s.query;
  return (
    <section className="search-results" aria-label="Search results" aria-busy={s.loading}>
      {s.error && (
        <p className="error pad" role="alert">
          {s.error}
        </p>
      )}
      {pending && s.results.length === 0 && !s.error && (
        <p className="muted pad" role="status">
          Searching…
        </p>
      )}
      {!s.loading && !s.error && s.results.length === 0 && (
        <p className="muted pad" role="status">
          No messages match “{s.searched}”.
        </p>
      )}
      {s.results.length > 0 && (
        <ul className="result-list" aria-label="Messages found">
          {s.results.map((m) => {
            const c = chat.conversations.find((x) => x.id === m.conversationId);
            const sender =
              m.senderId === me ? "You" : (c?.members.find((x) => x.userId === m.senderId)?.displayName ?? m.senderId);
            return (
              <li key={m.id}>
                <button
                  type="button"
                  className="result"
                  data-message-id={m.id}
                  data-conversation-id={m.conversationId}
                  onClick={() => onOpen(m)}
                >
                  <span className="result-head">
                    <span className="sender">{sender}</span>
                    <span className="in"> in {c ? title(c, me) : "a conversation"}</span>
                    <time dateTime={m.sentAt}>{formatTime(m.sentAt)}</time>
                  </span>
                  <span className="snippet">
                    {snippet(m.body, words).map((seg, i) => (seg.mark ? <mark key={i}>{seg.text}</mark> : <span key={i}>{seg.text}</span>))}
                  </span>
                </button>
              </li>
            );
          })}
        </ul>
      )}
      {s.hasMore && s.searched === s.query && (
        <button type="button" className="load-older" onClick={() => void search.more()} disabled={s.loading}>
          {s.loading ? "Loading more…" : "More results"}
        </button>
      )}
    </section>
  );
}
