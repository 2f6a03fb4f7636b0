//! `GET /logbook/v1/openapi.json` (issue 20, point 2): an OpenAPI 3.1 document of
//! the native API, valid by `openapi-spec-validator`, describing what the router
//! serves, and a Schemathesis run over it against a real server that finds no
//! 5xx and no answer the document does not allow.

use crate::support::python::python;
use crate::support::{Backend, TestServer};
use reqwest::Method;
use serde_json::Value;
use std::path::Path;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(server: &TestServer) -> Value {
    let response = server.get("/logbook/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("a JSON document")
}

/// Runs the venv's python with `args` without blocking the server under test;
/// returns whether it succeeded and what it printed.
async fn run_python(args: &[&str]) -> (bool, String) {
    let python = tokio::task::spawn_blocking(python)
        .await
        .expect("venv task");
    let output = tokio::process::Command::new(python)
        .args(args)
        // Schemathesis keeps a cache in its working directory; not in the checkout.
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .kill_on_drop(true)
        .output()
        .await
        .expect("run python");
    let text = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi_3_1_and_authenticated() {
    let server = TestServer::start(Backend::Sqlite).await;
    let anonymous = server
        .http
        .get(server.url("/logbook/v1/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401, "only health checks are public");

    let doc = document(&server).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).expect("write the document");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/openapi_validate.py");
    let (ok, output) = run_python(&[
        script.to_str().expect("UTF-8 path"),
        file.to_str().expect("UTF-8 path"),
    ])
    .await;
    assert!(ok, "openapi-spec-validator refused the document:\n{output}");
    for scheme in ["basic", "bearer", "session"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "security scheme {scheme}"
        );
    }
    server.stop().await;
}

/// The router is built from the handlers' `#[utoipa::path]` attributes, so every
/// documented operation is served; this checks it from outside (an anonymous call
/// of each documented operation reaches its handler: 401, or an answer for the
/// public ones, never the router's 404 or 405) and that a path answers no method
/// the document does not list for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_no_other_method() {
    let server = TestServer::start(Backend::Sqlite).await;
    let doc = document(&server).await;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 30, "{} paths", paths.len());
    for (path, item) in paths {
        // A value that every path parameter's parser takes.
        let concrete = path
            .split('/')
            .map(|segment| match segment.starts_with('{') {
                true => "1",
                false => segment,
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in METHODS {
            let documented = item.get(method);
            let request = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let status = server
                .http
                .request(request, server.url(&concrete))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16();
            match documented {
                Some(operation) => {
                    let public = operation["security"].as_array().is_some_and(|s| {
                        s.iter()
                            .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
                    });
                    if public {
                        assert!(![404, 405].contains(&status), "{method} {path}: {status}");
                    } else {
                        assert_eq!(status, 401, "{method} {path} without credentials");
                    }
                }
                None => assert_eq!(status, 405, "{method} {path} is not documented"),
            }
        }
    }
    server.stop().await;
}

/// Schemathesis's command line over the server's document with the admin's token:
/// every answer checked for 5xx, its status, content type and body shape against
/// the document. Bounded: a few examples per operation, no shrinking wait.
async fn schemathesis(server: &TestServer, filter: &[&str]) -> (bool, String) {
    let schema = server.url("/logbook/v1/openapi.json");
    let authorization = format!("Authorization: Bearer {}", server.token);
    let mut args = vec![
        "-m",
        "schemathesis.cli",
        "run",
        &schema,
        "--url",
        &server.base,
        "-H",
        &authorization,
        "--checks",
        "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
        "--max-examples",
        "15",
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "2",
        "--seed",
        "20",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
    ];
    args.extend_from_slice(filter);
    run_python(&args).await
}

/// Schemathesis over every operation but the live stream, which never ends, so
/// no answer of it can be checked (its filters are the ones list and count take,
/// which are checked). Token revocation runs last, alone: it may revoke the very
/// token the run authenticates with, after which every answer would be 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let server = TestServer::start(Backend::Sqlite).await;
    // Something to read, prove and page over.
    server
        .ingest(serde_json::json!([
            {"message": "first", "level": "INFO", "source": "api"},
            {"kind": "event", "message": "second", "level": "ERROR"},
            {"kind": "journal", "message": "third"},
        ]))
        .await;
    let (ok, output) = schemathesis(
        &server,
        &[
            "--exclude-path",
            "/logbook/v1/stream",
            "--exclude-method",
            "DELETE",
        ],
    )
    .await;
    println!("{output}");
    assert!(ok, "Schemathesis found failures:\n{output}");
    assert!(
        output.contains("Tested: 37"),
        "37 operations tested:\n{output}"
    );
    let (ok, output) = schemathesis(&server, &["--include-method", "DELETE"]).await;
    println!("{output}");
    assert!(ok, "Schemathesis found failures:\n{output}");
    assert!(output.contains("Tested: 1"), "DELETE tested:\n{output}");
    server.stop().await;
}

/// Found by Schemathesis: an offset above the largest signed 64-bit integer
/// answered 500 (SQLite's "datatype mismatch") on the action and object listings;
/// every listing now refuses it by name.
async fn offsets_beyond_64_bit_signed_are_refused_by_name(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in [
        "/logbook/v1/actions",
        "/logbook/v1/objects",
        "/logbook/v1/records",
        "/api/audit/v1/action/",
    ] {
        let response = server
            .get(&format!("{path}?offset=9223372036854775808"))
            .await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.expect("JSON error");
        assert_eq!(body["field"], "offset", "{path}: {body}");
        let response = server
            .get(&format!("{path}?offset=9223372036854775807"))
            .await;
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, 200, "{path} at the largest offset: {text}");
    }
    server.stop().await;
}

store_tests!(offsets_beyond_64_bit_signed_are_refused_by_name);
