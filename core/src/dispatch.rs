//! The request wrapper every service shares: time the request, route it, check who calls,
//! answer 404/405 in the contract's error body, run the handler, record the answer under the
//! route's label. A service supplies its table and one `match` from route to handler
//! ([`Service`]); [`measured`] is the timing and recording alone, for requests a service
//! answers before or instead of routing (Socket.IO, the gateway's forwarding, static files).

use std::future::Future;
use std::time::Instant;

use http::request::Parts;
use hyper::body::Incoming;

use crate::identity::Trust;
use crate::metrics::{Label, Metrics};
use crate::router::{Match, Params, Router};
use crate::{ApiError, Request, Response};

/// A routed request, as a handler gets it.
pub struct Routed<'a> {
    /// Path parameters, borrowed from `parts`.
    pub params: Params<'a>,
    pub parts: &'a Parts,
    pub body: Incoming,
    /// The user the gateway vouches for (`None`: anonymous, or a public route).
    pub caller: Option<&'a str>,
}

/// A service as [`dispatch`] drives it. Implemented by the service's `Clone` handler.
pub trait Service: Send + Sync {
    /// The route enum, which is also the metric labels.
    type Route: Label;

    fn router(&self) -> &Router<Self::Route>;

    fn metrics(&self) -> &Metrics;

    /// Whose word on the caller the service checks (see [`crate::identity`]); `None` for a
    /// service with no callers to check (the worker's admin port).
    fn trust(&self) -> Option<&Trust> {
        None
    }

    /// Whether `route` answers without the identity check (health, metrics). Requests no
    /// route takes are checked first, so a caller without the gateway's word learns nothing
    /// of the routes.
    fn public(route: Self::Route) -> bool;

    /// The one `match` from route to handler.
    fn call<'a>(
        &'a self,
        route: Self::Route,
        req: Routed<'a>,
    ) -> impl Future<Output = Result<Response, ApiError>> + Send + 'a;
}

/// Answers `req` with `svc`: the whole of a routed service's request handling.
pub async fn dispatch<S: Service>(svc: &S, req: Request) -> Response {
    measured(svc.metrics(), async {
        let (parts, body) = req.into_parts();
        let matched = svc.router().at(&parts.method, parts.uri.path());
        let route = match matched {
            Match::Found(route, _) => Some(*route),
            _ => None,
        };
        let result = async {
            let caller = match (svc.trust(), route) {
                (Some(trust), None) => trust.caller(&parts.headers)?,
                (Some(trust), Some(r)) if !S::public(r) => trust.caller(&parts.headers)?,
                _ => None,
            };
            let (route, params) = found(matched, parts.uri.path())?;
            let req = Routed {
                params,
                parts: &parts,
                body,
                caller,
            };
            svc.call(*route, req).await
        };
        (route, result.await.unwrap_or_else(ApiError::into_response))
    })
    .await
}

/// The route a match found, or the contract's 405 or 404.
pub fn found<'r, 'p, T>(m: Match<'r, 'p, T>, path: &str) -> Result<(&'r T, Params<'p>), ApiError> {
    match m {
        Match::Found(route, params) => Ok((route, params)),
        Match::MethodNotAllowed(allowed) => Err(ApiError::method_not_allowed(allowed)),
        Match::NotFound => Err(ApiError::route_not_found(path)),
    }
}

/// Runs `answer`, then records its response under the label it names (`None`: unmatched)
/// with the time it took; the access log names the same label.
pub async fn measured<L: Label>(
    metrics: &Metrics,
    answer: impl Future<Output = (Option<L>, Response)>,
) -> Response {
    let start = Instant::now();
    let (route, res) = answer.await;
    metrics.record(route, res.status().as_u16(), start.elapsed());
    crate::access::note_route(crate::metrics::label(route));
    res
}
