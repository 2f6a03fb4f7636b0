//! Translates a log query onto the core [`Query`]: every matcher and filter whose
//! meaning a condition states exactly goes to the store (and so to its indexes and
//! its count and histogram paths); the rest stays in the in-memory [`Pipeline`], in
//! query order. A filter moves to the store only while it still sees the original
//! record: line filters before any `line_format`, label filters before any parser,
//! `drop` or `keep`.

use super::labels::{label_field, stream_field};
use super::logql::{LabelPredicate, LineOp, LogQuery, MatchOp, Stage};
use super::pipeline::{Pipeline, Predicate, Selection as DropSelection, Step, TextMatcher};
use logbook_core::query::{Comparison, Scalar};
use logbook_core::{Condition, Field, Kind, Level};

/// What a log query asks of the store, and what is left for memory.
#[derive(Debug, Clone)]
pub(super) struct Selection {
    /// Exact conditions (scope and time range are the caller's).
    pub conditions: Vec<Condition>,
    /// Stream matchers on text fields no condition states (a regular expression
    /// that is not a list of alternatives): the pipeline checks them, and a query
    /// over a time range may turn them into conditions with [`Selection::resolve`].
    pub open: Vec<(Field, String, TextMatcher)>,
    pub pipeline: Pipeline,
}

/// A translation: exact, or only checkable in memory.
enum Exact {
    Condition(Condition),
    No,
}

fn always() -> Condition {
    Condition::All(Vec::new())
}

fn never() -> Condition {
    Condition::Any(Vec::new())
}

fn not(condition: Condition) -> Condition {
    Condition::Not(Box::new(condition))
}

/// A text field without a (non-empty) value: no label.
fn absent(field: Field) -> Condition {
    not(Condition::Compare(
        field,
        Comparison::Gt,
        Scalar::Text(String::new()),
    ))
}

fn present(field: Field) -> Condition {
    Condition::Compare(field, Comparison::Gt, Scalar::Text(String::new()))
}

fn any_of(mut conditions: Vec<Condition>) -> Condition {
    if conditions.len() == 1 {
        conditions.remove(0)
    } else {
        Condition::Any(conditions)
    }
}

fn all_of(mut conditions: Vec<Condition>) -> Condition {
    if conditions.len() == 1 {
        conditions.remove(0)
    } else {
        Condition::All(conditions)
    }
}

pub(super) fn plan(query: &LogQuery) -> Result<Selection, regex::Error> {
    let mut conditions = Vec::new();
    let mut open = Vec::new();
    let mut residual_matchers = Vec::new();
    for m in &query.matchers {
        let matcher = TextMatcher::new(m.op, &m.value)?;
        match stream_field(&m.name) {
            None => {
                // Not a stream label: absent from every stream, so the value is "".
                if !matcher.matches("") {
                    conditions.push(never());
                }
            }
            Some(field) => match label_condition(field, m.op, &m.value, &matcher) {
                Exact::Condition(c) => conditions.push(c),
                Exact::No => {
                    residual_matchers.push((m.name.clone(), matcher.clone()));
                    open.push((field, m.name.clone(), matcher));
                }
            },
        }
    }
    let mut steps = Vec::new();
    if !residual_matchers.is_empty() {
        steps.push(Step::Selector(residual_matchers));
    }
    let (mut line_original, mut labels_original) = (true, true);
    for stage in &query.stages {
        match stage {
            Stage::LineFilter { op, patterns } => {
                let exact = if line_original {
                    line_condition(*op, patterns)
                } else {
                    Exact::No
                };
                match exact {
                    Exact::Condition(c) => conditions.push(c),
                    Exact::No => steps.push(line_step(*op, patterns)?),
                }
            }
            Stage::LabelFilter(predicate) => {
                let exact = if labels_original {
                    predicate_condition(predicate)?
                } else {
                    Exact::No
                };
                match exact {
                    Exact::Condition(c) => conditions.push(c),
                    Exact::No => steps.push(Step::LabelFilter(Predicate::compile(predicate)?)),
                }
            }
            Stage::Json => {
                labels_original = false;
                steps.push(Step::Json);
            }
            Stage::Logfmt => {
                labels_original = false;
                steps.push(Step::Logfmt);
            }
            Stage::LineFormat(parts) => {
                line_original = false;
                steps.push(Step::LineFormat(parts.clone()));
            }
            Stage::Drop(selections) | Stage::Keep(selections) => {
                labels_original = false;
                let compiled = selections
                    .iter()
                    .map(|s| {
                        Ok(DropSelection {
                            name: s.name.clone(),
                            matcher: s
                                .matcher
                                .as_ref()
                                .map(|(op, v)| TextMatcher::new(*op, v))
                                .transpose()?,
                        })
                    })
                    .collect::<Result<Vec<_>, regex::Error>>()?;
                steps.push(if matches!(stage, Stage::Drop(_)) {
                    Step::Drop(compiled)
                } else {
                    Step::Keep(compiled)
                });
            }
        }
    }
    // A `drop __error__` with nothing to drop is no stage at all (Grafana adds one to
    // every logs-volume query).
    let parses = steps.iter().any(|s| matches!(s, Step::Json | Step::Logfmt));
    if !parses {
        steps.retain(|s| !drops_only_error_labels(s));
    }
    Ok(Selection {
        conditions,
        open,
        pipeline: Pipeline { steps },
    })
}

fn drops_only_error_labels(step: &Step) -> bool {
    match step {
        Step::Drop(selections) => selections.iter().all(|s| {
            s.name == super::pipeline::ERROR_LABEL || s.name == super::pipeline::ERROR_DETAILS_LABEL
        }),
        _ => false,
    }
}

impl Selection {
    /// Turns an open matcher into a condition, given the distinct values its field
    /// takes among the records in question (`None` for none): the values it
    /// matches, or, if it matches the empty value, everything but those it does not.
    pub(super) fn resolve(&mut self, field: Field, distinct: &[Option<String>]) {
        let Some(position) = self.open.iter().position(|(f, _, _)| *f == field) else {
            return;
        };
        let (_, name, matcher) = self.open.remove(position);
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let values: Vec<String> = distinct
            .iter()
            .map(text)
            .filter(|v| !v.is_empty())
            .collect();
        let condition = if matcher.matches("") {
            let refused = values.iter().filter(|v| !matcher.matches(v));
            not(Condition::In(
                field,
                refused.cloned().map(Scalar::Text).collect(),
            ))
        } else {
            let taken = values.iter().filter(|v| matcher.matches(v));
            Condition::In(field, taken.cloned().map(Scalar::Text).collect())
        };
        self.conditions.push(condition);
        for step in &mut self.pipeline.steps {
            if let Step::Selector(matchers) = step {
                matchers.retain(|(n, _)| *n != name);
            }
        }
        self.pipeline
            .steps
            .retain(|s| !matches!(s, Step::Selector(m) if m.is_empty()));
    }
}

/// A label matcher as a condition on the field behind the label, exactly.
fn label_condition(field: Field, op: MatchOp, value: &str, matcher: &TextMatcher) -> Exact {
    match field {
        // Few values: test the matcher on each rendering.
        Field::Level => {
            let matching: Vec<Scalar> = Level::ALL
                .into_iter()
                .filter(|l| matcher.matches(&l.name().to_ascii_lowercase()))
                .map(|l| Scalar::Int(l.number()))
                .collect();
            let refused: Vec<Scalar> = Level::ALL
                .into_iter()
                .map(|l| Scalar::Int(l.number()))
                .filter(|n| !matching.contains(n))
                .collect();
            Exact::Condition(if matcher.matches("") {
                if refused.is_empty() {
                    always()
                } else {
                    not(Condition::In(Field::Level, refused))
                }
            } else {
                Condition::In(Field::Level, matching)
            })
        }
        Field::Kind => {
            let matching: Vec<Scalar> = Kind::ALL
                .into_iter()
                .filter(|k| matcher.matches(k.name()))
                .map(|k| Scalar::Int(k.code()))
                .collect();
            Exact::Condition(if matching.len() == Kind::ALL.len() {
                always()
            } else {
                Condition::In(Field::Kind, matching)
            })
        }
        Field::Id => match op {
            MatchOp::Equal | MatchOp::NotEqual => {
                let id = value.parse::<i64>().ok().filter(|n| n.to_string() == value);
                let equal = match id {
                    Some(id) => Condition::In(Field::Id, vec![Scalar::Int(id)]),
                    None => never(),
                };
                Exact::Condition(if op == MatchOp::Equal {
                    equal
                } else {
                    not(equal)
                })
            }
            _ => Exact::No,
        },
        _ => text_condition(field, op, value),
    }
}

fn text_condition(field: Field, op: MatchOp, value: &str) -> Exact {
    let text = |v: &str| Scalar::Text(v.to_string());
    match op {
        MatchOp::Equal if value.is_empty() => Exact::Condition(absent(field)),
        MatchOp::Equal => Exact::Condition(Condition::In(field, vec![text(value)])),
        MatchOp::NotEqual if value.is_empty() => Exact::Condition(present(field)),
        MatchOp::NotEqual => Exact::Condition(Condition::NotIn(field, vec![text(value)])),
        MatchOp::Regex | MatchOp::NotRegex => {
            let positive = match anchored_shape(value) {
                Some(Shape::Everything) => always(),
                Some(Shape::NonEmpty) => present(field),
                Some(Shape::Literals(literals)) => {
                    let (empty, values): (Vec<String>, Vec<String>) =
                        literals.into_iter().partition(|l| l.is_empty());
                    let listed = Condition::In(field, values.iter().map(|v| text(v)).collect());
                    if empty.is_empty() {
                        listed
                    } else {
                        Condition::Any(vec![listed, absent(field)])
                    }
                }
                None => return Exact::No,
            };
            Exact::Condition(if op == MatchOp::Regex {
                positive
            } else {
                not(positive)
            })
        }
    }
}

/// A line filter as a condition on the message (a record without one has the
/// line ""), exactly.
fn line_condition(op: LineOp, patterns: &[String]) -> Exact {
    let contains = |p: &str| {
        if p.is_empty() {
            always()
        } else {
            Condition::ContainsCaseSensitive(Field::Message, p.to_string())
        }
    };
    let positive = match op {
        LineOp::Contains | LineOp::NotContains => {
            any_of(patterns.iter().map(|p| contains(p)).collect())
        }
        LineOp::Matches | LineOp::NotMatches => {
            let mut alternatives = Vec::new();
            for pattern in patterns {
                let Some((ignore_case, shape)) = unanchored_shape(pattern) else {
                    return Exact::No;
                };
                match shape {
                    Shape::Everything => alternatives.push(always()),
                    Shape::NonEmpty => return Exact::No,
                    Shape::Literals(literals) => {
                        for literal in literals {
                            alternatives.push(if literal.is_empty() {
                                always()
                            } else if ignore_case {
                                Condition::Contains(Field::Message, literal)
                            } else {
                                Condition::ContainsCaseSensitive(Field::Message, literal)
                            });
                        }
                    }
                }
            }
            any_of(alternatives)
        }
    };
    Exact::Condition(match op {
        LineOp::Contains | LineOp::Matches => positive,
        LineOp::NotContains | LineOp::NotMatches => not(positive),
    })
}

fn line_step(op: LineOp, patterns: &[String]) -> Result<Step, regex::Error> {
    Ok(match op {
        LineOp::Contains | LineOp::NotContains => Step::LineContains {
            negated: op == LineOp::NotContains,
            patterns: patterns.to_vec(),
        },
        LineOp::Matches | LineOp::NotMatches => Step::LineMatches {
            negated: op == LineOp::NotMatches,
            regexes: patterns
                .iter()
                .map(|p| regex::Regex::new(p))
                .collect::<Result<_, _>>()?,
        },
    })
}

/// A label filter on the original labels as a condition, exactly.
fn predicate_condition(predicate: &LabelPredicate) -> Result<Exact, regex::Error> {
    Ok(match predicate {
        LabelPredicate::And(a, b) => match (predicate_condition(a)?, predicate_condition(b)?) {
            (Exact::Condition(a), Exact::Condition(b)) => Exact::Condition(all_of(vec![a, b])),
            _ => Exact::No,
        },
        LabelPredicate::Or(a, b) => match (predicate_condition(a)?, predicate_condition(b)?) {
            (Exact::Condition(a), Exact::Condition(b)) => Exact::Condition(any_of(vec![a, b])),
            _ => Exact::No,
        },
        LabelPredicate::Text { name, op, value } => {
            let matcher = TextMatcher::new(*op, value)?;
            if name == super::pipeline::ERROR_LABEL || name == super::pipeline::ERROR_DETAILS_LABEL
            {
                // Nothing has failed before a parser: the error labels are empty.
                Exact::Condition(if matcher.matches("") {
                    always()
                } else {
                    never()
                })
            } else {
                match label_field(name) {
                    Some(field) => label_condition(field, *op, value, &matcher),
                    // A key of `data`, perhaps: only the record itself can tell.
                    None => Exact::No,
                }
            }
        }
        // Ids are numbers, always: the comparison is exact. Other labels may not be
        // numbers, which Loki answers with an error label, so memory decides.
        LabelPredicate::Number { name, cmp, value } if label_field(name) == Some(Field::Id) => {
            Exact::Condition(id_comparison(*cmp, *value))
        }
        LabelPredicate::Number { .. }
        | LabelPredicate::Duration { .. }
        | LabelPredicate::Bytes { .. } => Exact::No,
    })
}

fn id_comparison(cmp: super::logql::Comparison, value: f64) -> Condition {
    use super::logql::Comparison as C;
    let compare = |c: Comparison, n: f64| Condition::Compare(Field::Id, c, Scalar::Int(n as i64));
    if value.is_nan() {
        return if cmp == C::NotEqual {
            always()
        } else {
            never()
        };
    }
    let whole = value.fract() == 0.0 && value.abs() < 9e15;
    match cmp {
        C::Equal if whole => Condition::In(Field::Id, vec![Scalar::Int(value as i64)]),
        C::Equal => never(),
        C::NotEqual if whole => not(Condition::In(Field::Id, vec![Scalar::Int(value as i64)])),
        C::NotEqual => always(),
        C::Greater => compare(Comparison::Gt, value.floor().clamp(-9e15, 9e15)),
        C::GreaterEqual => compare(Comparison::Ge, value.ceil().clamp(-9e15, 9e15)),
        C::Less => compare(Comparison::Lt, value.ceil().clamp(-9e15, 9e15)),
        C::LessEqual => compare(Comparison::Le, value.floor().clamp(-9e15, 9e15)),
    }
}

/// The meanings of a regular expression a condition can state.
#[derive(Debug, PartialEq)]
enum Shape {
    Everything,
    NonEmpty,
    /// Exactly one of these strings (anchored) or containing one (unanchored).
    Literals(Vec<String>),
}

/// A label matcher's regex, which must match the whole value (case-sensitively:
/// the store compares label values exactly).
fn anchored_shape(pattern: &str) -> Option<Shape> {
    match pattern {
        ".*" => Some(Shape::Everything),
        ".+" => Some(Shape::NonEmpty),
        _ => literal_alternatives(pattern).map(Shape::Literals),
    }
}

/// A line filter's regex, which matches anywhere in the line: `(?i)` is allowed
/// when the literals are ASCII (the stores fold ASCII case), and `.*` around an
/// alternative changes nothing.
fn unanchored_shape(pattern: &str) -> Option<(bool, Shape)> {
    let (ignore_case, body) = match pattern.strip_prefix("(?i)") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let mut literals = Vec::new();
    for alternative in split_alternatives(body)? {
        let trimmed = alternative.strip_prefix(".*").unwrap_or(alternative);
        let trimmed = trimmed.strip_suffix(".*").unwrap_or(trimmed);
        let literal = literal(trimmed)?;
        if literal.is_empty() {
            return Some((ignore_case, Shape::Everything));
        }
        if ignore_case && !literal.is_ascii() {
            return None;
        }
        literals.push(literal);
    }
    Some((ignore_case, Shape::Literals(literals)))
}

fn literal_alternatives(pattern: &str) -> Option<Vec<String>> {
    split_alternatives(pattern)?
        .into_iter()
        .map(literal)
        .collect()
}

/// The top-level alternatives of a pattern that has no groups or classes.
fn split_alternatives(pattern: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in pattern.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '|' {
            parts.push(&pattern[start..i]);
            start = i + 1;
        } else if "()[]{}".contains(c) {
            return None;
        }
    }
    if escaped {
        return None;
    }
    parts.push(&pattern[start..]);
    Some(parts)
}

/// The text a regex without operators matches: escaped punctuation is itself.
fn literal(part: &str) -> Option<String> {
    let mut text = String::new();
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => text.push(e),
                _ => return None,
            },
            '.' | '+' | '*' | '?' | '^' | '$' | '|' | '(' | ')' | '[' | ']' | '{' | '}' => {
                return None
            }
            c => text.push(c),
        }
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::super::logql::{parse, Expr};
    use super::*;
    use logbook_core::{NewRecord, Query, Record, Timestamp};

    fn selection(query: &str) -> Selection {
        match parse(query) {
            Ok(Expr::Log(q)) => plan(&q).expect("plans"),
            other => panic!("{other:?}"),
        }
    }

    fn records() -> Vec<Record> {
        let mut out = Vec::new();
        let messages = [
            Some("GET /api 500 Timeout"),
            Some("get /health 200"),
            None,
            Some("DB error: timeout"),
        ];
        let sources = [Some("api"), Some("api-2"), None, Some("")];
        let levels = [
            Some(Level::Error),
            Some(Level::Info),
            None,
            Some(Level::Warn),
        ];
        for (i, ((message, source), level)) in messages.iter().zip(sources).zip(levels).enumerate()
        {
            let mut new = NewRecord::new(if i == 2 { Kind::Event } else { Kind::Log });
            new.message = message.map(String::from);
            new.source = source.map(String::from);
            new.level = level;
            new.request_id = Some(format!("r{i}"));
            out.push(new.into_record(i as i64 + 1, Timestamp(i as i64)));
        }
        out
    }

    /// The store's part and the pipeline's together select exactly what the pipeline
    /// alone would (the reference: every stage in memory).
    fn agrees(query: &str) {
        let selection = selection(query);
        let core = Query {
            conditions: selection.conditions.clone(),
            ..Query::default()
        };
        let Ok(Expr::Log(q)) = parse(query) else {
            panic!("log query")
        };
        let reference = reference_pipeline(&q);
        for record in records() {
            let planned = core.matches(&record) && selection.pipeline.process(&record).is_some();
            let wanted = reference.process(&record).is_some();
            assert_eq!(planned, wanted, "{query} on record {}", record.id);
        }
    }

    /// Every matcher and stage in memory, nothing in the store.
    fn reference_pipeline(q: &LogQuery) -> Pipeline {
        let matchers = q
            .matchers
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    TextMatcher::new(m.op, &m.value).expect("regex"),
                )
            })
            .collect();
        let mut steps = vec![Step::Selector(matchers)];
        for stage in &q.stages {
            steps.push(match stage {
                Stage::LineFilter { op, patterns } => line_step(*op, patterns).expect("regex"),
                Stage::LabelFilter(p) => Step::LabelFilter(Predicate::compile(p).expect("regex")),
                Stage::Json => Step::Json,
                Stage::Logfmt => Step::Logfmt,
                Stage::LineFormat(parts) => Step::LineFormat(parts.clone()),
                Stage::Drop(_) | Stage::Keep(_) => continue,
            });
        }
        Pipeline { steps }
    }

    #[test]
    fn store_conditions_mean_what_the_query_means() {
        for query in [
            r#"{source="api"}"#,
            r#"{source!="api"}"#,
            r#"{source=""}"#,
            r#"{source!=""}"#,
            r#"{source=~"api|web"}"#,
            r#"{source=~"api|"}"#,
            r#"{source!~"api|web"}"#,
            r#"{source=~".+"}"#,
            r#"{source=~".*"}"#,
            r#"{level="error"}"#,
            r#"{level="ERROR"}"#,
            r#"{level=~"warn|error"}"#,
            r#"{level!~"warn|error"}"#,
            r#"{level=""}"#,
            r#"{kind="event"}"#,
            r#"{nothing="x"}"#,
            r#"{nothing=""}"#,
            r#"{kind="log"} |= "timeout""#,
            r#"{kind="log"} |= "Timeout" or "health""#,
            r#"{kind=~".+"} != "timeout""#,
            r#"{kind=~".+"} |~ "(?i)timeout""#,
            r#"{kind=~".+"} !~ "(?i)TIMEOUT|get""#,
            r#"{kind=~".+"} |~ ".*error.*""#,
            r#"{kind=~".+"} |= """#,
            r#"{kind=~".+"} != """#,
            r#"{kind=~".+"} | level="error" or request_id="r1""#,
            r#"{kind=~".+"} | id > 1.5, id <= 3"#,
            r#"{kind=~".+"} | __error__="""#,
        ] {
            let s = selection(query);
            assert!(
                s.pipeline.steps.is_empty(),
                "{query}: all in the store, {:?}",
                s.pipeline
            );
            agrees(query);
        }
        for query in [
            r#"{source=~"api-.*"}"#,
            r#"{kind="log"} |~ "time?out""#,
            r#"{kind="log"} |~ "(?i)größe""#,
            r#"{kind="log"} | status >= 500"#,
            r#"{kind="log"} | line_format "{{.source}}" |= "api""#,
            r#"{kind="log"} | json | level="error""#,
        ] {
            let s = selection(query);
            assert!(!s.pipeline.steps.is_empty(), "{query}: memory has a part");
            agrees(query);
        }
    }

    #[test]
    fn open_matchers_resolve_against_distinct_values() {
        let mut s = selection(r#"{source=~"api-.*"}"#);
        assert_eq!(s.open.len(), 1);
        s.resolve(
            Field::Source,
            &[Some("api".into()), Some("api-2".into()), None],
        );
        assert!(s.open.is_empty() && s.pipeline.steps.is_empty());
        assert_eq!(
            s.conditions,
            [Condition::In(
                Field::Source,
                vec![Scalar::Text("api-2".into())]
            )]
        );
        let mut s = selection(r#"{source!~"api-.*"}"#);
        s.resolve(
            Field::Source,
            &[Some("api".into()), Some("api-2".into()), None],
        );
        assert_eq!(
            s.conditions,
            [not(Condition::In(
                Field::Source,
                vec![Scalar::Text("api-2".into())]
            ))]
        );
    }

    #[test]
    fn regex_shapes() {
        assert_eq!(
            literal_alternatives(r"api\.example|web"),
            Some(vec!["api.example".into(), "web".into()])
        );
        assert_eq!(literal_alternatives("a.b"), None);
        assert_eq!(literal_alternatives("(a|b)"), None);
        assert_eq!(
            unanchored_shape("(?i).*err.*|warn"),
            Some((true, Shape::Literals(vec!["err".into(), "warn".into()])))
        );
        assert_eq!(unanchored_shape("a|.*"), Some((false, Shape::Everything)));
    }
}
