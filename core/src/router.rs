//! Method + path-segment routing. Routes are literal segments, `:param` captures and a final
//! `*` that takes whatever follows (nothing included); a match borrows its parameters from the
//! request path, so routing allocates nothing per request. Routes are tried in the order they
//! were added. An unknown path is 404; a known path with the wrong method is 405, with the
//! methods the path does take ([`Allowed`], the `Allow` header RFC 9110 requires).

use http::Method;

/// At most this many `:param` captures per route.
pub const MAX_PARAMS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Param,
    /// `*`: the rest of the path, any number of segments.
    Rest,
}

#[derive(Debug)]
struct Route<T> {
    /// `None`: any method (see [`Router::any`]).
    method: Option<Method>,
    segments: Vec<Segment>,
    target: T,
}

/// A routing table mapping `(method, path pattern)` to a target, usually a `Copy` enum.
#[derive(Debug)]
pub struct Router<T> {
    routes: Vec<Route<T>>,
}

/// Path parameters captured by a match, in pattern order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params<'a> {
    values: [&'a str; MAX_PARAMS],
    len: usize,
}

impl<'a> Params<'a> {
    pub fn get(&self, i: usize) -> &'a str {
        if i < self.len {
            self.values[i]
        } else {
            ""
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Match<'r, 'p, T> {
    Found(&'r T, Params<'p>),
    MethodNotAllowed(Allowed),
    NotFound,
}

/// The methods routes may name, in the order an `Allow` header lists them.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The methods a path takes: a set over [`METHODS`], `Copy` so a 405 costs no allocation
/// until its header is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allowed(u8);

impl Allowed {
    /// A set of `methods` (names outside [`METHODS`] are left out); GET brings HEAD, which
    /// the router answers as GET.
    pub fn of(methods: &[Method]) -> Self {
        let mut set = Allowed::default();
        for m in methods {
            set.add(m);
        }
        set
    }

    fn add(&mut self, method: &Method) {
        if let Some(i) = METHODS.iter().position(|n| *n == method.as_str()) {
            self.0 |= 1 << i;
        }
        if *method == Method::GET {
            self.0 |= 1 << 1;
        }
    }

    pub fn contains(&self, method: &Method) -> bool {
        METHODS
            .iter()
            .position(|n| *n == method.as_str())
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// The `Allow` header's value, e.g. `GET, HEAD, POST`.
    pub fn header_value(&self) -> String {
        let names: Vec<&str> = METHODS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        names.join(", ")
    }
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router { routes: Vec::new() }
    }
}

impl<T> Router<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route. Patterns look like `/conversations/:id/messages` or `/calls/*`.
    ///
    /// # Panics
    /// On a pattern with more than [`MAX_PARAMS`] captures or a `*` before its end: programming
    /// errors found at start-up.
    pub fn route(self, method: Method, pattern: &'static str, target: T) -> Self {
        self.add(Some(method), pattern, target)
    }

    /// Adds a route that takes every method: for a prefix passed on as it is (the gateway's
    /// forwarding), where whoever answers decides what a method means.
    pub fn any(self, pattern: &'static str, target: T) -> Self {
        self.add(None, pattern, target)
    }

    fn add(mut self, method: Option<Method>, pattern: &'static str, target: T) -> Self {
        let segments: Vec<Segment> = split(pattern)
            .map(|s| match s {
                "*" => Segment::Rest,
                _ if s.starts_with(':') => Segment::Param,
                _ => Segment::Literal(s),
            })
            .collect();
        let params = segments.iter().filter(|s| **s == Segment::Param).count();
        assert!(
            params <= MAX_PARAMS,
            "route {pattern} has too many parameters"
        );
        assert!(
            !segments[..segments.len().saturating_sub(1)].contains(&Segment::Rest),
            "route {pattern} has a `*` before its end"
        );
        self.routes.push(Route {
            method,
            segments,
            target,
        });
        self
    }

    pub fn at<'r, 'p>(&'r self, method: &Method, path: &'p str) -> Match<'r, 'p, T> {
        let mut path_matched = false;
        let mut allowed = Allowed::default();
        for route in &self.routes {
            let Some(params) = match_segments(&route.segments, path) else {
                continue;
            };
            let matches = match &route.method {
                None => true,
                Some(m) => m == method || (*method == Method::HEAD && *m == Method::GET),
            };
            if matches {
                return Match::Found(&route.target, params);
            }
            path_matched = true;
            if let Some(m) = &route.method {
                allowed.add(m);
            }
        }
        // Every route is tried before a 405 is answered, so the set is complete.
        if path_matched {
            Match::MethodNotAllowed(allowed)
        } else {
            Match::NotFound
        }
    }
}

/// Path segments, ignoring a leading and a trailing slash.
fn split(path: &str) -> impl Iterator<Item = &str> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    path.split('/').filter(move |_| !path.is_empty())
}

fn match_segments<'p>(pattern: &[Segment], path: &'p str) -> Option<Params<'p>> {
    let mut params = Params {
        values: [""; MAX_PARAMS],
        len: 0,
    };
    let mut it = split(path);
    for seg in pattern {
        match seg {
            Segment::Rest => return Some(params),
            Segment::Literal(lit) => {
                if it.next()? != *lit {
                    return None;
                }
            }
            Segment::Param => {
                let got = it.next()?;
                if got.is_empty() {
                    return None;
                }
                params.values[params.len] = got;
                params.len += 1;
            }
        }
    }
    if it.next().is_some() {
        return None;
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum R {
        Create,
        ByUser,
        One,
        Messages,
        SendMessage,
        Message,
        DeleteMessage,
    }

    fn router() -> Router<R> {
        Router::new()
            .route(Method::POST, "/conversations", R::Create)
            .route(Method::GET, "/conversations/user/:userId", R::ByUser)
            .route(Method::GET, "/conversations/:id", R::One)
            .route(Method::GET, "/conversations/:id/messages", R::Messages)
            .route(Method::POST, "/conversations/:id/messages", R::SendMessage)
            .route(
                Method::PATCH,
                "/conversations/:id/messages/:mid",
                R::Message,
            )
            .route(
                Method::DELETE,
                "/conversations/:id/messages/:mid",
                R::DeleteMessage,
            )
    }

    #[test]
    fn matches_literals_and_params() {
        let r = router();
        assert!(
            matches!(r.at(&Method::POST, "/conversations"), Match::Found(R::Create, p) if p.is_empty())
        );
        match r.at(&Method::GET, "/conversations/user/u-1") {
            Match::Found(R::ByUser, p) => assert_eq!(p.get(0), "u-1"),
            other => panic!("{other:?}"),
        }
        match r.at(&Method::PATCH, "/conversations/a/messages/b") {
            Match::Found(R::Message, p) => {
                assert_eq!((p.get(0), p.get(1), p.len()), ("a", "b", 2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn literal_wins_by_order() {
        // "/conversations/user/x" must not be taken as conversation "user" + junk.
        let r = router();
        assert!(matches!(
            r.at(&Method::GET, "/conversations/user/x"),
            Match::Found(R::ByUser, _)
        ));
        assert!(matches!(
            r.at(&Method::GET, "/conversations/user"),
            Match::Found(R::One, _)
        ));
    }

    #[test]
    fn trailing_slash_is_ignored() {
        let r = router();
        assert!(matches!(
            r.at(&Method::POST, "/conversations/"),
            Match::Found(R::Create, _)
        ));
    }

    #[test]
    fn not_found_vs_method_not_allowed() {
        let r = router();
        assert_eq!(r.at(&Method::GET, "/nope"), Match::NotFound);
        assert_eq!(r.at(&Method::GET, "/conversations/a/b"), Match::NotFound);
        assert_eq!(
            r.at(&Method::GET, "/conversations/a/messages/b/c"),
            Match::NotFound
        );
        assert_eq!(
            r.at(&Method::PUT, "/conversations"),
            Match::MethodNotAllowed(Allowed::of(&[Method::POST]))
        );
        assert_eq!(
            r.at(&Method::GET, "/conversations"),
            Match::MethodNotAllowed(Allowed::of(&[Method::POST]))
        );
    }

    #[test]
    fn a_405_names_every_method_the_path_takes() {
        let r = router();
        let Match::MethodNotAllowed(allowed) = r.at(&Method::PUT, "/conversations/a/messages/b")
        else {
            panic!("not a 405");
        };
        assert_eq!(allowed.header_value(), "PATCH, DELETE");
        let Match::MethodNotAllowed(allowed) = r.at(&Method::DELETE, "/conversations/a/messages")
        else {
            panic!("not a 405");
        };
        // GET brings HEAD, which the router answers as GET.
        assert_eq!(allowed.header_value(), "GET, HEAD, POST");
        assert!(allowed.contains(&Method::HEAD) && !allowed.contains(&Method::DELETE));
    }

    #[test]
    fn empty_param_does_not_match() {
        let r = router();
        assert_eq!(
            r.at(&Method::GET, "/conversations//messages"),
            Match::NotFound
        );
        assert_eq!(r.at(&Method::GET, "/"), Match::NotFound);
    }

    #[test]
    fn head_falls_back_to_get() {
        let r = router();
        assert!(matches!(
            r.at(&Method::HEAD, "/conversations/x"),
            Match::Found(R::One, _)
        ));
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum F {
        Health,
        Send,
        Chat,
        Call,
    }

    /// The gateway's shape: a few specific routes before prefixes forwarded whatever the method.
    fn forwarding() -> Router<F> {
        Router::new()
            .route(Method::GET, "/healthz", F::Health)
            .route(Method::POST, "/conversations/:id/messages", F::Send)
            .any("/conversations/*", F::Chat)
            .any("/calls/*", F::Call)
    }

    #[test]
    fn a_final_star_takes_the_rest_of_the_path() {
        let r = forwarding();
        for path in ["/calls", "/calls/", "/calls/a", "/calls/a/signals/offer/"] {
            assert!(
                matches!(r.at(&Method::DELETE, path), Match::Found(F::Call, p) if p.is_empty()),
                "{path}"
            );
        }
        assert_eq!(r.at(&Method::GET, "/callsx"), Match::NotFound);
        assert_eq!(r.at(&Method::GET, "/"), Match::NotFound);
        assert_eq!(r.at(&Method::GET, "/x/calls"), Match::NotFound);
    }

    #[test]
    fn specific_routes_come_first_and_fall_through_on_method() {
        let r = forwarding();
        for path in ["/conversations/c/messages", "/conversations/c/messages/"] {
            match r.at(&Method::POST, path) {
                Match::Found(F::Send, p) => assert_eq!(p.get(0), "c"),
                other => panic!("{path}: {other:?}"),
            }
            assert!(matches!(r.at(&Method::GET, path), Match::Found(F::Chat, _)));
        }
        assert!(matches!(
            r.at(&Method::POST, "/conversations//messages"),
            Match::Found(F::Chat, _)
        ));
        assert_eq!(
            r.at(&Method::PUT, "/healthz"),
            Match::MethodNotAllowed(Allowed::of(&[Method::GET]))
        );
    }

    #[test]
    #[should_panic(expected = "before its end")]
    fn a_star_must_end_the_pattern() {
        let _ = Router::new().any("/a/*/b", F::Chat);
    }
}
