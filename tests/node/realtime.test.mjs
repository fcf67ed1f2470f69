// The chat service's realtime events with the official JavaScript client, against the real
// stack that tests/e2e/tests/realtime.rs starts: two chat instances (A behind the gateway,
// B direct), the worker and the call service, on their own database and Redis namespace.
// Env: GATEWAY_URL, CHAT_B_URL, CHAT_B_PID (killed at the end to check presence expiry).
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, open, request, sleep, waitFor } from "./support.mjs";

const GATEWAY = process.env.GATEWAY_URL;
const CHAT_B = process.env.CHAT_B_URL;
const http = (method, path, body) => request(GATEWAY, method, path, null, body);

// A client that records every event it receives.
async function client(url, userId, transports) {
  const c = await connected(open(url, { transports }));
  const ack = await c.socket.emitWithAck("presence:join", { userId, displayName: `User ${userId}` });
  assert.deepEqual(ack, { ok: true });
  return { ...c, userId };
}

const online = (c) => {
  const updates = c.of("presence:update");
  return updates.length ? updates[updates.length - 1].map((u) => u.userId).sort() : [];
};

test("messages, typing, presence and calls reach exactly the members, on both instances", async () => {
  // Alice through the gateway over WebSocket; Bob on instance B over polling then upgrade;
  // Carol (not a member) through the gateway over polling only.
  const alice = await client(GATEWAY, "alice", ["websocket"]);
  const bob = await client(CHAT_B, "bob", ["polling", "websocket"]);
  const carol = await client(GATEWAY, "carol", ["polling"]);
  // A second socket for Alice: still one presence entry, and both sockets get her events.
  const alice2 = await client(CHAT_B, "alice", ["websocket"]);

  // The conversation is created after everyone connected.
  const conv = await http("POST", "/conversations", {
    type: "one_to_one",
    members: [{ userId: "alice", displayName: "Alice" }, { userId: "bob", displayName: "Bob" }],
  });
  assert.equal(conv.status, 201);
  const cid = conv.body.id;

  await waitFor("presence lists", () =>
    online(bob).join() === "alice,bob" && online(alice).join() === "alice,bob" && online(carol).join() === "carol");
  assert.ok(
    carol.of("presence:update").every((list) => list.every((u) => u.userId === "carol")),
    "carol shares no conversation: she only ever sees herself",
  );

  // message:created after commit, once per socket, to members only.
  const sent = await http("POST", `/conversations/${cid}/messages`, { senderId: "alice", body: "hello bob" });
  assert.equal(sent.status, 201);
  await waitFor("message:created everywhere", () =>
    bob.of("message:created").length === 1 && alice.of("message:created").length === 1 && alice2.of("message:created").length === 1);
  assert.deepEqual(bob.of("message:created")[0], sent.body);

  const edited = await http("PATCH", `/conversations/${cid}/messages/${sent.body.id}`, { body: "hello Bob" });
  assert.equal(edited.status, 200);
  await waitFor("message:updated", () => bob.of("message:updated").length === 1 && alice.of("message:updated").length === 1);
  assert.equal(bob.of("message:updated")[0].body, "hello Bob");
  const deleted = await http("DELETE", `/conversations/${cid}/messages/${sent.body.id}`);
  assert.equal(deleted.status, 200);
  await waitFor("message:deleted", () => bob.of("message:deleted").length === 1 && alice2.of("message:deleted").length === 1);

  // typing:update to the other members only; ignored from non-members.
  const typing = { conversationId: cid, userId: "alice", displayName: "Alice", isTyping: true };
  alice.socket.emit("typing:update", typing);
  await waitFor("typing relayed", () => bob.of("typing:update").length === 1);
  assert.deepEqual(bob.of("typing:update")[0], typing);
  carol.socket.emit("typing:update", { ...typing, userId: "carol", displayName: "Carol" });

  // Calls: two clients complete an offer/answer/ICE exchange from call:signal events alone.
  const call = await http("POST", "/calls", {
    conversationId: cid, type: "video",
    participants: [{ userId: "alice", displayName: "Alice" }, { userId: "bob", displayName: "Bob" }],
  });
  assert.equal(call.status, 201);
  const callId = call.body.id;
  await waitFor("call:created", () => bob.of("call:created").length === 1 && alice.of("call:created").length === 1);
  const signal = (kind, from, payload, targetId) =>
    http("POST", `/calls/${callId}/signals/${kind}`, { senderId: from, payload, targetId });
  const offer = { type: "offer", sdp: "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\n" };
  assert.equal((await signal("offer", "alice", offer, "bob")).status, 201);
  await waitFor("bob gets the offer", () => bob.of("call:signal").some((s) => s.kind === "offer"));
  const gotOffer = bob.of("call:signal").find((s) => s.kind === "offer");
  assert.deepEqual(gotOffer.payload, offer);
  assert.equal(gotOffer.callId, callId);
  const answer = { type: "answer", sdp: "v=0\r\no=bob 2 2 IN IP4 127.0.0.1\r\n" };
  assert.equal((await signal("answer", "bob", answer)).status, 201);
  await waitFor("alice gets the answer", () => alice.of("call:signal").some((s) => s.kind === "answer"));
  assert.deepEqual(alice.of("call:signal").find((s) => s.kind === "answer").payload, answer);
  for (const [from, to] of [["alice", bob], ["bob", alice]]) {
    const cand = { candidate: `candidate:1 1 udp 2122260223 127.0.0.1 ${from === "alice" ? 50000 : 50001} typ host`, sdpMid: "0", sdpMLineIndex: 0 };
    assert.equal((await signal("ice", from, cand)).status, 201);
    await waitFor(`${from}'s candidate`, () => to.of("call:signal").some((s) => s.kind === "ice" && s.senderId === from));
  }
  assert.ok(!alice.of("call:signal").some((s) => s.senderId === "alice"), "no signal echoed to its sender");
  assert.equal((await http("PATCH", `/calls/${callId}/status`, { status: "active" })).status, 200);
  await waitFor("call:updated", () => bob.of("call:updated").some((c) => c.status === "in_progress"));

  // A call nobody answers becomes missed by itself, announced with call:updated.
  const unanswered = await http("POST", "/calls", {
    conversationId: cid, type: "audio",
    participants: [{ userId: "bob", displayName: "Bob" }, { userId: "alice", displayName: "Alice" }],
  });
  assert.equal(unanswered.status, 201);
  await waitFor("call:updated missed", () =>
    alice.of("call:updated").some((c) => c.id === unanswered.body.id && c.status === "missed" && c.endedAt), 15000);

  // Nothing leaked to the non-member, and nothing arrived twice.
  await sleep(300);
  for (const e of ["message:created", "message:updated", "message:deleted", "typing:update", "call:created", "call:signal", "call:updated"]) {
    assert.equal(carol.of(e).length, 0, `carol got ${e}`);
  }
  assert.equal(alice.of("typing:update").length, 0, "typing is not sent back to its sender");
  assert.equal(bob.of("typing:update").length, 1, "carol's typing was ignored");
  assert.equal(bob.of("message:created").length, 1);
  assert.equal(bob.of("call:created").length, 2);

  // Presence: Alice's last socket closing takes her offline for Bob.
  alice.socket.close();
  await sleep(200);
  assert.ok(online(bob).includes("alice"), "alice still has a socket on instance B");
  alice2.socket.close();
  await waitFor("alice offline for bob", () => online(bob).join() === "bob");

  // A crashed instance's users do not stay online: kill B while Bob is connected to it.
  const dave = await client(GATEWAY, "dave", ["websocket"]);
  const conv2 = await http("POST", "/conversations", {
    type: "one_to_one",
    members: [{ userId: "bob", displayName: "Bob" }, { userId: "dave", displayName: "Dave" }],
  });
  assert.equal(conv2.status, 201);
  await waitFor("dave sees bob", () => online(dave).join() === "bob,dave");
  process.kill(Number(process.env.CHAT_B_PID), "SIGKILL");
  await waitFor("bob expires after his instance crashed", () => online(dave).join() === "dave", 15000);
});
