//! The command-line client: `query`, `tail`, `export`, `import` and `count` talk to
//! a running server over the native API, with filters named like its parameters.

mod count;
mod export;
pub mod http;
mod import;
mod query;
mod tail;

pub use count::{run as count, CountArgs};
pub use export::{run as export, ExportArgs};
pub use import::{run as import, ImportArgs};
pub use query::{run as query, QueryArgs};
pub use tail::{run as tail, TailArgs};

use clap::Args;
use logbook_core::time::parse_duration;
use logbook_core::Timestamp;

/// Where the server is and who we are.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "LOGBOOK_URL", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An API token (`lbk_...`).
    #[arg(long, env = "LOGBOOK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Every filter of the native query model, named like its parameters. List flags
/// take comma lists and may repeat (`--level ERROR,WARN`).
#[derive(Args, Debug, Clone, Default)]
pub struct Filters {
    #[arg(long, value_name = "KINDS")]
    pub kind: Vec<String>,
    #[arg(long, value_name = "LEVELS")]
    pub level: Vec<String>,
    /// This level or more severe.
    #[arg(long = "min-level", alias = "min_level", value_name = "LEVEL")]
    pub min_level: Option<String>,
    #[arg(long)]
    pub category: Vec<String>,
    #[arg(long)]
    pub source: Vec<String>,
    #[arg(long)]
    pub instance: Vec<String>,
    #[arg(long)]
    pub logger: Vec<String>,
    #[arg(long)]
    pub user: Vec<String>,
    #[arg(long = "user-id", alias = "user_id")]
    pub user_id: Vec<String>,
    #[arg(long = "domain-id", alias = "domain_id")]
    pub domain_id: Vec<String>,
    #[arg(long = "project-id", alias = "project_id")]
    pub project_id: Vec<String>,
    #[arg(long = "object-type", alias = "object_type")]
    pub object_type: Vec<String>,
    #[arg(long = "object-id", alias = "object_id")]
    pub object_id: Vec<String>,
    #[arg(long)]
    pub action: Vec<String>,
    #[arg(long)]
    pub status: Vec<String>,
    #[arg(long = "request-id", alias = "request_id")]
    pub request_id: Vec<String>,
    /// From this time on: RFC 3339, epoch seconds, or a relative duration (`2h`, `30m`, `7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this time: same forms as --since.
    #[arg(long)]
    pub until: Option<String>,
    /// Messages containing this text (case-insensitive).
    #[arg(long)]
    pub q: Option<String>,
}

impl Filters {
    /// The filters as native query parameters.
    pub fn params(&self) -> Vec<(String, String)> {
        let lists: [(&str, &Vec<String>); 15] = [
            ("kind", &self.kind),
            ("level", &self.level),
            ("category", &self.category),
            ("source", &self.source),
            ("instance", &self.instance),
            ("logger", &self.logger),
            ("user", &self.user),
            ("user_id", &self.user_id),
            ("domain_id", &self.domain_id),
            ("project_id", &self.project_id),
            ("object_type", &self.object_type),
            ("object_id", &self.object_id),
            ("action", &self.action),
            ("status", &self.status),
            ("request_id", &self.request_id),
        ];
        let mut params: Vec<(String, String)> = lists
            .iter()
            .flat_map(|(name, values)| values.iter().map(|v| (name.to_string(), v.clone())))
            .collect();
        let now = Timestamp::now();
        let scalars = [
            ("min_level", self.min_level.clone()),
            ("since", self.since.as_deref().map(|t| absolute(t, now))),
            ("until", self.until.as_deref().map(|t| absolute(t, now))),
            ("q", self.q.clone()),
        ];
        params.extend(
            scalars
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name.to_string(), v))),
        );
        params
    }
}

/// A relative duration (`2h`) becomes the time that long ago; anything else is sent
/// as given, so the server parses (and names) bad timestamps in one place.
fn absolute(text: &str, now: Timestamp) -> String {
    match parse_duration(text) {
        Some(ago) => {
            let micros = i64::try_from(ago.as_micros()).unwrap_or(i64::MAX);
            Timestamp::from_micros(now.micros().saturating_sub(micros))
                .map(Timestamp::rfc3339)
                .unwrap_or_else(|| text.to_string())
        }
        None => text.to_string(),
    }
}

/// Where progress goes: a line redrawn on stderr when it is a terminal, nothing
/// otherwise (so piped and scripted runs stay clean).
pub struct Progress {
    enabled: bool,
    label: &'static str,
    total: Option<u64>,
    last_draw: std::time::Instant,
}

impl Progress {
    pub fn new(label: &'static str, total: Option<u64>) -> Progress {
        use std::io::IsTerminal;
        Progress {
            enabled: std::io::stderr().is_terminal(),
            label,
            total,
            last_draw: std::time::Instant::now(),
        }
    }

    pub fn update(&mut self, done: u64) {
        if !self.enabled || self.last_draw.elapsed() < std::time::Duration::from_millis(100) {
            return;
        }
        self.last_draw = std::time::Instant::now();
        self.draw(done);
    }

    fn draw(&self, done: u64) {
        let line = match self.total {
            Some(total) if total > 0 => {
                let width = 30;
                let filled = ((done.min(total) * width) / total) as usize;
                format!(
                    "{} [{}{}] {done}/{total}",
                    self.label,
                    "#".repeat(filled),
                    "-".repeat(width as usize - filled)
                )
            }
            _ => format!("{} {done}", self.label),
        };
        eprint!("\r{line}\x1b[K");
    }

    pub fn finish(&self, done: u64) {
        if self.enabled {
            self.draw(done);
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_become_absolute_and_others_pass_through() {
        let now = Timestamp::parse("2026-01-02T03:00:00Z").expect("ts");
        assert_eq!(absolute("2h", now), "2026-01-02T01:00:00.000000Z");
        assert_eq!(absolute("2026-01-01", now), "2026-01-01");
        assert_eq!(absolute("1700000000", now), "1700000000");
    }
}
