//! Retention: records older than a kind's age, the oldest beyond a size budget,
//! and system logs beyond a per-source count are removed in the background. Each
//! removal goes through the store's `delete_recorded`, like an administrator's
//! clear: the content goes, the leaves stay (so `verify` still holds), and a
//! journal record names the rule, the id range and the count. The tiered store
//! drops a block whole when every record in it goes.

use crate::state::AppState;
use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::{Kind, NewRecord, Query, Timestamp};
use logbook_store::{GroupQuery, Removal, StoreError};
use serde_json::{json, Value};
use std::time::Duration;

/// The retention rules of a node; empty removes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Records of a kind older (by `ts`) than the age go.
    pub by_age: Vec<(Kind, Duration)>,
    /// Oldest `log` and `event` records go until the records take at most this.
    pub max_bytes: Option<u64>,
    /// Per `source`, `log` records beyond the newest N go.
    pub per_source: Option<u64>,
    /// How often the rules are applied.
    pub interval: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            by_age: Vec::new(),
            max_bytes: None,
            per_source: None,
            interval: Duration::from_secs(60),
        }
    }
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.by_age.is_empty() && self.max_bytes.is_none() && self.per_source.is_none()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "retain": self.by_age.iter().map(|(k, age)| format!("{}={}s", k.name(), age.as_secs())).collect::<Vec<_>>(),
            "retain_bytes": self.max_bytes,
            "retain_per_source": self.per_source,
            "interval_seconds": self.interval.as_secs(),
        })
    }
}

/// `KIND=AGE`, e.g. `log=30d`.
pub fn parse_rule(text: &str) -> Result<(Kind, Duration), String> {
    let (kind, age) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KIND=AGE (e.g. log=30d)"))?;
    let kind = Kind::parse(kind.trim())
        .ok_or_else(|| format!("{kind:?} is not a record kind (log, event, journal)"))?;
    let age = parse_age(age.trim())
        .ok_or_else(|| format!("{age:?} is not an age such as 12h, 30d or 2w"))?;
    Ok((kind, age))
}

/// An age: a number and a unit (`s`, `m`, `h`, `d`, `w`).
pub fn parse_age(text: &str) -> Option<Duration> {
    logbook_core::time::parse_duration(text).filter(|d| !d.is_zero())
}

/// A size: bytes, or with `K`, `M`, `G`, `T` (powers of 1024, an optional `B`/`iB`).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let unit = unit
        .trim()
        .trim_end_matches("iB")
        .trim_end_matches('B')
        .to_ascii_uppercase();
    let factor: u64 = match unit.as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// What one removal by a rule took.
fn removed_json(rule: &str, removal: &Removal) -> Value {
    json!({"rule": rule, "count": removal.count, "first_id": removal.first_id, "last_id": removal.last_id})
}

/// Removes what `query` matches, journalled as `rule`; nothing (not even the
/// journal record) when nothing matches.
async fn remove(state: &AppState, query: Query, rule: &str) -> Result<Option<Value>, StoreError> {
    if state.store.count(&query).await? == 0 {
        return Ok(None);
    }
    let name = rule.to_string();
    let taken = std::sync::Arc::new(std::sync::Mutex::new(Removal::default()));
    let seen = std::sync::Arc::clone(&taken);
    let journal = Box::new(move |removal: &Removal| {
        if let Ok(mut seen) = seen.lock() {
            *seen = *removal;
        }
        retention_record(&name, removal)
    });
    state.store.delete_recorded(&query, journal).await?;
    let removal = taken.lock().map(|r| *r).unwrap_or_default();
    Ok(Some(removed_json(rule, &removal)))
}

/// The journal record of a removal by retention.
pub fn retention_record(rule: &str, removal: &Removal) -> NewRecord {
    let mut entry = NewRecord::new(Kind::Journal);
    entry.action = Some("logbook.retention".into());
    entry.status = Some("success".into());
    entry.object_type = Some("records".into());
    entry.user = Some("logbook".into());
    let range = match (removal.first_id, removal.last_id) {
        (Some(a), Some(b)) => format!(" (ids {a} to {b})"),
        _ => String::new(),
    };
    entry.message = Some(format!(
        "Retention rule {rule} removed {} records{range}.",
        removal.count
    ));
    entry.data = json!({
        "policy": rule,
        "removed": {"count": removal.count, "first_id": removal.first_id, "last_id": removal.last_id},
    })
    .as_object()
    .cloned();
    entry
}

fn id_below(id: i64) -> Condition {
    Condition::Compare(Field::Id, Comparison::Lt, Scalar::Int(id))
}

/// Applies every rule once; returns what the status shows of the run.
pub async fn run_once(state: &AppState) -> Result<Value, StoreError> {
    let policy = &state.integrity.config.retention;
    let mut removed = Vec::new();
    let now = Timestamp::now();
    for (kind, age) in &policy.by_age {
        let cutoff = Timestamp(
            now.micros()
                .saturating_sub(age.as_micros().min(i64::MAX as u128) as i64),
        );
        let query = Query::oldest_first()
            .kinds(&[*kind])
            .with(Condition::Compare(
                Field::Ts,
                Comparison::Lt,
                Scalar::Int(cutoff.micros()),
            ));
        let rule = format!("{}={}s", kind.name(), age.as_secs());
        removed.extend(remove(state, query, &rule).await?);
    }
    if let Some(keep) = policy.per_source {
        let logs = Query::oldest_first().kinds(&[Kind::Log]);
        let groups = state
            .store
            .group(&logs, &GroupQuery::by(&[Field::Source]))
            .await?;
        for group in groups.into_iter().filter(|g| g.count > keep) {
            let Some(Some(source)) = group.key.first().cloned() else {
                continue;
            };
            let of_source = logs.clone().with(Condition::In(
                Field::Source,
                vec![Scalar::Text(source.clone())],
            ));
            // The oldest record kept: the keep-th newest.
            let page = state
                .store
                .query(&Query {
                    offset: keep - 1,
                    limit: Some(1),
                    order: logbook_core::Order::NewestFirst,
                    ..of_source.clone()
                })
                .await?;
            let Some(oldest_kept) = page.records.first().map(|r| r.id) else {
                continue;
            };
            let rule = format!("per-source={keep} source={source}");
            removed.extend(remove(state, of_source.with(id_below(oldest_kept)), &rule).await?);
        }
    }
    if let Some(budget) = policy.max_bytes {
        // A few rounds: the store's size is measured, not predicted.
        for _ in 0..4 {
            let kinds = [Kind::Log, Kind::Event];
            let mut bytes = 0u64;
            for kind in [Kind::Log, Kind::Event, Kind::Journal] {
                bytes += state.store.size_on_disk(kind).await?;
            }
            if bytes <= budget {
                break;
            }
            let removable = Query::oldest_first().kinds(&kinds);
            let count = state.store.count(&removable).await?;
            if count == 0 {
                break;
            }
            let share = ((bytes - budget) as f64 / bytes as f64 * count as f64).ceil() as u64;
            let page = state
                .store
                .query(&Query {
                    offset: share.clamp(1, count) - 1,
                    limit: Some(1),
                    ..removable.clone()
                })
                .await?;
            let Some(last) = page.records.first().map(|r| r.id) else {
                break;
            };
            let rule = format!("bytes={budget}");
            removed.extend(remove(state, removable.with(id_below(last + 1)), &rule).await?);
        }
    }
    let oldest = state
        .store
        .query(&Query {
            limit: Some(1),
            ..Query::oldest_first()
        })
        .await?;
    let status = json!({
        "at": Timestamp::now().rfc3339(),
        "removed": removed,
        "oldest_kept": oldest.records.first().map(|r| json!({"id": r.id, "ts": r.ts.rfc3339()})),
    });
    if let Ok(mut last) = state.integrity.last_retention.lock() {
        *last = Some(status.clone());
    }
    Ok(status)
}

/// Applies the rules every interval until the node shuts down.
pub async fn run(state: AppState) {
    if state.integrity.config.retention.is_empty() {
        return;
    }
    let mut shutdown = state.shutdown.clone();
    loop {
        if let Err(e) = run_once(&state).await {
            tracing::warn!("retention run failed: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(state.integrity.config.retention.interval) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_ages_and_sizes_parse_or_say_why_not() {
        assert_eq!(
            parse_rule("log=30d"),
            Ok((Kind::Log, Duration::from_secs(30 * 86_400)))
        );
        assert!(parse_rule("log").is_err());
        assert!(parse_rule("blob=1d").is_err());
        assert!(parse_rule("event=3y").is_err());
        assert_eq!(parse_size("10G"), Some(10 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("ten"), None);
    }
}
