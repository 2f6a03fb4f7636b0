//! Load shedding and limits, so a node under more load than it can take refuses
//! the excess at once instead of queueing it (and its memory):
//!
//! - a budget of request body bytes in flight across all requests (the declared
//!   `Content-Length`, or the body limit when none is declared): a request that does
//!   not fit gets `503` with `Retry-After` before its body is read;
//! - a budget of writes in flight (POST, PUT, PATCH, DELETE): beyond it, `503` with
//!   `Retry-After` at once, not after waiting in the store's queue;
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

use crate::error::{ApiError, ErrorKind};
use crate::metrics::Metrics;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
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
}

impl Budgets {
    pub fn new(body_budget: usize, writes: usize) -> Budgets {
        let body_budget = body_budget.clamp(1, Semaphore::MAX_PERMITS);
        let write_budget = writes.clamp(1, Semaphore::MAX_PERMITS);
        Budgets {
            body_bytes: Arc::new(Semaphore::new(body_budget)),
            body_budget,
            writes: Arc::new(Semaphore::new(write_budget)),
            write_budget,
            clients: Mutex::new(HashMap::new()),
            client_hasher: RandomState::new(),
        }
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
    let write: Option<(OwnedSemaphorePermit, ClientWrite)> = if is_write {
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
        Some((permit, client_write))
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
    if write.is_some() {
        state.metrics.admitted_write(admitted.elapsed());
    }
    response
}
