import { describe, expect, it } from "vitest";
import type { Conversation, Member } from "../types";
import { canChangeRole, canLeave, canManage, canRemove, roleOf } from "./roles";

const owner: Member = { userId: "olga", displayName: "Olga", role: "owner" };
const admin: Member = { userId: "adam", displayName: "Adam", role: "admin" };
const admin2: Member = { userId: "ada", displayName: "Ada", role: "admin" };
const member: Member = { userId: "mia", displayName: "Mia", role: "member" };
const group: Conversation = { id: "g", type: "group", members: [owner, admin, admin2, member], createdAt: "" };
const pair: Conversation = { id: "p", type: "one_to_one", members: [{ ...owner, role: "member" }, member], createdAt: "" };

describe("role rules", () => {
  it("lets owners and admins of a group rename and add, nobody in a one-to-one", () => {
    expect(canManage(group, "olga")).toBe(true);
    expect(canManage(group, "adam")).toBe(true);
    expect(canManage(group, "mia")).toBe(false);
    expect(canManage(group, "stranger")).toBe(false);
    expect(canManage(pair, "olga")).toBe(false);
  });

  it("lets only the owner change roles, never their own", () => {
    expect(canChangeRole(group, "olga", admin)).toBe(true);
    expect(canChangeRole(group, "olga", member)).toBe(true);
    expect(canChangeRole(group, "olga", owner)).toBe(false);
    expect(canChangeRole(group, "adam", member)).toBe(false);
    expect(canChangeRole(group, "mia", admin)).toBe(false);
    expect(canChangeRole(pair, "olga", member)).toBe(false);
  });

  it("lets owners remove anyone, admins anyone but the owner, members nobody", () => {
    expect(canRemove(group, "olga", admin)).toBe(true);
    expect(canRemove(group, "olga", member)).toBe(true);
    expect(canRemove(group, "adam", member)).toBe(true);
    expect(canRemove(group, "adam", admin2)).toBe(true);
    expect(canRemove(group, "adam", owner)).toBe(false);
    expect(canRemove(group, "mia", admin)).toBe(false);
    // Removing oneself is leaving, offered separately.
    expect(canRemove(group, "olga", owner)).toBe(false);
    expect(canRemove(pair, "olga", member)).toBe(false);
  });

  it("lets every member of a group leave, and treats a member without a role as a member", () => {
    expect([owner, admin, member].every((m) => canLeave(group, m.userId))).toBe(true);
    expect(canLeave(pair, "mia")).toBe(false);
    expect(canLeave(group, "stranger")).toBe(false);
    // A server from before roles (outside today's contract, which requires `role`).
    const old: Conversation = { ...group, members: [{ userId: "x", displayName: "X" } as Member] };
    expect(roleOf(old, "x")).toBe("member");
    expect(canManage(old, "x")).toBe(false);
  });
});
