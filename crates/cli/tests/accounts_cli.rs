//! What only real processes show: the CLI managing accounts in the data directory
//! while a server runs on it, and HTTPS with Secure cookies.

use crate::support::process::Node;
use serde_json::{json, Value};
use std::process::Command;

const TOKEN: &str = "lbk_accounts_test_admin_token_0123456789";

fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(crate::support::binary())
        .args(args)
        .args(["--data", dir.to_str().expect("utf-8")])
        .env("LOGBOOK_PASSWORD", "cli-password-1")
        .env_remove("LOGBOOK_DATA")
        .output()
        .expect("run logbook");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_accounts_beside_a_running_server() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let node = Node::spawn_on_dir(dir.path(), TOKEN);
    let http = reqwest::Client::new();

    let (ok, out, err) = cli(
        dir.path(),
        &[
            "user", "add", "frank", "--role", "writer", "--domain", "ops",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.is_empty(), "user add prints nothing on stdout: {out}");
    let (ok, out, err) = cli(
        dir.path(),
        &[
            "token",
            "create",
            "--user",
            "frank",
            "--name",
            "deploy",
            "--expires",
            "30d",
        ],
    );
    assert!(ok, "{err}");
    // Only the token on stdout, so `$(logbook token create ...)` captures it.
    let token = out.trim_end_matches('\n');
    assert!(
        token.starts_with("lbk_") && !token.contains(char::is_whitespace),
        "{out:?}"
    );

    let who: Value = http
        .get(node.url("/logbook/v1/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (
            who["user"].as_str(),
            who["role"].as_str(),
            who["domain"].as_str()
        ),
        (Some("frank"), Some("writer"), Some("ops"))
    );
    let response = http
        .post(node.url("/logbook/v1/login"))
        .json(&json!({"username": "frank", "password": "cli-password-1"}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);

    let (ok, out, err) = cli(dir.path(), &["token", "list"]);
    assert!(ok, "{err}");
    let line = out.lines().find(|l| l.contains("deploy")).expect("listed");
    assert!(
        line.contains("frank") && line.contains("active") && !out.contains(token),
        "{out}"
    );
    let id = line.split_whitespace().next().expect("id");
    let (ok, _, err) = cli(dir.path(), &["token", "revoke", id]);
    assert!(ok, "{err}");
    let response = http
        .get(node.url("/logbook/v1/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .expect("whoami");
    assert_eq!(
        response.status(),
        401,
        "a token revoked by the CLI is refused at once"
    );

    let (ok, _, err) = cli(dir.path(), &["user", "disable", "frank"]);
    assert!(ok, "{err}");
    let response = http
        .post(node.url("/logbook/v1/login"))
        .json(&json!({"username": "frank", "password": "cli-password-1"}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 401);
    let (ok, _, err) = cli(
        dir.path(),
        &["token", "create", "--user", "frank", "--expires", "soon"],
    );
    assert!(!ok && err.contains("--expires"), "{err}");

    // The CLI's changes are in the audit trail, attributed to the CLI.
    let listed: Value = http
        .get(node.url("/logbook/v1/records?category=security&user=cli&order=asc"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let actions: Vec<&str> = listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "logbook.user.create",
            "logbook.token.create",
            "logbook.token.revoke",
            "logbook.user.update"
        ]
    );
    assert!(node.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_with_secure_cookies() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let (cert, key) = (
        format!("{fixtures}/tls-cert.pem"),
        format!("{fixtures}/tls-key.pem"),
    );
    let node = Node::spawn(
        &[
            "--data",
            dir.path().to_str().expect("utf-8"),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        TOKEN,
    );
    assert!(node.base.starts_with("https://"), "{}", node.base);
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let response = http
        .post(node.url("/logbook/v1/login"))
        .json(&json!({"username": "admin", "password": crate::support::ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login over TLS");
    assert_eq!(response.status(), 200);
    let set = response
        .headers()
        .get("set-cookie")
        .expect("cookie")
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        set.contains("; Secure") && set.contains("HttpOnly"),
        "{set}"
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(node.url("/healthz").replace("https://", "http://"))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
    // A bad certificate path stops the start with a clear message.
    let output = Command::new(crate::support::binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            dir.path().to_str().expect("utf-8"),
            "--tls-cert",
            "/nonexistent.pem",
            "--tls-key",
            &key,
        ])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tls-cert"));
    assert!(node.terminate());
}
