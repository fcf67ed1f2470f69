// The user's conversations, newest activity first, each with its last message, its unread
// count and who of its members is online.
import type { ChatState } from "../state/chat";
import { title } from "../state/conversations";
import { formatTime } from "./format";

interface Props {
  me: string;
  state: ChatState;
  selected: string | null;
  onSelect(id: string): void;
  onRetry(): void;
}

export function ConversationList({ me, state, selected, onSelect, onRetry }: Props) {
  if (!state.conversationsLoaded) return <p className="muted pad" role="status">Loading conversations…</p>;
  if (state.conversationsError && state.conversations.length === 0) {
    return (
      <div className="error pad" role="alert">
        <p>The conversations could not be loaded: {state.conversationsError}</p>
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      </div>
    );
  }
  if (state.conversations.length === 0) {
    return <p className="muted pad">No conversations yet. Start one with “New conversation”.</p>;
  }
  return (
    <ul className="conv-list" aria-label="Your conversations">
      {state.conversations.map((c) => {
        const name = title(c, me);
        const onlineOthers = c.members.filter((m) => m.userId !== me && state.online[m.userId]);
        const last = c.lastMessage;
        const unread = c.id === selected ? 0 : (c.unreadCount ?? 0);
        const lastText = last ? `${last.senderId === me ? "You" : (c.members.find((m) => m.userId === last.senderId)?.displayName ?? last.senderId)}: ${last.body}` : "No messages yet";
        return (
          <li key={c.id}>
            <button
              type="button"
              className="conv-item"
              aria-current={c.id === selected ? "true" : undefined}
              onClick={() => onSelect(c.id)}
              data-conversation-id={c.id}
              data-unread={unread}
            >
              <span className="conv-title">
                <span className={`dot ${onlineOthers.length ? "on" : ""}`} aria-hidden="true" />
                <span className="name">{name}</span>
                {last && <time dateTime={last.sentAt}>{formatTime(last.sentAt)}</time>}
                {unread > 0 && (
                  <span className="badge" aria-hidden="true">
                    {unread > 99 ? "99+" : unread}
                  </span>
                )}
              </span>
              <span className="conv-last">{lastText}</span>
              <span className="sr-only">
                {unread > 0 ? `, ${unread} unread ${unread === 1 ? "message" : "messages"}` : ""}
                {onlineOthers.length ? `, ${onlineOthers.map((m) => m.displayName).join(", ")} online` : ""}
              </span>
            </button>
          </li>
        );
      })}
      {state.conversationsCapped && (
        <li className="muted pad">Only your most recently active conversations are listed.</li>
      )}
    </ul>
  );
}
