// The ringing dialog: who is calling, accept or decline (focus starts on Accept).
import { useEffect, useRef } from "react";
import type { CallController } from "../call/calls";
import { useStore } from "../state/store";

export function IncomingCall({ calls }: { calls: CallController }) {
  const { incoming } = useStore(calls.store);
  const accept = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (incoming) accept.current?.focus();
  }, [incoming]);
  if (!incoming) return null;
  const caller = incoming.participants[0]?.displayName ?? "Someone";
  return (
    <div className="overlay">
      <div className="dialog" role="alertdialog" aria-modal="true" aria-labelledby="ring-title" aria-describedby="ring-desc"
        onKeyDown={(e) => {
          if (e.key === "Escape") void calls.decline();
        }}
      >
        <h2 id="ring-title">Incoming {incoming.type} call</h2>
        <p id="ring-desc">{caller} is calling you.</p>
        <div className="actions">
          <button type="button" ref={accept} className="primary" onClick={() => void calls.accept()}>
            Accept
          </button>
          <button type="button" className="danger" onClick={() => void calls.decline()}>
            Decline
          </button>
        </div>
      </div>
    </div>
  );
}
