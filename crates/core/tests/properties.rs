//! Parsers see whatever clients send: any input gives a value or a clean error, never a
//! panic, and what the core renders it parses back unchanged.

use logbook_core::time::parse_duration;
use logbook_core::{Cursor, Level, NewRecord, Timestamp};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("log"),
            Just("event"),
            Just("journal"),
            Just("INFO"),
            Just("warning"),
            Just("2024-02-30T00:00:00Z"),
            Just("1700000000.5")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("kind".to_string()),
                        Just("ts".to_string()),
                        Just("level".to_string()),
                        Just("data".to_string()),
                        Just("message".to_string()),
                        Just("response_code".to_string()),
                        "[a-z_]{1,8}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #[test]
    fn records_from_any_json_are_built_or_refused_with_a_field(value in json_value()) {
        match NewRecord::from_json(value) {
            Ok(record) => prop_assert!(record.kind.is_some()),
            Err(e) => prop_assert!(!e.field.is_empty()),
        }
    }

    #[test]
    fn text_parsers_never_panic(text in "\\PC{0,40}") {
        let _ = Timestamp::parse(&text);
        let _ = Level::parse(&text);
        let _ = Cursor::decode(&text);
        let _ = parse_duration(&text);
    }

    /// Timestamps are kept between the epoch and the year 9999, so every dialect can
    /// render them.
    #[test]
    fn rendered_timestamps_parse_back(micros in 0i64..=253_402_300_799_999_999i64) {
        let ts = Timestamp(micros);
        prop_assert_eq!(Timestamp::parse(&ts.rfc3339()), Some(ts));
    }

    #[test]
    fn cursors_round_trip(id in 0i64..i64::MAX) {
        prop_assert_eq!(Cursor::decode(&Cursor(id).encode()).ok(), Some(Cursor(id)));
    }
}
