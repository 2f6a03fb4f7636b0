//! The LogQL subset Logbook answers, as a real grammar: a lexer ([`lexer`]), a
//! recursive-descent parser ([`parser`]) and this syntax tree. Every error names the
//! line and column it was found at, in Loki's own words (`parse error at line 1,
//! col 12: ...`); constructs Loki has but Logbook does not are recognised and
//! refused by name at their position, never mistaken for something else.
//!
//! The tree prints back as canonical LogQL ([`std::fmt::Display`]), which the
//! property tests use: printing and parsing again gives the same tree.

pub mod lexer;
pub mod parser;

use std::fmt;

pub use parser::parse;

/// A query: either lines (a log query) or numbers (a metric query).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Log(LogQuery),
    Metric(MetricExpr),
}

/// A stream selector and the pipeline its lines go through.
#[derive(Debug, Clone, PartialEq)]
pub struct LogQuery {
    pub matchers: Vec<Matcher>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// `|= "a" or "b"`: the patterns are alternatives.
    LineFilter {
        op: LineOp,
        patterns: Vec<String>,
    },
    Json,
    Logfmt,
    LineFormat(Vec<TemplatePart>),
    LabelFilter(LabelPredicate),
    Drop(Vec<LabelSelection>),
    Keep(Vec<LabelSelection>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOp {
    /// `|=`
    Contains,
    /// `!=`
    NotContains,
    /// `|~`
    Matches,
    /// `!~`
    NotMatches,
}

/// A piece of a `line_format` template.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    Text(String),
    /// `{{.name}}`
    Label(String),
    /// `{{__line__}}`
    Line,
}

/// A label to drop or keep; with a matcher, only when its value matches.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSelection {
    pub name: String,
    pub matcher: Option<(MatchOp, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabelPredicate {
    And(Box<LabelPredicate>, Box<LabelPredicate>),
    Or(Box<LabelPredicate>, Box<LabelPredicate>),
    /// `name = "value"` and the other string matchers.
    Text {
        name: String,
        op: MatchOp,
        value: String,
    },
    /// `name >= 500`: the label's value read as a number.
    Number {
        name: String,
        cmp: Comparison,
        value: f64,
    },
    /// `name > 10s`: the label's value read as a Go duration, in nanoseconds.
    Duration {
        name: String,
        cmp: Comparison,
        nanos: i64,
    },
    /// `name > 20MB`: the label's value read as a byte size.
    Bytes {
        name: String,
        cmp: Comparison,
        bytes: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    NotEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
}

impl Comparison {
    pub fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Comparison::Equal => left == right,
            Comparison::NotEqual => left != right,
            Comparison::Greater => left > right,
            Comparison::GreaterEqual => left >= right,
            Comparison::Less => left < right,
            Comparison::LessEqual => left <= right,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricExpr {
    Range(RangeAggregation),
    Aggregate(VectorAggregation),
    Binary(Box<BinaryExpr>),
    /// A number: a scalar.
    Literal(f64),
    /// `vector(1)`: one sample without labels at every step.
    Vector(f64),
}

/// `count_over_time({...} |= "x" [5m] offset 1h)`
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAggregation {
    pub function: RangeFunction,
    pub query: LogQuery,
    /// The window, in nanoseconds.
    pub range: i64,
    /// How far back the window is moved, in nanoseconds.
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFunction {
    CountOverTime,
    Rate,
    BytesOverTime,
    BytesRate,
}

impl RangeFunction {
    pub fn name(self) -> &'static str {
        match self {
            RangeFunction::CountOverTime => "count_over_time",
            RangeFunction::Rate => "rate",
            RangeFunction::BytesOverTime => "bytes_over_time",
            RangeFunction::BytesRate => "bytes_rate",
        }
    }

    /// Whether the value counts lines (rather than their bytes).
    pub fn counts_lines(self) -> bool {
        matches!(self, RangeFunction::CountOverTime | RangeFunction::Rate)
    }

    /// Whether the value is per second of the window.
    pub fn per_second(self) -> bool {
        matches!(self, RangeFunction::Rate | RangeFunction::BytesRate)
    }
}

/// `sum by (level) (...)`, `topk(3, ...)`
#[derive(Debug, Clone, PartialEq)]
pub struct VectorAggregation {
    pub op: AggregationOp,
    pub grouping: Option<Grouping>,
    /// The `k` of `topk` and `bottomk`.
    pub param: Option<f64>,
    pub inner: Box<MetricExpr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregationOp {
    Sum,
    Count,
    Min,
    Max,
    Avg,
    Topk,
    Bottomk,
}

impl AggregationOp {
    pub fn name(self) -> &'static str {
        match self {
            AggregationOp::Sum => "sum",
            AggregationOp::Count => "count",
            AggregationOp::Min => "min",
            AggregationOp::Max => "max",
            AggregationOp::Avg => "avg",
            AggregationOp::Topk => "topk",
            AggregationOp::Bottomk => "bottomk",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    /// `> bool`: comparisons give 0 or 1 instead of filtering.
    pub return_bool: bool,
    pub left: MetricExpr,
    pub right: MetricExpr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Compare(Comparison),
}

impl BinaryOp {
    /// PromQL's precedence: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Compare(_) => 1,
            BinaryOp::Add | BinaryOp::Sub => 2,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 3,
            BinaryOp::Pow => 4,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Compare(c) => c.symbol(),
        }
    }
}

impl Comparison {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
            Comparison::Greater => ">",
            Comparison::GreaterEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessEqual => "<=",
        }
    }
}

/// A query Logbook cannot answer, with where and why, in Loki's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based, as Loki counts.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(input: &str, at: usize, message: impl Into<String>) -> ParseError {
        let at = at.min(input.len());
        let before = input.get(..at).unwrap_or(input);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "parse error at line {}, col {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

// Printing as canonical LogQL.

fn quote(text: &str) -> String {
    // JSON string escapes are valid Go string escapes.
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        })
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(query) => query.fmt(f),
            Expr::Metric(metric) => metric.fmt(f),
        }
    }
}

impl fmt::Display for LogQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}{}{}", m.name, m.op, quote(&m.value))?;
        }
        f.write_str("}")?;
        for stage in &self.stages {
            write!(f, " {stage}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter { op, patterns } => {
                let symbol = match op {
                    LineOp::Contains => "|=",
                    LineOp::NotContains => "!=",
                    LineOp::Matches => "|~",
                    LineOp::NotMatches => "!~",
                };
                let patterns: Vec<String> = patterns.iter().map(|p| quote(p)).collect();
                write!(f, "{symbol} {}", patterns.join(" or "))
            }
            Stage::Json => f.write_str("| json"),
            Stage::Logfmt => f.write_str("| logfmt"),
            Stage::LineFormat(parts) => {
                let mut template = String::new();
                for part in parts {
                    match part {
                        TemplatePart::Text(text) => template.push_str(text),
                        TemplatePart::Label(name) => template.push_str(&format!("{{{{.{name}}}}}")),
                        TemplatePart::Line => template.push_str("{{__line__}}"),
                    }
                }
                write!(f, "| line_format {}", quote(&template))
            }
            Stage::LabelFilter(predicate) => write!(f, "| {predicate}"),
            Stage::Drop(labels) | Stage::Keep(labels) => {
                let word = if matches!(self, Stage::Drop(_)) {
                    "drop"
                } else {
                    "keep"
                };
                let labels: Vec<String> = labels
                    .iter()
                    .map(|l| match &l.matcher {
                        None => l.name.clone(),
                        Some((op, value)) => format!("{}{op}{}", l.name, quote(value)),
                    })
                    .collect();
                write!(f, "| {word} {}", labels.join(", "))
            }
        }
    }
}

impl fmt::Display for LabelPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelPredicate::And(a, b) => write!(f, "({a} and {b})"),
            LabelPredicate::Or(a, b) => write!(f, "({a} or {b})"),
            LabelPredicate::Text { name, op, value } => write!(f, "{name}{op}{}", quote(value)),
            LabelPredicate::Number { name, cmp, value } => {
                write!(f, "{name}{}{}", cmp.symbol(), number(*value))
            }
            LabelPredicate::Duration { name, cmp, nanos } => {
                write!(f, "{name}{}{nanos}ns", cmp.symbol())
            }
            LabelPredicate::Bytes { name, cmp, bytes } => {
                write!(f, "{name}{}{bytes}B", cmp.symbol())
            }
        }
    }
}

/// A number as LogQL reads it back exactly.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "Inf" } else { "-Inf" }.into()
    } else {
        format!("{value:?}")
    }
}

impl fmt::Display for MetricExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricExpr::Literal(value) => f.write_str(&number(*value)),
            MetricExpr::Vector(value) => write!(f, "vector({})", number(*value)),
            MetricExpr::Range(range) => {
                write!(
                    f,
                    "{}({} [{}ns]",
                    range.function.name(),
                    range.query,
                    range.range
                )?;
                if range.offset != 0 {
                    write!(f, " offset {}ns", range.offset)?;
                }
                f.write_str(")")
            }
            MetricExpr::Aggregate(agg) => {
                f.write_str(agg.op.name())?;
                if let Some(grouping) = &agg.grouping {
                    let word = if grouping.without { "without" } else { "by" };
                    write!(f, " {word} ({})", grouping.labels.join(", "))?;
                }
                f.write_str("(")?;
                if let Some(param) = agg.param {
                    write!(f, "{}, ", number(param))?;
                }
                write!(f, "{})", agg.inner)
            }
            MetricExpr::Binary(binary) => {
                let modifier = if binary.return_bool { " bool" } else { "" };
                write!(
                    f,
                    "({} {}{modifier} {})",
                    binary.left,
                    binary.op.symbol(),
                    binary.right
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
