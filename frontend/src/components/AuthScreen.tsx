// Sign in and create an account. On a server without accounts ("open" mode) one form asks
// only for the user id and display name, and says plainly that nothing is protected.
import { useId, useState, type FormEvent } from "react";
import { Api, ApiError, describeError } from "../api";
import { signIn, signUp, type ServerMode } from "../auth";
import type { Session } from "../types";
import { displayNameProblem, passwordProblem, userIdProblem } from "../validate";

interface Props {
  api: Api;
  mode: ServerMode | null;
  modeError: string | null;
  onRetry(): void;
  notice: string | null;
  onSignedIn(s: Session): void;
}

export function AuthScreen({ api, mode, modeError, onRetry, notice, onSignedIn }: Props) {
  const [tab, setTab] = useState<"signin" | "signup">("signin");
  const [userId, setUserId] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const ids = { user: useId(), name: useId(), pass: useId(), err: useId() };
  const open = mode === "open";
  const signup = tab === "signup" || open;

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!mode) return;
    const problem =
      userIdProblem(userId) ??
      (signup ? displayNameProblem(displayName) : null) ??
      (open ? null : tab === "signup" ? passwordProblem(password) : password ? null : "Enter your password.");
    if (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const s = signup
        ? await signUp(api, mode, { userId, displayName, password })
        : await signIn(api, mode, { userId, password });
      onSignedIn(s);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) setError("That user id is taken; choose another or sign in.");
      else if (err instanceof ApiError && err.status === 401) setError("Wrong user id or password.");
      else setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="auth" aria-labelledby="auth-title">
      <form className="auth-card" onSubmit={submit} noValidate aria-describedby={error ? ids.err : undefined}>
        <h1 id="auth-title">{open ? "Join the chat" : tab === "signin" ? "Sign in" : "Create an account"}</h1>
        {notice && (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        {modeError && (
          <div className="error" role="alert">
            <p>{modeError}</p>
            <button type="button" onClick={onRetry}>
              Try again
            </button>
          </div>
        )}
        {!mode && !modeError && <p role="status">Connecting to the server…</p>}
        {open && (
          <p className="warning">
            This server has no accounts (compatibility mode): you join as the user id you type, and anyone can do the
            same. Use it only on a trusted network.
          </p>
        )}
        {mode === "token" && (
          <div className="tabs" role="group" aria-label="Account">
            <button type="button" aria-pressed={tab === "signin"} onClick={() => setTab("signin")}>
              Sign in
            </button>
            <button type="button" aria-pressed={tab === "signup"} onClick={() => setTab("signup")}>
              Create account
            </button>
          </div>
        )}
        <label htmlFor={ids.user}>User id</label>
        <input
          id={ids.user}
          name="userId"
          autoFocus
          autoComplete="username"
          autoCapitalize="none"
          spellCheck={false}
          maxLength={128}
          value={userId}
          onChange={(e) => setUserId(e.target.value.trim())}
          required
        />
        {signup && (
          <>
            <label htmlFor={ids.name}>Display name</label>
            <input
              id={ids.name}
              name="displayName"
              autoComplete="nickname"
              maxLength={100}
              value={displayName}
              onChange={(e) => setDisplayName(e.target.value)}
              required
            />
          </>
        )}
        {!open && (
          <>
            <label htmlFor={ids.pass}>Password</label>
            <input
              id={ids.pass}
              name="password"
              type="password"
              autoComplete={tab === "signup" ? "new-password" : "current-password"}
              maxLength={128}
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              required
            />
            {tab === "signup" && <p className="hint">At least 8 characters.</p>}
          </>
        )}
        {error && (
          <p id={ids.err} className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={!mode || busy}>
          {busy ? "Please wait…" : open ? "Join" : tab === "signin" ? "Sign in" : "Create account"}
        </button>
      </form>
    </main>
  );
}
