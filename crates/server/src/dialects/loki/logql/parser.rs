//! Recursive descent over the tokens: one function per rule of the grammar below,
//! binary operators by precedence climbing (PromQL's precedences, `^` to the right).
//!
//! ```text
//! expr        = unary { binop ["bool"] unary }
//! unary       = ["-" | "+"] primary
//! primary     = number | "(" expr ")" | "vector" "(" number ")"
//!             | rangefn "(" logrange ")"
//!             | aggop [grouping] "(" [number ","] expr ")" [grouping]
//!             | logquery                        (only as the whole query)
//! logrange    = selector-or-parens ( "[" dur "]" pipeline | pipeline "[" dur "]" ) ["offset" dur]
//! logquery    = "{" matcher { "," matcher } "}" pipeline
//! pipeline    = { linefilter | "|" stage }
//! linefilter  = ("|=" | "!=" | "|~" | "!~") string { "or" string }
//! stage       = "json" | "logfmt" | "line_format" string | ("drop" | "keep") labels
//!             | labelfilter
//! labelfilter = lfand { "or" lfand };  lfand = lfatom { ("and" | ",") lfatom }
//! lfatom      = "(" labelfilter ")" | ident op (string | number | duration | bytes)
//! ```

use super::lexer::{tokenize, Spanned, Token};
use super::*;

/// Parses a whole query.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        input,
        tokens,
        next: 0,
        depth: 0,
    };
    let expr = if parser.peek() == &Token::LBrace {
        let query = parser.log_query()?;
        if parser.peek() == &Token::LBracket {
            return Err(parser.error_here(
                "syntax error: a range vector must be inside a range aggregation, e.g. count_over_time({...}[5m])",
            ));
        }
        if let Some(op) = parser.binary_op() {
            return Err(parser.error_here(format!(
                "syntax error: a log query cannot be an operand of {}",
                op.symbol()
            )));
        }
        Expr::Log(query)
    } else {
        Expr::Metric(parser.expr(0)?)
    };
    match parser.peek() {
        Token::End => Ok(expr),
        other => Err(parser.error_here(format!("syntax error: unexpected {}", other.describe()))),
    }
}

/// Loki's names for what Logbook does not answer, so a query using one is refused
/// by name instead of failing as an unknown identifier.
const UNSUPPORTED_RANGE_FUNCTIONS: [&str; 12] = [
    "sum_over_time",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "first_over_time",
    "last_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "quantile_over_time",
    "absent_over_time",
    "rate_counter",
    "approx_topk",
];
const UNSUPPORTED_AGGREGATIONS: [&str; 6] = [
    "stddev",
    "stdvar",
    "sort",
    "sort_desc",
    "label_replace",
    "count_values",
];
const UNSUPPORTED_STAGES: [&str; 9] = [
    "regexp",
    "pattern",
    "unpack",
    "label_format",
    "decolorize",
    "unwrap",
    "distinct",
    "ip",
    "__line__",
];
const UNSUPPORTED_VECTOR_MATCHING: [&str; 4] = ["on", "ignoring", "group_left", "group_right"];

fn not_supported(what: &str) -> String {
    format!("{what} is not supported by Logbook's LogQL (see docs/loki.md)")
}

/// How deeply parentheses, unary signs and aggregations may nest: far beyond any
/// real query, and shallow enough that no input can exhaust the stack.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Spanned>,
    next: usize,
    /// Nesting of the recursive rules entered so far.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        self.tokens
            .get(self.next + ahead)
            .or(self.tokens.last())
            .map(|s| &s.token)
            .unwrap_or(&Token::End)
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.next)
            .or(self.tokens.last())
            .map(|s| s.at)
            .unwrap_or(self.input.len())
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.next < self.tokens.len() {
            self.next += 1;
        }
        token
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.input, at, message)
    }

    fn error_here(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.position(), message)
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        self.error_here(format!(
            "syntax error: unexpected {}, expecting {expected}",
            self.peek().describe()
        ))
    }

    fn expect(&mut self, token: Token, expected: &str) -> Result<(), ParseError> {
        if self.peek() == &token {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn is_ident(&self, name: &str) -> bool {
        matches!(self.peek(), Token::Ident(n) if n == name)
    }

    fn ident(&mut self, expected: &str) -> Result<String, ParseError> {
        match self.peek() {
            Token::Ident(name) => {
                let name = name.clone();
                self.advance();
                Ok(name)
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    fn string(&mut self, expected: &str) -> Result<String, ParseError> {
        match self.peek() {
            Token::Str(text) => {
                let text = text.clone();
                self.advance();
                Ok(text)
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    /// A regular expression operand, checked where it stands so the error points at it.
    fn regex(&mut self, expected: &str) -> Result<String, ParseError> {
        let at = self.position();
        let pattern = self.string(expected)?;
        if let Err(e) = regex::Regex::new(&pattern) {
            let detail = e.to_string();
            let last = detail
                .lines()
                .last()
                .unwrap_or("invalid")
                .trim()
                .to_string();
            return Err(self.error_at(at, format!("error parsing regexp {pattern:?}: {last}")));
        }
        Ok(pattern)
    }

    fn duration(&mut self, expected: &str) -> Result<i64, ParseError> {
        match self.peek() {
            Token::Duration(nanos) if *nanos > 0 => {
                let nanos = *nanos;
                self.advance();
                Ok(nanos)
            }
            Token::Duration(_) => Err(self.error_here("syntax error: a duration must be positive")),
            _ => Err(self.unexpected(expected)),
        }
    }

    // Metric expressions.

    fn binary_op(&self) -> Option<BinaryOp> {
        Some(match self.peek() {
            Token::Plus => BinaryOp::Add,
            Token::Minus => BinaryOp::Sub,
            Token::Star => BinaryOp::Mul,
            Token::Slash => BinaryOp::Div,
            Token::Percent => BinaryOp::Mod,
            Token::Caret => BinaryOp::Pow,
            Token::EqualEqual => BinaryOp::Compare(Comparison::Equal),
            Token::NotEqual => BinaryOp::Compare(Comparison::NotEqual),
            Token::Greater => BinaryOp::Compare(Comparison::Greater),
            Token::GreaterEqual => BinaryOp::Compare(Comparison::GreaterEqual),
            Token::Less => BinaryOp::Compare(Comparison::Less),
            Token::LessEqual => BinaryOp::Compare(Comparison::LessEqual),
            _ => return None,
        })
    }

    fn expr(&mut self, min_precedence: u8) -> Result<MetricExpr, ParseError> {
        let entered = self.depth;
        let expr = self.chain(min_precedence);
        self.depth = entered;
        expr
    }

    /// Operands joined by operators of at least `min_precedence`. Each operator
    /// makes the tree one level deeper, so it counts as a level of nesting: a
    /// chain `0/0/0/...` parsed in a loop would otherwise build a tree as deep as
    /// it is long, which dropping, printing and evaluating recurse over (found by
    /// fuzzing).
    fn chain(&mut self, min_precedence: u8) -> Result<MetricExpr, ParseError> {
        let mut left = self.unary()?;
        loop {
            if let Token::Ident(word) = self.peek() {
                if matches!(word.as_str(), "and" | "or" | "unless") {
                    return Err(self.error_here(not_supported(&format!("the set operator {word}"))));
                }
            }
            let Some(op) = self.binary_op() else {
                return Ok(left);
            };
            let precedence = op.precedence();
            if precedence < min_precedence {
                return Ok(left);
            }
            self.advance();
            let mut return_bool = false;
            if self.is_ident("bool") {
                if !matches!(op, BinaryOp::Compare(_)) {
                    return Err(self.error_here(
                        "syntax error: bool modifier can only be used on comparison operators",
                    ));
                }
                self.advance();
                return_bool = true;
            }
            if let Token::Ident(word) = self.peek() {
                if UNSUPPORTED_VECTOR_MATCHING.contains(&word.as_str()) {
                    return Err(
                        self.error_here(not_supported(&format!("vector matching with {word}")))
                    );
                }
            }
            // `^` is right-associative; every other operator is left-associative.
            let next = if op == BinaryOp::Pow {
                precedence
            } else {
                precedence + 1
            };
            self.enter()?;
            let right = self.expr(next)?;
            left = MetricExpr::Binary(Box::new(BinaryExpr {
                op,
                return_bool,
                left,
                right,
            }));
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(format!(
                "syntax error: the query nests deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<MetricExpr, ParseError> {
        self.enter()?;
        let expr = self.unary_inner();
        self.depth -= 1;
        expr
    }

    fn unary_inner(&mut self) -> Result<MetricExpr, ParseError> {
        match self.peek() {
            Token::Minus => {
                self.advance();
                Ok(match self.unary()? {
                    MetricExpr::Literal(value) => MetricExpr::Literal(-value),
                    other => MetricExpr::Binary(Box::new(BinaryExpr {
                        op: BinaryOp::Mul,
                        return_bool: false,
                        left: MetricExpr::Literal(-1.0),
                        right: other,
                    })),
                })
            }
            Token::Plus => {
                self.advance();
                self.unary()
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<MetricExpr, ParseError> {
        let at = self.position();
        match self.peek().clone() {
            Token::Number(value) => {
                self.advance();
                Ok(MetricExpr::Literal(value))
            }
            Token::LParen => {
                self.advance();
                let inner = self.expr(0)?;
                self.expect(Token::RParen, ")")?;
                Ok(inner)
            }
            Token::LBrace => Err(self.error_here(
                "syntax error: a log query cannot be part of a metric query; wrap it in a range aggregation, e.g. count_over_time({...}[5m])",
            )),
            Token::Ident(name) => match name.as_str() {
                "vector" => {
                    self.advance();
                    self.expect(Token::LParen, "(")?;
                    let value = self.number_literal()?;
                    self.expect(Token::RParen, ")")?;
                    Ok(MetricExpr::Vector(value))
                }
                "NaN" | "nan" => {
                    self.advance();
                    Ok(MetricExpr::Literal(f64::NAN))
                }
                "Inf" | "inf" => {
                    self.advance();
                    Ok(MetricExpr::Literal(f64::INFINITY))
                }
                "count_over_time" => self.range_aggregation(RangeFunction::CountOverTime),
                "rate" => self.range_aggregation(RangeFunction::Rate),
                "bytes_over_time" => self.range_aggregation(RangeFunction::BytesOverTime),
                "bytes_rate" => self.range_aggregation(RangeFunction::BytesRate),
                "sum" => self.vector_aggregation(AggregationOp::Sum),
                "count" => self.vector_aggregation(AggregationOp::Count),
                "min" => self.vector_aggregation(AggregationOp::Min),
                "max" => self.vector_aggregation(AggregationOp::Max),
                "avg" => self.vector_aggregation(AggregationOp::Avg),
                "topk" => self.vector_aggregation(AggregationOp::Topk),
                "bottomk" => self.vector_aggregation(AggregationOp::Bottomk),
                other
                    if UNSUPPORTED_RANGE_FUNCTIONS.contains(&other)
                        || UNSUPPORTED_AGGREGATIONS.contains(&other) =>
                {
                    Err(self.error_at(at, not_supported(other)))
                }
                other => Err(self.error_at(
                    at,
                    format!("syntax error: unexpected identifier {other}"),
                )),
            },
            _ => Err(self.unexpected("a number, a stream selector or a function")),
        }
    }

    fn number_literal(&mut self) -> Result<f64, ParseError> {
        let negative = if self.peek() == &Token::Minus {
            self.advance();
            true
        } else {
            false
        };
        match self.peek() {
            Token::Number(value) => {
                let value = *value;
                self.advance();
                Ok(if negative { -value } else { value })
            }
            _ => Err(self.unexpected("a number")),
        }
    }

    fn range_aggregation(&mut self, function: RangeFunction) -> Result<MetricExpr, ParseError> {
        self.advance();
        self.expect(Token::LParen, "(")?;
        let parenthesised = self.peek() == &Token::LParen;
        if parenthesised {
            self.advance();
        }
        let matchers = self.selector()?;
        if parenthesised {
            self.expect(Token::RParen, ")")?;
        }
        let mut range = None;
        if self.peek() == &Token::LBracket {
            range = Some(self.range()?);
        }
        let stages = self.pipeline()?;
        if range.is_none() {
            if self.peek() != &Token::LBracket {
                return Err(self.unexpected("[ and a range such as [5m]"));
            }
            range = Some(self.range()?);
        } else if !stages.is_empty() && self.peek() == &Token::LBracket {
            return Err(self.error_here("syntax error: the range is given twice"));
        }
        let range = range.unwrap_or(1);
        let mut offset = 0;
        if self.is_ident("offset") {
            self.advance();
            offset = self.duration("a duration after offset")?;
        }
        if self.peek() == &Token::Comma {
            return Err(self.error_here(not_supported(&format!(
                "a parameter to {}",
                function.name()
            ))));
        }
        self.expect(Token::RParen, ")")?;
        if self.is_ident("by") || self.is_ident("without") {
            return Err(self.error_here(not_supported(&format!(
                "grouping {} itself (group the aggregation around it, e.g. sum by (level) ({}(...)))",
                function.name(),
                function.name()
            ))));
        }
        Ok(MetricExpr::Range(RangeAggregation {
            function,
            query: LogQuery { matchers, stages },
            range,
            offset,
        }))
    }

    fn range(&mut self) -> Result<i64, ParseError> {
        self.expect(Token::LBracket, "[")?;
        let nanos = self.duration("a duration such as 5m")?;
        if self.peek() == &Token::Colon {
            return Err(self.error_here(not_supported("a subquery")));
        }
        self.expect(Token::RBracket, "]")?;
        Ok(nanos)
    }

    fn vector_aggregation(&mut self, op: AggregationOp) -> Result<MetricExpr, ParseError> {
        self.advance();
        let mut grouping = self.grouping()?;
        self.expect(Token::LParen, "(")?;
        let param = if matches!(op, AggregationOp::Topk | AggregationOp::Bottomk) {
            let at = self.position();
            let k = self.number_literal()?;
            if !(k >= 1.0 && k.fract() == 0.0 && k <= u32::MAX as f64) {
                return Err(self.error_at(
                    at,
                    format!(
                        "syntax error: {} needs a positive whole number, not {k}",
                        op.name()
                    ),
                ));
            }
            self.expect(Token::Comma, ",")?;
            Some(k)
        } else {
            None
        };
        let inner = self.expr(0)?;
        self.expect(Token::RParen, ")")?;
        if let Some(after) = self.grouping()? {
            if grouping.is_some() {
                return Err(self.error_here("syntax error: grouping given twice"));
            }
            grouping = Some(after);
        }
        Ok(MetricExpr::Aggregate(VectorAggregation {
            op,
            grouping,
            param,
            inner: Box::new(inner),
        }))
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = match self.peek() {
            Token::Ident(word) if word == "by" => false,
            Token::Ident(word) if word == "without" => true,
            _ => return Ok(None),
        };
        self.advance();
        self.expect(Token::LParen, "(")?;
        let mut labels = Vec::new();
        while self.peek() != &Token::RParen {
            labels.push(self.ident("a label name")?);
            if self.peek() == &Token::Comma {
                self.advance();
            } else {
                break;
            }
        }
        self.expect(Token::RParen, ")")?;
        Ok(Some(Grouping { without, labels }))
    }

    // Log queries.

    fn log_query(&mut self) -> Result<LogQuery, ParseError> {
        let matchers = self.selector()?;
        let stages = self.pipeline()?;
        Ok(LogQuery { matchers, stages })
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        self.expect(Token::LBrace, "{")?;
        let mut matchers = Vec::new();
        loop {
            if matchers.is_empty() && self.peek() == &Token::RBrace {
                return Err(self.unexpected("a label matcher such as source=\"api\""));
            }
            let name = self.ident("a label name")?;
            let op = self
                .match_op()?
                .ok_or_else(|| self.unexpected("=, !=, =~ or !~"))?;
            let value = match op {
                MatchOp::Regex | MatchOp::NotRegex => self.regex("a string")?,
                _ => self.string("a string")?,
            };
            matchers.push(Matcher { name, op, value });
            match self.advance() {
                Token::Comma => continue,
                Token::RBrace => return Ok(matchers),
                _ => {
                    self.next -= 1;
                    return Err(self.unexpected(", or }"));
                }
            }
        }
    }

    fn match_op(&mut self) -> Result<Option<MatchOp>, ParseError> {
        let op = match self.peek() {
            Token::Equal => MatchOp::Equal,
            Token::NotEqual => MatchOp::NotEqual,
            Token::Match => MatchOp::Regex,
            Token::NotMatch => MatchOp::NotRegex,
            _ => return Ok(None),
        };
        self.advance();
        Ok(Some(op))
    }

    fn pipeline(&mut self) -> Result<Vec<Stage>, ParseError> {
        let mut stages = Vec::new();
        loop {
            let line_op = match self.peek() {
                Token::PipeExact => Some(LineOp::Contains),
                Token::NotEqual => Some(LineOp::NotContains),
                Token::PipeMatch => Some(LineOp::Matches),
                Token::NotMatch => Some(LineOp::NotMatches),
                Token::PipePattern | Token::NotPattern => {
                    return Err(self.error_here(not_supported("a pattern line filter (|> and !>)")))
                }
                Token::Pipe => None,
                _ => return Ok(stages),
            };
            self.advance();
            match line_op {
                Some(op) => stages.push(self.line_filter(op)?),
                None => stages.push(self.stage()?),
            }
        }
    }

    fn line_filter(&mut self, op: LineOp) -> Result<Stage, ParseError> {
        let regex = matches!(op, LineOp::Matches | LineOp::NotMatches);
        let mut patterns = Vec::new();
        loop {
            if self.is_ident("ip") {
                return Err(self.error_here(not_supported("the ip() line filter")));
            }
            patterns.push(if regex {
                self.regex("a string")?
            } else {
                self.string("a string")?
            });
            if self.is_ident("or") && matches!(self.peek_at(1), Token::Str(_)) {
                self.advance();
            } else {
                return Ok(Stage::LineFilter { op, patterns });
            }
        }
    }

    fn stage(&mut self) -> Result<Stage, ParseError> {
        let at = self.position();
        let Token::Ident(word) = self.peek().clone() else {
            if self.peek() == &Token::LParen {
                return Ok(Stage::LabelFilter(self.label_filter()?));
            }
            return Err(self.unexpected("a parser, a formatter or a label filter"));
        };
        // A word followed by a comparison is a label filter, unless it names a stage
        // (as in Loki, where stage names are keywords): `| json != "x"` is the json
        // parser and a line filter.
        let keyword = matches!(
            word.as_str(),
            "json" | "logfmt" | "line_format" | "drop" | "keep"
        ) || UNSUPPORTED_STAGES.contains(&word.as_str());
        let compares = !keyword
            && matches!(
                self.peek_at(1),
                Token::Equal
                    | Token::NotEqual
                    | Token::Match
                    | Token::NotMatch
                    | Token::EqualEqual
                    | Token::Greater
                    | Token::GreaterEqual
                    | Token::Less
                    | Token::LessEqual
            );
        if compares {
            return Ok(Stage::LabelFilter(self.label_filter()?));
        }
        match word.as_str() {
            "json" | "logfmt" => {
                self.advance();
                let parameters = matches!(self.peek(), Token::Ident(_) | Token::Minus);
                if parameters {
                    return Err(self.error_here(not_supported(&format!(
                        "{word} with parameters or flags"
                    ))));
                }
                Ok(if word == "json" {
                    Stage::Json
                } else {
                    Stage::Logfmt
                })
            }
            "line_format" => {
                self.advance();
                let at = self.position();
                let template = self.string("a template string")?;
                let parts = template_parts(&template)
                    .map_err(|message| self.error_at(at, message))?;
                Ok(Stage::LineFormat(parts))
            }
            "drop" | "keep" => {
                self.advance();
                let labels = self.label_selections()?;
                Ok(if word == "drop" {
                    Stage::Drop(labels)
                } else {
                    Stage::Keep(labels)
                })
            }
            other if UNSUPPORTED_STAGES.contains(&other) => {
                Err(self.error_at(at, not_supported(&format!("the {other} stage"))))
            }
            other => Err(self.error_at(
                at,
                format!("syntax error: unexpected identifier {other}, expecting a parser, a formatter or a label filter"),
            )),
        }
    }

    fn label_selections(&mut self) -> Result<Vec<LabelSelection>, ParseError> {
        let mut labels = Vec::new();
        loop {
            let name = self.ident("a label name")?;
            let matcher = match self.match_op()? {
                None => None,
                Some(op) => {
                    let value = match op {
                        MatchOp::Regex | MatchOp::NotRegex => self.regex("a string")?,
                        _ => self.string("a string")?,
                    };
                    Some((op, value))
                }
            };
            labels.push(LabelSelection { name, matcher });
            if self.peek() == &Token::Comma {
                self.advance();
            } else {
                return Ok(labels);
            }
        }
    }

    fn label_filter(&mut self) -> Result<LabelPredicate, ParseError> {
        let mut left = self.label_filter_and()?;
        while self.is_ident("or") {
            self.advance();
            let right = self.label_filter_and()?;
            left = LabelPredicate::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn label_filter_and(&mut self) -> Result<LabelPredicate, ParseError> {
        let mut left = self.label_filter_atom()?;
        loop {
            let joined = self.is_ident("and")
                || (self.peek() == &Token::Comma
                    && matches!(self.peek_at(1), Token::Ident(_) | Token::LParen));
            if !joined {
                return Ok(left);
            }
            self.advance();
            let right = self.label_filter_atom()?;
            left = LabelPredicate::And(Box::new(left), Box::new(right));
        }
    }

    fn label_filter_atom(&mut self) -> Result<LabelPredicate, ParseError> {
        if self.peek() == &Token::LParen {
            self.advance();
            self.enter()?;
            let inner = self.label_filter()?;
            self.depth -= 1;
            self.expect(Token::RParen, ")")?;
            return Ok(inner);
        }
        let name = self.ident("a label name")?;
        let op_at = self.position();
        let op = self.advance();
        let text_op = match op {
            Token::Equal => Some(MatchOp::Equal),
            Token::NotEqual => Some(MatchOp::NotEqual),
            Token::Match => Some(MatchOp::Regex),
            Token::NotMatch => Some(MatchOp::NotRegex),
            _ => None,
        };
        let cmp = match op {
            Token::Equal | Token::EqualEqual => Some(Comparison::Equal),
            Token::NotEqual => Some(Comparison::NotEqual),
            Token::Greater => Some(Comparison::Greater),
            Token::GreaterEqual => Some(Comparison::GreaterEqual),
            Token::Less => Some(Comparison::Less),
            Token::LessEqual => Some(Comparison::LessEqual),
            _ => None,
        };
        if text_op.is_none() && cmp.is_none() {
            return Err(self.error_at(
                op_at,
                format!(
                    "syntax error: unexpected {}, expecting a comparison",
                    op.describe()
                ),
            ));
        }
        let value_at = self.position();
        match (self.peek().clone(), text_op, cmp) {
            (Token::Str(_), Some(op), _) => {
                let value = match op {
                    MatchOp::Regex | MatchOp::NotRegex => self.regex("a string")?,
                    _ => self.string("a string")?,
                };
                Ok(LabelPredicate::Text { name, op, value })
            }
            (Token::Str(_), None, _) => Err(self.error_at(
                op_at,
                "syntax error: strings compare only with =, !=, =~ and !~",
            )),
            (Token::Number(value), _, Some(cmp)) => {
                self.advance();
                Ok(LabelPredicate::Number { name, cmp, value })
            }
            (Token::Minus, _, Some(cmp)) => {
                let value = self.number_literal()?;
                Ok(LabelPredicate::Number { name, cmp, value })
            }
            (Token::Duration(nanos), _, Some(cmp)) => {
                self.advance();
                Ok(LabelPredicate::Duration { name, cmp, nanos })
            }
            (Token::Bytes(bytes), _, Some(cmp)) => {
                self.advance();
                Ok(LabelPredicate::Bytes { name, cmp, bytes })
            }
            (Token::Ident(word), _, _) if word == "ip" => {
                Err(self.error_at(value_at, not_supported("the ip() label filter")))
            }
            _ => Err(self.unexpected("a string, a number, a duration or a byte size")),
        }
    }
}

/// The parts of a `line_format` template. Only `{{.label}}` and `{{__line__}}` (with
/// optional `-` trim markers) are understood; any other action is refused by name.
fn template_parts(template: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    let mut text = String::new();
    while let Some(open) = rest.find("{{") {
        text.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "syntax error: unclosed {{ in line_format template".to_string())?;
        let mut action = &after[..close];
        rest = &after[close + 2..];
        if let Some(trimmed) = action.strip_prefix('-') {
            action = trimmed;
            text.truncate(text.trim_end().len());
        }
        let trim_after = action.ends_with('-');
        if trim_after {
            action = &action[..action.len() - 1];
            rest = rest.trim_start();
        }
        let action = action.trim();
        let part = if action == "__line__" {
            TemplatePart::Line
        } else if let Some(name) = action.strip_prefix('.') {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(not_supported(&format!(
                    "the template action {{{{{action}}}}}"
                )));
            }
            TemplatePart::Label(name.to_string())
        } else {
            return Err(not_supported(&format!(
                "the template action {{{{{action}}}}} (line_format takes {{{{.label}}}} and {{{{__line__}}}})"
            )));
        };
        if !text.is_empty() {
            parts.push(TemplatePart::Text(std::mem::take(&mut text)));
        }
        parts.push(part);
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(TemplatePart::Text(text));
    }
    Ok(parts)
}
