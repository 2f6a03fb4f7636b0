//! Chooses how SQLite answers "the newest (or oldest) N records matching a filter".
//! SQLite's own choice between an index and a scan by id can be 1000x off (a broad
//! filter through an index reads and sorts every match; a selective one scanned by
//! id reads the whole table), so the plan is decided here from the filter's shape
//! and cheap, capped probes of the candidate indexes:
//!
//! 1. Scan the `WINDOW` ids nearest the starting point. Broad filters fill a page
//!    here, after a few thousand rows at most.
//! 2. Otherwise the filter is selective. Each indexed condition is a candidate
//!    driver; a probe counts (up to `PROBE_CAP`) how many index entries it would
//!    visit in the rest of the range, and the smallest wins. Indexes that yield ids
//!    in order (every SQLite index ends in the rowid) are read branch by branch
//!    (one branch per value) with no sort; others only when their count is small.
//! 3. With no usable driver, continue the scan by id.
//!
//! Substring searches of three or more characters are driven by the trigram index
//! instead, read newest first so a common word stops after one page.

use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::{Level, Order, Query};

/// Ids read by the first, index-free phase.
pub const WINDOW: i64 = 4096;
/// Index entries a probe counts before deciding "many".
pub const PROBE_CAP: u64 = 20_000;

pub const RECORD_COLUMNS: &str = "id, ts, kind, level, category, source, instance, logger, \"user\", user_id, domain_id, project_id, object_type, object_id, action, status, response_code, request_id, parent_request_id, message, data";

pub fn record_columns(prefix: &str) -> String {
    RECORD_COLUMNS
        .split(", ")
        .map(|c| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The index scanned per branch, and whether each branch yields ids in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Driver {
    pub index: &'static str,
    /// One condition per branch; the union of branches covers every match.
    pub branches: Vec<Condition>,
    pub ordered: bool,
}

/// The range condition a cursor adds (`after` is exclusive in the query's order).
pub fn cursor_condition(query: &Query) -> Option<Condition> {
    let cursor = query.after?;
    let cmp = match query.order {
        Order::NewestFirst => Comparison::Lt,
        Order::OldestFirst => Comparison::Gt,
    };
    Some(Condition::Compare(Field::Id, cmp, Scalar::Int(cursor.0)))
}

/// The trigram MATCH expression for the first top-level substring condition on the
/// message that is long enough for the index: every distinct trigram of the needle,
/// ANDed. The index keeps no positions (`detail=none`, a third of the size) and folds
/// case, so this finds a superset (of case-sensitive matches too); the substring
/// condition itself stays in the filter and decides.
pub fn trigram_search(conditions: &[Condition]) -> Option<String> {
    conditions.iter().find_map(|c| match c {
        Condition::Contains(Field::Message, needle)
        | Condition::ContainsCaseSensitive(Field::Message, needle)
            if needle.chars().count() >= 3 =>
        {
            let chars: Vec<char> = needle.to_lowercase().chars().collect();
            let mut trigrams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
            trigrams.sort_unstable();
            trigrams.dedup();
            Some(
                trigrams
                    .iter()
                    .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            )
        }
        _ => None,
    })
}

fn single_column_index(field: Field) -> Option<&'static str> {
    Some(match field {
        Field::Kind => "records_kind",
        Field::Level => "records_level",
        Field::Category => "records_category",
        Field::User => "records_user",
        Field::ObjectId => "records_object",
        Field::RequestId => "records_request",
        Field::DomainId => "records_domain",
        Field::Instance => "records_instance",
        Field::Logger => "records_logger",
        Field::UserId => "records_user_id",
        Field::ProjectId => "records_project",
        Field::ObjectType => "records_object_type",
        Field::Action => "records_action",
        Field::Status => "records_status",
        _ => return None,
    })
}

/// Every indexed way into the filter.
pub fn candidate_drivers(conditions: &[Condition]) -> Vec<Driver> {
    let mut drivers = Vec::new();
    let values_of = |field: Field| {
        conditions.iter().find_map(|c| match c {
            Condition::In(f, values) if *f == field => Some(values.clone()),
            _ => None,
        })
    };
    for condition in conditions {
        match condition {
            Condition::In(field, values) => {
                if let Some(index) = single_column_index(*field) {
                    drivers.push(Driver {
                        index,
                        branches: values
                            .iter()
                            .map(|v| Condition::In(*field, vec![v.clone()]))
                            .collect(),
                        ordered: true,
                    });
                } else if *field == Field::Source {
                    drivers.push(source_driver(values, values_of(Field::Instance)));
                }
            }
            Condition::Compare(Field::Level, _, _) if values_of(Field::Level).is_none() => {
                let levels: Vec<Condition> = Level::ALL
                    .into_iter()
                    .map(|l| Condition::In(Field::Level, vec![Scalar::Int(l.number())]))
                    .filter(|branch| level_allowed(conditions, branch))
                    .collect();
                drivers.push(Driver {
                    index: "records_level",
                    branches: levels,
                    ordered: true,
                });
            }
            Condition::Compare(Field::Ts, _, _)
                if !drivers.iter().any(|d| d.index == "records_ts") =>
            {
                drivers.push(Driver {
                    index: "records_ts",
                    branches: vec![condition.clone()],
                    ordered: false,
                });
            }
            _ => {}
        }
    }
    drivers
}

/// `(source, instance)` is ordered by id only when both are fixed.
fn source_driver(sources: &[Scalar], instances: Option<Vec<Scalar>>) -> Driver {
    match instances {
        Some(instances) => Driver {
            index: "records_source_instance",
            branches: sources
                .iter()
                .flat_map(|s| {
                    instances.iter().map(move |i| {
                        Condition::All(vec![
                            Condition::In(Field::Source, vec![s.clone()]),
                            Condition::In(Field::Instance, vec![i.clone()]),
                        ])
                    })
                })
                .collect(),
            ordered: true,
        },
        None => Driver {
            index: "records_source_instance",
            branches: vec![Condition::In(Field::Source, sources.to_vec())],
            ordered: false,
        },
    }
}

/// Whether a single-level branch can satisfy every level comparison of the filter.
fn level_allowed(conditions: &[Condition], branch: &Condition) -> bool {
    let Condition::In(_, values) = branch else {
        return false;
    };
    let Some(Scalar::Int(level)) = values.first() else {
        return false;
    };
    conditions.iter().all(|c| match c {
        Condition::Compare(Field::Level, cmp, Scalar::Int(bound)) => match cmp {
            Comparison::Lt => level < bound,
            Comparison::Le => level <= bound,
            Comparison::Gt => level > bound,
            Comparison::Ge => level >= bound,
        },
        _ => true,
    })
}
