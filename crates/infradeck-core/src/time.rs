//! Timestamps as the database stores them.
//!
//! Every timestamp column holds UTC text in SQLite's own `datetime()` format
//! (`YYYY-MM-DD HH:MM:SS`), so the seed's maintenance SQL (`last_seen < datetime('now', '-90 days')`)
//! compares correctly as plain strings.

use chrono::{DateTime, NaiveDateTime, Utc};

/// The format of every timestamp column.
pub(crate) const DB_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Now, in the database format.
pub fn now() -> String {
    format(Utc::now())
}

/// A UTC instant in the database format.
pub fn format(at: DateTime<Utc>) -> String {
    at.format(DB_FORMAT).to_string()
}

/// Parses a database timestamp back into an instant.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, DB_FORMAT)
        .ok()
        .map(|naive| naive.and_utc())
}

/// A short human age such as `42s`, `5m`, `3h`, `12d`, for lists where space is tight.
pub fn age(since: &str, now: DateTime<Utc>) -> String {
    let Some(then) = parse(since) else {
        return "?".to_string();
    };
    let secs = (now - then).num_seconds().max(0);
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn round_trips_and_ages() {
        let at = Utc.with_ymd_and_hms(2026, 5, 1, 10, 2, 11).unwrap();
        let text = format(at);
        assert_eq!(text, "2026-05-01 10:02:11");
        assert_eq!(parse(&text), Some(at));
        let later = Utc.with_ymd_and_hms(2026, 5, 3, 10, 2, 11).unwrap();
        assert_eq!(age(&text, later), "2d");
        assert_eq!(age("garbage", later), "?");
    }
}
