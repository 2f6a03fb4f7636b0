//! OpenTelemetry logs over OTLP/HTTP, `POST /v1/logs`: what the OpenTelemetry SDKs'
//! exporters and the Collector's `otlphttp` exporter send. Protobuf or JSON
//! (`application/x-protobuf`, `application/json`), optionally gzip. The answer is an
//! `ExportLogsServiceResponse` in the request's encoding, with `partial_success`
//! counting the log records refused (each one's problem is named in its message);
//! errors are a `google.rpc.Status`, with `429`/`503` and `Retry-After` under
//! overload, the only statuses the exporters retry.

use super::media_type;
use crate::auth::Principal;
use crate::body::read_decoded;
use crate::error::{ApiError, ErrorKind};
use crate::{ingest, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use logbook_core::{Level, NewRecord, Shipped};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use serde_json::{json, Map, Value};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/logs", post(export))
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

async fn export(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let encoding = match media_type(&headers).as_str() {
        "application/json" => Encoding::Json,
        _ => Encoding::Protobuf,
    };
    match export_records(&state, principal, &headers, body).await {
        Ok(response) => encode(encoding, StatusCode::OK, response),
        Err(e) => status_error(encoding, e),
    }
}

async fn export_records(
    state: &AppState,
    principal: Result<Principal, ApiError>,
    headers: &HeaderMap,
    body: Body,
) -> Result<ExportLogsServiceResponse, ApiError> {
    let principal = principal?;
    principal.require_write()?;
    let request = match media_type(headers).as_str() {
        "application/x-protobuf" | "application/protobuf" => {
            let bytes = read_decoded(headers, body, state.config.max_body_bytes).await?;
            ExportLogsServiceRequest::decode(&bytes[..]).map_err(|e| {
                ApiError::bad_request(
                    "body",
                    format!("is not a protobuf ExportLogsServiceRequest: {e}"),
                )
            })?
        }
        "application/json" => {
            let bytes = read_decoded(headers, body, state.config.max_body_bytes).await?;
            serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::bad_request(
                    "body",
                    format!("is not an OTLP/JSON ExportLogsServiceRequest: {e}"),
                )
            })?
        }
        other => {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                format!(
                "{other:?} is not an OTLP encoding (application/x-protobuf or application/json)"
            ),
            )
            .at("content-type"))
        }
    };
    let (records, refused) = request_records(request);
    if !records.is_empty() {
        ingest::append(state, &principal, records, |i, field| {
            format!("[{i}].{field}")
        })
        .await?;
    }
    let partial_success = (!refused.is_empty()).then(|| ExportLogsPartialSuccess {
        rejected_log_records: refused.len() as i64,
        error_message: refused.join("; "),
    });
    Ok(ExportLogsServiceResponse { partial_success })
}

/// Maps every log record; those that cannot be stored are named, not written.
pub(crate) fn request_records(request: ExportLogsServiceRequest) -> (Vec<NewRecord>, Vec<String>) {
    let mut records = Vec::new();
    let mut refused = Vec::new();
    for (r, resource_logs) in request.resource_logs.into_iter().enumerate() {
        let resource = resource_logs
            .resource
            .map(|resource| resource.attributes)
            .unwrap_or_default();
        for (s, scope_logs) in resource_logs.scope_logs.into_iter().enumerate() {
            let scope = scope_logs.scope.unwrap_or_default();
            for (l, log) in scope_logs.log_records.into_iter().enumerate() {
                match log_record(&resource, &scope.name, &scope.version, log) {
                    Ok(record) => records.push(record),
                    Err(e) => refused.push(format!(
                        "resourceLogs[{r}].scopeLogs[{s}].logRecords[{l}]: {} {}",
                        e.field, e.problem
                    )),
                }
            }
        }
    }
    (records, refused)
}

const RESOURCE_FIELDS: [(&str, &[&str]); 2] = [
    ("source", &["service.name"]),
    ("instance", &["service.instance.id", "host.name"]),
];

fn log_record(
    resource: &[KeyValue],
    scope_name: &str,
    scope_version: &str,
    log: LogRecord,
) -> Result<NewRecord, logbook_core::FieldError> {
    let mut shipped = Shipped::new();
    shipped
        .ts_nanos(log.time_unix_nano)
        .ts_nanos(log.observed_time_unix_nano);
    shipped.level(Level::from_otel_severity_number(i64::from(
        log.severity_number,
    )));
    if !log.severity_text.is_empty() {
        shipped.level(Level::from_label(&log.severity_text));
        shipped.data("severity_text", json!(log.severity_text));
    }
    // The first of each list present names the field; the rest is `data.resource`.
    let text = |key: &str| {
        resource.iter().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            }
        })
    };
    let mut mapped: Vec<&str> = Vec::new();
    for (field, keys) in RESOURCE_FIELDS {
        if let Some((key, value)) = keys.iter().find_map(|k| text(k).map(|v| (*k, v))) {
            shipped.offer(field, value);
            mapped.push(key);
        }
    }
    for kv in resource {
        if !mapped.contains(&kv.key.as_str()) {
            shipped.data_in("resource", kv.key.clone(), any_value(kv.value.as_ref()));
        }
    }
    shipped.offer("logger", scope_name);
    if !scope_version.is_empty() {
        shipped.data("scope_version", json!(scope_version));
    }
    match log.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => {
            shipped.offer("message", text.clone());
        }
        Some(_) => {
            shipped.data("body", any_value(log.body.as_ref()));
        }
        None => {}
    }
    if !log.trace_id.is_empty() {
        shipped.data("trace_id", json!(hex(&log.trace_id)));
    }
    if !log.span_id.is_empty() {
        shipped.data("span_id", json!(hex(&log.span_id)));
    }
    if !log.event_name.is_empty() {
        shipped.data("event_name", json!(log.event_name));
    }
    for kv in log.attributes {
        shipped.data(kv.key, any_value(kv.value.as_ref()));
    }
    shipped.finish()
}

/// An attribute value as JSON: numbers as numbers, bytes as base64.
fn any_value(value: Option<&AnyValue>) -> Value {
    match value.and_then(|v| v.value.as_ref()) {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.iter().map(|v| any_value(Some(v))).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => Value::Object(
            list.values
                .iter()
                .map(|kv| (kv.key.clone(), any_value(kv.value.as_ref())))
                .collect::<Map<_, _>>(),
        ),
        Some(any_value::Value::BytesValue(bytes)) => {
            json!(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        // Only meaningful inside profiles; a log record has no string table.
        Some(any_value::Value::StringValueStrindex(_)) => Value::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode(encoding: Encoding, status: StatusCode, response: ExportLogsServiceResponse) -> Response {
    match encoding {
        Encoding::Protobuf => (
            status,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            response.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => {
            // A full success is `{}`, as the collector answers, not a null field.
            let mut body = serde_json::to_value(&response).unwrap_or_else(|_| json!({}));
            if let Some(map) = body.as_object_mut() {
                map.retain(|_, v| !v.is_null());
            }
            (status, axum::Json(body)).into_response()
        }
    }
}

/// `google.rpc.Status`, the body of OTLP/HTTP error answers.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn status_error(encoding: Encoding, e: ApiError) -> Response {
    // gRPC codes: INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED,
    // RESOURCE_EXHAUSTED, UNAVAILABLE, else INTERNAL.
    let code = match e.kind {
        ErrorKind::Unauthenticated => 16,
        ErrorKind::Forbidden => 7,
        ErrorKind::Throttled | ErrorKind::TooLarge | ErrorKind::InsufficientStorage => 8,
        ErrorKind::Unavailable => 14,
        ErrorKind::Internal => 13,
        _ => 3,
    };
    let status = RpcStatus {
        code,
        message: e.describe(),
    };
    match encoding {
        Encoding::Json => e.respond_with(json!({"code": status.code, "message": status.message})),
        Encoding::Protobuf => e.respond_with_body((
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            status.encode_to_vec(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_core::Timestamp;
    use logbook_store::StoreError;

    #[tokio::test]
    async fn a_busy_store_is_a_retryable_503_in_either_encoding() {
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            let response = status_error(encoding, ApiError::from(StoreError::Busy));
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()["retry-after"], "1");
        }
        let bytes = axum::body::to_bytes(
            status_error(Encoding::Protobuf, ApiError::from(StoreError::Busy)).into_body(),
            1024,
        )
        .await
        .expect("body");
        let status = RpcStatus::decode(&bytes[..]).expect("google.rpc.Status");
        assert_eq!(status.code, 14, "UNAVAILABLE");
    }

    #[test]
    fn json_requests_map_with_ids_in_hex_and_integers_either_way() {
        let request: ExportLogsServiceRequest = serde_json::from_value(json!({
            "resourceLogs": [{
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": "checkout"}},
                    {"key": "host.name", "value": {"stringValue": "node-1"}},
                    {"key": "service.instance.id", "value": {"stringValue": "pod-7"}},
                    {"key": "deployment.environment", "value": {"stringValue": "prod"}}
                ]},
                "scopeLogs": [{
                    "scope": {"name": "app.payments", "version": "2.1"},
                    "logRecords": [{
                        "timeUnixNano": "1714560000000001000",
                        "observedTimeUnixNano": 1714560000000002000u64,
                        "severityNumber": 17,
                        "severityText": "ERROR",
                        "body": {"stringValue": "card declined"},
                        "traceId": "5b8efff798038103d269b633813fc60c",
                        "spanId": "eee19b7ec3c1b174",
                        "attributes": [
                            {"key": "retries", "value": {"intValue": "3"}},
                            {"key": "amount", "value": {"intValue": 42}}
                        ]
                    }, {
                        "body": {"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": true}}]}},
                        "severityText": "notice"
                    }]
                }]
            }]
        }))
        .expect("OTLP/JSON");
        let (records, refused) = request_records(request);
        assert!(refused.is_empty());
        let first = &records[0];
        assert_eq!(first.ts, Some(Timestamp(1_714_560_000_000_001)));
        assert_eq!(first.level, Some(Level::Error));
        assert_eq!(first.source.as_deref(), Some("checkout"));
        assert_eq!(first.instance.as_deref(), Some("pod-7"));
        assert_eq!(first.logger.as_deref(), Some("app.payments"));
        assert_eq!(first.message.as_deref(), Some("card declined"));
        let data = Value::Object(first.data.clone().expect("data"));
        assert_eq!(data["trace_id"], "5b8efff798038103d269b633813fc60c");
        assert_eq!(data["span_id"], "eee19b7ec3c1b174");
        assert_eq!(data["retries"], 3);
        assert_eq!(data["amount"], 42);
        assert_eq!(
            data["resource"],
            json!({"host.name": "node-1", "deployment.environment": "prod"})
        );
        let second = &records[1];
        assert_eq!(second.level, Some(Level::Info));
        assert_eq!(second.message, None);
        assert_eq!(
            second.data.as_ref().expect("data")["body"],
            json!({"a": true})
        );
    }

    #[test]
    fn a_record_that_cannot_be_stored_is_refused_alone() {
        let request: ExportLogsServiceRequest = serde_json::from_value(json!({
            "resourceLogs": [{"scopeLogs": [{"logRecords": [
                {"body": {"stringValue": "fine"}},
                {"body": {"stringValue": "nul \u{0} inside"}}
            ]}]}]
        }))
        .expect("OTLP/JSON");
        let (records, refused) = request_records(request);
        assert_eq!(records.len(), 1);
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0].starts_with("resourceLogs[0].scopeLogs[0].logRecords[1]: message"),
            "{refused:?}"
        );
    }
}
