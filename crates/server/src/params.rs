//! Query-string parameters as every API receives them: repeated names kept, each
//! value decoded once, and a record of which names a handler used so that unknown
//! parameters can be refused by name instead of silently ignored; and the value
//! parsers several APIs share (action states, lenient dates), so no API imports
//! another's.

use crate::error::ApiError;
use logbook_core::{ActionState, Timestamp};
use std::cell::RefCell;
use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    used: RefCell<BTreeSet<String>>,
}

impl Params {
    pub fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = match raw {
            None | Some("") => Vec::new(),
            Some(raw) => serde_urlencoded::from_str(raw)
                .map_err(|e| ApiError::bad_request("query", format!("cannot be decoded: {e}")))?,
        };
        Ok(Params {
            pairs,
            used: RefCell::new(BTreeSet::new()),
        })
    }

    fn mark(&self, name: &str) {
        self.used.borrow_mut().insert(name.to_string());
    }

    /// The last value given for `name` (a repeated scalar takes the last one).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.mark(name);
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value, treating an empty string as absent.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// Every value given for `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.mark(name);
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every value, each split on commas, blanks dropped (`level=INFO,WARN&level=ERROR`).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.all(name)
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Parses the value as `T`, naming the parameter on failure.
    pub fn parsed<T: std::str::FromStr>(
        &self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.non_empty(name) {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(name, format!("{text:?} is not {expected}"))),
        }
    }

    /// `limit` for a listing: `default` when absent, else between 1 and `max`.
    pub fn limit(&self, default: u64, max: u64) -> Result<u64, ApiError> {
        let limit = self
            .parsed::<u64>("limit", "a non-negative integer")?
            .unwrap_or(default);
        if limit == 0 || limit > max {
            return Err(ApiError::bad_request(
                "limit",
                format!("must be between 1 and {max}"),
            ));
        }
        Ok(limit)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// The first parameter no handler asked for, if any.
    pub fn first_unused(&self) -> Option<String> {
        let used = self.used.borrow();
        self.pairs
            .iter()
            .map(|(k, _)| k)
            .find(|k| !used.contains(k.as_str()))
            .cloned()
    }

    /// Refuses parameters the handler did not read (typos would otherwise widen a query).
    pub fn reject_unknown(&self) -> Result<(), ApiError> {
        match self.first_unused() {
            Some(name) => Err(ApiError::bad_request(name, "is not a known parameter")),
            None => Ok(()),
        }
    }
}

/// An action state by any of its spellings (`In progress`, `in_progress`), naming
/// the `state` parameter on failure.
pub fn parse_state(text: &str) -> Result<ActionState, ApiError> {
    ActionState::parse(text).ok_or_else(|| {
        let names: Vec<&str> = ActionState::ALL.iter().map(|s| s.name()).collect();
        ApiError::bad_request(
            "state",
            format!("{text:?} is not one of {}", names.join(", ")),
        )
    })
}

/// RFC 2822 (the Docker Cloud form), ISO 8601 or epoch seconds. A `+` of an offset
/// written unencoded in a URL arrives as a space; it is put back.
pub fn parse_date(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    let text = text.trim();
    Timestamp::parse(text)
        .or_else(|| {
            let (head, offset) = text.rsplit_once(' ')?;
            let looks_like_offset = offset.len() >= 4
                && offset.chars().all(|c| c.is_ascii_digit() || c == ':');
            looks_like_offset
                .then(|| Timestamp::parse(&format!("{head}+{offset}")))
                .flatten()
                .or_else(|| Timestamp::parse(&format!("{head} +{offset}")))
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                field,
                format!("{text:?} is not a date (RFC 2822 like \"Wed, 17 Sep 2014 08:26:22 +0000\", ISO 8601, or epoch seconds)"),
            )
        })
}
