//! When a materialized or feature view refreshes by itself: its refresh
//! policy, kept with its definition in the catalog.
//!
//! ```text
//!  REFRESH EVERY INTERVAL '10 minutes'   every interval after the last run
//!  REFRESH CRON '*/5 * * * *'            at the times of a 5-field cron line (UTC)
//!  REFRESH ON UPSTREAM                   when a table it reads gets a new version
//!  ... [RETRIES n]                       attempts after a failure
//! ```
//!
//! A policy is checked when it is written (a bad interval or cron line is
//! refused at CREATE or ALTER), so the scheduler only meets good ones.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// How a view refreshes by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshPolicy {
    pub trigger: Trigger,
    /// Further attempts after a failed one (0: none).
    #[serde(default)]
    pub retries: u32,
}

/// What starts a refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Every `micros` after the last run; `text` as written.
    Every { micros: i64, text: String },
    /// The times of a cron line, in UTC.
    Cron { expr: String },
    /// A new version of any table the view reads.
    OnUpstream,
}

/// The most attempts a policy may ask for.
pub const MAX_RETRIES: u32 = 100;

impl RefreshPolicy {
    /// `EVERY '<interval>'`: at least one second, months refused (no fixed
    /// length).
    pub fn every(text: &str) -> Result<Trigger> {
        use datafusion::arrow::compute::kernels::cast_utils::parse_interval_month_day_nano;
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidDatetime,
                format!("invalid refresh interval \"{text}\": {why}"),
            )
        };
        let i = parse_interval_month_day_nano(text)
            .map_err(|_| bad("write it in weeks, days, hours, minutes or seconds"))?;
        if i.months != 0 {
            return Err(bad("months and years have no fixed length; use days"));
        }
        let micros = i.days as i64 * 86_400_000_000 + i.nanoseconds / 1_000;
        if micros < 1_000_000 {
            return Err(bad("it must be at least 1 second"));
        }
        Ok(Trigger::Every {
            micros,
            text: text.to_string(),
        })
    }

    /// `CRON '<line>'`, checked.
    pub fn cron(expr: &str) -> Result<Trigger> {
        Cron::parse(expr)?;
        Ok(Trigger::Cron {
            expr: expr.to_string(),
        })
    }

    /// A project's `schedule` config (`every 10 minutes`, `cron */5 * * *
    /// *`, `on upstream`; `manual` or `none`: `None`) with its `retries`.
    pub fn from_config(schedule: &str, retries: Option<&str>) -> Result<Option<RefreshPolicy>> {
        let text = schedule.trim();
        let lower = text.to_ascii_lowercase();
        let trigger = if lower.starts_with("every ") {
            RefreshPolicy::every(text[6..].trim())?
        } else if lower.starts_with("cron ") {
            RefreshPolicy::cron(text[5..].trim())?
        } else if lower == "on upstream" || lower == "upstream" {
            Trigger::OnUpstream
        } else if lower == "manual" || lower == "none" {
            return Ok(None);
        } else {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!(
                    "schedule '{text}' is not 'every <interval>', 'cron <line>', 'on upstream' \
                     or 'manual'"
                ),
            ));
        };
        let retries = match retries {
            None => 0,
            Some(r) => r
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_RETRIES)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidParameter,
                        format!("retries must be a whole number up to {MAX_RETRIES}, not '{r}'"),
                    )
                })?,
        };
        Ok(Some(RefreshPolicy { trigger, retries }))
    }

    /// The clause that declares it, as `sluice.schedules` shows it.
    pub fn describe(&self) -> String {
        let base = match &self.trigger {
            Trigger::Every { text, .. } => format!("EVERY INTERVAL '{}'", text.replace('\'', "''")),
            Trigger::Cron { expr } => format!("CRON '{}'", expr.replace('\'', "''")),
            Trigger::OnUpstream => "ON UPSTREAM".to_string(),
        };
        if self.retries > 0 {
            format!("{base} RETRIES {}", self.retries)
        } else {
            base
        }
    }

    /// The first time after `last` (the start of the last run, or when
    /// the scheduler first saw the view) that the policy names; `None` for
    /// ON UPSTREAM, which waits for commits instead.
    pub fn next_after(&self, last: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.trigger {
            Trigger::Every { micros, .. } => Some(last + Duration::microseconds(*micros)),
            Trigger::Cron { expr } => Cron::parse(expr).ok()?.next_after(last),
            Trigger::OnUpstream => None,
        }
    }
}

/// A five-field cron line: minute hour day-of-month month day-of-week,
/// each `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a list
/// of those; names (`mon`, `jan`) and the shortcuts `@hourly`, `@daily`,
/// `@weekly`, `@monthly`, `@yearly` are understood. As in cron, when both
/// day fields are restricted a day matching either one fires.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    any_day: bool,
    any_weekday: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron> {
        let bad = |why: String| {
            Error::new(
                ErrorKind::InvalidParameter,
                format!("invalid cron expression \"{expr}\": {why}"),
            )
        };
        let line = match expr.trim().to_ascii_lowercase().as_str() {
            "@hourly" => "0 * * * *".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            other => other.to_string(),
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(bad(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        }
        let field = |i: usize, name: &str, lo: u32, hi: u32, names: &[&str]| {
            parse_field(fields[i], lo, hi, names).map_err(|why| bad(format!("{name}: {why}")))
        };
        let minutes = field(0, "minute", 0, 59, &[])?;
        let hours = field(1, "hour", 0, 23, &[])?;
        let days = field(2, "day of month", 1, 31, &[])?;
        let months = field(3, "month", 1, 12, &MONTHS)?;
        // 7 is Sunday as well as 0.
        let mut weekdays = field(4, "day of week", 0, 7, &WEEKDAYS)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        Ok(Cron {
            minutes,
            hours,
            days,
            months,
            weekdays,
            any_day: fields[2] == "*" || fields[2] == "?",
            any_weekday: fields[4] == "*" || fields[4] == "?",
        })
    }

    fn day_matches(&self, t: &DateTime<Utc>) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        }
    }

    /// The first matching minute strictly after `t`; `None` when no date
    /// in the next eight years matches (`0 0 31 2 *`).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = t.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut day = Utc
            .with_ymd_and_hms(start.year(), start.month(), start.day(), 0, 0, 0)
            .single()?;
        let limit = day + Duration::days(366 * 8);
        while day < limit {
            if self.months & (1 << day.month()) != 0 && self.day_matches(&day) {
                for h in 0..24u32 {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    for m in 0..60u32 {
                        if self.minutes & (1 << m) == 0 {
                            continue;
                        }
                        let at = day.with_hour(h)?.with_minute(m)?;
                        if at >= start {
                            return Some(at);
                        }
                    }
                }
            }
            day += Duration::days(1);
        }
        None
    }
}

/// One cron field as a bit set of the values it allows.
fn parse_field(text: &str, lo: u32, hi: u32, names: &[&str]) -> std::result::Result<u64, String> {
    let value = |s: &str| -> std::result::Result<u32, String> {
        if let Some(i) = names.iter().position(|n| *n == s) {
            // Months count from 1, weekdays from 0.
            return Ok(i as u32 + if names.len() == 12 { 1 } else { 0 });
        }
        let v: u32 = s.parse().map_err(|_| format!("\"{s}\" is not a number"))?;
        if v < lo || v > hi {
            return Err(format!("{v} is outside {lo}-{hi}"));
        }
        Ok(v)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("bad step \"{s}\""))?;
                (r, step)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(format!("range {a}-{b} runs backwards"));
            }
            (a, b)
        } else if range.is_empty() {
            return Err("empty field".into());
        } else {
            let a = value(range)?;
            // `5/15`: from 5 to the end, every 15.
            (a, if part.contains('/') { hi } else { a })
        };
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn cron_steps_ranges_lists_and_names() {
        let c = Cron::parse("*/15 9-17 * * mon-fri").unwrap();
        // Saturday 2026-12-05 → Monday 09:00.
        assert_eq!(
            c.next_after(at("2026-12-05T10:00:00Z")),
            Some(at("2026-12-07T09:00:00Z"))
        );
        assert_eq!(
            c.next_after(at("2026-12-07T09:00:00Z")),
            Some(at("2026-12-07T09:15:00Z"))
        );
        assert_eq!(
            c.next_after(at("2026-12-07T17:50:30Z")),
            Some(at("2026-12-08T09:00:00Z"))
        );
        let c = Cron::parse("0 0 1,15 feb *").unwrap();
        assert_eq!(
            c.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2027-02-01T00:00:00Z"))
        );
        // Both day fields restricted: either fires.
        let c = Cron::parse("0 12 13 * 5").unwrap();
        assert_eq!(
            c.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-04T12:00:00Z"))
        );
        // 7 is Sunday.
        let c = Cron::parse("0 0 * * 7").unwrap();
        assert_eq!(
            c.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-06T00:00:00Z"))
        );
        assert_eq!(
            Cron::parse("@hourly")
                .unwrap()
                .next_after(at("2026-12-01T10:59:59Z")),
            Some(at("2026-12-01T11:00:00Z"))
        );
        assert_eq!(
            Cron::parse("0 0 31 2 *")
                .unwrap()
                .next_after(at("2026-12-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn bad_cron_lines_say_what_is_wrong() {
        for (line, says) in [
            ("* * * *", "expected 5 fields"),
            ("60 * * * *", "minute: 60 is outside 0-59"),
            ("* 5-2 * * *", "runs backwards"),
            ("*/0 * * * *", "bad step"),
            ("* * * foo *", "\"foo\" is not a number"),
            ("* * 0 * *", "outside 1-31"),
        ] {
            let e = Cron::parse(line).unwrap_err();
            assert!(e.message.contains(says), "{line}: {}", e.message);
        }
    }

    #[test]
    fn intervals_are_fixed_lengths_of_a_second_or_more() {
        assert!(matches!(
            RefreshPolicy::every("10 minutes").unwrap(),
            Trigger::Every {
                micros: 600_000_000,
                ..
            }
        ));
        for bad in ["1 month", "0 seconds", "500 milliseconds", "soon"] {
            assert_eq!(
                RefreshPolicy::every(bad).unwrap_err().kind,
                ErrorKind::InvalidDatetime,
                "{bad}"
            );
        }
        let p = RefreshPolicy {
            trigger: RefreshPolicy::every("2 seconds").unwrap(),
            retries: 3,
        };
        assert_eq!(p.describe(), "EVERY INTERVAL '2 seconds' RETRIES 3");
        assert_eq!(
            p.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-01T00:00:02Z"))
        );
    }
}

/// Where a scheduled view stands, from the lake (its lease records and
/// its table's last commit), as every server on the lake sees it.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// The start of the last scheduled run, or of the view's last commit
    /// when that is later (a refresh by hand resets the interval).
    pub last_ms: Option<i64>,
    /// How the last scheduled run ended.
    pub last_status: Option<String>,
    /// A run holds the lease now.
    pub running: bool,
}

/// The lease key of a view's refreshes.
pub fn lease_key(rel: &super::RelName) -> String {
    format!("refresh.{}.{}", rel.schema, rel.name)
}

impl Standing {
    pub async fn of(
        lake: &crate::lake::Lake,
        leases: &crate::lake::lease::Leases,
        object: &super::Object,
        def: &super::MatViewDef,
    ) -> Result<Standing> {
        let mut s = Standing::default();
        if let Some((_, r)) = leases.latest(&lease_key(&object.rel_name())).await? {
            s.running = r.running && r.expires_ms > Utc::now().timestamp_millis();
            s.last_ms = Some(r.started_ms);
            if !r.running {
                s.last_status = r.status;
            }
        }
        if let Ok(table) = lake.table(&lake.url_for(&def.table.location)?).await
            && let Some(ms) = crate::lake::last_commit_info(&table)
                .await
                .and_then(|i| i.get("timestamp").and_then(|t| t.as_i64()))
        {
            s.last_ms = Some(s.last_ms.map_or(ms, |l| l.max(ms)));
        }
        Ok(s)
    }

    /// When `policy` next runs, and why then.
    pub fn next(&self, policy: &RefreshPolicy) -> (Option<DateTime<Utc>>, String) {
        let last = self
            .last_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .unwrap_or_else(Utc::now);
        match &policy.trigger {
            Trigger::Every { text, .. } => (
                policy.next_after(last),
                format!("{text} after the last refresh ({})", last.to_rfc3339()),
            ),
            Trigger::Cron { expr } => (
                policy.next_after(last),
                format!(
                    "the first time cron '{expr}' names after {}",
                    last.to_rfc3339()
                ),
            ),
            Trigger::OnUpstream => (None, "when a table it reads gets a new version".to_string()),
        }
    }
}
