// The top level: finds out whether the server has accounts, keeps the session, and shows
// either the sign-in screen or the chat.
import { useCallback, useEffect, useMemo, useState } from "react";
import { Api, describeError } from "../api";
import { detectServerMode, type ServerMode } from "../auth";
import type { ClientConfig } from "../config";
import { loadSession, saveSession } from "../session";
import type { Session } from "../types";
import { AuthScreen } from "./AuthScreen";
import { ChatShell } from "./ChatShell";

export function App({ config, api: given }: { config: ClientConfig; api?: Api }) {
  const api = useMemo(() => given ?? new Api(config.apiUrl), [given, config.apiUrl]);
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const [mode, setMode] = useState<ServerMode | null>(null);
  const [modeError, setModeError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  api.token = session?.mode === "token" ? session.token : null;

  const probe = useCallback(() => {
    setModeError(null);
    detectServerMode(api).then(setMode, (e) => setModeError(describeError(e)));
  }, [api]);

  useEffect(probe, [probe]);

  const signOut = useCallback(
    (why?: string) => {
      setSession((s) => {
        if (s?.mode === "token") void api.logout().catch(() => undefined);
        return null;
      });
      saveSession(null);
      setNotice(why ?? null);
    },
    [api],
  );

  useEffect(() => {
    api.onUnauthorized = () => signOut("Your session has ended. Sign in again.");
    return () => {
      api.onUnauthorized = null;
    };
  }, [api, signOut]);

  // A stored token may have been revoked meanwhile; GET /me says so (401 signs out).
  useEffect(() => {
    if (session?.mode === "token") void api.me().catch(() => undefined);
  }, [api, session]);

  const signedIn = (s: Session) => {
    saveSession(s);
    setNotice(null);
    setSession(s);
  };

  if (session) {
    return <ChatShell key={session.user.userId} api={api} config={config} session={session} onSignOut={() => signOut()} />;
  }
  return <AuthScreen api={api} mode={mode} modeError={modeError} onRetry={probe} notice={notice} onSignedIn={signedIn} />;
}
