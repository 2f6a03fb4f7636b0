//! The real clients the shipper tests drive: Python scripts in the shared venv,
//! Node.js scripts with the npm packages pinned by `tests/node/package-lock.json`
//! (installed under the target directory), and Debian tools installed on first use.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::support::{Backend, TestServer};
use logbook_server::Config;

pub fn python_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Runs a Python shipper script and parses the JSON it prints last.
pub async fn run_python(name: &str, env: &[(&str, String)]) -> Value {
    let out = crate::support::python::run_script(&python_script(name), env).await;
    last_json(&out)
}

pub fn last_json(out: &str) -> Value {
    let line = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A writer account in `domain` and its token.
pub async fn writer(server: &TestServer, name: &str, domain: &str) -> String {
    server
        .user_with_token(name, logbook_core::Role::Writer, domain)
        .await
}

/// A server whose body limit is `limit` bytes.
pub async fn with_body_limit(backend: Backend, limit: usize) -> TestServer {
    let config = Config {
        max_body_bytes: limit,
        ..Config::default()
    };
    TestServer::start_with(backend, config).await
}

/// How many records the store holds, as the admin counts them.
pub async fn count(server: &TestServer) -> u64 {
    let body = server.get_json("/logbook/v1/records/count").await;
    body["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no count in {body}"))
}

/// A POST without credentials.
pub async fn post_anonymous(
    server: &TestServer,
    url: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    server
        .http
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("post")
}

/// Every record, oldest first, as the admin reads them.
pub async fn all_records(server: &TestServer) -> Vec<Value> {
    let page = server
        .get_json("/logbook/v1/records?order=asc&limit=10000")
        .await;
    page["records"].as_array().cloned().unwrap_or_default()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("compress");
    encoder.finish().expect("compress")
}

/// `node_modules` with the npm packages pinned by `tests/node/package-lock.json`.
pub fn node_modules() -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    crate::support::npm::node_modules(&source, "nodeenv")
}

/// Runs a Node.js script (CommonJS) from `tests/node` and parses its last line.
pub async fn run_node(name: &str, env: &[(&str, String)]) -> Value {
    let modules = tokio::task::spawn_blocking(node_modules)
        .await
        .expect("npm task");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/node")
        .join(name);
    let mut command = tokio::process::Command::new("node");
    command
        .arg(&script)
        .env("NODE_PATH", modules)
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().await.expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed:\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    last_json(&stdout)
}

static APT: Mutex<()> = Mutex::new(());

/// The path of a program from a Debian package, installing the package (as root,
/// with apt-get) if the program is missing. `version_of` pins the package to the
/// installed version of another one (systemd-journal-remote must not upgrade the
/// machine's systemd).
pub fn debian_program(program: &str, package: &str, version_of: Option<&str>) -> PathBuf {
    let _guard = APT.lock().unwrap_or_else(|e| e.into_inner());
    let find = || {
        [
            "/usr/bin",
            "/usr/sbin",
            "/bin",
            "/sbin",
            "/lib/systemd",
            "/usr/lib/systemd",
        ]
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.exists())
    };
    if let Some(path) = find() {
        return path;
    }
    let spec = match version_of {
        Some(other) => {
            let version = Command::new("dpkg-query")
                .args(["-W", "-f=${Version}", other])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            assert!(!version.is_empty(), "{other} is not installed");
            format!("{package}={version}")
        }
        None => package.to_string(),
    };
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", &spec])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install().is_err() {
        let _ = run(Command::new("apt-get").args(["update", "-q"]));
        if let Err(e) = install() {
            panic!("{program} is missing and `apt-get install {spec}` failed: {e}");
        }
    }
    find().unwrap_or_else(|| panic!("{package} installed no {program}"))
}

pub fn run(command: &mut Command) -> Result<String, String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{command:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
