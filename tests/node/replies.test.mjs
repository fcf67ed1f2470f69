// Replies and reactions as the official client sees them, against a stack with
// authentication on that tests/e2e/tests/replies.rs starts: `message:created` of a reply
// carries its preview, a reaction is announced as `message:updated` with the whole message
// (editedAt unchanged), and a burst of reactions is coalesced into a few events ending with
// the committed state. Env: GATEWAY_URL, RUN (a prefix making user ids unique).
import { test } from "node:test";
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { connected, open, register as registerAt, request, sleep, waitFor } from "./support.mjs";

const GATEWAY = process.env.GATEWAY_URL;
const RUN = process.env.RUN;
const http = (method, path, token, body) => request(GATEWAY, method, path, token, body);
const register = (name) => registerAt(GATEWAY, RUN, name);
const connect = (token) => connected(open(GATEWAY, { transports: ["websocket"], auth: { token } }));

const MESSAGE_KEYS = ["attachments", "body", "conversationId", "editedAt", "id", "reactions", "replyTo", "senderId", "sentAt"];

async function group(owner, others) {
  const g = await http("POST", "/conversations", owner.token, {
    type: "group",
    members: [owner, ...others].map((u) => ({ userId: u.userId, displayName: "x" })),
  });
  assert.equal(g.status, 201, JSON.stringify(g.body));
  return g.body.id;
}

async function send(user, cid, body, replyToId) {
  const r = await http("POST", `/conversations/${cid}/messages`, user.token, {
    senderId: user.userId,
    body,
    ...(replyToId ? { replyToId } : {}),
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

const reaction = (cid, mid, emoji) =>
  `/conversations/${cid}/messages/${mid}/reactions/${encodeURIComponent(emoji)}`;

test("message:created of a reply carries the original's preview", async () => {
  const ann = await register("ann");
  const ben = await register("ben");
  const cid = await group(ann, [ben]);
  const benSocket = await connect(ben.token);
  const original = await send(ann, cid, "the original");
  const reply = await send(ann, cid, "the reply", original.id);
  await waitFor("both messages", () => benSocket.of("message:created").length === 2);
  const [first, second] = benSocket.of("message:created");
  assert.deepEqual(Object.keys(first).sort(), MESSAGE_KEYS);
  assert.equal(first.replyTo, null);
  assert.deepEqual(first.reactions, []);
  assert.equal(second.id, reply.id);
  assert.deepEqual(second.replyTo, { id: original.id, senderId: ann.userId, body: "the original" });
  assert.deepEqual(second.reactions, []);

  // Deleting the original: replies are not re-announced; their readers get the original's
  // message:deleted and read the deleted form from the history.
  const del = await http("DELETE", `/conversations/${cid}/messages/${original.id}`, ann.token);
  assert.equal(del.status, 200);
  await waitFor("message:deleted", () => benSocket.of("message:deleted").length === 1);
  const page = await http("GET", `/conversations/${cid}/messages`, ben.token);
  const shown = page.body.find((m) => m.id === reply.id);
  assert.deepEqual(shown.replyTo, { id: original.id, deleted: true });
});

test("reactions are announced as message:updated, coalesced, ending with the committed state", async () => {
  const ann = await register("rea");
  const ben = await register("reb");
  const cid = await group(ann, [ben]);
  const annSocket = await connect(ann.token);
  const benSocket = await connect(ben.token);
  const m = await send(ann, cid, "react to me");

  // One reaction: one event, the whole message, editedAt unchanged.
  const r = await http("PUT", reaction(cid, m.id, "👍"), ben.token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await waitFor("message:updated", () => annSocket.of("message:updated").length === 1);
  const e = annSocket.of("message:updated")[0];
  assert.deepEqual(Object.keys(e).sort(), MESSAGE_KEYS);
  assert.equal(e.id, m.id);
  assert.equal(e.body, "react to me");
  assert.equal(e.editedAt, null);
  assert.equal(e.sentAt, m.sentAt);
  assert.deepEqual(e.reactions, [{ emoji: "👍", count: 1, userIds: [ben.userId] }]);
  // Idempotent: adding it again announces nothing.
  assert.equal((await http("PUT", reaction(cid, m.id, "👍"), ben.token)).status, 200);

  // A burst: 20 changes at once from two users.
  await sleep(400); // the first window closes
  const before = annSocket.of("message:updated").length;
  const emoji = ["😀", "😂", "😍", "😢", "🎉", "🔥", "👀", "🙏", "💯", "🚀"];
  const answers = await Promise.all(
    emoji.flatMap((x) => [http("PUT", reaction(cid, m.id, x), ann.token), http("PUT", reaction(cid, m.id, x), ben.token)]),
  );
  for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
  const page = await http("GET", `/conversations/${cid}/messages`, ann.token);
  const committed = page.body.find((x) => x.id === m.id).reactions;
  assert.equal(committed.length, 11);
  for (const c of [annSocket, benSocket]) {
    const last = () => JSON.stringify(c.of("message:updated").at(-1).reactions);
    // Compared as values: the key order of an event's JSON is not the answer's.
    const same = () => isDeepStrictEqual(c.of("message:updated").at(-1).reactions, committed);
    await waitFor("the committed state", same).catch((e) => {
      throw new Error(`${e.message}: last ${last()}, committed ${JSON.stringify(committed)}`);
    });
  }
  await sleep(600); // nothing more after the trailing edge
  const burst = annSocket.of("message:updated").slice(before);
  assert.ok(burst.length >= 1 && burst.length < 20, `${burst.length} events for 20 changes`);
  assert.deepEqual(burst.at(-1).reactions, committed);
  for (const x of burst) assert.equal(x.editedAt, null);
  assert.equal(benSocket.of("message:updated").length, annSocket.of("message:updated").length);
});
