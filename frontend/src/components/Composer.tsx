// The message box: Enter sends, Shift+Enter starts a new line. A reply shows its quote
// above the box until sent or cancelled (Escape too). Files come from the attach button,
// a paste (clipboard images) or a drop on the conversation; each is a chip with its
// progress until uploaded. Sending waits for every upload; a message of files only gets
// their names as its text (the server requires a body).
import { useEffect, useId, useRef, useState, type ClipboardEvent, type KeyboardEvent } from "react";
import { Store, useStore } from "../state/store";
import { PaperclipIcon } from "./Attachments";
import {
  MAX_ATTACHMENTS,
  bodyForFiles,
  formatSize,
  namePasted,
  type UploadQueue,
  type UploadsState,
} from "../state/uploads";
import type { Upload } from "../types";

export const MESSAGE_MAX_CHARS = 4000;

interface Props {
  label: string;
  onSend(text: string, files: Upload[]): void;
  /** The files to send with the message; none (no attach button) when absent. */
  uploads?: UploadQueue;
  onTyping(): void;
  onIdle(): void;
  /** The message being replied to, if any. */
  replyingTo?: { id: string; sender: string; body: string };
  onCancelReply?(): void;
}

export function Composer({ label, onSend, onTyping, onIdle, replyingTo, onCancelReply, uploads }: Props) {
  const [text, setText] = useState("");
  const id = useId();
  const hint = useId();
  const box = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const { files, notice } = useStore(uploads?.store ?? noUploads);
  const uploading = files.some((f) => f.status === "uploading");
  const failed = files.some((f) => f.status === "failed");
  const canSend = (Boolean(text.trim()) || files.length > 0) && !uploading && !failed;
  const replyId = replyingTo?.id;
  // Choosing "Reply" puts the cursor where the answer goes.
  useEffect(() => {
    if (replyId) box.current?.focus();
  }, [replyId]);
  const send = () => {
    if (!canSend) return;
    const ready = uploads?.ready ?? [];
    const body = text.trim() ? text : bodyForFiles(ready.map((f) => f.name), MESSAGE_MAX_CHARS);
    onSend(body, ready);
    setText("");
    uploads?.clear();
  };
  const onPaste = (e: ClipboardEvent<HTMLTextAreaElement>) => {
    if (!uploads) return;
    const pasted = [...e.clipboardData.files];
    if (!pasted.length) return; // text: the box takes it
    e.preventDefault();
    uploads.add(pasted.map((f) => namePasted(f)));
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
      {files.length > 0 && (
        <ul className="pending-files" aria-label="Files to send">
          {files.map((f) => (
            <li key={f.key} className={`pending-file ${f.status}`} data-status={f.status}>
              <span className="file-name" title={f.file.name}>
                {f.file.name}
              </span>
              <span className="file-size">{formatSize(f.file.size)}</span>
              {f.status === "uploading" && (
                <progress
                  max={f.file.size || 1}
                  value={Math.min(f.loaded, f.file.size || 1)}
                  aria-label={`Uploading ${f.file.name}`}
                />
              )}
              {f.status === "failed" && (
                <>
                  <span className="file-error" role="alert">
                    Not uploaded: {f.error}
                  </span>
                  <button type="button" onClick={() => uploads?.retry(f.key)} aria-label={`Retry ${f.file.name}`}>
                    Retry
                  </button>
                </>
              )}
              <button type="button" className="remove" onClick={() => uploads?.remove(f.key)} aria-label={`Remove ${f.file.name}`}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      {notice && (
        <p className="file-notice" role="alert">
          {notice}
        </p>
      )}
      {uploads && (
        <>
          <input
            ref={picker}
            type="file"
            multiple
            hidden
            data-testid="attach-input"
            onChange={(e) => {
              uploads.add(e.target.files ?? []);
              e.target.value = ""; // the same file can be chosen again
            }}
          />
          <button
            type="button"
            className="attach"
            onClick={() => picker.current?.click()}
            disabled={files.length >= MAX_ATTACHMENTS}
            aria-label="Attach files"
            title="Attach files"
          >
            <PaperclipIcon />
          </button>
        </>
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
        onPaste={onPaste}
        onBlur={onIdle}
      />
      <span id={hint} className="sr-only">
        Enter sends; Shift+Enter starts a new line.{uploads ? " Files can be pasted or dropped here." : ""}
      </span>
      <button type="submit" className="primary" disabled={!canSend} aria-busy={uploading || undefined}>
        {uploading ? "Uploading…" : "Send"}
      </button>
    </form>
  );
}

/** The store of a composer without files: never changes. */
const noUploads = new Store<UploadsState>({ files: [] });
