// The Socket.IO contract, services/gateway/api/asyncapi.json, as a checker: every event a
// test socket receives must be one the document says the server sends, with a payload its
// schema accepts (and, for a recorded event, at most an offset string after it). Payload
// schemas are OpenAPI 3.0 schemas, most of them the HTTP contract's own
// (openapi.json#/components/schemas/...); they are turned into JSON Schema here (their
// `$ref`s inlined, `nullable` as "or null") for Ajv.
import { readFileSync } from "node:fs";
import Ajv from "ajv";
import addFormats from "ajv-formats";

const api = new URL("../../services/gateway/api/", import.meta.url);
const load = (name) => JSON.parse(readFileSync(new URL(name, api), "utf8"));
export const asyncapi = load("asyncapi.json");
const openapi = load("openapi.json");

// `#/components/...` of the document a reference is written in; `openapi.json#/...` of the
// HTTP contract.
function resolve(ref, doc) {
  const [file, pointer] = ref.split("#");
  const root = file === "openapi.json" ? openapi : file === "" ? doc : null;
  if (!root) throw new Error(`unknown document in $ref ${ref}`);
  const target = pointer.split("/").slice(1).reduce((o, k) => o?.[k], root);
  if (target === undefined) throw new Error(`$ref ${ref} points at nothing`);
  return { schema: target, doc: root };
}

// An OpenAPI 3.0 schema as JSON Schema: references inlined (the contract has no cycles;
// depth-bounded all the same), `nullable: true` as `anyOf [schema, null]`.
function jsonSchema(s, doc, depth = 0) {
  if (depth > 32) throw new Error("schema nested too deep (a $ref cycle?)");
  if (Array.isArray(s)) return s.map((x) => jsonSchema(x, doc, depth + 1));
  if (s === null || typeof s !== "object") return s;
  if (s.$ref) {
    const { schema, doc: in_ } = resolve(s.$ref, doc);
    return jsonSchema(schema, in_, depth + 1);
  }
  const out = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === "nullable" || k === "example" || k === "examples") continue;
    out[k] = k === "properties"
      ? Object.fromEntries(Object.entries(v).map(([p, ps]) => [p, jsonSchema(ps, doc, depth + 1)]))
      : jsonSchema(v, doc, depth + 1);
  }
  return s.nullable ? { anyOf: [out, { type: "null" }] } : out;
}

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);

// Event name -> { validate, recorded } for what the server sends; names of what it takes.
export const sent = new Map();
export const received = new Set();
for (const op of Object.values(asyncapi.operations)) {
  for (const m of op.messages) {
    const { schema: channelMessage } = resolve(m.$ref, asyncapi);
    const { schema: message } = channelMessage.$ref ? resolve(channelMessage.$ref, asyncapi) : { schema: channelMessage };
    if (op.action === "receive") {
      received.add(message.name);
      continue;
    }
    const payload = message.payload.schema ?? message.payload;
    sent.set(message.name, {
      validate: ajv.compile(jsonSchema(payload, asyncapi)),
      // `x-recorded`: the event may carry its recovery offset after the payload.
      recorded: message["x-recorded"] === true,
    });
  }
}

// What is wrong with one received event (`args` as socket.onAny gives them), or null.
export function violation(event, args) {
  const known = sent.get(event);
  if (!known) return `${event}: not an event the document says the server sends`;
  if (args.length < 1) return `${event}: no payload`;
  if (!known.validate(args[0])) {
    return `${event}: payload does not match its schema: ${ajv.errorsText(known.validate.errors)}: ${JSON.stringify(args[0]).slice(0, 300)}`;
  }
  const extra = args.slice(1);
  if (extra.length > (known.recorded ? 1 : 0) || extra.some((a) => typeof a !== "string")) {
    return `${event}: unexpected arguments after the payload: ${JSON.stringify(extra)}`;
  }
  return null;
}
