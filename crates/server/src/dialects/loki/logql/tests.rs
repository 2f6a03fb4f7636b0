//! The grammar, its errors and its properties: any input gives a tree or a clean
//! positioned error, and every tree prints as LogQL that parses back to itself.

use super::*;
use proptest::prelude::*;

fn log(input: &str) -> LogQuery {
    match parse(input) {
        Ok(Expr::Log(query)) => query,
        other => panic!("{input}: {other:?}"),
    }
}

fn metric(input: &str) -> MetricExpr {
    match parse(input) {
        Ok(Expr::Metric(metric)) => metric,
        other => panic!("{input}: {other:?}"),
    }
}

fn error(input: &str) -> ParseError {
    parse(input).expect_err(input)
}

fn matcher(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher {
        name: name.into(),
        op,
        value: value.into(),
    }
}

#[test]
fn grafana_explore_queries_parse() {
    assert_eq!(
        log(r#"{source="api", level=~"error|warn"} |= "timeout" != `healthcheck` |~ "(?i)disk""#),
        LogQuery {
            matchers: vec![
                matcher("source", MatchOp::Equal, "api"),
                matcher("level", MatchOp::Regex, "error|warn"),
            ],
            stages: vec![
                Stage::LineFilter {
                    op: LineOp::Contains,
                    patterns: vec!["timeout".into()]
                },
                Stage::LineFilter {
                    op: LineOp::NotContains,
                    patterns: vec!["healthcheck".into()]
                },
                Stage::LineFilter {
                    op: LineOp::Matches,
                    patterns: vec!["(?i)disk".into()]
                },
            ],
        }
    );
    // The logs volume Grafana asks for beside every log query.
    let volume = metric(
        r#"sum by (level, detected_level) (count_over_time({source="api"} |= "x" | drop __error__[1m]))"#,
    );
    let MetricExpr::Aggregate(sum) = volume else {
        panic!("an aggregation");
    };
    assert_eq!(sum.op, AggregationOp::Sum);
    assert_eq!(
        sum.grouping,
        Some(Grouping {
            without: false,
            labels: vec!["level".into(), "detected_level".into()]
        })
    );
    let MetricExpr::Range(range) = *sum.inner else {
        panic!("a range aggregation");
    };
    assert_eq!(range.function, RangeFunction::CountOverTime);
    assert_eq!(range.range, 60_000_000_000);
    assert_eq!(range.query.stages.len(), 2);
    // The health check of "Save & test".
    assert_eq!(
        metric("vector(1)+vector(1)"),
        MetricExpr::Binary(Box::new(BinaryExpr {
            op: BinaryOp::Add,
            return_bool: false,
            left: MetricExpr::Vector(1.0),
            right: MetricExpr::Vector(1.0),
        }))
    );
}

#[test]
fn pipelines_with_parsers_formatters_and_label_filters() {
    let query = log(
        r#"{kind="log"} | json | status >= 500 and method="GET", (size > 20MB or took > 1.5s) | line_format "{{.method}} {{ .path }}: {{__line__}}" | drop trace_id, span=~"a.*" | keep method | logfmt"#,
    );
    assert_eq!(query.stages[0], Stage::Json);
    let Stage::LabelFilter(LabelPredicate::And(left, right)) = &query.stages[1] else {
        panic!("{:?}", query.stages[1]);
    };
    assert!(matches!(**right, LabelPredicate::Or(_, _)));
    assert!(matches!(**left, LabelPredicate::And(_, _)));
    assert_eq!(
        query.stages[2],
        Stage::LineFormat(vec![
            TemplatePart::Label("method".into()),
            TemplatePart::Text(" ".into()),
            TemplatePart::Label("path".into()),
            TemplatePart::Text(": ".into()),
            TemplatePart::Line,
        ])
    );
    assert_eq!(
        query.stages[3],
        Stage::Drop(vec![
            LabelSelection {
                name: "trace_id".into(),
                matcher: None
            },
            LabelSelection {
                name: "span".into(),
                matcher: Some((MatchOp::Regex, "a.*".into()))
            },
        ])
    );
    assert_eq!(query.stages[5], Stage::Logfmt);
    // `or` chains line filters; the range may follow the selector or the pipeline.
    let MetricExpr::Range(range) = metric(r#"rate({a="b"}[5m] |= "x" or "y" offset 1h)"#) else {
        panic!("range");
    };
    assert_eq!(
        range.query.stages,
        [Stage::LineFilter {
            op: LineOp::Contains,
            patterns: vec!["x".into(), "y".into()]
        }]
    );
    assert_eq!(range.offset, 3_600_000_000_000);
    assert!(matches!(
        metric(r#"count_over_time(({a="b"})[1m])"#),
        MetricExpr::Range(_)
    ));
}

#[test]
fn operators_bind_like_promql() {
    // 1 + 2 * 3 ^ 2 ^ 1 > bool 4 == (1 + (2 * (3 ^ (2 ^ 1)))) > bool 4
    let MetricExpr::Binary(top) = metric("1 + 2 * 3 ^ 2 ^ 1 > bool 4") else {
        panic!("binary");
    };
    assert_eq!(top.op, BinaryOp::Compare(Comparison::Greater));
    assert!(top.return_bool);
    assert_eq!(top.left.to_string(), "(1.0 + (2.0 * (3.0 ^ (2.0 ^ 1.0))))");
    assert_eq!(metric("-2"), MetricExpr::Literal(-2.0));
    assert_eq!(metric("10 - 2 - 3").to_string(), "((10.0 - 2.0) - 3.0)");
    let topk = metric(r#"topk(3, sum without (instance) (bytes_rate({a="b"}[1m])))"#);
    let MetricExpr::Aggregate(agg) = topk else {
        panic!("topk");
    };
    assert_eq!((agg.op, agg.param), (AggregationOp::Topk, Some(3.0)));
    // Grouping may also follow the parentheses.
    let after = metric(r#"sum(count_over_time({a="b"}[1m])) by (source)"#);
    let MetricExpr::Aggregate(agg) = after else {
        panic!("sum");
    };
    assert_eq!(agg.grouping.map(|g| g.labels), Some(vec!["source".into()]));
}

#[test]
fn errors_name_the_position_in_lokis_words() {
    let e = error(r#"{source="api" |= "x""#);
    assert_eq!(
        e.to_string(),
        "parse error at line 1, col 15: syntax error: unexpected |=, expecting , or }"
    );
    let e = error("{source=\"api\"}\n| json\n| status >=");
    assert_eq!((e.line, e.column), (3, 12));
    let e = error(r#"{a=~"(unclosed"}"#);
    assert_eq!(e.column, 5);
    assert!(e.message.starts_with("error parsing regexp"), "{e}");
    assert_eq!(error("{}").column, 2);
    assert_eq!(error(r#"{a="b"}[5m]"#).column, 8);
    assert!(error(r#"count_over_time({a="b"})"#)
        .message
        .contains("expecting [ and a range"));
    assert_eq!(error(r#"{a="b"} > 1"#).column, 9);
    assert_eq!(error("sum(1").column, 6);
    assert_eq!(error(r#"topk(0, vector(1))"#).column, 6);
}

#[test]
fn what_logbook_does_not_answer_is_refused_by_name() {
    for (query, what, column) in [
        (
            r#"quantile_over_time(0.99, {a="b"} | unwrap x [1m])"#,
            "quantile_over_time",
            1,
        ),
        (
            r#"sum_over_time({a="b"} | unwrap x [1m])"#,
            "sum_over_time",
            1,
        ),
        (r#"{a="b"} | pattern "<ip> <_>""#, "the pattern stage", 11),
        (r#"{a="b"} | regexp "(?P<x>.)""#, "the regexp stage", 11),
        (
            r#"{a="b"} | label_format x=y"#,
            "the label_format stage",
            11,
        ),
        (r#"{a="b"} |> "<_> error""#, "a pattern line filter", 9),
        (r#"{a="b"} | json first="a.b""#, "json with parameters", 16),
        (r#"{a="b"} | logfmt --strict"#, "logfmt with parameters", 18),
        (
            r#"{a="b"} | line_format "{{ToUpper .x}}""#,
            "the template action",
            23,
        ),
        (r#"vector(1) and vector(1)"#, "the set operator and", 11),
        (
            r#"vector(1) + on(a) vector(1)"#,
            "vector matching with on",
            13,
        ),
        (r#"count_over_time({a="b"}[5m:1m])"#, "a subquery", 27),
        (r#"stddev(vector(1))"#, "stddev", 1),
        (r#"{a="b"} |= ip("10.0.0.0/8")"#, "the ip() line filter", 12),
    ] {
        let e = error(query);
        assert!(
            e.message.contains(what) && e.message.contains("not supported"),
            "{query}: {e}"
        );
        assert_eq!((e.line, e.column), (1, column), "{query}: {e}");
    }
}

#[test]
fn nesting_is_bounded_instead_of_exhausting_the_stack() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(error(&deep).message.contains("nests deeper"));
    let signs = format!("{}1", "-".repeat(10_000));
    assert!(error(&signs).message.contains("nests deeper"));
    let filters = format!(
        "{{a=\"b\"}} | {}x=\"1\"{}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(error(&filters).message.contains("nests deeper"));
    assert!(parse(&format!("{}1{}", "(".repeat(30), ")".repeat(30))).is_ok());
}

// Properties.

/// Fragments that make near-valid queries far more often than random text does.
const FRAGMENTS: [&str; 40] = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "|",
    "|=",
    "|~",
    "!=",
    "!~",
    "=",
    "=~",
    "==",
    ">",
    ">=",
    "<",
    "+",
    "-",
    "*",
    "/",
    "^",
    "\"x\"",
    "`y`",
    "5m",
    "1.5",
    "20MB",
    "level",
    "source",
    "json",
    "logfmt",
    "line_format",
    "drop",
    "keep",
    "sum",
    "by",
    "count_over_time",
    "vector",
    "bool",
];

fn check_no_panic(input: &str) {
    match parse(input) {
        Ok(expr) => {
            // Whatever parses prints as LogQL that parses back to the same tree.
            let printed = expr.to_string();
            let again = parse(&printed).unwrap_or_else(|e| panic!("{input} -> {printed}: {e}"));
            assert!(same(&again, &expr), "{input} -> {printed}");
        }
        Err(e) => {
            let lines = input.split('\n').count();
            assert!(e.line >= 1 && e.line <= lines, "{input:?}: {e}");
            assert!(e.column >= 1, "{input:?}: {e}");
            assert!(e.to_string().starts_with("parse error at line "));
        }
    }
}

/// Trees compare equal, with NaN literals equal to each other.
fn same(a: &Expr, b: &Expr) -> bool {
    a == b || a.to_string() == b.to_string()
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("level".to_string()),
        Just("source".to_string()),
        Just("__error__".to_string()),
        "[a-z_][a-z0-9_]{0,6}".prop_filter("not a keyword", |s| !matches!(
            s.as_str(),
            "and"
                | "or"
                | "by"
                | "bool"
                | "without"
                | "offset"
                | "unless"
                | "ip"
                | "json"
                | "logfmt"
                | "line_format"
                | "drop"
                | "keep"
                | "regexp"
                | "pattern"
                | "unpack"
                | "decolorize"
                | "unwrap"
                | "distinct"
        )),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[ -~]{0,8}", "\\PC{0,4}"]
}

fn regex_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(".*".to_string()),
        Just("a|b".to_string()),
        Just("(?i)err".to_string())
    ]
}

fn match_op() -> impl Strategy<Value = MatchOp> {
    prop_oneof![
        Just(MatchOp::Equal),
        Just(MatchOp::NotEqual),
        Just(MatchOp::Regex),
        Just(MatchOp::NotRegex)
    ]
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    (label_name(), match_op(), text(), regex_text()).prop_map(|(name, op, value, re)| {
        let value = match op {
            MatchOp::Regex | MatchOp::NotRegex => re,
            _ => value,
        };
        Matcher { name, op, value }
    })
}

fn comparison() -> impl Strategy<Value = Comparison> {
    prop_oneof![
        Just(Comparison::Equal),
        Just(Comparison::NotEqual),
        Just(Comparison::Greater),
        Just(Comparison::GreaterEqual),
        Just(Comparison::Less),
        Just(Comparison::LessEqual)
    ]
}

fn predicate() -> impl Strategy<Value = LabelPredicate> {
    let leaf = prop_oneof![
        matcher_strategy().prop_map(|m| LabelPredicate::Text {
            name: m.name,
            op: m.op,
            value: m.value
        }),
        (label_name(), comparison(), 0u32..100_000).prop_map(|(name, cmp, v)| {
            LabelPredicate::Number {
                name,
                cmp,
                value: f64::from(v) / 4.0,
            }
        }),
        (label_name(), comparison(), 1i64..1_000_000_000_000)
            .prop_map(|(name, cmp, nanos)| { LabelPredicate::Duration { name, cmp, nanos } }),
        (label_name(), comparison(), 0u64..1_000_000_000)
            .prop_map(|(name, cmp, bytes)| { LabelPredicate::Bytes { name, cmp, bytes } }),
    ];
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| LabelPredicate::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| LabelPredicate::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn stage() -> impl Strategy<Value = Stage> {
    let line_op = prop_oneof![
        Just(LineOp::Contains),
        Just(LineOp::NotContains),
        Just(LineOp::Matches),
        Just(LineOp::NotMatches)
    ];
    let template = proptest::collection::vec(
        prop_oneof![
            "[a-z :]{1,5}".prop_map(TemplatePart::Text),
            label_name().prop_map(TemplatePart::Label),
            Just(TemplatePart::Line)
        ],
        1..4,
    )
    .prop_map(|parts| {
        // Adjacent text parts print as one; keep the tree in its parsed form.
        let mut merged: Vec<TemplatePart> = Vec::new();
        for part in parts {
            match (merged.last_mut(), part) {
                (Some(TemplatePart::Text(last)), TemplatePart::Text(more)) => last.push_str(&more),
                (_, part) => merged.push(part),
            }
        }
        merged
    });
    let selection = || {
        (
            label_name(),
            proptest::option::of((Just(MatchOp::Equal), text())),
        )
            .prop_map(|(name, matcher)| LabelSelection { name, matcher })
    };
    prop_oneof![
        (line_op, proptest::collection::vec(regex_text(), 1..3))
            .prop_map(|(op, patterns)| Stage::LineFilter { op, patterns }),
        Just(Stage::Json),
        Just(Stage::Logfmt),
        template.prop_map(Stage::LineFormat),
        predicate().prop_map(Stage::LabelFilter),
        proptest::collection::vec(selection(), 1..3).prop_map(Stage::Drop),
        proptest::collection::vec(selection(), 1..3).prop_map(Stage::Keep),
    ]
}

fn log_query() -> impl Strategy<Value = LogQuery> {
    (
        proptest::collection::vec(matcher_strategy(), 1..4),
        proptest::collection::vec(stage(), 0..4),
    )
        .prop_map(|(matchers, stages)| LogQuery { matchers, stages })
        // `| drop a != "x"` reads as a matcher in the list, as in Loki's grammar: a
        // tree with a negative line filter right after drop/keep has no text form.
        .prop_filter("drop/keep then a negative line filter", |q| {
            q.stages.windows(2).all(|w| {
                !matches!(
                    (&w[0], &w[1]),
                    (
                        Stage::Drop(_) | Stage::Keep(_),
                        Stage::LineFilter {
                            op: LineOp::NotContains | LineOp::NotMatches,
                            ..
                        }
                    )
                )
            })
        })
}

fn metric_expr() -> impl Strategy<Value = MetricExpr> {
    let function = prop_oneof![
        Just(RangeFunction::CountOverTime),
        Just(RangeFunction::Rate),
        Just(RangeFunction::BytesOverTime),
        Just(RangeFunction::BytesRate)
    ];
    let leaf = prop_oneof![
        (0u32..1000).prop_map(|v| MetricExpr::Literal(f64::from(v))),
        (0u32..10).prop_map(|v| MetricExpr::Vector(f64::from(v))),
        (function, log_query(), 1i64..10_000_000_000_000, 0i64..3).prop_map(
            |(function, query, range, offset)| MetricExpr::Range(RangeAggregation {
                function,
                query,
                range,
                offset: offset * 60_000_000_000,
            })
        ),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        let op = prop_oneof![
            Just(AggregationOp::Sum),
            Just(AggregationOp::Count),
            Just(AggregationOp::Min),
            Just(AggregationOp::Max),
            Just(AggregationOp::Avg),
            Just(AggregationOp::Topk),
            Just(AggregationOp::Bottomk)
        ];
        let grouping = proptest::option::of(
            (any::<bool>(), proptest::collection::vec(label_name(), 0..3))
                .prop_map(|(without, labels)| Grouping { without, labels }),
        );
        let binary = prop_oneof![
            Just(BinaryOp::Add),
            Just(BinaryOp::Sub),
            Just(BinaryOp::Mul),
            Just(BinaryOp::Div),
            Just(BinaryOp::Mod),
            Just(BinaryOp::Pow),
            comparison().prop_map(BinaryOp::Compare)
        ];
        prop_oneof![
            (op, grouping, 1u32..5, inner.clone()).prop_map(|(op, grouping, k, inner)| {
                let param = matches!(op, AggregationOp::Topk | AggregationOp::Bottomk)
                    .then_some(f64::from(k));
                MetricExpr::Aggregate(VectorAggregation {
                    op,
                    grouping,
                    param,
                    inner: Box::new(inner),
                })
            }),
            (binary, any::<bool>(), inner.clone(), inner).prop_map(|(op, b, left, right)| {
                MetricExpr::Binary(Box::new(BinaryExpr {
                    op,
                    return_bool: b && matches!(op, BinaryOp::Compare(_)),
                    left,
                    right,
                }))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_parses_or_fails_cleanly(input in "\\PC{0,60}") {
        check_no_panic(&input);
    }

    #[test]
    fn any_fragment_sequence_parses_or_fails_cleanly(
        fragments in proptest::collection::vec(proptest::sample::select(FRAGMENTS.to_vec()), 0..24),
        newlines in any::<bool>(),
    ) {
        let separator = if newlines { "\n" } else { " " };
        check_no_panic(&fragments.join(separator));
    }

    #[test]
    fn log_queries_print_and_parse_back(query in log_query()) {
        let expr = Expr::Log(query);
        let printed = expr.to_string();
        let parsed = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        prop_assert_eq!(parsed, expr);
    }

    #[test]
    fn metric_queries_print_and_parse_back(metric in metric_expr()) {
        let expr = Expr::Metric(metric);
        let printed = expr.to_string();
        let parsed = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        prop_assert_eq!(parsed, expr);
    }
}
