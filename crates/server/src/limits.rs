//! Load shedding and limits, so a node under more load than it can take refuses
//! the excess at once instead of queueing it (and its memory):
//!
//! - a budget of request body bytes in flight across all requests (the declared
//!   `Content-Length`, or the body limit when none is declared): a request that does
//!   not fit gets `503` with `Retry-After` before its body is read;
//! - a budget of writes in flight (POST, PUT, PATCH, DELETE): beyond it, `503` with
//!   `Retry-After` at once, not after waiting in the store's queue;
//! - a body that stops arriving for longer than the body-read timeout gets `408`
//!   (tower-http's `RequestBodyTimeoutLayer`, recognised in `body::read_limited`);
//! - a cap on open connections ([`CappedListener`]): a connection beyond it is
//!   answered `503` with `Retry-After` and closed at once.
//!
//! Each refusal is counted in `logbook_http_shed_requests_total{reason}`.

use crate::error::{ApiError, ErrorKind};
use crate::metrics::Metrics;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The node's budgets.
#[derive(Debug)]
pub struct Budgets {
    body_bytes: Arc<Semaphore>,
    body_budget: usize,
    writes: Arc<Semaphore>,
}

impl Budgets {
    pub fn new(body_budget: usize, writes: usize) -> Budgets {
        let body_budget = body_budget.clamp(1, Semaphore::MAX_PERMITS);
        Budgets {
            body_bytes: Arc::new(Semaphore::new(body_budget)),
            body_budget,
            writes: Arc::new(Semaphore::new(writes.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }
}

fn shed(metrics: &Metrics, reason: &str, message: &str) -> Response {
    metrics.shed(reason);
    ApiError::new(ErrorKind::Unavailable, message.to_string())
        .retry_after(1)
        .into_response()
}

/// `axum::middleware::from_fn_with_state`: see the module documentation.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let budgets = &state.budgets;
    let is_write = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let _write: Option<OwnedSemaphorePermit> = if is_write {
        match budgets.writes.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return shed(
                    &state.metrics,
                    "writes",
                    "too many writes in flight; retry shortly",
                )
            }
        }
    } else {
        None
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = request.headers().get(header::TRANSFER_ENCODING).is_some();
    let wanted = match (declared, chunked) {
        (Some(0), false) | (None, false) => 0,
        // More than the body limit is refused by the handler with 413; it
        // reserves no more than the limit meanwhile.
        (Some(n), _) => usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(state.config.max_body_bytes),
        (None, true) => state.config.max_body_bytes,
    }
    .min(budgets.body_budget);
    let _body: Option<OwnedSemaphorePermit> = if wanted > 0 {
        let permits = u32::try_from(wanted).unwrap_or(u32::MAX);
        match budgets.body_bytes.clone().try_acquire_many_owned(permits) {
            Ok(permit) => Some(permit),
            Err(_) => {
                return shed(
                    &state.metrics,
                    "body_bytes",
                    "too many request bytes in flight; retry shortly",
                )
            }
        }
    } else {
        None
    };
    next.run(request).await
}

/// A listener that keeps at most `cap` connections open: one beyond it is
/// answered `503` with `Retry-After: 1` and closed, at once.
#[derive(Debug)]
pub struct CappedListener<L> {
    inner: L,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl<L> CappedListener<L> {
    pub fn new(inner: L, cap: usize, metrics: Arc<Metrics>) -> CappedListener<L> {
        CappedListener {
            inner,
            permits: Arc::new(Semaphore::new(cap.clamp(1, Semaphore::MAX_PERMITS))),
            metrics,
        }
    }
}

const REFUSAL_BODY: &str = r#"{"error":"too many connections; retry shortly","status":503}"#;

impl<L> axum::serve::Listener for CappedListener<L>
where
    L: axum::serve::Listener,
{
    type Io = Capped<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (mut io, addr) = self.inner.accept().await;
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    return (
                        Capped {
                            io,
                            _permit: permit,
                        },
                        addr,
                    )
                }
                Err(_) => {
                    self.metrics.shed("connections");
                    tokio::spawn(async move {
                        let answer = format!(
                            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{REFUSAL_BODY}",
                            REFUSAL_BODY.len()
                        );
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                            let _ = io.write_all(answer.as_bytes()).await;
                            let _ = io.shutdown().await;
                        })
                        .await;
                    });
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection counted against the cap until it is dropped.
#[derive(Debug)]
pub struct Capped<Io> {
    io: Io,
    _permit: OwnedSemaphorePermit,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Capped<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Capped<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
