// Signing in against the README's identity routes, or, on a server without them (the
// original API, or AUTH_MODE off), joining as the user id typed: "open" mode.
import { Api, ApiError } from "./api";
import type { Session } from "./types";

export type ServerMode = "token" | "open";

/** Asks the server whether it has accounts: GET /me without a token is 401 if it does. */
export async function detectServerMode(api: Api): Promise<ServerMode> {
  try {
    await api.probeIdentity();
    return "token";
  } catch (e) {
    if (e instanceof ApiError && e.isMissingRoute) return "open";
    if (e instanceof ApiError) return "token";
    throw e;
  }
}

export async function signUp(
  api: Api,
  mode: ServerMode,
  f: { userId: string; displayName: string; password: string },
): Promise<Session> {
  if (mode === "open") return { mode: "open", user: { userId: f.userId, displayName: f.displayName.trim() } };
  const s = await api.register(f.userId, f.displayName.trim(), f.password);
  return { ...s, mode: "token" };
}

export async function signIn(api: Api, mode: ServerMode, f: { userId: string; password: string; displayName?: string }): Promise<Session> {
  if (mode === "open") {
    return { mode: "open", user: { userId: f.userId, displayName: f.displayName?.trim() || f.userId } };
  }
  const s = await api.login(f.userId, f.password);
  return { ...s, mode: "token" };
}
