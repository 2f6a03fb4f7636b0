//! The rows of the access matrix: one per endpoint (and interesting variant), with
//! the status every caller must get. Reads come first; rows that destroy data last.

use logbook_core::{Field, Kind, Query};
use reqwest::Method;
use serde_json::{json, Value};

/// Ids of the seeded data the rows refer to.
pub struct Seeds {
    pub acme_log: i64,
    pub other_log: i64,
    pub spare_token: i64,
    /// Docker Cloud actions (neither cancelable nor retryable, so every visible
    /// caller gets the same 409 and nothing changes between callers).
    pub acme_action: String,
    pub other_action: String,
}

/// Every row, in the order they run.
pub fn all(seeds: &Seeds) -> Vec<Row> {
    let mut rows = native_reads(seeds);
    rows.extend(waldur(seeds));
    rows.extend(journal_reads());
    rows.extend(qnap_reads());
    rows.extend(dockercloud(seeds));
    rows.extend(native_writes(seeds));
    rows.extend(journal_writes());
    // Clearing the log destroys the seeds: always last.
    rows.push(row(Method::DELETE, "/api/v1/log", ADMIN_ONLY));
    rows
}

/// How to find the records in a read's answer.
#[derive(Debug, Clone, Copy)]
pub enum Read {
    /// A JSON array of records at this pointer, the domain in `field`.
    List(&'static str, &'static str),
    /// A number at this pointer that counts the visible records matching the query.
    Count(&'static str, fn() -> Query),
    /// NDJSON lines, the domain in `field`.
    Ndjson(&'static str),
    /// CSV with a header row, the domain in column `name`.
    Csv(&'static str),
    /// One record, the domain in `field`.
    One(&'static str),
    /// The header's number counts the visible records matching the query.
    CountHeader(&'static str, fn() -> Query),
    /// Any shape: the caller's own `<domain>-mark` must appear (foreign marks never
    /// appear in any answer; that is checked for every row).
    Marks,
}

pub struct Row {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    /// A form-encoded body instead.
    pub form: Option<String>,
    /// Statuses in the order of the callers: admin, auditor, user, writer, wrong
    /// domain, nobody, revoked token, expired session.
    pub expect: [u16; 8],
    pub read: Option<Read>,
    /// A read that legitimately finds nothing for a scoped caller.
    pub may_be_empty: bool,
    /// Sent as a WebSocket handshake; 101 counts as 200, and the messages until the
    /// server closes are the answer.
    pub websocket: bool,
}

fn row(method: Method, path: impl Into<String>, expect: [u16; 8]) -> Row {
    Row {
        method,
        path: path.into(),
        body: None,
        form: None,
        expect,
        read: None,
        may_be_empty: false,
        websocket: false,
    }
}

impl Row {
    fn form(mut self, form: &str) -> Row {
        self.form = Some(form.to_string());
        self
    }
    fn body(mut self, body: Value) -> Row {
        self.body = Some(body);
        self
    }
    fn read(mut self, read: Read) -> Row {
        self.read = Some(read);
        self
    }
    fn websocket(mut self) -> Row {
        self.websocket = true;
        self
    }
    fn may_be_empty(mut self) -> Row {
        self.may_be_empty = true;
        self
    }
}

//                            admin aud  user writ wrong none revk expd
const READ_ALL: [u16; 8] = [200, 200, 200, 200, 200, 401, 401, 401];
const READ_ACME: [u16; 8] = [200, 200, 200, 200, 404, 401, 401, 401];
const READ_OTHER: [u16; 8] = [200, 200, 404, 404, 200, 401, 401, 401];
const MISSING: [u16; 8] = [404, 404, 404, 404, 404, 401, 401, 401];
const INGEST: [u16; 8] = [201, 403, 403, 201, 403, 401, 401, 401];
const WRITE: [u16; 8] = [200, 403, 403, 200, 403, 401, 401, 401];
const ADMIN_ONLY: [u16; 8] = [200, 403, 403, 403, 403, 401, 401, 401];
const ADMIN_CREATES: [u16; 8] = [201, 403, 403, 403, 403, 401, 401, 401];
const ANYONE_CREATES: [u16; 8] = [201, 201, 201, 201, 201, 401, 401, 401];
const PUBLIC: [u16; 8] = [200; 8];

const METHOD_NOT_ALLOWED: [u16; 8] = [405, 405, 405, 405, 405, 401, 401, 401];

fn native_reads(s: &Seeds) -> Vec<Row> {
    let (acme_id, other_id) = (s.acme_log, s.other_log);
    use Method as M;
    vec![
        row(M::GET, "/healthz", PUBLIC),
        row(M::GET, "/logbook/v1/whoami", READ_ALL),
        row(M::GET, "/logbook/v1/records", READ_ALL).read(Read::List("/records", "domain_id")),
        row(
            M::GET,
            "/logbook/v1/records?kind=log,event,journal&limit=1000",
            READ_ALL,
        )
        .read(Read::List("/records", "domain_id")),
        row(M::GET, "/logbook/v1/records?domain_id=other", READ_ALL)
            .read(Read::List("/records", "domain_id"))
            .may_be_empty(),
        row(M::GET, "/logbook/v1/records?q=mark", READ_ALL).read(Read::Marks),
        row(M::GET, "/logbook/v1/records/count", READ_ALL)
            .read(Read::Count("/count", Query::default)),
        row(M::GET, format!("/logbook/v1/records/{acme_id}"), READ_ACME)
            .read(Read::One("domain_id")),
        row(
            M::GET,
            format!("/logbook/v1/records/{other_id}"),
            READ_OTHER,
        )
        .read(Read::One("domain_id")),
        row(M::GET, "/logbook/v1/records/99999999", MISSING),
        // The web UI's context around a record: the record's own domain only.
        row(
            M::GET,
            format!("/logbook/v1/records/{acme_id}/context"),
            READ_ACME,
        )
        .read(Read::Marks),
        row(
            M::GET,
            format!("/logbook/v1/records/{other_id}/context"),
            READ_OTHER,
        )
        .read(Read::Marks),
        row(M::GET, "/logbook/v1/records/99999999/context", MISSING),
        row(M::GET, "/logbook/v1/export", READ_ALL).read(Read::Ndjson("domain_id")),
        row(M::GET, "/logbook/v1/export?format=csv", READ_ALL).read(Read::Csv("domain_id")),
        row(M::GET, "/logbook/v1/objects/vm/acme-1", READ_ACME).read(Read::One("domain_id")),
        row(M::GET, "/logbook/v1/objects/vm/other-1", READ_OTHER).read(Read::One("domain_id")),
        row(M::GET, "/logbook/v1/objects/vm/nowhere", MISSING),
        row(M::GET, "/logbook/v1/objects", READ_ALL).read(Read::List("/objects", "domain_id")),
    ]
}

const INGEST_FOREIGN: [u16; 8] = [201, 403, 403, 403, 403, 401, 401, 401];
const REVOKE_SPARE: [u16; 8] = [200, 404, 404, 404, 404, 401, 401, 401];

/// Native writes and account administration (after every read: they add records).
fn native_writes(s: &Seeds) -> Vec<Row> {
    use Method as M;
    let spare_token = s.spare_token;
    vec![
        row(M::POST, "/logbook/v1/records", INGEST)
            .body(json!({"kind": "log", "message": "matrix"})),
        // Naming a foreign domain needs the grant (admin, or a writer with any_domain).
        row(M::POST, "/logbook/v1/records", INGEST_FOREIGN)
            .body(json!({"kind": "log", "message": "matrix", "domain_id": "other"})),
        row(M::PUT, "/logbook/v1/objects/vm/acme-1", WRITE).body(json!({"state": "stopped"})),
        // Users' requests about actions, as in the Docker Cloud dialect below.
        row(
            M::POST,
            format!("/logbook/v1/actions/{}/cancel", s.acme_action),
            REQUEST_ACME,
        ),
        row(
            M::POST,
            format!("/logbook/v1/actions/{}/cancel", s.other_action),
            REQUEST_OTHER,
        ),
        row(
            M::POST,
            format!("/logbook/v1/actions/{}/retry", s.acme_action),
            REQUEST_ACME,
        ),
        row(
            M::POST,
            format!("/logbook/v1/actions/{}/retry", s.other_action),
            REQUEST_OTHER,
        ),
        row(M::GET, "/logbook/v1/users", ADMIN_ONLY),
        row(M::POST, "/logbook/v1/users", ADMIN_CREATES)
            .body(json!({"name": "matrix-made", "domain": "acme"})),
        row(M::PATCH, "/logbook/v1/users/matrix-made", ADMIN_ONLY).body(json!({"role": "auditor"})),
        row(M::GET, "/logbook/v1/tokens", READ_ALL),
        row(M::POST, "/logbook/v1/tokens", ANYONE_CREATES).body(json!({"name": "matrix"})),
        // Someone else's token: 404, exactly like a missing one.
        row(
            M::DELETE,
            format!("/logbook/v1/tokens/{spare_token}"),
            REVOKE_SPARE,
        ),
        row(M::POST, "/logbook/v1/logout", READ_ALL),
    ]
}

/// Waldur system logs (`/api/system-logs/`): a read-only view of log records.
fn waldur(s: &Seeds) -> Vec<Row> {
    use Method as M;
    vec![
        row(M::GET, "/api/system-logs/", READ_ALL).read(Read::Marks),
        row(M::GET, "/api/system-logs/", READ_ALL)
            .read(Read::CountHeader("x-result-count", waldur_view)),
        // The client's `system_logs_count`: HEAD with the same scoped count.
        row(M::HEAD, "/api/system-logs/", READ_ALL)
            .read(Read::CountHeader("x-result-count", waldur_view)),
        row(M::HEAD, "/api/system-logs/instances/", READ_ALL),
        row(M::GET, "/api/system-logs/?message=mark", READ_ALL).read(Read::Marks),
        row(M::GET, "/api/system-logs/instances/", READ_ALL).read(Read::Marks),
        row(M::GET, "/api/system-logs/stats/", READ_ALL).read(Read::Marks),
        row(
            M::GET,
            format!("/api/system-logs/{}/", s.acme_log),
            READ_ACME,
        )
        .read(Read::Marks),
        row(
            M::GET,
            format!("/api/system-logs/{}/", s.other_log),
            READ_OTHER,
        )
        .read(Read::Marks),
        row(M::GET, "/api/system-logs/99999999/", MISSING),
        row(M::POST, "/api/system-logs/", METHOD_NOT_ALLOWED).body(json!({"message": "x"})),
    ]
}

/// The records Waldur shows: logs with a level from the sources its client knows.
fn waldur_view() -> Query {
    Query::default()
        .kinds(&[Kind::Log])
        .values(Field::Source, &["api", "beat", "worker"])
        .expect("sources")
}

fn journal_kind() -> Query {
    Query::default().kinds(&[Kind::Journal])
}

/// Journal (`/v1/journal/`) reads.
fn journal_reads() -> Vec<Row> {
    use Method as M;
    vec![
        row(M::GET, "/v1/journal/", READ_ALL).read(Read::Marks),
        row(M::GET, "/v1/journal", READ_ALL).read(Read::Marks),
        row(M::GET, "/v1/journal/?limit=1000", READ_ALL).read(Read::List("/journal", "domain_id")),
        row(M::GET, "/v1/journal/count", READ_ALL).read(Read::Count("/count", journal_kind)),
        row(M::GET, "/v1/journal/count/", READ_ALL).read(Read::Count("/count", journal_kind)),
        // Asking for a foreign domain finds nothing; it never widens the scope.
        row(M::GET, "/v1/journal/?filter_domain_id=other", READ_ALL)
            .read(Read::List("/journal", "domain_id"))
            .may_be_empty(),
        row(M::GET, "/v1/journal/?filter_project_id=p-other", READ_ALL)
            .read(Read::Marks)
            .may_be_empty(),
    ]
}

//                                   admin aud  user writ wrong none revk expd
/// Users may journal their own actions (docs/journal.md); auditors write nothing.
const JOURNAL_OWN: [u16; 8] = [201, 403, 201, 201, 201, 401, 401, 401];
/// "other" is foreign to user and writer (acme), but the wrong-domain caller's own.
const JOURNAL_FOREIGN_DOMAIN: [u16; 8] = [201, 403, 403, 403, 201, 401, 401, 401];
const JOURNAL_FOR_OTHERS: [u16; 8] = [201, 403, 403, 201, 403, 401, 401, 401];

fn journal_entry(extra: Value) -> Value {
    let mut entry = json!({"object_id": "4", "object_type": "node", "action": "node_control.power_on", "status": "Success"});
    if let (Some(entry), Value::Object(extra)) = (entry.as_object_mut(), extra) {
        entry.extend(extra);
    }
    json!({ "journal": entry })
}

/// Journal writes.
fn journal_writes() -> Vec<Row> {
    use Method as M;
    vec![
        row(M::POST, "/v1/journal/", JOURNAL_OWN).body(journal_entry(json!({}))),
        row(M::POST, "/v1/journal", JOURNAL_OWN).body(journal_entry(json!({}))),
        row(M::POST, "/v1/p-acme/journal/", JOURNAL_OWN).body(journal_entry(json!({}))),
        row(M::POST, "/v1/p-acme/journal", JOURNAL_OWN).body(journal_entry(json!({}))),
        row(M::POST, "/v1/journal/", JOURNAL_FOREIGN_DOMAIN)
            .body(journal_entry(json!({"domain_id": "other"}))),
        row(M::POST, "/v1/journal/", JOURNAL_FOR_OTHERS)
            .body(journal_entry(json!({"user_name": "someone-else"}))),
    ]
}

/// QNAP Container Station (`/api/v1/`): log, export, events, container wait, login.
fn qnap_reads() -> Vec<Row> {
    use Method as M;
    vec![
        row(M::GET, "/api/v1/log", READ_ALL).read(Read::Marks),
        row(M::GET, "/api/v1/log?text=mark", READ_ALL).read(Read::Marks),
        row(M::GET, "/api/v1/log/export", READ_ALL).read(Read::Marks),
        row(M::GET, "/api/v1/event", READ_ALL).read(Read::Marks),
        row(
            M::GET,
            "/api/v1/event/wait/docker/acme-c/running?duration=0",
            READ_ACME,
        )
        .read(Read::Marks),
        row(
            M::GET,
            "/api/v1/event/wait/docker/other-c/running?duration=0",
            READ_OTHER,
        )
        .read(Read::Marks),
        row(
            M::GET,
            "/api/v1/event/wait/docker/nowhere/running?duration=0",
            MISSING,
        ),
        // The login form is public; its answer never depends on what else was sent.
        row(M::POST, "/api/v1/login", PUBLIC).form("username=user&password=user-password"),
        row(M::POST, "/logbook/v1/login", PUBLIC)
            .body(json!({"username": "user", "password": "user-password"})),
        row(M::POST, "/logbook/v1/login", WRONG_PASSWORD)
            .body(json!({"username": "stranger", "password": "not-it"})),
    ]
}

/// A wrong password is 401 whoever asks, until the account's 5 failures are used up:
/// from the sixth attempt on it is 429, whatever else the request carries.
const WRONG_PASSWORD: [u16; 8] = [401, 401, 401, 401, 401, 429, 429, 429];

//                                  admin aud  user writ wrong none revk expd
const REQUEST_ACME: [u16; 8] = [409, 403, 409, 409, 404, 401, 401, 401];
const REQUEST_OTHER: [u16; 8] = [409, 403, 404, 404, 409, 401, 401, 401];
const SOCKET_ALL: [u16; 8] = [200, 200, 200, 200, 200, 401, 401, 401];
const PLAIN_ON_SOCKET: [u16; 8] = [426, 426, 426, 426, 426, 401, 401, 401];
const CREATE_ACTION: [u16; 8] = [201, 403, 403, 201, 403, 401, 401, 401];

/// Docker Cloud audit (`/api/audit/v1/`) and the native actions API behind it.
fn dockercloud(s: &Seeds) -> Vec<Row> {
    use Method as M;
    let (acme, other) = (&s.acme_action, &s.other_action);
    vec![
        row(M::GET, "/api/audit/v1/action/", READ_ALL).read(Read::Marks),
        row(M::GET, "/api/audit/v1/action/?limit=1000", READ_ALL).read(Read::Marks),
        row(M::GET, format!("/api/audit/v1/action/{acme}/"), READ_ACME).read(Read::Marks),
        row(M::GET, format!("/api/audit/v1/action/{other}/"), READ_OTHER).read(Read::Marks),
        row(
            M::GET,
            "/api/audit/v1/action/00000000-0000-0000-0000-000000000000/",
            MISSING,
        ),
        row(
            M::POST,
            format!("/api/audit/v1/action/{acme}/cancel/"),
            REQUEST_ACME,
        ),
        row(
            M::POST,
            format!("/api/audit/v1/action/{other}/cancel/"),
            REQUEST_OTHER,
        ),
        row(
            M::POST,
            format!("/api/audit/v1/action/{acme}/retry/"),
            REQUEST_ACME,
        ),
        row(
            M::POST,
            format!("/api/audit/v1/action/{other}/retry/"),
            REQUEST_OTHER,
        ),
        row(
            M::GET,
            format!("/api/audit/v1/action/{acme}/logs/?follow=false"),
            READ_ACME,
        )
        .websocket()
        .read(Read::Marks),
        row(
            M::GET,
            format!("/api/audit/v1/action/{other}/logs/?follow=false"),
            READ_OTHER,
        )
        .websocket()
        .read(Read::Marks),
        row(
            M::GET,
            format!("/api/audit/v1/ns/action/{acme}/logs/?follow=false"),
            READ_ACME,
        )
        .websocket()
        .read(Read::Marks),
        row(
            M::GET,
            format!("/api/audit/v1/action/{acme}/logs/"),
            PLAIN_ON_SOCKET,
        ),
        row(M::GET, "/api/audit/v1/events", SOCKET_ALL).websocket(),
        row(M::GET, "/api/audit/v1/ns/events", SOCKET_ALL).websocket(),
        // The native live stream (its domain scoping: tests/stream.rs).
        row(M::GET, "/logbook/v1/stream", SOCKET_ALL).websocket(),
        row(M::GET, "/logbook/v1/stream?kind=log&after=0", SOCKET_ALL).websocket(),
        row(M::GET, "/logbook/v1/actions", READ_ALL).read(Read::Marks),
        row(M::GET, format!("/logbook/v1/actions/{acme}"), READ_ACME).read(Read::Marks),
        row(M::GET, format!("/logbook/v1/actions/{other}"), READ_OTHER).read(Read::Marks),
        row(M::POST, "/logbook/v1/actions", CREATE_ACTION).body(json!({"action": "matrix"})),
        row(
            M::PATCH,
            format!("/logbook/v1/actions/{other}"),
            PATCH_OTHER_ACTION,
        )
        .body(json!({"state": "Success"})),
        row(
            M::POST,
            format!("/logbook/v1/actions/{other}/logs"),
            APPEND_OTHER_LOGS,
        )
        .body(json!([{"log": "matrix line"}])),
    ]
}

/// Writers of acme get 404 for other's action (it is not theirs to see).
const PATCH_OTHER_ACTION: [u16; 8] = [200, 403, 403, 404, 403, 401, 401, 401];
const APPEND_OTHER_LOGS: [u16; 8] = [201, 403, 403, 404, 403, 401, 401, 401];
