// One conversation: who is in it and online, a group's settings, its calls, its messages
// (older pages load as the user scrolls up, "New messages" and "Seen by"), who is typing,
// and the composer.
import { useEffect, useRef, useState } from "react";
import type { CallController } from "../call/calls";
import { useStore } from "../state/store";
import type { ChatController, ChatState } from "../state/chat";
import { title } from "../state/conversations";
import { seenBy } from "../state/reads";
import type { Conversation, User } from "../types";
import { CallHistory } from "./CallHistory";
import { Composer } from "./Composer";
import { GroupSettings } from "./GroupSettings";
import { MessageList } from "./MessageList";
import { TypingIndicator } from "./TypingIndicator";
import { UploadQueue } from "../state/uploads";

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
  const settingsButton = useRef<HTMLButtonElement>(null);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const name = title(conversation, me.userId);
  // One per opened conversation (the view is keyed by it); uploads still running when it
  // closes are cancelled.
  const [uploads] = useState(() => new UploadQueue((file, opts) => chat.api.uploadAttachment(file, opts)));
  useEffect(() => () => uploads.clear(), [uploads]);
  const [dropping, setDropping] = useState(false);
  const hasFiles = (e: DragEvent) => [...(e.dataTransfer?.types ?? [])].includes("Files");
  // A file dropped just beside the conversation (the list, the header) would make the
  // browser leave the app to show it: outside the drop area, files are refused instead.
  useEffect(() => {
    const refuse = (e: DragEvent) => {
      if (!hasFiles(e) || e.defaultPrevented) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = "none";
    };
    window.addEventListener("dragover", refuse);
    window.addEventListener("drop", refuse);
    return () => {
      window.removeEventListener("dragover", refuse);
      window.removeEventListener("drop", refuse);
    };
  }, []);

  useEffect(() => {
    void chat.open(conversation.id);
    heading.current?.focus();
    return () => chat.close(conversation.id);
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
  const replying = state.replying[conversation.id];
  const seen = seenBy(conversation, confirmed, state.reads[conversation.id], me.userId);
  const closeSettings = () => {
    setSettingsOpen(false);
    requestAnimationFrame(() => settingsButton.current?.focus());
  };
  const busy = (callState.active !== undefined && callState.active.phase !== "ended") || state.connection !== "online";

  return (
    <section
      className={`conversation${dropping ? " dropping" : ""}`}
      aria-labelledby="conv-title"
      onDragOver={(e) => {
        if (!hasFiles(e.nativeEvent)) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = "copy";
        setDropping(true);
      }}
      onDragLeave={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDropping(false);
      }}
      onDrop={(e) => {
        setDropping(false);
        if (!e.dataTransfer.files.length) return;
        e.preventDefault();
        uploads.add(e.dataTransfer.files);
      }}
    >
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
                  {m.role && m.role !== "member" && <span className="role-tag">{m.role}</span>}
                  <span className="sr-only">{online ? " online" : " offline"}</span>
                </li>
              );
            })}
          </ul>
        </div>
        <div className="call-buttons">
          {conversation.type === "group" && (
            <button
              type="button"
              ref={settingsButton}
              aria-expanded={settingsOpen}
              aria-controls={settingsOpen ? "group-settings" : undefined}
              onClick={() => (settingsOpen ? closeSettings() : setSettingsOpen(true))}
            >
              Group settings
            </button>
          )}
          <button type="button" onClick={() => void calls.start(conversation, "audio")} disabled={busy}>
            Audio call
          </button>
          <button type="button" onClick={() => void calls.start(conversation, "video")} disabled={busy}>
            Video call
          </button>
        </div>
      </header>
      {settingsOpen && conversation.type === "group" && (
        <GroupSettings chat={chat} conversation={conversation} me={me} onClose={closeSettings} />
      )}
      <CallHistory calls={calls} conversationId={conversation.id} history={callState.history[conversation.id]} />
      {thread?.error && !thread.loaded ? (
        <div className="error pad" role="alert">
          <p>The messages could not be loaded: {thread.error}</p>
          <button type="button" onClick={() => void chat.openThread(conversation.id)}>
            Try again
          </button>
        </div>
      ) : (
        <MessageList
          chat={chat}
          conversation={conversation}
          thread={thread}
          me={me.userId}
          divider={state.dividers[conversation.id]}
          seenBy={seen}
          highlight={state.highlight?.conversationId === conversation.id ? state.highlight : undefined}
        />
      )}
      <div className="sr-only" role="status" aria-live="polite" aria-atomic="true">
        {announcement}
      </div>
      <TypingIndicator typing={state.typing[conversation.id]} />
      <Composer
        label={`Message ${name}`}
        replyingTo={replying && { id: replying.id, sender: replying.senderId === me.userId ? "yourself" : (members.find((m) => m.userId === replying.senderId)?.displayName ?? replying.senderId), body: replying.body }}
        onCancelReply={() => chat.cancelReply(conversation.id)}
        uploads={uploads}
        onSend={(text, files) => void chat.send(conversation.id, text, files)}
        onTyping={() => chat.typing(conversation.id)}
        onIdle={() => chat.stopTyping(conversation.id)}
      />
    </section>
  );
}
