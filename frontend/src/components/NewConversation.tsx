// Starting a conversation: one other person, or a named group. The contract has no user
// directory, so members are named by user id (and a display name, which defaults to it).
import { useEffect, useRef, useState, type FormEvent } from "react";
import { describeError } from "../api";
import type { Conversation, User } from "../types";
import { userIdProblem } from "../validate";

interface Props {
  me: User;
  onCancel(): void;
  onCreate(input: { type: Conversation["type"]; name?: string; members: User[] }): Promise<void>;
}

interface Row {
  userId: string;
  displayName: string;
}

const MAX_MEMBERS = 999;

export function NewConversation({ me, onCancel, onCreate }: Props) {
  const [type, setType] = useState<Conversation["type"]>("one_to_one");
  const [name, setName] = useState("");
  const [rows, setRows] = useState<Row[]>([{ userId: "", displayName: "" }]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => heading.current?.focus(), []);

  const shown = type === "one_to_one" ? rows.slice(0, 1) : rows;
  const setRow = (i: number, r: Partial<Row>) => setRows((rs) => rs.map((x, j) => (j === i ? { ...x, ...r } : x)));

  async function submit(e: FormEvent) {
    e.preventDefault();
    const others = shown.map((r) => ({ userId: r.userId.trim(), displayName: r.displayName.trim() || r.userId.trim() }));
    for (const [i, o] of others.entries()) {
      const p = userIdProblem(o.userId);
      if (p) return setError(`Member ${i + 1}: ${p}`);
      if (o.displayName.length > 100) return setError(`Member ${i + 1}: display names are at most 100 characters.`);
    }
    const ids = new Set([me.userId, ...others.map((o) => o.userId)]);
    if (ids.size !== others.length + 1) return setError("Each member must be someone else, named once.");
    if (name.length > 200) return setError("Names are at most 200 characters.");
    setBusy(true);
    setError(null);
    try {
      await onCreate({
        type,
        ...(type === "group" && name.trim() ? { name: name.trim() } : {}),
        members: [me, ...others],
      });
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  }

  return (
    <form className="new-conv" onSubmit={submit} noValidate>
      <h2 ref={heading} tabIndex={-1}>
        New conversation
      </h2>
      <fieldset>
        <legend>Kind</legend>
        <label className="inline">
          <input type="radio" name="type" checked={type === "one_to_one"} onChange={() => setType("one_to_one")} /> With
          one person
        </label>
        <label className="inline">
          <input type="radio" name="type" checked={type === "group"} onChange={() => setType("group")} /> Group
        </label>
      </fieldset>
      {type === "group" && (
        <label>
          Group name (optional)
          <input value={name} maxLength={200} onChange={(e) => setName(e.target.value)} />
        </label>
      )}
      <fieldset>
        <legend>{type === "group" ? "Members" : "Person"}</legend>
        {shown.map((r, i) => (
          <div className="member-row" key={i}>
            <label>
              User id{type === "group" ? ` of member ${i + 1}` : ""}
              <input
                value={r.userId}
                name={`member-${i}`}
                autoCapitalize="none"
                spellCheck={false}
                maxLength={128}
                onChange={(e) => setRow(i, { userId: e.target.value })}
                required
              />
            </label>
            <label>
              Display name (optional)
              <input value={r.displayName} maxLength={100} onChange={(e) => setRow(i, { displayName: e.target.value })} />
            </label>
            {type === "group" && rows.length > 1 && (
              <button type="button" onClick={() => setRows((rs) => rs.filter((_, j) => j !== i))} aria-label={`Remove member ${i + 1}`}>
                Remove
              </button>
            )}
          </div>
        ))}
        {type === "group" && rows.length < MAX_MEMBERS && (
          <button type="button" onClick={() => setRows((rs) => [...rs, { userId: "", displayName: "" }])}>
            Add member
          </button>
        )}
      </fieldset>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Starting…" : "Start conversation"}
        </button>
      </div>
    </form>
  );
}
