//! The access matrix: every endpoint x every kind of caller, with the expected
//! status and, for reads, proof that no record of a foreign domain appears and that
//! the caller's own records do. One table; a new endpoint is one more row.
//!
//! Callers: admin, auditor, user (domain acme), writer (domain acme), a user of
//! another domain ("wrong domain"), nobody, a revoked token, an expired session.

mod support;

use logbook_core::{Query, Role, Timestamp};
use logbook_server::auth::secrets;
use logbook_store::NewUser;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::{Backend, TestServer};

store_tests!(every_endpoint_answers_every_caller_as_specified);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Admin,
    Auditor,
    User,
    Writer,
    WrongDomain,
    Nobody,
    RevokedToken,
    ExpiredSession,
}

const CALLERS: [Caller; 8] = [
    Caller::Admin,
    Caller::Auditor,
    Caller::User,
    Caller::Writer,
    Caller::WrongDomain,
    Caller::Nobody,
    Caller::RevokedToken,
    Caller::ExpiredSession,
];

impl Caller {
    /// The domains whose records it may see; `None` = every domain.
    fn domains(self) -> Option<&'static [&'static str]> {
        match self {
            Caller::Admin | Caller::Auditor => None,
            Caller::User | Caller::Writer => Some(&["acme"]),
            Caller::WrongDomain => Some(&["other"]),
            _ => Some(&[]),
        }
    }
}

struct Credentials {
    admin: String,
    auditor: String,
    user: String,
    writer: String,
    wrong: String,
    revoked: String,
    expired_session: String,
}

impl Credentials {
    fn apply(&self, caller: Caller, request: RequestBuilder) -> RequestBuilder {
        match caller {
            Caller::Admin => request.bearer_auth(&self.admin),
            Caller::Auditor => request.bearer_auth(&self.auditor),
            Caller::User => request.bearer_auth(&self.user),
            Caller::Writer => request.bearer_auth(&self.writer),
            Caller::WrongDomain => request.bearer_auth(&self.wrong),
            Caller::Nobody => request,
            Caller::RevokedToken => request.bearer_auth(&self.revoked),
            Caller::ExpiredSession => request.header(
                "cookie",
                format!("logbook_session={}", self.expired_session),
            ),
        }
    }
}

/// How to find the records in a read's answer.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// A JSON array of records at this pointer, the domain in `field`.
    List(&'static str, &'static str),
    /// A number at this pointer that counts the visible records.
    Count(&'static str),
    /// NDJSON lines, the domain in `field`.
    Ndjson(&'static str),
    /// CSV with a header row, the domain in column `name`.
    Csv(&'static str),
    /// One record, the domain in `field`.
    One(&'static str),
    /// Any shape: the caller's own `<domain>-mark` must appear (foreign marks never
    /// appear in any answer; that is checked for every row).
    Marks,
}

struct Row {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Statuses in the order of [`CALLERS`].
    expect: [u16; 8],
    read: Option<Read>,
    /// A read that legitimately finds nothing for a scoped caller.
    may_be_empty: bool,
}

fn row(method: Method, path: impl Into<String>, expect: [u16; 8]) -> Row {
    Row {
        method,
        path: path.into(),
        body: None,
        expect,
        read: None,
        may_be_empty: false,
    }
}

impl Row {
    fn body(mut self, body: Value) -> Row {
        self.body = Some(body);
        self
    }
    fn read(mut self, read: Read) -> Row {
        self.read = Some(read);
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

async fn every_endpoint_answers_every_caller_as_specified(backend: Backend) {
    let server = TestServer::start(backend).await;
    let creds = setup(&server).await;
    let acme = server
        .ingest(json!([
            {"kind": "log", "message": "acme-mark one", "domain_id": "acme"},
            {"kind": "event", "message": "acme-mark two", "domain_id": "acme", "object_type": "vm", "object_id": "acme-1"},
            {"kind": "journal", "message": "acme-mark three", "domain_id": "acme"},
        ]))
        .await;
    let other = server
        .ingest(json!([
            {"kind": "log", "message": "other-mark one", "domain_id": "other"},
            {"kind": "event", "message": "other-mark two", "domain_id": "other"},
        ]))
        .await;
    for (id, domain) in [("acme-1", "acme"), ("other-1", "other")] {
        let response = server
            .request(Method::PUT, &format!("/logbook/v1/objects/vm/{id}"))
            .json(&json!({"name": format!("{domain}-mark {id}"), "state": "running", "domain_id": domain}))
            .send()
            .await
            .expect("put object");
        assert_eq!(response.status(), 200);
    }
    let spare = server
        .post_json("/logbook/v1/tokens", &json!({"name": "spare"}))
        .await
        .json::<Value>()
        .await
        .expect("token")["id"]
        .as_i64()
        .expect("id");

    let rows = native_rows(acme[0], other[0], spare);
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    for row in &rows {
        covered.insert(format!("{} {}", row.method, row.path));
        for (i, caller) in CALLERS.iter().enumerate() {
            if let Err(problem) = check(&server, &creds, row, *caller, row.expect[i]).await {
                failures.push(problem);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "access matrix covered {} endpoint rows x {} callers:",
        covered.len(),
        CALLERS.len()
    );
    for endpoint in &covered {
        eprintln!("  {endpoint}");
    }
    server.stop().await;
}

fn native_rows(acme_id: i64, other_id: i64, spare_token: i64) -> Vec<Row> {
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
        row(M::GET, "/logbook/v1/records/count", READ_ALL).read(Read::Count("/count")),
        row(M::GET, format!("/logbook/v1/records/{acme_id}"), READ_ACME)
            .read(Read::One("domain_id")),
        row(
            M::GET,
            format!("/logbook/v1/records/{other_id}"),
            READ_OTHER,
        )
        .read(Read::One("domain_id")),
        row(M::GET, "/logbook/v1/records/99999999", MISSING),
        row(M::GET, "/logbook/v1/export", READ_ALL).read(Read::Ndjson("domain_id")),
        row(M::GET, "/logbook/v1/export?format=csv", READ_ALL).read(Read::Csv("domain_id")),
        row(M::GET, "/logbook/v1/objects/vm/acme-1", READ_ACME).read(Read::One("domain_id")),
        row(M::GET, "/logbook/v1/objects/vm/other-1", READ_OTHER).read(Read::One("domain_id")),
        row(M::GET, "/logbook/v1/objects/vm/nowhere", MISSING),
        row(M::POST, "/logbook/v1/records", INGEST)
            .body(json!({"kind": "log", "message": "matrix"})),
        // Naming a foreign domain needs the grant (admin, or a writer with any_domain).
        row(M::POST, "/logbook/v1/records", INGEST_FOREIGN)
            .body(json!({"kind": "log", "message": "matrix", "domain_id": "other"})),
        row(M::PUT, "/logbook/v1/objects/vm/acme-1", WRITE).body(json!({"state": "stopped"})),
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

const INGEST_FOREIGN: [u16; 8] = [201, 403, 403, 403, 403, 401, 401, 401];
const REVOKE_SPARE: [u16; 8] = [200, 404, 404, 404, 404, 401, 401, 401];

/// Every seeded record, object and action carries `<domain>-mark` in its text.
const DOMAINS: [&str; 2] = ["acme", "other"];

async fn setup(server: &TestServer) -> Credentials {
    let auditor = server
        .user_with_token("auditor", Role::Auditor, "default")
        .await;
    let user = server.user_with_token("user", Role::User, "acme").await;
    let writer = server.user_with_token("writer", Role::Writer, "acme").await;
    let wrong = server
        .user_with_token("stranger", Role::User, "other")
        .await;
    let store = &server.store;
    let victim = store
        .create_user(NewUser {
            name: "revoked".into(),
            password_hash: None,
            role: Role::Admin,
            domain: "acme".into(),
            any_domain: true,
        })
        .await
        .expect("user");
    let revoked = secrets::new_token();
    let token = store
        .create_token(victim.id, None, secrets::digest(&revoked), None)
        .await
        .expect("token");
    assert!(store.revoke_token(token.id).await.expect("revoke"));
    let admin = store
        .user_by_name("admin")
        .await
        .expect("store")
        .expect("admin");
    let expired_session = secrets::new_token();
    store
        .create_session(
            secrets::digest(&expired_session),
            admin.id,
            Timestamp(Timestamp::now().micros() - 1),
        )
        .await
        .expect("session");
    Credentials {
        admin: server.token.clone(),
        auditor,
        user,
        writer,
        wrong,
        revoked,
        expired_session,
    }
}

async fn check(
    server: &TestServer,
    creds: &Credentials,
    row: &Row,
    caller: Caller,
    expected: u16,
) -> Result<(), String> {
    let label = format!("{:?} {} {}", caller, row.method, row.path);
    let mut request = creds.apply(
        caller,
        server
            .http
            .request(row.method.clone(), server.url(&row.path)),
    );
    if let Some(body) = &row.body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(|e| format!("{label}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    if status != expected {
        return Err(format!(
            "{label}: expected {expected}, got {status}: {text}"
        ));
    }
    match (row.read, status) {
        (Some(read), 200) => check_read(server, caller, read, row.may_be_empty, &text)
            .await
            .map_err(|e| format!("{label}: {e}")),
        _ => Ok(()),
    }
}

/// The records in a read's answer belong only to domains the caller may see, and
/// a scoped caller's list shows every one of its own (proof the filter is real).
async fn check_read(
    server: &TestServer,
    caller: Caller,
    read: Read,
    may_be_empty: bool,
    text: &str,
) -> Result<(), String> {
    let domains: Vec<Option<String>> = match read {
        Read::Marks => {
            let own = match caller.domains() {
                None => DOMAINS.to_vec(),
                Some(allowed) => allowed.to_vec(),
            };
            let seen = own.iter().any(|d| text.contains(&format!("{d}-mark")));
            return if seen || may_be_empty {
                Ok(())
            } else {
                Err("none of its own records is listed".into())
            };
        }
        Read::Count(pointer) => {
            let body: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let count = body
                .pointer(pointer)
                .and_then(Value::as_u64)
                .ok_or("no count")?;
            let expected = visible_count(server, caller).await;
            return if count == expected {
                Ok(())
            } else {
                Err(format!("count {count}, expected {expected}"))
            };
        }
        Read::One(field) => {
            let body: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            vec![body[field].as_str().map(String::from)]
        }
        Read::List(pointer, field) => {
            let body: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let list = body
                .pointer(pointer)
                .and_then(Value::as_array)
                .ok_or("no list")?;
            list.iter()
                .map(|r| r[field].as_str().map(String::from))
                .collect()
        }
        Read::Ndjson(field) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<Value>(l).map(|r| r[field].as_str().map(String::from)))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?,
        Read::Csv(column) => {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let at = reader
                .headers()
                .map_err(|e| e.to_string())?
                .iter()
                .position(|h| h == column)
                .ok_or("no domain column")?;
            reader
                .records()
                .map(|r| r.map(|r| r.get(at).filter(|d| !d.is_empty()).map(String::from)))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?
        }
    };
    if let Some(allowed) = caller.domains() {
        if let Some(foreign) = domains
            .iter()
            .find(|d| !d.as_deref().is_some_and(|d| allowed.contains(&d)))
        {
            return Err(format!("a record of domain {foreign:?} leaked"));
        }
        let listing = matches!(read, Read::List(..) | Read::Ndjson(_) | Read::Csv(_));
        if listing && !may_be_empty && domains.is_empty() {
            return Err("none of its own records is listed".into());
        }
    }
    Ok(())
}

async fn visible_count(server: &TestServer, caller: Caller) -> u64 {
    let query = match caller.domains() {
        None => Query::default(),
        Some(domains) => {
            let domains: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
            Query::default().within_domains(&domains)
        }
    };
    server.store.count(&query).await.expect("count")
}
