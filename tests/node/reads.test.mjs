// `conversation:read` with the official client, against a stack with authentication on that
// tests/e2e/tests/reads.rs starts: the reader's other socket and another member get it when
// the marker moves, nobody outside the conversation does, and a read that moves nothing
// (an older message) sends nothing. Env: GATEWAY_URL, RUN (a prefix making user ids unique).
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, open, register as registerAt, request, sleep, waitFor } from "./support.mjs";

const GATEWAY = process.env.GATEWAY_URL;
const RUN = process.env.RUN;
const http = (method, path, token, body) => request(GATEWAY, method, path, token, body);

const register = (name) => registerAt(GATEWAY, RUN, name);

const connect = (token) => connected(open(GATEWAY, { transports: ["websocket"], auth: { token } }));

async function send(user, cid, body) {
  const r = await http("POST", `/conversations/${cid}/messages`, user.token, {
    senderId: user.userId,
    body,
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

test("conversation:read reaches the reader's other sockets and the other members", async () => {
  const ann = await register("ann");
  const ben = await register("ben");
  const eve = await register("eve");
  const g = await http("POST", "/conversations", ann.token, {
    type: "group",
    members: [ann, ben].map((u) => ({ userId: u.userId, displayName: "x" })),
  });
  assert.equal(g.status, 201, JSON.stringify(g.body));
  const cid = g.body.id;
  const annPhone = await connect(ann.token);
  const annLaptop = await connect(ann.token);
  const benSocket = await connect(ben.token);
  const outsider = await connect(eve.token);

  const first = await send(ben, cid, "one");
  const second = await send(ben, cid, "two");
  const r = await http("POST", `/conversations/${cid}/read`, ann.token, { messageId: second });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.unreadCount, 0);

  for (const [who, c] of [["ann's phone", annPhone], ["ann's laptop", annLaptop], ["ben", benSocket]]) {
    await waitFor(`${who} gets conversation:read`, () => c.of("conversation:read").length === 1);
    const e = c.of("conversation:read")[0];
    assert.deepEqual(Object.keys(e).sort(), ["conversationId", "lastReadMessageId", "readAt", "userId"]);
    assert.equal(e.conversationId, cid);
    assert.equal(e.userId, ann.userId);
    assert.equal(e.lastReadMessageId, second);
    assert.match(e.readAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }

  // An older message: 200, the marker stays, and nobody is told anything.
  const again = await http("POST", `/conversations/${cid}/read`, ann.token, { messageId: first });
  assert.equal(again.status, 200);
  assert.equal(again.body.lastReadMessageId, second);
  // Ben's own send moves his marker silently; a message proves the sockets are flowing.
  await send(ben, cid, "three");
  await waitFor("the next message arrives", () => annPhone.of("message:created").length === 3);
  await sleep(200);
  for (const c of [annPhone, annLaptop, benSocket]) assert.equal(c.of("conversation:read").length, 1);
  assert.equal(outsider.of("conversation:read").length, 0);
  assert.equal(outsider.of("message:created").length, 0);
});
