// Membership consistency across instances, with the official client, against the stack
// tests/e2e/tests/consistency.rs starts: two chat instances (A behind the gateway, B direct),
// authentication on. A removal races a burst of sends and typing: the removed member's
// sockets on both instances get nothing that follows the removal, and every route refuses
// them on both instances. What the removed member received is written to RESULT_FILE, where
// the Rust side compares it with the commit order in PostgreSQL. An addition takes effect
// as promptly: the next event reaches the added member, and presence follows both ways.
// Env: GATEWAY_URL, CHAT_B_URL, INTERNAL_SECRET, RUN (a prefix making user ids unique),
// RESULT_FILE.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { connected, open, request, sleep, waitFor, register as registerAt } from "./support.mjs";

const GATEWAY = process.env.GATEWAY_URL;
const CHAT_B = process.env.CHAT_B_URL;
const SECRET = process.env.INTERNAL_SECRET;
const RUN = process.env.RUN;
const http = (method, path, token, body, headers) =>
  request(GATEWAY, method, path, token, body, headers);

const register = (name) => registerAt(GATEWAY, RUN, name);

// A request straight to instance B as the gateway would forward it for `user`.
async function onB(method, path, user, body) {
  const res = await fetch(`${CHAT_B}${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      "x-internal-secret": SECRET,
      "x-user-id": user.userId,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const socket = (url, user) =>
  connected(open(url, { transports: ["websocket"], auth: { token: user.token } }));

// Events a recorder got after its first `conversation:removed`.
function afterRemoval(c) {
  const i = c.events.findIndex((e) => e.event === "conversation:removed");
  return i < 0 ? null : c.events.slice(i + 1);
}

test("a removal racing a burst: nothing after its commit reaches the removed member", async () => {
  const [owner, gone, s1, s2] = await Promise.all(
    ["owner", "gone", "s1", "s2"].map(register),
  );
  const created = await http("POST", "/conversations", owner.token, {
    type: "group",
    members: [owner, gone, s1, s2].map((u) => ({ userId: u.userId, displayName: "x" })),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const cid = created.body.id;
  // The removed member on both instances, twice on B; a witness on each instance.
  const goneA = await socket(GATEWAY, gone);
  const goneB = await socket(CHAT_B, gone);
  const goneB2 = await socket(CHAT_B, gone);
  const witnessA = await socket(GATEWAY, owner);
  const witnessB = await socket(CHAT_B, s2);
  const typerA = await socket(GATEWAY, s1);
  const typerB = await socket(CHAT_B, s2);

  let stop = false;
  const accepted = [];
  async function burst(sender, n, prefer) {
    for (let i = 0; i < n && !stop; i += 1) {
      const r = await http(
        "POST",
        `/conversations/${cid}/messages`,
        sender.token,
        { senderId: sender.userId, body: `${sender.userId} ${i}` },
        prefer ? { prefer: "respond-async" } : undefined,
      );
      assert.ok([201, 202].includes(r.status), JSON.stringify(r.body));
      accepted.push(r.body.id);
    }
  }
  async function typing() {
    while (!stop) {
      for (const [s, u] of [[typerA, s1], [typerB, s2]]) {
        s.socket.emit("typing:update", {
          conversationId: cid,
          userId: u.userId,
          displayName: "x",
          isTyping: true,
        });
      }
      await sleep(5);
    }
  }
  const sends = [
    burst(s1, 400, false),
    burst(s1, 400, true),
    burst(s2, 400, false),
    burst(s2, 400, true),
  ];
  const typed = typing();
  try {
    await raceAndCheck();
  } finally {
    stop = true;
    await Promise.allSettled([...sends, typed]);
  }

  async function raceAndCheck() {
  // Let the burst reach full speed, then remove.
  await waitFor("the burst under way", () => accepted.length >= 150);
  const removed = await http("DELETE", `/conversations/${cid}/members/${gone.userId}`, owner.token);
  assert.equal(removed.status, 204, JSON.stringify(removed.body));

  // From the answer on, every route refuses the removed member, on both instances.
  const send = { senderId: gone.userId, body: "after removal" };
  assert.equal((await http("POST", `/conversations/${cid}/messages`, gone.token, send)).status, 403);
  assert.equal((await onB("POST", `/conversations/${cid}/messages`, gone, send)).status, 403);
  for (const path of [`/conversations/${cid}`, `/conversations/${cid}/messages`]) {
    assert.equal((await http("GET", path, gone.token)).status, 403, path);
    assert.equal((await onB("GET", path, gone)).status, 403, path);
  }
  const rest = await http("POST", "/calls", gone.token, {
    conversationId: cid,
    type: "audio",
    participants: [gone, owner].map((u) => ({ userId: u.userId, displayName: "x" })),
  });
  assert.equal(rest.status, 403, JSON.stringify(rest.body));
  // Their typing reaches nobody.
  for (const s of [goneA, goneB]) {
    s.socket.emit("typing:update", {
      conversationId: cid,
      userId: gone.userId,
      displayName: "x",
      isTyping: true,
    });
  }

  await sleep(300);
  stop = true;
  await Promise.all(sends);
  await typed;
  // The witnesses got every message; the removed member's sockets their removal notice.
  await waitFor(
    "every message announced to the witnesses",
    () =>
      witnessA.of("message:created").length === accepted.length &&
      witnessB.of("message:created").length === accepted.length,
    20000,
  );
  for (const c of [goneA, goneB, goneB2]) {
    await waitFor("conversation:removed on every socket", () => afterRemoval(c) !== null);
  }
  await sleep(300);
  for (const [name, c] of [["A", goneA], ["B", goneB], ["B2", goneB2]]) {
    const late = afterRemoval(c).map((e) => e.event);
    assert.deepEqual(late, [], `socket ${name} got events after conversation:removed`);
  }
  const typingFromGone = [witnessA, witnessB].flatMap((w) =>
    w.of("typing:update").filter((t) => t.userId === gone.userId),
  );
  assert.deepEqual(typingFromGone, [], "the removed member's typing was relayed");
  const received = [...new Set(
    [goneA, goneB, goneB2].flatMap((c) => c.of("message:created").map((m) => m.id)),
  )];
  writeFileSync(
    process.env.RESULT_FILE,
    JSON.stringify({ conversationId: cid, userId: gone.userId, accepted, received }),
  );
  }
});

test("an added member gets the next event on every instance, and presence follows both ways", async () => {
  const [owner, late, other] = await Promise.all(["owner2", "late", "other2"].map(register));
  const created = await http("POST", "/conversations", owner.token, {
    type: "group",
    members: [owner, other].map((u) => ({ userId: u.userId, displayName: "x" })),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const cid = created.body.id;
  const lateA = await socket(GATEWAY, late);
  const lateB = await socket(CHAT_B, late);
  const ownerB = await socket(CHAT_B, owner);
  const otherA = await socket(GATEWAY, other);
  for (const [c, u] of [[lateA, late], [lateB, late], [ownerB, owner], [otherA, other]]) {
    c.socket.emit("presence:join", { userId: u.userId, displayName: "x" });
  }
  const sees = (c, u) => {
    const lists = c.of("presence:update");
    return lists.length > 0 && lists[lists.length - 1].some((p) => p.userId === u.userId);
  };
  await waitFor("the owner sees the other member online", () => sees(ownerB, other));
  assert.ok(!sees(ownerB, late), "not yet a contact");

  const added = await http("POST", `/conversations/${cid}/members`, owner.token, {
    members: [{ userId: late.userId, displayName: "x" }],
  });
  assert.equal(added.status, 200, JSON.stringify(added.body));
  // The very next message reaches the added member on both instances.
  const r = await http("POST", `/conversations/${cid}/messages`, other.token, {
    senderId: other.userId,
    body: "welcome",
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  for (const c of [lateA, lateB]) {
    await waitFor("message:created for the added member", () =>
      c.of("message:created").some((m) => m.id === r.body.id),
    );
    assert.ok(c.of("conversation:created").some((conv) => conv.id === cid));
  }
  // Typing from the added member reaches the others at once.
  lateB.socket.emit("typing:update", {
    conversationId: cid,
    userId: late.userId,
    displayName: "x",
    isTyping: true,
  });
  await waitFor("typing from the added member", () =>
    otherA.of("typing:update").some((t) => t.userId === late.userId),
  );
  await waitFor("presence: the owner sees the added member", () => sees(ownerB, late));
  await waitFor("presence: the added member sees the owner", () => sees(lateA, owner));

  // Removed again: presence forgets them both ways.
  const gone = await http("DELETE", `/conversations/${cid}/members/${late.userId}`, owner.token);
  assert.equal(gone.status, 204, JSON.stringify(gone.body));
  await waitFor("presence: the owner no longer sees the removed member", () => !sees(ownerB, late));
  await waitFor("presence: the removed member no longer sees the owner", () => !sees(lateA, owner));
});
