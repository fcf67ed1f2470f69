import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import type userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { FakeGateway, FakeSocket } from "../test/fakes";
import { live } from "../test/live";
import { alice, bob, signedInAsAlice, startApp } from "../test/harness";
import type { Message } from "../types";
import { inlineBox } from "./Attachments";

vi.mock("../realtime", () => import("../test/live"));

let gw: FakeGateway;

beforeEach(() => {
  gw = new FakeGateway();
  live.socket = new FakeSocket();
  signedInAsAlice();
});

const png = (name = "cat.png") => new File([new Uint8Array(2048)], name, { type: "image/png" });
const pdf = (name = "report.pdf") => new File([new Uint8Array(3 * 1024 * 1024)], name, { type: "application/pdf" });

async function openWithBob(user: ReturnType<typeof userEvent.setup>) {
  const c = gw.conversations[0] ?? gw.addConversation([alice, bob]);
  await user.click(await screen.findByRole("button", { name: /^Bob/ }));
  await screen.findByRole("heading", { name: "Bob", level: 2 });
  return c;
}

const sendButton = () => screen.getByRole("button", { name: /^(Send|Uploading…)$/ });
const pending = () => screen.queryByRole("list", { name: "Files to send" });

/** A message of Bob's with an image and a PDF, as the server hands it out. */
function bobsFiles(conversationId: string): Message {
  const m = gw.addMessage(conversationId, "bob", "the files");
  const stored = gw.messages.find((x) => x.id === m.id)!;
  stored.attachments = [
    { id: "img1", name: "wide.png", contentType: "image/png", size: 5000, url: "", width: 1280, height: 640 },
    { id: "doc1", name: "notes.pdf", contentType: "application/pdf", size: 1536, url: "" },
  ];
  return gw.hydrate(stored);
}

describe("composer", () => {
  it("attaches files by the button, shows progress, waits for the uploads, then sends their ids", async () => {
    gw.addConversation([alice, bob]);
    const user = startApp(gw);
    const c = await openWithBob(user);
    gw.holdUploads = true;
    await user.upload(screen.getByTestId("attach-input"), [png(), pdf()]);
    const chips = within(pending()!).getAllByRole("listitem");
    expect(chips.map((li) => li.querySelector(".file-name")?.textContent)).toEqual(["cat.png", "report.pdf"]);
    expect(chips.map((li) => li.querySelector(".file-size")?.textContent)).toEqual(["2 KB", "3 MB"]);
    expect(screen.getByRole("progressbar", { name: "Uploading cat.png" })).toBeTruthy();
    expect(sendButton().textContent).toBe("Uploading…");
    expect((sendButton() as HTMLButtonElement).disabled).toBe(true);
    // Upload headers: type, percent-encoded name, token.
    expect(gw.uploadRequests.map((r) => [r.headers["Content-Type"], r.headers["x-filename"], r.headers.Authorization])).toEqual([
      ["image/png", "cat.png", "Bearer tok"],
      ["application/pdf", "report.pdf", "Bearer tok"],
    ]);
    act(() => gw.releaseUploads());
    await waitFor(() => expect((sendButton() as HTMLButtonElement).disabled).toBe(false));
    // No text: the file names are the message's body. While it is sent, the files show
    // without links (the server signs URLs once the message exists).
    gw.hold = (path, method) => method === "POST" && path.endsWith("/messages");
    await user.click(sendButton());
    const sending = (await screen.findByText("cat.png, report.pdf", { selector: "p.body" })).closest("li")!;
    expect(sending.dataset.delivery).toBe("pending");
    expect(sending.querySelector(".att-image.pending")?.textContent).toBe("cat.png");
    expect(sending.querySelector(".file-chip.pending")?.textContent).toContain("report.pdf");
    expect(within(sending).queryByRole("link")).toBeNull();
    gw.hold = null;
    act(() => gw.release());
    const post = gw.requests.find((r) => r.method === "POST" && r.path === `/conversations/${c.id}/messages`);
    expect(post?.body.body).toBe("cat.png, report.pdf");
    expect(post?.body.attachmentIds).toEqual([...gw.uploads.keys()]);
    expect(pending()).toBeNull();
    const sentItem = () => screen.getByText("cat.png, report.pdf", { selector: "p.body" }).closest("li")!;
    await waitFor(() => expect(sentItem().dataset.delivery).toBe("sent"));
    const li = sentItem();
    const img = within(li).getByRole("img", { name: "cat.png" }) as HTMLImageElement;
    expect(img.getAttribute("src")).toMatch(/^\/attachments\/a\d+\?i=\d+&e=\d+&s=sig\d+$/);
    const link = within(li).getByRole("link", { name: "Download report.pdf, 3 MB" });
    expect(link.getAttribute("href")).toMatch(/^\/attachments\/a\d+\?/);
  });

  it("a text with files keeps the text; plain sends carry no attachmentIds", async () => {
    gw.addConversation([alice, bob]);
    const user = startApp(gw);
    await openWithBob(user);
    await user.type(screen.getByRole("textbox", { name: "Message Bob" }), "plain{Enter}");
    await user.upload(screen.getByTestId("attach-input"), png());
    await waitFor(() => expect((sendButton() as HTMLButtonElement).disabled).toBe(false));
    await user.type(screen.getByRole("textbox", { name: "Message Bob" }), "look{Enter}");
    const posts = gw.requests.filter((r) => r.method === "POST" && r.path.endsWith("/messages"));
    expect(posts.map((p) => [p.body.body, p.body.attachmentIds])).toEqual([
      ["plain", undefined],
      ["look", [...gw.uploads.keys()]],
    ]);
  });

  it("a failed upload says why, blocks sending, and can be retried or removed", async () => {
    gw.addConversation([alice, bob]);
    const user = startApp(gw);
    await openWithBob(user);
    gw.uploadFailures.push({ status: 413, message: "the file is larger than 26214400 bytes" });
    await user.upload(screen.getByTestId("attach-input"), pdf("huge.pdf"));
    expect((await screen.findByRole("alert")).textContent).toBe("Not uploaded: Too large (max 25 MB)");
    await user.type(screen.getByRole("textbox", { name: "Message Bob" }), "with it");
    expect((sendButton() as HTMLButtonElement).disabled).toBe(true);
    await user.click(screen.getByRole("button", { name: "Retry huge.pdf" }));
    await waitFor(() => expect(pending()!.querySelector("li")!.dataset.status).toBe("done"));
    expect((sendButton() as HTMLButtonElement).disabled).toBe(false);
    await user.click(screen.getByRole("button", { name: "Remove huge.pdf" }));
    expect(pending()).toBeNull();
  });

  it("at most 10 files; more are refused with a notice", async () => {
    gw.addConversation([alice, bob]);
    const user = startApp(gw);
    await openWithBob(user);
    await user.upload(screen.getByTestId("attach-input"), Array.from({ length: 12 }, (_, i) => png(`p${i}.png`)));
    expect(within(pending()!).getAllByRole("listitem")).toHaveLength(10);
    expect(screen.getByText("At most 10 files per message: 2 not added.")).toBeTruthy();
    expect((screen.getByRole("button", { name: "Attach files" }) as HTMLButtonElement).disabled).toBe(true);
  });

  it("takes a pasted image (named by time) and files dropped on the conversation", async () => {
    gw.addConversation([alice, bob]);
    const user = startApp(gw);
    await openWithBob(user);
    const box = screen.getByRole("textbox", { name: "Message Bob" });
    fireEvent.paste(box, { clipboardData: { files: [new File([new Uint8Array(5)], "image.png", { type: "image/png" })] } });
    const section = box.closest("section")!;
    fireEvent.dragOver(section, { dataTransfer: { types: ["Files"], files: [], dropEffect: "none" } });
    expect(section.className).toContain("dropping");
    fireEvent.drop(section, { dataTransfer: { types: ["Files"], files: [pdf("dropped.pdf")] } });
    expect(section.className).not.toContain("dropping");
    const names = within(pending()!)
      .getAllByRole("listitem")
      .map((li) => li.querySelector(".file-name")?.textContent);
    expect(names[0]).toMatch(/^pasted-\d{8}-\d{6}\.png$/);
    expect(names[1]).toBe("dropped.pdf");
    await waitFor(() => expect(gw.uploads.size).toBe(2));
    expect([...gw.uploads.values()].map((u) => u.name)).toEqual(names);
  });
});

describe("messages with files", () => {
  it("shows images inline in a box of their shape, other files as chips with name and size", async () => {
    const c = gw.addConversation([alice, bob]);
    bobsFiles(c.id);
    const user = startApp(gw);
    await openWithBob(user);
    const li = (await screen.findByText("the files", { selector: "p.body" })).closest("li")!;
    const open = within(li).getByRole("button", { name: "Open image wide.png" });
    expect(open.style.width).toBe("320px");
    expect(open.style.aspectRatio).toBe("320 / 160");
    const img = within(open).getByRole("img", { name: "wide.png" });
    expect(img.getAttribute("width")).toBe("320");
    expect(img.getAttribute("height")).toBe("160");
    const chip = within(li).getByRole("link", { name: "Download notes.pdf, 1.5 KB" });
    expect(chip.textContent).toContain("notes.pdf");
    expect(chip.getAttribute("download")).toBe("notes.pdf");
    expect(within(li).queryByRole("img", { name: "notes.pdf" })).toBeNull();
  });

  it("a click opens the larger view; Escape and the close button close it, focus returns", async () => {
    const c = gw.addConversation([alice, bob]);
    bobsFiles(c.id);
    const user = startApp(gw);
    await openWithBob(user);
    const open = await screen.findByRole("button", { name: "Open image wide.png" });
    await user.click(open);
    const dialog = screen.getByRole("dialog", { name: "wide.png" });
    expect(within(dialog).getByRole("img", { name: "wide.png" }).getAttribute("src")).toMatch(/^\/attachments\/img1\?/);
    expect(document.activeElement).toBe(within(dialog).getByRole("button", { name: "Close image" }));
    // Tab stays in the view.
    await user.tab();
    expect(document.activeElement).toBe(within(dialog).getByRole("link", { name: "Open original" }));
    await user.tab({ shift: true });
    expect(document.activeElement).toBe(within(dialog).getByRole("button", { name: "Close image" }));
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("dialog")).toBeNull();
    await waitFor(() => expect(document.activeElement).toBe(open));
    await user.keyboard("{Enter}");
    await user.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Close image" }));
    expect(screen.queryByRole("dialog")).toBeNull();
  });

  it("an image that fails to load re-reads its message once for fresh URLs", async () => {
    const c = gw.addConversation([alice, bob]);
    gw.addMessage(c.id, "bob", "before");
    bobsFiles(c.id);
    const user = startApp(gw);
    await openWithBob(user);
    const img = () => screen.getByRole("img", { name: "wide.png" });
    await screen.findByRole("img", { name: "wide.png" });
    const first = img().getAttribute("src");
    const reads = () => gw.requests.filter((r) => r.method === "GET" && r.path.includes("/messages")).length;
    const before = reads();
    fireEvent.error(img());
    await waitFor(() => expect(img().getAttribute("src")).not.toBe(first));
    expect(reads()).toBe(before + 1);
    expect(gw.requests.at(-1)?.path).toBe(`/conversations/${c.id}/messages?limit=1&after=${gw.messages[0].id}`);
    // Broken again at once (the file is gone): no loop of requests, the image says so.
    fireEvent.error(img());
    expect(await screen.findByRole("img", { name: "wide.png (could not be loaded)" })).toBeTruthy();
    expect(reads()).toBe(before + 1);
    // The PDF chip got its fresh URL too.
    expect(screen.getByRole("link", { name: /Download notes\.pdf/ }).getAttribute("href")).toMatch(/s=sig/);
  });

  it("a live message with files from someone else shows them", async () => {
    const c = gw.addConversation([alice, bob]);
    const user = startApp(gw);
    await openWithBob(user);
    await screen.findByText(/No messages yet. Say hello/);
    act(() => live.socket.deliver("message:created", bobsFiles(c.id)));
    expect(await screen.findByRole("img", { name: "wide.png" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Download notes.pdf, 1.5 KB" })).toBeTruthy();
  });

  it("sizes the inline box from the image's dimensions", () => {
    const a = { id: "x", name: "x", contentType: "image/png", size: 1, url: "/u" };
    expect(inlineBox({ ...a, width: 100, height: 50 })).toEqual({ width: 100, height: 50 });
    expect(inlineBox({ ...a, width: 400, height: 1600 })).toEqual({ width: 80, height: 320 });
    expect(inlineBox(a)).toBeUndefined();
  });
});
