// A realtime client for the fault test (tests/e2e/tests/faults.rs): follows one conversation
// through the gateway with the official client, reconnecting by itself, and catches up over
// HTTP on every (re)connect and every 2 s, as a robust browser client does. On SIGTERM it
// prints what it knows: {"ids": [...], "events": [...], "connects": N}: `ids` every message
// seen either way, `events` the id of every `message:created` received, in order, repeats
// kept (what realtime delivery alone brought).
// It writes "connected" to stderr on each connect.
// Env: GATEWAY_URL, CONVERSATION_ID, USER_ID.
import { io } from "socket.io-client";

const { GATEWAY_URL, CONVERSATION_ID, USER_ID } = process.env;
const known = new Set();
const events = [];
let last = null;
let connects = 0;
let catching = false;

async function catchUp() {
  if (catching) return;
  catching = true;
  try {
    for (;;) {
      const q = last ? `?limit=500&after=${last}` : "?limit=500";
      const res = await fetch(`${GATEWAY_URL}/conversations/${CONVERSATION_ID}/messages${q}`);
      if (res.status !== 200) break;
      const page = await res.json();
      for (const m of page) known.add(m.id);
      if (page.length) last = page[page.length - 1].id;
      if (page.length < 500) break;
    }
  } catch {
    // The stack is mid-fault: the next round tries again.
  } finally {
    catching = false;
  }
}

const socket = io(GATEWAY_URL, { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 500 });
socket.on("connect", () => {
  connects += 1;
  process.stderr.write("connected\n");
  socket.emit("presence:join", { userId: USER_ID, displayName: USER_ID });
  catchUp();
});
socket.on("message:created", (m) => {
  if (m.conversationId !== CONVERSATION_ID) return;
  events.push(m.id);
  known.add(m.id);
});
const timer = setInterval(catchUp, 2000);

process.on("SIGTERM", async () => {
  clearInterval(timer);
  socket.close();
  // Exit only once the pipe has taken everything.
  process.stdout.write(JSON.stringify({ ids: [...known], events, connects }) + "\n", () => process.exit(0));
});
