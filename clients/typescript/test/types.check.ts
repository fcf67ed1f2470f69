// Type-level checks of src/index.ts's helpers, run by `tsc --noEmit` (npm run check): each
// line fails to compile if a helper stops giving the contract's type.
import type {
  ClientEventPayload,
  Conversation,
  ListedConversation,
  Message,
  PathMethod,
  PathParams,
  RequestBody,
  ResponseBody,
  ServerEventPayload,
  Upload,
  User,
} from "../src/index";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const yes = <T extends true>(): T => true as T;

yes<Equal<PathMethod<"/conversations/{conversationId}/messages">, "get" | "post">>();
yes<Equal<RequestBody<"/conversations/{conversationId}/messages", "post">["body"], string>>();
yes<Equal<RequestBody<"/conversations/{conversationId}/messages", "get">, never>>();
yes<Equal<ResponseBody<"/conversations/{conversationId}/messages", "post", 201>, Message>>();
yes<Equal<ResponseBody<"/conversations/user/{userId}", "get">, ListedConversation[]>>();
yes<Equal<ResponseBody<"/attachments", "post", 201>, Upload>>();
yes<Equal<ServerEventPayload<"message:created">, Message>>();
yes<Equal<ServerEventPayload<"conversation:updated">, Conversation>>();
yes<Equal<ClientEventPayload<"presence:join">["userId"], User["userId"]>>();
yes<Equal<ResponseBody<"/auth/logout", "post", 204>, void>>();
yes<Equal<ResponseBody<"/auth/logout", "post", 200>, never>>();
yes<Equal<PathParams<"/conversations/{conversationId}/messages/{messageId}", "patch">, { conversationId: string; messageId: string }>>();
yes<Equal<PathParams<"/calls", "post">, Record<string, never>>>();
