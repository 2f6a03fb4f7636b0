//! Load shedding and limits, so a node under more load than it can take refuses
//! the excess at once instead of queueing it (and its memory):
//!
//! - a budget of request body bytes in flight across all requests (the declared
//!   `Content-Length`, or the body limit when none is declared): a request that does
//!   not fit gets `503` with `Retry-After` before its body is read;
//! - a budget of writes in flight (POST, PUT, PATCH, DELETE): beyond it, `503` with
//!   `Retry-After` at once, not after waiting in the store's queue;
//! - within that budget, a limit that follows how long admitted writes wait
//!   ([`crate::delay_limit`]: cut while every write waits longer than the delay
//!   target, raised while they do not): beyond it, `503` with `Retry-After` at once,
//!   so under overload the writes admitted are about as many as are answered
//!   within the target;
//! - a fair share of that budget per client (keyed by its credential, else its
//!   address): while half the budget or more is in flight, a client already holding
//!   its share (the budget divided among the clients with writes in flight) gets
//!   `429` with `Retry-After`, so one noisy client cannot starve the rest;
//! - a body that stops arriving for longer than the body-read timeout gets `408`
//!   (tower-http's `RequestBodyTimeoutLayer`, recognised in `body::read_limited`);
//! - a cap on open connections (`connections::serve`): at it, the longest-idle
//!   keep-alive connection is closed for a new one; only when none is idle is the
//!   new one answered `503` with `Retry-After` and closed at once.
//!
//! Each refusal is counted in `logbook_http_shed_requests_total{reason}`.

use crate::delay_limit::{DelayLimit, DelaySettings, WriteId};
use crate::error::{ApiError, ErrorKind};
use crate::metrics::Metrics;
use crate::state::AppState;
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The node's budgets.
#[derive(Debug)]
pub struct Budgets {
    body_bytes: Arc<Semaphore>,
    body_budget: usize,
    writes: Arc<Semaphore>,
    write_budget: usize,
    /// Writes in flight by client (a hash of its credential or address).
    clients: Mutex<HashMap<u64, usize>>,
    client_hasher: RandomState,
    delay: Mutex<DelayLimit>,
}

/// How long admitted writes may wait before the write limit is cut ([`crate::delay_limit`]).
#[derive(Debug, Clone, Copy)]
pub struct DelayTarget {
    pub target: Duration,
    pub interval: Duration,
}

impl Budgets {
    pub fn new(body_budget: usize, writes: usize, delay: DelayTarget) -> Budgets {
        let body_budget = body_budget.clamp(1, Semaphore::MAX_PERMITS);
        let write_budget = writes.clamp(1, Semaphore::MAX_PERMITS);
        let delay = DelayLimit::new(
            DelaySettings {
                target: delay.target,
                interval: delay.interval,
                ceiling: write_budget,
            },
            Instant::now(),
        );
        Budgets {
            delay: Mutex::new(delay),
            body_bytes: Arc::new(Semaphore::new(body_budget)),
            body_budget,
            writes: Arc::new(Semaphore::new(write_budget)),
            write_budget,
            clients: Mutex::new(HashMap::new()),
            client_hasher: RandomState::new(),
        }
    }

    /// Writes admitted at once now ([`crate::delay_limit`]).
    pub fn write_limit(&self) -> usize {
        self.delay().limit(Instant::now())
    }

    fn delay(&self) -> MutexGuard<'_, DelayLimit> {
        // Each change is one write's entry and the limit: consistent even if a
        // holder panicked.
        self.delay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a write within the delay limit, until the guard is dropped.
    fn admit_delayed(self: &Arc<Self>) -> Option<DelayedWrite> {
        let id = self.delay().admit(Instant::now())?;
        Some(DelayedWrite {
            budgets: Arc::clone(self),
            id,
            measured: false,
        })
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<u64, usize>> {
        // Each change is one entry's count: consistent even if a holder panicked.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a write of `client`'s in flight (its permit of the write budget
    /// already taken), unless the node is saturated (half the write budget or more
    /// in flight) and the client already holds its fair share (the budget divided
    /// among the clients with writes in flight). A lone client's share is the whole
    /// budget, so it meets the budget's 503 first.
    fn admit_client(self: &Arc<Self>, client: u64) -> Option<ClientWrite> {
        let in_flight = self.write_budget - self.writes.available_permits().min(self.write_budget);
        let mut clients = self.clients();
        let held = clients.get(&client).copied().unwrap_or(0);
        let active = clients.len() + usize::from(held == 0);
        let fair_share = self.write_budget.div_ceil(active).max(1);
        if in_flight * 2 >= self.write_budget && held >= fair_share {
            return None;
        }
        *clients.entry(client).or_default() += 1;
        Some(ClientWrite {
            budgets: Arc::clone(self),
            client,
        })
    }

    /// Who sent a request: its credential (as `auth` reads it), else its address.
    fn client_of(&self, request: &Request) -> u64 {
        use crate::auth::Presented;
        let mut hasher = self.client_hasher.build_hasher();
        match Presented::from_headers(request.headers()) {
            Some(Presented::Token(token)) => (0u8, token).hash(&mut hasher),
            Some(Presented::Basic { user, secret }) => (1u8, user, secret).hash(&mut hasher),
            Some(Presented::Session(session)) => (2u8, session).hash(&mut hasher),
            None => (
                3u8,
                request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(peer)| peer.ip()),
            )
                .hash(&mut hasher),
        }
        hasher.finish()
    }
}

/// One client's write in flight, counted until it is dropped.
struct ClientWrite {
    budgets: Arc<Budgets>,
    client: u64,
}

impl Drop for ClientWrite {
    fn drop(&mut self) {
        let mut clients = self.budgets.clients();
        if let Some(held) = clients.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                clients.remove(&self.client);
            }
        }
    }
}

/// A write within the delay limit, in flight until it is dropped; `measured` once
/// its answer says how long the node made it wait (a success).
struct DelayedWrite {
    budgets: Arc<Budgets>,
    id: WriteId,
    measured: bool,
}

impl Drop for DelayedWrite {
    fn drop(&mut self) {
        self.budgets
            .delay()
            .done(self.id, self.measured, Instant::now());
    }
}

/// A write's request body, telling the delay limit when it has all arrived: from
/// then on the write waits for the node, not for its client.
struct BodyIn {
    inner: Body,
    write: Option<(Arc<Budgets>, WriteId)>,
}

impl BodyIn {
    fn arrived(&mut self) {
        if let Some((budgets, id)) = self.write.take() {
            budgets.delay().body_in(id, Instant::now());
        }
    }
}

impl HttpBody for BodyIn {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.arrived();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A refusal for load (`503`, or `429` for one client), counted by `reason`.
fn shed(metrics: &Metrics, reason: &str, kind: ErrorKind, message: &str) -> Response {
    metrics.shed(reason);
    ApiError::new(kind, message.to_string())
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
    let write: Option<(OwnedSemaphorePermit, ClientWrite, DelayedWrite)> = if is_write {
        let Ok(permit) = budgets.writes.clone().try_acquire_owned() else {
            return shed(
                &state.metrics,
                "writes",
                ErrorKind::Unavailable,
                "too many writes in flight; retry shortly",
            );
        };
        let Some(client_write) = budgets.admit_client(budgets.client_of(&request)) else {
            return shed(
                &state.metrics,
                "client_writes",
                ErrorKind::Throttled,
                "this client has more than its share of the writes in flight; retry shortly",
            );
        };
        let Some(delayed) = budgets.admit_delayed() else {
            return shed(
                &state.metrics,
                "write_delay",
                ErrorKind::Unavailable,
                "writes are waiting longer than the node's delay target; retry shortly",
            );
        };
        Some((permit, client_write, delayed))
    } else {
        None
    };
    let request = match &write {
        Some((_, _, delayed)) => request.map(|inner| {
            Body::new(BodyIn {
                inner,
                write: Some((Arc::clone(&delayed.budgets), delayed.id)),
            })
        }),
        None => request,
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
                    ErrorKind::Unavailable,
                    "too many request bytes in flight; retry shortly",
                )
            }
        }
    } else {
        None
    };
    let admitted = Instant::now();
    let response = next.run(request).await;
    if let Some((_, _, mut delayed)) = write {
        delayed.measured = response.status().is_success();
        state.metrics.admitted_write(admitted.elapsed());
    }
    response
}
