// Says when the live connection is down; the client reconnects by itself and the chat
// fetches what it missed.
import type { ConnectionState } from "../realtime";

export function ConnectionBanner({ state }: { state: ConnectionState }) {
  const text =
    state === "reconnecting"
      ? "Connection lost. Reconnecting… Messages you send are kept and delivered when it is back."
      : state === "connecting"
        ? "Connecting…"
        : state === "offline"
          ? "Offline."
          : "";
  return (
    <div className={`banner ${state}`} role="status" aria-live="polite" data-connection={state} hidden={!text}>
      {text}
    </div>
  );
}
