// The reaction burst of docs/perf/2026-12-reactions.md, run by scripts/bench-reactions.sh
// (not a test file): one group of MEMBERS users, one message, SOCKETS of the members
// connected with the official client, then every member PUTs one of EMOJI_KINDS emoji on
// the message at once, straight to the chat service as the gateway would (x-user-id and
// the internal secret). Prints one JSON report: reactions/s, request latencies, and the
// `message:updated` events and bytes each socket received.
// Env: CHAT_URL, INTERNAL_SECRET, RUN (user id prefix), MEMBERS (≤ 1000), SOCKETS (≤ MEMBERS),
// EMOJI_KINDS (1-10), SETTLE_MS.
import { io } from "socket.io-client";

const CHAT = process.env.CHAT_URL;
const SECRET = process.env.INTERNAL_SECRET;
const RUN = process.env.RUN ?? `b${Date.now()}`;
// Every input bounded: a group holds at most 1000 members.
const bounded = (name, def, lo, hi) => {
  const v = Number(process.env[name] ?? def);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${name} must be ${lo}-${hi}`);
  return v;
};
const MEMBERS = bounded("MEMBERS", 1000, 2, 1000);
const SOCKETS = bounded("SOCKETS", 300, 1, MEMBERS);
const KINDS = bounded("EMOJI_KINDS", 3, 1, 10);
const SETTLE_MS = bounded("SETTLE_MS", 10000, 100, 120000);
const EMOJI = ["👍", "❤️", "😂", "🎉", "🔥", "👀", "🙏", "💯", "🚀", "😢"];
const user = (i) => `${RUN}-u${i}`;

async function call(method, path, as, body) {
  const headers = { "x-user-id": as, "x-internal-secret": SECRET };
  if (body) headers["content-type"] = "application/json";
  const res = await fetch(`${CHAT}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const sockets = [];
try {
  const members = Array.from({ length: MEMBERS }, (_, i) => ({ userId: user(i), displayName: `U${i}` }));
  const g = await call("POST", "/conversations", user(0), { type: "group", name: "burst", members });
  if (g.status !== 201) throw new Error(`group: ${g.status} ${JSON.stringify(g.body)}`);
  const cid = g.body.id;
  const m = await call("POST", `/conversations/${cid}/messages`, user(0), { senderId: user(0), body: "react!" });
  if (m.status !== 201) throw new Error(`send: ${m.status} ${JSON.stringify(m.body)}`);
  const mid = m.body.id;

  for (let i = 0; i < SOCKETS; i += 1) {
    const socket = io(CHAT, { forceNew: true, reconnection: false, transports: ["websocket"] });
    const c = { socket, events: 0, bytes: 0, last: null };
    socket.on("message:updated", (data) => {
      if (data.id !== mid) return;
      c.events += 1;
      c.bytes += Buffer.byteLength(JSON.stringify(data));
      c.last = data;
    });
    sockets.push(c);
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    await socket.emitWithAck("presence:join", { userId: user(i), displayName: `U${i}` });
  }

  const latencies = [];
  const started = performance.now();
  const answers = await Promise.all(
    members.map(async (u, i) => {
      const t = performance.now();
      const r = await call("PUT", `/conversations/${cid}/messages/${mid}/reactions/${encodeURIComponent(EMOJI[i % KINDS])}`, u.userId);
      latencies.push(performance.now() - t);
      return r.status;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const ok = answers.filter((s) => s === 200).length;
  const total = (c) => (c.last ? c.last.reactions.reduce((n, r) => n + r.count, 0) : 0);
  const until = Date.now() + SETTLE_MS;
  while (sockets.some((c) => total(c) !== ok) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1000)); // anything after the trailing edge
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  const ev = sockets.map((c) => c.events).sort((a, b) => a - b);
  const by = sockets.map((c) => c.bytes).sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      members: MEMBERS,
      sockets: SOCKETS,
      emojiKinds: KINDS,
      ok,
      statuses: [...new Set(answers)],
      seconds: +seconds.toFixed(3),
      reactionsPerSec: Math.round(ok / seconds),
      latencyMs: { p50: +pct(50).toFixed(1), p99: +pct(99).toFixed(1), max: +pct(100).toFixed(1) },
      eventsPerSocket: { min: ev[0], median: ev[ev.length >> 1], max: ev.at(-1) },
      bytesPerSocket: { min: by[0], median: by[by.length >> 1], max: by.at(-1) },
      socketsWithFinalState: sockets.filter((c) => total(c) === ok).length,
    }),
  );
} finally {
  for (const c of sockets) c.socket.close();
}
