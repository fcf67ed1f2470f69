// Socket.IO sign-in with the official client, against a stack with authentication on that
// tests/e2e/tests/identity.rs starts (MAX_SOCKETS_PER_USER=2). Alice and Bob share
// CONVERSATION_ID; Carol is not in it; REVOKED_TOKEN was signed out.
// Env: GATEWAY_URL, ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN, REVOKED_TOKEN, CONVERSATION_ID.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, open, sleep, waitFor } from "./support.mjs";

const GATEWAY = process.env.GATEWAY_URL;
const CONVERSATION = process.env.CONVERSATION_ID;
const TOKENS = {
  alice: process.env.ALICE_TOKEN,
  bob: process.env.BOB_TOKEN,
  carol: process.env.CAROL_TOKEN,
  revoked: process.env.REVOKED_TOKEN,
};
// Connects with `auth`; resolves to { socket, events, of } or rejects with the connect_error.
function connect(auth, transports = ["websocket"]) {
  const c = open(GATEWAY, { transports, auth });
  return connected(c).catch((err) => {
    c.socket.close();
    throw err;
  });
}

async function refused(auth, transports) {
  await assert.rejects(connect(auth, transports), (err) => {
    assert.equal(err.message, "unauthorized");
    return true;
  });
}

test("a socket without a valid token is refused with CONNECT_ERROR", async () => {
  await refused({});
  await refused({ token: "A".repeat(43) }, ["polling"]);
  await refused({ token: TOKENS.revoked });
  await refused({ token: 42 });
});

test("presence and typing act as the signed-in user whatever they claim", async () => {
  const alice = await connect({ token: TOKENS.alice });
  const bob = await connect({ token: TOKENS.bob }, ["polling", "websocket"]);
  const carol = await connect({ token: TOKENS.carol });

  // Alice claims to be Bob: she comes online as herself.
  assert.deepEqual(
    await alice.socket.emitWithAck("presence:join", { userId: "bob", displayName: "Mallory" }),
    { ok: true },
  );
  assert.deepEqual(await bob.socket.emitWithAck("presence:join", {}), { ok: true });
  await waitFor("bob sees alice online under her account name", () =>
    bob.of("presence:update").some((list) =>
      list.some((u) => u.userId === "alice" && u.displayName === "User alice"),
    ),
  );
  assert.ok(
    bob.of("presence:update").every((list) => list.every((u) => u.displayName !== "Mallory")),
  );

  // Alice types claiming to be Bob: Bob receives it as Alice's; Alice gets no echo.
  alice.socket.emit("typing:update", {
    conversationId: CONVERSATION,
    userId: "bob",
    displayName: "Mallory",
    isTyping: true,
  });
  await waitFor("bob sees alice typing", () => bob.of("typing:update").length > 0);
  assert.deepEqual(bob.of("typing:update")[0], {
    conversationId: CONVERSATION,
    userId: "alice",
    displayName: "User alice",
    isTyping: true,
  });

  // Carol is not a member: claiming Alice's id does not let her type there.
  const ack = await carol.socket.emitWithAck("typing:update", {
    conversationId: CONVERSATION,
    userId: "alice",
    displayName: "Alice",
    isTyping: true,
  });
  assert.deepEqual(ack, { ok: false });
  await sleep(300);
  assert.equal(bob.of("typing:update").length, 1);
  assert.equal(alice.of("typing:update").length, 0);

  // Message events reach the signed-in members without presence:join.
  const res = await fetch(`${GATEWAY}/conversations/${CONVERSATION}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKENS.bob}` },
    body: JSON.stringify({ senderId: "bob", body: "signed" }),
  });
  assert.equal(res.status, 201);
  await waitFor("alice gets message:created", () => alice.of("message:created").length === 1);
  await sleep(200);
  assert.equal(carol.of("message:created").length, 0);
  [alice, bob, carol].forEach((c) => c.socket.close());
});

test("a user holds at most MAX_SOCKETS_PER_USER sockets", async () => {
  const first = await connect({ token: TOKENS.carol });
  const second = await connect({ token: TOKENS.carol }, ["polling"]);
  await assert.rejects(connect({ token: TOKENS.carol }), (err) => {
    assert.equal(err.message, "too many connections");
    return true;
  });
  first.socket.close();
  // The slot frees once the server has seen the close.
  await waitFor("a slot frees up", async () => {
    try {
      await connect({ token: TOKENS.carol });
      return true;
    } catch {
      return false;
    }
  });
  second.socket.close();
});
