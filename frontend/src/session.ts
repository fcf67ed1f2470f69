// The signed-in session, kept in localStorage so a reload stays signed in.
import type { Session } from "./types";

const KEY = "chat.session";

export function loadSession(storage: Storage = localStorage): Session | null {
  try {
    const raw = storage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    if (!s?.user?.userId) return null;
    if (s.mode === "token") {
      if (!s.token || (s.expiresAt && Date.parse(s.expiresAt) <= Date.now())) return null;
    } else if (s.mode !== "open") {
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null, storage: Storage = localStorage) {
  if (s) storage.setItem(KEY, JSON.stringify(s));
  else storage.removeItem(KEY);
}
