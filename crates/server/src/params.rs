//! Query-string parameters as every API receives them: repeated names kept, each
//! value decoded once, and a record of which names a handler used so that unknown
//! parameters can be refused by name instead of silently ignored; and the value
//! parsers several APIs share (action states, lenient dates), so no API imports
//! another's.
//!
//! Refused by name, whatever the API: a NUL character in any value (no filter can
//! mean one, and stores cannot hold one), and a single-valued parameter given twice
//! (`limit=1&limit=2`: which one was meant is a guess). The native API also refuses
//! empty values (`limit=`, `since=`), through [`Params::strict`]; dialects keep their
//! origin's habit of treating a blank as absent (django-filter does).

use crate::error::ApiError;
use logbook_core::{ActionState, Timestamp};
use std::cell::RefCell;
use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    used: RefCell<BTreeSet<String>>,
    /// The first problem found while a handler read the parameters (a repeated
    /// single-valued one); [`Params::reject_unknown`] reports it.
    problem: RefCell<Option<ApiError>>,
}

impl Params {
    /// Parses a query string, refusing NUL characters in names and values.
    pub fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = match raw {
            None | Some("") => Vec::new(),
            Some(raw) => serde_urlencoded::from_str(raw)
                .map_err(|e| ApiError::bad_request("query", format!("cannot be decoded: {e}")))?,
        };
        for (name, value) in &pairs {
            // `=x`: refused here, or the refusal would name an empty parameter
            // (found by fuzzing).
            if name.is_empty() {
                return Err(ApiError::bad_request(
                    "query",
                    format!("has a value without a parameter name ({value:?})"),
                ));
            }
            if name.contains('\0') || value.contains('\0') {
                let field = if name.contains('\0') { "query" } else { name };
                return Err(ApiError::bad_request(
                    field,
                    "must not contain NUL characters",
                ));
            }
        }
        Ok(Params {
            pairs,
            used: RefCell::new(BTreeSet::new()),
            problem: RefCell::new(None),
        })
    }

    /// [`Params::parse`], also refusing empty values by name (the native API: a
    /// blank `limit=` or `since=` is a mistake, not a request for the default).
    pub fn strict(raw: Option<&str>) -> Result<Params, ApiError> {
        let params = Params::parse(raw)?;
        if let Some((name, _)) = params.pairs.iter().find(|(_, v)| v.trim().is_empty()) {
            return Err(ApiError::bad_request(name.as_str(), "must not be empty"));
        }
        Ok(params)
    }

    fn mark(&self, name: &str) {
        self.used.borrow_mut().insert(name.to_string());
    }

    /// The value given for `name`, a parameter that takes one value: given twice,
    /// it is refused by [`Params::reject_unknown`] (the last one is returned
    /// meanwhile, so a handler reads on and the refusal names the parameter).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.mark(name);
        let mut values = self.pairs.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        if let Some((_, last)) = values.next_back() {
            let mut problem = self.problem.borrow_mut();
            if problem.is_none() {
                *problem = Some(ApiError::bad_request(
                    name,
                    "is given more than once but takes one value",
                ));
            }
            return Some(last.as_str());
        }
        first
    }

    /// The first problem found while the parameters were read, if any.
    pub fn check(&self) -> Result<(), ApiError> {
        match self.problem.borrow().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
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
        let value = self.non_empty(name);
        self.check()?;
        match value {
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

    /// `offset` of a listing (0 when absent). Stores keep offsets as signed 64-bit
    /// integers, so a larger one is refused here rather than failing in SQL.
    pub fn offset(&self) -> Result<u64, ApiError> {
        let offset = self
            .parsed::<u64>("offset", "a non-negative integer")?
            .unwrap_or(0);
        if offset > i64::MAX as u64 {
            return Err(ApiError::bad_request(
                "offset",
                format!("may be at most {}", i64::MAX),
            ));
        }
        Ok(offset)
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

    /// Refuses parameters the handler did not read (typos would otherwise widen a
    /// query), and any problem found while it read them ([`Params::check`]).
    pub fn reject_unknown(&self) -> Result<(), ApiError> {
        self.check()?;
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
