// The message box: Enter sends, Shift+Enter starts a new line. A reply shows its quote
// above the box until sent or cancelled (Escape too).
import { useEffect, useId, useRef, useState, type KeyboardEvent } from "react";

export const MESSAGE_MAX_CHARS = 4000;

interface Props {
  label: string;
  onSend(text: string): void;
  onTyping(): void;
  onIdle(): void;
  /** The message being replied to, if any. */
  replyingTo?: { id: string; sender: string; body: string };
  onCancelReply?(): void;
}

export function Composer({ label, onSend, onTyping, onIdle, replyingTo, onCancelReply }: Props) {
  const [text, setText] = useState("");
  const id = useId();
  const hint = useId();
  const box = useRef<HTMLTextAreaElement>(null);
  const replyId = replyingTo?.id;
  // Choosing "Reply" puts the cursor where the answer goes.
  useEffect(() => {
    if (replyId) box.current?.focus();
  }, [replyId]);
  const send = () => {
    if (!text.trim()) return;
    onSend(text);
    setText("");
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Escape" && replyingTo) {
      e.preventDefault();
      onCancelReply?.();
      return;
    }
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  };
  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      {replyingTo && (
        <div className="reply-bar" data-testid="replying-to">
          <span className="reply-text">
            Replying to <strong>{replyingTo.sender}</strong>: <span className="quote-body">{replyingTo.body}</span>
          </span>
          <button type="button" onClick={() => onCancelReply?.()} aria-label="Cancel reply">
            ×
          </button>
        </div>
      )}
      <label htmlFor={id} className="sr-only">
        {label}
      </label>
      <textarea
        id={id}
        ref={box}
        rows={2}
        value={text}
        maxLength={MESSAGE_MAX_CHARS}
        placeholder="Write a message"
        aria-describedby={hint}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value) onTyping();
          else onIdle();
        }}
        onKeyDown={onKeyDown}
        onBlur={onIdle}
      />
      <span id={hint} className="sr-only">
        Enter sends; Shift+Enter starts a new line.
      </span>
      <button type="submit" className="primary" disabled={!text.trim()}>
        Send
      </button>
    </form>
  );
}
