// Interop of the Rust Socket.IO server (core/examples/socketio_conformance.rs) with the
// official JavaScript client. The server binary comes from SIO_SERVER_BIN, by default the
// release build under CARGO_TARGET_DIR (or ./target): build it first with
//   cargo build -p platform-core --features socketio --example socketio_conformance --release
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, "target");
const BIN =
  process.env.SIO_SERVER_BIN ||
  path.join(targetDir, "release/examples/socketio_conformance");

const BASE_PORT = 20000 + Math.floor(Math.random() * 20000);
let server;

function startServer(port) {
  return new Promise((resolve, reject) => {
    if (!existsSync(BIN)) {
      reject(new Error(`server binary not found: ${BIN}`));
      return;
    }
    const child = spawn(BIN, [], {
      env: { ...process.env, PORT: String(port) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    child.on("error", reject);
    child.stdout.on("data", (d) => {
      if (d.toString().includes("listening")) resolve(child);
    });
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

function once(emitter, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

function connect(opts = {}, port = BASE_PORT) {
  return io(`http://localhost:${port}`, { forceNew: true, ...opts });
}

before(async () => {
  server = await startServer(BASE_PORT);
});

after(async () => {
  await stopServer(server);
});

test("websocket only: connect with auth, emit and receive", async () => {
  const s = connect({ transports: ["websocket"], auth: { token: "t1" } });
  const [auth] = await once(s, "auth");
  assert.deepEqual(auth, { token: "t1" });
  assert.equal(s.io.engine.transport.name, "websocket");
  s.emit("message", 1, "two", { three: [true] });
  const args = await once(s, "message-back");
  assert.deepEqual(args, [1, "two", { three: [true] }]);
  s.close();
});

test("polling then upgrade to websocket", async () => {
  const s = connect();
  await once(s, "connect");
  if (s.io.engine.transport.name !== "websocket") {
    await once(s.io.engine, "upgrade");
  }
  assert.equal(s.io.engine.transport.name, "websocket");
  s.emit("message", "after upgrade");
  assert.deepEqual(await once(s, "message-back"), ["after upgrade"]);
  s.close();
});

test("polling only", async () => {
  const s = connect({ transports: ["polling"], upgrade: false });
  await once(s, "connect");
  assert.equal(s.io.engine.transport.name, "polling");
  s.emit("message", { a: 1 });
  assert.deepEqual(await once(s, "message-back"), [{ a: 1 }]);
  const answer = await s.emitWithAck("message-with-ack", "x", 2);
  assert.equal(answer, "x");
  s.close();
});

test("acks in both directions", async () => {
  const s = connect({ transports: ["websocket"] });
  await once(s, "connect");
  const args = await new Promise((resolve) =>
    s.emit("message-with-ack", 1, "2", { 3: [false] }, (...a) => resolve(a)),
  );
  assert.deepEqual(args, [1, "2", { 3: [false] }]);
  s.on("ping-ack", (q, cb) => cb(`pong:${q}`));
  s.emit("server-ack");
  const [result] = await once(s, "server-ack-result");
  assert.equal(result, "pong:question");
  s.close();
});

for (const transports of [["websocket"], ["polling"]]) {
  test(`binary payloads both ways (${transports[0]})`, async () => {
    const s = connect({ transports });
    await once(s, "connect");
    s.emit("message", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5]) });
    const [buf, obj] = await once(s, "message-back");
    assert.deepEqual([...buf], [1, 2, 3]);
    assert.deepEqual([...obj.nested], [4, 5]);
    s.emit("binary");
    const [fromServer] = await once(s, "binary-back");
    assert.deepEqual([...fromServer], [0xde, 0xad, 0xbe, 0xef]);
    s.close();
  });
}

test("broadcast to a room reaches members but not the sender", async () => {
  const a = connect({ transports: ["websocket"] });
  const b = connect({ transports: ["polling"] });
  const c = connect({ transports: ["websocket"] });
  await Promise.all([once(a, "connect"), once(b, "connect"), once(c, "connect")]);
  await a.emitWithAck("join", "room1");
  await b.emitWithAck("join", "room1");
  let senderGot = false;
  let outsiderGot = false;
  a.on("broadcast", () => (senderGot = true));
  c.on("broadcast", () => (outsiderGot = true));
  a.emit("broadcast", "room1", { hello: "room" });
  const [data] = await once(b, "broadcast");
  assert.deepEqual(data, { hello: "room" });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(senderGot, false);
  assert.equal(outsiderGot, false);
  a.close();
  b.close();
  c.close();
});

test("reconnects after the server restarts", async () => {
  const port = BASE_PORT + 1;
  let other = await startServer(port);
  const s = connect(
    { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 200 },
    port,
  );
  await once(s, "connect");
  const firstId = s.id;
  const disconnected = once(s, "disconnect", 5000);
  await stopServer(other);
  await disconnected;
  other = await startServer(port);
  await once(s, "connect", 5000);
  assert.notEqual(s.id, firstId);
  s.emit("message", "back");
  assert.deepEqual(await once(s, "message-back"), ["back"]);
  s.close();
  await stopServer(other);
});
