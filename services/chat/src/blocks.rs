//! Blocking: `POST /users/:userId/block` and `DELETE /users/:userId/block` for the signed-in
//! caller, and the check conversation creation makes against the blocks.

use http::StatusCode;
use platform_core::identity::Mode;
use platform_core::{validate, ApiError, Body, Response};

use crate::State;

/// An empty 204 answer (leaving a conversation answers the same).
pub(crate) fn no_content() -> Response {
    let mut res = Response::new(Body::Empty);
    *res.status_mut() = StatusCode::NO_CONTENT;
    res
}

/// The signed-in caller of a block or unblock, and the user named in the path (decoded and
/// checked).
fn blocker<'a, 'p>(
    caller: Option<&'a str>,
    user_id: &'p str,
) -> Result<(&'a str, std::borrow::Cow<'p, str>), ApiError> {
    let me = caller.ok_or_else(|| ApiError::unauthorized("sign in to block or unblock someone"))?;
    Ok((me, validate::path_user_id("userId", user_id)?))
}

/// Blocks `user_id` for the caller (idempotent): 204.
pub(crate) async fn block(
    state: &State,
    caller: Option<&str>,
    user_id: &str,
) -> Result<Response, ApiError> {
    let (me, user_id) = blocker(caller, user_id)?;
    let user_id = &*user_id;
    if me == user_id {
        return Err(ApiError::bad_request("you cannot block yourself"));
    }
    let client = state.pg.get().await?;
    if state.config.trust.mode == Mode::Token {
        let stmt = client
            .prepare_cached("SELECT 1 FROM users WHERE user_id = $1")
            .await?;
        if client.query_opt(&stmt, &[&user_id]).await?.is_none() {
            return Err(ApiError::not_found(format!("user {user_id} not found")));
        }
    }
    let stmt = client
        .prepare_cached(
            "INSERT INTO user_blocks (blocker, blocked) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .await?;
    client.execute(&stmt, &[&me, &user_id]).await?;
    Ok(no_content())
}

/// Lifts the caller's block of `user_id` (idempotent): 204.
pub(crate) async fn unblock(
    state: &State,
    caller: Option<&str>,
    user_id: &str,
) -> Result<Response, ApiError> {
    let (me, user_id) = blocker(caller, user_id)?;
    let user_id = &*user_id;
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached("DELETE FROM user_blocks WHERE blocker = $1 AND blocked = $2")
        .await?;
    client.execute(&stmt, &[&me, &user_id]).await?;
    Ok(no_content())
}

/// 403 when `creator` may not start this conversation with `others`: one of them blocked the
/// creator, or (one-to-one) the creator blocked the other.
pub(crate) async fn check_create(
    state: &State,
    creator: &str,
    others: &[&str],
    one_to_one: bool,
) -> Result<(), ApiError> {
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT blocker FROM user_blocks
             WHERE (blocked = $1 AND blocker = ANY($2))
                OR ($3 AND blocker = $1 AND blocked = ANY($2))
             LIMIT 1",
        )
        .await?;
    match client
        .query_opt(&stmt, &[&creator, &others, &one_to_one])
        .await?
    {
        None => Ok(()),
        Some(row) => {
            let blocker: String = row.get(0);
            Err(ApiError::forbidden(if blocker == creator {
                "you blocked this user: unblock them first".to_string()
            } else {
                format!("user {blocker} does not accept conversations from you")
            }))
        }
    }
}
