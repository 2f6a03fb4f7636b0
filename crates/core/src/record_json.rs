//! Reading a record of the native JSON form straight from its text, without making
//! a `serde_json::Value` of the whole object first (the top level's map, its keys
//! and its strings were most of the allocations of an NDJSON import).
//!
//! Only the well-formed case is handled here: [`parse_record`] answers `None` for
//! anything [`NewRecord::from_json`] would refuse (or that it cannot tell apart
//! quickly), and the caller then goes the `Value` way, which names the error. So
//! the errors are, by construction, the ones `from_json` gives; and for every text
//! `from_json` accepts, the record is the same (the tests below compare them).
//!
//! [`NdjsonReader`] reads an NDJSON body as it arrives, chunk by chunk, so a large
//! batch is never held as its text and its records at once (issue 20).

use crate::error::FieldError;
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

/// The records of an NDJSON body (one record a line; blank lines skipped; a line
/// may end in `\r\n`), fed in chunks cut anywhere. The first bad line is named
/// `[i]` (`i` counting the non-blank lines) as `NewRecord::from_json` words it;
/// after it nothing more is parsed or kept, but the rest may still be fed, so a
/// server can read a body to its end before it answers. The records read so far
/// may be taken as they come ([`NdjsonReader::take`]), so a server can hand a large
/// batch on in chunks instead of holding all its records.
#[derive(Debug, Default)]
pub struct NdjsonReader {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// Read and not yet taken.
    records: Vec<NewRecord>,
    /// Records read in all, taken or not (the next line's index).
    read: usize,
    error: Option<FieldError>,
}

impl NdjsonReader {
    /// Reads a whole body at once.
    pub fn read_all(body: &[u8]) -> Result<Vec<NewRecord>, FieldError> {
        let mut reader = NdjsonReader::default();
        reader.push(body);
        reader.finish()
    }

    /// Reads the next chunk of the body.
    pub fn push(&mut self, mut chunk: &[u8]) {
        while self.error.is_none() {
            let Some(end) = memchr::memchr(b'\n', chunk) else {
                self.partial.extend_from_slice(chunk);
                return;
            };
            let (line, rest) = (&chunk[..end], &chunk[end + 1..]);
            chunk = rest;
            if self.partial.is_empty() {
                self.line(strip_cr(line));
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.line(strip_cr(&whole));
                // Keep the allocation for the next long line.
                whole.clear();
                self.partial = whole;
            }
        }
    }

    /// The records read since the last take, in order. A bad line later still
    /// refuses the whole batch ([`NdjsonReader::finish`]): what was taken must not
    /// be written before then.
    pub fn take(&mut self) -> Vec<NewRecord> {
        std::mem::take(&mut self.records)
    }

    /// The records not taken, or the first bad line (`body` when the body had
    /// no records at all).
    pub fn finish(mut self) -> Result<Vec<NewRecord>, FieldError> {
        if self.error.is_none() && !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last);
        }
        match self.error {
            Some(e) => Err(e),
            None if self.read == 0 => Err(FieldError::new("body", "contains no records")),
            None => Ok(self.records),
        }
    }

    /// Records read and not yet taken.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn line(&mut self, line: &[u8]) {
        let index = self.read;
        let Ok(text) = std::str::from_utf8(line) else {
            return self.fail(FieldError::new(format!("[{index}]"), "is not UTF-8"));
        };
        if text.trim().is_empty() {
            return;
        }
        if let Some(record) = parse_record(text) {
            return self.keep(record);
        }
        // Declined by the direct reader: the `Value` way says why, or takes it.
        match serde_json::from_str::<Value>(text) {
            Err(e) => self.fail(FieldError::new(
                format!("[{index}]"),
                format!("is not valid JSON: {e}"),
            )),
            Ok(value) => match NewRecord::from_json(value) {
                Ok(record) => self.keep(record),
                Err(e) => self.fail(e.at_index(index)),
            },
        }
    }

    fn keep(&mut self, record: NewRecord) {
        self.records.push(record);
        self.read += 1;
    }

    fn fail(&mut self, error: FieldError) {
        self.error = Some(error);
        // Nothing of a refused batch is written: give its memory back now.
        self.records = Vec::new();
        self.partial = Vec::new();
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
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

    #[test]
    fn ndjson_read_in_chunks_cut_anywhere_is_the_whole_body_read_at_once() {
        let body = "{\"kind\":\"log\",\"message\":\"caf\u{e9} \\u00e9\"}\r\n\n  \n\
                    {\"kind\":\"log\",\"message\":5,\"message\":\"ok\"}\n{\"ts\":1}";
        let whole = NdjsonReader::read_all(body.as_bytes()).expect("valid");
        assert_eq!(whole.len(), 3);
        assert_eq!(
            whole[1].message.as_deref(),
            Some("ok"),
            "the `Value` way's record"
        );
        let bytes = body.as_bytes();
        for cut in 0..=bytes.len() {
            for second in cut..=bytes.len() {
                let mut reader = NdjsonReader::default();
                reader.push(&bytes[..cut]);
                reader.push(&bytes[cut..second]);
                reader.push(&bytes[second..]);
                assert_eq!(
                    reader.finish().as_ref(),
                    Ok(&whole),
                    "cut at {cut}, {second}"
                );
            }
        }
    }

    #[test]
    fn ndjson_names_its_first_bad_line_and_keeps_nothing_after_it() {
        let named = |body: &[u8]| {
            NdjsonReader::read_all(body)
                .map(|_| ())
                .map_err(|e| e.field)
        };
        assert_eq!(
            named(b"{}\n\n{\"level\":\"LOUD\"}\n{"),
            Err("[1].level".into())
        );
        assert_eq!(named(b"{}\n{\"kind\":\"log\"\n{}"), Err("[1]".into()));
        assert_eq!(named(b"{}\n\xff\n"), Err("[1]".into()));
        assert_eq!(named(b"[{}]"), Err("[0].record".into()));
        assert_eq!(named(b"\n \r\n"), Err("body".into()));
        assert_eq!(named(b""), Err("body".into()));

        let mut reader = NdjsonReader::default();
        reader.push(b"{}\n{\"kind\":\"fish\"}\n");
        assert!(
            reader.is_empty(),
            "a refused batch's records are let go at once"
        );
        reader.push(&b"{}\n".repeat(1000));
        assert_eq!(reader.len(), 0, "nothing is read after the bad line");
        let error = reader.finish().expect_err("refused");
        assert_eq!(error.field, "[1].kind");
    }

    #[test]
    fn ndjson_taken_as_it_is_read_counts_its_lines_across_takes() {
        let mut reader = NdjsonReader::default();
        reader.push(b"{}\n{\"message\":\"a\"}\n{");
        let taken = reader.take();
        assert_eq!(taken.len(), 2);
        assert!(reader.is_empty());
        reader.push(b"}\n{\"level\":\"LOUD\"}\n");
        let error = reader.finish().expect_err("refused");
        assert_eq!(error.field, "[3].level", "lines taken still count");

        let mut reader = NdjsonReader::default();
        reader.push(b"{}\n");
        assert_eq!(reader.take().len(), 1);
        assert_eq!(
            reader.finish().map(|rest| rest.len()),
            Ok(0),
            "a body whose records were all taken had records"
        );
    }
}
