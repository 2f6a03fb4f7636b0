//! Reading a record of the native JSON form straight from its text, without making
//! a `serde_json::Value` of the whole object first (the top level's map, its keys
//! and its strings were most of the allocations of an NDJSON import).
//!
//! Only the well-formed case is handled here: [`parse_record`] answers `None` for
//! anything [`NewRecord::from_json`] would refuse (or that it cannot tell apart
//! quickly), and the caller then goes the `Value` way, which names the error. So
//! the errors are, by construction, the ones `from_json` gives; and for every text
//! `from_json` accepts, the record is the same (the tests below compare them).

use crate::record::{checked_text, parse_level_value, parse_ts_value, Kind, NewRecord};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;

/// The record in `line` (one JSON object), or `None` if it is not a valid record
/// or not valid JSON (ask `NewRecord::from_json` why).
pub fn parse_record(line: &str) -> Option<NewRecord> {
    let mut deserializer = serde_json::Deserializer::from_str(line);
    let record = deserializer.deserialize_map(RecordVisitor).ok()?;
    deserializer.end().ok()?;
    Some(record)
}

struct RecordVisitor;

/// Any failure: the caller falls back to the `Value` path for the real message.
fn refuse<E: de::Error>() -> E {
    E::custom("not a plain record")
}

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = NewRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NewRecord, A::Error> {
        let mut record = NewRecord::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match &*key {
                "kind" => {
                    let Text::Str(text) = map.next_value::<Text<'de>>()? else {
                        return Err(refuse());
                    };
                    record.kind = Some(Kind::parse(&text).ok_or_else(refuse)?);
                }
                "ts" => {
                    let value: Value = map.next_value()?;
                    record.ts = parse_ts_value("ts", &value).map_err(|_| refuse())?;
                }
                "level" => {
                    let value: Value = map.next_value()?;
                    record.level = parse_level_value("level", &value).map_err(|_| refuse())?;
                }
                "data" => match map.next_value::<Value>()? {
                    Value::Null => record.data = None,
                    Value::Object(data) => record.data = Some(data),
                    _ => return Err(refuse()),
                },
                "id" => {
                    map.next_value::<IgnoredAny>()?;
                }
                other => {
                    let is_code = other == "response_code";
                    let slot = record.text_field_mut(other).ok_or_else(refuse)?;
                    *slot = match map.next_value::<Text<'de>>()? {
                        Text::Null => None,
                        Text::Str(s) => {
                            Some(checked_text(&key, s.into_owned()).map_err(|_| refuse())?)
                        }
                        Text::Number(n) if is_code => Some(n.to_string()),
                        _ => return Err(refuse()),
                    };
                }
            }
        }
        // As `from_json`: a record without `kind` is a log.
        record.kind.get_or_insert(Kind::Log);
        Ok(record)
    }
}

/// A key, borrowed from the text unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_str(TextVisitor)? {
            Text::Str(s) => Ok(Key(s)),
            _ => Err(refuse()),
        }
    }
}

/// A text field's value: null, a string (borrowed when it can be), a number, or
/// anything else (refused by the caller).
enum Text<'de> {
    Null,
    Str(Cow<'de, str>),
    Number(Number),
    Other,
}

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number or null")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Text<'de>, E> {
        Ok(Text::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Text<'de>, E> {
        Ok(Text::Null)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text<'de>, E> {
        Ok(Text::Number(Number::from(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text<'de>, E> {
        Ok(Text::Number(Number::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text<'de>, E> {
        Ok(Number::from_f64(v).map_or(Text::Other, Text::Number))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'de>, E> {
        Ok(Text::Other)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever `parse_record` makes of a text, `from_json` makes the same (it may
    /// decline what `from_json` accepts); answers both.
    fn agree(line: &str) -> (Option<NewRecord>, Option<NewRecord>) {
        let slow = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| NewRecord::from_json(v).ok());
        let fast = parse_record(line);
        assert!(
            fast.is_none() || fast == slow,
            "{line}: {fast:?} vs {slow:?}"
        );
        (fast, slow)
    }

    #[test]
    fn it_reads_what_from_json_reads_and_declines_the_rest() {
        let accepted = [
            r#"{"kind":"log","ts":1760000000.01,"level":"INFO","category":"image","message":"pulled \"x\" \u00e9","data":{"b":1,"a":[2,null]}}"#,
            r#"{"kind":"event","ts":"2026-01-02T03:04:05.123456Z","level":30,"response_code":404,"id":7,"user":null,"data":null}"#,
            r#"{"level":"warning","kind":"journal","ts":null,"id":{"x":[1]},"response_code":"500"}"#,
            r#" {"kind":"log","kind":"event"} "#,
            r#"{"kind":"log","message":"a","message":"b"}"#,
            r#"{"k\u0069nd":"log","ts":1e9}"#,
            r#"{"ts":1}"#,
        ];
        for line in accepted {
            assert!(agree(line).0.is_some(), "{line}");
        }
        // Valid, but left to `from_json` (a bad value overwritten by a good one).
        let (fast, slow) = agree(r#"{"kind":"log","message":5,"message":"ok"}"#);
        assert!(fast.is_none() && slow.is_some());
        let refused = [
            r#"{"kind":"log","nope":1}"#,
            r#"{"kind":"fish"}"#,
            r#"{"kind":"log","message":5}"#,
            r#"{"kind":"log","message":"a\u0000b"}"#,
            r#"{"kind":"log","level":"LOUD"}"#,
            r#"{"kind":"log","ts":"soon"}"#,
            r#"{"kind":"log","data":[1]}"#,
            r#"{"kind":"log","category":true}"#,
            r#"{"kind":"log"} x"#,
            r#"{"kind":"log""#,
            r#"[{"kind":"log"}]"#,
            r#""log""#,
            "",
        ];
        for line in refused {
            assert_eq!(agree(line), (None, None), "{line}");
        }
    }
}
