// Generated from services/gateway/api/openapi.json by
// clients/typescript/scripts/generate.mjs (npm run generate); do not edit.
// A named alias of each schema in `components`, for imports like `import type { Message }`.
import type { components } from "./openapi";

export type ApiError = components["schemas"]["Error"];

export type Member = components["schemas"]["Member"];

/**
 * A one_to_one has exactly 2 members; a group 2 to 1000. Each member once; signed in, the caller is one of them and every member a registered user (400 otherwise).
 */
export type CreateConversation = components["schemas"]["CreateConversation"];

export type Conversation = components["schemas"]["Conversation"];

export type SendMessage = components["schemas"]["SendMessage"];

export type EditMessage = components["schemas"]["EditMessage"];

export type Message = components["schemas"]["Message"];

export type StartCall = components["schemas"]["StartCall"];

export type StatusChange = components["schemas"]["StatusChange"];

export type Call = components["schemas"]["Call"];

export type PostSignal = components["schemas"]["PostSignal"];

export type Signal = components["schemas"]["Signal"];

export type User = components["schemas"]["User"];

export type Session = components["schemas"]["Session"];

export type ConversationMember = components["schemas"]["ConversationMember"];

export type RenameConversation = components["schemas"]["RenameConversation"];

export type AddMembers = components["schemas"]["AddMembers"];

export type SetRole = components["schemas"]["SetRole"];

export type ListedConversation = components["schemas"]["ListedConversation"];

export type MarkRead = components["schemas"]["MarkRead"];

export type ReadState = components["schemas"]["ReadState"];

export type ReadMarker = components["schemas"]["ReadMarker"];

/**
 * {id, senderId, body} while the original is live (body: its first 200 characters), {id, deleted: true} once it is deleted.
 */
export type ReplyTo = components["schemas"]["ReplyTo"];

export type Reaction = components["schemas"]["Reaction"];

export type Upload = components["schemas"]["Upload"];

export type Attachment = components["schemas"]["Attachment"];
