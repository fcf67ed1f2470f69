//! Who may do what in a conversation's settings: the contract's role rules, in one place, so
//! the buttons shown match what the server allows (it still decides; its errors are shown).
import type { Conversation, Member, Role } from "../types";

export function roleOf(c: Conversation, userId: string): Role | undefined {
  const m = c.members.find((x) => x.userId === userId);
  return m ? (m.role ?? "member") : undefined;
}

const managing = (r: Role | undefined) => r === "owner" || r === "admin";

/** Rename and add people: an owner or admin of a group (a one-to-one never changes). */
export function canManage(c: Conversation, me: string): boolean {
  return c.type === "group" && managing(roleOf(c, me));
}

/** Promote or demote `target`: only the owner, and not themself (ownership moves by leaving). */
export function canChangeRole(c: Conversation, me: string, target: Member): boolean {
  return c.type === "group" && roleOf(c, me) === "owner" && target.userId !== me && target.role !== "owner";
}

/** Remove `target` (someone else): owner or admin, and an admin never removes the owner. */
export function canRemove(c: Conversation, me: string, target: Member): boolean {
  if (c.type !== "group" || target.userId === me) return false;
  const mine = roleOf(c, me);
  if (mine === "owner") return true;
  return mine === "admin" && (target.role ?? "member") !== "owner";
}

/** Anyone in a group may leave it. */
export function canLeave(c: Conversation, me: string): boolean {
  return c.type === "group" && roleOf(c, me) !== undefined;
}

export const roleLabel: Record<Role, string> = { owner: "Owner", admin: "Admin", member: "Member" };
