// Socket.IO through the gateway when chat is co-located (SOCKET_DIR): WebSockets are handed
// to chat, socket and all. Started by tests/e2e/tests/handoff.rs with authentication on;
// Alice and Bob share CONVERSATION_ID.
// Env: GATEWAY_URL, GATEWAY_PID, GATEWAY_METRICS_URL, CHAT_URL, INTERNAL_SECRET, ALICE_TOKEN,
// BOB_TOKEN, CONVERSATION_ID, MODE ("handoff": the gateway hands WebSockets over and is
// killed at the end; "tunnel": it tunnels them, nothing is handed over).
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, open, request, waitFor } from "./support.mjs";

const GATEWAY = process.env.GATEWAY_URL;
const CHAT = process.env.CHAT_URL;
const CONVERSATION = process.env.CONVERSATION_ID;
const SECRET = process.env.INTERNAL_SECRET;
const MODE = process.env.MODE;
assert.ok(MODE === "handoff" || MODE === "tunnel", `MODE=${MODE}`);

function connect(auth, transports, extraHeaders = {}) {
  const c = open(GATEWAY, { transports, auth, extraHeaders });
  return connected(c).catch((err) => {
    c.socket.close();
    throw err;
  });
}

// The gateway's count of WebSockets handed to chat (0 when it has none).
async function handedOff() {
  const text = await (await fetch(process.env.GATEWAY_METRICS_URL)).text();
  const line = text.split("\n").find((l) => l.startsWith("gateway_websockets_handed_off_total"));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

// Typing both ways, then a message to both: `send` posts it (through the gateway, or
// straight to chat once the gateway is gone).
async function talk(alice, bob, send, round) {
  // The names are the sender's own whatever is claimed here (authentication is on).
  const typing = { conversationId: CONVERSATION, userId: "someone", displayName: "Someone", isTyping: round % 2 === 0 };
  const before = { a: alice.of("typing:update").length, b: bob.of("typing:update").length };
  alice.socket.emit("typing:update", typing);
  await waitFor("bob sees alice typing", () => bob.of("typing:update").length === before.b + 1);
  bob.socket.emit("typing:update", typing);
  await waitFor("alice sees bob typing", () => alice.of("typing:update").length === before.a + 1);
  assert.equal(bob.of("typing:update").at(-1).userId, `alice`);
  assert.equal(alice.of("typing:update").at(-1).userId, `bob`);

  const created = { a: alice.of("message:created").length, b: bob.of("message:created").length };
  const sent = await send(`round ${round}`);
  assert.equal(sent.status, 201, JSON.stringify(sent.body));
  await waitFor("message:created on both sockets", () =>
    alice.of("message:created").length === created.a + 1 && bob.of("message:created").length === created.b + 1);
  assert.deepEqual(bob.of("message:created").at(-1), sent.body);
}

test("sockets through the gateway: events both ways, identity headers ignored, and (handed off) they outlive the gateway", async () => {
  const handedBefore = await handedOff();
  // Alice straight over WebSocket; Bob long-polls first, then upgrades (the upgrade carries
  // the session id: handed over without counting a new connection).
  const alice = await connect({ token: process.env.ALICE_TOKEN }, ["websocket"]);
  const bob = await connect({ token: process.env.BOB_TOKEN }, ["polling", "websocket"]);
  for (const c of [alice, bob]) {
    assert.deepEqual(await c.socket.emitWithAck("presence:join", {}), { ok: true });
  }
  await waitFor("bob's upgrade to WebSocket", () => bob.socket.io.engine.transport.name === "websocket");

  const viaGateway = (body) =>
    request(GATEWAY, "POST", `/conversations/${CONVERSATION}/messages`, process.env.ALICE_TOKEN, { senderId: "alice", body });
  await talk(alice, bob, viaGateway, 0);

  // Identity headers a client writes on its upgrade (even the right secret) are not who it
  // is: without a token it is refused.
  await assert.rejects(
    connect({}, ["websocket"], { "x-user-id": "alice", "x-internal-secret": SECRET }),
    (err) => err.message === "unauthorized",
  );

  const handed = (await handedOff()) - handedBefore;
  if (MODE === "tunnel") {
    assert.equal(handed, 0, "nothing is handed over without a chat listening on its socket");
    return;
  }
  // Alice's WebSocket, Bob's upgrade and the refused one.
  assert.equal(handed, 3);

  // No gateway hop remains: kill it and the sockets still carry everything.
  process.kill(Number(process.env.GATEWAY_PID), "SIGKILL");
  await waitFor("the gateway gone", () => fetch(`${GATEWAY}/healthz`).then(() => false, () => true));
  const viaChat = (body) =>
    request(CHAT, "POST", `/conversations/${CONVERSATION}/messages`, null, { senderId: "alice", body }, {
      "x-user-id": "alice",
      "x-internal-secret": SECRET,
    });
  await talk(alice, bob, viaChat, 1);
  assert.ok(alice.socket.connected && bob.socket.connected);
});
