//! The journal's query parameters in the OpenStack API-guideline form `field=op:value`,
//! translated onto core [`Condition`]s. Filtering itself is core's; this only reads.

use crate::error::ApiError;
use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::Timestamp;

/// The journal's filterable fields and the core field each reads.
pub(super) const FIELDS: [(&str, Field); 13] = [
    ("id", Field::Id),
    ("object_id", Field::ObjectId),
    ("object_type", Field::ObjectType),
    ("action", Field::Action),
    ("status", Field::Status),
    ("event_time", Field::Ts),
    ("action_arguments", Field::DataText(ACTION_ARGUMENTS)),
    ("response_code", Field::ResponseCode),
    ("message", Field::Message),
    ("user_id", Field::UserId),
    ("user_name", Field::User),
    ("domain_id", Field::DomainId),
    ("request_id", Field::RequestId),
];

/// The payload key that keeps `action_arguments` exactly as the client sent it.
pub(super) const ACTION_ARGUMENTS: &str = "action_arguments";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Neq,
    In,
    Nin,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    StartsWith,
}

const OPS: [(&str, Op); 10] = [
    ("eq", Op::Eq),
    ("neq", Op::Neq),
    ("in", Op::In),
    ("nin", Op::Nin),
    ("gt", Op::Gt),
    ("gte", Op::Gte),
    ("lt", Op::Lt),
    ("lte", Op::Lte),
    ("like", Op::Like),
    ("startswith", Op::StartsWith),
];

const OP_LIST: &str = "eq, neq, in, nin, gt, gte, lt, lte, like, startswith";

/// Splits `op:value`. A value whose text before the first `:` is a lower-case word
/// names a modifier (an unknown word is an error); anything else is a plain value
/// compared for equality, so `2018-03-22T07:25:31` needs no `eq:`. An empty plain
/// value means no filter (`None`).
pub(super) fn split<'a>(name: &str, raw: &'a str) -> Result<Option<(Op, &'a str)>, ApiError> {
    if let Some((word, value)) = raw.split_once(':') {
        if !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()) {
            return match OPS.iter().find(|(w, _)| *w == word) {
                Some((_, op)) => Ok(Some((*op, value))),
                None => Err(ApiError::bad_request(
                    name,
                    format!("unknown modifier {word:?} (use {OP_LIST})"),
                )),
            };
        }
    }
    Ok((!raw.is_empty()).then_some((Op::Eq, raw)))
}

/// The condition for one `name=op:value` parameter; `None` for an empty plain value.
pub(super) fn condition(
    name: &str,
    field: Field,
    raw: &str,
) -> Result<Option<Condition>, ApiError> {
    let Some((op, value)) = split(name, raw)? else {
        return Ok(None);
    };
    let condition = match field {
        Field::Ts => event_time(name, op, value)?,
        _ => plain(name, field, op, value)?,
    };
    Ok(Some(condition))
}

fn plain(name: &str, field: Field, op: Op, value: &str) -> Result<Condition, ApiError> {
    let one = || scalar(name, field, value);
    Ok(match op {
        Op::Eq => Condition::In(field, vec![one()?]),
        Op::Neq => Condition::NotIn(field, vec![one()?]),
        Op::In => Condition::In(field, list(name, field, value)?),
        Op::Nin => Condition::NotIn(field, list(name, field, value)?),
        Op::Gt => Condition::Compare(field, Comparison::Gt, one()?),
        Op::Gte => Condition::Compare(field, Comparison::Ge, one()?),
        Op::Lt => Condition::Compare(field, Comparison::Lt, one()?),
        Op::Lte => Condition::Compare(field, Comparison::Le, one()?),
        // A substring of an integer is not a question the store can answer the same
        // way in SQL and in a live stream, so it is refused rather than approximated.
        Op::Like if field.is_integer() => return Err(unsupported(name, "like")),
        Op::Like => Condition::Contains(field, value.to_string()),
        Op::StartsWith => Condition::StartsWith(field, value.to_string()),
    })
}

fn scalar(name: &str, field: Field, value: &str) -> Result<Scalar, ApiError> {
    field
        .parse_value(value)
        .map_err(|e| ApiError::bad_request(name, e.problem))
}

/// A comma list for `in`/`nin`; surrounding blanks are dropped, an empty list refused.
fn list(name: &str, field: Field, value: &str) -> Result<Vec<Scalar>, ApiError> {
    let values = value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| scalar(name, field, v))
        .collect::<Result<Vec<_>, _>>()?;
    if values.is_empty() {
        return Err(ApiError::bad_request(name, "needs at least one value"));
    }
    Ok(values)
}

/// `event_time` is rendered to the second, so it is compared to the second: `eq:T`
/// holds for every entry rendered as `T`, `gt:T` only from the next second on.
fn event_time(name: &str, op: Op, value: &str) -> Result<Condition, ApiError> {
    let second = |text: &str| -> Result<(i64, i64), ApiError> {
        let ts = Timestamp::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                name,
                format!("{text:?} is not a time such as 2018-03-22T07:25:31 (UTC)"),
            )
        })?;
        let start = ts.micros().div_euclid(1_000_000) * 1_000_000;
        Ok((start, start + 1_000_000))
    };
    let at = |cmp, micros| Condition::Compare(Field::Ts, cmp, Scalar::Int(micros));
    let within =
        |(start, end)| Condition::All(vec![at(Comparison::Ge, start), at(Comparison::Lt, end)]);
    let outside =
        |(start, end)| Condition::Any(vec![at(Comparison::Lt, start), at(Comparison::Ge, end)]);
    let seconds = || -> Result<Vec<(i64, i64)>, ApiError> {
        let items: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        if items.is_empty() {
            return Err(ApiError::bad_request(name, "needs at least one value"));
        }
        items.into_iter().map(second).collect()
    };
    Ok(match op {
        Op::Eq => within(second(value)?),
        Op::Neq => outside(second(value)?),
        Op::In => Condition::Any(seconds()?.into_iter().map(within).collect()),
        Op::Nin => Condition::All(seconds()?.into_iter().map(outside).collect()),
        Op::Gt => at(Comparison::Ge, second(value)?.1),
        Op::Gte => at(Comparison::Ge, second(value)?.0),
        Op::Lt => at(Comparison::Lt, second(value)?.0),
        Op::Lte => at(Comparison::Lt, second(value)?.1),
        Op::Like => return Err(unsupported(name, "like")),
        Op::StartsWith => return Err(unsupported(name, "startswith")),
    })
}

fn unsupported(name: &str, op: &str) -> ApiError {
    ApiError::bad_request(
        name,
        format!("the {op} modifier is not supported for {name}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifiers_split_only_on_a_lower_case_word() {
        assert_eq!(
            split("status", "in:a,b").expect("ok"),
            Some((Op::In, "a,b"))
        );
        assert_eq!(
            split("status", "success").expect("ok"),
            Some((Op::Eq, "success"))
        );
        assert_eq!(
            split("event_time", "2018-03-22T07:25:31").expect("ok"),
            Some((Op::Eq, "2018-03-22T07:25:31"))
        );
        assert_eq!(
            split("message", "Note: x").expect("ok"),
            Some((Op::Eq, "Note: x"))
        );
        assert_eq!(
            split("message", "eq:a:b").expect("ok"),
            Some((Op::Eq, "a:b"))
        );
        assert_eq!(split("status", "").expect("ok"), None);
        let err = split("status", "approx:x").expect_err("unknown");
        assert_eq!(err.field.as_deref(), Some("status"));
        assert!(err.message().contains("approx"), "{}", err.message());
    }

    #[test]
    fn event_time_compares_whole_seconds() {
        let t = 1_521_703_531_000_000; // 2018-03-22T07:25:31
        let c = condition("event_time", Field::Ts, "gt:2018-03-22T07:25:31").expect("ok");
        assert_eq!(
            c,
            Some(Condition::Compare(
                Field::Ts,
                Comparison::Ge,
                Scalar::Int(t + 1_000_000)
            ))
        );
        let c = condition("event_time", Field::Ts, "lte:2018-03-22T07:25:31.9").expect("ok");
        assert_eq!(
            c,
            Some(Condition::Compare(
                Field::Ts,
                Comparison::Lt,
                Scalar::Int(t + 1_000_000)
            ))
        );
        assert!(condition("event_time", Field::Ts, "like:2018").is_err());
        assert!(condition("event_time", Field::Ts, "soon").is_err());
        assert!(condition("id", Field::Id, "like:4").is_err());
        assert!(condition("id", Field::Id, "in:1,x").is_err());
        assert!(condition("status", Field::Status, "in:,").is_err());
    }
}
