//! Elasticsearch bulk ingest under `/es/`, so a shipper pointed at
//! `http://host:port/es` (Fluent Bit, Vector, Logstash, Filebeat, the official
//! clients' `helpers.bulk`) writes records. `index` and `create` actions ingest;
//! `delete` and `update` answer a per-item error (records are append-only). ECS
//! fields map onto the record (see `docs/ingest.md`), the rest of the document is
//! `data`. Every item's status says whether it was written: the good ones are
//! appended together, atomically; a bad one is refused alone.

use crate::auth::Principal;
use crate::body::read_decoded;
use crate::error::{ApiError, ErrorKind};
use crate::{ingest, AppState};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use logbook_core::{Level, NewRecord, Shipped, Timestamp};
use serde_json::{json, Map, Value};
use std::time::Instant;

/// The Elasticsearch version announced: the 8.x API that shippers' "auto" modes
/// and the 8.x and 9.x clients all speak for `_bulk`.
const VERSION: &str = "8.17.0";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/es", get(root))
        .route("/es/", get(root))
        .route("/es/_cluster/health", get(health))
        .route("/es/_bulk", post(bulk_default).put(bulk_default))
        .route("/es/{index}/_bulk", post(bulk_into).put(bulk_into))
}

/// `GET /es/`: the document clients read first to learn what they talk to.
async fn root(principal: Result<Principal, ApiError>) -> Response {
    if let Err(e) = principal {
        return EsError(e).into_response();
    }
    elastic(
        StatusCode::OK,
        json!({
            "name": "logbook",
            "cluster_name": "logbook",
            "cluster_uuid": "logbook",
            "version": {
                "number": VERSION,
                "build_flavor": "default",
                "build_type": "logbook",
                "lucene_version": "9.12.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0"
            },
            "tagline": "You Know, for Search"
        }),
    )
}

/// `GET /es/_cluster/health`: what shippers' health checks (Vector's) ask.
async fn health(principal: Result<Principal, ApiError>) -> Response {
    if let Err(e) = principal {
        return EsError(e).into_response();
    }
    elastic(
        StatusCode::OK,
        json!({"cluster_name": "logbook", "status": "green", "timed_out": false,
               "number_of_nodes": 1, "number_of_data_nodes": 1}),
    )
}

async fn bulk_default(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    bulk(state, principal, None, headers, body).await
}

async fn bulk_into(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    bulk(state, principal, Some(index), headers, body).await
}

async fn bulk(
    state: AppState,
    principal: Result<Principal, ApiError>,
    index: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    match bulk_items(&state, principal, index, &headers, body).await {
        Ok(items) => {
            let errors = items.iter().any(|item| item.status >= 300);
            let items: Vec<Value> = items.into_iter().map(Item::render).collect();
            elastic(
                StatusCode::OK,
                json!({
                    "took": started.elapsed().as_millis() as u64,
                    "errors": errors,
                    "items": items,
                }),
            )
        }
        Err(e) => e.into_response(),
    }
}

/// One action's outcome, in request order.
pub(crate) struct Item {
    op: &'static str,
    index: Option<String>,
    id: Option<String>,
    status: u16,
    error: Option<(&'static str, String)>,
}

impl Item {
    fn refused(op: &'static str, meta: &Meta, kind: &'static str, reason: String) -> Item {
        Item {
            op,
            index: meta.index.clone(),
            id: meta.id.clone(),
            status: 400,
            error: Some((kind, reason)),
        }
    }

    fn render(self) -> Value {
        let mut body = json!({"_index": self.index, "_id": self.id, "status": self.status});
        match self.error {
            Some((kind, reason)) => body["error"] = json!({"type": kind, "reason": reason}),
            None => {
                body["_version"] = json!(1);
                body["result"] = json!("created");
                body["_shards"] = json!({"total": 1, "successful": 1, "failed": 0});
                body["_seq_no"] = json!(0);
                body["_primary_term"] = json!(1);
            }
        }
        json!({ self.op: body })
    }
}

/// An action line's metadata.
struct Meta {
    index: Option<String>,
    id: Option<String>,
}

async fn bulk_items(
    state: &AppState,
    principal: Result<Principal, ApiError>,
    default_index: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<Item>, EsError> {
    let principal = principal?;
    principal.require_write()?;
    let bytes = read_decoded(headers, body, state.config.max_body_bytes).await?;
    let (mut items, records) = parse_bulk(&bytes, default_index)?;
    if !records.is_empty() {
        let (positions, records): (Vec<usize>, Vec<NewRecord>) = records.into_iter().unzip();
        let appended = ingest::append(state, &principal, records, |i, field| {
            format!("[{}].{field}", positions.get(i).copied().unwrap_or(i))
        })
        .await?;
        // Ids are given in the batch's order; an item without `_id` gets its record's.
        for (k, position) in positions.into_iter().enumerate() {
            if let (Some(item), Some(first)) = (items.get_mut(position), appended.first_id) {
                item.id
                    .get_or_insert_with(|| (first + k as i64).to_string());
            }
        }
    }
    Ok(items)
}

/// Reads a bulk body into its items, in request order, and the records to write,
/// each with its item's position.
#[allow(clippy::type_complexity)]
pub(crate) fn parse_bulk(
    bytes: &[u8],
    default_index: Option<String>,
) -> Result<(Vec<Item>, Vec<(usize, NewRecord)>), ApiError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| ApiError::bad_request("body", "is not UTF-8"))?;
    let mut lines = text
        .split('\n')
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    let mut items = Vec::new();
    // Items to write, as (position in `items`, record).
    let mut records: Vec<(usize, NewRecord)> = Vec::new();
    while let Some((number, line)) = lines.next() {
        let (op, meta) = action(line, number, default_index.as_deref())?;
        let source = match op {
            "delete" => None,
            _ => Some(lines.next().ok_or_else(|| {
                ApiError::bad_request(
                    format!("line {}", number + 1),
                    format!("the {op} action has no document line after it"),
                )
            })?),
        };
        let item = match (op, source) {
            ("index" | "create", Some((source_number, source))) => {
                match document(source, source_number, meta.index.as_deref()) {
                    Ok(mut record) => {
                        if let Some(id) = &meta.id {
                            record
                                .data
                                .get_or_insert_with(Map::new)
                                .insert("_id".into(), json!(id));
                        }
                        records.push((items.len(), record));
                        Item {
                            op,
                            index: meta.index,
                            id: meta.id,
                            status: 201,
                            error: None,
                        }
                    }
                    Err((kind, reason)) => Item::refused(op, &meta, kind, reason),
                }
            }
            (op, _) => Item::refused(
                op,
                &meta,
                "illegal_argument_exception",
                format!("Logbook records are append-only: the {op} action is not supported"),
            ),
        };
        items.push(item);
    }
    if items.is_empty() {
        return Err(ApiError::bad_request("body", "contains no bulk actions"));
    }
    Ok((items, records))
}

/// Reads an action line: `{"index": {"_index": "logs", "_id": "1"}}`.
fn action(
    line: &str,
    number: usize,
    default_index: Option<&str>,
) -> Result<(&'static str, Meta), ApiError> {
    let field = || format!("line {}", number + 1);
    let value: Value = serde_json::from_str(line)
        .map_err(|e| ApiError::bad_request(field(), format!("is not a JSON action: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request(field(), "must be an action object"));
    };
    let mut entries = map.into_iter();
    let (Some((name, meta)), None) = (entries.next(), entries.next()) else {
        return Err(ApiError::bad_request(
            field(),
            "must name exactly one action (index, create, delete or update)",
        ));
    };
    let op = match name.as_str() {
        "index" => "index",
        "create" => "create",
        "delete" => "delete",
        "update" => "update",
        other => {
            return Err(ApiError::bad_request(
                field(),
                format!("unknown action {other:?} (index, create, delete or update)"),
            ))
        }
    };
    let text = |key: &str| match meta.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let meta = Meta {
        index: text("_index").or_else(|| default_index.map(str::to_string)),
        id: text("_id"),
    };
    Ok((op, meta))
}

/// Maps one document onto a record; a refusal is (ES error type, reason).
fn document(
    line: &str,
    number: usize,
    index: Option<&str>,
) -> Result<NewRecord, (&'static str, String)> {
    let parsing = "document_parsing_exception";
    let value: Value = serde_json::from_str(line).map_err(|e| {
        (
            parsing,
            format!("line {}: the document is not JSON: {e}", number + 1),
        )
    })?;
    let Value::Object(mut doc) = value else {
        return Err((parsing, "the document must be a JSON object".into()));
    };
    let mut shipped = Shipped::new();
    if let Some(ts) = take(&mut doc, "@timestamp") {
        let parsed = match &ts {
            // Elasticsearch's default date format: ISO 8601 or epoch milliseconds.
            Value::Number(n) => n
                .as_f64()
                .and_then(|ms| Timestamp::from_epoch_seconds(ms / 1e3)),
            Value::String(s) => Timestamp::parse(s).or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .and_then(|ms| Timestamp::from_epoch_seconds(ms / 1e3))
            }),
            _ => None,
        };
        shipped.ts(parsed.ok_or_else(|| {
            (
                parsing,
                format!("[@timestamp] {ts} is not an ISO 8601 date or epoch milliseconds"),
            )
        })?);
    }
    for (path, field) in [
        ("message", "message"),
        ("service.name", "source"),
        ("host.name", "instance"),
        ("log.logger", "logger"),
        ("category", "category"),
    ] {
        if let Some(value) = take(&mut doc, path) {
            match value {
                Value::String(s) => {
                    shipped.offer(field, s);
                }
                Value::Null => {}
                other => {
                    doc.insert(path.into(), other);
                }
            }
        }
    }
    if let Some(level) = take(&mut doc, "log.level") {
        match level.as_str().and_then(Level::from_label) {
            Some(l) => {
                shipped.level(Some(l));
            }
            None => {
                doc.insert("log.level".into(), level);
            }
        }
    }
    if let Some(index) = index {
        shipped.offer("category", index);
    }
    for (key, value) in doc {
        shipped.data(key, value);
    }
    shipped
        .finish()
        .map_err(|e| (parsing, format!("[{}] {}", e.field, e.problem)))
}

/// Removes a field given as a dotted key (`"log.level": ...`) or nested
/// (`"log": {"level": ...}`), dropping parents it leaves empty.
fn take(doc: &mut Map<String, Value>, path: &str) -> Option<Value> {
    if let Some(value) = doc.remove(path) {
        return Some(value);
    }
    let (head, rest) = path.split_once('.')?;
    let Some(Value::Object(inner)) = doc.get_mut(head) else {
        return None;
    };
    let value = take(inner, rest);
    if inner.is_empty() {
        doc.remove(head);
    }
    value
}

/// A JSON answer with the header the official clients insist on.
fn elastic(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// An [`ApiError`] in Elasticsearch's error shape.
struct EsError(ApiError);

impl From<ApiError> for EsError {
    fn from(e: ApiError) -> Self {
        EsError(e)
    }
}

impl IntoResponse for EsError {
    fn into_response(self) -> Response {
        let e = self.0;
        let kind = match e.kind {
            ErrorKind::Unauthenticated | ErrorKind::Forbidden => "security_exception",
            ErrorKind::TooLarge => "content_too_long_exception",
            ErrorKind::Throttled | ErrorKind::Unavailable | ErrorKind::InsufficientStorage => {
                "es_rejected_execution_exception"
            }
            ErrorKind::Internal => "exception",
            _ => "parse_exception",
        };
        let cause = json!({"type": kind, "reason": e.describe()});
        let mut response = e.respond_with(json!({
            "error": {"root_cause": [cause.clone()], "type": kind, "reason": e.describe()},
            "status": e.status().as_u16(),
        }));
        let headers = response.headers_mut();
        headers.insert(
            "x-elastic-product",
            HeaderValue::from_static("Elasticsearch"),
        );
        if e.kind == ErrorKind::Unauthenticated {
            headers.insert(
                "www-authenticate",
                HeaderValue::from_static("Basic realm=\"security\" charset=\"UTF-8\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_action_or_document_line_maps_or_is_refused(line in "[ -~]{0,80}") {
            if let Err(e) = action(&line, 0, None) {
                proptest::prop_assert_eq!(e.field.as_deref(), Some("line 1"));
            }
            if let Err((kind, _)) = document(&line, 0, Some("i")) {
                proptest::prop_assert_eq!(kind, "document_parsing_exception");
            }
        }
    }

    #[test]
    fn a_busy_store_is_a_retryable_503_in_elasticsearch_shape() {
        let response = EsError(ApiError::from(logbook_store::StoreError::Busy)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    }

    #[test]
    fn ecs_fields_map_onto_the_record_and_the_rest_is_data() {
        let record = document(
            r#"{"@timestamp":"2024-05-01T10:40:00.5Z","message":"m","log":{"level":"warn","logger":"app.db","file":"x.py"},
                "service":{"name":"api"},"host.name":"node-1","trace.id":"abc"}"#,
            1,
            Some("logs-app"),
        )
        .expect("maps");
        assert_eq!(record.ts, Some(Timestamp(1_714_560_000_500_000)));
        assert_eq!(record.level, Some(Level::Warn));
        assert_eq!(record.message.as_deref(), Some("m"));
        assert_eq!(record.source.as_deref(), Some("api"));
        assert_eq!(record.instance.as_deref(), Some("node-1"));
        assert_eq!(record.logger.as_deref(), Some("app.db"));
        assert_eq!(record.category.as_deref(), Some("logs-app"));
        assert_eq!(
            Value::Object(record.data.expect("data")),
            json!({"log": {"file": "x.py"}, "trace.id": "abc"})
        );
    }

    #[test]
    fn epoch_milliseconds_and_unknown_levels_are_kept() {
        let record = document(
            r#"{"@timestamp":1714560000123,"log.level":"verbose","category":"audit"}"#,
            1,
            Some("ignored"),
        )
        .expect("maps");
        assert_eq!(record.ts, Some(Timestamp(1_714_560_000_123_000)));
        assert_eq!(record.level, None);
        assert_eq!(record.category.as_deref(), Some("audit"));
        assert_eq!(record.data.expect("data")["log.level"], "verbose");
        let (kind, _) = document(r#"{"@timestamp":"soon"}"#, 1, None).expect_err("bad date");
        assert_eq!(kind, "document_parsing_exception");
    }
}
