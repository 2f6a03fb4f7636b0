//! The System Logs query parameters translated onto the core [`Query`], and the view
//! itself: which records Waldur's client can be shown at all.

use super::DrfError;
use crate::params::Params;
use logbook_core::query::{Comparison, Condition, Scalar};
use logbook_core::{Field, Kind, Level, Order, Query, SortKey};

/// The only `source` values the client accepts (`SystemLogSourceEnum` is strict).
pub(super) const SOURCES: [&str; 3] = ["api", "beat", "worker"];

/// Log records the client can represent: a known source and a level.
pub(super) fn view() -> Query {
    Query::newest_first()
        .kinds(&[Kind::Log])
        .with(Condition::In(
            Field::Source,
            SOURCES
                .iter()
                .map(|s| Scalar::Text(s.to_string()))
                .collect(),
        ))
        .with(Condition::In(
            Field::Level,
            Level::ALL.iter().map(|l| Scalar::Int(l.number())).collect(),
        ))
}

fn choice_error(name: &str, value: &str) -> DrfError {
    DrfError::field(
        name,
        format!("Select a valid choice. {value} is not one of the available choices."),
    )
}

/// The view narrowed by every filter the list and instances endpoints share.
pub(super) fn filtered(params: &Params) -> Result<Query, DrfError> {
    let mut query = view();
    for (name, cmp) in [
        ("created_from", Comparison::Ge),
        ("created_to", Comparison::Le),
    ] {
        if let Some(micros) = epoch_micros(params, name)? {
            query = query.with(Condition::Compare(Field::Ts, cmp, Scalar::Int(micros)));
        }
    }
    for (name, field) in [
        ("instance", Field::Instance),
        ("logger_name", Field::Logger),
    ] {
        if let Some(value) = params.non_empty(name) {
            query = query.with(Condition::In(field, vec![Scalar::Text(value.to_string())]));
        }
    }
    if let Some(text) = params.non_empty("level") {
        // Either spelling in any case (dialects.md), though the client sends WARNING.
        let level = Level::parse(text).ok_or_else(|| choice_error("level", text))?;
        query = query.with(Condition::In(
            Field::Level,
            vec![Scalar::Int(level.number())],
        ));
    }
    if let Some(text) = params.non_empty("level_gte") {
        let number: i64 = text
            .trim()
            .parse()
            .map_err(|_| DrfError::field("level_gte", "A valid integer is required."))?;
        query = query.with(Condition::Compare(
            Field::Level,
            Comparison::Ge,
            Scalar::Int(number),
        ));
    }
    if let Some(text) = params.non_empty("message") {
        query = query.text_contains(text);
    }
    if let Some(source) = params.non_empty("source") {
        if !SOURCES.contains(&source) {
            return Err(choice_error("source", source));
        }
        query = query.with(Condition::In(
            Field::Source,
            vec![Scalar::Text(source.to_string())],
        ));
    }
    Ok(query)
}

/// Epoch seconds as the client sends them (Python `str(float)`: `1e+16`, `0.30000000000000004`).
/// Values beyond the stored range are clamped rather than refused: `created_from=1e16`
/// then simply matches nothing, as it would in Waldur.
fn epoch_micros(params: &Params, name: &str) -> Result<Option<i64>, DrfError> {
    let Some(text) = params.non_empty(name) else {
        return Ok(None);
    };
    let seconds = text
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite())
        .ok_or_else(|| DrfError::field(name, "A valid number is required."))?;
    // `as` saturates at the i64 bounds, which is the clamping wanted here.
    Ok(Some((seconds * 1_000_000.0).round() as i64))
}

pub(super) const ORDER_FIELDS: [&str; 3] = ["created", "instance", "level_number"];

/// Every `o` value, repeated or comma-separated, in the order given.
pub(super) fn orderings(params: &Params) -> Result<Vec<(String, bool)>, DrfError> {
    params
        .list("o")
        .into_iter()
        .map(|value| {
            let (name, descending) = match value.strip_prefix('-') {
                Some(name) => (name.to_string(), true),
                None => (value.clone(), false),
            };
            if ORDER_FIELDS.contains(&name.as_str()) {
                Ok((name, descending))
            } else {
                Err(choice_error("o", &value))
            }
        })
        .collect()
}

/// Applies `o` to a record query. Without `o`, records come newest first by id (the
/// order Logbook received them), which the store answers from its planned id scans
/// instead of a sort. The id also breaks ties, in the direction of the first key, so
/// pages never overlap.
pub(super) fn order_records(params: &Params, mut query: Query) -> Result<Query, DrfError> {
    let keys = orderings(params)?;
    query.sort = keys
        .iter()
        .map(|(name, descending)| SortKey {
            field: match name.as_str() {
                "created" => Field::Ts,
                "instance" => Field::Instance,
                _ => Field::Level,
            },
            descending: *descending,
        })
        .collect();
    query.order = match keys.first() {
        Some((_, false)) => Order::OldestFirst,
        _ => Order::NewestFirst,
    };
    Ok(query)
}

/// Refuses parameters the endpoint does not know, in DRF's shape.
pub(super) fn reject_unknown(params: &Params) -> Result<(), DrfError> {
    params.check()?;
    match params.first_unused() {
        Some(name) => Err(DrfError::field(&name, "Unknown query parameter.")),
        None => Ok(()),
    }
}
