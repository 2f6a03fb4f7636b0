//! The syslog receivers of `logbook serve`: binds the sockets, completes TLS
//! handshakes (RFC 5425) in their own tasks with a deadline, and hands each
//! connection or socket to `logbook_server::protocols::syslog`.

use crate::serve::SyslogArgs;
use logbook_server::protocols::syslog::{read_stream, receive_datagrams};
use logbook_server::AppState;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The running receivers; [`Receivers::stopped`] waits for them after shutdown.
pub struct Receivers {
    tasks: JoinSet<()>,
}

impl Receivers {
    pub async fn stopped(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Binds what `args` asks for and announces each address on stderr (before the
/// HTTP address, which tests and scripts wait for last).
pub async fn start(
    args: &SyslogArgs,
    tls: Option<Arc<ServerConfig>>,
    state: &AppState,
) -> anyhow::Result<Receivers> {
    let mut tasks = JoinSet::new();
    let domain = args.syslog_domain.trim().to_string();
    anyhow::ensure!(!domain.is_empty(), "--syslog-domain must not be empty");
    if let Some(addr) = args.syslog_tcp {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for syslog on tcp {addr}: {e}"))?;
        let scheme = if tls.is_some() { "tls" } else { "tcp" };
        eprintln!(
            "logbook syslog listening on {scheme}://{} (domain {domain})",
            listener.local_addr()?
        );
        let acceptor = tls.map(TlsAcceptor::from);
        tasks.spawn(accept(listener, acceptor, state.clone(), domain.clone()));
    }
    if let Some(addr) = args.syslog_udp {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for syslog on udp {addr}: {e}"))?;
        eprintln!(
            "logbook syslog listening on udp://{} (domain {domain})",
            socket.local_addr()?
        );
        tasks.spawn(receive_datagrams(state.clone(), domain, socket));
    }
    Ok(Receivers { tasks })
}

/// Accepts connections until shutdown, then waits for the open ones to append what
/// they have read.
async fn accept(listener: TcpListener, tls: Option<TlsAcceptor>, state: AppState, domain: String) {
    let mut connections = JoinSet::new();
    let mut shutdown = state.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stopping| *stopping) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "syslog accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (state, domain, tls) = (state.clone(), domain.clone(), tls.clone());
        connections.spawn(async move {
            match tls {
                None => read_stream(state, domain, stream, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => read_stream(state, domain, tls, peer).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "syslog TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "syslog TLS handshake timed out"),
                    }
                }
            }
        });
        // Reap finished connections so the set does not grow with every one.
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}
