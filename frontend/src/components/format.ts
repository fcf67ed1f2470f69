// Times as people read them: the time today, the date otherwise.
export function formatTime(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { month: "short", day: "numeric" });
}

export function formatDuration(fromIso: string, toIso?: string): string {
  if (!toIso) return "";
  const secs = Math.max(0, Math.round((Date.parse(toIso) - Date.parse(fromIso)) / 1000));
  const m = Math.floor(secs / 60);
  return m ? `${m} min ${secs % 60} s` : `${secs} s`;
}
