// One message: who, when, the quote of the message it replies to (a click goes there), the
// text, its reactions (a chip per emoji: count, who in its title, the user's own pressed;
// a click toggles), its delivery state, reply and react for everyone, and for the author,
// edit and delete (in place, from the keyboard too).
import { useEffect, useRef, useState } from "react";
import type { ChatController } from "../state/chat";
import { COMMON_EMOJI, canAdd, hasReacted, whoReacted } from "../state/reactions";
import type { UiMessage } from "../state/thread";
import { Attachments } from "./Attachments";
import { MESSAGE_MAX_CHARS } from "./Composer";
import { formatTime } from "./format";

interface Props {
  chat: ChatController;
  message: UiMessage;
  mine: boolean;
  sender: string;
  /** Display names of the members by user id (for quotes and who reacted). */
  names: ReadonlyMap<string, string>;
  me: string;
  highlighted?: boolean;
}

export function MessageItem({ chat, message: m, mine, sender, names, me, highlighted = false }: Props) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(m.body);
  const [confirming, setConfirming] = useState(false);
  const [picking, setPicking] = useState(false);
  const reactButton = useRef<HTMLButtonElement>(null);
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
      className={`message ${mine ? "mine" : ""} ${m.delivery}${highlighted ? " highlighted" : ""}`}
      data-message-id={sentToServer ? m.id : undefined}
      data-delivery={m.delivery}
      data-highlighted={highlighted || undefined}
    >
      <div className="meta">
        <span className="sender">{mine ? "You" : sender}</span>
        <time dateTime={m.sentAt}>{formatTime(m.sentAt)}</time>
        {m.editedAt && <span className="edited">(edited)</span>}
      </div>
      {m.replyTo &&
        (m.replyTo.deleted ? (
          <p className="quote deleted" data-reply-to={m.replyTo.id}>
            Original message deleted
          </p>
        ) : (
          <button
            type="button"
            className="quote"
            data-reply-to={m.replyTo.id}
            onClick={() => void chat.jumpTo(m.conversationId, m.replyTo!.id)}
            aria-label={`Reply to ${quoteSender(m.replyTo.senderId, names, me)}: ${m.replyTo.body ?? ""}. Go to the original message`}
          >
            <span className="quote-sender">{quoteSender(m.replyTo.senderId, names, me)}</span>
            <span className="quote-body">{m.replyTo.body}</span>
          </button>
        ))}
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
      {m.attachments && m.attachments.length > 0 && (
        <Attachments
          attachments={m.attachments}
          resolve={(url) => chat.api.resolveUrl(url)}
          onBroken={sentToServer ? () => void chat.refreshAttachments(m.conversationId, m.id) : undefined}
        />
      )}
      {m.reactions && m.reactions.length > 0 && (
        <ul className="reactions" aria-label="Reactions">
          {m.reactions.map((r) => {
            const own = r.userIds.includes(me);
            const who = whoReacted(r, names, me);
            return (
              <li key={r.emoji}>
                <button
                  type="button"
                  className={`chip${own ? " own" : ""}`}
                  aria-pressed={own}
                  title={who}
                  aria-label={`${r.emoji} ${r.count}: ${who}`}
                  data-emoji={r.emoji}
                  data-count={r.count}
                  disabled={!sentToServer || !chat.signedIn}
                  onClick={() => void chat.toggleReaction(m.conversationId, m.id, r.emoji)}
                >
                  <span aria-hidden="true">{r.emoji}</span> <span className="count">{r.count}</span>
                </button>
              </li>
            );
          })}
        </ul>
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
      {picking && sentToServer && (
        <div className="picker" role="group" aria-label="Pick a reaction">
          {COMMON_EMOJI.map((e) => (
            <button
              key={e}
              type="button"
              aria-label={`React with ${e}`}
              aria-pressed={hasReacted(m, e, me)}
              disabled={!canAdd(m, e)}
              onClick={() => {
                setPicking(false);
                void chat.toggleReaction(m.conversationId, m.id, e);
                requestAnimationFrame(() => reactButton.current?.focus());
              }}
              onKeyDown={(ev) => {
                if (ev.key === "Escape") {
                  setPicking(false);
                  reactButton.current?.focus();
                }
              }}
            >
              {e}
            </button>
          ))}
        </div>
      )}
      {sentToServer && !editing && (
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
              <button type="button" onClick={() => chat.startReply(m.conversationId, m)} aria-label="Reply to message">
                Reply
              </button>
              {/* Reactions need a signed-in caller (a server without accounts refuses them). */}
              {chat.signedIn && (
                <button
                  type="button"
                  ref={reactButton}
                  aria-expanded={picking}
                  onClick={() => setPicking((p) => !p)}
                  aria-label="Add reaction"
                >
                  React
                </button>
              )}
              {mine && (
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
            </>
          )}
        </div>
      )}
    </li>
  );
}

// The contract's ReplyTo leaves `senderId` optional (a deleted original has none).
function quoteSender(userId: string | undefined, names: ReadonlyMap<string, string>, me: string): string {
  if (userId === undefined) return "someone";
  return userId === me ? "You" : (names.get(userId) ?? userId);
}
