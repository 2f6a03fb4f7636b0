//! The QNAP system log's CSV safety, authentication and clear (part of the `qnap`
//! tests).

use super::{listed_ids, seeded};
use crate::support::{Backend, TestServer, ADMIN_PASSWORD};
use logbook_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

crate::store_tests!(
    export_quotes_and_neutralises_formulas,
    unauthenticated_calls_and_non_admin_clears_are_refused,
    clear_removes_only_system_logs_and_is_journaled,
);

async fn export_quotes_and_neutralises_formulas(backend: Backend) {
    let server = TestServer::start(backend).await;
    let messages = [
        "=HYPERLINK(\"http://evil\",\"x\")",
        "+1+2",
        "-3",
        "@SUM(A1)",
        "\tindented",
        "\rreturn",
        "say \"hi\", then go",
        "two\nlines",
        "plain = text",
    ];
    let records: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({"kind": "log", "ts": 1432022739 + i as i64, "level": "INFO",
            "category": "system", "user": if i == 0 { "=cmd" } else { "ops" }, "message": m})
        })
        .collect();
    server.ingest(Value::Array(records)).await;
    server
        .ingest(json!({"kind": "event", "category": "system", "message": "=not a log"}))
        .await;
    let response = server.get("/api/v1/log/export").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/csv"));
    let disposition = headers["content-disposition"]
        .to_str()
        .expect("disposition");
    assert!(
        disposition.starts_with("attachment; filename="),
        "{disposition}"
    );
    let body = response.text().await.expect("body");
    let expected = [
        "Date,Level,Category,User,Message",
        "2015-05-19 08:05:39.000000,INFO,system,'=cmd,\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\"",
        "2015-05-19 08:05:40.000000,INFO,system,ops,'+1+2",
        "2015-05-19 08:05:41.000000,INFO,system,ops,'-3",
        "2015-05-19 08:05:42.000000,INFO,system,ops,'@SUM(A1)",
        "2015-05-19 08:05:43.000000,INFO,system,ops,'\tindented",
        "2015-05-19 08:05:44.000000,INFO,system,ops,\"'\rreturn\"",
        "2015-05-19 08:05:45.000000,INFO,system,ops,\"say \"\"hi\"\", then go\"",
        "2015-05-19 08:05:46.000000,INFO,system,ops,\"two\nlines\"",
        "2015-05-19 08:05:47.000000,INFO,system,ops,plain = text",
    ];
    let expected: String = expected.iter().map(|l| format!("{l}\r\n")).collect();
    assert_eq!(body, expected);
    // The export takes the list's filters.
    let filtered = server
        .get("/api/v1/log/export?user=ops&text=LINES,&time_start=1432022746")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(filtered, "Date,Level,Category,User,Message\r\n");
    let filtered = server
        .get("/api/v1/log/export?user=ops&text=LINES&time_start=1432022746&level=info")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(
        filtered,
        "Date,Level,Category,User,Message\r\n2015-05-19 08:05:46.000000,INFO,system,ops,\"two\nlines\"\r\n"
    );
    server.stop().await;
}

async fn unauthenticated_calls_and_non_admin_clears_are_refused(backend: Backend) {
    let server = seeded(backend).await;
    for path in [
        "/api/v1/log",
        "/api/v1/log/export",
        "/api/v1/event",
        "/api/v1/event/wait/lxc/utest/running",
    ] {
        let response = server
            .http
            .get(server.url(path))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = response.json().await.expect("json");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    // A wrong password: 401 with the `error` key the document's login check reads.
    let response = server
        .http
        .post(server.url("/api/v1/login"))
        .form(&[("username", "admin"), ("password", "wrong")])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("set-cookie").is_none());
    let body: Value = response.json().await.expect("json");
    assert!(body["error"].is_string(), "{body}");

    // A user's token reads, but may not clear.
    let token = server
        .user_with_token("viewer", Role::User, "default")
        .await;
    let response = server
        .http
        .delete(server.url("/api/v1/log"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.expect("json");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(
        listed_ids(&server, "limit=1").await,
        vec![57],
        "nothing was deleted"
    );

    // The session cookie from a form login is HttpOnly and SameSite=Lax, and works.
    let response = server
        .http
        .post(server.url("/api/v1/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let session = cookie.split(';').next().expect("name=value").to_string();
    let response = server
        .http
        .get(server.url("/api/v1/log?limit=1"))
        .header("Cookie", session)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    server.stop().await;
}

async fn clear_removes_only_system_logs_and_is_journaled(backend: Backend) {
    let server = seeded(backend).await;
    let before_events = server.get_json("/api/v1/event").await;
    let response = server
        .request(Method::DELETE, "/api/v1/log")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"records": 57})
    );
    assert_eq!(server.get_json("/api/v1/log").await, json!([]));
    assert_eq!(server.get_json("/api/v1/event").await, before_events);
    let journal = server
        .get_json("/logbook/v1/records?kind=journal&action=logbook.log.clear")
        .await;
    let entries = journal["records"].as_array().expect("records");
    assert_eq!(entries.len(), 1, "{journal}");
    assert_eq!(entries[0]["user"], "admin");
    assert_eq!(entries[0]["data"]["records"], 57);
    // The removal keeps the proof: its journal entry names the range it removed.
    assert_eq!(entries[0]["data"]["removed"]["count"], 57);
    assert!(entries[0]["data"]["removed"]["first_id"].is_i64());
    assert!(entries[0]["ts"].is_string());
    // A second clear finds nothing, and says so.
    let again: Value = server
        .request(Method::DELETE, "/api/v1/log")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(again, json!({"records": 0}));
    server.stop().await;
}
