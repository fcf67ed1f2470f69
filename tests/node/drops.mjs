// Delivery under repeated short network drops, the shape of AnyCable's published test: N
// official socket.io clients, each through its own TCP proxy (node `net`) that this harness
// cuts for CUT_MS (2 s) at random moments: both sides destroyed, new connections refused
// (accepted and destroyed at once) until the cut ends. Meanwhile one sender sends a steady
// stream of messages over HTTP, one at a time, so that their order is the order of the
// answers. At the end every client must have every message exactly once and in order.
//
// Used twice: by drops.test.mjs (small, with assertions, against the test command's chat
// stack) and as a benchmark (scripts/bench-drops.sh runs `node drops.mjs`, larger, against
// the chat service and the Node socket.io peer with its own recovery). Not a test file.
//
// CLI env: TARGET (chat|node), SOCKET_URLS (comma-separated; clients spread over them),
// GATEWAY_URL (chat: registrations and sends), PEER_URL (node: sends), CLIENTS (20),
// SECONDS (15), RATE (messages/s, 20), CUT_MS (2000), CUT_EVERY (mean seconds between a
// client's cuts, 5), RUN (user id prefix). Prints one `RESULT drops ...` line and the JSON.
import net from "node:net";
import { io } from "socket.io-client";
import { request } from "./http.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every input bounded: a mistyped size must not start a million sockets.
function bounded(name, value, fallback, min, max) {
  const v = value === undefined || value === "" ? fallback : Number(value);
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new Error(`${name}: a number from ${min} to ${max}, got ${value}`);
  }
  return v;
}

// A TCP proxy on a free loopback port to `targets` (base URLs): its k-th connection goes to
// targets[(first + k) % n], so that with several instances a client comes back to another
// one. `cut(ms)` drops every connection through it and refuses new ones for `ms`.
async function proxy(targets, first) {
  const addrs = targets.map((t) => {
    const url = new URL(t);
    return { host: url.hostname, port: Number(url.port || 80) };
  });
  let next = first;
  const pairs = new Set();
  let downUntil = 0;
  const server = net.createServer((c) => {
    if (Date.now() < downUntil) {
      c.destroy();
      return;
    }
    const { host, port } = addrs[next % addrs.length];
    next += 1;
    const u = net.connect(port, host);
    const pair = [c, u];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      c.destroy();
      u.destroy();
    };
    for (const s of pair) {
      s.setNoDelay(true);
      s.on("error", end);
      s.on("close", end);
    }
    c.pipe(u);
    u.pipe(c);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut(ms) {
      downUntil = Date.now() + ms;
      for (const [c, u] of pairs) {
        c.destroy();
        u.destroy();
      }
      pairs.clear();
    },
    close() {
      for (const [c, u] of pairs) {
        c.destroy();
        u.destroy();
      }
      server.close();
    },
  };
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// Runs the harness. `o`:
// - socketUrls: where clients connect (client i through its proxy to socketUrls[i % n]; with
//   `rotate`, each new connection of a client to the next one, starting at i % n);
// - auth(i): client i's CONNECT auth payload (the official client resends it on reconnect,
//   with `pid` and `offset` added when the server gave a pid);
// - send(seq): sends message `seq` (body `drop <seq>`), resolves once accepted;
// - seqOf(event, data): the seq of a received event that is one of the stream's messages,
//   else null;
// - clients, seconds, rate, cutMs, cutEvery; settleMs: the longest wait, after the last
//   send, for the clients to catch up.
// Returns the report (plain numbers; the caller asserts on them).
export async function runDrops(o) {
  const clients = [];
  const proxies = [];
  let stop = false;
  try {
    for (let i = 0; i < o.clients; i += 1) {
      proxies.push(await proxy(o.rotate ? o.socketUrls : [o.socketUrls[i % o.socketUrls.length]], i));
    }
    let accepted = 0;
    for (let i = 0; i < o.clients; i += 1) {
      const socket = io(proxies[i].url, {
        forceNew: true,
        transports: ["websocket"],
        auth: o.auth(i),
        // Retries soon after a cut ends, so that the figures are about recovery, not backoff.
        reconnectionDelay: 200,
        reconnectionDelayMax: 1000,
      });
      const c = {
        socket,
        got: [],
        connects: 0,
        disconnects: 0,
        recovered: 0,
        notRecovered: 0,
        waiting: [],
        catchUpMs: [],
        have: new Set(),
        prefix: 0,
        attemptAt: 0,
        acceptedAtAttempt: 0,
      };
      // The clock of a reconnect starts with its successful attempt (the last one before
      // `connect`): socket.io replays the missed events before the CONNECT answer, so that
      // the client has them when `connect` fires; the chat service sends them after it.
      socket.io.on("reconnect_attempt", () => {
        c.attemptAt = performance.now();
        c.acceptedAtAttempt = accepted;
      });
      socket.on("connect", () => {
        c.connects += 1;
        if (c.connects === 1) return;
        if (socket.recovered) c.recovered += 1;
        else c.notRecovered += 1;
        // Caught up once it holds every message accepted before this attempt began (any
        // buffered before `connect` are counted from the attempt too).
        c.waiting.push({ at: c.attemptAt, need: c.acceptedAtAttempt });
        settle(c);
      });
      socket.on("disconnect", () => {
        c.disconnects += 1;
      });
      socket.onAny((event, data) => {
        const seq = o.seqOf(event, data);
        if (seq === null) return;
        c.got.push(seq);
        c.have.add(seq);
        while (c.have.has(c.prefix)) c.prefix += 1;
        settle(c);
      });
      clients.push(c);
    }
    function settle(c) {
      const now = performance.now();
      c.waiting = c.waiting.filter((w) => {
        if (c.prefix < w.need) return true;
        c.catchUpMs.push(now - w.at);
        return false;
      });
    }
    const until = Date.now() + 30000;
    while (clients.some((c) => c.connects === 0)) {
      if (Date.now() > until) {
        throw new Error(`${clients.filter((c) => c.connects === 0).length} clients never connected`);
      }
      await sleep(50);
    }
    // Joined rooms before the first message (the chat service joins at CONNECT, the peer in
    // its connection handler; both before the CONNECT answer reaches the client).
    await sleep(300);

    // Cuts: each proxy, at random moments (uniform gaps averaging cutEvery s), until the end.
    const t0 = performance.now();
    const end = t0 + o.seconds * 1000;
    let cuts = 0;
    const cutters = proxies.map(async (p) => {
      for (;;) {
        const gap = Math.random() * 2 * o.cutEvery * 1000;
        const at = performance.now() + gap;
        if (at + o.cutMs > end || stop) return;
        await sleep(gap);
        if (stop) return;
        p.cut(o.cutMs);
        cuts += 1;
        await sleep(o.cutMs);
      }
    });

    // The stream: message seq is due at t0 + seq / rate; one in the air at a time.
    let seq = 0;
    while (!stop && performance.now() < end) {
      const due = t0 + (seq * 1000) / o.rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      await o.send(seq);
      seq += 1;
      accepted = seq;
    }
    const sendSecs = (performance.now() - t0) / 1000;
    await Promise.all(cutters);

    // Every client back and holding every message, or settleMs passed.
    const settleStart = performance.now();
    const settleUntil = settleStart + o.settleMs;
    while (
      performance.now() < settleUntil &&
      clients.some((c) => !c.socket.connected || c.prefix < seq || c.got.length < seq)
    ) {
      await sleep(50);
    }
    // A little longer, for duplicates arriving after the last message.
    await sleep(300);
    const settleMs = performance.now() - settleStart;

    let duplicates = 0;
    let gaps = 0;
    let outOfOrder = 0;
    let complete = 0;
    for (const c of clients) {
      const seen = new Set();
      let last = -1;
      for (const s of c.got) {
        if (seen.has(s)) {
          duplicates += 1;
          continue;
        }
        seen.add(s);
        if (s < last) outOfOrder += 1;
        last = s;
      }
      let missing = 0;
      for (let s = 0; s < seq; s += 1) if (!seen.has(s)) missing += 1;
      gaps += missing;
      if (missing === 0 && c.got.length === seq) complete += 1;
    }
    const catchUp = clients.flatMap((c) => c.catchUpMs).sort((a, b) => a - b);
    const round = (v) => (v === null ? null : Math.round(v * 10) / 10);
    return {
      clients: o.clients,
      messages: seq,
      sendSecs: round(sendSecs),
      sendRate: round(seq / sendSecs),
      cuts,
      disconnects: clients.reduce((n, c) => n + c.disconnects, 0),
      reconnects: clients.reduce((n, c) => n + c.connects - 1, 0),
      recovered: clients.reduce((n, c) => n + c.recovered, 0),
      notRecovered: clients.reduce((n, c) => n + c.notRecovered, 0),
      connectedAtEnd: clients.filter((c) => c.socket.connected).length,
      complete,
      duplicates,
      gaps,
      outOfOrder,
      // From the successful reconnection attempt to holding every message accepted before it.
      // Reconnects that never caught up (their messages were lost) are not in the quantiles.
      neverCaughtUp: clients.reduce((n, c) => n + c.waiting.length, 0),
      catchUpP50Ms: round(quantile(catchUp, 0.5)),
      catchUpP99Ms: round(quantile(catchUp, 0.99)),
      catchUpMaxMs: round(catchUp.length ? catchUp[catchUp.length - 1] : null),
      settleMs: round(settleMs),
    };
  } finally {
    stop = true;
    for (const c of clients) c.socket.close();
    for (const p of proxies) p.close();
  }
}

const bodySeq = (body) => {
  const m = typeof body === "string" ? /^drop (\d+)$/.exec(body) : null;
  return m ? Number(m[1]) : null;
};

// The chat stack: `clients` users and a sender registered through the gateway, one group
// of all of them; clients ask for recovery. Returns runDrops' target-specific options.
export async function chatTarget({ gateway, run, clients }) {
  const users = [];
  // A few registrations at a time: each hashes a password.
  for (let i = 0; i <= clients; i += 8) {
    const batch = [];
    for (let j = i; j < Math.min(i + 8, clients + 1); j += 1) {
      const userId = `${run}-d${j}`;
      batch.push(
        request(gateway, "POST", "/auth/register", null, {
          userId,
          displayName: `Drop ${j}`,
          password: `password-${userId}`,
        }).then((r) => {
          if (r.status !== 201) throw new Error(`register ${userId}: ${r.status} ${JSON.stringify(r.body)}`);
          return { userId, token: r.body.token };
        }),
      );
    }
    users.push(...(await Promise.all(batch)));
  }
  const sender = users[clients];
  const created = await request(gateway, "POST", "/conversations", sender.token, {
    type: "group",
    name: "drops",
    members: users.map((u) => ({ userId: u.userId, displayName: "x" })),
  });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  const cid = created.body.id;
  return {
    conversationId: cid,
    auth: (i) => ({ token: users[i].token, recovery: true }),
    async send(seq) {
      const r = await request(gateway, "POST", `/conversations/${cid}/messages`, sender.token, {
        senderId: sender.userId,
        body: `drop ${seq}`,
      });
      if (r.status !== 201) throw new Error(`send ${seq}: ${r.status} ${JSON.stringify(r.body)}`);
    },
    seqOf: (event, data) =>
      event === "message:created" && data?.conversationId === cid ? bodySeq(data.body) : null,
  };
}

// The Node socket.io peer (loadtest/peers/node-socketio, RECOVERY=1): clients join `room`,
// sends go to its HTTP route, which emits `message:created` to the room.
export function nodeTarget({ peer, room }) {
  return {
    auth: () => ({ room }),
    async send(seq) {
      const r = await request(peer, "POST", `/conversations/${encodeURIComponent(room)}/messages`, null, {
        senderId: "sender",
        body: `drop ${seq}`,
      });
      if (r.status !== 201) throw new Error(`send ${seq}: ${r.status} ${JSON.stringify(r.body)}`);
    },
    seqOf: (event, data) =>
      event === "message:created" && data?.conversationId === room ? bodySeq(data.body) : null,
  };
}

// The size of a run from the environment, bounded.
export function sizeFromEnv(env, defaults = {}) {
  return {
    clients: bounded("CLIENTS", env.CLIENTS, defaults.clients ?? 20, 1, 2000),
    seconds: bounded("SECONDS", env.SECONDS, defaults.seconds ?? 15, 3, 3600),
    rate: bounded("RATE", env.RATE, defaults.rate ?? 20, 1, 2000),
    cutMs: bounded("CUT_MS", env.CUT_MS, defaults.cutMs ?? 2000, 100, 60000),
    cutEvery: bounded("CUT_EVERY", env.CUT_EVERY, defaults.cutEvery ?? 5, 1, 600),
    settleMs: bounded("SETTLE_MS", env.SETTLE_MS, defaults.settleMs ?? 20000, 1000, 600000),
  };
}

// `key=value` words of a report, for the benchmark script.
export const resultLine = (name, r) =>
  `RESULT drops target=${name} ` + Object.entries(r).map(([k, v]) => `${k}=${v}`).join(" ");

if (import.meta.url === `file://${process.argv[1]}`) {
  const env = process.env;
  const size = sizeFromEnv(env);
  const socketUrls = (env.SOCKET_URLS || "").split(",").filter(Boolean);
  if (socketUrls.length === 0) throw new Error("SOCKET_URLS: where the clients connect");
  let target;
  if (env.TARGET === "chat") {
    target = await chatTarget({ gateway: env.GATEWAY_URL, run: env.RUN || `drops${Date.now()}`, clients: size.clients });
  } else if (env.TARGET === "node") {
    target = nodeTarget({ peer: env.PEER_URL, room: env.RUN || "drops" });
  } else {
    throw new Error("TARGET: chat or node");
  }
  const report = await runDrops({ ...size, ...target, socketUrls });
  console.log(resultLine(env.TARGET, report));
  console.log(JSON.stringify(report));
  process.exit(0);
}
