//! A Python virtualenv with the real client libraries the dialects must satisfy,
//! created once per checkout under Cargo's target directory (pinned versions from
//! PyPI). Tests run Python scripts in it against a live server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Pinned: the versions the dialect and shipper issues name as the judges (and
/// what the shipper tests build requests with: protoc from grpcio-tools for Loki's
/// protobuf definitions, python-snappy for its block compression; PyNaCl's Ed25519
/// checks checkpoint signatures in the independent proof verifier; Schemathesis
/// fuzzes the native API from its OpenAPI document, which openapi-spec-validator checks).
pub const REQUIREMENTS: &[&str] = &[
    "waldur-api-client==8.1.3",
    "python-dockercloud==1.0.12",
    "elasticsearch==9.5.1",
    "opensearch-py==3.2.0",
    "python-logging-loki==0.3.1",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
    "grpcio-tools==1.85.1",
    "python-snappy==0.7.3",
    "pynacl==1.6.2",
    "schemathesis==4.32.5",
    "openapi-spec-validator==0.9.0",
];

static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The venv's python, creating the venv on first use. Panics with the pip output if
/// it cannot be created: a test that needs the real client must not pass without it.
pub fn python() -> PathBuf {
    let result = VENV.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyenv");
        // Named by a digest of the pins (their joined names outgrow a file name).
        let digest = super::digest(REQUIREMENTS.join("+").as_bytes());
        let marker = dir.join(format!(".ready-{digest:016x}"));
        let python = dir.join("bin").join("python");
        if marker.exists() {
            return Ok(python);
        }
        let interpreter = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(&interpreter).args(["-m", "venv"]).arg(&dir))?;
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(REQUIREMENTS))?;
        std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
        Ok(python)
    });
    match result {
        Ok(p) => p.clone(),
        Err(e) => panic!("cannot prepare the Python client virtualenv: {e}"),
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Runs a Python script with the given environment without blocking the server
/// under test; returns stdout, panicking with stdout and stderr if it fails.
pub async fn run_script(script: &Path, env: &[(&str, String)]) -> String {
    let python = tokio::task::spawn_blocking(python)
        .await
        .expect("venv task");
    let mut command = tokio::process::Command::new(python);
    command.arg(script).kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().await.expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} failed:\n--- stdout\n{stdout}\n--- stderr\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
