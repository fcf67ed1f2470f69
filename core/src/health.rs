//! `/healthz` (the process answers) and `/readyz` (its dependencies answer, and it is not
//! shutting down).

use http::StatusCode;

use crate::pools::{PgPool, RedisPool};
use crate::{json, Response};

pub fn alive() -> Response {
    json::respond_raw(StatusCode::OK, &br#"{"status":"ok"}"#[..])
}

/// The readiness answer once shutdown has begun ([`crate::shutdown::started`]): 503 in the
/// contract's error body, whatever the dependencies say, so a load balancer stops sending
/// new work while what is in flight finishes. `None` before.
pub fn shutting_down() -> Option<Response> {
    crate::shutdown::started().then(|| {
        crate::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    })
}

/// 200 when every given dependency answers a trivial query, 503 naming the ones that don't,
/// or [`shutting_down`]'s 503.
pub async fn ready(pg: Option<&PgPool>, redis: Option<&RedisPool>) -> Response {
    if let Some(res) = shutting_down() {
        return res;
    }
    let pg_ok = match pg {
        None => None,
        Some(pool) => Some(match pool.get().await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }),
    };
    let redis_ok = match redis {
        None => None,
        Some(pool) => Some(match pool.get().await {
            Ok(mut c) => c.ping().await.is_ok(),
            Err(_) => false,
        }),
    };
    let all = pg_ok.unwrap_or(true) && redis_ok.unwrap_or(true);
    let body = serde_json::json!({
        "status": if all { "ready" } else { "unavailable" },
        "postgres": pg_ok.map(|ok| if ok { "up" } else { "down" }),
        "redis": redis_ok.map(|ok| if ok { "up" } else { "down" }),
    });
    json::respond(
        if all {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &body,
    )
}
