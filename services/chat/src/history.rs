//! Message history with cursor paging. Pages are cut on `seq`, the commit order, so a reader
//! paging while messages arrive never skips or repeats one.

use http::{header, HeaderValue, StatusCode};
use platform_core::model::{Message, COLUMNS};
use platform_core::{json, validate, ApiError, Response};
use uuid::Uuid;

use crate::pages::{Key, Page};
use crate::State;

pub(crate) const DEFAULT_LIMIT: i64 = 100;
pub(crate) const MAX_LIMIT: i64 = 500;

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Query {
    pub limit: i64,
    pub cursor: Cursor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cursor {
    Newest,
    Before(Uuid),
    After(Uuid),
}

/// A `limit` query parameter: 1 to `max`, 400 otherwise.
pub(crate) fn parse_limit(v: &str, max: i64) -> Result<i64, ApiError> {
    v.parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ApiError::bad_request(format!("limit must be 1-{max}")))
}

/// Parses `limit`, `before` and `after` (anything else is ignored).
pub(crate) fn parse_query(q: Option<&str>) -> Result<Query, ApiError> {
    let mut limit = DEFAULT_LIMIT;
    let mut cursor = Cursor::Newest;
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "limit" => limit = parse_limit(v, MAX_LIMIT)?,
            "before" | "after" => {
                if cursor != Cursor::Newest {
                    return Err(ApiError::bad_request(
                        "give at most one of before and after",
                    ));
                }
                let id = validate::path_uuid(k, v)?;
                cursor = if k == "before" {
                    Cursor::Before(id)
                } else {
                    Cursor::After(id)
                };
            }
            _ => {}
        }
    }
    Ok(Query { limit, cursor })
}

pub(crate) async fn list(
    state: &State,
    caller: Option<&str>,
    conversation: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let conversation = validate::path_uuid("conversationId", conversation)?;
    let q = parse_query(query)?;
    let key = Key {
        limit: q.limit,
        cursor: q.cursor,
    };
    if let Some(page) = state.pages.get(conversation, key) {
        // The caller's membership from the member cache, which follows a removal as soon as
        // its marker arrives (on the removing instance, before it answers).
        crate::members::readable_cached(state, caller, conversation).await?;
        return Ok(respond(page));
    }
    crate::members::readable(state, caller, conversation).await?;
    // Taken before anything is read: a change committed from here on keeps this page out.
    let ticket = state.pages.ticket(conversation);
    let page = read(state, conversation, &q).await?;
    ticket.keep(key, page.clone());
    Ok(respond(page))
}

fn respond(page: Page) -> Response {
    let mut res = json::respond_raw(StatusCode::OK, page.body);
    if let Some(link) = page.link {
        res.headers_mut().insert(header::LINK, link);
    }
    res
}

/// One page from PostgreSQL, encoded.
async fn read(state: &State, conversation: Uuid, q: &Query) -> Result<Page, ApiError> {
    // Its own pool, whose sessions use generic plans (see `State::pg_generic`).
    let client = state.pg_generic.get().await?;
    let seq_of = |id: Uuid| {
        let client = &client;
        async move {
            let stmt = client
                .prepare_cached("SELECT seq FROM messages WHERE id = $1 AND conversation_id = $2")
                .await?;
            match client.query_opt(&stmt, &[&id, &conversation]).await? {
                Some(r) => Ok(r.get::<_, i64>(0)),
                None => Err(ApiError::bad_request(format!(
                    "cursor {id} is not a message of this conversation"
                ))),
            }
        }
    };
    let fetch = q.limit + 1;
    // Older pages walk `seq` down from their bound and are put back in order; newer ones
    // walk it up.
    let (bound, newer) = match q.cursor {
        Cursor::Newest => (i64::MAX, false),
        Cursor::Before(id) => (seq_of(id).await?, false),
        Cursor::After(id) => (seq_of(id).await?, true),
    };
    let (cmp, order) = if newer { (">", "ASC") } else { ("<", "DESC") };
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM messages m
             WHERE m.conversation_id = $1 AND m.seq {cmp} $2 AND m.deleted_at IS NULL
             ORDER BY m.seq {order} LIMIT $3"
        ))
        .await?;
    let rows = client
        .query(&stmt, &[&conversation, &bound, &fetch])
        .await?;
    let more = rows.len() as i64 > q.limit;
    let mut page: Vec<Message> = rows
        .iter()
        .take(q.limit as usize)
        .map(|r| Message::from_row(r, 0))
        .collect();
    if !newer {
        page.reverse();
    }
    platform_core::model::hydrate(&client, &mut page, &state.config.urls).await?;
    let body =
        serde_json::to_vec(&page).map_err(|e| ApiError::internal("serialising a response", e))?;
    let link = links(&conversation, q, &page, more).and_then(|l| HeaderValue::from_str(&l).ok());
    Ok(Page {
        body: body.into(),
        link,
    })
}

/// `rel="prev"` (older) when older messages exist; `rel="next"` (newer) on `after` pages
/// that were cut short.
fn links(conversation: &Uuid, q: &Query, page: &[Message], more: bool) -> Option<String> {
    let base = format!("/conversations/{conversation}/messages?limit={}", q.limit);
    let mut parts = Vec::new();
    let older = match q.cursor {
        Cursor::Newest | Cursor::Before(_) => more,
        // The cursor message itself is older than this page.
        Cursor::After(_) => true,
    };
    if older {
        match page.first() {
            Some(first) => parts.push(format!("<{base}&before={}>; rel=\"prev\"", first.id)),
            None => {
                if let Cursor::After(id) = q.cursor {
                    parts.push(format!("<{base}&before={id}>; rel=\"prev\""));
                }
            }
        }
    }
    if let (Cursor::After(_), true, Some(last)) = (&q.cursor, more, page.last()) {
        parts.push(format!("<{base}&after={}>; rel=\"next\"", last.id));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_defaults_and_limits() {
        assert_eq!(
            parse_query(None).unwrap(),
            Query {
                limit: 100,
                cursor: Cursor::Newest
            }
        );
        assert_eq!(parse_query(Some("limit=500")).unwrap().limit, 500);
        for bad in [
            "limit=0",
            "limit=501",
            "limit=x",
            "limit=",
            "before=nope",
            "after=1",
        ] {
            assert_eq!(parse_query(Some(bad)).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn cursors() {
        let id = Uuid::now_v7();
        assert_eq!(
            parse_query(Some(&format!("before={id}&limit=5"))).unwrap(),
            Query {
                limit: 5,
                cursor: Cursor::Before(id)
            }
        );
        assert_eq!(
            parse_query(Some(&format!("after={id}"))).unwrap().cursor,
            Cursor::After(id)
        );
        assert!(parse_query(Some(&format!("after={id}&before={id}"))).is_err());
    }
}
