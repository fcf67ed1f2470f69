// One message: who, when, the text, its delivery state, and for the author, edit and
// delete (in place, from the keyboard too).
import { useEffect, useRef, useState } from "react";
import type { ChatController } from "../state/chat";
import type { UiMessage } from "../state/thread";
import { MESSAGE_MAX_CHARS } from "./Composer";
import { formatTime } from "./format";

interface Props {
  chat: ChatController;
  message: UiMessage;
  mine: boolean;
  sender: string;
}

export function MessageItem({ chat, message: m, mine, sender }: Props) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(m.body);
  const [confirming, setConfirming] = useState(false);
  const editBox = useRef<HTMLTextAreaElement>(null);
  const editButton = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (editing) editBox.current?.focus();
  }, [editing]);

  const sentToServer = m.delivery === "sent";
  const finishEdit = (save: boolean) => {
    setEditing(false);
    if (save) void chat.edit(m.conversationId, m.id, draft);
    requestAnimationFrame(() => editButton.current?.focus());
  };

  return (
    <li
      className={`message ${mine ? "mine" : ""} ${m.delivery}`}
      data-message-id={sentToServer ? m.id : undefined}
      data-delivery={m.delivery}
    >
      <div className="meta">
        <span className="sender">{mine ? "You" : sender}</span>
        <time dateTime={m.sentAt}>{formatTime(m.sentAt)}</time>
        {m.editedAt && <span className="edited">(edited)</span>}
      </div>
      {editing ? (
        <form
          className="edit-form"
          onSubmit={(e) => {
            e.preventDefault();
            finishEdit(true);
          }}
        >
          <label className="sr-only" htmlFor={`edit-${m.id}`}>
            Edit message
          </label>
          <textarea
            id={`edit-${m.id}`}
            ref={editBox}
            value={draft}
            maxLength={MESSAGE_MAX_CHARS}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Escape") finishEdit(false);
              if (e.key === "Enter" && !e.shiftKey) {
                e.preventDefault();
                finishEdit(true);
              }
            }}
          />
          <button type="submit" className="primary" disabled={!draft.trim()}>
            Save
          </button>
          <button type="button" onClick={() => finishEdit(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <p className="body">{m.body}</p>
      )}
      {m.delivery === "pending" && <span className="state">Sending…</span>}
      {m.editPending && <span className="state">Saving edit…</span>}
      {m.delivery === "failed" && (
        <span className="state failed" role="alert">
          Not sent.{" "}
          <button type="button" onClick={() => void chat.retry(m.conversationId, m.clientMessageId as string)}>
            Retry
          </button>{" "}
          <button type="button" onClick={() => chat.discard(m.conversationId, m.clientMessageId as string)}>
            Discard
          </button>
        </span>
      )}
      {mine && sentToServer && !editing && (
        <div className="msg-actions">
          {confirming ? (
            <>
              <span>Delete this message?</span>
              <button type="button" className="danger" onClick={() => void chat.remove(m.conversationId, m.id)}>
                Delete
              </button>
              <button type="button" onClick={() => setConfirming(false)} autoFocus>
                Keep
              </button>
            </>
          ) : (
            <>
              <button
                type="button"
                ref={editButton}
                onClick={() => {
                  setDraft(m.body);
                  setEditing(true);
                }}
                aria-label="Edit message"
              >
                Edit
              </button>
              <button type="button" onClick={() => setConfirming(true)} aria-label="Delete message">
                Delete
              </button>
            </>
          )}
        </div>
      )}
    </li>
  );
}
