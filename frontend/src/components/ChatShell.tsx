// The signed-in app: the live connection, the conversation list beside the open
// conversation (one at a time on a phone), message search above the list, calls, and the
// banner for a lost connection.
import { useEffect, useMemo, useRef, useState } from "react";
import type { Api } from "../api";
import { CallController } from "../call/calls";
import type { ClientConfig } from "../config";
import { connect } from "../realtime";
import { ChatController } from "../state/chat";
import { title } from "../state/conversations";
import { SearchController } from "../state/search";
import { useStore } from "../state/store";
import type { Session } from "../types";
import { CallView } from "./CallView";
import { ConnectionBanner } from "./ConnectionBanner";
import { ConversationList } from "./ConversationList";
import { ConversationView } from "./ConversationView";
import { IncomingCall } from "./IncomingCall";
import { NewConversation } from "./NewConversation";
import { SearchBox, SearchResults } from "./SearchPanel";

interface Props {
  api: Api;
  config: ClientConfig;
  session: Session;
  onSignOut(): void;
}

function routeId(): string | null {
  const m = /^\/c\/([^/]+)\/?$/.exec(location.pathname);
  return m ? decodeURIComponent(m[1]) : null;
}

export function ChatShell({ api, config, session, onSignOut }: Props) {
  const { apiUrl, iceServers } = config;
  const chat = useMemo(() => new ChatController(api, session.user), [api, session.user]);
  const calls = useMemo(
    () => new CallController(api, session.user, undefined, { iceServers }),
    [api, session.user, iceServers],
  );
  const search = useMemo(() => new SearchController(api), [api]);
  const searching = useStore(search.store).query.trim() !== "";
  const state = useStore(chat.store);

  // Results follow edits and deletes of the messages they show.
  useEffect(() => {
    chat.onMessageChanged = (m, deleted) => (deleted ? search.deleted(m.id) : search.updated(m));
    return () => {
      chat.onMessageChanged = null;
      search.dispose();
    };
  }, [chat, search]);
  const [selected, setSelected] = useState<string | null>(routeId);
  const [creating, setCreating] = useState(false);
  const listHeading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    const socket = connect(apiUrl, session, {
      onState: (s) => chat.setConnection(s),
      onReconnect: (recovered) => void chat.catchUp({ recovered }),
      onUnauthorized: () => api.onUnauthorized?.(),
    });
    chat.attach(socket);
    calls.attach(socket);
    return () => {
      chat.detach();
      calls.detach();
      socket.disconnect();
    };
  }, [api, apiUrl, session, chat, calls]);

  useEffect(() => {
    const onPop = () => setSelected(routeId());
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  const select = (id: string | null) => {
    setCreating(false);
    setSelected(id);
    const path = id ? `/c/${encodeURIComponent(id)}` : "/";
    if (location.pathname !== path) history.pushState(null, "", path);
  };

  const conversation = state.conversations.find((c) => c.id === selected);

  const removed = selected !== null && Boolean(state.removed[selected]);
  useEffect(() => {
    if (removed) {
      // Left or removed: back to the list (the notice says why), not to a page that 403s.
      setSelected(null);
      history.replaceState(null, "", "/");
      listHeading.current?.focus();
    } else if (selected && state.conversationsLoaded && !conversation) void chat.ensureConversation(selected);
  }, [selected, removed, state.conversationsLoaded, conversation, chat]);

  return (
    <div className={`shell ${selected || creating ? "has-detail" : ""}`}>
      <header className="topbar">
        <span className="brand" aria-hidden="true">
          Chat
        </span>
        <span className="me">
          Signed in as <strong>{session.user.displayName}</strong> <span className="muted">({session.user.userId})</span>
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <ConnectionBanner state={state.connection} />
      {state.notice && (
        <div className="toast" role="alert">
          <span>{state.notice}</span>
          <button type="button" onClick={() => chat.dismissNotice()} aria-label="Dismiss">
            ×
          </button>
        </div>
      )}
      <div className="panes">
        <nav className="sidebar" aria-label="Conversations">
          <div className="sidebar-head">
            <h2 ref={listHeading} tabIndex={-1}>
              Conversations
            </h2>
            <button type="button" className="primary" onClick={() => setCreating(true)}>
              New conversation
            </button>
          </div>
          {/* Search acts for a person: a server without accounts has nobody to search for. */}
          {session.mode === "token" && (
            <SearchBox
              search={search}
              scope={conversation && { id: conversation.id, name: title(conversation, session.user.userId) }}
            />
          )}
          {searching && session.mode === "token" ? (
            <SearchResults
              search={search}
              chat={state}
              me={session.user.userId}
              onOpen={(m) => {
                select(m.conversationId);
                void chat.jumpTo(m.conversationId, m.id);
              }}
            />
          ) : (
            <ConversationList
              me={session.user.userId}
              state={state}
              selected={selected}
              onSelect={select}
              onRetry={() => void chat.loadConversations()}
            />
          )}
        </nav>
        <main className="detail" aria-label={conversation ? "Conversation" : "Welcome"}>
          {creating ? (
            <NewConversation
              me={session.user}
              onCancel={() => setCreating(false)}
              onCreate={async (input) => {
                const c = await chat.createConversation(input);
                select(c.id);
              }}
            />
          ) : conversation ? (
            <ConversationView
              key={conversation.id}
              chat={chat}
              calls={calls}
              conversation={conversation}
              state={state}
              me={session.user}
              onBack={() => select(null)}
            />
          ) : selected ? (
            <p className="empty" role="status">
              Opening the conversation…
            </p>
          ) : (
            <div className="empty">
              <h2>No conversation open</h2>
              <p>Choose a conversation from the list, or start a new one.</p>
            </div>
          )}
        </main>
      </div>
      <IncomingCall calls={calls} />
      <CallView calls={calls} me={session.user.userId} />
    </div>
  );
}
