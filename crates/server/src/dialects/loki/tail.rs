//! `GET /loki/api/v1/tail`: live lines over a WebSocket in Loki's message shape
//! (`{"streams": [...]}`), on the shared subscription engine (`crate::stream`), so
//! it never drops a line and has no maximum duration.
//!
//! Logbook adds a `cursor` to every message: the position after its last line. A
//! client that reconnects with `cursor=<that>` (and, as Loki clients do, `start`)
//! receives every matching line written since, exactly once, in commit order,
//! whatever their timestamps; without a cursor the tail starts, as Loki's does,
//! with the newest `limit` lines since `start` and then follows.

use super::lines;
use super::logql::Expr;
use super::params::{self, micros_ceil};
use super::pipeline::{Entry, Pipeline};
use super::plan::plan;
use super::query::{parse_query, regex_error};
use super::stats::Stats;
use super::{Context, LokiError};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::stream::{End, RecordFeed, Subscription};
use crate::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::FutureExt;
use logbook_core::query::{Comparison, Scalar};
use logbook_core::{Condition, Cursor, Field};
use serde_json::json;
use std::time::Duration;

/// Idle tails get a ping this often, well under common proxy timeouts.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Lines of history sent before following, unless the client says otherwise.
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 10_000;
/// Lines per message at most when many are ready at once.
const BATCH: usize = 100;
/// Loki refuses a longer `delay_for`.
const MAX_DELAY_SECONDS: u64 = 5;
/// A send that takes longer than this means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

struct Tail {
    pipeline: Pipeline,
    subscription: Subscription<RecordFeed>,
    history: Vec<Entry>,
    categorize: bool,
}

pub(super) async fn tail(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, LokiError> {
    let params = Params::parse(raw.as_deref())?;
    let Expr::Log(query) = parse_query(params.get("query"))? else {
        return Err(ApiError::bad_request("query", "only log queries can be tailed").into());
    };
    let limit = params::limit(&params, DEFAULT_LIMIT, MAX_LIMIT)?;
    let delay = params
        .parsed::<u64>("delay_for", "a whole number of seconds")?
        .unwrap_or(0);
    if delay > MAX_DELAY_SECONDS {
        return Err(ApiError::bad_request(
            "delay_for",
            format!("delay_for can't be greater than {MAX_DELAY_SECONDS}"),
        )
        .into());
    }
    let start =
        params::time(&params, "start")?.unwrap_or_else(|| params::now() - 3_600_000_000_000);
    let cursor = params.non_empty("cursor").map(Cursor::decode).transpose()?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(
            "upgrade",
            format!("the tail speaks WebSocket only: {rejection}"),
        )
    })?;
    let selection = plan(&query).map_err(regex_error)?;
    let ctx = Context::new(&state, &principal);
    let filter = ctx.scoped(selection.conditions.clone());
    // Subscribe before reading the history, so nothing committed between is lost.
    let subscription = state.streams.records(
        state.store.clone(),
        filter,
        cursor.map(|c| c.0),
        state.shutdown.clone(),
    );
    let history = match cursor {
        Some(_) => Vec::new(),
        None => {
            history(
                &ctx,
                &selection.conditions,
                &selection.pipeline,
                start,
                subscription.position(),
                limit,
            )
            .await?
        }
    };
    let tail = Tail {
        pipeline: selection.pipeline,
        subscription,
        history,
        categorize: params::categorize_labels(&headers),
    };
    Ok(upgrade.on_upgrade(move |socket| serve(socket, tail)))
}

/// The newest `limit` matching lines since `start`, up to the subscription's
/// starting point, oldest first.
async fn history(
    ctx: &Context<'_>,
    conditions: &[Condition],
    pipeline: &Pipeline,
    start: params::Nanos,
    up_to: i64,
    limit: u64,
) -> Result<Vec<Entry>, ApiError> {
    let mut conditions = conditions.to_vec();
    conditions.push(Condition::Compare(
        Field::Ts,
        Comparison::Ge,
        Scalar::Int(micros_ceil(start)),
    ));
    conditions.push(Condition::Compare(
        Field::Id,
        Comparison::Le,
        Scalar::Int(up_to),
    ));
    let take = lines::Take {
        forward: false,
        limit,
        interval: 0,
    };
    let mut entries =
        lines::select_lines(ctx, conditions, pipeline, take, &mut Stats::default()).await?;
    entries.reverse();
    Ok(entries)
}

fn message(entries: &[Entry], cursor: i64, categorize: bool) -> String {
    let mut body = json!({
        "streams": lines::streams(entries, categorize),
        "cursor": Cursor(cursor).encode(),
    });
    if categorize {
        body["encodingFlags"] = json!(["categorize-labels"]);
    }
    body.to_string()
}

async fn send(socket: &mut WebSocket, text: String) -> Result<(), End> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        // The client went away: nothing to tell it.
        Ok(Err(_)) => Err(End::Shutdown),
        Err(_) => Err(End::TooSlow),
    }
}

async fn serve(mut socket: WebSocket, mut tail: Tail) {
    // The first message always goes out, even without history: it tells the client
    // the subscription exists (every line after it will be delivered) and its cursor.
    let first = message(&tail.history, tail.subscription.position(), tail.categorize);
    if send(&mut socket, first).await.is_err() {
        return;
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    let end = loop {
        tokio::select! {
            next = tail.subscription.next() => match next {
                Ok(live) => {
                    let mut entries: Vec<Entry> = tail.pipeline.process(&live.record).into_iter().collect();
                    // Whatever else is ready goes in the same message.
                    while entries.len() < BATCH {
                        match tail.subscription.next().now_or_never() {
                            Some(Ok(live)) => entries.extend(tail.pipeline.process(&live.record)),
                            Some(Err(end)) => {
                                let _ = flush(&mut socket, &entries, &tail).await;
                                close(&mut socket, end, tail.subscription.position()).await;
                                return;
                            }
                            None => break,
                        }
                    }
                    if entries.is_empty() {
                        continue;
                    }
                    if let Err(end) = flush(&mut socket, &entries, &tail).await {
                        break end;
                    }
                }
                Err(end) => break end,
            },
            _ = heartbeat.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    };
    close(&mut socket, end, tail.subscription.position()).await;
}

async fn flush(socket: &mut WebSocket, entries: &[Entry], tail: &Tail) -> Result<(), End> {
    if entries.is_empty() {
        return Ok(());
    }
    send(
        socket,
        message(entries, tail.subscription.position(), tail.categorize),
    )
    .await
}

/// Ends the tail with a close frame that says why and where to resume.
async fn close(socket: &mut WebSocket, end: End, position: i64) {
    if let End::StoreFailed(detail) = &end {
        tracing::warn!("Loki tail ended by a store error: {detail}");
    }
    let code = match end {
        End::Shutdown => 1001,
        End::TooSlow => 1008,
        End::StoreFailed(_) => 1011,
        End::Finished => 1000,
    };
    let reason = format!(
        "{}; resume with cursor={}",
        end.reason(),
        Cursor(position).encode()
    );
    let _ = tokio::time::timeout(
        SEND_TIMEOUT,
        socket.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))),
    )
    .await;
}
