// The conversation's calls (GET /calls/conversation/:id), read when the panel opens.
import type { CallController } from "../call/calls";
import type { Call } from "../types";
import { formatDuration, formatTime } from "./format";

const STATUS: Record<Call["status"], string> = {
  ringing: "ringing",
  in_progress: "in progress",
  ended: "ended",
  declined: "declined",
  missed: "missed",
};

export function CallHistory({ calls, conversationId, history }: { calls: CallController; conversationId: string; history?: Call[] }) {
  return (
    <details
      className="call-history"
      onToggle={(e) => {
        if ((e.target as HTMLDetailsElement).open) void calls.loadHistory(conversationId);
      }}
    >
      <summary>Call history</summary>
      {!history ? (
        <p className="muted" role="status">
          Loading…
        </p>
      ) : history.length === 0 ? (
        <p className="muted">No calls yet.</p>
      ) : (
        <ul aria-label="Calls">
          {[...history].reverse().map((c) => (
            <li key={c.id} data-call-status={c.status}>
              {c.type === "video" ? "Video" : "Audio"} call, {STATUS[c.status]}, <time dateTime={c.startedAt}>{formatTime(c.startedAt)}</time>
              {c.endedAt && c.status === "ended" ? `, ${formatDuration(c.startedAt, c.endedAt)}` : ""}
            </li>
          ))}
        </ul>
      )}
    </details>
  );
}
