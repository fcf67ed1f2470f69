// Proves the point of the generated types: a contract change the browser UI does not follow
// fails the UI's type check. Each case copies the contract's documents with one change,
// generates the client's types from them into a scratch copy of the package, and runs the
// UI's own `tsc` over frontend/src with `@chat-platform/client` pointed at that copy. The
// unchanged documents must pass the same check, so a failure is the change's doing.
// Needs `npm ci` in clients/typescript and in frontend (scripts/test-ui.sh does both).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(packageDir, "../..");
const frontend = join(repoRoot, "frontend");
const tsc = join(frontend, "node_modules/.bin/tsc");
const contract = join(repoRoot, "services/gateway/api");

let scratch;
before(() => {
  assert.ok(existsSync(tsc), "frontend/node_modules/.bin/tsc is missing: run `npm ci` in frontend first");
  // Inside frontend/node_modules, so the tsconfig here finds the UI's type packages
  // (`vitest/globals`, React's types) the way frontend/tsconfig.json does.
  const cache = join(frontend, "node_modules/.cache");
  mkdirSync(cache, { recursive: true });
  scratch = mkdtempSync(join(cache, "contract-change-"));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Generates the client from the documents `change` gives and type-checks the UI against it. */
function checkUi(name, change = () => {}) {
  const dir = join(scratch, name);
  const docs = join(dir, "api");
  mkdirSync(docs, { recursive: true });
  const openapi = JSON.parse(readFileSync(join(contract, "openapi.json"), "utf8"));
  const asyncapi = JSON.parse(readFileSync(join(contract, "asyncapi.json"), "utf8"));
  change({ openapi, asyncapi });
  writeFileSync(join(docs, "openapi.json"), JSON.stringify(openapi));
  writeFileSync(join(docs, "asyncapi.json"), JSON.stringify(asyncapi));

  cpSync(join(packageDir, "src"), join(dir, "client/src"), { recursive: true });
  const gen = spawnSync(
    process.execPath,
    [
      join(packageDir, "scripts/generate.mjs"),
      "--openapi", join(docs, "openapi.json"),
      "--asyncapi", join(docs, "asyncapi.json"),
      "--out", join(dir, "client/src/generated"),
    ],
    { encoding: "utf8" },
  );
  assert.equal(gen.status, 0, `generate failed:\n${gen.stderr}`);

  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      extends: relative(dir, join(frontend, "tsconfig.json")),
      compilerOptions: { paths: { "@chat-platform/client": ["./client/src/index.ts"] } },
      include: [relative(dir, join(frontend, "src"))],
    }),
  );
  const run = spawnSync(tsc, ["--noEmit", "-p", join(dir, "tsconfig.json")], { encoding: "utf8" });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

test("the UI type-checks against the unchanged contract", () => {
  const { status, output } = checkUi("unchanged");
  assert.equal(status, 0, output);
});

test("renaming a required property of Message fails the UI's type check", () => {
  const { status, output } = checkUi("message-body-renamed", ({ openapi }) => {
    const message = openapi.components.schemas.Message;
    message.properties.text = message.properties.body;
    delete message.properties.body;
    message.required = message.required.map((p) => (p === "body" ? "text" : p));
  });
  assert.notEqual(status, 0, "tsc passed although Message.body was renamed");
  assert.match(output, /error TS\d+/);
  assert.match(output, /'body'|"body"|\bbody\b/);
});

test("changing an event's payload fails the UI's type check", () => {
  const { status, output } = checkUi("conversation-removed-changed", ({ asyncapi }) => {
    const payload = asyncapi.components.messages.conversationRemoved.payload.schema;
    payload.properties = { id: payload.properties.conversationId };
    payload.required = ["id"];
  });
  assert.notEqual(status, 0, "tsc passed although conversation:removed lost conversationId");
  assert.match(output, /conversationId/);
});
