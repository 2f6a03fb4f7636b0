//! The trivial handler the single-POST rate is compared with: the same axum/hyper
//! stack and the same request shape, answering at once without touching a store.

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use clap::Args;
use serde_json::{json, Value};
use std::net::SocketAddr;

#[derive(Args, Debug)]
pub struct NoopArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

pub async fn run(args: NoopArgs) -> anyhow::Result<()> {
    let app = Router::new().route("/noop", post(accept));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("logbook listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(terminated())
        .await?;
    Ok(())
}

/// Parses the JSON body like the real ingest does, then answers like it.
async fn accept(Json(record): Json<Value>) -> (StatusCode, Json<Value>) {
    let accepted = usize::from(record.is_object());
    (
        StatusCode::CREATED,
        Json(json!({"accepted": accepted, "first_id": 1, "last_id": 1})),
    )
}

async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
