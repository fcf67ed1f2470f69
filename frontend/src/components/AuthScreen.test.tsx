import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { Api } from "../api";
import { loadSession } from "../session";
import { FakeGateway } from "../test/fakes";
import { App } from "./App";

vi.mock("../realtime", () => ({
  connect: () => ({ on() {}, emit() {}, disconnect() {} }),
}));

let gw: FakeGateway;
beforeEach(() => {
  gw = new FakeGateway();
  history.replaceState(null, "", "/");
});

const start = () => {
  render(<App config={{ apiUrl: "", iceServers: [] }} api={new Api("", gw.fetch)} />);
  return userEvent.setup();
};

describe("sign-in screen", () => {
  it("creates an account, explaining mistakes before asking the server", async () => {
    const user = start();
    await user.click(await screen.findByRole("button", { name: "Create account" }));
    await user.type(screen.getByLabelText("User id"), "bad id!");
    await user.click(screen.getByRole("main").querySelector("button[type=submit]") as HTMLButtonElement);
    expect((await screen.findByRole("alert")).textContent).toMatch(/User ids are/);
    expect(gw.requests.some((r) => r.path === "/auth/register")).toBe(false);
  });

  it("says a taken user id, then signs up and keeps the session", async () => {
    const user = start();
    await user.click(await screen.findByRole("button", { name: "Create account" }));
    const form = () => screen.getByRole("main");
    await user.type(screen.getByLabelText("User id"), "taken");
    await user.type(screen.getByLabelText("Display name"), "Someone");
    await user.type(screen.getByLabelText("Password"), "long enough");
    await user.click(form().querySelector("button[type=submit]") as HTMLButtonElement);
    expect((await screen.findByRole("alert")).textContent).toMatch(/taken/);

    await user.clear(screen.getByLabelText("User id"));
    await user.type(screen.getByLabelText("User id"), "carol");
    await user.click(form().querySelector("button[type=submit]") as HTMLButtonElement);
    expect(await screen.findByText("Signed in as")).toBeTruthy();
    expect(loadSession()).toMatchObject({ mode: "token", token: "tok", user: { userId: "carol", displayName: "Someone" } });
  });

  it("reports a wrong password", async () => {
    const user = start();
    await user.type(await screen.findByLabelText("User id"), "carol");
    await user.type(screen.getByLabelText("Password"), "nope nope");
    await user.keyboard("{Enter}");
    expect((await screen.findByRole("alert")).textContent).toBe("Wrong user id or password.");
  });

  it("on a server without accounts, joins by user id and says it is unprotected", async () => {
    gw.identity = false;
    const user = start();
    expect(await screen.findByRole("heading", { name: "Join the chat" })).toBeTruthy();
    expect(screen.getByText(/compatibility mode/)).toBeTruthy();
    expect(screen.queryByLabelText("Password")).toBeNull();
    await user.type(screen.getByLabelText("User id"), "dave");
    await user.type(screen.getByLabelText("Display name"), "Dave");
    await user.keyboard("{Enter}");
    expect(await screen.findByText("Signed in as")).toBeTruthy();
    expect(loadSession()).toEqual({ mode: "open", user: { userId: "dave", displayName: "Dave" } });
  });
});
