//! Serving connections: what `axum::serve` does (HTTP/1.1 with upgrades for
//! WebSockets, the peer's address as `ConnectInfo`, a graceful shutdown that lets
//! open connections finish their requests), plus a header-read timeout, which
//! `axum::serve` cannot be given (it builds hyper's connections without a timer),
//! and a cap on open connections.
//!
//! The header-read timeout is hyper's (`http1::Builder::header_read_timeout`): a
//! connection whose request head is not complete within it is closed. hyper
//! closes it without an answer (its automatic answers are for heads it could
//! parse, and there is no request to answer yet), so the client sees EOF. The
//! clock starts whenever hyper waits for a head: on a new connection, so one that
//! sends nothing is closed too, and after each answer, so an idle keep-alive
//! connection is closed after the same time.
//!
//! The cap: at it, a new connection takes the place of the longest-idle one (open,
//! between requests: none in flight, no response still streaming, not upgraded to a
//! WebSocket), which is closed (hyper's graceful shutdown closes an idle connection
//! at once). Only when no connection is idle is the new one answered `503` with
//! `Retry-After: 1` and closed. Without that, a client that left idle keep-alive
//! connections behind after an overload kept every other client out until the
//! header-read timeout closed them.

use crate::metrics::Metrics;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::Router;
use hyper::body::{Body as HttpBody, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// At most `max` connections open at once (see the module documentation).
#[derive(Debug)]
pub struct ConnectionCap {
    pub max: usize,
    pub metrics: Arc<Metrics>,
}

/// How long a new connection waits for the place of the idle one it closed.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting,
/// asks every open connection to close after its request in flight, and waits
/// for them.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    header_read_timeout: Duration,
    cap: Option<ConnectionCap>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let cap = cap.map(|cap| {
        Arc::new(Cap {
            permits: Arc::new(Semaphore::new(cap.max.clamp(1, Semaphore::MAX_PERMITS))),
            metrics: cap.metrics,
            open: Open::default(),
        })
    });
    // Dropped at shutdown: every connection's `stopping` sees it.
    let (stop, stopping) = tokio::sync::watch::channel(());
    // Each connection holds a receiver; `open.closed()` waits for the last one.
    let (all_open, connection_closed) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (app, builder, cap) = (app.clone(), builder.clone(), cap.clone());
        let mut stopping = stopping.clone();
        let held = connection_closed.clone();
        tokio::spawn(async move {
            let (io, tracked) = match &cap {
                None => (Capped { io, _permit: None }, None),
                Some(cap) => match cap.admit(io).await {
                    Some((io, tracked)) => (io, Some(tracked)),
                    None => return,
                },
            };
            let evicted = tracked.clone();
            let evicted = async move {
                match evicted {
                    Some(tracked) => tracked.closing().await,
                    None => std::future::pending().await,
                }
            };
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let in_flight = tracked.as_ref().map(|t| t.begin());
                    let app = app.clone();
                    async move {
                        let response = app.oneshot(request.map(Body::new)).await?;
                        Ok::<_, std::convert::Infallible>(match in_flight {
                            None => response,
                            Some(in_flight)
                                if response.status() == StatusCode::SWITCHING_PROTOCOLS =>
                            {
                                in_flight.upgraded();
                                response
                            }
                            // Idle again only once the whole response is written.
                            Some(in_flight) => response.map(|body| {
                                Body::new(TrackedBody {
                                    body,
                                    _in_flight: in_flight,
                                })
                            }),
                        })
                    }
                });
            let connection = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
                () = evicted => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(held);
        });
    }
    drop(listener);
    drop(stop);
    drop(connection_closed);
    all_open.closed().await;
    Ok(())
}

struct Cap {
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    open: Open,
}

const REFUSAL_BODY: &str = r#"{"error":"too many connections; retry shortly","status":503}"#;

impl Cap {
    /// A place for a new connection: a free one, or that of the longest-idle
    /// connection, closed for it; `None` (after answering 503) when every
    /// connection is busy.
    async fn admit<Io>(self: &Arc<Self>, mut io: Io) -> Option<(Capped<Io>, Tracked)>
    where
        Io: AsyncWrite + Unpin,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if self.open.close_longest_idle() => {
                self.metrics.idle_connection_closed();
                tokio::time::timeout(EVICTION_WAIT, self.permits.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            Err(_) => None,
        };
        let Some(permit) = permit else {
            self.metrics.shed("connections");
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                 retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{REFUSAL_BODY}",
                REFUSAL_BODY.len()
            );
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                let _ = io.write_all(answer.as_bytes()).await;
                let _ = io.shutdown().await;
            })
            .await;
            return None;
        };
        let tracked = self.open.track(Arc::clone(self));
        Some((
            Capped {
                io,
                _permit: Some(permit),
            },
            tracked,
        ))
    }
}

/// The open connections and whether each is idle.
#[derive(Default)]
struct Open {
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, State>>,
}

struct State {
    requests: usize,
    idle_since: Instant,
    upgraded: bool,
    closing: bool,
    close: Arc<Notify>,
}

impl Open {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, State>> {
        // The map stays consistent if a holder panicked: each change is one field.
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn track(&self, cap: Arc<Cap>) -> Tracked {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        self.lock().insert(
            id,
            State {
                requests: 0,
                idle_since: Instant::now(),
                upgraded: false,
                closing: false,
                close: Arc::clone(&close),
            },
        );
        Tracked(Arc::new(Connection { id, cap, close }))
    }

    /// Asks the longest-idle connection to close; false if none is idle.
    fn close_longest_idle(&self) -> bool {
        let mut connections = self.lock();
        let longest = connections
            .values_mut()
            .filter(|c| c.requests == 0 && !c.upgraded && !c.closing)
            .min_by_key(|c| c.idle_since);
        match longest {
            Some(connection) => {
                connection.closing = true;
                // Stored if the connection is not waiting yet, so it is not missed.
                connection.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// One open connection's entry, removed when the last handle goes.
struct Connection {
    id: u64,
    cap: Arc<Cap>,
    close: Arc<Notify>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.cap.open.lock().remove(&self.id);
    }
}

#[derive(Clone)]
struct Tracked(Arc<Connection>);

impl Tracked {
    /// Changes this connection's entry (there while any handle of it is).
    fn update(&self, change: impl FnOnce(&mut State)) {
        if let Some(state) = self.0.cap.open.lock().get_mut(&self.0.id) {
            change(state);
        }
    }

    fn begin(&self) -> InFlight {
        self.update(|state| state.requests += 1);
        InFlight(self.clone())
    }

    /// Resolves when this connection is chosen to make room for a new one.
    async fn closing(&self) {
        self.0.close.notified().await;
    }
}

/// A request in flight on a connection, until its response is written.
struct InFlight(Tracked);

impl InFlight {
    /// The connection now carries a WebSocket: never idle again.
    fn upgraded(self) {
        self.0.update(|state| state.upgraded = true);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|state| {
            state.requests = state.requests.saturating_sub(1);
            if state.requests == 0 {
                state.idle_since = Instant::now();
            }
        });
    }
}

/// A response body that keeps its request in flight until it is dropped (written
/// to its end, or the connection gone).
struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection counted against the cap until it is dropped (with a WebSocket,
/// that is when the socket closes).
struct Capped<Io> {
    io: Io,
    _permit: Option<OwnedSemaphorePermit>,
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
