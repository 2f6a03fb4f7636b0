//! Serving connections: what `axum::serve` does (HTTP/1.1 with upgrades for
//! WebSockets, the peer's address as `ConnectInfo`, a graceful shutdown that lets
//! open connections finish their requests), plus a header-read timeout, which
//! `axum::serve` cannot be given (it builds hyper's connections without a timer).
//!
//! The header-read timeout is hyper's (`http1::Builder::header_read_timeout`): a
//! connection whose request head is not complete within it is closed. hyper
//! closes it without an answer (its automatic answers are for heads it could
//! parse, and there is no request to answer yet), so the client sees EOF. The
//! clock starts whenever hyper waits for a head: on a new connection, so one that
//! sends nothing is closed too, and after each answer, so an idle keep-alive
//! connection is closed after the same time.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tower::ServiceExt;

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting,
/// asks every open connection to close after its request in flight, and waits
/// for them.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // Dropped at shutdown: every connection's `stopping` sees it.
    let (stop, stopping) = tokio::sync::watch::channel(());
    // Each connection holds a receiver; `open.closed()` waits for the last one.
    let (open, connection_closed) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        let held = connection_closed.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stopping.changed() => {
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
    open.closed().await;
    Ok(())
}
