// Access with the official client, against a stack with authentication on that
// tests/e2e/tests/access.rs starts: two chat instances (A behind the gateway, B direct).
// Sockets live as long as their sessions (sign-out, password change, expiry, on either
// instance); socket events are limited; a member who left gets nothing more; the chat
// namespace takes no binary; typing into an unknown conversation does not query each time.
// Env: GATEWAY_URL, CHAT_B_URL, CHAT_A_URL, SESSION_TTL_SECS (the gateway's), RUN (a prefix
// making this run's user ids unique), SOCKET_EVENT_BURST.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, open, request, sleep, waitFor, register as registerAt } from "./support.mjs";

const GATEWAY = process.env.GATEWAY_URL;
const CHAT_A = process.env.CHAT_A_URL;
const CHAT_A_METRICS = process.env.CHAT_A_METRICS_URL; // its metrics port, not the public one
const CHAT_B = process.env.CHAT_B_URL;
const RUN = process.env.RUN;
const BURST = Number(process.env.SOCKET_EVENT_BURST);
const http = (method, path, token, body) => request(GATEWAY, method, path, token, body);

const register = (name) => registerAt(GATEWAY, RUN, name);

async function group(owner, others) {
  const members = [owner, ...others].map((u) => ({ userId: u.userId, displayName: "ignored" }));
  const r = await http("POST", "/conversations", owner.token, { type: "group", members });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

// A signed-in socket recording what it receives and when it is disconnected.
function connect(url, token, transports = ["websocket"]) {
  const c = open(url, { transports, auth: { token } });
  c.disconnectedAt = null;
  c.socket.on("disconnect", () => (c.disconnectedAt = Date.now()));
  return connected(c);
}

async function send(user, cid, body) {
  const r = await http("POST", `/conversations/${cid}/messages`, user.token, {
    senderId: user.userId,
    body,
  });
  assert.ok(r.status === 201 || r.status === 202, JSON.stringify(r.body));
  return r.body;
}

/// The socket is disconnected within a second of `since`.
async function closedWithinASecond(c, since, what) {
  await waitFor(what, () => c.disconnectedAt !== null, 1000);
  assert.ok(c.disconnectedAt - since <= 1000, `${what}: ${c.disconnectedAt - since} ms`);
}

test("sign-out and password change close the sockets of those sessions, on every instance", async () => {
  const ann = await register("ann");
  const ben = await register("ben");
  const cid = await group(ann, [ben]);
  // A second session of Ann, kept: signing out of one does not close the other's sockets.
  const kept = await http("POST", "/auth/login", null, { userId: ann.userId, password: ann.password });
  assert.equal(kept.status, 200);
  const onA = await connect(GATEWAY, ann.token);
  const onB = await connect(CHAT_B, ann.token, ["polling", "websocket"]);
  const other = await connect(CHAT_B, kept.body.token);
  const benSocket = await connect(CHAT_A, ben.token);

  const since = Date.now();
  assert.equal((await http("POST", "/auth/logout", ann.token)).status, 204);
  await closedWithinASecond(onA, since, "the gateway-side socket closes on sign-out");
  await closedWithinASecond(onB, since, "the instance-B socket closes on sign-out");
  await send(ben, cid, "after sign-out");
  await waitFor("the kept session still hears", () => other.of("message:created").length === 1);
  assert.equal(onA.of("message:created").length + onB.of("message:created").length, 0);
  assert.equal(other.disconnectedAt, null);

  // A password change ends every session: Ben's socket on A and a second on B close.
  const benB = await connect(CHAT_B, ben.token);
  const changedAt = Date.now();
  const changed = await http("POST", "/auth/password", ben.token, {
    currentPassword: ben.password,
    newPassword: "a brand new password",
  });
  assert.equal(changed.status, 200, JSON.stringify(changed.body));
  await closedWithinASecond(benSocket, changedAt, "ben's socket on A closes on password change");
  await closedWithinASecond(benB, changedAt, "ben's socket on B closes on password change");
  // The token from the change opens a socket again.
  const again = await connect(CHAT_B, changed.body.token);
  await http("POST", `/conversations/${cid}/messages`, kept.body.token, {
    senderId: ann.userId,
    body: "from the kept session",
  });
  await waitFor("the new session hears", () => again.of("message:created").length >= 1);
  [other, again].forEach((c) => c.socket.close());
});

test("a socket closes when its session expires", async () => {
  const cat = await register("cat");
  const issued = Date.now();
  const c = await connect(CHAT_B, cat.token);
  const ttl = Number(process.env.SESSION_TTL_SECS) * 1000;
  await waitFor("the socket closes at expiry", () => c.disconnectedAt !== null, ttl + 3000);
  assert.ok(c.disconnectedAt - issued <= ttl + 1000, `closed ${c.disconnectedAt - issued} ms after issue`);
});

test("typing and presence floods are dropped, the socket stays", async () => {
  const dan = await register("dan");
  const eve = await register("eve");
  const cid = await group(dan, [eve]);
  const d = await connect(GATEWAY, dan.token);
  const e = await connect(CHAT_B, eve.token);
  const typing = { conversationId: cid, userId: dan.userId, displayName: "x", isTyping: true };
  const acks = await Promise.all(
    Array.from({ length: BURST * 4 }, () => d.socket.timeout(5000).emitWithAck("typing:update", typing)),
  );
  const ok = acks.filter((a) => a.ok).length;
  assert.ok(ok >= 1 && ok <= BURST + 2, `${ok} of ${acks.length} typing events accepted`);
  assert.ok(acks.some((a) => !a.ok && a.error === "rate limited"));
  await sleep(300);
  assert.ok(e.of("typing:update").length <= ok, `${e.of("typing:update").length} relayed`);
  assert.equal(d.disconnectedAt, null, "a flooding socket is not disconnected");
  // After a pause, typing works again.
  await sleep(1500);
  assert.deepEqual(await d.socket.emitWithAck("typing:update", typing), { ok: true });
  [d, e].forEach((c) => c.socket.close());
});

test("typing into an unknown conversation does not query the database each time", async () => {
  const fay = await register("fay");
  const f = await connect(CHAT_A, fay.token);
  const lookups = async () => {
    const text = await (await fetch(CHAT_A_METRICS)).text();
    const line = text.split("\n").find((l) => l.startsWith("chat_member_lookups_total"));
    assert.ok(line, "chat_member_lookups_total is exported");
    return Number(line.split(" ").pop());
  };
  const unknown = "01900000-0000-7000-8000-00000000abcd";
  const before = await lookups();
  for (let i = 0; i < 5; i++) {
    const ack = await f.socket.emitWithAck("typing:update", {
      conversationId: unknown,
      userId: fay.userId,
      displayName: "x",
      isTyping: true,
    });
    assert.deepEqual(ack, { ok: false });
  }
  assert.ok((await lookups()) - before <= 1, `${(await lookups()) - before} lookups`);
  f.socket.close();
});

test("a member who left gets nothing more, on any instance", async () => {
  const gus = await register("gus");
  const hal = await register("hal");
  const ida = await register("ida");
  const cid = await group(gus, [hal, ida]);
  // Instance B has the member list cached (Hal's socket there got an event).
  const h = await connect(CHAT_B, hal.token);
  const i = await connect(CHAT_B, ida.token);
  await send(gus, cid, "before");
  await waitFor("hal gets the first message", () => h.of("message:created").length === 1);
  const left = await http("DELETE", `/conversations/${cid}/members/${hal.userId}`, hal.token);
  assert.equal(left.status, 204, JSON.stringify(left.body));
  await waitFor("hal is told", () => h.of("conversation:removed").length === 1);
  assert.deepEqual(h.of("conversation:removed")[0], { conversationId: cid });
  await send(gus, cid, "after");
  await waitFor("ida gets the second message", () => i.of("message:created").length === 2);
  await sleep(300);
  assert.equal(h.of("message:created").length, 1, "the leaver got a message after leaving");
  // Typing from the leaver is refused; reading is 403.
  const ack = await h.socket.emitWithAck("typing:update", {
    conversationId: cid, userId: hal.userId, displayName: "x", isTyping: true,
  });
  assert.deepEqual(ack, { ok: false });
  assert.equal((await http("GET", `/conversations/${cid}/messages`, hal.token)).status, 403);
  [h, i].forEach((c) => c.socket.close());
});

test("the chat namespace takes no binary", async () => {
  const jon = await register("jon");
  const j = await connect(GATEWAY, jon.token);
  j.socket.emit("typing:update", new Uint8Array(16));
  await waitFor("the connection is closed", () => j.disconnectedAt !== null, 3000);
});
