//! `Idempotency-Key` on the writes a client may need to retry: `POST
//! /logbook/v1/records`, `POST /logbook/v1/actions` and the journal's `POST`. A
//! retry with the same key (same caller, same endpoint) within the configured time
//! (24 h by default) gets the original answer, with `Idempotent-Replayed: true`,
//! and writes nothing; the same key with a different body gets 422 naming
//! `Idempotency-Key`; a retry while the first is still running gets 409 with
//! `Retry-After`. Answers that a retry may change (401, 403, 408, 429, 5xx, 507)
//! are not kept: the key is released, and a retry runs again.
//!
//! The key is claimed in the store once the request's body has been read to its
//! end (the body is fingerprinted as the handler reads it, never held whole, so an
//! NDJSON batch is still parsed as it arrives) and before the handler can write
//! (every write here reads its whole body first); a claim that finds an earlier
//! request ends the body with an error, and the earlier answer (or the 422, 409)
//! replaces whatever the handler made of that. A request refused before its body
//! was read to the end (401, 403, 408, 413) claims nothing. Its answer is stored
//! after, so every node of a PostgreSQL cluster honours it. A node that dies between
//! its write and storing the answer leaves the key claimed; the claim is given up
//! after a minute (`logbook_store::idempotency::LEASE`), after which a retry runs again.

use crate::error::{ApiError, ErrorKind, Rendered};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use logbook_core::Timestamp;
use logbook_store::{Claim, Store};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";
/// Longest key accepted (Stripe's limit).
const MAX_KEY: usize = 255;
/// Largest answer kept for a replay (these endpoints answer a few hundred bytes).
const MAX_ANSWER: usize = 1024 * 1024;

/// Whether `method path` is a write that takes an `Idempotency-Key`.
fn applies(method: &Method, path: &str) -> bool {
    if method != Method::POST {
        return false;
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    if matches!(
        path,
        "/logbook/v1/records" | "/logbook/v1/actions" | "/v1/journal"
    ) {
        return true;
    }
    // `/v1/{tenant_id}/journal`
    let parts: Vec<&str> = path.split('/').collect();
    matches!(parts.as_slice(), ["", "v1", tenant, "journal"] if !tenant.is_empty())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `axum::middleware::from_fn_with_state` function: see the module documentation.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    if !applies(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_string()
        }
        _ => {
            return ApiError::bad_request(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY} visible ASCII characters"),
            )
            .into_response()
        }
    };
    let (parts, body) = request.into_parts();
    // The key belongs to a caller (its credentials) and an endpoint.
    let mut scope = Sha256::new();
    scope.update(parts.uri.path().as_bytes());
    for name in [header::AUTHORIZATION.as_str(), "x-auth-token", "cookie"] {
        scope.update([0]);
        if let Some(v) = parts.headers.get(name) {
            scope.update(v.as_bytes());
        }
    }
    scope.update([0]);
    scope.update(key.as_bytes());
    let stored_key = hex(&scope.finalize());
    let mut fingerprint = Sha256::new();
    if let Some(v) = parts.headers.get(header::CONTENT_TYPE) {
        fingerprint.update(v.as_bytes());
    }
    fingerprint.update([0]);
    fingerprint.update(parts.uri.query().unwrap_or("").as_bytes());
    fingerprint.update([0]);
    let outcome = ClaimOutcome::default();
    let body = claiming_at_end(
        body,
        Claiming {
            fingerprint,
            store: Arc::clone(&state.store),
            key: stored_key.clone(),
            ttl: state.config.idempotency_ttl,
            outcome: Arc::clone(&outcome),
        },
    );
    let response = next.run(Request::from_parts(parts, body)).await;
    let claim = outcome.lock().ok().and_then(|mut claim| claim.take());
    match claim {
        // The body was not read to its end: refused before anything was claimed.
        None => response,
        Some(Err(e)) => ApiError::from(e).into_response(),
        Some(Ok(Claim::New)) => finish(&state, &stored_key, response).await,
        Some(Ok(Claim::Replay { status, body })) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            response.extensions_mut().insert(Rendered);
            response
        }
        Some(Ok(Claim::Mismatch)) => ApiError::new(
            ErrorKind::Unprocessable,
            "was used with a different request; use a new key for a new request",
        )
        .at("Idempotency-Key")
        .into_response(),
        Some(Ok(Claim::InProgress)) => {
            ApiError::conflict("a request with this key is still running")
                .at("Idempotency-Key")
                .retry_after(1)
                .into_response()
        }
    }
}

/// What the claim at the end of the body answered; empty until then.
type ClaimOutcome = Arc<Mutex<Option<logbook_store::Result<Claim>>>>;

/// A body being fingerprinted as it is read, and what to claim at its end.
struct Claiming {
    /// Of the request so far (content type, query, the body read until now).
    fingerprint: Sha256,
    store: Arc<dyn Store>,
    key: String,
    ttl: Duration,
    outcome: ClaimOutcome,
}

/// The request's body, passed through as the handler reads it; at its end the key
/// is claimed, and unless the claim is new the body ends in an error instead, so
/// the handler writes nothing.
fn claiming_at_end(body: Body, claiming: Claiming) -> Body {
    let reading = (body.into_data_stream(), Some(claiming));
    Body::from_stream(futures_util::stream::unfold(
        reading,
        |(mut data, claiming)| async move {
            let mut claiming = claiming?;
            match data.next().await {
                Some(Ok(chunk)) => {
                    claiming.fingerprint.update(&chunk);
                    Some((Ok(chunk), (data, Some(claiming))))
                }
                Some(Err(e)) => Some((Err(e), (data, None))),
                None => {
                    let fingerprint = hex(&claiming.fingerprint.finalize());
                    let now = Timestamp::now();
                    let ttl = i64::try_from(claiming.ttl.as_micros()).unwrap_or(i64::MAX);
                    let expires =
                        Timestamp::from_micros(now.micros().saturating_add(ttl)).unwrap_or(now);
                    let claim = claiming
                        .store
                        .claim_idempotency_key(&claiming.key, &fingerprint, now, expires)
                        .await;
                    let new = matches!(claim, Ok(Claim::New));
                    if let Ok(mut outcome) = claiming.outcome.lock() {
                        *outcome = Some(claim);
                    }
                    match new {
                        true => None,
                        false => Some((Err(axum::Error::new(AnsweredByKey)), (data, None))),
                    }
                }
            }
        },
    ))
}

/// Ends a body whose key was claimed before: the earlier answer is the answer.
#[derive(Debug)]
struct AnsweredByKey;

impl std::fmt::Display for AnsweredByKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the Idempotency-Key was used before")
    }
}

impl std::error::Error for AnsweredByKey {}

/// Keeps the answer for replays, or releases the key when a retry may fare better.
async fn finish(state: &AppState, key: &str, response: Response) -> Response {
    let status = response.status();
    let keep = status.is_success()
        || (status.is_client_error() && !matches!(status.as_u16(), 401 | 403 | 408 | 429));
    if !keep {
        if let Err(e) = state.store.release_idempotency_key(key).await {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_ANSWER).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "an answer too large to keep for an idempotency key");
            let _ = state.store.release_idempotency_key(key).await;
            return ApiError::internal("the answer could not be read").into_response();
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    if let Err(e) = state
        .store
        .complete_idempotency_key(key, status.as_u16(), &text)
        .await
    {
        // The write is done; a retry after the lease would run it again.
        tracing::warn!(error = %e, "could not store the answer of an idempotency key");
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_writes_take_a_key() {
        for path in [
            "/logbook/v1/records",
            "/logbook/v1/actions",
            "/v1/journal",
            "/v1/journal/",
            "/v1/p1/journal/",
        ] {
            assert!(applies(&Method::POST, path), "{path}");
        }
        assert!(!applies(&Method::GET, "/logbook/v1/records"));
        assert!(!applies(&Method::POST, "/logbook/v1/login"));
        assert!(!applies(&Method::POST, "/v1/journal/count"));
    }
}
