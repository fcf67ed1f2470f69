// Attachments as the official client sees them, against a stack with authentication on that
// tests/e2e/tests/attachments.rs starts: `message:created` of a send with attachmentIds
// carries them (id, name, contentType, size, url, dimensions of an image) in order, and
// the URL works with no header (as an <img src> fetches it). Env: GATEWAY_URL, RUN.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, open, register as registerAt, request, waitFor } from "./support.mjs";

const GATEWAY = process.env.GATEWAY_URL;
const RUN = process.env.RUN;
const http = (method, path, token, body) => request(GATEWAY, method, path, token, body);
const register = (name) => registerAt(GATEWAY, RUN, name);
const connect = (token) => connected(open(GATEWAY, { transports: ["websocket"], auth: { token } }));

async function upload(user, name, type, bytes) {
  const res = await fetch(`${GATEWAY}/attachments`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${user.token}`,
      "content-type": type,
      "x-filename": encodeURIComponent(name),
    },
    body: bytes,
  });
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return body;
}

// The signature and IHDR of a PNG of w x h: what its dimensions are read from.
function pngHead(w, h) {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]).copy(b, 0);
  b.write("IHDR", 12, "latin1");
  b.writeUInt32BE(w, 16);
  b.writeUInt32BE(h, 20);
  b[24] = 8;
  b[25] = 6;
  return b;
}

test("message:created carries the attachments with working URLs", async () => {
  const ann = await register("ann");
  const ben = await register("ben");
  const g = await http("POST", "/conversations", ann.token, {
    type: "group",
    members: [ann, ben].map((u) => ({ userId: u.userId, displayName: "x" })),
  });
  assert.equal(g.status, 201, JSON.stringify(g.body));
  const benSocket = await connect(ben.token);
  const pdf = await upload(ann, "rapport été.pdf", "application/pdf", Buffer.from("%PDF-1.4 test"));
  const img = await upload(ann, "photo.png", "image/png", pngHead(12, 34));
  const sent = await http("POST", `/conversations/${g.body.id}/messages`, ann.token, {
    senderId: ann.userId,
    body: "two files",
    attachmentIds: [img.id, pdf.id],
  });
  assert.equal(sent.status, 201, JSON.stringify(sent.body));
  await waitFor("message:created", () => benSocket.of("message:created").length === 1);
  const [event] = benSocket.of("message:created");
  assert.equal(event.id, sent.body.id);
  const [first, second] = event.attachments;
  assert.equal(event.attachments.length, 2);
  assert.deepEqual(
    { id: first.id, name: first.name, contentType: first.contentType, size: first.size, width: first.width, height: first.height },
    { id: img.id, name: "photo.png", contentType: "image/png", size: 33, width: 12, height: 34 },
  );
  assert.deepEqual(Object.keys(second).sort(), ["contentType", "id", "name", "size", "url"]);
  assert.equal(second.name, "rapport été.pdf");
  const res = await fetch(new URL(second.url, GATEWAY));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/pdf");
  assert.equal(await res.text(), "%PDF-1.4 test");
});
