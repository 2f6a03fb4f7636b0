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
    fn levels_order_by_severity() {
        assert!(Level::Critical > Level::Error && Level::Warn > Level::Info);
        assert_eq!(Level::Warn.python_name(), "WARNING");
    }
}
