//! The native API (`/logbook/v1/`), against every store.

use crate::support::{Backend, TestServer};
use logbook_core::Role;
use reqwest::Method;
use serde_json::{json, Value};

async fn ingests_one_object_an_array_and_ndjson(backend: Backend) {
    let server = TestServer::start(backend).await;
    let one = server
        .ingest(json!({"kind": "log", "level": "INFO", "message": "one"}))
        .await;
    assert_eq!(one, vec![1]);
    let array = server
        .ingest(json!([{"kind": "log", "message": "two"}, {"kind": "event", "category": "image"}]))
        .await;
    assert_eq!(array, vec![2, 3]);
    let response = server
        .request(Method::POST, "/logbook/v1/records")
        .header("content-type", "application/x-ndjson")
        .body(
            "{\"kind\":\"journal\",\"action\":\"a\"}\n\n{\"kind\":\"log\",\"message\":\"five\"}\n",
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"accepted": 2, "first_id": 4, "last_id": 5}));
    let listed = server.get_json("/logbook/v1/records?order=asc").await;
    let kinds: Vec<&str> = listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["log", "log", "event", "journal", "log"]);
    server.stop().await;
}

store_tests!(
    ingests_one_object_an_array_and_ndjson,
    every_list_filter_selects_exactly_its_records,
    levels_time_range_text_order_and_limit,
    get_one_count_and_not_found,
    ascending_cursor_pages_while_writing_have_no_gaps_or_duplicates,
    descending_cursor_pages_while_writing_stay_stable,
    ascending_cursor_on_the_last_page_resumes_with_new_records,
    missing_or_wrong_credentials_get_401,
    malformed_input_gets_400_naming_the_field,
    a_batch_with_one_bad_record_writes_nothing,
    oversize_bodies_get_413,
    a_large_ndjson_batch_is_read_as_it_arrives_and_a_late_bad_line_writes_nothing,
    an_ndjson_body_over_the_limit_is_refused_and_writes_nothing,
    export_streams_every_match_oldest_first,
    rare_values_far_behind_the_newest_records_are_found,
    setting_an_object_is_recorded_as_an_event,
    histogram_counts_every_bucket_of_the_range,
);

/// The ids of a `GET /logbook/v1/records` answer, in answer order.
fn ids(answer: &Value) -> Vec<i64> {
    answer["records"]
        .as_array()
        .expect("records array")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

async fn ids_for(server: &TestServer, query: &str) -> Vec<i64> {
    ids(&server
        .get_json(&format!("/logbook/v1/records?{query}"))
        .await)
}

const LIST_PARAMS: [&str; 15] = [
    "category",
    "source",
    "instance",
    "logger",
    "user",
    "user_id",
    "domain_id",
    "project_id",
    "object_type",
    "object_id",
    "action",
    "status",
    "response_code",
    "request_id",
    "kind",
];

async fn every_list_filter_selects_exactly_its_records(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Record 1 carries value "a..." in every field, record 2 "b...", record 3 nothing.
    let mut with_a = serde_json::Map::new();
    let mut with_b = serde_json::Map::new();
    for field in LIST_PARAMS.iter().filter(|f| **f != "kind") {
        with_a.insert((*field).into(), json!(format!("a-{field}")));
        with_b.insert((*field).into(), json!(format!("b-{field}")));
    }
    with_a.insert("kind".into(), json!("log"));
    with_b.insert("kind".into(), json!("event"));
    let ids_written = server
        .ingest(json!([with_a, with_b, {"kind": "journal", "domain_id": "other"}]))
        .await;
    assert_eq!(ids_written, [1, 2, 3]);
    for field in LIST_PARAMS {
        let (a, b) = if field == "kind" {
            ("log".to_string(), "event".to_string())
        } else {
            (format!("a-{field}"), format!("b-{field}"))
        };
        assert_eq!(
            ids_for(&server, &format!("{field}={a}")).await,
            [1],
            "{field}"
        );
        assert_eq!(
            ids_for(&server, &format!("{field}={b}")).await,
            [2],
            "{field}"
        );
        // Comma lists and repeated parameters both mean "any of".
        assert_eq!(
            ids_for(&server, &format!("{field}={a},{b}")).await,
            [2, 1],
            "{field} comma list"
        );
        assert_eq!(
            ids_for(&server, &format!("{field}={a}&{field}={b}")).await,
            [2, 1],
            "{field} repeated"
        );
        if field != "kind" {
            assert_eq!(
                ids_for(&server, &format!("{field}=zzz")).await,
                Vec::<i64>::new()
            );
        }
    }
    // Filters combine with AND.
    assert_eq!(
        ids_for(&server, "category=a-category&user=b-user").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        ids_for(&server, "category=a-category&user=a-user").await,
        [1]
    );
    server.stop().await;
}

async fn levels_time_range_text_order_and_limit(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .ingest(json!([
            {"kind": "log", "level": "debug", "ts": "2024-01-01T00:00:00Z", "message": "Cache warm"},
            {"kind": "log", "level": "INFO", "ts": 1704067260, "message": "pulled image nginx"},
            {"kind": "log", "level": "WARNING", "ts": 1704067320.5, "message": "Disk TIMEOUT on /var"},
            {"kind": "log", "level": "ERROR", "ts": "2024-01-01T00:03:00+00:00", "message": "container died: timeout"},
            {"kind": "log", "level": "critical", "ts": "2024-01-01T00:04:00.000001Z", "message": "node lost"},
        ]))
        .await;
    assert_eq!(ids_for(&server, "level=ERROR").await, [4]);
    assert_eq!(ids_for(&server, "level=warn,CRITICAL").await, [5, 3]);
    assert_eq!(ids_for(&server, "level=WARNING").await, [3]);
    assert_eq!(ids_for(&server, "min_level=WARN").await, [5, 4, 3]);
    assert_eq!(ids_for(&server, "min_level=debug").await, [5, 4, 3, 2, 1]);
    // since and until are both inclusive; RFC 3339 and epoch seconds both work.
    assert_eq!(
        ids_for(&server, "since=2024-01-01T00:01:00Z&until=1704067380").await,
        [4, 3, 2]
    );
    assert_eq!(
        ids_for(&server, "since=2024-01-01T00:01:00Z&until=1704067379.9").await,
        [3, 2]
    );
    assert_eq!(ids_for(&server, "since=1704067320.5").await, [5, 4, 3]);
    // Case-insensitive substring, short or long, over the message only.
    assert_eq!(ids_for(&server, "q=timeout").await, [4, 3]);
    assert_eq!(ids_for(&server, "q=TimeOut&level=ERROR").await, [4]);
    assert_eq!(ids_for(&server, "q=NO").await, [5]);
    assert_eq!(ids_for(&server, "q=e").await, [5, 4, 3, 2, 1]);
    assert_eq!(ids_for(&server, "q=never-written").await, Vec::<i64>::new());
    assert_eq!(ids_for(&server, "order=asc&limit=2").await, [1, 2]);
    assert_eq!(ids_for(&server, "limit=2").await, [5, 4]);
    // Records come back with the core's names and the level's upper-case name.
    let listed = server.get_json("/logbook/v1/records?level=WARNING").await;
    let record = &listed["records"][0];
    assert_eq!(record["level"], "WARN");
    assert_eq!(record["ts"], "2024-01-01T00:02:00.500000Z");
    assert_eq!(record["kind"], "log");
    assert_eq!(record["message"], "Disk TIMEOUT on /var");
    server.stop().await;
}

async fn get_one_count_and_not_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .ingest(json!([
            {"kind": "event", "category": "image", "data": {"b": 1, "a": [true, null]}},
            {"kind": "event", "category": "image"},
            {"kind": "log", "category": "export"},
        ]))
        .await;
    let one = server.get_json("/logbook/v1/records/1").await;
    assert_eq!(one["category"], "image");
    // The payload keeps its keys in written order.
    assert_eq!(
        serde_json::to_string(&one["data"]).expect("json"),
        r#"{"b":1,"a":[true,null]}"#
    );
    let count = server
        .get_json("/logbook/v1/records/count?category=image")
        .await;
    assert_eq!(count, json!({"count": 2}));
    let count = server.get_json("/logbook/v1/records/count").await;
    assert_eq!(count, json!({"count": 3}));
    let missing = server.get("/logbook/v1/records/99").await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("json");
    assert!(body["error"].is_string(), "{body}");
    let bad = server.get("/logbook/v1/records/abc").await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["field"], "id");
    server.stop().await;
}

/// Writes `batches` batches of `size` records in the background, one request each.
fn write_in_background(
    server: &TestServer,
    batches: usize,
    size: usize,
) -> tokio::task::JoinHandle<()> {
    let http = server.http.clone();
    let url = server.url("/logbook/v1/records");
    let token = server.token.clone();
    tokio::spawn(async move {
        for b in 0..batches {
            let batch: Vec<Value> = (0..size)
                .map(|i| json!({"kind": "log", "message": format!("batch {b} line {i}")}))
                .collect();
            let response = http
                .post(&url)
                .bearer_auth(&token)
                .json(&batch)
                .send()
                .await
                .expect("write");
            assert_eq!(response.status(), 201);
        }
    })
}

async fn ascending_cursor_pages_while_writing_have_no_gaps_or_duplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let writer = write_in_background(&server, 60, 7);
    let mut seen: Vec<i64> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        // Checked before reading: an empty page read after the writer finished means
        // everything has been seen.
        let writer_done = writer.is_finished();
        let path = match &cursor {
            Some(c) => format!("/logbook/v1/records?order=asc&limit=9&cursor={c}"),
            None => "/logbook/v1/records?order=asc&limit=9".to_string(),
        };
        let page = server.get_json(&path).await;
        let page_ids = ids(&page);
        seen.extend(&page_ids);
        cursor = page["next_cursor"].as_str().map(String::from);
        assert!(cursor.is_some(), "ascending pages always carry a cursor");
        if page_ids.is_empty() {
            if writer_done {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    writer.await.expect("writer");
    let expected: Vec<i64> = (1..=420).collect();
    assert_eq!(seen, expected, "every record exactly once, in id order");
    server.stop().await;
}

async fn descending_cursor_pages_while_writing_stay_stable(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .ingest(json!((0..50)
            .map(|i| json!({"kind": "log", "message": format!("old {i}")}))
            .collect::<Vec<_>>()))
        .await;
    let writer = write_in_background(&server, 20, 5);
    // Newest first: a cursor continues below the last id seen, so records written
    // meanwhile never shift the pages.
    let mut seen: Vec<i64> = Vec::new();
    let mut page = server.get_json("/logbook/v1/records?limit=8").await;
    loop {
        seen.extend(ids(&page));
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        page = server
            .get_json(&format!("/logbook/v1/records?limit=8&cursor={cursor}"))
            .await;
    }
    writer.await.expect("writer");
    let top = seen[0];
    assert!(top >= 50);
    let expected: Vec<i64> = (1..=top).rev().collect();
    assert_eq!(
        seen, expected,
        "no gaps, no duplicates below the first page"
    );
    server.stop().await;
}

async fn ascending_cursor_on_the_last_page_resumes_with_new_records(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .ingest(json!([{"kind": "log", "category": "a"}, {"kind": "log", "category": "b"}]))
        .await;
    let page = server
        .get_json("/logbook/v1/records?order=asc&category=a")
        .await;
    assert_eq!(ids(&page), [1]);
    let cursor = page["next_cursor"].as_str().expect("cursor on last page");
    server
        .ingest(json!([{"kind": "log", "category": "b"}, {"kind": "log", "category": "a"}]))
        .await;
    let resumed = server
        .get_json(&format!(
            "/logbook/v1/records?order=asc&category=a&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&resumed), [4], "exactly the records written since");
    let bad = server.get("/logbook/v1/records?cursor=not-a-cursor").await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["field"], "cursor");
    server.stop().await;
}

async fn missing_or_wrong_credentials_get_401(backend: Backend) {
    let server = TestServer::start(backend).await;
    let http = &server.http;
    let attempts = [
        http.get(server.url("/logbook/v1/records")),
        http.get(server.url("/logbook/v1/records"))
            .bearer_auth("lbk_wrong"),
        http.get(server.url("/logbook/v1/records"))
            .header("Authorization", "Token lbk_wrong"),
        http.get(server.url("/logbook/v1/records"))
            .header("X-Auth-Token", "lbk_wrong"),
        http.get(server.url("/logbook/v1/records"))
            .basic_auth("admin", Some("not-the-password")),
        http.post(server.url("/logbook/v1/records"))
            .json(&json!({"kind": "log"})),
        http.get(server.url("/logbook/v1/export")),
        http.get(server.url("/logbook/v1/records/count")),
    ];
    for attempt in attempts {
        let response = attempt.send().await.expect("send");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("json error");
        assert!(body["error"].is_string(), "{body}");
    }
    // Nothing was written by the refused POST; the wrong Basic password is the one
    // record: a failed login, journaled (issue 8).
    let count = server.get_json("/logbook/v1/records/count?kind=log").await;
    assert_eq!(count["count"], 0);
    let failed = server
        .get_json("/logbook/v1/records?kind=journal&action=dashboard.user.login&status=failure")
        .await;
    assert_eq!(failed["records"].as_array().map(Vec::len), Some(1));
    // Every accepted form of the right credentials works.
    for request in [
        http.get(server.url("/logbook/v1/records"))
            .header("Authorization", format!("Token {}", server.token)),
        http.get(server.url("/logbook/v1/records"))
            .header("X-Auth-Token", &server.token),
        http.get(server.url("/logbook/v1/records"))
            .basic_auth("admin", Some(&server.token)),
        http.get(server.url("/logbook/v1/records"))
            .basic_auth("admin", Some(crate::support::ADMIN_PASSWORD)),
    ] {
        assert_eq!(request.send().await.expect("send").status(), 200);
    }
    // The health check needs no credentials.
    let health = http.get(server.url("/healthz")).send().await.expect("send");
    assert_eq!(health.status(), 200);
    server.stop().await;
}

/// Posts `body` and returns the status and the `field` of the JSON error.
async fn rejected(server: &TestServer, body: &str, content_type: &str) -> (u16, Value) {
    let response = server
        .request(Method::POST, "/logbook/v1/records")
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let error: Value = response.json().await.expect("json error");
    assert!(error["error"].is_string(), "{error}");
    (status, error["field"].clone())
}

async fn malformed_input_gets_400_naming_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let json_type = "application/json";
    let cases = [
        (r#"{"kind": "log""#, json_type, "body"),
        ("42", json_type, "body"),
        ("[]", json_type, "body"),
        (r#"{"kind": "log", "level": "LOUD"}"#, json_type, "level"),
        (r#"{"kind": "log", "ts": "yesterday"}"#, json_type, "ts"),
        (r#"{"kind": "log", "ts": true}"#, json_type, "ts"),
        (r#"{"kind": "log", "user": 7}"#, json_type, "user"),
        (r#"{"kind": "log", "data": "text"}"#, json_type, "data"),
        (r#"{"kind": "metric"}"#, json_type, "kind"),
        (r#"{"kind": "log", "colour": "red"}"#, json_type, "colour"),
        (
            r#"[{"kind": "log"}, {"kind": "log", "ts": "2024-13-45"}]"#,
            json_type,
            "[1].ts",
        ),
        (
            "{\"kind\":\"log\"}\nnot json\n",
            "application/x-ndjson",
            "[1]",
        ),
    ];
    for (body, content_type, field) in cases {
        let (status, named) = rejected(&server, body, content_type).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(named, field, "{body}");
    }
    for (query, field) in [
        ("level=LOUD", "level"),
        ("min_level=7x", "min_level"),
        ("since=soon", "since"),
        ("until=2024-02-30T00:00:00Z", "until"),
        ("order=sideways", "order"),
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("kind=metric", "kind"),
        ("colour=red", "colour"),
    ] {
        let response = server.get(&format!("/logbook/v1/records?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["field"], field, "{query}: {error}");
    }
    let count = server.get_json("/logbook/v1/records/count").await;
    assert_eq!(count["count"], 0, "no rejected request wrote anything");
    server.stop().await;
}

async fn a_batch_with_one_bad_record_writes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut batch: Vec<Value> = (0..500)
        .map(|i| json!({"kind": "log", "message": i.to_string()}))
        .collect();
    batch.push(json!({"kind": "log", "level": 12.5}));
    let response = server.post_json("/logbook/v1/records", &json!(batch)).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["field"], "[500].level");
    let count = server.get_json("/logbook/v1/records/count").await;
    assert_eq!(count["count"], 0);
    server.stop().await;
}

async fn oversize_bodies_get_413(backend: Backend) {
    let config = logbook_server::Config {
        max_body_bytes: 4096,
        ..Default::default()
    };
    let server = TestServer::start_with(backend, config).await;
    let big = json!({"kind": "log", "message": "x".repeat(5000)});
    let response = server.post_json("/logbook/v1/records", &big).await;
    assert_eq!(response.status(), 413);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["field"], "body");
    assert!(
        error["error"].as_str().expect("message").contains("4096"),
        "{error}"
    );
    let small = json!({"kind": "log", "message": "x".repeat(100)});
    assert_eq!(
        server
            .post_json("/logbook/v1/records", &small)
            .await
            .status(),
        201
    );
    server.stop().await;
}

/// An NDJSON body of `lines` records, the line at `bad` (if any) refused for its
/// level; every record tagged `source=streamed`.
fn ndjson_lines(lines: usize, bad: Option<usize>) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..lines {
        let level = if Some(i) == bad { "LOUD" } else { "INFO" };
        let line = json!({"source": "streamed", "level": level, "message": format!("line {i} caf\u{e9}"),
                          "data": {"i": i, "tags": ["a", "b"]}});
        body.extend_from_slice(line.to_string().as_bytes());
        // Both line ends, and blank lines, which are skipped.
        body.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
        if i % 1000 == 999 {
            body.extend_from_slice(b"\n");
        }
    }
    body
}

/// POSTs an NDJSON body sent in chunks of odd sizes (so lines, and the `é`'s two
/// bytes, are cut across chunks), without a declared length.
async fn post_in_chunks(server: &TestServer, body: Vec<u8>) -> (u16, Value) {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(7919).map(|c| Ok(c.to_vec())).collect();
    let response = server
        .request(Method::POST, "/logbook/v1/records")
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn a_large_ndjson_batch_is_read_as_it_arrives_and_a_late_bad_line_writes_nothing(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let lines = 40_000;
    // A bad line near the end: nothing of the batch is written, the line is named.
    let (status, error) = post_in_chunks(&server, ndjson_lines(lines, Some(lines - 2))).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["field"], format!("[{}].level", lines - 2), "{error}");
    // A bad line near the start of a large body: the body is still read to its
    // end, so the client gets the 400 rather than a reset connection.
    let (status, error) = post_in_chunks(&server, ndjson_lines(lines, Some(2))).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["field"], "[2].level", "{error}");
    let mut broken = ndjson_lines(10, None);
    broken.extend_from_slice(b"{\"message\": \"cut\n");
    broken.extend_from_slice(&ndjson_lines(10, None));
    let (status, error) = post_in_chunks(&server, broken).await;
    assert_eq!((status, &error["field"]), (400, &json!("[10]")), "{error}");
    assert_eq!(
        count_of(&server, "source=streamed").await,
        0,
        "nothing written"
    );

    // The same body without the bad line: every record, in order, intact.
    let (status, accepted) = post_in_chunks(&server, ndjson_lines(lines, None)).await;
    assert_eq!(status, 201, "{accepted}");
    assert_eq!(accepted["accepted"], lines, "{accepted}");
    assert_eq!(count_of(&server, "source=streamed").await, lines as u64);
    let first = accepted["first_id"].as_i64().expect("first id");
    let at = |i: i64| format!("/logbook/v1/records/{}", first + i);
    let record = server.get_json(&at(lines as i64 - 1)).await;
    assert_eq!(record["message"], format!("line {} caf\u{e9}", lines - 1));
    assert_eq!(record["data"], json!({"i": lines - 1, "tags": ["a", "b"]}));
    assert_eq!(server.get_json(&at(0)).await["message"], "line 0 caf\u{e9}");
    server.stop().await;
}

async fn an_ndjson_body_over_the_limit_is_refused_and_writes_nothing(backend: Backend) {
    let config = logbook_server::Config {
        max_body_bytes: 4096,
        ..Default::default()
    };
    let server = TestServer::start_with(backend, config).await;
    let body = ndjson_lines(60, None);
    assert!(body.len() > 4096 && body.len() < 16384, "{}", body.len());
    let (status, error) = post_in_chunks(&server, body).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["field"], "body");
    assert!(
        error["error"].as_str().expect("message").contains("4096"),
        "{error}"
    );
    assert_eq!(
        count_of(&server, "source=streamed").await,
        0,
        "nothing written"
    );
    let (status, accepted) = post_in_chunks(&server, ndjson_lines(10, None)).await;
    assert_eq!(
        (status, &accepted["accepted"]),
        (201, &json!(10)),
        "{accepted}"
    );
    server.stop().await;
}

async fn count_of(server: &TestServer, query: &str) -> u64 {
    server
        .get_json(&format!("/logbook/v1/records/count?{query}"))
        .await["count"]
        .as_u64()
        .expect("count")
}

async fn export_streams_every_match_oldest_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rows: Vec<Value> = (0..2500)
        .map(|i| {
            json!({"kind": "log", "level": if i % 10 == 0 { "ERROR" } else { "INFO" },
                   "category": "image", "user": "alice", "message": format!("line {i}, \"quoted\"")})
        })
        .collect();
    server.ingest(json!(rows)).await;
    server
        .ingest(json!({"kind": "log", "level": "ERROR", "message": "=HYPERLINK(\"http://x\")"}))
        .await;
    let ndjson = server
        .get("/logbook/v1/export?format=ndjson&level=ERROR")
        .await;
    assert_eq!(ndjson.status(), 200);
    let text = ndjson.text().await.expect("body");
    let exported: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson line"))
        .collect();
    assert_eq!(exported.len(), 251);
    let exported_ids: Vec<i64> = exported
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    let mut sorted = exported_ids.clone();
    sorted.sort_unstable();
    assert_eq!(exported_ids, sorted, "oldest first");
    assert_eq!(exported[0]["message"], "line 0, \"quoted\"");
    let csv = server
        .get("/logbook/v1/export?format=csv&level=ERROR")
        .await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/csv"));
    let text = csv.text().await.expect("body");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    let message_column = headers
        .iter()
        .position(|h| h == "message")
        .expect("message column");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 251);
    assert_eq!(&rows[0][message_column], "line 0, \"quoted\"");
    assert_eq!(&rows[250][message_column], "'=HYPERLINK(\"http://x\")");
    let bad = server.get("/logbook/v1/export?format=xml").await;
    assert_eq!(bad.status(), 400);
    server.stop().await;
}

/// Values that occur only long before the newest records are found through the
/// indexes, not by scanning from the newest (the planner's probes).
async fn rare_values_far_behind_the_newest_records_are_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut rare = serde_json::Map::new();
    for field in LIST_PARAMS.iter().filter(|f| **f != "kind") {
        rare.insert((*field).into(), json!(format!("rare-{field}")));
    }
    rare.insert("kind".into(), json!("journal"));
    rare.insert("level".into(), json!("CRITICAL"));
    rare.insert("message".into(), json!("the needle in the haystack"));
    server.ingest(json!([rare])).await;
    let filler: Vec<Value> = (0..6000)
        .map(|i| json!({"kind": "log", "level": "INFO", "category": "noise", "message": format!("filler {i}")}))
        .collect();
    server.ingest(json!(filler)).await;
    for field in LIST_PARAMS {
        let value = if field == "kind" {
            "journal".to_string()
        } else {
            format!("rare-{field}")
        };
        assert_eq!(
            ids_for(&server, &format!("{field}={value}&limit=5")).await,
            [1],
            "{field}"
        );
        let count = server
            .get_json(&format!("/logbook/v1/records/count?{field}={value}"))
            .await;
        assert_eq!(count["count"], 1, "{field}");
    }
    assert_eq!(ids_for(&server, "min_level=CRITICAL&limit=5").await, [1]);
    assert_eq!(ids_for(&server, "q=needle&limit=5").await, [1]);
    assert_eq!(
        ids_for(&server, "q=NEEDLE%20in&category=rare-category&limit=5").await,
        [1]
    );
    assert_eq!(
        ids_for(&server, "q=needle%20out&limit=5").await,
        Vec::<i64>::new()
    );
    server.stop().await;
}

async fn setting_an_object_is_recorded_as_an_event(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = json!({"name": "web", "state": "running", "parent": {"type": "service", "id": "s1"},
                      "attributes": {"image": "nginx"}});
    let response = server
        .request(Method::PUT, "/logbook/v1/objects/docker/c1")
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 200);
    let object: Value = response.json().await.expect("json");
    assert_eq!(object["state"], "running");
    assert_eq!(object["parent"], json!({"type": "service", "id": "s1"}));
    let events = server
        .get_json("/logbook/v1/records?kind=event&category=object")
        .await;
    let event = &events["records"][0];
    assert_eq!(event["object_type"], "docker");
    assert_eq!(event["object_id"], "c1");
    assert_eq!(event["user"], "admin");
    assert_eq!(event["data"], body);
    let read = server.get_json("/logbook/v1/objects/docker/c1").await;
    assert_eq!(read["attributes"], json!({"image": "nginx"}));
    // A refused change writes neither the object nor its event.
    let bad = server
        .request(Method::PUT, "/logbook/v1/objects/docker/c2")
        .json(&json!({"state": 3}))
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.expect("json");
    assert_eq!(error["field"], "state");
    assert_eq!(
        server.get("/logbook/v1/objects/docker/c2").await.status(),
        404
    );
    let count = server
        .get_json("/logbook/v1/records/count?kind=event&category=object")
        .await;
    assert_eq!(count["count"], 1);
    server.stop().await;
}

/// The `GET /logbook/v1/histogram` answer for `query`, with its status.
async fn histogram(server: &TestServer, token: Option<&str>, query: &str) -> (u16, Value) {
    let path = format!("/logbook/v1/histogram?{query}");
    let request = match token {
        Some(token) => reqwest::Client::new()
            .get(server.url(&path))
            .bearer_auth(token),
        None => server.request(Method::GET, &path),
    };
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn histogram_counts_every_bucket_of_the_range(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Minute buckets from 2026-01-01T00:00:00Z (1767225600).
    let t0 = 1_767_225_600i64;
    server
        .ingest(json!([
            {"kind": "log", "ts": t0 + 5, "level": "INFO", "category": "image", "message": "pull ok"},
            {"kind": "log", "ts": t0 + 59, "level": "ERROR", "category": "image", "message": "pull timeout"},
            {"kind": "log", "ts": t0 + 60, "level": "INFO", "category": "network", "message": "up"},
            {"kind": "event", "ts": t0 + 185, "category": "image", "message": "timeout again"},
            {"kind": "log", "ts": t0 + 170, "level": "INFO", "domain_id": "acme", "message": "acme's"},
            {"kind": "log", "ts": t0 + 400, "level": "INFO", "message": "after the range"},
        ]))
        .await;
    let range = format!("since={t0}&until={}", t0 + 239);
    let (status, all) = histogram(&server, None, &format!("{range}&interval=1m&by=level")).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["interval_seconds"], json!(60.0));
    assert_eq!(all["by"], json!("level"));
    assert_eq!(all["total"], json!(5));
    assert_eq!(
        all["buckets"],
        json!([
            {"ts": "2026-01-01T00:00:00.000000Z", "count": 2, "by": {"INFO": 1, "ERROR": 1}},
            {"ts": "2026-01-01T00:01:00.000000Z", "count": 1, "by": {"INFO": 1}},
            {"ts": "2026-01-01T00:02:00.000000Z", "count": 1, "by": {"INFO": 1}},
            {"ts": "2026-01-01T00:03:00.000000Z", "count": 1, "by": {"": 1}},
        ])
    );

    // Filters are the list's filters; without `by` there is no split.
    let (_, filtered) = histogram(&server, None, &format!("{range}&interval=120&q=TIMEOUT")).await;
    let counts: Vec<i64> = filtered["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["count"].as_i64().expect("count"))
        .collect();
    assert_eq!(counts, [1, 1]);
    assert!(filtered["buckets"][0].get("by").is_none(), "{filtered}");

    // A domain's user counts only its domain's records.
    let acme = server
        .user_with_token("acme-reader", Role::User, "acme")
        .await;
    let (_, scoped) = histogram(&server, Some(&acme), &format!("{range}&interval=4m")).await;
    assert_eq!(scoped["total"], json!(1), "{scoped}");

    // Without `since`, the last 24 hours, in about a hundred round buckets.
    server
        .ingest(json!({"kind": "log", "message": "now"}))
        .await;
    let (_, recent) = histogram(&server, None, "").await;
    assert_eq!(recent["total"], json!(1), "{recent}");
    assert_eq!(recent["interval_seconds"], json!(900.0));

    for (query, field) in [
        ("interval=0", "interval"),
        ("interval=soon", "interval"),
        ("by=message", "by"),
        ("by=colour", "by"),
        ("since=0&until=86400&interval=1s", "interval"),
        ("since=200&until=100", "since"),
        ("bucket=5", "bucket"),
    ] {
        let (status, body) = histogram(&server, None, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["field"], json!(field), "{query}: {body}");
    }
    server.stop().await;
}
