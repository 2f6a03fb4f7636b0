//! The web UI in a real browser: `browser/suite.mjs` (Node's test runner with
//! playwright-core from npm) drives Debian's Chromium against a real server started
//! here. `.ci/run` installs Chromium; playwright-core is installed once per checkout
//! under Cargo's target directory from the committed lock file (`npm ci`).
//! It runs once per store; screenshots go to `target/tmp/ui-screenshots/{sqlite,postgres}/`.

use crate::support::{self, Backend, TestServer};
use std::path::{Path, PathBuf};

/// Where Debian's `chromium` package puts the browser; `CHROMIUM` overrides it.
const CHROMIUM: &str = "/usr/bin/chromium";

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// The folder holding `node_modules/playwright-core`, installed on first use with
/// `npm ci` from the committed lock file; reinstalled when the lock file changes.
fn node_modules() -> PathBuf {
    support::npm::node_modules(&tests_dir(), "ui-node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_in_chromium_on_sqlite() {
    the_web_ui_in_chromium(Backend::Sqlite, "sqlite").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_in_chromium_on_postgres() {
    the_web_ui_in_chromium(Backend::Postgres, "postgres").await
}

/// One browser at a time: two on two shared cores would only slow each other.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn the_web_ui_in_chromium(backend: Backend, name: &str) {
    let _turn = ONE_BROWSER.lock().await;
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: the browser tests need Debian's chromium package (.ci/run installs it)"
    );
    let modules = tokio::task::spawn_blocking(node_modules)
        .await
        .expect("npm task");
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("ui-screenshots")
        .join(name);
    let server = TestServer::start(backend).await;
    let output = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg(tests_dir().join("suite.mjs"))
        .env("LOGBOOK_URL", &server.base)
        .env("LOGBOOK_ADMIN_PASSWORD", support::ADMIN_PASSWORD)
        .env("LOGBOOK_ADMIN_TOKEN", &server.token)
        .env("CHROMIUM", &chromium)
        .env("NODE_MODULES", &modules)
        .env("SCREENSHOTS", &screenshots)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The figures (first-load size, render times) for the report, and the test list.
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser suite failed:\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await;
}
