// The message box: Enter sends, Shift+Enter starts a new line.
import { useId, useState, type KeyboardEvent } from "react";

export const MESSAGE_MAX_CHARS = 4000;

interface Props {
  label: string;
  onSend(text: string): void;
  onTyping(): void;
  onIdle(): void;
}

export function Composer({ label, onSend, onTyping, onIdle }: Props) {
  const [text, setText] = useState("");
  const id = useId();
  const hint = useId();
  const send = () => {
    if (!text.trim()) return;
    onSend(text);
    setText("");
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
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
      <label htmlFor={id} className="sr-only">
        {label}
      </label>
      <textarea
        id={id}
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
