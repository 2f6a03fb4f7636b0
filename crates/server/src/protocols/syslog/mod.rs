//! Syslog receivers: a TCP (or TLS, RFC 5425) connection or a UDP socket, feeding
//! records into one configured domain through the common ingest path. The binary
//! binds the sockets and completes TLS handshakes (`logbook serve --syslog-*`);
//! this module reads messages, maps them (`parse.rs`) and appends them.
//!
//! Back-pressure: a connection appends what it has read and waits for the commit
//! before it reads more, so when the store is slow the kernel's buffers fill and
//! TCP senders slow down, instead of Logbook buffering without bound. UDP has no
//! such channel: what the socket buffer cannot hold the kernel drops, as for any
//! syslog receiver.

pub(crate) mod framing;
pub(crate) mod parse;

pub use framing::MAX_FRAME;

use crate::error::ApiError;
use crate::{ingest, AppState};
use logbook_core::{NewRecord, Timestamp};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::UdpSocket;

/// Most records appended at once from one connection or socket.
const MAX_BATCH: usize = 2000;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 128 * 1024;

/// Reads syslog messages from one connection until the sender closes it or the
/// node shuts down. A malformed message is kept (see `parse.rs`); nothing a
/// sender writes ends the connection but a read error.
pub async fn read_stream<S: AsyncRead + Unpin>(
    state: AppState,
    domain: String,
    mut stream: S,
    peer: SocketAddr,
) {
    let mut framer = framing::Framer::default();
    let mut shutdown = state.shutdown.clone();
    let mut records = Vec::new();
    loop {
        framer.buf.reserve(READ_CHUNK);
        let room = framer.buf.capacity() - framer.buf.len();
        let read = tokio::select! {
            read = stream.read_buf(&mut framer.buf) => read,
            _ = shutdown.wait_for(|stopping| *stopping) => Ok(0),
        };
        let (closed, filled) = match read {
            Ok(0) => (true, false),
            Ok(n) => (false, n == room),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "syslog connection failed");
                (true, false)
            }
        };
        let now = Timestamp::now();
        while let Some(frame) = framer.next_frame() {
            records.push(parse::record(&frame.bytes, frame.truncated, now));
            if records.len() >= MAX_BATCH {
                store(&state, &domain, std::mem::take(&mut records)).await;
            }
        }
        if closed {
            records.extend(
                framer
                    .finish()
                    .map(|frame| parse::record(&frame.bytes, frame.truncated, now)),
            );
        }
        // A read that filled the buffer likely left more waiting: read it into the
        // same commit (fewer, larger transactions), up to MAX_BATCH.
        if filled && !closed {
            continue;
        }
        if !records.is_empty() {
            store(&state, &domain, std::mem::take(&mut records)).await;
        }
        if closed {
            return;
        }
    }
}

/// Receives one message per datagram until the node shuts down.
pub async fn receive_datagrams(state: AppState, domain: String, socket: UdpSocket) {
    let mut buf = vec![0u8; 65_536];
    let mut shutdown = state.shutdown.clone();
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buf) => received,
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        };
        let now = Timestamp::now();
        let mut records = Vec::new();
        match received {
            Ok((n, _)) => records.push(parse::record(&buf[..n], false, now)),
            Err(e) => tracing::debug!(error = %e, "syslog datagram failed"),
        }
        // Whatever else has arrived joins the same commit.
        while records.len() < MAX_BATCH {
            match socket.try_recv_from(&mut buf) {
                Ok((n, _)) => records.push(parse::record(&buf[..n], false, now)),
                Err(_) => break,
            }
        }
        if !records.is_empty() {
            store(&state, &domain, records).await;
        }
    }
}

/// Appends, retrying while the store is busy or unavailable (the sender waits,
/// which is the back-pressure); gives up only when the node is shutting down or
/// the store refuses the records themselves.
async fn store(state: &AppState, domain: &str, records: Vec<NewRecord>) {
    let mut delay = Duration::from_millis(50);
    loop {
        match ingest::append_to_domain(state, domain, records.clone()).await {
            Ok(_) => return,
            Err(e) if retryable(&e) && !*state.shutdown.borrow() => {
                tracing::warn!(error = %e.describe(), "syslog: store busy, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(
                    error = %e.describe(),
                    count = records.len(),
                    "syslog: records could not be stored"
                );
                return;
            }
        }
    }
}

/// Busy and unavailable stores say when to retry; a closing one does not.
fn retryable(e: &ApiError) -> bool {
    e.retry_after.is_some()
}

/// Whatever a sender writes, every message becomes a record and the framer keeps
/// its place, never panicking.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    fn wireish() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            "(<[0-9]{1,4}>)?(1 )?[ -~\\[\\]=\"\\\\\n]{0,120}".prop_map(String::into_bytes),
            "([0-9]{1,3} )?<1[0-9]>1 [ -~]{0,60}\n".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #[test]
        fn a_malformed_message_keeps_its_text(bytes in wireish(), truncated: bool) {
            let record = super::parse::record(&bytes, truncated, logbook_core::Timestamp(0));
            let data = record.data.clone().unwrap_or_default();
            let has_text = bytes.iter().any(|b| !matches!(b, b'\n' | b'\r' | b'\0'));
            if data.contains_key("parse_error") && has_text {
                prop_assert!(record.message.is_some(), "{:?}", record);
            }
        }

        #[test]
        fn frames_are_never_empty_nor_oversize(
            chunks in proptest::collection::vec(wireish(), 0..8)
        ) {
            let mut framer = super::framing::Framer::default();
            let mut frames = Vec::new();
            for chunk in &chunks {
                framer.buf.extend_from_slice(chunk);
                while let Some(frame) = framer.next_frame() {
                    frames.push(frame);
                }
            }
            frames.extend(framer.finish());
            for frame in frames {
                prop_assert!(!frame.bytes.is_empty());
                prop_assert!(frame.bytes.len() <= super::MAX_FRAME);
            }
        }
    }
}
