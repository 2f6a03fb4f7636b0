//! A real `logbook serve` process, for what only a process can show: restarts,
//! signals, and several nodes on one database.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Node {
    pub child: Child,
    pub base: String,
    pub token: String,
}

impl Node {
    /// Starts `logbook serve` on an ephemeral port with `args` (e.g. `--data DIR`)
    /// and waits until it announces its address.
    pub fn spawn(args: &[&str], token: &str) -> Node {
        Node::spawn_announcing(args, token).0
    }

    /// As [`Node::spawn`], also returning what the node printed before its HTTP
    /// address (e.g. the syslog receivers' addresses).
    pub fn spawn_announcing(args: &[&str], token: &str) -> (Node, Vec<String>) {
        let mut announced = Vec::new();
        let mut child = Command::new(super::binary())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("LOGBOOK_ADMIN_PASSWORD", super::ADMIN_PASSWORD)
            .env("LOGBOOK_ADMIN_TOKEN", token)
            .env_remove("LOGBOOK_DATA")
            .env_remove("LOGBOOK_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn logbook serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("logbook serve exited before listening")
                .expect("read stdout");
            if let Some(rest) = line.strip_prefix("logbook listening on ") {
                break rest.split_whitespace().next().expect("address").to_string();
            }
            announced.push(line);
        };
        // Keep draining (and showing) its log so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| eprintln!("{l}")));
        let node = Node {
            child,
            base,
            token: token.into(),
        };
        (node, announced)
    }

    pub fn spawn_on_dir(dir: &Path, token: &str) -> Node {
        Node::spawn(&["--data", dir.to_str().expect("utf-8 path")], token)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every record's id and message, oldest first, read page by page through the
    /// native API's cursor (so every tier of the store is read).
    pub async fn messages(&self) -> Vec<(i64, String)> {
        let http = reqwest::Client::new();
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: serde_json::Value = http
                .get(self.url(&format!("/logbook/v1/records?order=asc&limit=1000{cursor}")))
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            let records = page["records"].as_array().expect("records");
            if records.is_empty() {
                return out;
            }
            for r in records {
                out.push((
                    r["id"].as_i64().expect("id"),
                    r["message"].as_str().unwrap_or_default().to_string(),
                ));
            }
            cursor = format!("&cursor={}", page["next_cursor"].as_str().expect("cursor"));
        }
    }

    /// Sends SIGTERM and waits for the exit; returns whether it exited 0. A node that
    /// has not exited after 30 s is killed (a guard against hanging, which then
    /// counts as an unclean exit).
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let (exited, guard) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if guard.recv_timeout(Duration::from_secs(30)).is_err() {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        });
        let status = self.child.wait();
        let _ = exited.send(());
        status.is_ok_and(|s| s.success())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
