//! One syslog message onto one record. RFC 5424 (`<PRI>1 ...`) is parsed strictly;
//! anything else with a `<PRI>` is read leniently as RFC 3164, the BSD form. A
//! message that is neither, or a 5424 message that breaks the grammar, is still
//! kept: its raw text becomes the message and `data.parse_error` says what was
//! wrong, so nothing a sender sent disappears silently.
//!
//! Written from the RFCs rather than taken from a crate, after measuring the
//! candidate: `syslog_rfc5424` 0.9 accepts seven fraction digits, an unescaped `]`
//! inside a PARAM-VALUE, a PRI with a leading zero and VERSION 2, keeps the BOM in
//! the message, names no field in its errors, and reads no RFC 3164; lenient parsers
//! such as `syslog_loose` accept anything by design. Neither keeps a malformed line.
//! What is strict here: PRI 0-191 without leading zeros, VERSION 1, an RFC 3339
//! timestamp or `-`, the header fields' lengths and printable US-ASCII, SD-IDs and
//! SD-PARAMs with their escapes, and the BOM.

use logbook_core::record::MAX_TEXT_BYTES;
use logbook_core::{Level, NewRecord, Shipped, Timestamp};
use serde_json::{json, Map, Value};

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Maps one message (a frame or a datagram) onto a record.
pub(crate) fn record(message: &[u8], truncated: bool, now: Timestamp) -> NewRecord {
    let trimmed = trim_trailer(message);
    let mapped = match priority(trimmed) {
        Err(problem) => Err(problem),
        Ok((pri, rest)) if rest.starts_with(b"1 ") => rfc5424(pri, &rest[2..]),
        Ok((pri, rest)) => Ok(rfc3164(pri, rest, now)),
    };
    let result = mapped.and_then(|mut shipped| {
        if truncated {
            shipped.data("truncated", json!(true));
        }
        shipped
            .finish()
            .map_err(|e| format!("{}: {}", e.field, e.problem))
    });
    result.unwrap_or_else(|problem| malformed(trimmed, truncated, &problem))
}

/// Senders such as syslog-ng and rsyslog count a trailing newline inside an
/// octet-counted frame; it is framing, not content.
fn trim_trailer(message: &[u8]) -> &[u8] {
    let mut end = message.len();
    while end > 0 && matches!(message[end - 1], b'\n' | b'\r' | b'\0') {
        end -= 1;
    }
    &message[..end]
}

/// `<PRI>`: 1-3 digits, at most 191, no leading zero but `<0>`.
fn priority(message: &[u8]) -> Result<(u8, &[u8]), String> {
    let rest = message
        .strip_prefix(b"<")
        .ok_or("the message does not start with <PRI>")?;
    let close = rest
        .iter()
        .take(4)
        .position(|b| *b == b'>')
        .ok_or("<PRI> is not closed within three digits")?;
    let digits = &rest[..close];
    let valid = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 1 || digits[0] != b'0');
    let pri: u16 = std::str::from_utf8(digits)
        .ok()
        .filter(|_| valid)
        .and_then(|d| d.parse().ok())
        .filter(|p| *p <= 191)
        .ok_or("PRI must be a number from 0 to 191")?;
    Ok((pri as u8, &rest[close + 1..]))
}

fn with_priority(pri: u8) -> Shipped {
    let mut shipped = Shipped::new();
    shipped.level(Level::from_syslog_severity(pri & 7));
    shipped.data("facility", json!(FACILITIES[usize::from(pri >> 3)]));
    shipped.data("severity", json!(pri & 7));
    shipped
}

/// The rest of an RFC 5424 message after `<PRI>1 `.
fn rfc5424(pri: u8, rest: &[u8]) -> Result<Shipped, String> {
    let mut shipped = with_priority(pri);
    let mut fields = Cursor { rest };
    let timestamp = fields.header_field("TIMESTAMP", 64)?;
    if let Some(text) = timestamp {
        shipped.ts(strict_timestamp(&text)?);
    }
    for (name, max, field) in [
        ("HOSTNAME", 255, Some("instance")),
        ("APP-NAME", 48, Some("source")),
        ("PROCID", 128, None),
        ("MSGID", 32, None),
    ] {
        if let Some(value) = fields.header_field(name, max)? {
            match field {
                Some(field) => {
                    shipped.offer(field, value);
                }
                None => {
                    shipped.data(name.to_ascii_lowercase(), json!(value));
                }
            }
        }
    }
    let (structured, rest) = structured_data(fields.rest)?;
    if !structured.is_empty() {
        shipped.data("structured_data", Value::Object(structured));
    }
    match rest {
        [] => {}
        [b' ', msg @ ..] => {
            let message = match msg.strip_prefix(BOM) {
                Some(utf8) => std::str::from_utf8(utf8)
                    .map_err(|_| "MSG starts with a BOM but is not UTF-8")?
                    .to_string(),
                None => String::from_utf8_lossy(msg).into_owned(),
            };
            shipped.offer("message", message);
        }
        _ => return Err("STRUCTURED-DATA must be followed by a space and MSG".into()),
    }
    Ok(shipped)
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    /// A space-terminated header field: `-` (NILVALUE) is `None`.
    fn header_field(&mut self, name: &str, max: usize) -> Result<Option<String>, String> {
        let end = memchr::memchr(b' ', self.rest)
            .ok_or_else(|| format!("the header ends before {name}"))?;
        let value = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        if value == b"-" {
            return Ok(None);
        }
        if value.is_empty() || value.len() > max {
            return Err(format!("{name} must be 1 to {max} characters or -"));
        }
        if !value.iter().all(|b| (33..=126).contains(b)) {
            return Err(format!("{name} must be printable US-ASCII"));
        }
        Ok(Some(String::from_utf8_lossy(value).into_owned()))
    }
}

/// RFC 5424 6.2.3: RFC 3339 with an upper-case `T` and `Z`, at most six digits of
/// fraction, and a zone.
fn strict_timestamp(text: &str) -> Result<Timestamp, String> {
    let bad = || format!("TIMESTAMP {text:?} is not an RFC 5424 timestamp");
    let (_, time) = text.split_once('T').ok_or_else(bad)?;
    if let Some((_, fraction)) = time.split_once('.') {
        let digits = fraction.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 || digits > 6 {
            return Err(bad());
        }
    }
    let zoned = time.ends_with('Z') || time.rfind(['+', '-']).is_some_and(|i| i >= 8);
    if !zoned || text.len() < 20 {
        return Err(bad());
    }
    Timestamp::parse(text).ok_or_else(bad)
}

/// STRUCTURED-DATA: `-` or one or more `[SD-ID *(SP NAME="VALUE")]`, as
/// `{"SD-ID": {"NAME": "VALUE"}}` (a repeated parameter as an array).
fn structured_data(rest: &[u8]) -> Result<(Map<String, Value>, &[u8]), String> {
    let mut elements = Map::new();
    if let Some(after) = rest.strip_prefix(b"-") {
        return Ok((elements, after));
    }
    let mut rest = rest;
    if !rest.starts_with(b"[") {
        return Err("STRUCTURED-DATA must be - or [SD-ID ...]".into());
    }
    while let Some(after) = rest.strip_prefix(b"[") {
        let (id, mut after) = sd_name(after, "SD-ID")?;
        let mut params = Map::new();
        loop {
            match after {
                [b']', tail @ ..] => {
                    rest = tail;
                    break;
                }
                [b' ', tail @ ..] => {
                    let (name, tail) = sd_name(tail, "PARAM-NAME")?;
                    let tail = tail
                        .strip_prefix(b"=\"")
                        .ok_or_else(|| format!("SD-PARAM {name} must be followed by =\""))?;
                    let (value, tail) = param_value(tail)?;
                    match params.get_mut(&name) {
                        Some(Value::Array(values)) => values.push(json!(value)),
                        Some(first) => *first = json!([first.take(), value]),
                        None => {
                            params.insert(name, json!(value));
                        }
                    }
                    after = tail;
                }
                _ => return Err(format!("SD-ELEMENT {id} is not closed with ]")),
            }
        }
        if elements.contains_key(&id) {
            return Err(format!("SD-ID {id} appears twice"));
        }
        elements.insert(id, Value::Object(params));
    }
    Ok((elements, rest))
}

/// SD-NAME: 1 to 32 printable US-ASCII characters but `=`, space, `]` and `"`.
fn sd_name<'a>(bytes: &'a [u8], what: &str) -> Result<(String, &'a [u8]), String> {
    let length = bytes
        .iter()
        .take_while(|b| (33..=126).contains(*b) && !matches!(b, b'=' | b']' | b'"'))
        .count();
    if length == 0 || length > 32 {
        return Err(format!("{what} must be 1 to 32 printable characters"));
    }
    Ok((
        String::from_utf8_lossy(&bytes[..length]).into_owned(),
        &bytes[length..],
    ))
}

/// PARAM-VALUE up to its closing quote; `\"`, `\\` and `\]` are escapes.
fn param_value(bytes: &[u8]) -> Result<(String, &[u8]), String> {
    let mut value = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let text = String::from_utf8(value).map_err(|_| "PARAM-VALUE is not UTF-8")?;
                return Ok((text, &bytes[i + 1..]));
            }
            b'\\' if matches!(bytes.get(i + 1), Some(b'"' | b'\\' | b']')) => {
                value.push(bytes[i + 1]);
                i += 2;
            }
            b']' => return Err("a ] inside PARAM-VALUE must be escaped".into()),
            b => {
                value.push(b);
                i += 1;
            }
        }
    }
    Err("PARAM-VALUE is not closed with \"".into())
}

/// RFC 3164, leniently: `[TIMESTAMP ][HOSTNAME ][TAG[PID]: ]MSG`, each part
/// optional, as real senders vary.
fn rfc3164(pri: u8, rest: &[u8], now: Timestamp) -> Shipped {
    let mut shipped = with_priority(pri);
    let text = String::from_utf8_lossy(rest);
    let mut text: &str = &text;
    // `Mmm dd hh:mm:ss ` (day padded with a space), or RFC 3339 as rsyslog writes.
    if let Some(ts) = text
        .get(..15)
        .and_then(|stamp| Timestamp::from_bsd_syslog(stamp, now))
    {
        shipped.ts(ts);
        text = text[15..].trim_start_matches(' ');
    } else if let Some((first, after)) = text.split_once(' ') {
        if first.len() >= 20 && first.contains('T') {
            if let Some(ts) = Timestamp::parse(first) {
                shipped.ts(ts);
                text = after;
            }
        }
    }
    let is_tag = |word: &str| word.ends_with(':') || (word.contains('[') && word.ends_with("]:"));
    let mut words = text.splitn(2, ' ');
    let first = words.next().unwrap_or("");
    let after_first = words.next();
    let (host, tagged) = match after_first {
        Some(after) if !is_tag(first) && !first.is_empty() => {
            let next = after.split(' ').next().unwrap_or("");
            if is_tag(next) {
                (Some(first), after)
            } else {
                (None, text)
            }
        }
        _ => (None, text),
    };
    if let Some(host) = host {
        shipped.offer("instance", host);
    }
    let (tag_word, message) = tagged.split_once(' ').unwrap_or((tagged, ""));
    if is_tag(tag_word) {
        let tag = tag_word.trim_end_matches(':');
        let (app, pid) = match tag.split_once('[') {
            Some((app, pid)) => (app, Some(pid.trim_end_matches(']'))),
            None => (tag, None),
        };
        shipped.offer("source", app);
        if let Some(pid) = pid {
            shipped.data("procid", json!(pid));
        }
        shipped.offer("message", message);
    } else {
        shipped.offer("message", tagged);
    }
    shipped
}

/// The raw text as the message, with the reason it could not be parsed.
fn malformed(raw: &[u8], truncated: bool, problem: &str) -> NewRecord {
    let mut text = String::from_utf8_lossy(raw).replace('\0', "\u{FFFD}");
    if text.len() > MAX_TEXT_BYTES {
        let mut cut = MAX_TEXT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    let mut shipped = Shipped::new();
    shipped.offer("message", text);
    shipped.data("parse_error", json!(problem));
    if truncated || raw.len() > MAX_TEXT_BYTES {
        shipped.data("truncated", json!(true));
    }
    // Only the message is set and it is cleaned above, so this cannot fail.
    shipped.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_714_560_000_000_000); // 2024-05-01T10:40:00Z

    fn data(record: &NewRecord) -> Value {
        Value::Object(record.data.clone().unwrap_or_default())
    }

    #[test]
    fn rfc5424_with_structured_data_and_bom() {
        let line = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
            [exampleSDID@32473 iut=\"3\" eventSource=\"Appl\\\"ication\" eventID=\"1011\"][x@1 a=\"1\" a=\"2\"] \u{FEFF}An application event log entry\n";
        let r = super::record(line.as_bytes(), false, NOW);
        assert_eq!(r.level, Some(Level::Info));
        assert_eq!(r.instance.as_deref(), Some("mymachine.example.com"));
        assert_eq!(r.source.as_deref(), Some("evntslog"));
        assert_eq!(r.message.as_deref(), Some("An application event log entry"));
        assert_eq!(r.ts, Timestamp::parse("2003-10-11T22:14:15.003Z"));
        let data = data(&r);
        assert_eq!(data["facility"], "local4");
        assert_eq!(data["msgid"], "ID47");
        assert!(data.get("procid").is_none(), "NILVALUE is absent");
        assert_eq!(
            data["structured_data"],
            json!({"exampleSDID@32473": {"iut": "3", "eventSource": "Appl\"ication", "eventID": "1011"},
                   "x@1": {"a": ["1", "2"]}})
        );
    }

    #[test]
    fn rfc5424_nilvalues_and_no_message() {
        let r = super::record(b"<0>1 - - - - - -", false, NOW);
        assert_eq!(r.level, Some(Level::Critical));
        assert_eq!(r.ts, None, "the receiver's clock decides");
        assert_eq!(r.message, None);
        assert_eq!(data(&r)["facility"], "kern");
        assert!(data(&r).get("parse_error").is_none());
    }

    #[test]
    fn broken_rfc5424_is_kept_with_the_reason() {
        for (line, problem) in [
            ("<13>1 2003-10-11 host app - - - msg", "TIMESTAMP"),
            (
                "<13>1 2003-10-11T22:14:15.0000001Z host app - - - msg",
                "TIMESTAMP",
            ),
            ("<13>1 - host app - - [id a=\"x] msg", "PARAM-VALUE"),
            ("<13>1 - host app - - [id a=\"x\"", "not closed"),
            ("<13>1 - host app - - nonsense", "STRUCTURED-DATA"),
            ("<13>1 - host", "header ends"),
            ("<192>1 - - - - - -", "0 to 191"),
            ("<013>hello", "0 to 191"),
            ("no priority at all", "<PRI>"),
        ] {
            let r = super::record(line.as_bytes(), false, NOW);
            assert_eq!(r.message.as_deref(), Some(line), "{line}");
            let error = data(&r)["parse_error"].as_str().unwrap_or("").to_string();
            assert!(error.contains(problem), "{line}: {error}");
        }
    }

    #[test]
    fn rfc3164_forms_real_senders_use() {
        let r = super::record(
            b"<38>Oct  1 09:10:11 web-1 sshd[4711]: Accepted publickey\n",
            false,
            NOW,
        );
        assert_eq!(r.level, Some(Level::Info));
        assert_eq!(r.instance.as_deref(), Some("web-1"));
        assert_eq!(r.source.as_deref(), Some("sshd"));
        assert_eq!(r.message.as_deref(), Some("Accepted publickey"));
        assert_eq!(data(&r)["procid"], "4711");
        assert_eq!(data(&r)["facility"], "auth");
        assert!(r.ts.is_some());

        let r = super::record(b"<11>myapp: no host here", false, NOW);
        assert_eq!(r.instance, None);
        assert_eq!(r.source.as_deref(), Some("myapp"));
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.message.as_deref(), Some("no host here"));

        let r = super::record(b"<14>just some text", false, NOW);
        assert_eq!(r.message.as_deref(), Some("just some text"));
        assert_eq!(r.source, None);
        assert!(data(&r).get("parse_error").is_none());
    }
}
