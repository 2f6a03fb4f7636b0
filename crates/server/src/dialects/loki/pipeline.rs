//! The LogQL pipeline run in memory, one record at a time, for the stages the store
//! cannot answer (regular expressions, parsers, formatters, filters on parsed
//! labels). It follows Loki's rules: a parser that fails keeps the line and sets
//! `__error__`; a numeric filter on a missing label drops the line, on a value that
//! is not a number keeps it with `__error__="LabelFilterErr"`; parsed labels that
//! collide with stream labels or metadata get the `_extracted` suffix.

use super::labels::{sanitize, stream_labels, structured_metadata, LabelMap};
use super::logql::lexer::{parse_bytes, parse_duration};
use super::logql::{Comparison, LabelPredicate, MatchOp, TemplatePart};
use logbook_core::{Record, Timestamp};
use regex::Regex;
use serde_json::Value;

pub(super) const ERROR_LABEL: &str = "__error__";
pub(super) const ERROR_DETAILS_LABEL: &str = "__error_details__";

/// A line on its way through the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    pub id: i64,
    pub ts: Timestamp,
    pub line: String,
    pub stream: LabelMap,
    pub metadata: LabelMap,
    /// Labels the parsers extracted, and the error labels.
    pub parsed: LabelMap,
}

impl Entry {
    pub(super) fn from_record(record: &Record) -> Entry {
        Entry {
            id: record.id,
            ts: record.ts,
            line: record.message.clone().unwrap_or_default(),
            stream: stream_labels(record),
            metadata: structured_metadata(record),
            parsed: LabelMap::new(),
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.stream
            .get(name)
            .or_else(|| self.metadata.get(name))
            .or_else(|| self.parsed.get(name))
            .map(String::as_str)
    }

    fn has_error(&self) -> bool {
        self.parsed.contains_key(ERROR_LABEL)
    }

    /// Records the first error only: a later stage's error would hide the cause.
    fn set_error(&mut self, error: &str, details: impl Into<String>) {
        if !self.has_error() {
            self.parsed.insert(ERROR_LABEL.into(), error.into());
            self.parsed
                .insert(ERROR_DETAILS_LABEL.into(), details.into());
        }
    }

    fn remove(&mut self, name: &str) {
        self.stream.remove(name);
        self.metadata.remove(name);
        self.parsed.remove(name);
    }

    /// Every label, whichever its kind (for grouping and for uncategorised answers).
    pub(super) fn all_labels(&self) -> LabelMap {
        let mut all = self.stream.clone();
        all.extend(self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        all.extend(self.parsed.iter().map(|(k, v)| (k.clone(), v.clone())));
        all
    }

    /// A parsed label, renamed `<name>_extracted` when a stream label or metadata
    /// already has the name (Loki's rule, so nothing a stream is is overwritten).
    fn set_parsed(&mut self, name: String, value: String) {
        let name = if self.stream.contains_key(&name) || self.metadata.contains_key(&name) {
            format!("{name}_extracted")
        } else {
            name
        };
        self.parsed.insert(name, value);
    }
}

/// A string matcher (`=`, `!=`, `=~`, `!~`) compiled once. Regular expressions match
/// the whole value, with `.` matching newlines too (Prometheus 3's label matchers).
#[derive(Debug, Clone)]
pub(super) struct TextMatcher {
    op: MatchOp,
    value: String,
    regex: Option<Regex>,
}

impl TextMatcher {
    pub(super) fn new(op: MatchOp, value: &str) -> Result<TextMatcher, regex::Error> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(Regex::new(&format!("^(?s:{value})$"))?),
            _ => None,
        };
        Ok(TextMatcher {
            op,
            value: value.to_string(),
            regex,
        })
    }

    pub(super) fn matches(&self, value: &str) -> bool {
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (_, None) => false,
        }
    }
}

/// One stage, ready to run.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Stream matchers the store could not apply.
    Selector(Vec<(String, TextMatcher)>),
    LineContains {
        negated: bool,
        patterns: Vec<String>,
    },
    LineMatches {
        negated: bool,
        regexes: Vec<Regex>,
    },
    Json,
    Logfmt,
    LineFormat(Vec<TemplatePart>),
    LabelFilter(Predicate),
    Drop(Vec<Selection>),
    Keep(Vec<Selection>),
}

#[derive(Debug, Clone)]
pub(super) struct Selection {
    pub name: String,
    pub matcher: Option<TextMatcher>,
}

impl Selection {
    fn selects(&self, entry: &Entry) -> bool {
        match &self.matcher {
            None => true,
            Some(matcher) => matcher.matches(entry.get(&self.name).unwrap_or("")),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Predicate {
    And(Box<Predicate>, Box<Predicate>),
    Or(Box<Predicate>, Box<Predicate>),
    Text(String, TextMatcher),
    Number(String, Comparison, f64),
    Duration(String, Comparison, i64),
    Bytes(String, Comparison, u64),
}

impl Predicate {
    pub(super) fn compile(predicate: &LabelPredicate) -> Result<Predicate, regex::Error> {
        Ok(match predicate {
            LabelPredicate::And(a, b) => Predicate::And(
                Box::new(Predicate::compile(a)?),
                Box::new(Predicate::compile(b)?),
            ),
            LabelPredicate::Or(a, b) => Predicate::Or(
                Box::new(Predicate::compile(a)?),
                Box::new(Predicate::compile(b)?),
            ),
            LabelPredicate::Text { name, op, value } => {
                Predicate::Text(name.clone(), TextMatcher::new(*op, value)?)
            }
            LabelPredicate::Number { name, cmp, value } => {
                Predicate::Number(name.clone(), *cmp, *value)
            }
            LabelPredicate::Duration { name, cmp, nanos } => {
                Predicate::Duration(name.clone(), *cmp, *nanos)
            }
            LabelPredicate::Bytes { name, cmp, bytes } => {
                Predicate::Bytes(name.clone(), *cmp, *bytes)
            }
        })
    }

    fn holds(&self, entry: &mut Entry) -> bool {
        match self {
            Predicate::And(a, b) => a.holds(entry) && b.holds(entry),
            Predicate::Or(a, b) => a.holds(entry) || b.holds(entry),
            Predicate::Text(name, matcher) => matcher.matches(entry.get(name).unwrap_or("")),
            Predicate::Number(name, cmp, value) => converted(
                entry,
                name,
                |v| v.trim().parse::<f64>().ok(),
                |v| cmp.holds(v, *value),
            ),
            Predicate::Duration(name, cmp, nanos) => {
                converted(entry, name, go_duration, |v| cmp.holds(v, *nanos))
            }
            Predicate::Bytes(name, cmp, bytes) => {
                converted(entry, name, human_bytes, |v| cmp.holds(v, *bytes))
            }
        }
    }
}

/// A filter on a label read as a number of some kind: a missing label fails, a
/// value that does not convert passes with `__error__` set (Loki's rules).
fn converted<T>(
    entry: &mut Entry,
    name: &str,
    convert: impl Fn(&str) -> Option<T>,
    test: impl Fn(T) -> bool,
) -> bool {
    let Some(text) = entry.get(name).map(str::to_string) else {
        return false;
    };
    match convert(&text) {
        Some(value) => test(value),
        None => {
            entry.set_error(
                "LabelFilterErr",
                format!("cannot convert {text:?} of label {name}"),
            );
            true
        }
    }
}

/// Go's `time.ParseDuration`: units required except for a bare `0`.
fn go_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let nanos = if body == "0" {
        0
    } else {
        parse_duration(body)?
    };
    Some(if negative { -nanos } else { nanos })
}

/// humanize's `ParseBytes`: `42`, `42 MB`, `1.5KiB`.
fn human_bytes(text: &str) -> Option<u64> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    match compact.parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Some(n.round() as u64),
        _ => parse_bytes(&compact),
    }
}

/// The stages the store did not apply, in query order.
#[derive(Debug, Clone, Default)]
pub(super) struct Pipeline {
    pub steps: Vec<Step>,
}

impl Pipeline {
    /// Whether some step can drop a line (so counts need the lines themselves).
    pub(super) fn filters(&self) -> bool {
        self.steps.iter().any(|s| {
            matches!(
                s,
                Step::Selector(_)
                    | Step::LineContains { .. }
                    | Step::LineMatches { .. }
                    | Step::LabelFilter(_)
            )
        })
    }

    /// Whether some step adds, drops or keeps labels.
    pub(super) fn changes_labels(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::Json | Step::Logfmt | Step::Drop(_) | Step::Keep(_)))
    }

    /// The record as the pipeline leaves it, or `None` if a step drops it.
    pub(super) fn process(&self, record: &Record) -> Option<Entry> {
        let mut entry = Entry::from_record(record);
        for step in &self.steps {
            if !run(step, &mut entry) {
                return None;
            }
        }
        Some(entry)
    }
}

fn run(step: &Step, entry: &mut Entry) -> bool {
    match step {
        Step::Selector(matchers) => matchers
            .iter()
            .all(|(name, m)| m.matches(entry.stream.get(name).map(String::as_str).unwrap_or(""))),
        Step::LineContains { negated, patterns } => {
            let found = patterns.iter().any(|p| entry.line.contains(p.as_str()));
            found != *negated
        }
        Step::LineMatches { negated, regexes } => {
            let found = regexes.iter().any(|re| re.is_match(&entry.line));
            found != *negated
        }
        Step::Json => {
            parse_json(entry);
            true
        }
        Step::Logfmt => {
            parse_logfmt(entry);
            true
        }
        Step::LineFormat(parts) => {
            let mut line = String::new();
            for part in parts {
                match part {
                    TemplatePart::Text(text) => line.push_str(text),
                    TemplatePart::Label(name) => line.push_str(entry.get(name).unwrap_or("")),
                    TemplatePart::Line => line.push_str(&entry.line),
                }
            }
            entry.line = line;
            true
        }
        Step::LabelFilter(predicate) => predicate.holds(entry),
        Step::Drop(selections) => {
            for selection in selections {
                if selection.selects(entry) {
                    entry.remove(&selection.name);
                    if selection.name == ERROR_LABEL {
                        entry.remove(ERROR_DETAILS_LABEL);
                    }
                }
            }
            true
        }
        Step::Keep(selections) => {
            let kept = |entry: &Entry, name: &str| {
                selections
                    .iter()
                    .any(|s| s.name == name && s.selects(entry))
            };
            let names: Vec<String> = entry.all_labels().into_keys().collect();
            for name in names {
                if !kept(entry, &name) {
                    entry.remove(&name);
                }
            }
            true
        }
    }
}

/// `| json`: every string, number and boolean of the line's object becomes a label,
/// nested keys joined with `_`; arrays and nulls are skipped.
fn parse_json(entry: &mut Entry) {
    match serde_json::from_str::<Value>(&entry.line) {
        Ok(Value::Object(object)) => {
            let mut found = Vec::new();
            flatten("", &object, &mut found);
            for (name, value) in found {
                entry.set_parsed(name, value);
            }
        }
        Ok(_) => entry.set_error("JSONParserErr", "the line is not a JSON object"),
        Err(e) => entry.set_error("JSONParserErr", e.to_string()),
    }
}

fn flatten(
    prefix: &str,
    object: &serde_json::Map<String, Value>,
    found: &mut Vec<(String, String)>,
) {
    for (key, value) in object {
        let part = sanitize(key.trim());
        let name = match (prefix.is_empty(), part.is_empty()) {
            (_, true) => prefix.to_string(),
            (true, false) => part,
            (false, false) => format!("{prefix}_{part}"),
        };
        match value {
            Value::Object(inner) => flatten(&name, inner, found),
            Value::String(s) if !name.is_empty() => found.push((name, s.clone())),
            Value::Number(n) if !name.is_empty() => found.push((name, n.to_string())),
            Value::Bool(b) if !name.is_empty() => found.push((name, b.to_string())),
            _ => {}
        }
    }
}

/// `| logfmt`: `key=value` pairs, values bare or double-quoted with escapes; a key
/// without `=` has an empty value.
fn parse_logfmt(entry: &mut Entry) {
    match logfmt_pairs(&entry.line) {
        Ok(pairs) => {
            for (key, value) in pairs {
                let name = sanitize(&key);
                if !name.is_empty() {
                    entry.set_parsed(name, value);
                }
            }
        }
        Err(problem) => entry.set_error("LogfmtParserErr", problem),
    }
}

fn logfmt_pairs(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            return Ok(pairs);
        };
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            if c == '"' {
                return Err(format!("unexpected '\"' at {i}"));
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let key = line[start..end].to_string();
        if chars.peek().map(|(_, c)| *c) != Some('=') {
            if key.is_empty() {
                return Err(format!("unexpected character at {start}"));
            }
            pairs.push((key, String::new()));
            continue;
        }
        if key.is_empty() {
            return Err(format!("unexpected '=' at {start}"));
        }
        chars.next();
        let value = if chars.peek().map(|(_, c)| *c) == Some('"') {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted value".into()),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, 'r')) => value.push('\r'),
                        Some((_, c)) => value.push(c),
                        None => return Err("unterminated quoted value".into()),
                    },
                    Some((_, c)) => value.push(c),
                }
            }
            value
        } else {
            let mut value = String::new();
            while let Some(&(i, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '"' || c == '=' {
                    return Err(format!("unexpected {c:?} at {i}"));
                }
                value.push(c);
                chars.next();
            }
            value
        };
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_core::{Kind, Level, NewRecord};

    fn record(message: &str) -> Record {
        let mut new = NewRecord::new(Kind::Log);
        new.level = Some(Level::Error);
        new.source = Some("api".into());
        new.message = Some(message.into());
        new.into_record(7, Timestamp(1_000))
    }

    fn predicate(text: &str) -> Step {
        match super::super::logql::parse(&format!("{{a=\"b\"}} | {text}")) {
            Ok(super::super::logql::Expr::Log(q)) => match &q.stages[0] {
                super::super::logql::Stage::LabelFilter(p) => {
                    Step::LabelFilter(Predicate::compile(p).expect("compiles"))
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_flattens_and_never_overwrites_the_stream() {
        let pipeline = Pipeline {
            steps: vec![Step::Json],
        };
        let entry = pipeline
            .process(&record(
                r#"{"level":"debug","req":{"status":503,"ok":false,"tags":[1]},"x y":null}"#,
            ))
            .expect("kept");
        assert_eq!(entry.get("level"), Some("error"), "the stream label stays");
        assert_eq!(
            entry.parsed.get("level_extracted").map(String::as_str),
            Some("debug")
        );
        assert_eq!(entry.get("req_status"), Some("503"));
        assert_eq!(entry.get("req_ok"), Some("false"));
        assert_eq!(entry.get("req_tags"), None);
        let broken = pipeline.process(&record("not json")).expect("kept");
        assert_eq!(broken.get(ERROR_LABEL), Some("JSONParserErr"));
    }

    #[test]
    fn logfmt_reads_bare_and_quoted_values() {
        assert_eq!(
            logfmt_pairs(r#"a=1 msg="disk \"full\"" flag b= c"#).expect("parses"),
            [
                ("a".into(), "1".into()),
                ("msg".into(), "disk \"full\"".into()),
                ("flag".into(), String::new()),
                ("b".into(), String::new()),
                ("c".into(), String::new()),
            ]
        );
        assert!(logfmt_pairs("=x").is_err());
        assert!(logfmt_pairs("a=\"open").is_err());
    }

    #[test]
    fn label_filters_follow_lokis_conversion_rules() {
        let pipeline = |filter: &str| Pipeline {
            steps: vec![Step::Logfmt, predicate(filter)],
        };
        let line = "status=503 took=1.5s size=2KB word=abc";
        assert!(pipeline("status >= 500").process(&record(line)).is_some());
        assert!(pipeline("status < 500").process(&record(line)).is_none());
        assert!(pipeline("took > 1s").process(&record(line)).is_some());
        assert!(pipeline("size > 1KB").process(&record(line)).is_some());
        assert!(pipeline("missing > 1").process(&record(line)).is_none());
        let kept = pipeline("word > 1")
            .process(&record(line))
            .expect("kept with an error");
        assert_eq!(kept.get(ERROR_LABEL), Some("LabelFilterErr"));
        assert!(pipeline(r#"status = 503 and word=~"a.*""#)
            .process(&record(line))
            .is_some());
        assert!(pipeline(r#"status = 1 or word!="abc""#)
            .process(&record(line))
            .is_none());
    }

    #[test]
    fn formatting_dropping_and_keeping() {
        let selection = |name: &str| Selection {
            name: name.into(),
            matcher: None,
        };
        let pipeline = Pipeline {
            steps: vec![
                Step::Logfmt,
                Step::LineFormat(vec![
                    TemplatePart::Label("level".into()),
                    TemplatePart::Text(": ".into()),
                    TemplatePart::Label("msg".into()),
                    TemplatePart::Label("absent".into()),
                ]),
                Step::Drop(vec![selection("source")]),
                Step::Keep(vec![
                    selection("level"),
                    selection("msg"),
                    selection("kind"),
                ]),
            ],
        };
        let entry = pipeline
            .process(&record("msg=hello other=1"))
            .expect("kept");
        assert_eq!(entry.line, "error: hello");
        assert_eq!(
            entry.all_labels().into_keys().collect::<Vec<_>>(),
            ["kind", "level", "msg"]
        );
    }
}
