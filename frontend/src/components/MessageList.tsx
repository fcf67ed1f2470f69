// The messages of a conversation, oldest at the top. Scrolling near the top loads the
// next older page (a button does the same from the keyboard) without moving what the
// reader is looking at; new messages scroll into view when the reader is at the bottom.
// "New messages" marks the first unread message at opening; "Seen by" follows the last one.
// A jump (a quote's original, a search result) scrolls to its message and highlights it.
import { Fragment, useEffect, useLayoutEffect, useRef, useState } from "react";
import type { ChatController } from "../state/chat";
import type { Thread } from "../state/thread";
import type { Conversation } from "../types";
import { MessageItem } from "./MessageItem";

interface Props {
  chat: ChatController;
  conversation: Conversation;
  thread: Thread | undefined;
  me: string;
  /** The id of the message "New messages" goes before. */
  divider?: string;
  /** Who (besides the author) has read up to the last message. */
  seenBy?: string[];
  /** The message to scroll to and highlight (`seq` changes with every jump). */
  highlight?: { messageId: string; seq: number };
}

/** How long a message jumped to stays highlighted. */
export const HIGHLIGHT_MS = 3000;

const NEAR_TOP_PX = 80;
const NEAR_BOTTOM_PX = 120;

export function MessageList({ chat, conversation, thread, me, divider, seenBy = [], highlight }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const dividerRef = useRef<HTMLLIElement>(null);
  const prev = useRef({ first: "", last: "", height: 0, atBottom: true });
  const messages = thread?.messages ?? [];
  const first = messages[0]?.id ?? "";
  const last = messages[messages.length - 1];

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const p = prev.current;
    if (p.first && first !== p.first && last?.id === p.last) {
      // An older page went in above: keep the same messages in view.
      el.scrollTop += el.scrollHeight - p.height;
    } else if (last && last.id !== p.last && (p.atBottom || last.senderId === me || !p.last)) {
      el.scrollTop = el.scrollHeight;
    }
    prev.current = { first, last: last?.id ?? "", height: el.scrollHeight, atBottom: p.atBottom };
  });

  // Opening at the first unread message rather than the bottom, when it is out of sight.
  useEffect(() => {
    if (divider) dividerRef.current?.scrollIntoView?.({ block: "nearest" });
  }, [divider]);

  // After the divider's scroll, so a jump wins when both happen on opening. The jump is
  // consumed once shown, so reopening the conversation later does not scroll back to it.
  const [lit, setLit] = useState<string | null>(null);
  const litTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(litTimer.current), []);
  const hlId = highlight?.messageId;
  const hlSeq = highlight?.seq;
  useEffect(() => {
    if (!hlId || hlSeq === undefined) return;
    const el = [...(box.current?.querySelectorAll<HTMLElement>("li[data-message-id]") ?? [])].find(
      (li) => li.dataset.messageId === hlId,
    );
    if (!el) return;
    el.scrollIntoView?.({ block: "center" });
    setLit(hlId);
    clearTimeout(litTimer.current);
    litTimer.current = setTimeout(() => setLit(null), HIGHLIGHT_MS);
    chat.highlightShown(hlSeq);
  }, [chat, hlId, hlSeq]);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    prev.current.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
    prev.current.height = el.scrollHeight;
    if (el.scrollTop < NEAR_TOP_PX && thread?.hasOlder && !thread.loadingOlder) void chat.loadOlder(conversation.id);
  };

  const names = new Map(conversation.members.map((m) => [m.userId, m.displayName]));

  return (
    <div className="messages" ref={box} onScroll={onScroll} data-testid="messages">
      {!thread?.loaded ? (
        <p className="muted pad" role="status">
          Loading messages…
        </p>
      ) : (
        <>
          {thread.hasOlder && (
            <button
              type="button"
              className="load-older"
              onClick={() => void chat.loadOlder(conversation.id)}
              disabled={thread.loadingOlder}
            >
              {thread.loadingOlder ? "Loading older messages…" : "Load older messages"}
            </button>
          )}
          {!thread.hasOlder && messages.length > 0 && <p className="muted center">Start of the conversation</p>}
          {messages.length === 0 ? (
            <p className="muted pad">No messages yet. Say hello!</p>
          ) : (
            <ol className="message-list" aria-label="Messages">
              {messages.map((m) => (
                <Fragment key={m.clientMessageId && m.delivery !== "sent" ? `local:${m.clientMessageId}` : m.id}>
                  {m.id === divider && (
                    <li className="new-divider" ref={dividerRef} data-testid="new-divider">
                      <span>New messages</span>
                    </li>
                  )}
                  <MessageItem
                    chat={chat}
                    message={m}
                    mine={m.senderId === me}
                    sender={names.get(m.senderId) ?? m.senderId}
                    names={names}
                    me={me}
                    highlighted={lit === m.id}
                  />
                </Fragment>
              ))}
            </ol>
          )}
          {seenBy.length > 0 && (
            <p className="seen-by" data-testid="seen-by">
              Seen by {seenBy.join(", ")}
            </p>
          )}
        </>
      )}
    </div>
  );
}
