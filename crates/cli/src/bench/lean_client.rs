//! The open loop's client: hyper's HTTP/1 connections, kept by the benchmark
//! itself, each request made from parts built once.
//!
//! Why not reqwest here: the load generator shares the machine's cores with the
//! server, and at twice the capacity it sends twice what the capacity run did, so
//! whatever a request costs the client is taken from the server. With reqwest
//! (a URL parsed, a header map built and a pooled connection checked out through
//! its dispatcher for every request) each request cost the client more than it
//! needs to. With this one the client used 0.33-0.46 cores against the server's
//! 0.84-0.87 during the overload (`bench-load` prints both; 2026-12-03, on 2 cores
//! shared with other builds). reqwest's figure was not measured beside it: the
//! choice rests on doing less per request, not on a measured difference.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::Uri;
use std::sync::Mutex;

/// Keep-alive connections to one server, for POSTs of one path with one token.
pub struct LeanClient {
    address: String,
    host: HeaderValue,
    authorization: HeaderValue,
    path: Uri,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

/// A request's answer: its status and whether it had `Retry-After`; `None` if the
/// connection failed before the answer was read.
pub type Answer = Option<(u16, bool)>;

impl LeanClient {
    /// For `url` (`http://host:port/path`) with a bearer `token`.
    pub fn new(url: &str, token: &str) -> anyhow::Result<LeanClient> {
        let uri: Uri = url.parse()?;
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("{url} has no host"))?
            .to_string();
        Ok(LeanClient {
            host: HeaderValue::from_str(&authority)?,
            address: authority,
            authorization: HeaderValue::from_str(&format!("Bearer {token}"))?,
            path: uri.path_and_query().map_or("/", |p| p.as_str()).parse()?,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    async fn connect(&self) -> Option<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.address).await.ok()?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .ok()?;
        tokio::spawn(connection);
        Some(sender)
    }

    /// POSTs `body` of `content_type`, on an idle connection or a new one.
    pub async fn post(&self, body: &Bytes, content_type: &'static str) -> Answer {
        let mut sender = match self.take_idle() {
            Some(mut idle) => match idle.ready().await {
                Ok(()) => idle,
                // Closed by the server meanwhile (after its idle timeout, say).
                Err(_) => self.connect().await?,
            },
            None => self.connect().await?,
        };
        let mut request = hyper::Request::new(Full::new(body.clone()));
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = self.path.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        let response = sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key(RETRY_AFTER);
        response.into_body().collect().await.ok()?;
        if !sender.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(sender);
        }
        Some((status, retry_after))
    }
}
