#!/usr/bin/env node
// Writes the generated half of @chat-platform/client from the contract's two documents:
//   src/generated/openapi.ts  the HTTP API (`paths`, `components`, `operations`), by openapi-typescript
//   src/generated/schemas.ts  one named alias per component schema (`Message`, `Call`, ...)
//   src/generated/events.ts   the Socket.IO events, in the maps socket.io-client's `Socket` takes
// The output depends only on the documents (and the pinned openapi-typescript), so a check can
// regenerate and compare.
//
//   node scripts/generate.mjs            write the files
//   node scripts/generate.mjs --check    write nothing; exit 1 when the files are not what the
//                                        documents give (the test command runs this)
//   --openapi FILE --asyncapi FILE --out DIR   other inputs or output (the contract-change test)
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = resolve(here, "..");
const repoRoot = resolve(packageDir, "../..");

const { values: args } = parseArgs({
  options: {
    openapi: { type: "string", default: join(repoRoot, "services/gateway/api/openapi.json") },
    asyncapi: { type: "string", default: join(repoRoot, "services/gateway/api/asyncapi.json") },
    out: { type: "string", default: join(packageDir, "src/generated") },
    check: { type: "boolean", default: false },
  },
});

// Inline object schemas without properties (a signal's `payload`) allow any properties in
// OpenAPI; openapi-typescript's default would type them `Record<string, never>`.
const OPTIONS = { emptyObjectsUnknown: true };
const EVENT_PREFIX = "x-event-payload:";
const ACK_PREFIX = "x-event-ack:";

/** How the header names a document: its path in the repository (the same on every machine). */
function sourceName(file) {
  const rel = relative(repoRoot, resolve(file));
  return rel.startsWith("..") ? basename(file) : rel.split(sep).join("/");
}

function header(sources, what) {
  return (
    `// Generated from ${sources.map(sourceName).join(" and ")} by\n` +
    `// clients/typescript/scripts/generate.mjs (npm run generate); do not edit.\n` +
    `// ${what}\n`
  );
}

/** Follows a local `$ref` ("#/a/b") inside `doc`, repeatedly. */
function deref(doc, node) {
  const seen = new Set();
  while (node && typeof node.$ref === "string") {
    const ref = node.$ref;
    if (!ref.startsWith("#/") || seen.has(ref)) throw new Error(`cannot follow $ref ${ref}`);
    seen.add(ref);
    node = ref
      .slice(2)
      .split("/")
      .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
      .reduce((at, key) => at?.[key], doc);
    if (node === undefined) throw new Error(`$ref ${ref} points at nothing`);
  }
  return node;
}

/**
 * Makes an AsyncAPI payload schema (OpenAPI 3.0 flavour) a schema of the synthetic document
 * below: references into openapi.json become local ones, which openapi-typescript prints as
 * `components["schemas"]["X"]`, the type events.ts imports from openapi.ts.
 */
function localizeRefs(schema, where) {
  if (Array.isArray(schema)) return schema.map((s) => localizeRefs(s, where));
  if (schema === null || typeof schema !== "object") return schema;
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$ref") {
      const m = /^(?:\.\/)?openapi\.json(#\/components\/schemas\/[^/]+)$/.exec(value);
      if (!m) throw new Error(`${where}: only $refs to openapi.json#/components/schemas/... are supported, not ${value}`);
      out.$ref = m[1];
    } else {
      out[key] = localizeRefs(value, where);
    }
  }
  return out;
}

/** The `schemas` members of openapi-typescript's `components` interface, by name. */
function schemaMembers(nodes) {
  const components = nodes.find((n) => ts.isInterfaceDeclaration(n) && n.name.text === "components");
  const schemas = components?.members.find((m) => m.name?.text === "schemas");
  if (!schemas?.type || !ts.isTypeLiteralNode(schemas.type)) throw new Error("no components.schemas in openapi-typescript's output");
  return new Map(schemas.type.members.map((m) => [m.name.text, m.type]));
}

/** A type printed on its own, indented to sit at `indent` inside an interface. */
function printType(node, indent) {
  return astToString(node).trim().split("\n").join(`\n${indent}`);
}

function jsdoc(text, indent) {
  const lines = text.trim().replace(/\*\//g, "*\\/").split("\n");
  return lines.length === 1 && lines[0].length < 90
    ? `${indent}/** ${lines[0]} */\n`
    : `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join("\n")}\n${indent} */\n`;
}

/**
 * A copy of `schema` without `anyOf`/`oneOf` lists that only refine properties the object
 * already declares (CreateConversation: "a one_to_one has at most 2 members").
 * openapi-typescript makes such a list a union with the object itself, which would accept
 * `{}`; TypeScript cannot state the refinement, so the object alone is the closest type.
 */
function dropRefinements(schema) {
  if (Array.isArray(schema)) return schema.map(dropRefinements);
  if (schema === null || typeof schema !== "object") return schema;
  const out = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, dropRefinements(v)]));
  const declared = new Set(Object.keys(out.properties ?? {}));
  const refines = (branch) =>
    Object.keys(branch).every((k) => k === "properties" || k === "required" || k === "description") &&
    Object.keys(branch.properties ?? {}).every((p) => declared.has(p)) &&
    (branch.required ?? []).every((p) => declared.has(p) && out.required?.includes(p));
  for (const list of ["anyOf", "oneOf"]) {
    if (declared.size && Array.isArray(out[list]) && out[list].every(refines)) delete out[list];
  }
  return out;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const key = (name) => (IDENTIFIER.test(name) ? name : JSON.stringify(name));

const GLOBALS = new Set(["Array", "Blob", "Boolean", "Date", "Error", "Event", "File", "Function", "Headers", "Map", "Number", "Object", "Promise", "Request", "Response", "Set", "String", "Symbol", "URL"]);

async function generateOpenapi(openapi) {
  const nodes = await openapiTS(structuredClone(openapi), OPTIONS);
  return header([args.openapi], "The HTTP API, by openapi-typescript: `paths`, `components`, `operations`.") + "\n" + astToString(nodes);
}

function generateSchemas(openapi) {
  const reserved = new Set(["paths", "components", "operations", "webhooks", "$defs", "ServerToClientEvents", "ClientToServerEvents", "EventPayloads", "EventAcks"]);
  let out = header([args.openapi], "A named alias of each schema in `components`, for imports like `import type { Message }`.");
  out += `import type { components } from "./openapi";\n`;
  for (const [name, schema] of Object.entries(openapi.components?.schemas ?? {})) {
    if (!IDENTIFIER.test(name) || reserved.has(name)) throw new Error(`schema name ${name} cannot be a type alias`);
    // An alias named like a global (`Error`, `Response`) would hide it wherever it is imported.
    const alias = GLOBALS.has(name) ? `Api${name}` : name;
    out += "\n";
    if (schema.description) out += jsdoc(schema.description, "");
    out += `export type ${alias} = components["schemas"][${JSON.stringify(name)}];\n`;
  }
  return out;
}

/** The AsyncAPI messages by direction: `send` is server to client, `receive` client to server. */
function eventsOf(asyncapi) {
  const byAction = { send: [], receive: [] };
  const keyOf = new Map(Object.entries(asyncapi.components?.messages ?? {}).map(([k, m]) => [m, k]));
  for (const [opId, op] of Object.entries(asyncapi.operations ?? {})) {
    if (!(op.action in byAction)) throw new Error(`operation ${opId}: unknown action ${op.action}`);
    for (const ref of op.messages ?? []) {
      const message = deref(asyncapi, ref);
      const messageKey = keyOf.get(message);
      if (!messageKey) throw new Error(`operation ${opId}: its message is not in components.messages`);
      if (typeof message.name !== "string") throw new Error(`message ${messageKey} has no name (the event's name)`);
      byAction[op.action].push({ key: messageKey, message, summary: op.summary ?? message.summary });
    }
  }
  for (const list of Object.values(byAction)) {
    const names = list.map((e) => e.message.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new Error(`event ${twice} is listed twice in one direction`);
  }
  return byAction;
}

async function generateEvents(openapi, asyncapi) {
  const { send, receive } = eventsOf(asyncapi);
  // One synthetic OpenAPI document: the HTTP schemas (so references resolve) and each event's
  // payload and ack schema; only the latter are printed, the former come from openapi.ts.
  const schemas = { ...openapi.components?.schemas };
  const add = (name, container, where) => {
    if (container?.schemaFormat && !container.schemaFormat.startsWith("application/vnd.oai.openapi")) {
      throw new Error(`${where}: schema format ${container.schemaFormat} is not supported`);
    }
    // A multi-format schema object ({schemaFormat, schema}) or a schema itself.
    let schema = container && "schemaFormat" in container ? container.schema : container;
    if (!schema) throw new Error(`${where}: no schema`);
    if (typeof schema.$ref === "string" && schema.$ref.startsWith("#/")) schema = deref(asyncapi, schema);
    schemas[name] = localizeRefs(schema, where);
  };
  for (const { key: k, message } of [...send, ...receive]) {
    add(EVENT_PREFIX + k, message.payload, `message ${k} payload`);
    if (message["x-ack"]) add(ACK_PREFIX + k, message["x-ack"], `message ${k} x-ack`);
  }
  const synthetic = {
    openapi: openapi.openapi ?? "3.0.3",
    info: { title: "Socket.IO event payloads", version: "0" },
    paths: {},
    components: { schemas },
  };
  const members = schemaMembers(await openapiTS(synthetic, { ...OPTIONS, silent: true }));

  const payloadKeys = [...new Set([...send, ...receive].map((e) => e.key))];
  const ackKeys = receive.filter((e) => e.message["x-ack"]).map((e) => e.key);
  const map = (title, doc, keys, prefix) =>
    jsdoc(doc, "") +
    `export interface ${title} {\n` +
    keys.map((k) => `    ${key(k)}: ${printType(members.get(prefix + k), "    ")};\n`).join("") +
    "}\n";

  let out = header([args.asyncapi, args.openapi], "The Socket.IO events: `Socket<ServerToClientEvents, ClientToServerEvents>` of socket.io-client.");
  out += `import type { components } from "./openapi";\n\n`;
  out += map("EventPayloads", "Each event's payload, by its message's key in the AsyncAPI document's components.", payloadKeys, EVENT_PREFIX);
  out += "\n";
  out += map("EventAcks", "The payload of the ack a client-to-server event is answered with (`x-ack`), when the client asks for one.", ackKeys, ACK_PREFIX);
  out += "\n";
  out += jsdoc(
    "The events the server sends (the AsyncAPI document's `send` operations). A socket that asked for\nconnection state recovery receives a recorded event's offset as a second argument.",
    "",
  );
  out += "export interface ServerToClientEvents {\n";
  for (const { key: k, message, summary } of send) {
    if (summary) out += jsdoc(`${summary}.`, "    ");
    out += `    ${key(message.name)}: (payload: EventPayloads[${JSON.stringify(k)}], offset?: string) => void;\n`;
  }
  out += "}\n\n";
  out += jsdoc("The events a client sends (the AsyncAPI document's `receive` operations), with the ack each may ask for.", "");
  out += "export interface ClientToServerEvents {\n";
  for (const { key: k, message, summary } of receive) {
    if (summary) out += jsdoc(`${summary}.`, "    ");
    const ack = message["x-ack"] ? `, ack?: (ack: EventAcks[${JSON.stringify(k)}]) => void` : "";
    out += `    ${key(message.name)}: (payload: EventPayloads[${JSON.stringify(k)}]${ack}) => void;\n`;
  }
  out += "}\n";
  return out;
}

async function main() {
  const openapi = dropRefinements(JSON.parse(await readFile(args.openapi, "utf8")));
  const asyncapi = JSON.parse(await readFile(args.asyncapi, "utf8"));
  const files = {
    "openapi.ts": await generateOpenapi(openapi),
    "schemas.ts": generateSchemas(openapi),
    "events.ts": await generateEvents(openapi, asyncapi),
  };
  if (args.check) {
    const stale = [];
    for (const [name, text] of Object.entries(files)) {
      const current = await readFile(join(args.out, name), "utf8").catch(() => null);
      if (current !== text) stale.push(name);
    }
    if (stale.length) {
      console.error(
        `${stale.join(", ")} in ${sourceName(args.out)} differ from what the contract gives; ` +
          "run `npm run generate` in clients/typescript and commit the result",
      );
      process.exit(1);
    }
    console.log(`${Object.keys(files).join(", ")}: up to date with the contract`);
    return;
  }
  await mkdir(args.out, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(args.out, name), text);
  console.log(`wrote ${Object.keys(files).map((f) => join(sourceName(args.out), f)).join(", ")}`);
}

await main();
