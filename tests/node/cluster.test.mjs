// The platform on several hosts behind HAProxy (scripts/test-cluster.sh makes the hosts out
// of network namespaces and starts everything): two gateways behind the balancer's public
// port, three chat instances behind its internal one (sticky by its SERVERID cookie), two
// workers sharing the send stream's partitions. CLUSTER_TOPOLOGY=colocated: a gateway beside
// each chat instance instead, handing it its WebSockets, the gateways sticky (GWID): the
// sockets' instances are then the gateways' servers. Every socket is checked for exactly-once
// and order against the messages sent; the faults are whole hosts lost: the host's link cut
// first (no FIN or RST reaches anyone, as when a machine loses power), then its processes
// killed.
// Env (set by the script): LB_URL, REDIS_SEED (a Redis Cluster node, host:port),
// CLUSTER_NAMESPACE, STREAM_PARTITIONS, HOST_NS_<host>, HOST_LINK_<host>, HOST_ADDR_<host>
// for app1, app2, app3, work2, r1, r2 and r3.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { io } from "socket.io-client";
import { request, waitFor, register as registerAt } from "./support.mjs";

const LB = process.env.LB_URL;
// Where a socket lands, in HAProxy's terms: the backend, its servers (one per chat host), and
// the cookie that pins a client to one.
const COLOCATED = process.env.CLUSTER_TOPOLOGY === "colocated";
const SOCKETS = COLOCATED
  ? { backend: "gateways", servers: ["gw1", "gw2", "gw3"], cookie: "GWID" }
  : { backend: "chats", servers: ["chat1", "chat2", "chat3"], cookie: "SERVERID" };
const STATS = `${LB}:8404/stats;csv`;
// Every key of the namespace is in one hash slot on a cluster: its prefix is a hash tag.
const PREFIX = `{${process.env.CLUSTER_NAMESPACE}}`;
const PARTITIONS = Number(process.env.STREAM_PARTITIONS);
const RUN = `cl${Date.now().toString(36)}`;
const [redisHost, redisPort] = process.env.REDIS_SEED.split(":");

const http = (method, path, token, body) => request(LB, method, path, token, body);
const register = (name) => registerAt(LB, RUN, name);

const clients = [];
after(() => clients.forEach((c) => c.socket.close()));

// A socket of `user` through the balancer that reconnects by itself and asks for recovery,
// recording every event and every connect. `pin`: the chat instance HAProxy is asked for
// (its cookie), as a client sent back there by the cookie would ask.
function client(user, { transports = ["websocket"], pin } = {}) {
  const socket = io(LB, {
    forceNew: true,
    transports,
    auth: { token: user.token, recovery: true },
    reconnection: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    randomizationFactor: 0,
    // Long-polling keeps the balancer's cookie (engine.io-client's cookie jar in Node); a
    // pinned socket sends only its own.
    withCredentials: !pin,
    extraHeaders: pin ? { cookie: `${SOCKETS.cookie}=${pin}` } : {},
  });
  const c = { socket, user, name: `${user.userId}${pin ? `@${pin}` : ""} (${transports})`, events: [], connects: [], disconnects: [], errors: [] };
  socket.onAny((event, ...args) => c.events.push({ event, data: args[0] }));
  socket.on("connect", () => c.connects.push({ recovered: socket.recovered }));
  socket.on("disconnect", (reason) => c.disconnects.push(reason));
  socket.on("connect_error", (e) => c.errors.push(e.message));
  clients.push(c);
  return c;
}

const created = (c) => c.events.filter((e) => e.event === "message:created").map((e) => e.data.id);
// The same, of one conversation.
const createdIn = (c, conversation) =>
  c.events.filter((e) => e.event === "message:created" && e.data.conversationId === conversation).map((e) => e.data.id);

async function connects(c, n = 1) {
  await waitFor(`connect #${n} of ${c.name} (errors: ${c.errors.join("; ")})`, () => c.connects.length >= n, 20_000);
  return c.connects[n - 1];
}

async function group(owner, members) {
  const r = await http("POST", "/conversations", owner.token, {
    type: "group",
    name: "cluster",
    members: members.map((u) => ({ userId: u.userId, displayName: "x" })),
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

// A send through the balancer: 201 (stored) or 202 (queued: will be stored).
async function send(user, cid, body) {
  const r = await http("POST", `/conversations/${cid}/messages`, user.token, { senderId: user.userId, body });
  assert.ok([201, 202].includes(r.status), `send: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}

async function listing(user, cid) {
  const r = await http("GET", `/conversations/${cid}/messages?limit=500`, user.token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.map((m) => m.id);
}

// HAProxy's view of its servers: `{ "chats/chat3": { status, scur, stot } }` (sessions now,
// and since it started).
async function servers() {
  const text = await (await fetch(STATS)).text();
  const [head, ...rows] = text.trim().split("\n");
  const cols = head.replace(/^# /, "").split(",");
  const out = {};
  for (const row of rows) {
    const f = Object.fromEntries(row.split(",").map((v, i) => [cols[i], v]));
    out[`${f.pxname}/${f.svname}`] = { status: f.status, scur: Number(f.scur), stot: Number(f.stot) };
  }
  return out;
}

// The host's link goes down first, so that nothing it held says goodbye, then every process
// on it is killed.
function lose(host) {
  execFileSync("ip", ["link", "set", process.env[`HOST_LINK_${host}`], "down"]);
  const pids = execFileSync("ip", ["netns", "pids", process.env[`HOST_NS_${host}`]]).toString().trim().split(/\s+/).filter(Boolean);
  for (const pid of pids) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

// A command to the cluster (redis-cli follows redirections), through any node still up:
// the one that answered last, first.
let redisNode = `${redisHost}:${redisPort}`;
function redisCli(...args) {
  const nodes = ["r1", "r2", "r3"].flatMap((h) => [7001, 7002].map((p) => `${process.env[`HOST_ADDR_${h}`]}:${p}`));
  let last;
  for (const node of [redisNode, ...nodes.filter((n) => n !== redisNode)]) {
    const [host, port] = node.split(":");
    try {
      const out = execFileSync("redis-cli", ["-c", "-h", host, "-p", port, "--raw", ...args], { timeout: 1000 }).toString().trim();
      redisNode = node;
      return out;
    } catch (e) {
      last = e;
    }
  }
  throw last;
}
const leases = () => Array.from({ length: PARTITIONS }, (_, p) => redisCli("GET", `${PREFIX}:messages:lease:${p}`));
// The address of the master serving the namespace's slot, from CLUSTER NODES.
function slotMaster() {
  const slot = Number(redisCli("CLUSTER", "KEYSLOT", PREFIX));
  for (const line of redisCli("CLUSTER", "NODES").split("\n")) {
    const f = line.split(" ");
    if (!f[2].includes("master") || f[2].includes("fail")) continue;
    for (const range of f.slice(8)) {
      const [a, b = a] = range.split("-").map(Number);
      if (slot >= a && slot <= b) return f[1].split("@")[0];
    }
  }
  return null;
}
// core::stream::partition_of: the id's last four bytes, big-endian, modulo the partitions.
const partitionOf = (cid) => parseInt(cid.replaceAll("-", "").slice(-8), 16) % PARTITIONS;

// Each socket got exactly the messages sent, once each, in the order they were stored.
function exactlyOnce(c, expected) {
  assert.deepEqual(created(c), expected, `${c.name}: every message once, in order`);
}

let alice, bob, carol, dave, cid;
const sent = [];
let pinned, polling, loose;

test("through the balancer: REST on either gateway, sockets on all three chat instances, long-polling sticky", async () => {
  [alice, bob, carol, dave] = await Promise.all(["alice", "bob", "carol", "dave"].map(register));
  cid = await group(alice, [alice, bob, carol, dave]);
  pinned = SOCKETS.servers.map((pin) => client(bob, { pin }));
  polling = client(carol, { transports: ["polling"] });
  loose = client(dave, { transports: ["polling", "websocket"] });
  for (const c of [...pinned, polling, loose]) await connects(c);

  const view = await servers();
  for (const server of SOCKETS.servers) {
    assert.equal(view[`${SOCKETS.backend}/${server}`].status, "UP", server);
    assert.ok(view[`${SOCKETS.backend}/${server}`].scur >= 1, `a session through ${server}: ${JSON.stringify(view)}`);
  }
  for (const gw of ["gw1", "gw2"]) assert.equal(view[`gateways/${gw}`].status, "UP", gw);
  if (COLOCATED) {
    // Nothing went through the internal port: each gateway handed its sockets, long-polls
    // and API requests to the chat instance beside it.
    for (const chat of ["chat1", "chat2", "chat3"]) assert.equal(view[`chats/${chat}`].stot, 0, `chats/${chat}: ${JSON.stringify(view)}`);
  }

  for (let i = 0; i < 10; i++) sent.push(await send(alice, cid, `live ${i}`));
  const all = [...pinned, polling, loose];
  await waitFor("every message on every socket", () => all.every((c) => created(c).length >= sent.length), 15_000);
  for (const c of all) {
    exactlyOnce(c, sent);
    assert.equal(c.connects.length, 1, `${c.name} never reconnected: ${c.disconnects.join(", ")}`);
  }
  // Each long-polling request went to the instance holding its session: one that did not
  // would have been refused (unknown sid), ending the session.
  assert.equal(polling.socket.io.engine.transport.name, "polling");
  assert.deepEqual(polling.disconnects, []);
  assert.deepEqual(await listing(alice, cid), sent);
});

test("a chat host lost: its clients reconnect to another instance and recover what they missed", async () => {
  const onApp3 = pinned[2];
  lose("app3");
  await waitFor("the lost instance's socket notices", () => onApp3.disconnects.length >= 1, 15_000);
  const lost = `${SOCKETS.backend}/${SOCKETS.servers[2]}`;
  await waitFor(`HAProxy marks ${lost} down`, async () => (await servers())[lost].status.startsWith("DOWN"), 10_000);

  // Sent while it is away, through whichever gateway and surviving instance.
  for (let i = 0; i < 5; i++) sent.push(await send(alice, cid, `while away ${i}`));
  const back = await connects(onApp3, 2);
  assert.equal(back.recovered, true, "recovered on another instance");

  const all = [...pinned, polling, loose];
  await waitFor("every message on every socket", () => all.every((c) => created(c).length >= sent.length), 15_000);
  for (const c of all) {
    exactlyOnce(c, sent);
    // Any socket the lost host held (the unpinned ones may have been there too) came back
    // with its session.
    assert.ok(c.connects.slice(1).every((k) => k.recovered), `${c.name}: ${JSON.stringify(c.connects)}`);
  }
  assert.deepEqual(await listing(alice, cid), sent);
});

test("a worker host lost: its partitions move to the other worker, and every answered send is stored once", async () => {
  // Both workers own partitions.
  await waitFor("both workers holding leases", () => new Set(leases()).size === 2, 15_000);
  const lost = leases().map((owner, p) => (owner === "worker-work2" ? p : -1)).filter((p) => p >= 0);
  assert.ok(lost.length >= 1, `worker-work2 owns a partition: ${leases()}`);

  // A conversation on each partition of the worker about to be lost.
  const convs = [];
  for (let tries = 0; tries < 64 && !lost.every((p) => convs.some((c) => partitionOf(c) === p)); tries++) {
    const c = await group(alice, [alice, bob]);
    if (lost.includes(partitionOf(c))) convs.push(c);
  }
  assert.ok(lost.every((p) => convs.some((c) => partitionOf(c) === p)), "a conversation on each lost partition");
  convs.push(await group(alice, [alice, bob]));

  // Sends flowing in every conversation while the host goes.
  const answered = new Map(convs.map((c) => [c, []]));
  const flows = convs.map(async (c) => {
    for (let i = 0; i < 6; i++) answered.get(c).push(await send(alice, c, `around the loss ${i}`));
  });
  await new Promise((r) => setTimeout(r, 150));
  lose("work2");
  await Promise.all(flows);

  await waitFor("every partition owned by the surviving worker", () => leases().every((o) => o === "worker-app2"), 15_000);
  for (const c of convs) {
    await waitFor(`every answered send of ${c} stored`, async () => (await listing(alice, c)).length >= answered.get(c).length, 20_000);
    assert.deepEqual(await listing(alice, c), answered.get(c), `${c}: each send stored once, in order`);
  }
});

test("the host of the Redis master serving the platform lost: its replica takes over, and every confirmed send is stored once", async () => {
  const before = slotMaster();
  const host = ["r1", "r2", "r3"].find((h) => before.startsWith(`${process.env[`HOST_ADDR_${h}`]}:`));
  assert.ok(host, `the master ${before} is on one of the Redis hosts`);
  const alive = [pinned[0], pinned[1], polling, loose];
  const connectsBefore = alive.map((c) => c.connects.length);

  // A send's answer, 0 when there was none.
  const post = async (cmid) => {
    try {
      return await http("POST", `/conversations/${cid}/messages`, alice.token, { senderId: alice.userId, body: cmid, clientMessageId: cmid });
    } catch {
      return { status: 0, body: null };
    }
  };
  // Sends keep coming, each with its clientMessageId, while the master's host goes.
  const outcomes = [];
  let lostAt = null;
  const flow = (async () => {
    for (let i = 0; i < 30; i++) {
      const cmid = `failover-${i}`;
      const t = Date.now();
      const r = await post(cmid);
      outcomes.push({ cmid, status: r.status, id: r.body?.id, at: ((t - (lostAt ?? t)) / 1000).toFixed(1), took: ((Date.now() - t) / 1000).toFixed(1) });
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  lostAt = Date.now();
  lose(host);
  // A chat instance's readiness meanwhile, asked straight: the namespace's master is gone
  // (its replica must not answer for it), and the instance stays in the balancer for
  // READY_GRACE_MS all the same.
  const readiness = [];
  const probe = setInterval(async () => {
    try {
      const r = await fetch(`http://${process.env.HOST_ADDR_app1}:3001/readyz`, { signal: AbortSignal.timeout(3000) });
      readiness.push({ status: r.status, body: await r.json(), at: Date.now() });
    } catch (e) {
      readiness.push({ status: 0, body: String(e), at: Date.now() });
    }
  }, 250);
  after(() => clearInterval(probe));
  // When the cluster gave the slot to the replica, for the figures below.
  let promotedAt = null;
  const watch = setInterval(() => {
    if (promotedAt === null && slotMaster() !== before) promotedAt = Date.now();
  }, 200);
  after(() => clearInterval(watch));
  await flow;

  await waitFor("a replica promoted for the namespace's slot", () => {
    const now = slotMaster();
    return now && now !== before;
  }, 20_000);
  clearInterval(probe);
  const seen = readiness.map((r) => `${((r.at - lostAt) / 1000).toFixed(1)}:${r.status}:${r.body?.status ?? r.body}`);
  console.log(`# chat on app1, /readyz (s after the loss, status): ${seen.join(" ")}`);
  // Answered before the promotion was seen (its poll is 200 ms apart; 300 ms to spare).
  const gone = readiness.filter((r) => r.at < (promotedAt ?? Date.now()) - 300);
  assert.ok(gone.length >= 3, `answers while the master was gone: ${seen}`);
  assert.ok(gone.every((r) => r.status === 200 && r.body.status === "degraded" && r.body.redis === "down"), `the master's loss seen until it was replaced: ${seen}`);
  assert.ok(readiness.every((r) => r.status === 200), `ready within the grace: ${seen}`);

  console.log(`# first answers (s after the loss, status, s taken): ${outcomes.map((o) => `${o.at}:${o.status}:${o.took}`).join(" ")}`);
  // What was confirmed (201, 202) is kept; what was not (503, a timeout) is retried with
  // its clientMessageId until it is, and never stored twice.
  for (const o of outcomes) {
    assert.ok([0, 201, 202, 502, 503, 504].includes(o.status), `${o.cmid}: ${o.status}`);
    o.first = o.status;
    for (let tries = 0; ![200, 201, 202].includes(o.status) && tries < 480; tries++) {
      await new Promise((r) => setTimeout(r, 250));
      const r = await post(o.cmid);
      o.status = r.status;
      o.id = r.body?.id;
    }
    assert.ok([200, 201, 202].includes(o.status), `${o.cmid} confirmed at last: ${o.status}`);
  }
  const back = Date.now();
  clearInterval(watch);
  const expected = [...sent, ...outcomes.map((o) => o.id)];
  await waitFor("every confirmed send stored", async () => (await listing(alice, cid)).length >= expected.length, 30_000);
  // Each stored once. In the order they were confirmed, not sent: one retried after its
  // first try was lost is stored after those sent behind it.
  const stored = await listing(alice, cid);
  assert.deepEqual(stored.slice(0, sent.length), sent, "what came before, untouched");
  assert.deepEqual([...stored].sort(), [...expected].sort(), "each confirmed send stored once");
  console.log(`# failover: first answers ${JSON.stringify(outcomes.reduce((n, o) => ({ ...n, [o.first]: (n[o.first] ?? 0) + 1 }), {}))}; replica promoted ${promotedAt ? ((promotedAt - lostAt) / 1000).toFixed(1) : "?"} s and every send confirmed ${((back - lostAt) / 1000).toFixed(1)} s after the loss; master ${before} -> ${slotMaster()}`);
  // The sockets saw the Redis failover too (their instances resubscribed and caught up):
  // every message once. None was cut: though the failover outlasted two of the balancer's
  // probes, no instance left it (`/readyz` bears with a store for READY_GRACE_MS).
  await waitFor("every message on every socket", () => alive.every((c) => new Set(createdIn(c, cid)).size >= expected.length), 15_000);
  for (const c of alive) {
    const got = createdIn(c, cid);
    console.log(`# ${c.name}: ${got.length} of ${expected.length} messages, ${got.length - new Set(got).size} repeated, ${c.connects.length - 1} reconnects`);
    assert.deepEqual([...got].sort(), [...expected].sort(), `${c.name}: every message once`);
  }
  assert.deepEqual(alive.map((c) => c.connects.length), connectsBefore, "no socket reconnected: no instance was taken out of the balancer");
});
