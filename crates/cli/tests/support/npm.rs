//! npm packages the tests drive (real clients, a browser driver), installed once per
//! checkout under Cargo's target directory with `npm ci` from a committed lock file,
//! and again when the lock file changes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One `npm ci` at a time: two suites may want theirs at once.
static INSTALLING: Mutex<()> = Mutex::new(());

/// `node_modules` for the `package.json` and `package-lock.json` in `source`,
/// installed under `target/tmp/<name>`. Panics with npm's output if it cannot be:
/// a test that needs the real client must not pass without it.
pub fn node_modules(source: &Path, name: &str) -> PathBuf {
    let _turn = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    match install(source, name) {
        Ok(dir) => dir.join("node_modules"),
        Err(e) => panic!(
            "cannot install the npm packages of {}: {e}",
            source.display()
        ),
    }
}

fn install(source: &Path, name: &str) -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let lock = std::fs::read(source.join("package-lock.json")).map_err(|e| e.to_string())?;
    let marker = dir.join(format!(".ready-{:016x}", super::digest(&lock)));
    if marker.exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(source.join(file), dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("npm: {e} (Node.js and npm are needed)"))?;
    if !output.status.success() {
        return Err(format!(
            "npm ci failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
    Ok(dir)
}
