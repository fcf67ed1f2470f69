// Delivery under repeated short network drops (the shape of AnyCable's published test), with
// the official client against the stack tests/e2e/tests/drops.rs starts: two chat instances
// (A behind the gateway, B direct), authentication on. 20 clients, each through its own TCP
// proxy that drops.mjs cuts for 2 s at random moments, and whose every new connection goes
// to the other instance; 20 messages/s for 15 s into one group of all of them. Every client
// asked for recovery: each reconnect is recovered, and every client ends with every
// message exactly once, in order. Env: GATEWAY_URL, CHAT_B_URL, RUN.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chatTarget, runDrops, resultLine, sizeFromEnv } from "./drops.mjs";

test("every client gets every message exactly once and in order across 2 s drops", async () => {
  const size = sizeFromEnv({}, { clients: 20, seconds: 15, rate: 20, cutMs: 2000, cutEvery: 5 });
  const target = await chatTarget({
    gateway: process.env.GATEWAY_URL,
    run: process.env.RUN,
    clients: size.clients,
  });
  const r = await runDrops({
    ...size,
    ...target,
    socketUrls: [process.env.GATEWAY_URL, process.env.CHAT_B_URL],
    rotate: true,
  });
  console.log(resultLine("chat", r));
  // Otherwise nothing was tested.
  assert.ok(r.reconnects >= size.clients / 2, `only ${r.reconnects} reconnects`);
  assert.ok(r.messages >= 0.9 * size.rate * size.seconds, `only ${r.messages} messages sent`);
  assert.equal(r.notRecovered, 0, `${r.notRecovered} of ${r.reconnects} reconnects got a new session`);
  assert.equal(r.connectedAtEnd, r.clients, "every client connected at the end");
  assert.equal(r.duplicates, 0, "duplicates");
  assert.equal(r.gaps, 0, "messages missing");
  assert.equal(r.outOfOrder, 0, "messages out of order");
  assert.equal(r.complete, r.clients, "clients holding every message exactly once");
  assert.equal(r.neverCaughtUp, 0, "reconnects that never caught up");
});
