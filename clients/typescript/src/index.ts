// The public face of @chat-platform/client: the generated contract types (src/generated/,
// written by scripts/generate.mjs from services/gateway/api/) under friendly names, and a few
// helpers that read them. Nothing here states a shape of its own: every shape comes from the
// OpenAPI and AsyncAPI documents, so a contract change shows up as a type error in a client.
import type { paths } from "./generated/openapi";
import type { ClientToServerEvents, ServerToClientEvents } from "./generated/events";

export type { components, operations, paths } from "./generated/openapi";
export type * from "./generated/schemas";
export type { ClientToServerEvents, EventAcks, EventPayloads, ServerToClientEvents } from "./generated/events";

type HttpMethod = "get" | "put" | "post" | "delete" | "patch";

/** The methods a path of the HTTP API takes (`"get" | "post"` for `/conversations/{id}/messages`). */
export type PathMethod<P extends keyof paths> = {
  [M in HttpMethod]: paths[P][M] extends undefined ? never : M;
}[HttpMethod];

type Operation<P extends keyof paths, M extends PathMethod<P>> = NonNullable<paths[P][M]>;

// Distributes over `never` (an operation's `requestBody?: never`), which stays `never`.
type JsonContent<T> = T extends { content: { "application/json": infer B } } ? B : never;

/** The JSON body a request to `M P` takes (`never` when it takes none). */
export type RequestBody<P extends keyof paths, M extends PathMethod<P>> = JsonContent<
  NonNullable<Operation<P, M>["requestBody"]>
>;

/**
 * The JSON an answer to `M P` with status `S` carries: `void` for an answer without a body
 * (a 204), `never` for a status the route does not answer with.
 */
export type ResponseBody<P extends keyof paths, M extends PathMethod<P>, S extends number = 200> =
  S extends keyof Operation<P, M>["responses"]
    ? Operation<P, M>["responses"][S] extends { content?: never }
      ? void
      : JsonContent<Operation<P, M>["responses"][S]>
    : never;

/** The path parameters of `M P` (`{ conversationId: string }`), `{}` for a path without any. */
export type PathParams<P extends keyof paths, M extends PathMethod<P>> =
  Operation<P, M>["parameters"] extends { path: infer X } ? X : Record<string, never>;

/** The payload of an event the server sends (`ServerEventPayload<"message:created">` is a Message). */
export type ServerEventPayload<E extends keyof ServerToClientEvents> = Parameters<ServerToClientEvents[E]>[0];

/** The payload of an event a client sends. */
export type ClientEventPayload<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>[0];
