//! Timestamps: integer microseconds since the Unix epoch, UTC. One representation
//! inside; each API parses and renders its own form at its edge.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// Bounds that keep every timestamp renderable by chrono and every dialect.
const MIN_MICROS: i64 = 0;
const MAX_MICROS: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp(Utc::now().timestamp_micros())
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn from_micros(micros: i64) -> Option<Timestamp> {
        (MIN_MICROS..=MAX_MICROS)
            .contains(&micros)
            .then_some(Timestamp(micros))
    }

    pub fn from_epoch_seconds(seconds: f64) -> Option<Timestamp> {
        if !seconds.is_finite() {
            return None;
        }
        let micros = (seconds * 1_000_000.0).round();
        if micros < MIN_MICROS as f64 || micros > MAX_MICROS as f64 {
            return None;
        }
        Timestamp::from_micros(micros as i64)
    }

    pub fn epoch_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub fn epoch_seconds_f64(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// Parses RFC 3339 (`2024-05-01T10:00:00Z`, any offset) or epoch seconds
    /// (`1432022739`, `1432022739.25`).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        if let Ok(seconds) = t.parse::<f64>() {
            return Timestamp::from_epoch_seconds(seconds);
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
            return Timestamp::from_micros(dt.timestamp_micros());
        }
        // A naive ISO form is read as UTC (`2018-03-22T07:25:31`, `2018-03-22 07:25:31.5`).
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
                return Timestamp::from_micros(naive.and_utc().timestamp_micros());
            }
        }
        // RFC 2822, the Docker Cloud form: `Wed, 17 Sep 2014 08:26:22 +0000`.
        if let Ok(dt) = DateTime::parse_from_rfc2822(t) {
            return Timestamp::from_micros(dt.timestamp_micros());
        }
        None
    }

    /// The BSD syslog timestamp of RFC 3164 (`Oct  1 09:10:11`): local time without
    /// a year, so the year is the one that puts it closest to `now` (at most a day
    /// ahead, for clocks slightly apart).
    pub fn from_bsd_syslog(text: &str, now: Timestamp) -> Option<Timestamp> {
        use chrono::{Datelike, Local, NaiveDate};
        let mut parts = text.split_whitespace();
        let (month, day, time) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
        let day: u32 = day.parse().ok()?;
        let time = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S").ok()?;
        let now_local = now.to_datetime().with_timezone(&Local);
        let limit = now.0 + 86_400_000_000;
        for year in [now_local.year(), now_local.year() - 1] {
            let Some(date) = NaiveDate::from_ymd_opt(year, month, day) else {
                continue;
            };
            let local = Local.from_local_datetime(&date.and_time(time)).earliest()?;
            let micros = local.timestamp_micros();
            if micros <= limit {
                return Timestamp::from_micros(micros);
            }
        }
        None
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// `2024-05-01T10:00:00.123456Z`
    pub fn rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// `2024-05-01T10:00:00.123456+00:00` (ISO 8601 with an explicit offset).
    pub fn iso8601_offset(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, false)
    }

    /// `2015-05-19 08:03:53.173968`
    pub fn space_separated_micros(self) -> String {
        self.to_datetime()
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string()
    }

    /// `2018-03-22T07:25:31`
    pub fn iso_seconds_naive(self) -> String {
        self.to_datetime().format("%Y-%m-%dT%H:%M:%S").to_string()
    }

    /// `Wed, 17 Sep 2014 08:26:22 +0000`
    pub fn rfc2822(self) -> String {
        self.to_datetime()
            .format("%a, %d %b %Y %H:%M:%S +0000")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_accepted_form_to_the_same_instant() {
        let expected = Timestamp(1_432_022_739_000_000);
        for text in [
            "1432022739",
            "1432022739.0",
            "2015-05-19T08:05:39Z",
            "2015-05-19T10:05:39+02:00",
            "2015-05-19T08:05:39",
            "Tue, 19 May 2015 08:05:39 +0000",
        ] {
            assert_eq!(Timestamp::parse(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn rejects_garbage_and_out_of_range() {
        for text in ["", "yesterday", "NaN", "-5", "1e30", "2015-13-01T00:00:00Z"] {
            assert_eq!(Timestamp::parse(text), None, "{text}");
        }
    }

    #[test]
    fn renders_each_dialect_form() {
        let ts = Timestamp(1_432_022_633_173_968);
        assert_eq!(ts.space_separated_micros(), "2015-05-19 08:03:53.173968");
        assert_eq!(ts.iso_seconds_naive(), "2015-05-19T08:03:53");
        assert_eq!(ts.rfc2822(), "Tue, 19 May 2015 08:03:53 +0000");
        assert_eq!(ts.rfc3339(), "2015-05-19T08:03:53.173968Z");
        assert_eq!(ts.iso8601_offset(), "2015-05-19T08:03:53.173968+00:00");
    }

    #[test]
    fn bsd_syslog_times_get_the_year_nearest_now() {
        use chrono::{Local, TimeZone};
        let local = |y, mo, d, h, mi, s| {
            let t = Local
                .with_ymd_and_hms(y, mo, d, h, mi, s)
                .earliest()
                .expect("local time");
            Timestamp(t.timestamp_micros())
        };
        let now = local(2024, 1, 2, 12, 0, 0);
        assert_eq!(
            Timestamp::from_bsd_syslog("Jan  2 11:59:00", now),
            Some(local(2024, 1, 2, 11, 59, 0))
        );
        // A December line read in January is from last year.
        assert_eq!(
            Timestamp::from_bsd_syslog("Dec 31 23:00:00", now),
            Some(local(2023, 12, 31, 23, 0, 0))
        );
        for bad in [
            "Foo  2 11:59:00",
            "Jan 32 11:59:00",
            "Jan  2 25:00:00",
            "Jan 2",
        ] {
            assert_eq!(Timestamp::from_bsd_syslog(bad, now), None, "{bad}");
        }
    }
}

/// Parses a relative duration such as `250ms`, `90s`, `15m`, `2h`, `30d` or `1w`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().ok()?;
    if unit == "ms" {
        return Some(std::time::Duration::from_millis(n));
    }
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(seconds).map(std::time::Duration::from_secs)
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;

    #[test]
    fn durations_parse_with_units_only() {
        assert_eq!(parse_duration("30d").map(|d| d.as_secs()), Some(2_592_000));
        assert_eq!(parse_duration("15m").map(|d| d.as_secs()), Some(900));
        assert_eq!(parse_duration("250ms").map(|d| d.as_millis()), Some(250));
        assert_eq!(parse_duration("15"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("3y"), None);
    }
}
