//! Request dispatch: checks an HTTP request under the engine's path, finds its session and
//! hands it to the transport it names; answers the polling handshake. It sits on top of the
//! session state and both transports.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, StatusCode};

use super::http::{self as eio_http, EioError};
use super::session::Inner;
use super::{polling, websocket, Engine, EngineHandler};
use crate::{Request, Response};

impl<H: EngineHandler> Engine<H> {
    /// Answers one HTTP request under the configured path.
    pub async fn handle(&self, mut req: Request) -> Response {
        let inner = &self.inner;
        let cors = &inner.config.cors;
        let origin = req.headers().get(header::ORIGIN).cloned();
        let origin = origin.as_ref();
        if !req.uri().path().starts_with(inner.config.path.as_str())
            && req.uri().path() != inner.config.path.trim_end_matches('/')
        {
            return eio_http::respond(StatusCode::NOT_FOUND, "text/plain", Bytes::new());
        }
        if let Some(res) = cors.preflight(req.method(), req.headers()) {
            return res;
        }
        let uri = req.uri().clone();
        let q = eio_http::parse_query(uri.query());
        let websocket = match q.transport {
            Some("polling") => false,
            Some("websocket") => true,
            _ => return EioError::UnknownTransport.response(cors, origin),
        };
        if q.eio != Some("4") {
            return EioError::UnsupportedProtocolVersion.response(cors, origin);
        }
        let session = match q.sid {
            None => None,
            Some(sid) => match inner.find(sid) {
                Some(s) => Some(s),
                None => return EioError::UnknownSid.response(cors, origin),
            },
        };
        if session.is_none() && inner.at_capacity() {
            return eio_http::busy(cors, origin);
        }
        let result = if websocket {
            if req.method() != Method::GET || !fastwebsockets::upgrade::is_upgrade_request(&req) {
                Err(EioError::BadRequest)
            } else {
                websocket::upgrade(inner.clone(), &mut req, session)
            }
        } else {
            match (session, req.method().clone()) {
                (None, Method::GET) => {
                    Ok(handshake_polling(inner).unwrap_or_else(|| eio_http::busy(cors, origin)))
                }
                (None, _) => Err(EioError::BadHandshakeMethod),
                (Some(s), Method::GET) => polling::poll(&s).await,
                (Some(s), Method::POST) => polling::post(inner, &s, req).await,
                (Some(_), _) => Err(EioError::BadRequest),
            }
        };
        match result {
            Ok(mut res) => {
                cors.decorate(origin, &mut res);
                res
            }
            Err(e) => e.response(cors, origin),
        }
    }
}

/// Opens a polling session and answers with its open packet; its heartbeat starts. `None`
/// at the connection cap.
fn handshake_polling<H: EngineHandler>(inner: &Arc<Inner<H>>) -> Option<Response> {
    let session = inner.open_polling()?;
    let body = inner.open_packet(session.conn.sid(), true);
    tokio::spawn(polling::heartbeat(inner.clone(), session));
    Some(polling::text_response(body))
}
