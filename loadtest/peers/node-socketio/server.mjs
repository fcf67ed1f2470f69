// The Node socket.io peer of the relay benchmark: every client joins one room, and each
// `typing:update` is emitted to that room except its sender, as the chat service relays it.
// Listens on loopback only: PORT (default 3304). Prints "ready <port>" once listening.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.env.PORT || 3304);
const http = createServer();
// Defaults otherwise, so the figures are those of a stock socket.io server.
const io = new Server(http, { serveClient: false });

io.on("connection", (socket) => {
  socket.join("bench");
  socket.on("typing:update", (data) => {
    socket.to("bench").emit("typing:update", data);
  });
});

http.listen(port, "127.0.0.1", () => console.log(`ready ${port}`));
// Ends with the script that started it (SIGTERM), closing its sockets first.
process.on("SIGTERM", () => io.close(() => process.exit(0)));
