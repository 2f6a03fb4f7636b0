//! The OpenAPI 3.1 document of the native API (`GET /logbook/v1/openapi.json`).
//!
//! The handlers build their answers with `json!`, so the shapes are described here
//! by types that exist only for the document; every handler carries its
//! `#[utoipa::path]` (method, path, parameters, bodies, statuses) and is routed by
//! `utoipa_axum::routes!` from that same attribute, so a route cannot be served
//! without being in the document. Schemathesis checks the answers against these
//! shapes in the suite, which is what keeps them true.
//!
//! The document is authenticated like the rest of the API (any role may read it):
//! it says nothing a client of the API does not already learn from using it, but
//! the service's policy is that only health checks answer anonymously.

// The types below are never built: they only describe JSON the handlers write.
#![allow(dead_code)]

use super::filters::{DEFAULT_LIMIT, MAX_LIMIT};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoParams, ToSchema};

/// The base document: metadata, security schemes, the error shape and the
/// statuses every operation may answer. Paths come from the router.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "Logbook native API",
        description = "Logbook's own API under /logbook/v1: records, integrity proofs, \
            objects, actions, accounts and live streams. Every error is JSON: \
            `{\"error\": \"field: problem\", \"status\": N, \"field\": \"...\"}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody, Level, Kind, ActionState, Role, SortOrder, ExportFormat)),
    security(("basic" = []), ("bearer" = []), ("session" = [])),
    tags(
        (name = "records", description = "Append and query log, event and journal records"),
        (name = "integrity", description = "The Merkle tree over every record, signed checkpoints and proofs"),
        (name = "objects", description = "The registry of what a platform manages"),
        (name = "actions", description = "Tracked operations with a lifecycle and log lines"),
        (name = "accounts", description = "Users and API tokens (administrators manage users)"),
        (name = "session", description = "Login sessions and the caller's identity"),
        (name = "operations", description = "Health checks, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the security schemes and, to every operation, a unique id and the error
/// answers common to all of them, so each handler lists only its own. Run on the
/// whole document, once the router has added the paths.
pub fn complete(openapi: &mut OpenApi) {
    {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`logbook token create`); `Authorization: Token <t>` works too",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "logbook_session",
                "The cookie POST /logbook/v1/login sets",
            ))),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation.as_mut() {
                    // Handler names repeat across modules (`list`, `get_one`);
                    // operation ids must be unique in the document.
                    operation.operation_id = Some(operation_id(method, path));
                    add_common_errors(operation, method != "get");
                }
            }
        }
    }
}

/// `get /logbook/v1/records/{id}` is `get_records_id`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .trim_start_matches("/logbook/v1")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    format!("{method}_{}", words.join("_"))
}

fn add_common_errors(operation: &mut Operation, writes: bool) {
    // An empty requirement list marks the public health checks.
    let public = operation
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
    let mut common: Vec<(&str, &str)> = vec![
        (
            "400",
            "A parameter or the body is invalid; `field` names it",
        ),
        ("408", "The request body did not arrive in time"),
        (
            "429",
            "Too many requests; retry after `Retry-After` seconds",
        ),
        (
            "503",
            "The store is busy or unreachable, or the node is stopping",
        ),
    ];
    if !public {
        common.push(("401", "Credentials missing or wrong"));
        common.push(("403", "The caller's role may not do this"));
    }
    if writes {
        common.push(("413", "The body is larger than the configured limit"));
        common.push((
            "415",
            "A body in a media type or encoding the endpoint does not take",
        ));
        common.push(("507", "The disk holding the store is full"));
    }
    for (status, description) in common {
        if operation.responses.responses.contains_key(status) {
            continue;
        }
        operation
            .responses
            .responses
            .insert(status.to_string(), RefOr::T(error_response(description)));
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Every error of the native API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The problem, prefixed by the field at fault when there is one.
    error: String,
    /// The HTTP status, repeated.
    status: u16,
    /// The parameter, body field (`[3].level` in a batch) or header at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Log,
    Event,
    Journal,
}

#[derive(Debug, Serialize, ToSchema)]
pub enum ActionState {
    Pending,
    #[serde(rename = "In progress")]
    InProgress,
    Canceling,
    Canceled,
    Success,
    Failed,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Auditor,
    User,
    Writer,
}

/// A time as RFC 3339 text or epoch seconds.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TimeValue {
    Text(String),
    Seconds(f64),
}

/// A stored record as every read answers it; absent fields are omitted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Record {
    id: i64,
    #[schema(format = DateTime)]
    ts: String,
    kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logger: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Map<String, Value>>,
}

/// A record to append. Every field is optional: `kind` defaults to `log`, `ts` to
/// the time of arrival. Text fields hold at most 64 KiB and no NUL character.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    /// Ignored: ids are assigned by the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<TimeValue>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<Kind>,
    /// Any case; `WARNING` and `FATAL` and syslog-style numbers are also taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logger: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    /// A string or an integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    response_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Map<String, Value>>,
}

/// One record, or a batch (committed all or nothing).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RecordsBody {
    One(Box<NewRecord>),
    Batch(Vec<NewRecord>),
}

/// What a committed append answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    accepted: u64,
    first_id: i64,
    last_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordPage {
    records: Vec<Record>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Count {
    count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    #[schema(format = DateTime)]
    ts: String,
    count: u64,
    /// Counts by the `by` field's value, when `by` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<std::collections::BTreeMap<String, u64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Histogram {
    #[schema(format = DateTime)]
    since: String,
    #[schema(format = DateTime)]
    until: String,
    interval_seconds: f64,
    by: Option<String>,
    total: u64,
    buckets: Vec<Bucket>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Context {
    record: Record,
    /// The fields whose values the neighbours share.
    by: Vec<String>,
    before: Vec<Record>,
    after: Vec<Record>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedCheckpoint {
    tree_size: u64,
    /// Hex SHA-256.
    root_hash: String,
    #[schema(format = DateTime)]
    ts: String,
    previous: Option<String>,
    /// Base64 Ed25519 signature of the canonical JSON of the other fields.
    signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Checkpoints {
    checkpoints: Vec<SignedCheckpoint>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKey {
    algorithm: String,
    /// Base64 of the Ed25519 public key.
    public_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Removal {
    #[schema(format = DateTime)]
    removed_at: String,
    journal_id: i64,
    first_id: i64,
    last_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    id: i64,
    leaf_index: u64,
    leaf_hash: String,
    tree_size: u64,
    audit_path: Vec<String>,
    checkpoint: SignedCheckpoint,
    /// Set when the record was removed (its leaf stays in the tree).
    removed: Option<Removal>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    from: u64,
    to: u64,
    proof: Vec<String>,
    from_checkpoint: SignedCheckpoint,
    to_checkpoint: SignedCheckpoint,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Leaf {
    index: u64,
    id: i64,
    hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Leaves {
    tree_size: u64,
    leaves: Vec<Leaf>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedList {
    removed: Vec<Removal>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrityStatus {
    tree_size: u64,
    public_key: String,
    stored_public_key: Option<String>,
    last_checkpoint: Option<SignedCheckpoint>,
    last_verify: Option<Value>,
    /// The retention policy and its last run.
    retention: Map<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyReport {
    ok: bool,
    summary: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyReported {
    ok: bool,
    summary: String,
    #[schema(format = DateTime)]
    at: String,
    by: String,
    through: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectRef {
    #[serde(rename = "type")]
    object_type: String,
    id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ManagedObject {
    #[serde(rename = "type")]
    object_type: String,
    id: String,
    name: Option<String>,
    state: Option<String>,
    parent: Option<ObjectRef>,
    uri: Option<String>,
    attributes: Map<String, Value>,
    domain_id: Option<String>,
    #[schema(format = DateTime)]
    updated: String,
}

/// The settable fields of an object; `type`, `id` and `updated` are accepted and
/// ignored, so an answer can be sent back as it came.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectUpdate {
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_id: Option<String>,
    /// null detaches the object from its parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<Option<ObjectRef>>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<Map<String, Value>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    object_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectList {
    objects: Vec<ManagedObject>,
    total: u64,
    offset: u64,
    limit: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Action {
    uuid: String,
    resource_uri: String,
    object: Option<String>,
    action: String,
    method: Option<String>,
    path: Option<String>,
    user: Option<String>,
    user_agent: Option<String>,
    #[schema(format = DateTime)]
    start_date: String,
    end_date: Option<String>,
    state: ActionState,
    ip: Option<String>,
    location: Option<String>,
    is_user_action: bool,
    can_be_canceled: bool,
    can_be_retried: bool,
    retry_of: Option<String>,
    domain_id: Option<String>,
}

/// A new action; `action` (the operation's name) is required. `uuid`,
/// `resource_uri` and `retry_of` are accepted and ignored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAction {
    /// Not blank.
    #[schema(min_length = 1, pattern = r"\S")]
    action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_date: Option<TimeValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_date: Option<TimeValue>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<ActionState>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    is_user_action: Option<bool>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    can_be_canceled: Option<bool>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    can_be_retried: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_of: Option<String>,
}

/// A move along the lifecycle; an illegal move answers 409.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionUpdate {
    state: ActionState,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_date: Option<TimeValue>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionList {
    actions: Vec<Action>,
    total: u64,
    offset: u64,
    limit: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogLine {
    log: String,
}

/// One log line or several.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LogLines {
    One(LogLine),
    Many(Vec<LogLine>),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogsAppended {
    appended: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Credentials {
    username: String,
    password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Whoami {
    user: String,
    role: Role,
    domain: String,
    /// Whether the caller authenticated with a session cookie.
    session: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedOut {
    logged_out: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    name: String,
    role: Role,
    domain: String,
    disabled: bool,
    any_domain: bool,
    has_password: bool,
    #[schema(format = DateTime)]
    created: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Users {
    users: Vec<User>,
}

/// A new user: 1 to 64 letters, digits or `. _ - @` (non-ASCII letters and digits too); a password of at least 8
/// characters (none: the user logs in with tokens only).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._@-]+$")]
    name: String,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    #[schema(nullable = false, min_length = 1, max_length = 200)]
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    #[schema(nullable = false, min_length = 8)]
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    any_domain: Option<bool>,
}

/// The fields to change; removing the last active administrator answers 409.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    #[schema(nullable = false, min_length = 1, max_length = 200)]
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled: Option<bool>,
    #[schema(nullable = false, min_length = 8)]
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    any_domain: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    id: i64,
    user: String,
    name: Option<String>,
    #[schema(format = DateTime)]
    created: String,
    expires: Option<String>,
    /// `active`, `expired` or `revoked`.
    state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Tokens {
    tokens: Vec<Token>,
}

/// A new token, for the caller or (administrators) for `user`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// A lifetime like `30d` or `12h`, or a future RFC 3339 time.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
}

/// The new token with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    id: i64,
    user: String,
    name: Option<String>,
    #[schema(format = DateTime)]
    created: String,
    expires: Option<String>,
    state: String,
    token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    id: i64,
    state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    status: String,
}

/// The record filters every read of records takes (list, count, histogram,
/// export, stream). List parameters take a comma list and may repeat; each has a
/// `not_` twin that excludes the values.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordFilters {
    /// `log`, `event`, `journal` (comma list).
    kind: Option<String>,
    /// DEBUG, INFO, WARN, ERROR, CRITICAL (comma list).
    level: Option<String>,
    category: Option<String>,
    source: Option<String>,
    instance: Option<String>,
    logger: Option<String>,
    user: Option<String>,
    user_id: Option<String>,
    domain_id: Option<String>,
    project_id: Option<String>,
    object_type: Option<String>,
    object_id: Option<String>,
    action: Option<String>,
    status: Option<String>,
    response_code: Option<String>,
    request_id: Option<String>,
    not_kind: Option<String>,
    not_level: Option<String>,
    not_category: Option<String>,
    not_source: Option<String>,
    not_instance: Option<String>,
    not_logger: Option<String>,
    not_user: Option<String>,
    not_user_id: Option<String>,
    not_domain_id: Option<String>,
    not_project_id: Option<String>,
    not_object_type: Option<String>,
    not_object_id: Option<String>,
    not_action: Option<String>,
    not_status: Option<String>,
    not_response_code: Option<String>,
    not_request_id: Option<String>,
    /// Records at this level or above.
    min_level: Option<Level>,
    /// RFC 3339 or epoch seconds, inclusive.
    since: Option<String>,
    /// RFC 3339 or epoch seconds.
    until: Option<String>,
    /// Case-insensitive substring of the message.
    q: Option<String>,
    /// `desc` (newest first, the default) or `asc`.
    order: Option<SortOrder>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

/// Paging of `GET /logbook/v1/records`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordPaging {
    /// Records per page (default 100).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u64>,
    #[param(maximum = 9223372036854775807_u64)]
    offset: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

// Keep the documented bounds the ones the code applies.
const _: () = assert!(DEFAULT_LIMIT == 100 && MAX_LIMIT == 10_000);
