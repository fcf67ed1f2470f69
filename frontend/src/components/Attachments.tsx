// A message's files: images inline (the thumbnail when there is one, in a box sized from
// the image's dimensions so nothing jumps as it loads; a click opens the larger view), every
// other file a chip with its name, size and a download link. URLs are signed and expire (a
// member's removal also revokes them): an image that fails to load asks for the message
// again, which brings fresh ones.
import { useEffect, useRef, useState } from "react";
import { createPortal } from "react-dom";
import { formatSize } from "../state/uploads";
import type { Attachment } from "../types";

interface Props {
  attachments: Attachment[];
  /** Makes a URL from the server usable by the page (they are relative to the API). */
  resolve(url: string): string;
  /** An image failed to load: the message should be read again for fresh URLs. */
  onBroken?(): void;
}

/** The largest an inline image is shown (CSS pixels); the larger view has the whole thing. */
export const INLINE_MAX_PX = 320;

export function isImage(a: Attachment): boolean {
  return a.contentType.toLowerCase().startsWith("image/");
}

/** The inline box of an image: its own size scaled into INLINE_MAX_PX, when known. */
export function inlineBox(a: Attachment): { width: number; height: number } | undefined {
  if (!a.width || !a.height || a.width <= 0 || a.height <= 0) return undefined;
  const scale = Math.min(1, INLINE_MAX_PX / a.width, INLINE_MAX_PX / a.height);
  return { width: Math.max(1, Math.round(a.width * scale)), height: Math.max(1, Math.round(a.height * scale)) };
}

export function Attachments({ attachments, resolve, onBroken }: Props) {
  // By id: a re-read for fresh URLs replaces the objects while the view is open.
  const [viewingId, setViewingId] = useState<string | null>(null);
  const opener = useRef<HTMLButtonElement | null>(null);
  const viewing = attachments.find((a) => a.id === viewingId && a.url);
  if (!attachments.length) return null;
  const images = attachments.filter(isImage);
  const others = attachments.filter((a) => !isImage(a));
  return (
    <div className="attachments">
      {images.length > 0 && (
        <ul className="att-images" aria-label="Images">
          {images.map((a) => (
            <li key={a.id}>
              <InlineImage
                a={a}
                resolve={resolve}
                onBroken={onBroken}
                onOpen={(button) => {
                  opener.current = button;
                  setViewingId(a.id);
                }}
              />
            </li>
          ))}
        </ul>
      )}
      {others.length > 0 && (
        <ul className="att-files" aria-label="Files">
          {others.map((a) => (
            <li key={a.id}>
              <FileChip a={a} resolve={resolve} />
            </li>
          ))}
        </ul>
      )}
      {viewing && (
        <ImageViewer
          a={viewing}
          resolve={resolve}
          onBroken={onBroken}
          onClose={() => {
            setViewingId(null);
            requestAnimationFrame(() => opener.current?.focus());
          }}
        />
      )}
    </div>
  );
}

function InlineImage({
  a,
  resolve,
  onBroken,
  onOpen,
}: {
  a: Attachment;
  resolve(url: string): string;
  onBroken?(): void;
  onOpen(button: HTMLButtonElement): void;
}) {
  const src = a.url ? resolve(a.thumbnailUrl || a.url) : "";
  // The URL that failed: a new one (from a re-read) gets its chance.
  const [brokenSrc, setBrokenSrc] = useState<string | null>(null);
  const box = inlineBox(a);
  const style = box ? { width: box.width, aspectRatio: `${box.width} / ${box.height}` } : undefined;
  if (!src) {
    // Still sending: the server has not signed its URL yet.
    return (
      <span className="att-image pending" style={style} data-attachment-id={a.id}>
        {a.name}
      </span>
    );
  }
  if (brokenSrc === src) {
    return (
      <span className="att-image broken" style={style} data-attachment-id={a.id} role="img" aria-label={`${a.name} (could not be loaded)`}>
        {a.name}: could not be loaded
      </span>
    );
  }
  return (
    <button
      type="button"
      className="att-image"
      style={style}
      data-attachment-id={a.id}
      aria-label={`Open image ${a.name}`}
      onClick={(e) => onOpen(e.currentTarget)}
    >
      <img
        src={src}
        alt={a.name}
        width={box?.width}
        height={box?.height}
        loading="lazy"
        decoding="async"
        onError={() => {
          setBrokenSrc(src);
          onBroken?.();
        }}
      />
    </button>
  );
}

function FileChip({ a, resolve }: { a: Attachment; resolve(url: string): string }) {
  const body = (
    <>
      <FileIcon />
      <span className="file-name">{a.name}</span>
      <span className="file-size">{formatSize(a.size)}</span>
    </>
  );
  if (!a.url) {
    return (
      <span className="file-chip pending" data-attachment-id={a.id}>
        {body}
      </span>
    );
  }
  // The server answers `Content-Disposition: attachment` for these, so the browser saves
  // the file (the `download` attribute alone is ignored for another origin).
  return (
    <a
      className="file-chip"
      href={resolve(a.url)}
      download={a.name}
      data-attachment-id={a.id}
      aria-label={`Download ${a.name}, ${formatSize(a.size)}`}
    >
      {body}
    </a>
  );
}

/** The larger view: the whole image over the page; Escape, the close button or a click closes it. */
function ImageViewer({
  a,
  resolve,
  onBroken,
  onClose,
}: {
  a: Attachment;
  resolve(url: string): string;
  onBroken?(): void;
  onClose(): void;
}) {
  const close = useRef<HTMLButtonElement>(null);
  const dialog = useRef<HTMLDivElement>(null);
  useEffect(() => {
    close.current?.focus();
    const onKey = (e: globalThis.KeyboardEvent) => {
      if (e.key === "Escape") {
        e.preventDefault();
        onClose();
      } else if (e.key === "Tab" && dialog.current) {
        // Modal: Tab goes round the view's own controls, not to the page behind it.
        const items = [...dialog.current.querySelectorAll<HTMLElement>("a[href], button")];
        const first = items[0];
        const last = items[items.length - 1];
        if (!dialog.current.contains(document.activeElement)) {
          e.preventDefault();
          first?.focus();
        } else if (e.shiftKey && document.activeElement === first) {
          e.preventDefault();
          last?.focus();
        } else if (!e.shiftKey && document.activeElement === last) {
          e.preventDefault();
          first?.focus();
        }
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [onClose]);
  // On the page's body: no message's box clips or stacks over it.
  return createPortal(
    <div
      ref={dialog}
      className="viewer"
      role="dialog"
      aria-modal="true"
      aria-label={a.name}
      onClick={(e) => {
        if (e.target === e.currentTarget) onClose();
      }}
    >
      <figure>
        <img src={resolve(a.url)} alt={a.name} onClick={onClose} onError={() => onBroken?.()} />
        <figcaption>
          <span className="file-name">{a.name}</span>
          {a.width && a.height ? (
            <span className="muted">
              {a.width}×{a.height}
            </span>
          ) : null}
          <span className="muted">{formatSize(a.size)}</span>
          <a href={resolve(a.url)} download={a.name} target="_blank" rel="noopener noreferrer">
            Open original
          </a>
          <button type="button" ref={close} onClick={onClose} aria-label="Close image">
            Close
          </button>
        </figcaption>
      </figure>
    </div>,
    document.body,
  );
}

/** Drawn, not an emoji: a system without an emoji font would show a blank box. */
function FileIcon() {
  return (
    <svg className="icon" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth="2" strokeLinejoin="round">
      <path d="M6 2h8l5 5v15H6z" />
      <path d="M14 2v5h5" />
    </svg>
  );
}

export function PaperclipIcon() {
  return (
    <svg className="icon" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round">
      <path d="M21 11.5l-8.5 8.5a5.5 5.5 0 01-7.8-7.8l9-9a3.7 3.7 0 015.2 5.2l-9 9a1.8 1.8 0 01-2.6-2.6l8.3-8.3" />
    </svg>
  );
}
