//! The processes the benchmark measures: a real `logbook serve`, and a trivial
//! handler on the same server stack, each started from this same binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

pub struct Child {
    process: std::process::Child,
    base: String,
    token: String,
    noop: bool,
}

impl Child {
    pub fn serve(data: &Path) -> anyhow::Result<Child> {
        Child::serve_binary(&std::env::current_exe()?, data)
    }

    /// `serve` from another `logbook` binary (another build, measured with this
    /// build's client).
    pub fn serve_binary(binary: &Path, data: &Path) -> anyhow::Result<Child> {
        let token = logbook_server::auth::secrets::new_token();
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("LOGBOOK_ADMIN_TOKEN", &token)
            .env("LOGBOOK_ADMIN_PASSWORD", &token);
        Child::start(command, token, false)
    }

    /// A node with these store arguments (e.g. `--database URL`).
    pub fn serve_with(store: &[&str]) -> anyhow::Result<Child> {
        let token = logbook_server::auth::secrets::new_token();
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(store)
            .env("LOGBOOK_ADMIN_TOKEN", &token)
            .env("LOGBOOK_ADMIN_PASSWORD", &token);
        Child::start(command, token, false)
    }

    pub fn noop() -> anyhow::Result<Child> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["bench-noop", "--listen", "127.0.0.1:0"]);
        Child::start(command, String::new(), true)
    }

    fn start(mut command: Command, token: String, noop: bool) -> anyhow::Result<Child> {
        let mut process = command
            .env("LOGBOOK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = process
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr pipe"))?;
        let mut lines = BufReader::new(stderr).lines();
        let base = loop {
            let Some(line) = lines.next() else {
                anyhow::bail!("the server exited before listening");
            };
            let line = line?;
            if let Some(rest) = line.strip_prefix("logbook listening on ") {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
            eprintln!("{line}");
        };
        std::thread::spawn(move || {
            lines
                .map_while(Result::ok)
                .for_each(|l| eprintln!("server: {l}"))
        });
        Ok(Child {
            process,
            base,
            token,
            noop,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// `GET /logbook/v1/records/count?{query}`: the records the server holds that
    /// match, for checking that nothing acknowledged was lost.
    pub async fn count(&self, http: &reqwest::Client, query: &str) -> anyhow::Result<u64> {
        let response = http
            .get(self.url(&format!("/logbook/v1/records/count?{query}")))
            .bearer_auth(self.token())
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 200,
            "count answered {}",
            response.status()
        );
        let body: serde_json::Value = response.json().await?;
        body["count"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("count answered {body}"))
    }

    /// The server's `/metrics` page (OpenMetrics text).
    pub async fn metrics(&self, http: &reqwest::Client) -> anyhow::Result<String> {
        Ok(http
            .get(self.url("/metrics"))
            .bearer_auth(self.token())
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    pub fn is_noop(&self) -> bool {
        self.noop
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status();
        let _ = self.process.wait();
    }
}
