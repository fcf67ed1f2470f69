// Generated from services/gateway/api/openapi.json by
// clients/typescript/scripts/generate.mjs (npm run generate); do not edit.
// The HTTP API, by openapi-typescript: `paths`, `components`, `operations`.

export interface paths {
    "/conversations": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Create a one-to-one or group conversation */
        post: operations["createConversation"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/conversations/user/{userId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A user's conversations, newest activity first, one page at a time
         * @description Pages from a snapshot fixed by the first page, so paging while conversations gain messages never skips or repeats one. Without limit: the first page of 100. The caller's unread count and read marker come with each conversation.
         */
        get: operations["userConversations"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/conversations/{conversationId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One conversation */
        get: operations["getConversation"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /** Rename a group (owner or admin; 409 for a one_to_one) */
        patch: operations["renameConversation"];
        trace?: never;
    };
    "/conversations/{conversationId}/messages": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Messages, oldest first, paged from the newest */
        get: operations["listMessages"];
        put?: never;
        /** Send a message */
        post: operations["sendMessage"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/conversations/{conversationId}/messages/{messageId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Delete a message */
        delete: operations["deleteMessage"];
        options?: never;
        head?: never;
        /** Edit a message */
        patch: operations["editMessage"];
        trace?: never;
    };
    "/conversations/{conversationId}/read": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Mark a message and everything older read for the caller (the marker never moves backwards)
         * @description Members only; a token in every mode. An older message than the marker is a no-op 200. A deleted message of the conversation may be marked read. Sends conversation:read to the members when the marker moves.
         */
        post: operations["markRead"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/conversations/{conversationId}/reads": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The read markers of the conversation's members, one per member who has read something */
        get: operations["listReads"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/calls": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Start a call */
        post: operations["startCall"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/calls/conversation/{conversationId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A conversation's calls, oldest first */
        get: operations["conversationCalls"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/calls/{callId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One call */
        get: operations["getCall"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/calls/{callId}/status": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /** Change a call's status */
        patch: operations["setCallStatus"];
        trace?: never;
    };
    "/calls/{callId}/signals/{kind}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Signals of one kind, oldest first */
        get: operations["listSignals"];
        put?: never;
        /** Store a WebRTC signal and push it to the other participants */
        post: operations["postSignal"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/register": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Create an account and sign in */
        post: operations["register"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/login": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Sign in */
        post: operations["login"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/logout": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Sign out: revoke the presented token */
        post: operations["logout"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/password": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Change the password; every older token is revoked */
        post: operations["changePassword"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The signed-in user */
        get: operations["me"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/conversations/{conversationId}/members/{userId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Remove a member (owner or admin; an admin cannot remove the owner) or leave (remove yourself). 404 for a user who is not a member, 409 for a one_to_one */
        delete: operations["leaveConversation"];
        options?: never;
        head?: never;
        /** Change a member's role (the owner only; 409 for a one_to_one or for the owner's own role; 404 for a non-member) */
        patch: operations["setMemberRole"];
        trace?: never;
    };
    "/users/{userId}/block": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Block a user: no one_to_one with them, and they cannot add you to groups
         * @description 400 for the caller's own id.
         */
        post: operations["blockUser"];
        /** Unblock a user */
        delete: operations["unblockUser"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/conversations/{conversationId}/members": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Add members to a group (owner or admin; 409 for a one_to_one; 400 past 1000 members; those already in it are left as they are) */
        post: operations["addMembers"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/conversations/{conversationId}/messages/{messageId}/reactions/{emoji}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
                messageId: string;
                /**
                 * @description One emoji of 1-32 bytes (UTF-8), percent-encoded.
                 * @example %F0%9F%91%8D
                 */
                emoji: string;
            };
            cookie?: never;
        };
        get?: never;
        /**
         * Add the caller's reaction to a message
         * @description Members only; a token in every mode. Idempotent. A change is announced as message:updated with the whole message (coalesced per message); editedAt does not change. At most 20 distinct emoji per message.
         */
        put: operations["addReaction"];
        post?: never;
        /**
         * Remove the caller's reaction from a message
         * @description Members only; a token in every mode. Idempotent. A change is announced as message:updated with the whole message (coalesced per message); editedAt does not change. Removing a reaction that is not there is a no-op 200.
         */
        delete: operations["removeReaction"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/search/messages": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Full-text search over the messages of the caller's current conversations, newest first
         * @description All words must match, ignoring case and accents (`cafe` finds `Café`); `"a phrase"` matches its words in order; `-word` excludes. Edited messages are found by their new text, deleted ones never. A query without a word that must be present (only -words or punctuation) is 400. Needs a bearer token in every AUTH_MODE; rate limited per user (RATE_SEARCHES_PER_USER).
         */
        get: operations["searchMessages"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/attachments": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Upload a file (streamed to storage) to attach to a message later
         * @description The raw file as the body, at most ATTACHMENT_MAX_BYTES (25 MiB by default; 413 past it, from Content-Length or mid-way). An upload never sent in a message is removed after ATTACHMENT_UNSENT_TTL_SECS (a day). Needs a bearer token in every AUTH_MODE; rate limited per user (RATE_UPLOADS_PER_USER).
         */
        post: operations["uploadAttachment"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/attachments/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Download an attachment by its signed URL (no header needed) */
        get: operations["getAttachment"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        /** The headers of an attachment's download */
        head: operations["headAttachment"];
        patch?: never;
        trace?: never;
    };
    "/attachments/{id}/thumbnail": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Download an image attachment's thumbnail by its signed URL */
        get: operations["getAttachmentThumbnail"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        /** The headers of a thumbnail's download */
        head: operations["headAttachmentThumbnail"];
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * @example {
         *       "statusCode": 404,
         *       "error": "Not Found",
         *       "message": "conversation 0190… not found"
         *     }
         */
        Error: {
            statusCode: number;
            error: string;
            message: string;
        };
        Member: {
            userId: string;
            /** @description 1-100 characters, not white space alone; stored without its leading and trailing white space; no NUL. */
            displayName: string;
        };
        /** @description A one_to_one has exactly 2 members; a group 2 to 1000. Each member once; signed in, the caller is one of them and every member a registered user (400 otherwise). */
        CreateConversation: {
            name?: string;
            /** @enum {string} */
            type: "one_to_one" | "group";
            members: components["schemas"]["Member"][];
        };
        Conversation: {
            /** Format: uuid */
            id: string;
            name?: string;
            /** @enum {string} */
            type: "one_to_one" | "group";
            members: components["schemas"]["ConversationMember"][];
            /** Format: date-time */
            createdAt: string;
            lastMessage?: components["schemas"]["Message"] | null;
        };
        SendMessage: {
            senderId: string;
            /** @description 1-4000 characters, not white space alone; leading and trailing white space is trimmed (the trimmed text is stored); no NUL. */
            body: string;
            /** @description The sender's own id for this send (retries with the same one are answered with the first message): 1-128 characters, no control characters. */
            clientMessageId?: string;
            /**
             * Format: uuid
             * @description The message this one replies to: a live message of the same conversation (stored or still queued); 400 otherwise.
             */
            replyToId?: string | null;
            /** @description Uploads of the sender (POST /attachments) not yet in a message: all are attached or the send is 400. */
            attachmentIds?: string[];
        };
        EditMessage: {
            /** @description 1-4000 characters, not white space alone; leading and trailing white space is trimmed (the trimmed text is stored); no NUL. */
            body: string;
        };
        Message: {
            /** Format: uuid */
            id: string;
            /** Format: uuid */
            conversationId: string;
            senderId: string;
            body: string;
            /** Format: date-time */
            sentAt: string;
            /** Format: date-time */
            editedAt: string | null;
            clientMessageId?: string;
            /** @description null when not a reply. Read at read time: the original's current body, or the deleted form once it is deleted. */
            replyTo: components["schemas"]["ReplyTo"] | null;
            /** @description Emoji ordered by their oldest reaction still there; [] when none. */
            reactions: components["schemas"]["Reaction"][];
            /** @description The message's files in the order of attachmentIds; [] when none or deleted. */
            attachments: components["schemas"]["Attachment"][];
        };
        StartCall: {
            /** Format: uuid */
            conversationId: string;
            /** @enum {string} */
            type: "audio" | "video";
            /** @description Members of the conversation, each once (400 for one listed twice or not a member). */
            participants: components["schemas"]["Member"][];
        };
        StatusChange: {
            /** @enum {string} */
            status: "ringing" | "in_progress" | "active" | "declined" | "missed" | "ended";
        };
        Call: {
            /** Format: uuid */
            id: string;
            /** Format: uuid */
            conversationId: string;
            /** @enum {string} */
            type: "audio" | "video";
            /** @enum {string} */
            status: "ringing" | "in_progress" | "declined" | "missed" | "ended";
            /** Format: date-time */
            startedAt: string;
            /** Format: date-time */
            endedAt?: string;
            participants: components["schemas"]["Member"][];
        };
        PostSignal: {
            senderId: string;
            /** @description Another participant of the call (400 otherwise); without it, every other participant. */
            targetId?: string;
            /** @description offer/answer: {type, sdp}; ice: {candidate, sdpMid?, sdpMLineIndex?, usernameFragment?} */
            payload: Record<string, unknown>;
        };
        Signal: {
            senderId: string;
            targetId?: string;
            payload: Record<string, unknown>;
            /** Format: date-time */
            createdAt: string;
        };
        User: {
            userId: string;
            /** @description 1-100 characters, not white space alone; stored without its leading and trailing white space; no NUL. */
            displayName: string;
        };
        Session: {
            token: string;
            /** Format: date-time */
            expiresAt: string;
            user: components["schemas"]["User"];
        };
        ConversationMember: {
            userId: string;
            /** @description 1-100 characters, not white space alone; stored without its leading and trailing white space; no NUL. */
            displayName: string;
            /** @enum {string} */
            role: "owner" | "admin" | "member";
        };
        RenameConversation: {
            /** @description The new name; null removes it, absent changes nothing. */
            name?: string | null;
        };
        AddMembers: {
            /** @description Registered users (400 otherwise; 400 past 1000 members in all); someone already a member is left as they are. */
            members: components["schemas"]["Member"][];
        };
        SetRole: {
            /** @enum {string} */
            role: "admin" | "member";
        };
        ListedConversation: components["schemas"]["Conversation"] & {
            /** @description Messages from others after the caller's read marker, deleted ones not counted. */
            unreadCount: number;
            /**
             * Format: uuid
             * @description The caller's read marker; null when nothing was read.
             */
            lastReadMessageId: string | null;
        };
        MarkRead: {
            /** Format: uuid */
            messageId: string;
        };
        ReadState: {
            /** Format: uuid */
            conversationId: string;
            userId: string;
            /** Format: uuid */
            lastReadMessageId: string | null;
            unreadCount: number;
        };
        ReadMarker: {
            userId: string;
            /** Format: uuid */
            lastReadMessageId: string;
            /** Format: date-time */
            readAt: string;
        };
        /** @description {id, senderId, body} while the original is live (body: its first 200 characters), {id, deleted: true} once it is deleted. */
        ReplyTo: {
            /** Format: uuid */
            id: string;
            senderId?: string;
            body?: string;
            /** @enum {boolean} */
            deleted?: true;
        };
        Reaction: {
            emoji: string;
            count: number;
            /** @description In reaction order. */
            userIds: string[];
        };
        Upload: {
            /** Format: uuid */
            id: string;
            /** @description The file name as given, without any path */
            name: string;
            contentType: string;
            size: number;
            /** @description Images whose header could be read */
            width?: number;
            height?: number;
        };
        Attachment: {
            /** Format: uuid */
            id: string;
            name: string;
            contentType: string;
            size: number;
            /** @description Signed URL of the file, relative to the API's base unless ATTACHMENT_URL_BASE is set; needs no header; expires after ATTACHMENT_URL_TTL_SECS, and when a member leaves or is removed (read the messages again for fresh ones). */
            url: string;
            width?: number;
            height?: number;
            /** @description Signed URL of a preview of at most 320x320 (PNG or JPEG), once made */
            thumbnailUrl?: string;
        };
    };
    responses: {
        /** @description A rate limit is used up (each write has its own, per user and per client address, shared by every gateway instance), or the client address holds MAX_CONNECTIONS_PER_ADDRESS connections: retry after `Retry-After` seconds. */
        TooManyRequests: {
            headers: {
                /** @description Seconds until the limit resets. */
                "Retry-After"?: number;
                "x-request-id": components["headers"]["XRequestId"];
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "statusCode": 429,
                 *       "error": "Too Many Requests",
                 *       "message": "too many messages: slow down"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The request body did not arrive in time (`BODY_TIMEOUT_MS` plus its length at `BODY_MIN_BYTES_PER_SEC`); the connection is closed. */
        RequestTimeout: {
            headers: {
                "x-request-id": components["headers"]["XRequestId"];
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "statusCode": 408,
                 *       "error": "Request Timeout",
                 *       "message": "the request body did not arrive in time"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description Invalid input: malformed JSON, a wrong type, a value out of range or breaking a rule the operation's description names, a malformed id in the path. */
        BadRequest: {
            headers: {
                "x-request-id": components["headers"]["XRequestId"];
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "statusCode": 400,
                 *       "error": "Bad Request",
                 *       "message": "body must be 1-4000 characters"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description No bearer token, or one that is expired or revoked (AUTH_MODE=token); wrong user id or password for a sign-in. */
        Unauthorized: {
            headers: {
                "x-request-id": components["headers"]["XRequestId"];
                "WWW-Authenticate": components["headers"]["WWWAuthenticate"];
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "statusCode": 401,
                 *       "error": "Unauthorized",
                 *       "message": "sign in first"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The caller may not do this: not a member of the conversation or call, not its owner or admin, or acting as someone else. */
        Forbidden: {
            headers: {
                "x-request-id": components["headers"]["XRequestId"];
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "statusCode": 403,
                 *       "error": "Forbidden",
                 *       "message": "not a member of this conversation"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description No such conversation, message, call, user or upload (or one the caller may not know of). */
        NotFound: {
            headers: {
                "x-request-id": components["headers"]["XRequestId"];
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "statusCode": 404,
                 *       "error": "Not Found",
                 *       "message": "conversation 0190… not found"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The state does not allow it: the operation's description says when. */
        Conflict: {
            headers: {
                "x-request-id": components["headers"]["XRequestId"];
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "statusCode": 409,
                 *       "error": "Conflict",
                 *       "message": "a one_to_one's members never change"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The body is over BODY_LIMIT_BYTES (uploads: ATTACHMENT_MAX_BYTES). */
        PayloadTooLarge: {
            headers: {
                "x-request-id": components["headers"]["XRequestId"];
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "statusCode": 413,
                 *       "error": "Payload Too Large",
                 *       "message": "request body exceeds 1048576 bytes"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description A dependency (PostgreSQL, Redis, an upstream service) is unavailable, or the gateway is past MAX_IN_FLIGHT requests: retry after Retry-After. */
        ServiceUnavailable: {
            headers: {
                "x-request-id": components["headers"]["XRequestId"];
                "Retry-After": components["headers"]["RetryAfter"];
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "statusCode": 503,
                 *       "error": "Service Unavailable",
                 *       "message": "a dependency is unavailable"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The upstream service did not answer within REQUEST_TIMEOUT_MS. */
        GatewayTimeout: {
            headers: {
                "x-request-id": components["headers"]["XRequestId"];
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "statusCode": 504,
                 *       "error": "Gateway Timeout",
                 *       "message": "the chat service did not answer in time"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
    };
    parameters: never;
    requestBodies: never;
    headers: {
        /** @description The request's id: the client's own `x-request-id` when it sent a valid one, else a new one. Every log line about the request carries it. */
        XRequestId: string;
        /** @description Seconds to wait before trying again. */
        RetryAfter: number;
        /** @description `Bearer`: the scheme a token is presented with. */
        WWWAuthenticate: "Bearer";
        /** @description The methods the path takes. */
        Allow: string;
    };
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    createConversation: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CreateConversation"];
            };
        };
        responses: {
            /** @description The existing one-to-one conversation of this pair */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Conversation"];
                };
            };
            /** @description Created */
            201: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Conversation"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    userConversations: {
        parameters: {
            query?: {
                limit?: number;
                /** @description Opaque: taken from the previous page's Link header as it is (its form: snapshot.activity.id; 400 for any other). */
                cursor?: string;
            };
            header?: never;
            path: {
                userId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The conversations */
            200: {
                headers: {
                    /** @description <...>; rel="next": the next page (absent on the last one) */
                    Link?: string;
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ListedConversation"][];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getConversation: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The conversation */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Conversation"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    renameConversation: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RenameConversation"];
            };
        };
        responses: {
            /** @description The conversation as renamed */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Conversation"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    listMessages: {
        parameters: {
            query?: {
                limit?: number;
                /** @description A message id of this conversation: the page just older than it. At most one of before and after (400 for both); 400 for an id that is not a message of the conversation. */
                before?: string;
                /** @description A message id of this conversation: the page just newer than it. At most one of before and after (400 for both); 400 for an id that is not a message of the conversation. */
                after?: string;
            };
            header?: never;
            path: {
                conversationId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page */
            200: {
                headers: {
                    /** @description rel="prev": the next older page; rel="next": newer */
                    Link?: string;
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"][];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    sendMessage: {
        parameters: {
            query?: never;
            header?: {
                /** @description respond-async for a 202 at once */
                Prefer?: string;
            };
            path: {
                conversationId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SendMessage"];
            };
        };
        responses: {
            /** @description A retry of a clientMessageId already used: the original message */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"];
                };
            };
            /** @description Stored */
            201: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"];
                };
            };
            /** @description Durably queued; stored and announced later */
            202: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    deleteMessage: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
                messageId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The deleted message */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"];
                };
            };
            /** @description Queued behind the message it deletes */
            202: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    editMessage: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
                messageId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EditMessage"];
            };
        };
        responses: {
            /** @description Edited */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"];
                };
            };
            /** @description Queued behind the message it edits */
            202: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    markRead: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MarkRead"];
            };
        };
        responses: {
            /** @description The caller's read state */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ReadState"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404 (no such message in this conversation), 405, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    listReads: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The markers */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ReadMarker"][];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (401, 403, 404, 405, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    startCall: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["StartCall"];
            };
        };
        responses: {
            /** @description Ringing */
            201: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Call"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    conversationCalls: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The calls */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Call"][];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getCall: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                callId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The call */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Call"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    setCallStatus: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                callId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["StatusChange"];
            };
        };
        responses: {
            /** @description The call */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Call"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    listSignals: {
        parameters: {
            query?: {
                after?: string;
            };
            header?: never;
            path: {
                callId: string;
                kind: "offer" | "answer" | "ice";
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The signals */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Signal"][];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    postSignal: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                callId: string;
                kind: "offer" | "answer" | "ice";
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PostSignal"];
            };
        };
        responses: {
            /** @description Stored */
            201: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        /** @enum {string} */
                        status: "ok";
                    };
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    register: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    userId: string;
                    /** @description 1-100 characters, not white space alone; stored without its leading and trailing white space; no NUL. */
                    displayName: string;
                    password: string;
                };
            };
        };
        responses: {
            /** @description Signed in */
            201: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Session"];
                };
            };
            400: components["responses"]["BadRequest"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    login: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    userId: string;
                    password: string;
                };
            };
        };
        responses: {
            /** @description Signed in */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Session"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    logout: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Signed out */
            204: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            401: components["responses"]["Unauthorized"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    changePassword: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    currentPassword: string;
                    newPassword: string;
                };
            };
        };
        responses: {
            /** @description Signed in again */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Session"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    me: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The user */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["User"];
                };
            };
            401: components["responses"]["Unauthorized"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    leaveConversation: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
                userId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed. When the owner leaves, the longest admin (else the longest member) becomes owner; a group nobody is left in is deleted. The removed user leaves the conversation's ringing and active calls. */
            204: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            409: components["responses"]["Conflict"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    setMemberRole: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
                userId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SetRole"];
            };
        };
        responses: {
            /** @description The conversation with the changed role */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Conversation"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    blockUser: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                userId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Blocked (idempotent) */
            204: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    unblockUser: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                userId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Not blocked (idempotent) */
            204: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    addMembers: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["AddMembers"];
            };
        };
        responses: {
            /** @description The conversation with its new members */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Conversation"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    addReaction: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
                messageId: string;
                /**
                 * @description One emoji of 1-32 bytes (UTF-8), percent-encoded.
                 * @example %F0%9F%91%8D
                 */
                emoji: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The whole message, reactions as committed */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            409: components["responses"]["Conflict"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400 not one emoji of 1-32 bytes or a bad id, 401 no token, 403 not a member, 404 unknown conversation or no such live message in it, 409 a 21st distinct emoji, 429, 502, 503 (also: the message is still queued and did not commit in time), 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    removeReaction: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                conversationId: string;
                messageId: string;
                /**
                 * @description One emoji of 1-32 bytes (UTF-8), percent-encoded.
                 * @example %F0%9F%91%8D
                 */
                emoji: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The whole message, reactions as committed */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400 not one emoji of 1-32 bytes or a bad id, 401 no token, 403 not a member, 404 unknown conversation or no such live message in it, 409 a 21st distinct emoji, 429, 502, 503 (also: the message is still queued and did not commit in time), 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    searchMessages: {
        parameters: {
            query: {
                /** @description The words: 1-256 characters */
                q: string;
                /** @description Only this conversation (403 when the caller is not a member, 404 unknown) */
                conversationId?: string;
                limit?: number;
                /** @description A message id (the last of the previous page): the next, older page. 400 for an id that is not a message. */
                before?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of matching messages, newest first */
            200: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"][];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400, 401, 403, 404, 405, 429, 502, 503, 504). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    uploadAttachment: {
        parameters: {
            query?: never;
            header: {
                /** @description The file name, percent-encoded UTF-8; any path is dropped (the part after the last / or \ is kept, trimmed); 1-255 characters, no control characters, not . or .. once decoded (400 otherwise) */
                "x-filename": string;
            };
            path?: never;
            cookie?: never;
        };
        /** @description The file's bytes, with its Content-Type (default application/octet-stream) */
        requestBody: {
            content: {
                "application/octet-stream": string;
            };
        };
        responses: {
            /** @description Stored */
            201: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Upload"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape (400: no or bad x-filename, bad Content-Type, empty body; 401; 408; 413: too large, or past the caller's ATTACHMENT_UNSENT_MAX_BYTES of unsent uploads; 429; 503: storage unavailable or too many uploads at once). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getAttachment: {
        parameters: {
            query: {
                /** @description Issued at, epoch milliseconds */
                i: number;
                /** @description Expires at, epoch milliseconds */
                e: number;
                /** @description Signature: base64url without padding (canonical), HMAC-SHA256 of the link. i, e and s as issued: 400 when one is missing or not of this form, 403 when they do not verify or the link expired. */
                s: string;
            };
            header?: {
                /** @description One range, bytes=a-b, a- or -n: 206 (several ranges: the whole file, 200; past the end: 416) */
                Range?: string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The file (or thumbnail), streamed with its stored Content-Type */
            200: {
                headers: {
                    /** @description inline for images, audio and video, else attachment; the name as filename* with an ASCII fallback */
                    "Content-Disposition"?: string;
                    "X-Content-Type-Options"?: "nosniff";
                    /** @description default-src 'none'; sandbox */
                    "Content-Security-Policy"?: string;
                    "Accept-Ranges"?: string;
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "*/*": string;
                };
            };
            /** @description The requested range, with Content-Range */
            206: {
                headers: {
                    /** @description inline for images, audio and video, else attachment; the name as filename* with an ASCII fallback */
                    "Content-Disposition"?: string;
                    "X-Content-Type-Options"?: "nosniff";
                    /** @description default-src 'none'; sandbox */
                    "Content-Security-Policy"?: string;
                    "Accept-Ranges"?: string;
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "*/*": string;
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape: 400 (malformed i, e or s), 403 (bad or expired signature, or revoked by a member's removal), 404 (unknown, unsent or deleted), 416 (range past the end), 503 (storage unavailable). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    headAttachment: {
        parameters: {
            query: {
                /** @description Issued at, epoch milliseconds */
                i: number;
                /** @description Expires at, epoch milliseconds */
                e: number;
                /** @description Signature: base64url without padding (canonical), HMAC-SHA256 of the link. i, e and s as issued: 400 when one is missing or not of this form, 403 when they do not verify or the link expired. */
                s: string;
            };
            header?: {
                /** @description One range, bytes=a-b, a- or -n: 206 (several ranges: the whole file, 200; past the end: 416) */
                Range?: string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The headers of GET, no body */
            200: {
                headers: {
                    /** @description inline for images, audio and video, else attachment; the name as filename* with an ASCII fallback */
                    "Content-Disposition"?: string;
                    "X-Content-Type-Options"?: "nosniff";
                    /** @description default-src 'none'; sandbox */
                    "Content-Security-Policy"?: string;
                    "Accept-Ranges"?: string;
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The headers of a ranged GET, no body */
            206: {
                headers: {
                    /** @description inline for images, audio and video, else attachment; the name as filename* with an ASCII fallback */
                    "Content-Disposition"?: string;
                    "X-Content-Type-Options"?: "nosniff";
                    /** @description default-src 'none'; sandbox */
                    "Content-Security-Policy"?: string;
                    "Accept-Ranges"?: string;
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error (no body for HEAD) */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    getAttachmentThumbnail: {
        parameters: {
            query: {
                /** @description Issued at, epoch milliseconds */
                i: number;
                /** @description Expires at, epoch milliseconds */
                e: number;
                /** @description Signature: base64url without padding (canonical), HMAC-SHA256 of the link. i, e and s as issued: 400 when one is missing or not of this form, 403 when they do not verify or the link expired. */
                s: string;
            };
            header?: {
                /** @description One range, bytes=a-b, a- or -n: 206 (several ranges: the whole file, 200; past the end: 416) */
                Range?: string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The file (or thumbnail), streamed with its stored Content-Type */
            200: {
                headers: {
                    /** @description inline for images, audio and video, else attachment; the name as filename* with an ASCII fallback */
                    "Content-Disposition"?: string;
                    "X-Content-Type-Options"?: "nosniff";
                    /** @description default-src 'none'; sandbox */
                    "Content-Security-Policy"?: string;
                    "Accept-Ranges"?: string;
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "*/*": string;
                };
            };
            /** @description The requested range, with Content-Range */
            206: {
                headers: {
                    /** @description inline for images, audio and video, else attachment; the name as filename* with an ASCII fallback */
                    "Content-Disposition"?: string;
                    "X-Content-Type-Options"?: "nosniff";
                    /** @description default-src 'none'; sandbox */
                    "Content-Security-Policy"?: string;
                    "Accept-Ranges"?: string;
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "*/*": string;
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error, in the contract's shape: 400 (malformed i, e or s), 403 (bad or expired signature, or revoked by a member's removal), 404 (unknown, unsent or deleted), 416 (range past the end), 503 (storage unavailable). */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    headAttachmentThumbnail: {
        parameters: {
            query: {
                /** @description Issued at, epoch milliseconds */
                i: number;
                /** @description Expires at, epoch milliseconds */
                e: number;
                /** @description Signature: base64url without padding (canonical), HMAC-SHA256 of the link. i, e and s as issued: 400 when one is missing or not of this form, 403 when they do not verify or the link expired. */
                s: string;
            };
            header?: {
                /** @description One range, bytes=a-b, a- or -n: 206 (several ranges: the whole file, 200; past the end: 416) */
                Range?: string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The headers of GET, no body */
            200: {
                headers: {
                    /** @description inline for images, audio and video, else attachment; the name as filename* with an ASCII fallback */
                    "Content-Disposition"?: string;
                    "X-Content-Type-Options"?: "nosniff";
                    /** @description default-src 'none'; sandbox */
                    "Content-Security-Policy"?: string;
                    "Accept-Ranges"?: string;
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The headers of a ranged GET, no body */
            206: {
                headers: {
                    /** @description inline for images, audio and video, else attachment; the name as filename* with an ASCII fallback */
                    "Content-Disposition"?: string;
                    "X-Content-Type-Options"?: "nosniff";
                    /** @description default-src 'none'; sandbox */
                    "Content-Security-Policy"?: string;
                    "Accept-Ranges"?: string;
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
            504: components["responses"]["GatewayTimeout"];
            /** @description An error (no body for HEAD) */
            default: {
                headers: {
                    "x-request-id": components["headers"]["XRequestId"];
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
}
