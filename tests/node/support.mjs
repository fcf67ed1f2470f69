// What the socket.io-client tests of this folder share: polling for a condition, JSON
// requests, and sockets that record what they receive and are closed when the file's tests
// end. Not a test file itself (node --test runs the *.test.mjs files it is given).
import { after } from "node:test";
import { io } from "socket.io-client";
import { violation } from "./events-contract.mjs";
import { request } from "./http.mjs";

export { request };

const sockets = [];
// Events that broke the Socket.IO contract (services/gateway/api/asyncapi.json), from any
// socket of the file: the file fails at its end if there is one.
const breaches = [];
after(() => {
  sockets.forEach((s) => s.close());
  if (breaches.length) {
    throw new Error(`events outside the AsyncAPI document:\n${[...new Set(breaches)].join("\n")}`);
  }
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, fn, ms = 8000) {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

// Registers `${run}-${name}` through the gateway at `base` (password `password-${name}`):
// `{ userId, token, password }`. Throws unless the answer is 201.
export async function register(base, run, name) {
  const userId = `${run}-${name}`;
  const password = `password-${name}`;
  const r = await request(base, "POST", "/auth/register", null, {
    userId,
    displayName: `User ${name}`,
    password,
  });
  if (r.status !== 201) throw new Error(`register ${userId}: ${r.status} ${JSON.stringify(r.body)}`);
  return { userId, token: r.body.token, password };
}

// A new socket (no reconnection) recording every event it receives: `{ socket, events, of }`,
// `of(name)` being the data of the events of that name. Each event is checked against the
// AsyncAPI document as it arrives.
export function open(url, options) {
  const socket = io(url, { forceNew: true, reconnection: false, ...options });
  sockets.push(socket);
  const events = [];
  socket.onAny((event, ...args) => {
    const wrong = violation(event, args);
    if (wrong) breaches.push(wrong);
    events.push({ event, data: args[0] });
  });
  const of = (name) => events.filter((e) => e.event === name).map((e) => e.data);
  return { socket, events, of };
}

// Resolves to `c` once its socket is connected; rejects with the connect_error.
export function connected(c) {
  return new Promise((resolve, reject) => {
    c.socket.once("connect", () => resolve(c));
    c.socket.once("connect_error", reject);
  });
}
