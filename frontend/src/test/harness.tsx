// The app rendered against the fake gateway, signed in as Alice, for component tests (each
// test file mocks ../realtime itself, since vi.mock is per file).
import { render } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Api } from "../api";
import { App } from "../components/App";
import { saveSession } from "../session";
import type { FakeGateway } from "./fakes";

export const alice = { userId: "alice", displayName: "Alice" };
export const bob = { userId: "bob", displayName: "Bob" };

/** Before each test: Alice's session kept, at the app's root. */
export function signedInAsAlice() {
  saveSession({ mode: "token", token: "tok", expiresAt: "2999-01-01T00:00:00.000Z", user: alice });
  history.replaceState(null, "", "/");
}

export function startApp(gw: FakeGateway) {
  const user = userEvent.setup();
  render(<App config={{ apiUrl: "", iceServers: [] }} api={new Api("", gw.fetch, gw.xhr)} />);
  return user;
}
