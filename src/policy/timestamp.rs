//! Points in time, as policy files write them (exception expiry, schedule steps) and as callers
//! hand them to the engine. One rule everywhere: a date means 00:00:00 UTC of that day, so
//! `expires: 2027-01-15` ends an exception at the first second of 15 January (UTC) and
//! `from: 2027-01-15` starts a schedule step at that same second. An RFC 3339 time
//! (`2027-01-15T09:00:00+01:00`) names any other instant.
//!
//! The engine never reads the clock: [`Timestamp::now`] is for its callers (the webhook per
//! request, `audit` once per run, `test` per case).

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

/// One instant, to the second, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Seconds in a day.
const DAY: i64 = 86_400;

impl Timestamp {
    /// The instant `secs` seconds after 1970-01-01T00:00:00Z.
    pub const fn from_unix(secs: i64) -> Timestamp {
        Timestamp(secs)
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// The current time, from the system clock. Callers read it and pass it in; the engine
    /// never does.
    pub fn now() -> Timestamp {
        Timestamp(OffsetDateTime::now_utc().unix_timestamp())
    }

    /// This instant plus `days` days.
    pub fn plus_days(self, days: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(days.saturating_mul(DAY)))
    }

    /// Parses a date (`2027-01-15`: 00:00:00 UTC of that day) or an RFC 3339 time
    /// (`2027-01-15T09:00:00Z`, `2027-01-15T09:00:00+01:00`).
    pub fn parse(s: &str) -> Result<Timestamp, String> {
        let s = s.trim();
        let parsed = if s.len() == 10 {
            Date::parse(s, format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc())
                .map_err(|e| e.to_string())
        } else {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|e| e.to_string())
        };
        parsed.map(|t| Timestamp(t.unix_timestamp())).map_err(|e| {
            format!(
                "invalid time {s:?} ({e}): write a date such as 2027-01-15 (meaning 00:00 UTC) \
                 or an RFC 3339 time such as 2027-01-15T09:00:00+01:00"
            )
        })
    }

    /// Whether the instant is 00:00:00 UTC of its day (it prints as a date).
    pub fn is_midnight(self) -> bool {
        self.0.rem_euclid(DAY) == 0
    }

    fn utc(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .map(|t| t.to_offset(UtcOffset::UTC))
    }
}

impl std::fmt::Display for Timestamp {
    /// `2027-01-15` at midnight UTC, otherwise `2027-01-15T09:30:00Z`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(t) = self.utc() else {
            return write!(f, "@{}", self.0);
        };
        let text = if self.is_midnight() {
            t.date()
                .format(format_description!("[year]-[month]-[day]"))
                .ok()
        } else {
            t.format(&Rfc3339).ok()
        };
        match text {
            Some(text) => f.write_str(&text),
            None => write!(f, "@{}", self.0),
        }
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;

    fn from_str(s: &str) -> Result<Timestamp, String> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A date (2027-01-15, meaning 00:00:00 UTC of that day) or an RFC 3339 time (2027-01-15T09:00:00+01:00).",
            "pattern": r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_midnight_utc() {
        let t = Timestamp::parse("2027-01-15").expect("date");
        assert_eq!(t.unix(), 1_799_971_200);
        assert!(t.is_midnight());
        assert_eq!(t.to_string(), "2027-01-15");
        assert_eq!(
            Timestamp::parse("2027-01-15T00:00:00Z").expect("rfc3339"),
            t
        );
        assert_eq!(t.plus_days(1).to_string(), "2027-01-16");
    }

    #[test]
    fn times_with_offsets_are_converted_to_utc() {
        let t = Timestamp::parse("2027-01-15T09:30:00+01:00").expect("rfc3339");
        assert_eq!(t.to_string(), "2027-01-15T08:30:00Z");
        assert!(!t.is_midnight());
    }

    #[test]
    fn bad_times_say_what_is_expected() {
        for bad in [
            "2027-13-01",
            "15.01.2027",
            "2027-01-15 09:00",
            "",
            "tomorrow",
        ] {
            let err = Timestamp::parse(bad).expect_err(bad);
            assert!(err.contains("2027-01-15"), "{bad}: {err}");
        }
    }

    #[test]
    fn reads_from_unquoted_yaml_dates() {
        let t: Timestamp =
            serde_json::from_value(crate::yaml::parse("2027-01-15").expect("yaml")).expect("date");
        assert_eq!(t.to_string(), "2027-01-15");
    }
}
