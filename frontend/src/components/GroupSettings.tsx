// A group's settings: rename, add people by user id, change roles, remove members, leave.
// Only what the user's role allows is offered (state/roles.ts); the server's refusals are
// shown in place.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { describeError } from "../api";
import type { ChatController } from "../state/chat";
import { canChangeRole, canLeave, canManage, canRemove, roleLabel } from "../state/roles";
import type { Conversation, Member, User } from "../types";
import { userIdProblem } from "../validate";

interface Props {
  chat: ChatController;
  conversation: Conversation;
  me: User;
  onClose(): void;
}

export function GroupSettings({ chat, conversation: c, me, onClose }: Props) {
  const [name, setName] = useState(c.name ?? "");
  const [userId, setUserId] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState("");
  const [busy, setBusy] = useState(false);
  const [confirmLeave, setConfirmLeave] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => heading.current?.focus(), []);
  // Someone else renamed it meanwhile: show the new name.
  useEffect(() => setName(c.name ?? ""), [c.name]);

  const manage = canManage(c, me.userId);

  async function run(action: () => Promise<void>, success: string) {
    setBusy(true);
    setError(null);
    setDone("");
    try {
      await action();
      setDone(success);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }

  function rename(e: FormEvent) {
    e.preventDefault();
    if (name.length > 200) return setError("Names are at most 200 characters.");
    void run(() => chat.rename(c.id, name), name.trim() ? `Renamed to “${name.trim()}”.` : "Name cleared.");
  }

  function add(e: FormEvent) {
    e.preventDefault();
    const id = userId.trim();
    const problem = userIdProblem(id);
    if (problem) return setError(problem);
    if (c.members.some((m) => m.userId === id)) return setError(`${id} is already a member.`);
    const shown = displayName.trim() || id;
    if (shown.length > 100) return setError("Display names are at most 100 characters.");
    void run(async () => {
      await chat.addMembers(c.id, [{ userId: id, displayName: shown }]);
      setUserId("");
      setDisplayName("");
    }, `${shown} added.`);
  }

  return (
    <section className="group-settings" id="group-settings" aria-labelledby="group-settings-title">
      <div className="group-settings-head">
        <h3 id="group-settings-title" ref={heading} tabIndex={-1}>
          Group settings
        </h3>
        <button type="button" onClick={onClose}>
          Close settings
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <p className="sr-only" role="status">
        {done}
      </p>
      {manage && (
        <form className="inline-form" onSubmit={rename}>
          <label htmlFor="group-name">Group name</label>
          <input id="group-name" value={name} maxLength={200} onChange={(e) => setName(e.target.value)} />
          <button type="submit" disabled={busy || name.trim() === (c.name ?? "")}>
            Rename
          </button>
        </form>
      )}
      <ul className="member-roles" aria-label="Members and roles">
        {c.members.map((m) => (
          <li key={m.userId} data-user-id={m.userId} data-role={m.role ?? "member"}>
            <span className="who">
              {m.userId === me.userId ? `${m.displayName} (you)` : m.displayName}{" "}
              <span className="muted">{m.userId}</span>
            </span>
            <span className="role">{roleLabel[m.role ?? "member"]}</span>
            <span className="member-actions">
              {canChangeRole(c, me.userId, m) && <RoleButton m={m} busy={busy} onSet={(role, done) => void run(() => chat.setRole(c.id, m.userId, role), done)} />}
              {canRemove(c, me.userId, m) && (
                <button
                  type="button"
                  className="danger"
                  disabled={busy}
                  aria-label={`Remove ${m.displayName}`}
                  onClick={() => void run(() => chat.removeMember(c.id, m.userId), `${m.displayName} removed.`)}
                >
                  Remove
                </button>
              )}
            </span>
          </li>
        ))}
      </ul>
      {manage && (
        <form className="add-member" onSubmit={add} noValidate>
          <fieldset>
            <legend>Add someone</legend>
            <label htmlFor="add-user-id">User id to add</label>
            <input
              id="add-user-id"
              value={userId}
              autoCapitalize="none"
              spellCheck={false}
              maxLength={128}
              onChange={(e) => setUserId(e.target.value)}
            />
            <label htmlFor="add-display-name">Their display name (optional)</label>
            <input id="add-display-name" value={displayName} maxLength={100} onChange={(e) => setDisplayName(e.target.value)} />
            <button type="submit" className="primary" disabled={busy || !userId.trim()}>
              Add to group
            </button>
          </fieldset>
        </form>
      )}
      {canLeave(c, me.userId) && (
        <div className="leave">
          {confirmLeave ? (
            <>
              <span>Leave this group? You will stop receiving its messages.</span>
              <button type="button" className="danger" disabled={busy} onClick={() => void run(() => chat.leave(c.id), "")}>
                Leave
              </button>
              <button type="button" onClick={() => setConfirmLeave(false)} autoFocus>
                Stay
              </button>
            </>
          ) : (
            <button type="button" className="danger" onClick={() => setConfirmLeave(true)}>
              Leave group
            </button>
          )}
        </div>
      )}
    </section>
  );
}

/** Promotes a member to admin, or an admin back to member. */
function RoleButton({ m, busy, onSet }: { m: Member; busy: boolean; onSet(role: "admin" | "member", done: string): void }) {
  const to = m.role === "admin" ? "member" : "admin";
  const as = to === "admin" ? "an admin" : "a member";
  return (
    <button type="button" disabled={busy} aria-label={`Make ${m.displayName} ${as}`} onClick={() => onSet(to, `${m.displayName} is ${as}.`)}>
      {to === "admin" ? "Make admin" : "Make member"}
    </button>
  );
}
