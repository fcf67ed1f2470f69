//! The auth routes: register, sign in, sign out, change password, and `/me`.

use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use platform_core::ratelimit;
use platform_core::sessions::{self, Issued, SessionUser};
use platform_core::{json, validate, ApiError, Response};
use serde::{Deserialize, Serialize};

use super::{password, Auth};

/// Bodies here are a few fields: anything bigger is refused before parsing.
const BODY_LIMIT: usize = 4096;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Register {
    user_id: String,
    display_name: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Login {
    user_id: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct User<'a> {
    user_id: &'a str,
    display_name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Session<'a> {
    token: &'a str,
    #[serde(with = "platform_core::time::rfc3339")]
    expires_at: i64,
    user: User<'a>,
}

fn session(status: StatusCode, issued: &Issued, user: &SessionUser) -> Response {
    json::respond(
        status,
        &Session {
            token: &issued.token,
            expires_at: issued.expires_at,
            user: User {
                user_id: &user.user_id,
                display_name: &user.display_name,
            },
        },
    )
}

fn wrong_credentials() -> ApiError {
    ApiError::unauthorized("wrong user id or password")
}

pub(super) async fn register(
    auth: &Auth,
    address: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let body: Register = json::read_body(headers, body, BODY_LIMIT).await?;
    validate::user_id("userId", &body.user_id)?;
    validate::display_name("displayName", &body.display_name)?;
    // Stored trimmed: `display_name` needs text once trimmed, and what is kept is that text.
    let display_name = validate::trimmed(body.display_name);
    password::check("password", &body.password)?;
    let key = auth.key("register:a", address);
    let limit = [(key.as_str(), auth.limits.registrations_per_address)];
    ratelimit::hit(&auth.redis, &limit, "registrations").await?;
    let hash = auth.hasher.hash(body.password).await?;
    let client = auth.pg.get().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO users (user_id, display_name, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO NOTHING",
        )
        .await?;
    if client
        .execute(&stmt, &[&body.user_id, &display_name, &hash])
        .await?
        == 0
    {
        return Err(ApiError::conflict(format!(
            "user id {} is taken",
            body.user_id
        )));
    }
    let user = SessionUser {
        user_id: body.user_id,
        display_name,
    };
    let issued = auth.sessions.issue(&auth.redis, &user).await?;
    Ok(session(StatusCode::CREATED, &issued, &user))
}

/// Checks a password against the stored hash, throttled per (user id, address) and per
/// address: while either has used up its failures, nothing is checked (429); a wrong
/// password counts against both. An account's failures are not counted across addresses:
/// a guesser elsewhere locks only itself out, never the owner signing in from their own
/// address (guessing one account from many addresses is slowed by each address's limit and
/// the hash's cost). Returns the account's display name.
async fn check_password(
    auth: &Auth,
    address: &str,
    user_id: &str,
    password: String,
) -> Result<String, ApiError> {
    let by_user = auth.key("login-fail:ua", &format!("{address}:{user_id}"));
    let by_address = auth.key("login-fail:a", address);
    let limits = [
        (by_user.as_str(), auth.limits.login_failures_per_user),
        (by_address.as_str(), auth.limits.login_failures_per_address),
    ];
    ratelimit::check(&auth.redis, &limits, "failed sign-ins").await?;
    let client = auth.pg.get().await?;
    let stmt = client
        .prepare_cached("SELECT display_name, password_hash FROM users WHERE user_id = $1")
        .await?;
    let row = client.query_opt(&stmt, &[&user_id]).await?;
    drop(client);
    let (name, phc) = match row {
        Some(r) => (Some(r.get::<_, String>(0)), Some(r.get::<_, String>(1))),
        None => (None, None),
    };
    match (auth.hasher.verify(password, phc).await?, name) {
        (true, Some(name)) => Ok(name),
        _ => {
            // Counted now; refused as 429 from the next attempt once over.
            let _ = ratelimit::hit(&auth.redis, &limits, "failed sign-ins").await;
            Err(wrong_credentials())
        }
    }
}

pub(super) async fn login(
    auth: &Auth,
    address: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let body: Login = json::read_body(headers, body, BODY_LIMIT).await?;
    validate::user_id("userId", &body.user_id)?;
    if body.password.is_empty() || body.password.chars().count() > password::PASSWORD_MAX {
        return Err(wrong_credentials());
    }
    // Read before the password is: a password change committed after this moves the epoch,
    // and then no session is issued for the password checked here.
    let epoch = auth.sessions.epoch(&auth.redis, &body.user_id).await?;
    let display_name = check_password(auth, address, &body.user_id, body.password).await?;
    let user = SessionUser {
        user_id: body.user_id,
        display_name,
    };
    let issued = auth
        .sessions
        .issue_at(&auth.redis, &user, epoch)
        .await?
        .ok_or_else(wrong_credentials)?;
    Ok(session(StatusCode::OK, &issued, &user))
}

pub(super) async fn logout(
    auth: &Auth,
    token: &str,
    user: &SessionUser,
) -> Result<Response, ApiError> {
    auth.sessions
        .revoke(&auth.redis, token, &user.user_id)
        .await?;
    // Gone here before the answer; other instances hear the revocation.
    auth.cache.forget(&sessions::digest(token));
    let mut res = Response::new(platform_core::Body::Empty);
    *res.status_mut() = StatusCode::NO_CONTENT;
    Ok(res)
}

pub(super) async fn change_password(
    auth: &Auth,
    address: &str,
    user: &SessionUser,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let body: ChangePassword = json::read_body(headers, body, BODY_LIMIT).await?;
    password::check("newPassword", &body.new_password)?;
    if body.current_password.chars().count() > password::PASSWORD_MAX {
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    check_password(auth, address, &user.user_id, body.current_password)
        .await
        .map_err(|e| {
            if e.status == StatusCode::UNAUTHORIZED {
                // The token is fine; only the password is not.
                ApiError::forbidden("the current password is wrong")
            } else {
                e
            }
        })?;
    let hash = auth.hasher.hash(body.new_password).await?;
    let client = auth.pg.get().await?;
    let stmt = client
        .prepare_cached(
            "UPDATE users SET password_hash = $2, updated_at = now() WHERE user_id = $1",
        )
        .await?;
    client.execute(&stmt, &[&user.user_id, &hash]).await?;
    drop(client);
    let epoch = auth.sessions.revoke_all(&auth.redis, &user.user_id).await?;
    auth.cache.forget_user(&user.user_id);
    // Another change right after this one already revoked what this one would issue.
    let issued = auth
        .sessions
        .issue_at(&auth.redis, user, epoch)
        .await?
        .ok_or_else(|| ApiError::conflict("the password changed again meanwhile; sign in"))?;
    Ok(session(StatusCode::OK, &issued, user))
}

pub(super) fn me(user: &SessionUser) -> Response {
    json::respond(
        StatusCode::OK,
        &User {
            user_id: &user.user_id,
            display_name: &user.display_name,
        },
    )
}
