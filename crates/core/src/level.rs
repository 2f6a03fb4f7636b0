//! Severity levels. Stored as their number so `level >= WARN` is a range scan.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug = 10,
    Info = 20,
    Warn = 30,
    Error = 40,
    Critical = 50,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Critical,
    ];

    pub fn number(self) -> i64 {
        self as i64
    }

    pub fn from_number(n: i64) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.number() == n)
    }

    /// Accepts the name in any case (`WARN` and `WARNING` alike) or the number.
    pub fn parse(text: &str) -> Option<Level> {
        let t = text.trim();
        if let Ok(n) = t.parse::<i64>() {
            return Level::from_number(n);
        }
        match t.to_ascii_uppercase().as_str() {
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARN" | "WARNING" => Some(Level::Warn),
            "ERROR" => Some(Level::Error),
            "CRITICAL" | "FATAL" => Some(Level::Critical),
            _ => None,
        }
    }

    /// A syslog severity (RFC 5424 6.2.1), also journald's `PRIORITY`: 0-2
    /// (emergency, alert, critical) are critical, 5 (notice) is info.
    pub fn from_syslog_severity(severity: u8) -> Option<Level> {
        Some(match severity {
            0..=2 => Level::Critical,
            3 => Level::Error,
            4 => Level::Warn,
            5 | 6 => Level::Info,
            7 => Level::Debug,
            _ => return None,
        })
    }

    /// An OpenTelemetry `SeverityNumber`: four steps per level, TRACE (1-4) counted
    /// as debug and FATAL (21-24) as critical; 0 (unspecified) is no level.
    pub fn from_otel_severity_number(number: i64) -> Option<Level> {
        Some(match number {
            1..=8 => Level::Debug,
            9..=12 => Level::Info,
            13..=16 => Level::Warn,
            17..=20 => Level::Error,
            21..=24 => Level::Critical,
            _ => return None,
        })
    }

    /// A level named by a shipper, where spellings vary by ecosystem (`warning`,
    /// `err`, `crit`, `notice`, `trace`, `fatal`, `emerg`, OTel's `INFO2`...).
    /// `None` for text that names no level; the caller keeps the text in `data`.
    pub fn from_label(text: &str) -> Option<Level> {
        let t = text.trim();
        if let Some(level) = Level::parse(t) {
            return Some(level);
        }
        // OTel severity texts carry a step digit (`WARN2`); syslog-style names.
        let name = t.trim_end_matches(|c: char| c.is_ascii_digit());
        match name.to_ascii_lowercase().as_str() {
            "trace" | "dbug" | "debug" => Some(Level::Debug),
            "info" | "information" | "informational" | "notice" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "err" | "eror" | "error" => Some(Level::Error),
            "crit" | "critical" | "fatal" | "alert" | "emerg" | "emergency" | "panic" => {
                Some(Level::Critical)
            }
            _ => None,
        }
    }

    /// The short spelling used by the native API and QNAP (`WARN`).
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// The Python `logging` spelling used by Waldur (`WARNING`).
    pub fn python_name(self) -> &'static str {
        match self {
            Level::Warn => "WARNING",
            other => other.name(),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_warning_spellings_and_numbers_parse() {
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("WARN"), Some(Level::Warn));
        assert_eq!(Level::parse("40"), Some(Level::Error));
        assert_eq!(Level::parse("loud"), None);
        assert_eq!(Level::parse("35"), None);
    }

    #[test]
    fn shippers_severities_map_onto_levels() {
        let syslog: Vec<_> = (0..=8).map(Level::from_syslog_severity).collect();
        use Level::*;
        assert_eq!(
            syslog,
            [
                Some(Critical),
                Some(Critical),
                Some(Critical),
                Some(Error),
                Some(Warn),
                Some(Info),
                Some(Info),
                Some(Debug),
                None
            ]
        );
        let otel: Vec<_> = [0, 1, 5, 9, 12, 13, 17, 21, 24, 25]
            .into_iter()
            .map(Level::from_otel_severity_number)
            .collect();
        assert_eq!(
            otel,
            [
                None,
                Some(Debug),
                Some(Debug),
                Some(Info),
                Some(Info),
                Some(Warn),
                Some(Error),
                Some(Critical),
                Some(Critical),
                None
            ]
        );
        for (text, level) in [
            ("warning", Some(Warn)),
            ("WARN2", Some(Warn)),
            ("err", Some(Error)),
            ("notice", Some(Info)),
            ("Trace", Some(Debug)),
            ("emerg", Some(Critical)),
            ("30", Some(Warn)),
            ("verbose", None),
        ] {
            assert_eq!(Level::from_label(text), level, "{text}");
        }
    }

    #[test]
    fn levels_order_by_severity() {
        assert!(Level::Critical > Level::Error && Level::Warn > Level::Info);
        assert_eq!(Level::Warn.python_name(), "WARNING");
    }
}
