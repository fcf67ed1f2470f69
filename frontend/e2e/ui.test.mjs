// End-to-end test of the browser UI against the real stack (started by scripts/test-ui.sh):
// two users in two Chromium contexts sign up, start a conversation, chat live (typing,
// presence, edits, deletes, paging, a lost connection recovered without re-reading
// history) and make a video call with Chromium's fake camera and microphone that connects
// on both sides. Then three other
// users live in a group: created, renamed, one added and removed mid-conversation, roles,
// unread badges counted and cleared across two tabs of the same user, "seen by". Then two
// more users reply, react (counts and who reacted, live) and search (accent-insensitive,
// opening the conversation at the message). Then two more share files: an image by the
// attach button, one pasted and one dropped, and a PDF; the other sees the images rendered,
// opens the larger view, and downloads the PDF's exact bytes; at phone width too.
//
// Environment: WEB_URL (the web server), GATEWAY_URL, CHROMIUM_BIN (default
// /usr/bin/chromium), UI_ARTIFACTS (screenshots; default ../target/ui-artifacts).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { deflateSync } from "node:zlib";
import { join } from "node:path";
import { chromium } from "playwright-core";

const WEB_URL = process.env.WEB_URL ?? "http://127.0.0.1:8080";
const GATEWAY_URL = process.env.GATEWAY_URL ?? "http://127.0.0.1:3000";
const ARTIFACTS = process.env.UI_ARTIFACTS ?? join(process.cwd(), "..", "target", "ui-artifacts");
/** Upper bound for anything to show up; waits end as soon as it does. */
const WAIT = 20_000;
const CALL_WAIT = 45_000;

const run = Math.random().toString(36).slice(2, 8);
const alice = { userId: `alice-${run}`, displayName: "Alice", password: "alice-password-1" };
const bob = { userId: `bob-${run}`, displayName: "Bob", password: "bob-password-12" };

let browser;
/** A new browser context, the size of a laptop screen, camera and microphone allowed. */
let newContext;
let a; // Alice's page
let b; // Bob's page
/** Bob's realtime link can be cut to test a lost connection. */
const bobLink = { down: false, sockets: [] };
/** When the attachments test revoked the file URLs handed out so far. */
const revoked = { at: undefined };
/** Uncaught exceptions and console errors of either page; the last test fails on any. */
const pageProblems = [];

/**
 * The only console errors that are not a defect, all printed by Chromium itself for a
 * failed request (not by the app): the 401 of `GET /me`, which is how the app learns at
 * start-up that no session is kept (or that the server has accounts); a late ICE candidate's
 * 409 (below); and the Socket.IO
 * requests this test cuts while Bob's link is down (the app shows the banner and
 * reconnects; that is what the step checks). Anything else, page errors included, fails.
 */
function expectedConsoleError(who, msg) {
  const url = msg.location()?.url ?? "";
  if (/\/me$/.test(url) && /status of 401/.test(msg.text())) return true;
  // The file URLs a member's removal revoked, which the attachments test loads on purpose
  // (the app then re-reads the message for fresh ones).
  if (who === "grace" && revoked.at !== undefined && /\/attachments\//.test(url) && /status of 403/.test(msg.text())) return true;
  // A candidate gathered after the other side hung up, before its status event arrived:
  // the app handles the 409 ("the call is over", src/call/calls.ts `signal`).
  if (/\/calls\/[^/]+\/signals\/ice$/.test(url) && /status of 409/.test(msg.text())) return true;
  return (
    who === "bob" &&
    bobLink.cutAt !== undefined &&
    /\/socket\.io\//.test(`${url} ${msg.text()}`) &&
    /ERR_INTERNET_DISCONNECTED|WebSocket connection to .* failed/.test(msg.text())
  );
}

mkdirSync(ARTIFACTS, { recursive: true });

async function shot(page, name) {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      // Loopback ICE: host candidates must be real addresses, not mDNS names.
      "--disable-features=WebRtcHideLocalIpsWithMdns",
      "--autoplay-policy=no-user-gesture-required",
      "--no-sandbox",
    ],
  });
  newContext = () =>
    browser.newContext({ viewport: { width: 1200, height: 800 }, permissions: ["camera", "microphone"] });
  const ctx = newContext;
  a = await (await ctx()).newPage();
  const bctx = await ctx();
  // Bob's Socket.IO traffic goes through these routes so the test can take it down.
  await bctx.route(/\/socket\.io\//, (route) => (bobLink.down ? route.abort("internetdisconnected") : route.continue()));
  await bctx.routeWebSocket(/\/socket\.io\//, (ws) => {
    if (bobLink.down) return ws.close({ code: 1006, reason: "offline" });
    ws.connectToServer();
    bobLink.sockets.push(ws);
  });
  b = await bctx.newPage();
  for (const [who, page] of [["alice", a], ["bob", b]]) watch(who, page);
});

/** Collects a page's uncaught exceptions and unexpected console errors for the last test. */
function watch(who, page) {
  page.on("pageerror", (e) => pageProblems.push(`[${who}] page error: ${e.stack ?? e.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error" || expectedConsoleError(who, msg)) return;
    pageProblems.push(`[${who}] console error: ${msg.text()} (${msg.location()?.url ?? "?"})`);
  });
}

/**
 * Steps of one scenario: each builds on the one before, so after a failure the rest are
 * skipped, and `pages` are saved as they were (failure-<name>.png).
 */
function stepper(t, pages) {
  let failed = false;
  return (name, fn) =>
    t.test(name, { skip: failed && "an earlier step failed" }, async () => {
      try {
        await fn();
      } catch (e) {
        failed = true;
        for (const [who, page] of Object.entries(pages)) await shot(page, `failure-${who}`).catch(() => {});
        throw e;
      }
    });
}

after(async () => {
  await browser?.close();
});

/** Signs up on the sign-in screen; on a server without accounts, joins by user id. */
async function signUp(page, user, screenshot) {
  await page.goto(WEB_URL);
  const createTab = page.getByRole("button", { name: "Create account", exact: true }).first();
  const joinHeading = page.getByRole("heading", { name: "Join the chat" });
  await createTab.or(joinHeading).first().waitFor({ timeout: WAIT });
  const open = await joinHeading.isVisible();
  if (screenshot) await shot(page, "01-sign-in");
  if (!open) await createTab.click();
  await page.getByLabel("User id").fill(user.userId);
  await page.getByLabel("Display name").fill(user.displayName);
  if (!open) await page.getByLabel("Password").fill(user.password);
  await page.locator("form.auth-card button[type=submit]").click();
  await page.getByText(`Signed in as`).waitFor({ timeout: WAIT });
  return open ? "open" : "token";
}

function composer(page) {
  return page.locator(".composer textarea");
}

/** The message whose whole text is `text`. */
function message(page, text) {
  const exact = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  return page.locator("li.message", { has: page.locator("p.body", { hasText: exact }) });
}

async function send(page, text) {
  await composer(page).fill(text);
  await composer(page).press("Enter");
}

test("two users chat live and make a video call in Chromium", async (t) => {
  const step = stepper(t, { alice: a, bob: b });
  let mode;
  let conversationUrl;

  await step("sign up (the sign-in screen, then the empty list)", async () => {
    mode = await signUp(b, bob, true);
    await b.getByText(/No conversations yet/).waitFor({ timeout: WAIT });
    const modeA = await signUp(a, alice, false);
    assert.equal(mode, modeA);
    console.log(`# server mode: ${mode === "token" ? "accounts (bearer tokens)" : "no accounts (compat)"}`);
    // The session is kept: a reload stays signed in.
    await a.reload();
    await a.getByText("Signed in as").waitFor({ timeout: WAIT });
  });

  await step("start a conversation; presence shows both online", async () => {
    await a.getByRole("button", { name: "New conversation" }).click();
    await a.getByLabel("User id").fill(bob.userId);
    await a.getByLabel("Display name (optional)").fill(bob.displayName);
    await a.getByRole("button", { name: "Start conversation" }).click();
    await a.getByRole("heading", { name: "Bob", level: 2 }).waitFor({ timeout: WAIT });
    await a.getByText("No messages yet. Say hello!").waitFor({ timeout: WAIT });
    conversationUrl = a.url();
    assert.match(new URL(conversationUrl).pathname, /^\/c\/[0-9a-f-]{36}$/);
    await a.locator(`.members li[data-user-id="${bob.userId}"][data-online="true"]`).waitFor({ timeout: WAIT });
  });

  await step("messages arrive live, in the list and in the conversation", async () => {
    await send(a, "Hello Bob");
    // Shown at once, then confirmed by the server.
    await message(a, "Hello Bob").waitFor({ timeout: WAIT });
    await a.locator('li.message[data-delivery="sent"]', { hasText: "Hello Bob" }).waitFor({ timeout: WAIT });
    // Bob's list gets the conversation and its last message without a reload.
    const item = b.locator(".conv-item", { hasText: "Alice" });
    await item.locator(".conv-last", { hasText: "Alice: Hello Bob" }).waitFor({ timeout: WAIT });
    await shot(b, "02-conversation-list");
    await item.click();
    await message(b, "Hello Bob").waitFor({ timeout: WAIT });
    await b.locator(`.members li[data-user-id="${alice.userId}"][data-online="true"]`).waitFor({ timeout: WAIT });

    await send(b, "Hi Alice!");
    await message(a, "Hi Alice!").waitFor({ timeout: WAIT });
    // Announced to screen readers as it arrives.
    await a.getByRole("status").filter({ hasText: "New message from Bob: Hi Alice!" }).waitFor({ timeout: WAIT });
  });

  await step("typing is shown to the other member and stops", async () => {
    await composer(b).pressSequentially("I am wri", { delay: 20 });
    await a.getByTestId("typing").filter({ hasText: "Bob is typing…" }).waitFor({ timeout: WAIT });
    await composer(b).press("Enter");
    await message(a, "I am wri").waitFor({ timeout: WAIT });
    await a.getByTestId("typing").filter({ hasText: /^$/ }).waitFor({ timeout: WAIT });
    await shot(a, "03-conversation");
  });

  await step("edits and deletes propagate", async () => {
    // By id: while it is being edited its text is in a text box, not the paragraph.
    const id = await message(a, "Hello Bob").getAttribute("data-message-id");
    const mine = a.locator(`li.message[data-message-id="${id}"]`);
    await mine.getByRole("button", { name: "Edit message" }).click();
    const box = mine.getByRole("textbox", { name: "Edit message" });
    await box.fill("Hello Bob (edited here)");
    await box.press("Enter");
    await message(b, "Hello Bob (edited here)").locator(".edited").waitFor({ timeout: WAIT });

    // Only the author may change a message: Bob has no edit button on Alice's.
    assert.equal(await message(b, "Hello Bob (edited here)").getByRole("button", { name: "Edit message" }).count(), 0);

    const theirs = message(b, "I am wri");
    await theirs.getByRole("button", { name: "Delete message" }).click();
    await theirs.getByRole("button", { name: "Delete", exact: true }).click();
    await message(b, "I am wri").waitFor({ state: "detached", timeout: WAIT });
    await message(a, "I am wri").waitFor({ state: "detached", timeout: WAIT });
  });

  await step("history pages in as the reader scrolls up", async () => {
    // 70 older messages sent through the API (as Alice), then Bob reopens the conversation.
    const session = await a.evaluate(() => JSON.parse(localStorage.getItem("chat.session") ?? "null"));
    const conversationId = new URL(conversationUrl).pathname.split("/").pop();
    const headers = { "Content-Type": "application/json", Prefer: "respond-async" };
    if (session.token) headers.Authorization = `Bearer ${session.token}`;
    for (let i = 1; i <= 70; i++) {
      const res = await fetch(`${GATEWAY_URL}/conversations/${conversationId}/messages`, {
        method: "POST",
        headers,
        body: JSON.stringify({ senderId: alice.userId, body: `history ${i}`, clientMessageId: `h-${run}-${i}` }),
      });
      assert.ok(res.status === 201 || res.status === 202, `send ${i}: ${res.status}`);
    }
    await message(b, "history 70").waitFor({ timeout: WAIT });
    await b.reload();
    await message(b, "history 70").waitFor({ timeout: WAIT });
    assert.equal(await message(b, "history 1").count(), 0, "the first page holds only the newest 50");
    const list = b.getByTestId("messages");
    await list.evaluate((el) => (el.scrollTop = 0));
    await message(b, "history 21").waitFor({ timeout: WAIT });
    await list.evaluate((el) => (el.scrollTop = 0));
    await message(b, "history 1").waitFor({ timeout: WAIT });
    await b.getByText("Start of the conversation").waitFor({ timeout: WAIT });
    // Nothing repeated: each message once.
    for (const text of ["history 1", "history 21", "history 70", "Hi Alice!"]) {
      assert.equal(await message(b, text).count(), 1, text);
    }
  });

  await step("a lost connection is shown, and what was missed arrives after reconnecting", async () => {
    bobLink.down = true;
    bobLink.cutAt = Date.now();
    for (const ws of bobLink.sockets.splice(0)) await ws.close({ code: 1006, reason: "link down" }).catch(() => {});
    await b.locator('.banner[data-connection="reconnecting"]').waitFor({ timeout: WAIT });
    await shot(b, "04-connection-lost");
    await send(a, "sent while Bob was away");
    await message(a, "sent while Bob was away").waitFor({ timeout: WAIT });
    assert.equal(await message(b, "sent while Bob was away").count(), 0);
    // The link was cut, not left: the server recovers Bob's session and replays what he
    // missed on the socket, so the page re-reads no history over HTTP.
    const historyReads = [];
    const onRequest = (req) => {
      if (req.method() === "GET" && /\/conversations\/[^/]+\/messages(\?|$)/.test(req.url())) {
        historyReads.push(req.url());
      }
    };
    b.on("request", onRequest);
    bobLink.down = false;
    await b.locator('.banner[data-connection="online"]').waitFor({ state: "attached", timeout: WAIT });
    await message(b, "sent while Bob was away").waitFor({ timeout: WAIT });
    assert.equal(await message(b, "sent while Bob was away").count(), 1);
    b.off("request", onRequest);
    assert.deepEqual(historyReads, [], "a recovered session re-reads no history");
  });

  await step("a video call connects both sides with real media, then hangs up", async () => {
    await a.getByRole("button", { name: "Video call" }).click();
    const ring = b.getByRole("alertdialog", { name: "Incoming video call" });
    await ring.waitFor({ timeout: WAIT });
    assert.match(await ring.innerText(), /Alice is calling you/);
    await shot(b, "05-incoming-call");
    await ring.getByRole("button", { name: "Accept" }).click();

    // Each side's RTCPeerConnection reports connectionState "connected".
    await a.locator(`.call figure[data-peer="${bob.userId}"][data-peer-state="connected"]`).waitFor({ timeout: CALL_WAIT });
    await b.locator(`.call figure[data-peer="${alice.userId}"][data-peer-state="connected"]`).waitFor({ timeout: CALL_WAIT });
    for (const page of [a, b]) {
      await page.locator('.call[data-call-phase="connected"]').waitFor({ timeout: WAIT });
      // The other side's video is playing: frames decoded from the fake camera.
      await page.waitForFunction(
        () => {
          const v = document.querySelector(".call figure.remote video");
          return v instanceof HTMLVideoElement && v.readyState >= 2 && v.videoWidth > 0;
        },
        null,
        { timeout: CALL_WAIT },
      );
    }
    await shot(a, "06-call");

    const mute = a.getByRole("button", { name: "Mute microphone" });
    await mute.click();
    assert.equal(await a.getByRole("button", { name: "Unmute microphone" }).getAttribute("aria-pressed"), "true");
    await a.getByRole("button", { name: "Turn camera off" }).click();
    await a.getByRole("button", { name: "Turn camera on" }).waitFor();

    await a.getByRole("button", { name: "Hang up" }).click();
    await b.locator(".call-status", { hasText: "The call has ended." }).waitFor({ timeout: WAIT });
    await a.locator(".call-status", { hasText: "You hung up." }).waitFor({ timeout: WAIT });
    await a.locator(".call").waitFor({ state: "detached", timeout: WAIT });

    // The call is in the conversation's history.
    await b.locator(".call-history summary").click();
    await b.locator('.call-history li[data-call-status="ended"]', { hasText: "Video call" }).waitFor({ timeout: WAIT });
  });

  await step("a declined audio call tells the caller", async () => {
    await a.getByRole("button", { name: "Audio call" }).click();
    const ring = b.getByRole("alertdialog", { name: "Incoming audio call" });
    await ring.waitFor({ timeout: WAIT });
    await ring.getByRole("button", { name: "Decline" }).click();
    await a.locator(".call-status", { hasText: "The call was declined." }).waitFor({ timeout: WAIT });
  });

  await step("at phone width one pane shows at a time", async () => {
    await b.setViewportSize({ width: 390, height: 844 });
    await b.goto(WEB_URL);
    await b.getByRole("navigation", { name: "Conversations" }).waitFor({ timeout: WAIT });
    await shot(b, "07-phone-list");
    await b.locator(".conv-item", { hasText: "Alice" }).click();
    await message(b, "sent while Bob was away").waitFor({ timeout: WAIT });
    assert.equal(await b.getByRole("navigation", { name: "Conversations" }).isVisible(), false);
    await shot(b, "08-phone-conversation");
    await b.getByRole("button", { name: "Back to conversations" }).click();
    await b.getByRole("navigation", { name: "Conversations" }).waitFor({ timeout: WAIT });
  });

  console.log(`# screenshots: ${ARTIFACTS}`);
});

/** The conversation list's entry whose title contains `name`. */
function entry(page, name) {
  return page.locator(".conv-item", { has: page.locator(".name", { hasText: name }) });
}

test("three users: a group's members come and go, unread badges across two tabs", async (t) => {
  const ann = { userId: `ann-${run}`, displayName: "Ann", password: "ann-password-1" };
  const ben = { userId: `ben-${run}`, displayName: "Ben", password: "ben-password-1" };
  const cat = { userId: `cat-${run}`, displayName: "Cat", password: "cat-password-1" };
  const annCtx = await newContext();
  const a1 = await annCtx.newPage(); // Ann's first tab
  let a2; // Ann's second tab, same browser context (same session)
  const bp = await (await newContext()).newPage();
  const cp = await (await newContext()).newPage();
  for (const [who, page] of [["ann", a1], ["ben", bp], ["cat", cp]]) watch(who, page);
  const pages = { ann: a1, ben: bp, cat: cp };
  const step = stepper(t, pages);
  const settings = (page) => page.getByRole("region", { name: "Group settings" });
  const openSettings = async (page) => {
    if (!(await settings(page).isVisible())) await page.getByRole("button", { name: "Group settings" }).click();
    return settings(page);
  };
  let mode;

  await step("three users sign up", async () => {
    mode = await signUp(a1, ann, false);
    await signUp(bp, ben, false);
    await signUp(cp, cat, false);
  });
  if (mode !== "token") {
    // The lifecycle and read routes need a signed-in caller in every mode.
    t.skip("the server has no accounts (compat mode): group settings and read state need a token");
    return;
  }

  await step("a group someone else creates appears at once, without a message", async () => {
    await a1.getByRole("button", { name: "New conversation" }).click();
    await a1.getByLabel("Group", { exact: true }).check();
    await a1.getByLabel("Group name (optional)").fill("Launch");
    await a1.getByLabel("User id of member 1").fill(ben.userId);
    await a1.getByLabel("Display name (optional)").fill(ben.displayName);
    await a1.getByRole("button", { name: "Start conversation" }).click();
    await a1.getByRole("heading", { name: "Launch", level: 2 }).waitFor({ timeout: WAIT });
    await entry(bp, "Launch").locator(".conv-last", { hasText: "No messages yet" }).waitFor({ timeout: WAIT });
  });

  await step("a rename is seen by the others", async () => {
    const panel = await openSettings(a1);
    await panel.getByLabel("Group name").fill("Launch plan");
    await panel.getByRole("button", { name: "Rename" }).click();
    await a1.getByRole("heading", { name: "Launch plan", level: 2 }).waitFor({ timeout: WAIT });
    await entry(bp, "Launch plan").waitFor({ timeout: WAIT });
    await entry(bp, "Launch plan").click();
    await bp.getByRole("heading", { name: "Launch plan", level: 2 }).waitFor({ timeout: WAIT });
    // Ben is a member: no settings but leaving.
    const bens = await openSettings(bp);
    assert.equal(await bens.getByLabel("Group name").count(), 0);
    assert.equal(await bens.getByRole("button", { name: "Leave group" }).count(), 1);
    await bens.getByRole("button", { name: "Close settings" }).click();
  });

  await step("someone added mid-conversation sees the group at once and its new messages", async () => {
    await send(a1, "before Cat");
    await message(bp, "before Cat").waitFor({ timeout: WAIT });
    const panel = await openSettings(a1);
    await panel.getByLabel("User id to add").fill(cat.userId);
    await panel.getByLabel("Their display name (optional)").fill(cat.displayName);
    await panel.getByRole("button", { name: "Add to group" }).click();
    await panel.locator(`li[data-user-id="${cat.userId}"]`).waitFor({ timeout: WAIT });
    await shot(a1, "10-group-settings");
    await entry(cp, "Launch plan").waitFor({ timeout: WAIT });
    await entry(cp, "Launch plan").click();
    await cp.getByRole("heading", { name: "Launch plan", level: 2 }).waitFor({ timeout: WAIT });
    // Everyone's member list follows.
    await bp.locator(`.members li[data-user-id="${cat.userId}"]`).waitFor({ timeout: WAIT });
    await send(bp, "welcome Cat");
    await message(cp, "welcome Cat").waitFor({ timeout: WAIT });
    await message(a1, "welcome Cat").waitFor({ timeout: WAIT });
    // Ann's open tab marked it read (Ben sees it), so nothing is unread for her yet.
    await bp.getByTestId("seen-by").filter({ hasText: /Ann/ }).waitFor({ timeout: WAIT });
  });

  await step("unread badges are counted and cleared across two tabs of the same user", async () => {
    // Both of Ann's tabs on the list, no conversation open.
    await a1.goto(WEB_URL);
    a2 = await annCtx.newPage();
    watch("ann-tab-2", a2);
    pages["ann-tab-2"] = a2;
    await a2.goto(WEB_URL);
    for (const page of [a1, a2]) await entry(page, "Launch plan").waitFor({ timeout: WAIT });
    await entry(a1, "Launch plan").locator(".badge").waitFor({ state: "detached", timeout: WAIT });
    await send(bp, "unread one");
    await send(bp, "unread two");
    for (const page of [a1, a2]) {
      await page.locator('.conv-item[data-unread="2"]', { hasText: "Launch plan" }).waitFor({ timeout: WAIT });
      assert.equal(await entry(page, "Launch plan").locator(".badge").innerText(), "2");
    }
    await shot(a2, "11-unread-badges");
    // Reading in the first tab clears the badge in the second.
    await entry(a1, "Launch plan").click();
    await message(a1, "unread two").waitFor({ timeout: WAIT });
    const divider = a1.getByTestId("new-divider");
    await divider.waitFor({ timeout: WAIT });
    assert.equal(
      await divider.evaluate((el) => el.nextElementSibling?.querySelector("p.body")?.textContent),
      "unread one",
      "New messages goes before the first unread message",
    );
    await shot(a1, "12-new-messages");
    await a2.locator('.conv-item[data-unread="0"]', { hasText: "Launch plan" }).waitFor({ timeout: WAIT });
    assert.equal(await entry(a2, "Launch plan").locator(".badge").count(), 0);
    // A reload asks the server: still read.
    await a2.reload();
    await entry(a2, "Launch plan").waitFor({ timeout: WAIT });
    assert.equal(await entry(a2, "Launch plan").getAttribute("data-unread"), "0");
  });

  await step("seen by: who has read the last message", async () => {
    // Ann (first tab) and Cat have the group open: both read Ben's last message.
    await bp.getByTestId("seen-by").filter({ hasText: /Ann/ }).filter({ hasText: /Cat/ }).waitFor({ timeout: WAIT });
    assert.match(await bp.getByTestId("seen-by").innerText(), /^Seen by (Ann, Cat|Cat, Ann)$/);
    await shot(bp, "13-seen-by");
  });

  await step("a removed member's UI drops the group and receives nothing more", async () => {
    const panel = await openSettings(a1);
    await panel.getByRole("button", { name: `Remove ${cat.displayName}` }).click();
    await panel.locator(`li[data-user-id="${cat.userId}"]`).waitFor({ state: "detached", timeout: WAIT });
    await cp.getByRole("alert").filter({ hasText: "You were removed from “Launch plan”." }).waitFor({ timeout: WAIT });
    await cp.getByRole("heading", { name: "Launch plan", level: 2 }).waitFor({ state: "detached", timeout: WAIT });
    await entry(cp, "Launch plan").waitFor({ state: "detached", timeout: WAIT });
    await shot(cp, "14-removed");
    await bp.locator(`.members li[data-user-id="${cat.userId}"]`).waitFor({ state: "detached", timeout: WAIT });
    await send(bp, "after Cat left");
    await message(a1, "after Cat left").waitFor({ timeout: WAIT });
    // Time for a stray event to arrive, had one been sent.
    await cp.waitForTimeout(1500);
    assert.equal(await cp.getByText("after Cat left").count(), 0);
    assert.equal(await entry(cp, "Launch plan").count(), 0);
    // After a reload too: the server no longer lists it for Cat.
    await cp.reload();
    await cp.getByText("Signed in as").waitFor({ timeout: WAIT });
    await cp.getByText(/No conversations yet/).waitFor({ timeout: WAIT });
  });

  await step("the owner makes Ben an admin, who may then rename", async () => {
    const panel = await openSettings(a1);
    await panel.getByRole("button", { name: `Make ${ben.displayName} an admin` }).click();
    await panel.locator(`li[data-user-id="${ben.userId}"][data-role="admin"]`).waitFor({ timeout: WAIT });
    const bens = await openSettings(bp);
    await bens.getByLabel("Group name").waitFor({ timeout: WAIT });
    // An admin cannot remove the owner: no such button.
    assert.equal(await bens.getByRole("button", { name: `Remove ${ann.displayName}` }).count(), 0);
    await bens.getByLabel("Group name").fill("Launch day");
    await bens.getByRole("button", { name: "Rename" }).click();
    await a1.getByRole("heading", { name: "Launch day", level: 2 }).waitFor({ timeout: WAIT });
    await entry(a2, "Launch day").waitFor({ timeout: WAIT });
  });

  await step("group settings at phone width", async () => {
    await bp.setViewportSize({ width: 390, height: 844 });
    await settings(bp).getByRole("button", { name: "Close settings" }).click();
    await bp.getByRole("button", { name: "Group settings" }).click();
    await settings(bp).getByLabel("Group name").waitFor({ timeout: WAIT });
    await shot(bp, "15-phone-group-settings");
    await bp.getByRole("button", { name: "Back to conversations" }).click();
    await entry(bp, "Launch day").waitFor({ timeout: WAIT });
  });
});

test("two users reply, react and search", async (t) => {
  const dan = { userId: `dan-${run}`, displayName: "Dan", password: "dan-password-1" };
  const eve = { userId: `eve-${run}`, displayName: "Eve", password: "eve-password-1" };
  const dp = await (await newContext()).newPage();
  const ep = await (await newContext()).newPage();
  for (const [who, page] of [["dan", dp], ["eve", ep]]) watch(who, page);
  const step = stepper(t, { dan: dp, eve: ep });
  const original = "Rendez-vous au café à midi?";
  let conversationId;
  let mode;

  await step("two users sign up and talk", async () => {
    mode = await signUp(dp, dan, false);
    await signUp(ep, eve, false);
    if (mode !== "token") return;
    await dp.getByRole("button", { name: "New conversation" }).click();
    await dp.getByLabel("User id").fill(eve.userId);
    await dp.getByLabel("Display name (optional)").fill(eve.displayName);
    await dp.getByRole("button", { name: "Start conversation" }).click();
    await dp.getByRole("heading", { name: "Eve", level: 2 }).waitFor({ timeout: WAIT });
    conversationId = new URL(dp.url()).pathname.split("/").pop();
    await send(dp, original);
    await dp.locator('li.message[data-delivery="sent"]', { hasText: original }).waitFor({ timeout: WAIT });
    await ep.locator(".conv-item", { hasText: "Dan" }).click();
    await message(ep, original).waitFor({ timeout: WAIT });
  });
  if (mode !== "token") {
    t.skip("the server has no accounts (compat mode): replies, reactions and search need a token");
    return;
  }

  await step("a reply quotes its original; a click on the quote goes back to it", async () => {
    await message(ep, original).getByRole("button", { name: "Reply to message" }).click();
    await ep.getByTestId("replying-to").filter({ hasText: `Replying to Dan: ${original}` }).waitFor({ timeout: WAIT });
    // Cancel, then reply for real.
    await ep.getByRole("button", { name: "Cancel reply" }).click();
    await ep.getByTestId("replying-to").waitFor({ state: "detached", timeout: WAIT });
    await message(ep, original).getByRole("button", { name: "Reply to message" }).click();
    await composer(ep).fill("D'accord, à midi");
    await composer(ep).press("Enter");
    await ep.getByTestId("replying-to").waitFor({ state: "detached", timeout: WAIT });
    const reply = message(dp, "D'accord, à midi");
    await reply.waitFor({ timeout: WAIT });
    const quote = reply.locator("button.quote");
    await quote.filter({ hasText: original }).waitFor({ timeout: WAIT });
    assert.equal(await quote.locator(".quote-sender").innerText(), "You");
    await shot(ep, "16-reply");
    await quote.click();
    await dp.locator('li.message[data-highlighted="true"]', { hasText: original }).waitFor({ timeout: WAIT });
  });

  await step("reactions: counts and who reacted, seen live by the other user", async () => {
    const onEve = () => message(ep, "D'accord, à midi");
    const onDan = () => message(dp, "D'accord, à midi");
    await onDan().getByRole("button", { name: "Add reaction" }).click();
    await onDan().getByRole("button", { name: "React with 👍" }).click();
    const chipOnEve = onEve().locator('button.chip[data-emoji="👍"]');
    await onEve().locator('button.chip[data-emoji="👍"][data-count="1"]').waitFor({ timeout: WAIT });
    assert.equal(await chipOnEve.getAttribute("title"), "Dan reacted with 👍");
    assert.equal(await chipOnEve.getAttribute("aria-pressed"), "false");
    // Eve adds hers with a click on the chip: Dan sees two, and who.
    await chipOnEve.click();
    const chipOnDan = onDan().locator('button.chip[data-emoji="👍"]');
    await onDan().locator('button.chip[data-emoji="👍"][data-count="2"]').waitFor({ timeout: WAIT });
    assert.equal(await chipOnDan.getAttribute("title"), "You and Eve reacted with 👍");
    assert.equal(await chipOnDan.getAttribute("aria-pressed"), "true");
    // A second emoji from Eve's picker, then she takes her 👍 back.
    await onEve().getByRole("button", { name: "Add reaction" }).click();
    await onEve().getByRole("button", { name: "React with 🎉" }).click();
    await onDan().locator('button.chip[data-emoji="🎉"][data-count="1"]').waitFor({ timeout: WAIT });
    await shot(dp, "17-reactions");
    await chipOnEve.click();
    await onDan().locator('button.chip[data-emoji="👍"][data-count="1"]').waitFor({ timeout: WAIT });
    assert.equal(await chipOnDan.getAttribute("title"), "You reacted with 👍");
    assert.deepEqual(
      await onDan().locator("button.chip").evaluateAll((els) => els.map((e) => e.dataset.emoji)),
      ["👍", "🎉"],
    );
  });

  await step("a reply to a deleted message says so", async () => {
    await send(dp, "soon deleted");
    await message(ep, "soon deleted").getByRole("button", { name: "Reply to message" }).click();
    await composer(ep).fill("answer to the deleted one");
    await composer(ep).press("Enter");
    await message(dp, "answer to the deleted one").locator("button.quote", { hasText: "soon deleted" }).waitFor({ timeout: WAIT });
    await message(dp, "soon deleted").getByRole("button", { name: "Delete message" }).click();
    await message(dp, "soon deleted").getByRole("button", { name: "Delete", exact: true }).click();
    for (const page of [dp, ep]) {
      await message(page, "answer to the deleted one").locator(".quote.deleted", { hasText: "Original message deleted" }).waitFor({ timeout: WAIT });
    }
  });

  await step("search finds a message whatever its accents and opens it, older pages loaded", async () => {
    // 60 newer messages push the original out of the conversation's first page.
    const session = await dp.evaluate(() => JSON.parse(localStorage.getItem("chat.session") ?? "null"));
    const headers = { "Content-Type": "application/json", Authorization: `Bearer ${session.token}`, Prefer: "respond-async" };
    for (let i = 1; i <= 60; i++) {
      const res = await fetch(`${GATEWAY_URL}/conversations/${conversationId}/messages`, {
        method: "POST",
        headers,
        body: JSON.stringify({ senderId: dan.userId, body: `filler ${i}`, clientMessageId: `f-${run}-${i}` }),
      });
      assert.ok(res.status === 201 || res.status === 202, `send ${i}: ${res.status}`);
    }
    await message(ep, "filler 60").waitFor({ timeout: WAIT });
    await ep.goto(WEB_URL);
    // The list first: results name senders and conversations from it.
    await ep.locator(".conv-item", { hasText: "Dan" }).waitFor({ timeout: WAIT });
    const box = ep.getByRole("searchbox", { name: "Search messages" });
    // 60 matches: pages of 20, "More results" asks for those before the last one shown.
    await box.fill("filler");
    const results = ep.locator(".result-list .result");
    await results.nth(19).waitFor({ timeout: WAIT });
    assert.equal(await results.count(), 20);
    assert.equal(await results.first().locator(".snippet").textContent(), "filler 60");
    for (const shown of [40, 60]) {
      await ep.getByRole("button", { name: "More results" }).click();
      await results.nth(shown - 1).waitFor({ timeout: WAIT });
    }
    await ep.getByRole("button", { name: "More results" }).waitFor({ state: "detached", timeout: WAIT });
    assert.equal(await results.count(), 60);
    assert.equal(await results.last().locator(".snippet").textContent(), "filler 1");
    await box.fill("CAFE a MIDI");
    const result = ep.locator(".result", { hasText: original });
    await result.waitFor({ timeout: WAIT });
    assert.match(await result.locator(".result-head").textContent(), /^Dan in Dan/);
    assert.deepEqual(await result.locator("mark").allInnerTexts(), ["café", "à", "midi"]);
    await shot(ep, "18-search");
    await result.click();
    await ep.getByRole("heading", { name: "Dan", level: 2 }).waitFor({ timeout: WAIT });
    await ep.locator('li.message[data-highlighted="true"]', { hasText: original }).waitFor({ timeout: WAIT });
    assert.equal(await message(ep, "filler 1").count(), 1, "the pages between were loaded");
    assert.equal(await message(ep, original).count(), 1);
  });

  await step("search and reactions at phone width", async () => {
    await ep.setViewportSize({ width: 390, height: 844 });
    await ep.getByRole("button", { name: "Back to conversations" }).click();
    const box = ep.getByRole("searchbox", { name: "Search messages" });
    await box.waitFor({ timeout: WAIT });
    await ep.locator(".result", { hasText: original }).waitFor({ timeout: WAIT });
    await shot(ep, "19-phone-search");
    // Nothing sticks out sideways: the results and the conversation fit the screen.
    const overflow = () => ep.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(await overflow(), 0);
    await ep.locator(".result", { hasText: original }).click();
    await ep.locator('li.message[data-highlighted="true"]', { hasText: original }).waitFor({ timeout: WAIT });
    await message(ep, "D'accord, à midi").scrollIntoViewIfNeeded();
    await message(ep, "D'accord, à midi").getByRole("button", { name: "Add reaction" }).click();
    await message(ep, "D'accord, à midi").getByRole("button", { name: "React with 👀" }).waitFor({ timeout: WAIT });
    assert.equal(await overflow(), 0);
    await shot(ep, "20-phone-reactions");
  });
});

/** A real PNG of `w`×`h` pixels in one colour (so the browser decodes it: naturalWidth > 0). */
function png(w, h, [r, g, bl]) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const byte of buf) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: w }, () => [r, g, bl]).flat())]);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** A small valid PDF (one empty page), with bytes that differ on every run. */
function pdf() {
  const body = `%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj\n% run ${run}\ntrailer << /Root 1 0 R >>\n%%EOF\n`;
  return Buffer.from(body, "latin1");
}

test("two users share an image and a PDF", async (t) => {
  const frank = { userId: `frank-${run}`, displayName: "Frank", password: "frank-password-1" };
  const grace = { userId: `grace-${run}`, displayName: "Grace", password: "grace-password-1" };
  const henry = { userId: `henry-${run}`, displayName: "Henry" };
  const fp = await (await newContext()).newPage();
  const gctx = await newContext();
  // Routing turns Chromium's HTTP cache off for Grace: a file URL is fetched again each time
  // it is shown, so a revoked one is seen as such (cached bytes would hide it).
  const fileRequests = [];
  await gctx.route(/\/attachments\//, (route) => {
    fileRequests.push(route.request().url());
    return route.continue();
  });
  const gp = await gctx.newPage();
  for (const [who, page] of [["frank", fp], ["grace", gp]]) watch(who, page);
  const step = stepper(t, { frank: fp, grace: gp });
  const image = png(240, 160, [30, 120, 200]);
  const doc = pdf();
  let mode;
  let conversationId;
  let frankAuth;

  await step("two users sign up and open a group", async () => {
    mode = await signUp(fp, frank, false);
    await signUp(gp, grace, false);
    if (mode !== "token") return;
    const session = await fp.evaluate(() => JSON.parse(localStorage.getItem("chat.session") ?? "null"));
    frankAuth = { Authorization: `Bearer ${session.token}` };
    // Henry only needs an account (members are registered users); he never opens the UI.
    const signed = await fetch(`${GATEWAY_URL}/auth/register`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...henry, password: "henry-password-1" }),
    });
    assert.equal(signed.status, 201, await signed.clone().text());
    const res = await fetch(`${GATEWAY_URL}/conversations`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...frankAuth },
      body: JSON.stringify({
        type: "group",
        name: `Files ${run}`,
        members: [{ userId: frank.userId, displayName: frank.displayName }, grace, henry].map(({ userId, displayName }) => ({ userId, displayName })),
      }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    conversationId = (await res.json()).id;
    await fp.goto(`${WEB_URL}/c/${conversationId}`);
    await fp.getByRole("heading", { name: `Files ${run}`, level: 2 }).waitFor({ timeout: WAIT });
    await send(fp, "Files coming");
    await gp.locator(".conv-item", { hasText: `Files ${run}` }).click();
    await message(gp, "Files coming").waitFor({ timeout: WAIT });
  });
  if (mode !== "token") {
    t.skip("the server has no accounts (compat mode): uploads need a token");
    return;
  }

  await step("an image and a PDF attached by the button upload with progress and are sent", async () => {
    await fp.getByTestId("attach-input").setInputFiles([
      { name: "blue square.png", mimeType: "image/png", buffer: image },
      { name: "Rapport d'été.pdf", mimeType: "application/pdf", buffer: doc },
    ]);
    const chips = fp.locator(".pending-file");
    await chips.nth(1).waitFor({ timeout: WAIT });
    assert.deepEqual(await chips.locator(".file-name").allInnerTexts(), ["blue square.png", "Rapport d'été.pdf"]);
    await fp.locator('.pending-file[data-status="done"]').nth(1).waitFor({ timeout: WAIT });
    await shot(fp, "21-attachments-pending");
    await send(fp, "The picture and the report");
    await fp.locator(".pending-file").first().waitFor({ state: "detached", timeout: WAIT });
    const sent = fp.locator('li.message[data-delivery="sent"]', { hasText: "The picture and the report" });
    await sent.locator("img").waitFor({ timeout: WAIT });
  });

  await step("the other user sees the image, opens the larger view, and downloads the PDF", async () => {
    const m = message(gp, "The picture and the report");
    const img = m.getByRole("img", { name: "blue square.png" });
    await img.waitFor({ timeout: WAIT });
    await img.evaluate((el) => el.decode());
    assert.equal(await img.evaluate((el) => el.naturalWidth), 240);
    // The box was sized from the dimensions the server read.
    const box = await m.getByRole("button", { name: "Open image blue square.png" }).boundingBox();
    assert.ok(Math.abs(box.width / box.height - 1.5) < 0.05, `box ${box.width}x${box.height}`);
    await shot(gp, "22-attachments-received");
    await m.getByRole("button", { name: "Open image blue square.png" }).click();
    const viewer = gp.getByRole("dialog", { name: "blue square.png" });
    await viewer.waitFor({ timeout: WAIT });
    const big = viewer.getByRole("img", { name: "blue square.png" });
    await big.evaluate((el) => el.decode());
    assert.equal(await big.evaluate((el) => el.naturalWidth), 240);
    await shot(gp, "23-image-viewer");
    await gp.keyboard.press("Escape");
    await viewer.waitFor({ state: "detached", timeout: WAIT });

    const chip = m.getByRole("link", { name: /^Download Rapport d'été\.pdf, / });
    assert.match(await chip.innerText(), /Rapport d'été\.pdf\s*\d+ B/);
    const [download] = await Promise.all([gp.waitForEvent("download", { timeout: WAIT }), chip.click()]);
    assert.equal(download.suggestedFilename(), "Rapport d'été.pdf");
    const got = readFileSync(await download.path());
    assert.ok(got.equals(doc), `downloaded ${got.length} bytes, sent ${doc.length}`);
  });

  await step("an image pasted into the box and a file dropped on the conversation", async () => {
    const pasted = png(64, 48, [200, 40, 40]).toString("base64");
    await composer(fp).evaluate((box, b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], "image.png", { type: "image/png" }));
      box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
    }, pasted);
    await fp.locator("section.conversation").evaluate((section) => {
      const dt = new DataTransfer();
      dt.items.add(new File(["dropped text\n"], "dropped notes.txt", { type: "text/plain" }));
      section.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
      section.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    const names = fp.locator(".pending-file .file-name");
    await names.nth(1).waitFor({ timeout: WAIT });
    const [pastedName, droppedName] = await names.allInnerTexts();
    assert.match(pastedName, /^pasted-\d{8}-\d{6}\.png$/);
    assert.equal(droppedName, "dropped notes.txt");
    await fp.locator('.pending-file[data-status="done"]').nth(1).waitFor({ timeout: WAIT });
    // No text: the message's body is the files' names.
    await fp.getByRole("button", { name: "Send", exact: true }).click();
    const m = message(gp, `${pastedName}, dropped notes.txt`);
    const img = m.getByRole("img", { name: pastedName });
    await img.waitFor({ timeout: WAIT });
    await img.evaluate((el) => el.decode());
    assert.equal(await img.evaluate((el) => el.naturalWidth), 64);
    await m.getByRole("link", { name: /^Download dropped notes\.txt, 13 B$/ }).waitFor({ timeout: WAIT });
  });

  await step("a member's removal revokes the URLs handed out: the UI re-reads the message for fresh ones", async () => {
    const m = message(gp, "The picture and the report");
    const before = await m.getByRole("img", { name: "blue square.png" }).getAttribute("src");
    const reads = [];
    gp.on("request", (r) => {
      if (/\/conversations\/[^/]+\/messages\?/.test(r.url())) reads.push(r.url());
    });
    // The page itself keeps images it has shown (whatever the HTTP cache): with the cache
    // off as DevTools does it, the larger view asks the server again, as a new page would.
    const cdp = await gp.context().newCDPSession(gp);
    await cdp.send("Network.enable");
    await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
    revoked.at = Date.now();
    const res = await fetch(`${GATEWAY_URL}/conversations/${conversationId}/members/${henry.userId}`, { method: "DELETE", headers: frankAuth });
    assert.equal(res.status, 204);
    const old = await fetch(new URL(before, GATEWAY_URL));
    assert.equal(old.status, 403, "a URL issued before the removal is refused");
    // The larger view asks for the (revoked) URL: refused, then shown from a fresh one.
    await m.getByRole("button", { name: "Open image blue square.png" }).click();
    const viewer = gp.getByRole("dialog", { name: "blue square.png" });
    const big = viewer.getByRole("img", { name: "blue square.png" });
    await gp.waitForFunction(
      (old) => {
        const img = document.querySelector(".viewer img");
        return img && img.complete && img.naturalWidth > 0 && img.getAttribute("src") !== old;
      },
      before,
      { timeout: WAIT },
    );
    assert.equal(await big.evaluate((el) => el.naturalWidth), 240);
    assert.equal(reads.length, 1, `one re-read: ${reads.join(" ")}`);
    await gp.keyboard.press("Escape");
    // Read again, the message names the preview made meanwhile: the inline image is it.
    const inline = m.getByRole("img", { name: "blue square.png" });
    const now = await inline.getAttribute("src");
    assert.notEqual(now, before);
    assert.match(now, /\/attachments\/[0-9a-f-]{36}\/thumbnail\?i=\d+&e=\d+&s=/);
    await inline.evaluate((el) => el.decode());
    assert.equal(await inline.evaluate((el) => el.naturalWidth), 240);
  });

  await step("files at phone width", async () => {
    await gp.setViewportSize({ width: 390, height: 844 });
    const m = message(gp, "The picture and the report");
    await m.scrollIntoViewIfNeeded();
    const overflow = () => gp.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(await overflow(), 0);
    await shot(gp, "24-phone-attachments");
    await m.getByRole("button", { name: "Open image blue square.png" }).click();
    const viewer = gp.getByRole("dialog", { name: "blue square.png" });
    await viewer.waitFor({ timeout: WAIT });
    const size = await viewer.getByRole("img", { name: "blue square.png" }).boundingBox();
    assert.ok(size.width <= 390, `the larger view fits the phone: ${size.width}`);
    await shot(gp, "25-phone-image-viewer");
    await viewer.getByRole("button", { name: "Close image" }).click();
    await viewer.waitFor({ state: "detached", timeout: WAIT });
  });
});

test("neither page threw or logged an error", () => {
  assert.deepEqual(pageProblems, []);
});
