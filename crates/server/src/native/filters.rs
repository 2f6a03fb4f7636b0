//! The native query parameters, translated onto the core [`Query`]. Streams and the
//! CLI use the same names, so every tool can rely on them.

use crate::error::ApiError;
use crate::params::Params;
use logbook_core::{Condition, Cursor, Field, Level, Order, Query, Timestamp};

/// Parameters that take a comma list (and may repeat).
pub const LIST_FIELDS: [Field; 16] = Field::LISTED;

pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 10_000;

/// The prefix of a parameter that excludes values: `not_category=image,export` keeps
/// records whose category is neither (or that have none).
pub const EXCLUDE_PREFIX: &str = "not_";

/// Every filter of the query model; no paging.
pub fn filters(params: &Params) -> Result<Query, ApiError> {
    let mut query = Query::default();
    for field in LIST_FIELDS {
        let values = params.list(field.name());
        if !values.is_empty() {
            query = query.values(field, &values)?;
        }
        let name = format!("{EXCLUDE_PREFIX}{}", field.name());
        let excluded = params.list(&name);
        if !excluded.is_empty() {
            let values = excluded
                .iter()
                .map(|v| field.parse_value(v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::bad_request(&name, e.problem))?;
            query = query.with(Condition::NotIn(field, values));
        }
    }
    if let Some(text) = params.non_empty("min_level") {
        let level = Level::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "min_level",
                format!("unknown level {text:?} (DEBUG, INFO, WARN, ERROR, CRITICAL)"),
            )
        })?;
        query = query.min_level(level);
    }
    if let Some(ts) = timestamp(params, "since")? {
        query = query.since(ts);
    }
    if let Some(ts) = timestamp(params, "until")? {
        query = query.until(ts);
    }
    if let Some(text) = params.non_empty("q") {
        query = query.text_contains(text);
    }
    query.order = match params
        .non_empty("order")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("desc") => Order::NewestFirst,
        Some("asc") => Order::OldestFirst,
        Some(other) => {
            return Err(ApiError::bad_request(
                "order",
                format!("{other:?} is not asc or desc"),
            ))
        }
    };
    Ok(query)
}

/// Filters plus `limit`, `offset` and `cursor`, rejecting unknown parameters.
pub fn page_query(params: &Params) -> Result<Query, ApiError> {
    let mut query = filters(params)?;
    query.limit = Some(params.limit(DEFAULT_LIMIT, MAX_LIMIT)?);
    query.offset = params.offset()?;
    if let Some(cursor) = params.non_empty("cursor") {
        query.after = Some(Cursor::decode(cursor)?);
    }
    params.reject_unknown()?;
    Ok(query)
}

pub fn timestamp(params: &Params, name: &str) -> Result<Option<Timestamp>, ApiError> {
    params
        .non_empty(name)
        .map(|text| {
            Timestamp::parse(text).ok_or_else(|| {
                ApiError::bad_request(
                    name,
                    format!("{text:?} is not an RFC 3339 timestamp or epoch seconds"),
                )
            })
        })
        .transpose()
}
