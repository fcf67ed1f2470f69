// The Node socket.io peer of the relay benchmarks, doing what the chat service does for
// `typing:update` and `message:created`, minus storage and identity:
// - each client joins the room named by its CONNECT auth payload's `room` (none: "bench");
// - `typing:update` is emitted to that room except its sender;
// - `POST /conversations/<room>/messages` `{"senderId","body"}` answers 201 with a message
//   (stored nowhere) and emits it as `message:created` to everyone in the room.
// - RECOVERY=1 turns on socket.io's own connection state recovery (in-memory adapter, this
//   one instance), keeping missed packets for RECOVERY_WINDOW_SECS (default 300): the peer
//   of the chat service's recovery in the drops benchmark (scripts/bench-drops.sh).
// Listens on loopback only: PORT (default 3304). Prints "ready <port>" once listening.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.env.PORT || 3304);
let sends = 0;

function send(req, res, room) {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (chunk) => {
    body += chunk;
    if (body.length > 65536) req.destroy();
  });
  req.on("end", () => {
    let v;
    try {
      v = JSON.parse(body);
    } catch {
      v = null;
    }
    if (!v || typeof v.senderId !== "string" || typeof v.body !== "string") {
      res.writeHead(400, { "content-type": "application/json" }).end("{}");
      return;
    }
    const seq = (sends++).toString(16).padStart(12, "0");
    const message = {
      id: `00000000-0000-7000-8000-${seq}`,
      conversationId: room,
      senderId: v.senderId,
      body: v.body,
      sentAt: new Date().toISOString(),
      editedAt: null,
    };
    io.to(room).emit("message:created", message);
    res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify(message));
  });
}

const http = createServer((req, res) => {
  const m = /^\/conversations\/([^/]+)\/messages$/.exec(req.url);
  if (req.method === "POST" && m) return send(req, res, decodeURIComponent(m[1]));
  // socket.io answers its own path before this handler runs.
  res.writeHead(404, { "content-type": "application/json" }).end("{}");
});
const recovery = process.env.RECOVERY === "1";
const windowSecs = Number(process.env.RECOVERY_WINDOW_SECS || 300);
if (recovery && !(Number.isInteger(windowSecs) && windowSecs > 0 && windowSecs <= 86400)) {
  console.error("RECOVERY_WINDOW_SECS: an integer from 1 to 86400");
  process.exit(2);
}
// Defaults otherwise, so the figures are those of a stock socket.io server.
const io = new Server(http, {
  serveClient: false,
  ...(recovery && {
    connectionStateRecovery: { maxDisconnectionDuration: windowSecs * 1000, skipMiddlewares: true },
  }),
});

io.on("connection", (socket) => {
  const room = typeof socket.handshake.auth?.room === "string" ? socket.handshake.auth.room : "bench";
  // A recovered socket is back in its rooms already; joining again changes nothing.
  socket.join(room);
  socket.on("typing:update", (data) => {
    socket.to(room).emit("typing:update", data);
  });
});

http.listen(port, "127.0.0.1", () => console.log(`ready ${port}`));
// Ends with the script that started it (SIGTERM), closing its sockets first.
process.on("SIGTERM", () => io.close(() => process.exit(0)));
