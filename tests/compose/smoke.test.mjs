// Smoke test of a running stack through its gateway, the way a browser client uses it: sign
// up, open Socket.IO connections with the token, create a conversation, send and receive
// `message:created`, place a call and exchange its signals, sign out. Users are new on every
// run, so it can be pointed at a stack that already holds data.
//
//   GATEWAY_URL=http://localhost:3000 node --test smoke.test.mjs
//
// Env: GATEWAY_URL (required); WEB_URL (optional: the browser UI's server, also checked);
// SMOKE_READY_SECS (how long to wait for the gateway's /readyz, default 60).
// compose.test.yaml runs it in a container against the containerised stack;
// scripts/test-compose.sh runs it against the binaries it starts.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { io } from "socket.io-client";

const GATEWAY = (process.env.GATEWAY_URL ?? "").replace(/\/+$/, "");
const WEB = (process.env.WEB_URL ?? "").replace(/\/+$/, "");
const READY_SECS = Number(process.env.SMOKE_READY_SECS ?? 60);
if (!GATEWAY) throw new Error("set GATEWAY_URL, e.g. http://localhost:3000");

const run = randomBytes(4).toString("hex");
const sockets = [];
after(() => sockets.forEach((s) => s.close()));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, ms = 10_000) {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function http(method, path, { token, body } = {}) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${GATEWAY}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`${method} ${path}: ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
  }
  return { status: res.status, headers: res.headers, body: json };
}

function expectStatus(res, status, what) {
  assert.equal(res.status, status, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
}

function expectError(res, status, what) {
  expectStatus(res, status, what);
  assert.equal(res.body?.statusCode, status, `${what}: the contract's error body`);
  assert.equal(typeof res.body?.message, "string", `${what}: error message`);
}

async function signUp(name) {
  const user = { userId: `smoke-${run}-${name}`, displayName: `Smoke ${name}`, password: randomBytes(12).toString("hex") };
  const res = await http("POST", "/auth/register", { body: user });
  expectStatus(res, 201, `register ${user.userId}`);
  assert.equal(typeof res.body.token, "string");
  assert.ok(res.body.token.length >= 16, "an opaque token of some length");
  assert.ok(!Number.isNaN(Date.parse(res.body.expiresAt)), "expiresAt is a timestamp");
  assert.deepEqual(res.body.user, { userId: user.userId, displayName: user.displayName });
  return { ...user, token: res.body.token, member: { userId: user.userId, displayName: user.displayName } };
}

// A Socket.IO client through the gateway that records every event it receives.
async function connect(user, transports) {
  const socket = io(GATEWAY, { forceNew: true, transports, reconnection: false, auth: { token: user.token } });
  sockets.push(socket);
  const events = [];
  socket.onAny((event, ...args) => events.push({ event, data: args[0] }));
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  const ack = await socket.timeout(10_000).emitWithAck("presence:join", user.member);
  assert.deepEqual(ack, { ok: true }, `presence:join of ${user.userId}`);
  const of = (name) => events.filter((e) => e.event === name).map((e) => e.data);
  return { socket, of };
}

test("the stack answers through the gateway: accounts, realtime messages and calls", async (t) => {
  await t.test("the gateway is ready", async () => {
    await waitFor(
      `${GATEWAY}/readyz`,
      async () => (await fetch(`${GATEWAY}/readyz`).catch(() => null))?.status === 200,
      READY_SECS * 1000,
    );
  });

  let alice, bob, carol, aliceRt, bobRt, carolRt, cid, message, callId;

  await t.test("sign up, and nothing without a token", async () => {
    alice = await signUp("alice");
    bob = await signUp("bob");
    carol = await signUp("carol");
    const me = await http("GET", "/me", { token: alice.token });
    expectStatus(me, 200, "GET /me");
    assert.deepEqual(me.body, alice.member);

    const anonymous = await http("GET", `/conversations/user/${alice.userId}`);
    expectError(anonymous, 401, "a request without a token");
    assert.match(anonymous.headers.get("www-authenticate") ?? "", /^Bearer/);
    expectError(await http("GET", "/me", { token: "not-a-token" }), 401, "an unknown token");
    await assert.rejects(
      connect({ ...alice, token: "not-a-token" }, ["websocket"]),
      (err) => err.message === "unauthorized",
      "a socket with an unknown token is refused",
    );
  });

  await t.test("sockets connect with their tokens", async () => {
    aliceRt = await connect(alice, ["websocket"]);
    bobRt = await connect(bob, ["polling", "websocket"]);
    carolRt = await connect(carol, ["websocket"]);
  });

  await t.test("a conversation, a message, and message:created for the members only", async () => {
    const conv = await http("POST", "/conversations", {
      token: alice.token,
      body: { type: "one_to_one", members: [alice.member, bob.member] },
    });
    expectStatus(conv, 201, "create the conversation");
    cid = conv.body.id;
    expectError(await http("GET", `/conversations/${cid}/messages`, { token: carol.token }), 403, "a non-member reads");

    const body = `hello bob (${run})`;
    const sent = await http("POST", `/conversations/${cid}/messages`, {
      token: alice.token,
      body: { senderId: alice.userId, body, clientMessageId: `smoke-${run}` },
    });
    // 201: committed; 202: queued, announced with message:created once stored. Both keep
    // the contract's message shape.
    assert.ok([201, 202].includes(sent.status), `send: ${sent.status} ${JSON.stringify(sent.body)}`);
    message = sent.body;
    assert.equal(message.body, body);
    assert.equal(message.senderId, alice.userId);

    await waitFor("bob's and alice's message:created", () =>
      bobRt.of("message:created").some((m) => m.id === message.id) &&
      aliceRt.of("message:created").some((m) => m.id === message.id));
    const received = bobRt.of("message:created").find((m) => m.id === message.id);
    if (sent.status === 201) assert.deepEqual(received, message);
    else assert.deepEqual([received.body, received.senderId, received.conversationId], [body, alice.userId, cid]);

    const history = await http("GET", `/conversations/${cid}/messages`, { token: bob.token });
    expectStatus(history, 200, "bob reads the conversation");
    assert.deepEqual(history.body.map((m) => m.id), [message.id]);
  });

  await t.test("a call: call:created, offer and answer as call:signal, call:updated", async () => {
    const call = await http("POST", "/calls", {
      token: alice.token,
      body: { conversationId: cid, type: "video", participants: [alice.member, bob.member] },
    });
    expectStatus(call, 201, "start the call");
    assert.equal(call.body.status, "ringing");
    callId = call.body.id;
    await waitFor("bob's call:created", () => bobRt.of("call:created").some((c) => c.id === callId));

    const offer = { type: "offer", sdp: `v=0\r\no=alice ${run} 1 IN IP4 127.0.0.1\r\n` };
    expectStatus(
      await http("POST", `/calls/${callId}/signals/offer`, {
        token: alice.token,
        body: { senderId: alice.userId, payload: offer, targetId: bob.userId },
      }),
      201,
      "alice's offer",
    );
    await waitFor("the offer reaches bob", () => bobRt.of("call:signal").some((s) => s.callId === callId && s.kind === "offer"));
    assert.deepEqual(bobRt.of("call:signal").find((s) => s.kind === "offer").payload, offer);

    const answer = { type: "answer", sdp: `v=0\r\no=bob ${run} 1 IN IP4 127.0.0.1\r\n` };
    expectStatus(
      await http("POST", `/calls/${callId}/signals/answer`, {
        token: bob.token,
        body: { senderId: bob.userId, payload: answer },
      }),
      201,
      "bob's answer",
    );
    await waitFor("the answer reaches alice", () => aliceRt.of("call:signal").some((s) => s.callId === callId && s.kind === "answer"));
    assert.deepEqual(aliceRt.of("call:signal").find((s) => s.kind === "answer").payload, answer);

    const accepted = await http("PATCH", `/calls/${callId}/status`, { token: bob.token, body: { status: "active" } });
    expectStatus(accepted, 200, "bob accepts");
    assert.equal(accepted.body.status, "in_progress");
    const ended = await http("PATCH", `/calls/${callId}/status`, { token: alice.token, body: { status: "ended" } });
    expectStatus(ended, 200, "alice hangs up");
    assert.ok(ended.body.endedAt, "endedAt is set");
    await waitFor("call:updated ended", () => bobRt.of("call:updated").some((c) => c.id === callId && c.status === "ended"));
  });

  await t.test("nothing reached the non-member", async () => {
    // Events to carol would have come with the ones above; give stragglers a moment.
    await sleep(300);
    for (const e of ["message:created", "call:created", "call:signal", "call:updated"]) {
      assert.equal(carolRt.of(e).length, 0, `carol got ${e}`);
    }
  });

  await t.test("sign out revokes the token", async () => {
    expectStatus(await http("POST", "/auth/logout", { token: alice.token }), 204, "logout");
    expectError(await http("GET", "/me", { token: alice.token }), 401, "the revoked token");
    expectStatus(await http("GET", "/me", { token: bob.token }), 200, "bob's token still works");
  });

  if (WEB) {
    await t.test("the browser UI is served with its gateway address", async () => {
      const page = await fetch(`${WEB}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
      const bundle = (await page.text()).match(/<script[^>]+src="([^"]+)"/)?.[1];
      assert.ok(bundle, "the app shell loads a bundle");
      const script = await fetch(new URL(bundle, `${WEB}/`));
      assert.equal(script.status, 200, `the bundle ${bundle}`);
      assert.match(script.headers.get("content-type") ?? "", /javascript/);
      const config = await fetch(`${WEB}/config.json`);
      assert.equal(config.status, 200);
      const { apiUrl } = await config.json();
      assert.match(apiUrl, /^(https?:\/\/[^/]+)?$/, "the gateway's address, or empty for the page's own origin");
    });
  }
});
