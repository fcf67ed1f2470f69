// The Socket.IO contract, both ways: a scenario through the gateway that makes the server send
// every event services/gateway/api/asyncapi.json lists, each checked against its schema as it
// arrives (support.mjs fails the file on any event outside the document), and each seen at
// least once (so the document lists nothing the server does not send). Run by
// tests/e2e/tests/contract.rs against a signed-in stack. Env: GATEWAY_URL, RUN.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, open, request, waitFor, register as registerAt } from "./support.mjs";
import { sent } from "./events-contract.mjs";

const GATEWAY = process.env.GATEWAY_URL;
const RUN = process.env.RUN;
const http = async (method, path, token, body, expect) => {
  const r = await request(GATEWAY, method, path, token, body);
  assert.equal(r.status, expect, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
};
const register = (name) => registerAt(GATEWAY, RUN, name);
// Recovery on, so recorded events carry their offset as the document says they may.
const connect = (user) =>
  connected(open(GATEWAY, { transports: ["websocket"], auth: { token: user.token, recovery: true } }));

test("the server sends every event of the AsyncAPI document, each as it describes", async () => {
  const [ann, bob] = await Promise.all(["ann", "bob"].map(register));
  const a = await connect(ann);
  const b = await connect(bob);
  a.socket.emit("presence:join", { userId: ann.userId, displayName: "Ann" });
  b.socket.emit("presence:join", { userId: bob.userId, displayName: "Bob" });

  const members = [ann, bob].map((u) => ({ userId: u.userId, displayName: u.userId }));
  const conv = await http("POST", "/conversations", ann.token, { type: "group", members }, 201);
  await waitFor("conversation:created", () => b.of("conversation:created").length === 1);
  await http("PATCH", `/conversations/${conv.id}`, ann.token, { name: "Events" }, 200);

  const base = `/conversations/${conv.id}/messages`;
  const msg = await http("POST", base, ann.token, { senderId: ann.userId, body: "hello" }, 201);
  await http("PATCH", `${base}/${msg.id}`, ann.token, { body: "hello again" }, 200);
  await http("PUT", `${base}/${msg.id}/reactions/${encodeURIComponent("👍")}`, bob.token, undefined, 200);
  await http("POST", `/conversations/${conv.id}/read`, bob.token, { messageId: msg.id }, 200);
  await http("DELETE", `${base}/${msg.id}`, ann.token, undefined, 200);

  await waitFor("bob in the conversation's room", () => b.of("message:created").length === 1);
  a.socket.emit("typing:update", { conversationId: conv.id, userId: ann.userId, displayName: "Ann", isTyping: true });

  const call = await http("POST", "/calls", ann.token, { conversationId: conv.id, type: "audio", participants: members }, 201);
  await http("POST", `/calls/${call.id}/signals/offer`, ann.token, {
    senderId: ann.userId,
    targetId: bob.userId,
    payload: { type: "offer", sdp: "v=0" },
  }, 201);
  await http("PATCH", `/calls/${call.id}/status`, bob.token, { status: "in_progress" }, 200);

  // Last: bob leaves, and hears conversation:removed.
  await http("DELETE", `/conversations/${conv.id}/members/${bob.userId}`, bob.token, undefined, 204);

  const seen = () => new Set([...a.events, ...b.events].map((e) => e.event));
  await waitFor("every event of the document", () => [...sent.keys()].every((name) => seen().has(name)), 15_000)
    .catch(() => {
      const missing = [...sent.keys()].filter((name) => !seen().has(name));
      assert.fail(`never sent, though the document lists them: ${missing.join(", ")}`);
    });
});
