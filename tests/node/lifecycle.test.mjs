// Conversation lifecycle events with the official client, against the stack
// tests/e2e/tests/lifecycle.rs starts (authentication on): `conversation:created` to every
// member at creation and to each added user, `conversation:updated` to the members after a
// change, `conversation:removed` on every socket of a removed user, and `call:updated` when
// a removal takes someone out of a call. Env: GATEWAY_URL, RUN (a prefix for user ids).
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, open, request, sleep, waitFor, register as registerAt } from "./support.mjs";

const GATEWAY = process.env.GATEWAY_URL;
const RUN = process.env.RUN;
const http = (method, path, token, body) => request(GATEWAY, method, path, token, body);

const register = (name) => registerAt(GATEWAY, RUN, name);

const connect = (user) =>
  connected(open(GATEWAY, { transports: ["websocket"], auth: { token: user.token } }));

const roles = (conv) => conv.members.map((m) => `${m.userId.slice(RUN.length + 1)}:${m.role}`);

test("lifecycle events reach the users concerned, on all of their sockets", async () => {
  const [own, ann, bob, nia] = await Promise.all(["own", "ann", "bob", "nia"].map(register));
  const o = await connect(own);
  const a1 = await connect(ann);
  const a2 = await connect(ann);
  const b = await connect(bob);
  const n = await connect(nia);

  // Creation: every member learns of the conversation at once, roles included.
  const members = [own, ann, bob].map((u) => ({ userId: u.userId, displayName: "x" }));
  const created = await http("POST", "/conversations", own.token, { type: "group", members });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const cid = created.body.id;
  for (const [c, who] of [[o, "own"], [a1, "ann"], [a2, "ann (2nd socket)"], [b, "bob"]]) {
    await waitFor(`${who} hears conversation:created`, () => c.of("conversation:created").length === 1);
    assert.deepEqual(c.of("conversation:created")[0], created.body);
  }
  assert.deepEqual(roles(created.body), ["own:owner", "ann:member", "bob:member"]);

  // Rename: the members get conversation:updated.
  const renamed = await http("PATCH", `/conversations/${cid}`, own.token, { name: "Crew" });
  assert.equal(renamed.status, 200);
  for (const c of [o, a1, a2, b]) {
    await waitFor("conversation:updated after the rename", () => c.of("conversation:updated").length === 1);
    assert.equal(c.of("conversation:updated")[0].name, "Crew");
  }

  // Addition: Nia gets conversation:created, the others conversation:updated.
  const added = await http("POST", `/conversations/${cid}/members`, own.token, {
    members: [{ userId: nia.userId, displayName: "x" }],
  });
  assert.equal(added.status, 200, JSON.stringify(added.body));
  await waitFor("nia hears conversation:created", () => n.of("conversation:created").length === 1);
  assert.deepEqual(roles(n.of("conversation:created")[0]), ["own:owner", "ann:member", "bob:member", "nia:member"]);
  for (const c of [o, a1, b]) {
    await waitFor("conversation:updated after the addition", () => c.of("conversation:updated").length === 2);
  }

  // A role change.
  const promoted = await http("PATCH", `/conversations/${cid}/members/${ann.userId}`, own.token, { role: "admin" });
  assert.equal(promoted.status, 200, JSON.stringify(promoted.body));
  for (const c of [o, a1, b, n]) {
    await waitFor("conversation:updated after the role change", () =>
      c.of("conversation:updated").some((u) => roles(u).includes("ann:admin")));
  }

  // A ringing call of own, ann and bob; bob is removed (by ann, an admin): the others see
  // the call go on without him, bob's sockets are told he is out.
  const parts = [own, ann, bob].map((u) => ({ userId: u.userId, displayName: "x" }));
  const call = await http("POST", "/calls", own.token, { conversationId: cid, type: "video", participants: parts });
  assert.equal(call.status, 201, JSON.stringify(call.body));
  const removed = await http("DELETE", `/conversations/${cid}/members/${bob.userId}`, ann.token);
  assert.equal(removed.status, 204, JSON.stringify(removed.body));
  await waitFor("bob hears conversation:removed", () => b.of("conversation:removed").length === 1);
  assert.deepEqual(b.of("conversation:removed")[0], { conversationId: cid });
  for (const c of [o, a1, n]) {
    await waitFor("call:updated without bob", () =>
      c.of("call:updated").some((x) => x.id === call.body.id && x.participants.length === 2));
    await waitFor("conversation:updated without bob", () =>
      c.of("conversation:updated").some((u) => u.members.length === 3));
  }
  const update = o.of("call:updated").find((x) => x.id === call.body.id);
  assert.equal(update.status, "ringing");
  assert.deepEqual(update.participants.map((p) => p.userId), [own.userId, ann.userId]);

  // Ann leaves: both of her sockets are told; the call, down to one participant, is missed.
  const left = await http("DELETE", `/conversations/${cid}/members/${ann.userId}`, ann.token);
  assert.equal(left.status, 204);
  for (const c of [a1, a2]) {
    await waitFor("each of ann's sockets hears conversation:removed", () => c.of("conversation:removed").length === 1);
  }
  await waitFor("the call is missed", () =>
    o.of("call:updated").some((x) => x.id === call.body.id && x.status === "missed"));
  const got = await http("GET", `/calls/${call.body.id}`, own.token);
  assert.equal(got.body.status, "missed");

  // Nobody removed hears what follows.
  const sent = await http("POST", `/conversations/${cid}/messages`, own.token, { senderId: own.userId, body: "after" });
  assert.ok(sent.status === 201 || sent.status === 202, JSON.stringify(sent.body));
  await waitFor("nia gets the message", () => n.of("message:created").length === 1);
  await sleep(300);
  for (const c of [a1, a2, b]) assert.equal(c.of("message:created").length, 0);
  // Only those removed were told so; nobody got conversation:created twice.
  for (const c of [o, n]) assert.equal(c.of("conversation:removed").length, 0);
  assert.equal(n.of("conversation:created").length, 1);
  assert.equal(n.of("conversation:updated").filter((u) => u.name === "Crew" && u.members.length === 4 && !roles(u).includes("ann:admin")).length, 0,
    "nia, just added, got created rather than updated");
});
