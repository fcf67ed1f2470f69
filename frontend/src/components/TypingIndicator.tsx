// "Alex is typing…", announced politely to screen readers.
import type { ChatState } from "../state/chat";

export function typingText(names: string[]): string {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

export function TypingIndicator({ typing }: { typing: ChatState["typing"][string] | undefined }) {
  const names = Object.values(typing ?? {}).map((t) => t.displayName);
  return (
    <p className="typing" aria-live="polite" data-testid="typing">
      {typingText(names)}
    </p>
  );
}
