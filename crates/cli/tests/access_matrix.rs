//! The access matrix: every endpoint x every kind of caller, with the expected
//! status and, for reads, proof that no record of a foreign domain appears and that
//! the caller's own records do. One table; a new endpoint is one more row.
//!
//! Callers: admin, auditor, user (domain acme), writer (domain acme), a user of
//! another domain ("wrong domain"), nobody, a revoked token, an expired session.

mod rows;

use crate::support::{Backend, TestServer};
use logbook_core::{Query, Role, Timestamp};
use logbook_server::auth::secrets;
use logbook_store::NewUser;
use reqwest::{Method, RequestBuilder};
use rows::{Read, Row, Seeds};
use serde_json::{json, Value};
use std::collections::BTreeSet;

store_tests!(
    every_endpoint_answers_every_caller_as_specified,
    live_streams_carry_only_the_callers_domains,
);

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

async fn every_endpoint_answers_every_caller_as_specified(backend: Backend) {
    let server = TestServer::start(backend).await;
    let creds = setup(&server).await;
    let acme = server
        .ingest(json!([
            {"kind": "log", "level": "INFO", "message": "acme-mark one", "domain_id": "acme", "source": "api", "instance": "acme-mark-host"},
            {"kind": "event", "message": "acme-mark two", "domain_id": "acme", "object_type": "vm", "object_id": "acme-1"},
            {"kind": "journal", "message": "acme-mark three", "domain_id": "acme"},
        ]))
        .await;
    let other = server
        .ingest(json!([
            {"kind": "log", "level": "INFO", "message": "other-mark one", "domain_id": "other", "source": "api", "instance": "other-mark-host"},
            {"kind": "event", "message": "other-mark two", "domain_id": "other"},
            {"kind": "journal", "message": "other-mark three", "domain_id": "other", "project_id": "p-other", "object_type": "node", "object_id": "7", "action": "node.boot", "status": "Success"},
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
    for (id, domain) in [("acme-c", "acme"), ("other-c", "other")] {
        let response = server
            .request(Method::PUT, &format!("/logbook/v1/objects/docker/{id}"))
            .json(&json!({"name": format!("{domain}-mark container"), "state": "running", "domain_id": domain}))
            .send()
            .await
            .expect("put container");
        assert_eq!(response.status(), 200);
    }
    let mut actions = Vec::new();
    for domain in DOMAINS {
        let created: Value = server
            .post_json(
                "/logbook/v1/actions",
                &json!({"action": format!("{domain}-mark deploy"), "domain_id": domain,
                        "can_be_canceled": false, "can_be_retried": false}),
            )
            .await
            .json()
            .await
            .expect("action");
        let uuid = created["uuid"].as_str().expect("uuid").to_string();
        let response = server
            .post_json(
                &format!("/logbook/v1/actions/{uuid}/logs"),
                &json!([{"log": format!("{domain}-mark log line")}]),
            )
            .await;
        assert!(response.status().is_success(), "{}", response.status());
        actions.push(uuid);
    }
    let spare = server
        .post_json("/logbook/v1/tokens", &json!({"name": "spare"}))
        .await
        .json::<Value>()
        .await
        .expect("token")["id"]
        .as_i64()
        .expect("id");

    let rows = rows::all(&Seeds {
        acme_log: acme[0],
        other_log: other[0],
        spare_token: spare,
        acme_action: actions[0].clone(),
        other_action: actions[1].clone(),
    });
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
    let (status, headers, text) = if row.websocket {
        socket(server, creds, row, caller).await?
    } else {
        let mut request = creds.apply(
            caller,
            server
                .http
                .request(row.method.clone(), server.url(&row.path)),
        );
        if let Some(body) = &row.body {
            request = request.json(body);
        }
        if let Some(form) = &row.form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.clone());
        }
        let response = request.send().await.map_err(|e| format!("{label}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap_or_default())
    };
    if status != expected {
        return Err(format!(
            "{label}: expected {expected}, got {status}: {text}"
        ));
    }
    match (row.read, status) {
        (Some(read), 200) => check_read(server, caller, read, row.may_be_empty, &headers, &text)
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
    headers: &reqwest::header::HeaderMap,
    text: &str,
) -> Result<(), String> {
    let domains: Vec<Option<String>> = match read {
        Read::CountHeader(name, base) => {
            let count: u64 = headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no {name} header"))?;
            let expected = visible_count(server, caller, base()).await;
            return if count == expected {
                Ok(())
            } else {
                Err(format!("{name} {count}, expected {expected}"))
            };
        }
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
        Read::Count(pointer, base) => {
            let body: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let count = body
                .pointer(pointer)
                .and_then(Value::as_u64)
                .ok_or("no count")?;
            let expected = visible_count(server, caller, base()).await;
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

async fn visible_count(server: &TestServer, caller: Caller, base: Query) -> u64 {
    let query = match caller.domains() {
        None => base,
        Some(domains) => {
            let domains: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
            base.within_domains(&domains)
        }
    };
    server.store.count(&query).await.expect("count")
}

/// A WebSocket handshake with the caller's credentials: 101 reads as 200 and the
/// answer is every text message until the server closes (rows ask `follow=false`)
/// or, for live streams, none at all.
async fn socket(
    server: &TestServer,
    creds: &Credentials,
    row: &Row,
    caller: Caller,
) -> Result<(u16, reqwest::header::HeaderMap, String), String> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Error, Message};
    let url = format!("ws://{}{}", server.addr, row.path);
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let probe = creds
        .apply(caller, server.http.get(server.url("/")))
        .build();
    for (name, value) in probe.map_err(|e| e.to_string())?.headers() {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut stream, _)) => {
            let mut text = String::new();
            if row.read.is_some() {
                while let Some(Ok(message)) = stream.next().await {
                    match message {
                        Message::Text(t) => text.push_str(&t),
                        Message::Close(_) => break,
                        _ => {}
                    }
                }
            }
            Ok((200, reqwest::header::HeaderMap::new(), text))
        }
        Err(Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Ok((
                response.status().as_u16(),
                reqwest::header::HeaderMap::new(),
                body,
            ))
        }
        Err(e) => Err(format!("{caller:?} {}: {e}", row.path)),
    }
}

/// A live stream has no end to read to: each scoped listener reads until its own
/// domain's change arrives, which was committed after the foreign one, so a foreign
/// change that was not filtered would have been seen first.
async fn live_streams_carry_only_the_callers_domains(backend: Backend) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start(backend).await;
    let creds = setup(&server).await;
    let mut listeners = Vec::new();
    for (caller, own, foreign) in [
        (Caller::User, "acme", Some("other")),
        (Caller::WrongDomain, "other", Some("acme")),
        (Caller::Auditor, "acme", None),
    ] {
        let url = format!("ws://{}/api/audit/v1/events", server.addr);
        let mut request = url.into_client_request().expect("request");
        let probe = creds
            .apply(caller, server.http.get(server.url("/")))
            .build()
            .expect("probe");
        for (name, value) in probe.headers() {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("handshake");
        listeners.push((caller, own, foreign, stream));
    }
    // Foreign first, then each listener's own: "other" before "acme" before "other".
    for domain in ["other", "acme", "other"] {
        let response = server
            .request(Method::PUT, &format!("/logbook/v1/objects/vm/{domain}-mark-live"))
            .json(&json!({"name": format!("{domain}-mark live"), "state": "running", "domain_id": domain}))
            .send()
            .await
            .expect("put");
        assert_eq!(response.status(), 200);
    }
    for (caller, own, foreign, mut stream) in listeners {
        // "other" listens until its second change, which came after acme's.
        let needed = if own == "other" { 2 } else { 1 };
        let mut seen = String::new();
        let mut own_changes = 0;
        let wait = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(Ok(message)) = stream.next().await {
                if let Ok(text) = message.to_text() {
                    seen.push_str(text);
                    seen.push('\n');
                    if text.contains(&format!("{own}-mark")) {
                        own_changes += 1;
                        if own_changes == needed {
                            return;
                        }
                    }
                }
            }
        })
        .await;
        assert!(wait.is_ok(), "{caller:?} never saw its own changes: {seen}");
        if let Some(foreign) = foreign {
            let leaked = seen.contains(&format!("{foreign}-mark"));
            assert!(!leaked, "{caller:?} saw a change of {foreign}: {seen}");
        }
    }
    server.stop().await;
}
