//! `GET /search/messages`: full-text search over the messages of the caller's current
//! conversations, newest first, paged with `before`.
//!
//! The words are matched by PostgreSQL (`websearch_to_tsquery` with the `chat_search`
//! configuration of migration 10: all words, `"a phrase"` in order, `-word` excluded, case
//! and accents ignored) against the partial GIN index over live messages. Membership is a
//! condition of the same statement, never a filter applied to its rows afterwards, so a page
//! is full whenever that many matches exist, and a member removed a moment ago finds nothing
//! more of that conversation. Results are hydrated like every other read (reply previews,
//! reactions).

use http::StatusCode;
use percent_encoding::percent_decode_str;
use platform_core::model::{Message, COLUMNS};
use platform_core::{json, validate, ApiError, Response};
use uuid::Uuid;

use crate::history::parse_limit;
use crate::State;

pub(crate) const DEFAULT_LIMIT: i64 = 20;
pub(crate) const MAX_LIMIT: i64 = 100;
/// Longest query, in characters (the contract's bound).
pub(crate) const MAX_QUERY_CHARS: usize = 256;

/// The parsed query string.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Search {
    pub q: String,
    pub conversation: Option<Uuid>,
    pub limit: i64,
    pub before: Option<Uuid>,
}

/// A query-string value: `+` is a space and `%XX` a byte (form encoding, as browsers send a
/// search box); 400 when the bytes are not UTF-8.
fn decode(name: &str, v: &str) -> Result<String, ApiError> {
    let spaced = v.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad_request(format!("{name} must be UTF-8, percent-encoded")))
}

/// Sets a parameter seen for the first time; 400 the second time.
fn once<T>(slot: &mut Option<T>, name: &str, v: T) -> Result<(), ApiError> {
    match slot.replace(v) {
        Some(_) => Err(ApiError::bad_request(format!("give {name} at most once"))),
        None => Ok(()),
    }
}

/// Parses `q`, `conversationId`, `limit` and `before` (anything else is ignored). Each may
/// appear once: two values of one parameter would leave a client unsure which was searched.
pub(crate) fn parse(query: Option<&str>) -> Result<Search, ApiError> {
    let mut q = None;
    let mut conversation = None;
    let mut limit = None;
    let mut before = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "q" => once(&mut q, k, decode(k, v)?)?,
            "conversationId" => once(&mut conversation, k, validate::path_uuid(k, v)?)?,
            "limit" => once(&mut limit, k, parse_limit(v, MAX_LIMIT)?)?,
            "before" => once(&mut before, k, validate::path_uuid(k, v)?)?,
            _ => {}
        }
    }
    let q = q.ok_or_else(|| ApiError::bad_request("q is required: the words to search for"))?;
    validate::text_len("q", &q, 1, MAX_QUERY_CHARS)?;
    Ok(Search {
        q: validate::trimmed(q),
        conversation,
        limit: limit.unwrap_or(DEFAULT_LIMIT),
        before,
    })
}

pub(crate) async fn messages(
    state: &State,
    caller: Option<&str>,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    // Searching acts for a person over all their conversations: there is nobody to act as
    // without a signed-in caller, whatever AUTH_MODE allows elsewhere.
    let me = caller.ok_or_else(|| {
        ApiError::unauthorized("sign in first: search needs Authorization: Bearer <token>")
    })?;
    let s = parse(query)?;
    if let Some(c) = s.conversation {
        crate::members::readable(state, Some(me), c).await?;
    }
    let mut client = state.pg.get().await?;
    // A query without a word that must be present (only -words, only punctuation, or an
    // `or` with a negated side) matches the empty document: it cannot be answered from the
    // index, only by reading every message, so it is refused.
    let stmt = client
        .prepare_cached(
            "SELECT numnode(q) > 0 AND NOT (''::tsvector @@ q)
             FROM websearch_to_tsquery('chat_search', $1) q",
        )
        .await?;
    if !client.query_one(&stmt, &[&s.q]).await?.get::<_, bool>(0) {
        return Err(ApiError::bad_request(
            "q needs at least one word that must be present (not only -words or punctuation)",
        ));
    }
    let before = match s.before {
        None => i64::MAX,
        // Any message, deleted or not, and whoever can see it: the cursor is the last result
        // of the previous page, which may have been deleted (or its conversation left) since.
        // Message ids are random v7 UUIDs, so this tells a caller nothing it could guess.
        Some(id) => {
            let stmt = client
                .prepare_cached("SELECT seq FROM messages WHERE id = $1")
                .await?;
            match client.query_opt(&stmt, &[&id]).await? {
                Some(r) => r.get::<_, i64>(0),
                None => {
                    return Err(ApiError::bad_request(format!(
                        "before: {id} is not a message"
                    )))
                }
            }
        }
    };
    // The expression must be the index's, character for character (migration 10). The
    // caller's conversations are one array computed first (an InitPlan), so the planner ANDs
    // the word index's bitmap with the (conversation_id, seq) index's for those conversations
    // and reads only rows that match both; written as `IN (subquery)` it joins after reading
    // every row that has the words (7x slower for two common words on the 1M benchmark:
    // docs/perf/2026-12-search.md). Planned for each query's words (not a cached generic plan),
    // in each partition that holds the caller's conversations, from the words' statistics of
    // migration 13 (docs/perf/2026-12-messages-partitioned.md).
    let only = if s.conversation.is_some() {
        "AND m.conversation_id = $5"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM messages m
         WHERE to_tsvector('chat_search', m.body) @@ websearch_to_tsquery('chat_search', $1)
           AND m.deleted_at IS NULL
           AND m.seq < $2
           AND m.conversation_id = ANY (ARRAY(
               SELECT cm.conversation_id FROM conversation_members cm WHERE cm.user_id = $3))
           {only}
         ORDER BY m.seq DESC
         LIMIT $4"
    );
    // Many common words can make one search read much of the index: it gets a time limit
    // of its own (a transaction, so the setting ends with it and never outlives this
    // request on the pooled connection).
    let tx = client.transaction().await?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}",
        state.config.search_timeout.as_millis()
    ))
    .await?;
    let rows = match &s.conversation {
        Some(c) => tx.query(&sql, &[&s.q, &before, &me, &s.limit, c]).await,
        None => tx.query(&sql, &[&s.q, &before, &me, &s.limit]).await,
    }
    .map_err(|e| too_slow(state, e))?;
    let mut page: Vec<Message> = rows.iter().map(|r| Message::from_row(r, 0)).collect();
    // Reply previews and reactions for the whole page in one statement, as every listing.
    platform_core::model::hydrate(&tx, &mut page, &state.config.urls).await?;
    tx.commit().await?;
    Ok(json::respond(StatusCode::OK, &page))
}

/// A search cancelled by its time limit (SQLSTATE 57014) is 503, with what to do about it;
/// any other error is what it is.
fn too_slow(state: &State, e: tokio_postgres::Error) -> ApiError {
    if e.code() != Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
        return e.into();
    }
    let mut err = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the search took longer than {} ms: add a word, or search one conversation",
            state.config.search_timeout.as_millis()
        ),
    );
    err.retry_after = Some(1);
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_decoding() {
        let s = parse(Some("q=caf%C3%A9+au+lait")).unwrap();
        assert_eq!(
            s,
            Search {
                q: "café au lait".into(),
                conversation: None,
                limit: 20,
                before: None
            }
        );
        assert_eq!(
            parse(Some("q=%22a+b%22+-c&limit=100")).unwrap().q,
            "\"a b\" -c"
        );
        assert_eq!(parse(Some("q=x&limit=100")).unwrap().limit, 100);
    }

    #[test]
    fn bounds() {
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        let exact = "é".repeat(MAX_QUERY_CHARS);
        assert!(parse(Some(&format!("q={exact}"))).is_ok());
        for bad in [
            "",
            "q=",
            "q=+++",
            "q=%20%09",
            &format!("q={long}"),
            "q=%FF",
            "q=a%00b",
            "q=a&q=b",
            "q=a&limit=0",
            "q=a&limit=101",
            "q=a&before=nope",
            "q=a&conversationId=1",
        ] {
            assert_eq!(parse(Some(bad)).unwrap_err().status, 400, "{bad}");
        }
    }
}
