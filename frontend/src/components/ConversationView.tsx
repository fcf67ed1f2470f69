// One conversation: who is in it and online, its calls, its messages (older pages load as
// the user scrolls up), who is typing, and the composer.
import { useEffect, useRef, useState } from "react";
import type { CallController } from "../call/calls";
import { useStore } from "../state/store";
import type { ChatController, ChatState } from "../state/chat";
import { title } from "../state/conversations";
import type { Conversation, User } from "../types";
import { CallHistory } from "./CallHistory";
import { Composer } from "./Composer";
import { MessageList } from "./MessageList";
import { TypingIndicator } from "./TypingIndicator";

interface Props {
  chat: ChatController;
  calls: CallController;
  conversation: Conversation;
  state: ChatState;
  me: User;
  onBack(): void;
}

export function ConversationView({ chat, calls, conversation, state, me, onBack }: Props) {
  const callState = useStore(calls.store);
  const thread = state.threads[conversation.id];
  const heading = useRef<HTMLHeadingElement>(null);
  const [announcement, setAnnouncement] = useState("");
  const lastSeen = useRef<string | undefined>(undefined);
  const name = title(conversation, me.userId);

  useEffect(() => {
    void chat.openThread(conversation.id);
    heading.current?.focus();
  }, [chat, conversation.id]);

  // Announce messages from others as they arrive (not the history loaded on opening).
  const confirmed = thread?.messages.filter((m) => m.delivery === "sent") ?? [];
  const newest = confirmed[confirmed.length - 1];
  useEffect(() => {
    if (!thread?.loaded) return;
    if (lastSeen.current && newest && newest.id !== lastSeen.current && newest.senderId !== me.userId) {
      const who = conversation.members.find((m) => m.userId === newest.senderId)?.displayName ?? newest.senderId;
      setAnnouncement(`New message from ${who}: ${newest.body}`);
    }
    lastSeen.current = newest?.id ?? "";
  }, [thread?.loaded, newest, me.userId, conversation.members]);

  const members = conversation.members;
  const busy = (callState.active !== undefined && callState.active.phase !== "ended") || state.connection !== "online";

  return (
    <section className="conversation" aria-labelledby="conv-title">
      <header className="conv-head">
        <button type="button" className="back" onClick={onBack} aria-label="Back to conversations">
          ←
        </button>
        <div className="conv-head-text">
          <h2 id="conv-title" ref={heading} tabIndex={-1}>
            {name}
          </h2>
          <ul className="members" aria-label="Members">
            {members.map((m) => {
              const online = Boolean(state.online[m.userId]);
              return (
                <li key={m.userId} data-user-id={m.userId} data-online={online}>
                  <span className={`dot ${online ? "on" : ""}`} aria-hidden="true" />
                  {m.userId === me.userId ? `${m.displayName} (you)` : m.displayName}
                  <span className="sr-only">{online ? " online" : " offline"}</span>
                </li>
              );
            })}
          </ul>
        </div>
        <div className="call-buttons">
          <button type="button" onClick={() => void calls.start(conversation, "audio")} disabled={busy}>
            Audio call
          </button>
          <button type="button" onClick={() => void calls.start(conversation, "video")} disabled={busy}>
            Video call
          </button>
        </div>
      </header>
      <CallHistory calls={calls} conversationId={conversation.id} history={callState.history[conversation.id]} />
      {thread?.error && !thread.loaded ? (
        <div className="error pad" role="alert">
          <p>The messages could not be loaded: {thread.error}</p>
          <button type="button" onClick={() => void chat.openThread(conversation.id)}>
            Try again
          </button>
        </div>
      ) : (
        <MessageList chat={chat} conversation={conversation} thread={thread} me={me.userId} />
      )}
      <div className="sr-only" role="status" aria-live="polite" aria-atomic="true">
        {announcement}
      </div>
      <TypingIndicator typing={state.typing[conversation.id]} />
      <Composer
        label={`Message ${name}`}
        onSend={(text) => void chat.send(conversation.id, text)}
        onTyping={() => chat.typing(conversation.id)}
        onIdle={() => chat.stopTyping(conversation.id)}
      />
    </section>
  );
}
