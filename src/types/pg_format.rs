//! PostgreSQL's formatting functions with PostgreSQL's template patterns:
//! `to_char(timestamp | date | number, 'YYYY-MM-DD HH24:MI:SS' | 'FM9990.00')`,
//! `to_date(text, 'DD/MM/YYYY')`, `to_timestamp(text, template)` and
//! `to_timestamp(seconds)`. DataFusion's functions of those names take
//! chrono's `%Y-%m-%d` patterns: given PostgreSQL's, `to_char` answered the
//! template itself as the value (a wrong answer), `to_date` failed.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Float64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{DataFusionError, ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// One piece of a datetime template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    /// A field (`YYYY`, `Mon`, ...) with the FM (no padding) and TH
    /// (ordinal suffix, `th` lower case) modifiers.
    Field {
        name: &'static str,
        fm: bool,
        th: Option<bool>,
    },
    Text(String),
}

/// The field patterns, longest first where one is a prefix of another.
/// Case matters for names (`Month`, `MONTH`, `month`); other patterns are
/// matched without case, as PostgreSQL does.
const FIELDS: &[&str] = &[
    "HH24", "HH12", "HH", "MI", "SSSSS", "SSSS", "SS", "MS", "US", "FF1", "FF2", "FF3", "FF4",
    "FF5", "FF6", "A.M.", "a.m.", "P.M.", "p.m.", "AM", "am", "PM", "pm", "Y,YYY", "YYYY", "YYY",
    "YY", "Y", "IYYY", "IYY", "IY", "I", "MONTH", "Month", "month", "MON", "Mon", "mon", "MM",
    "DAY", "Day", "day", "DY", "Dy", "dy", "DDD", "DD", "D", "IDDD", "ID", "WW", "W", "IW", "CC",
    "J", "Q", "RM", "rm", "TZH", "TZM", "TZ", "tz", "OF", "B.C.", "b.c.", "A.D.", "a.d.", "BC",
    "AD", "bc", "ad",
];

/// Case-sensitive patterns (their case chooses the output's).
fn case_sensitive(f: &str) -> bool {
    f.chars().any(|c| c.is_ascii_lowercase())
        || matches!(
            f,
            "MONTH" | "MON" | "DAY" | "DY" | "AM" | "PM" | "A.M." | "P.M."
        )
        || matches!(f, "TZ" | "BC" | "AD" | "B.C." | "A.D." | "RM")
}

fn field_at(rest: &str) -> Option<&'static str> {
    // The longest pattern that matches here.
    let mut best: Option<&'static str> = None;
    for f in FIELDS {
        let Some(head) = rest.get(..f.len()) else {
            continue;
        };
        let hit = if case_sensitive(f) {
            head == *f
        } else {
            head.eq_ignore_ascii_case(f)
        };
        if hit && best.is_none_or(|b| f.len() > b.len()) {
            best = Some(f);
        }
    }
    // The case-insensitive form of a case-sensitive name (`mONTH`) is the
    // name with its first letters' case.
    best
}

fn pieces(template: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('"') {
            // Quoted text, with backslash escapes.
            let mut chars = r.char_indices();
            let mut end = r.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            text.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => text.push(c),
                }
            }
            rest = &r[end.min(r.len())..];
            continue;
        }
        if let Some(r) = rest.strip_prefix('\\')
            && let Some(c) = r.chars().next()
        {
            text.push(c);
            rest = &r[c.len_utf8()..];
            continue;
        }
        let mut fm = false;
        let mut r = rest;
        loop {
            let upper = r.get(..2).map(str::to_ascii_uppercase);
            match upper.as_deref() {
                Some("FM") => {
                    fm = true;
                    r = &r[2..];
                }
                Some("FX" | "TM") => r = &r[2..],
                _ => break,
            }
        }
        if let Some(name) = field_at(r) {
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            r = &r[name.len()..];
            let th = match r.get(..2) {
                Some("TH") => Some(false),
                Some("th") => Some(true),
                _ => None,
            };
            if th.is_some() {
                r = &r[2..];
            }
            out.push(Piece::Field { name, fm, th });
            rest = r;
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        text.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The suffix of `n` for TH: by its last digits, whatever its sign.
fn ordinal(n: i64, lower: bool) -> &'static str {
    let n = n.unsigned_abs();
    let s = match (n % 100, n % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    if lower {
        s
    } else {
        match s {
            "st" => "ST",
            "nd" => "ND",
            "rd" => "RD",
            _ => "TH",
        }
    }
}

/// A name in the case of its pattern (`MONTH`, `Month`, `month`), padded
/// to `width` unless FM.
fn named(name: &str, pattern: &str, width: usize, fm: bool) -> String {
    let s = if pattern.chars().all(|c| c.is_ascii_uppercase()) {
        name.to_ascii_uppercase()
    } else if pattern.chars().all(|c| c.is_ascii_lowercase()) {
        name.to_ascii_lowercase()
    } else {
        name.to_string()
    };
    if fm { s } else { format!("{s:<width$}") }
}

/// What the fields a timestamp and an interval share print: the time of
/// day (hours may pass 23 in an interval), the fraction of the second,
/// the year, month and day. An interval's fields may be negative.
struct Clock {
    hour: i64,
    minute: i64,
    second: i64,
    /// The fraction of the second, in nanoseconds.
    nanos: i64,
    year: i64,
    month: i64,
    day: i64,
    /// `DDD`: the day of the year (an interval counts 30 days a month).
    day_of_year: i64,
    /// `J`: the Julian day.
    julian: i64,
}

/// How a number prints in a field: its value and its width, a minus sign
/// counted in the width, as C's `%0*d` does. PostgreSQL widens some
/// fields by one when the value they are part of is negative (`-0001`
/// for `YYYY`, `000` for `YY` of -100 years, but `-1` for `DD`).
type Num<'a> = &'a dyn Fn(i64, usize) -> String;

/// `width`, one wider when `whole` is negative.
fn widened(width: usize, whole: i64) -> usize {
    width + usize::from(whole < 0)
}

/// A field only one kind of value has, printed from its name, whether
/// `FM` fills it, and how a number prints.
type OtherField<'a> = &'a dyn Fn(&str, bool, Num) -> Result<Option<String>>;

/// Roman numerals of the months, December first, as PostgreSQL indexes
/// them.
const ROMAN_MONTHS: [&str; 12] = [
    "XII", "XI", "X", "IX", "VIII", "VII", "VI", "V", "IV", "III", "II", "I",
];

/// PostgreSQL's Julian day of a year, month and day (`date2j`), which
/// also reads an interval's fields.
fn julian_day(year: i64, month: i64, day: i64) -> i64 {
    let (year, month) = if month > 2 {
        (year + 4800, month + 1)
    } else {
        (year + 4799, month + 13)
    };
    let century = year / 100;
    year * 365 - 32167 + year / 4 - century + century / 4 + 7834 * month / 256 + day
}

/// `template` with each field printed from `clock`, or by `other`; a
/// field neither knows prints nothing.
fn render(template: &[Piece], clock: &Clock, other: OtherField) -> Result<String> {
    let mut out = String::new();
    for p in template {
        let (name, fm, th) = match p {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            Piece::Field { name, fm, th } => (*name, *fm, *th),
        };
        let num = |v: i64, width: usize| -> String {
            let s = if fm {
                v.to_string()
            } else {
                format!("{v:0width$}")
            };
            match th {
                Some(lower) => format!("{s}{}", ordinal(v, lower)),
                None => s,
            }
        };
        let upper = name.to_ascii_uppercase();
        let s = match upper.as_str() {
            "HH24" => num(clock.hour, widened(2, clock.hour)),
            "HH12" | "HH" => num(
                match clock.hour % 12 {
                    0 => 12,
                    h => h,
                },
                widened(2, clock.hour),
            ),
            "MI" => num(clock.minute, widened(2, clock.minute)),
            "SS" => num(clock.second, widened(2, clock.second)),
            "SSSS" | "SSSSS" => num(clock.hour * 3600 + clock.minute * 60 + clock.second, 0),
            "MS" => num(clock.nanos / 1_000_000, 3),
            "US" => num(clock.nanos / 1_000, 6),
            f if f.starts_with("FF") => {
                let digits: u32 = f[2..].parse::<u32>().unwrap_or(6).min(9);
                num(clock.nanos / 10i64.pow(9 - digits), digits as usize)
            }
            "AM" | "PM" | "A.M." | "P.M." => {
                // C's `%`, as PostgreSQL: an interval of -3 hours is AM.
                let pm = clock.hour % 24 >= 12;
                let s = match (name.contains('.'), pm) {
                    (false, false) => "AM",
                    (false, true) => "PM",
                    (true, false) => "A.M.",
                    (true, true) => "P.M.",
                };
                if name.chars().any(|c| c.is_ascii_lowercase()) {
                    s.to_ascii_lowercase()
                } else {
                    s.to_string()
                }
            }
            "Y,YYY" => format!("{},{:03}", clock.year / 1000, clock.year % 1000),
            "YYYY" => num(clock.year, widened(4, clock.year)),
            "YYY" => num(clock.year % 1000, widened(3, clock.year)),
            "YY" => num(clock.year % 100, widened(2, clock.year)),
            "Y" => num(clock.year % 10, 1),
            "MM" => num(clock.month, widened(2, clock.month)),
            "DD" => num(clock.day, 2),
            "DDD" => num(clock.day_of_year, 3),
            "WW" => num((clock.day_of_year - 1) / 7 + 1, 2),
            "W" => num((clock.day - 1) / 7 + 1, 1),
            // Nothing without months, as PostgreSQL.
            "Q" if clock.month == 0 => String::new(),
            "Q" => num((clock.month - 1) / 3 + 1, 1),
            "J" => num(clock.julian, 0),
            "RM" if clock.month == 0 && clock.year == 0 => String::new(),
            "RM" => {
                let at = match clock.month {
                    0 if clock.year >= 0 => 0,
                    0 => 11,
                    m if m < 0 => (-(m + 1)) as usize,
                    m => (12 - m) as usize,
                };
                let r = ROMAN_MONTHS[at.min(11)];
                let r = if name == "rm" {
                    r.to_ascii_lowercase()
                } else {
                    r.to_string()
                };
                if fm { r } else { format!("{r:<4}") }
            }
            _ => other(name, fm, &num)?.unwrap_or_default(),
        };
        out.push_str(&s);
    }
    Ok(out)
}

/// `to_char(timestamp)`, and of a date or a `timestamptz` (with `offset`,
/// the session's offset from UTC in seconds, for `TZ` and `OF`).
fn format_datetime(dt: NaiveDateTime, offset: Option<i32>, template: &[Piece]) -> Result<String> {
    // Year 0 is 1 BC: years print without a sign, as PostgreSQL's do.
    let era_year = |y: i32| {
        let y = i64::from(y);
        if y <= 0 { 1 - y } else { y }
    };
    let year = i64::from(dt.year());
    let iso = dt.iso_week();
    let iso_year = era_year(iso.year());
    let clock = Clock {
        hour: i64::from(dt.hour()),
        minute: i64::from(dt.minute()),
        second: i64::from(dt.second()),
        nanos: i64::from(dt.nanosecond()),
        year: era_year(dt.year()),
        month: i64::from(dt.month()),
        day: i64::from(dt.day()),
        day_of_year: i64::from(dt.ordinal()),
        julian: i64::from(dt.date().num_days_from_ce()) + 1_721_425,
    };
    render(template, &clock, &|name, fm, num| {
        Ok(Some(match name.to_ascii_uppercase().as_str() {
            "IYYY" => num(iso_year, 4),
            "IYY" => num(iso_year % 1000, 3),
            "IY" => num(iso_year % 100, 2),
            "I" => num(iso_year % 10, 1),
            "MONTH" => named(MONTHS[dt.month0() as usize], name, 9, fm),
            "MON" => named(&MONTHS[dt.month0() as usize][..3], name, 3, fm),
            "DAY" => named(
                DAYS[dt.weekday().num_days_from_sunday() as usize],
                name,
                9,
                fm,
            ),
            "DY" => named(
                &DAYS[dt.weekday().num_days_from_sunday() as usize][..3],
                name,
                3,
                fm,
            ),
            "D" => num(i64::from(dt.weekday().number_from_sunday()), 1),
            "IDDD" => num(
                i64::from((iso.week() - 1) * 7 + dt.weekday().number_from_monday()),
                3,
            ),
            "ID" => num(i64::from(dt.weekday().number_from_monday()), 1),
            "IW" => num(i64::from(iso.week()), 2),
            "CC" => {
                let century = if year > 0 {
                    (year + 99) / 100
                } else {
                    -((99 - (year - 1)) / 100)
                };
                num(century, widened(2, century))
            }
            "BC" | "AD" | "B.C." | "A.D." => {
                let s = match (year > 0, name.contains('.')) {
                    (true, false) => "AD",
                    (false, false) => "BC",
                    (true, true) => "A.D.",
                    (false, true) => "B.C.",
                };
                if name.chars().any(|c| c.is_ascii_lowercase()) {
                    s.to_ascii_lowercase()
                } else {
                    s.to_string()
                }
            }
            "TZ" => match offset {
                Some(0) if name == "tz" => "utc".into(),
                Some(0) => "UTC".into(),
                _ => String::new(),
            },
            "OF" | "TZH" | "TZM" => {
                let o = offset.unwrap_or(0);
                let sign = if o < 0 { '-' } else { '+' };
                let (h, m) = (o.abs() / 3600, o.abs() % 3600 / 60);
                match name {
                    "TZH" => format!("{sign}{h:02}"),
                    "TZM" => format!("{m:02}"),
                    _ if m == 0 => format!("{sign}{h:02}"),
                    _ => format!("{sign}{h:02}:{m:02}"),
                }
            }
            _ => return Ok(None),
        }))
    })
}

/// `to_char(interval)`: PostgreSQL's fields of an interval (years and
/// months of its months, its days, and hours that may pass 23). Fields
/// of a calendar date (names of months and days, the day of the week,
/// era, time zone) are 22007, as in PostgreSQL; ISO week fields are not
/// supported for an interval.
fn format_interval(months: i32, days: i32, nanos: i64, template: &[Piece]) -> Result<String> {
    let micros = nanos / 1000;
    let (hour, rest) = (micros / 3_600_000_000, micros % 3_600_000_000);
    let (minute, rest) = (rest / 60_000_000, rest % 60_000_000);
    let (second, fraction) = (rest / 1_000_000, rest % 1_000_000);
    let (year, month, day) = (
        i64::from(months / 12),
        i64::from(months % 12),
        i64::from(days),
    );
    // PostgreSQL reads the Julian day and the ISO week fields from the
    // date the fields name as a year, month and day (the interval 0 is 30
    // November, 1 BC).
    let julian = julian_day(year, month, day);
    let clock = Clock {
        hour,
        minute,
        second,
        nanos: fraction * 1000,
        year,
        month,
        day,
        // PostgreSQL counts 30 days to each month here.
        day_of_year: i64::from(months) * 30 + i64::from(days),
        julian,
    };
    let iso_date = i32::try_from(julian - 1_721_425)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt);
    render(template, &clock, &|name, _, num| {
        let upper = name.to_ascii_uppercase();
        let iso = |f: &dyn Fn(NaiveDate) -> String| {
            iso_date.map(f).map(Some).ok_or_else(|| {
                DataFusionError::Execution("interval out of range for to_char".into())
            })
        };
        let iso_year = |d: NaiveDate| i64::from(d.iso_week().year());
        match upper.as_str() {
            "CC" => Ok(Some(num(year / 100, widened(2, year / 100)))),
            // Widened for a minus sign by the interval's years, not the
            // ISO year's, as PostgreSQL does.
            "IYYY" => iso(&|d| num(iso_year(d), widened(4, year))),
            "IYY" => iso(&|d| num(iso_year(d) % 1000, widened(3, year))),
            "IY" => iso(&|d| num(iso_year(d) % 100, widened(2, year))),
            "I" => iso(&|d| num(iso_year(d) % 10, 1)),
            "IW" => iso(&|d| num(i64::from(d.iso_week().week()), 2)),
            "IDDD" => iso(&|d| {
                let day = (d.iso_week().week() - 1) * 7 + d.weekday().number_from_monday();
                num(i64::from(day), 3)
            }),
            _ => Err(crate::error::Error::new(
                crate::error::ErrorKind::InvalidDatetime,
                "invalid format specification for an interval value",
            )
            .with_hint("Intervals are not tied to specific calendar dates.")
            .into()),
        }
    })
}

/// `text` read as `template` says, as `to_date` / `to_timestamp` do:
/// fields not in the template are the first of January, midnight.
#[cfg(test)]
fn parse_datetime(text: &str, template: &str) -> std::result::Result<NaiveDateTime, String> {
    read_datetime(text, &input_format(template)?, template)
}

/// The chrono format that reads what `template` describes (built once per
/// batch, not per value).
fn input_format(template: &str) -> std::result::Result<String, String> {
    let mut fmt = String::new();
    for p in pieces(template) {
        match p {
            Piece::Text(t) => {
                for c in t.chars() {
                    if c == '%' {
                        fmt.push_str("%%");
                    } else {
                        fmt.push(c);
                    }
                }
            }
            Piece::Field { name, .. } => {
                let f = match name.to_ascii_uppercase().as_str() {
                    "HH24" => "%H",
                    "HH12" | "HH" => "%I",
                    "MI" => "%M",
                    "SS" => "%S",
                    "MS" => "%3f",
                    "US" => "%6f",
                    "AM" | "PM" => "%p",
                    "YYYY" => "%Y",
                    "YY" => "%y",
                    "MONTH" => "%B",
                    "MON" => "%b",
                    "MM" => "%m",
                    "DAY" => "%A",
                    "DY" => "%a",
                    "DDD" => "%j",
                    "DD" => "%d",
                    "IYYY" => "%G",
                    "IW" => "%V",
                    "TZH" => "%#z",
                    other => {
                        return Err(format!(
                            "formatting field \"{other}\" is only supported in to_char"
                        ));
                    }
                };
                fmt.push_str(f);
            }
        }
    }
    Ok(fmt)
}

/// `text` read with `fmt` (of [`input_format`] of `template`, which
/// messages name): fields the template leaves out are the first of
/// January, midnight.
fn read_datetime(
    text: &str,
    fmt: &str,
    template: &str,
) -> std::result::Result<NaiveDateTime, String> {
    use chrono::format::{Parsed, StrftimeItems, parse};
    let out_of_range = || format!("date/time field value out of range: \"{text}\"");
    let mut parsed = Parsed::new();
    parse(&mut parsed, text.trim(), StrftimeItems::new(fmt))
        .map_err(|e| format!("invalid value \"{text}\" for \"{template}\" ({e})"))?;
    if parsed.month().is_none() && parsed.ordinal().is_none() {
        let _ = parsed.set_month(1);
    }
    if parsed.day().is_none() && parsed.ordinal().is_none() {
        let _ = parsed.set_day(1);
    }
    if parsed.year().is_none() && parsed.isoyear().is_none() && parsed.year_mod_100().is_none() {
        let _ = parsed.set_year(1);
    }
    let date = parsed.to_naive_date().map_err(|_| out_of_range())?;
    if parsed.hour_div_12().is_none() && parsed.hour_mod_12().is_none() {
        let _ = parsed.set_hour(0);
    }
    if parsed.minute().is_none() {
        let _ = parsed.set_minute(0);
    }
    let time = parsed.to_naive_time().map_err(|_| out_of_range())?;
    let dt = date.and_time(time);
    match parsed.offset() {
        Some(o) => dt
            .checked_sub_signed(chrono::Duration::seconds(i64::from(o)))
            .ok_or_else(out_of_range),
        None => Ok(dt),
    }
}

/// One piece of a numeric template.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NumPiece {
    Nine,
    Zero,
    Point,
    Group,
    /// `S`: the sign, `+` or `-`, next to the number.
    Sign,
    /// `MI`, `PL`, `SG`: a minus, a plus, either, where written.
    Minus,
    Plus,
    PlusMinus,
    Char(char),
}

fn numeric_template(template: &str) -> std::result::Result<(Vec<NumPiece>, bool), String> {
    let mut out = Vec::new();
    let mut fm = false;
    let upper = template.to_ascii_uppercase();
    let mut i = 0;
    let bytes: Vec<char> = upper.chars().collect();
    let original: Vec<char> = template.chars().collect();
    while i < bytes.len() {
        let two: String = bytes[i..bytes.len().min(i + 2)].iter().collect();
        let sign = match two.as_str() {
            "MI" => Some(NumPiece::Minus),
            "PL" => Some(NumPiece::Plus),
            "SG" => Some(NumPiece::PlusMinus),
            _ => None,
        };
        if two == "FM" || sign.is_some() {
            fm |= two == "FM";
            out.extend(sign);
            i += 2;
            continue;
        }
        if matches!(two.as_str(), "EE" | "RN" | "TH") {
            return Err(format!(
                "the numeric template pattern \"{}\" is not supported",
                original[i..].iter().collect::<String>()
            ));
        }
        out.push(match bytes[i] {
            '9' => NumPiece::Nine,
            '0' => NumPiece::Zero,
            '.' | 'D' => NumPiece::Point,
            ',' | 'G' => NumPiece::Group,
            'S' => NumPiece::Sign,
            'V' | 'L' | 'B' => {
                return Err(format!(
                    "the numeric template pattern \"{}\" is not supported",
                    original[i]
                ));
            }
            _ => NumPiece::Char(original[i]),
        });
        i += 1;
    }
    Ok((out, fm))
}

/// The decimal digits of `value` (a number's text: `-12.345`), rounded
/// half away from zero to `scale` fraction digits: (negative, whole part
/// without leading zeros, fraction of exactly `scale` digits).
fn rounded_digits(value: &str, scale: usize) -> (bool, String, String) {
    let (negative, v) = match value.strip_prefix('-') {
        Some(v) => (true, v),
        None => (false, value),
    };
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let mut digits: Vec<u8> = whole
        .bytes()
        .chain(frac.bytes().chain(std::iter::repeat(b'0')).take(scale))
        .map(|b| b - b'0')
        .collect();
    if frac.as_bytes().get(scale).is_some_and(|d| *d >= b'5') {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - scale;
    let text = |d: &[u8]| d.iter().map(|d| char::from(b'0' + d)).collect::<String>();
    let whole = text(&digits[..split]).trim_start_matches('0').to_string();
    let frac = text(&digits[split..]);
    let zero = whole.is_empty() && frac.bytes().all(|b| b == b'0');
    (negative && !zero, whole, frac)
}

/// The digits after the point of a template in scientific notation
/// (`9.99EEEE`: 2); PostgreSQL allows only digits and a decimal point
/// beside `EEEE`.
fn scientific_template(template: &str) -> Result<usize> {
    let upper = template.to_ascii_uppercase();
    let body = upper.replacen("EEEE", "", 1);
    if !body.chars().all(|c| matches!(c, '9' | '0' | '.' | 'D')) || body.contains("EEEE") {
        return Err(DataFusionError::External(Box::new(
            crate::error::Error::syntax("\"EEEE\" is incompatible with other formats").with_detail(
                "\"EEEE\" may only be used together with digit and decimal point patterns.",
            ),
        )));
    }
    Ok(body.find(['.', 'D']).map_or(0, |at| {
        body[at + 1..]
            .chars()
            .filter(|c| c.is_ascii_digit())
            .count()
    }))
}

/// `e+03` / `e-104`: an exponent as C's `%e` writes it.
fn exponent_text(exponent: i64) -> String {
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("e{sign}{:02}", exponent.unsigned_abs())
}

/// A float (or an integer, which PostgreSQL formats as one) in scientific
/// notation with `post` digits after the point: ` 1.23e+03`.
fn float_scientific(v: f64, post: usize) -> String {
    if !v.is_finite() {
        return format!(" {v}");
    }
    let written = format!("{v:+.post$e}");
    let (mantissa, exponent) = written.split_once('e').unwrap_or((&written, "0"));
    let mantissa = mantissa.replacen('+', " ", 1);
    format!("{mantissa}{}", exponent_text(exponent.parse().unwrap_or(0)))
}

/// A numeric (its decimal text) in scientific notation, as PostgreSQL's
/// `numeric_out_sci` writes it: the exponent of the leading digit, and
/// the value over that power of ten rounded at `post` places (9.99 with
/// one place is ` 10.0e+00`).
fn decimal_scientific(value: &str, post: usize) -> String {
    let (negative, v) = match value.strip_prefix('-') {
        Some(v) => (true, v),
        None => (false, value),
    };
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits: String = whole.chars().chain(frac.chars()).collect();
    let Some(lead) = digits.find(|c: char| c != '0') else {
        return format!(" {}{}", rounded_text("0", post), exponent_text(0));
    };
    let exponent = whole.len() as i64 - 1 - lead as i64;
    let significand = format!("{}.{}", &digits[lead..=lead], &digits[lead + 1..]);
    let sign = if negative { '-' } else { ' ' };
    format!(
        "{sign}{}{}",
        rounded_text(&significand, post),
        exponent_text(exponent)
    )
}

/// `value` (unsigned decimal text) rounded half away from zero to `post`
/// places, written with them.
fn rounded_text(value: &str, post: usize) -> String {
    let (_, whole, frac) = rounded_digits(value, post);
    let whole = if whole.is_empty() {
        "0".to_string()
    } else {
        whole
    };
    if post == 0 {
        whole
    } else {
        format!("{whole}.{frac}")
    }
}

/// A number (its decimal text) as a numeric template says.
fn format_number(value: &str, template: &[NumPiece], fm: bool) -> String {
    let point = template.iter().position(|p| *p == NumPiece::Point);
    let is_digit = |p: &NumPiece| matches!(p, NumPiece::Nine | NumPiece::Zero);
    let whole_positions = template[..point.unwrap_or(template.len())]
        .iter()
        .filter(|p| is_digit(p))
        .count();
    let frac_positions = point.map_or(0, |at| {
        template[at..].iter().filter(|p| is_digit(p)).count()
    });
    let (negative, mut whole, frac) = rounded_digits(value, frac_positions);
    // The sign next to the number: `S` before its first digit, or, with
    // no `S`, `MI` or `SG`, a minus (a blank when positive, unless FM).
    // `MI`, `PL`, `SG` and a trailing `S` print where they are written.
    let first_digit = template
        .iter()
        .position(|p| is_digit(p) || *p == NumPiece::Point);
    let leading_s = template
        .iter()
        .position(|p| *p == NumPiece::Sign)
        .is_some_and(|at| first_digit.is_none_or(|d| at < d));
    let placed_sign = template
        .iter()
        .any(|p| matches!(p, NumPiece::Sign | NumPiece::Minus | NumPiece::PlusMinus));
    // No whole-number position: PostgreSQL prints every digit as `#`.
    let overflow = whole.len() > whole_positions || whole_positions == 0;
    let anchored: Option<char> = if leading_s {
        Some(if negative { '-' } else { '+' })
    } else if placed_sign || (!negative && fm) {
        None
    } else {
        Some(if negative { '-' } else { ' ' })
    };
    // The last fraction position that prints in FM (trailing 9s drop).
    let last_kept = if fm {
        let mut last = None;
        let mut n = 0;
        for p in template
            .iter()
            .skip(point.map_or(template.len(), |p| p + 1))
        {
            if is_digit(p) {
                let d = frac.as_bytes()[n];
                if *p == NumPiece::Zero || d != b'0' {
                    last = Some(n);
                }
                n += 1;
            }
        }
        last
    } else {
        frac_positions.checked_sub(1)
    };
    // A number that would print no digit at all prints its units' zero.
    if whole.is_empty() && last_kept.is_none() {
        whole.push('0');
    }
    let mut out = String::new();
    let mut started = false;
    let mut whole_index = 0;
    let mut frac_index = 0;
    let mut after_point = false;
    let sign_char = |out: &mut String| {
        if let Some(c) = anchored {
            out.push(c);
        }
    };
    for p in template {
        match p {
            NumPiece::Nine | NumPiece::Zero if !after_point => {
                let lead = whole_positions - whole.len().min(whole_positions);
                if overflow {
                    if !started {
                        sign_char(&mut out);
                        started = true;
                    }
                    out.push('#');
                } else if whole_index < lead {
                    if *p == NumPiece::Zero && !started {
                        sign_char(&mut out);
                        started = true;
                    }
                    if started {
                        out.push('0');
                    } else if !fm {
                        out.push(' ');
                    }
                } else {
                    if !started {
                        sign_char(&mut out);
                        started = true;
                    }
                    out.push(char::from(whole.as_bytes()[whole_index - lead]));
                }
                whole_index += 1;
            }
            NumPiece::Nine | NumPiece::Zero => {
                if overflow {
                    out.push('#');
                } else if last_kept.is_some_and(|l| frac_index <= l) {
                    out.push(char::from(frac.as_bytes()[frac_index]));
                }
                frac_index += 1;
            }
            // A point with no fraction position after it ends the output.
            // (A number too wide for the template keeps it.)
            NumPiece::Point if frac_positions == 0 && !overflow => break,
            NumPiece::Point => {
                if !started {
                    sign_char(&mut out);
                    started = true;
                }
                after_point = true;
                out.push('.');
            }
            NumPiece::Group => {
                if started {
                    out.push(',');
                } else if !fm {
                    out.push(' ');
                }
            }
            NumPiece::Sign if leading_s => {}
            NumPiece::Sign => out.push(if negative { '-' } else { '+' }),
            NumPiece::Minus => {
                if negative {
                    out.push('-')
                } else if !fm {
                    out.push(' ')
                }
            }
            NumPiece::Plus => {
                if !negative {
                    out.push('+')
                } else if !fm {
                    out.push(' ')
                }
            }
            NumPiece::PlusMinus => out.push(if negative { '-' } else { '+' }),
            NumPiece::Char(c) => out.push(*c),
        }
    }
    if !started {
        // A template with no digit position: the sign's place only.
        let mut s = String::new();
        sign_char(&mut s);
        out.insert_str(0, &s);
    }
    out
}

fn input_error(message: String) -> DataFusionError {
    if message.contains("only supported in to_char") {
        DataFusionError::NotImplemented(message)
    } else {
        DataFusionError::Execution(message)
    }
}

/// The template: a constant, as in every real use.
fn template_of(v: &ColumnarValue) -> Result<Option<String>> {
    match v {
        ColumnarValue::Scalar(s) => Ok(s.try_as_str().flatten().map(str::to_string)),
        ColumnarValue::Array(_) => Err(DataFusionError::NotImplemented(
            "the template of to_char, to_date or to_timestamp must be a constant".into(),
        )),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    signature: Signature,
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(
                DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
                | DataType::Interval(_)
                | DataType::Null
                | DataType::Utf8
                | DataType::Utf8View
                | DataType::LargeUtf8,
            ) => Ok(DataType::Utf8),
            Some(t) if t.is_numeric() => Ok(DataType::Utf8),
            Some(t) => plan_err!(
                "function to_char({}, text) does not exist",
                super::PgType::from_arrow(t).name
            ),
            None => plan_err!("to_char needs a value and a template"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(template) = template_of(&args.args[1])? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        make_scalar_function(|a: &[ArrayRef]| to_char(&a[0], &template), vec![])(&args.args[..1])
    }
}

/// `to_char` of each value of `input` by `template`.
fn to_char(input: &ArrayRef, template: &str) -> Result<ArrayRef> {
    let n = input.len();
    let mut out = StringBuilder::with_capacity(n, n * template.len());
    match input.data_type() {
        t if t.is_numeric() && template.to_ascii_uppercase().contains("EEEE") => {
            let post = scientific_template(template)?;
            let decimal = matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..));
            let text = datafusion::arrow::compute::cast(input, &DataType::Utf8)?;
            let floats = datafusion::arrow::compute::cast(input, &DataType::Float64)?;
            let (text, floats) = (
                text.as_string::<i32>(),
                floats.as_primitive::<Float64Type>(),
            );
            for i in 0..n {
                if text.is_null(i) {
                    out.append_null();
                } else if decimal {
                    out.append_value(decimal_scientific(text.value(i), post));
                } else {
                    out.append_value(float_scientific(floats.value(i), post));
                }
            }
        }
        t if t.is_numeric() => {
            let (pieces, fm) =
                numeric_template(template).map_err(DataFusionError::NotImplemented)?;
            let text = match t {
                DataType::Float32 | DataType::Float64 => {
                    // PostgreSQL rounds a float to 15 significant digits first.
                    let f = datafusion::arrow::compute::cast(&input, &DataType::Float64)?;
                    let f = f.as_primitive::<Float64Type>();
                    let mut b = StringBuilder::with_capacity(n, n * 16);
                    for i in 0..f.len() {
                        if f.is_null(i) {
                            b.append_null();
                        } else {
                            b.append_value(float_text(f.value(i)));
                        }
                    }
                    Arc::new(b.finish()) as ArrayRef
                }
                _ => datafusion::arrow::compute::cast(&input, &DataType::Utf8)?,
            };
            let text = text.as_string::<i32>();
            for i in 0..text.len() {
                if text.is_null(i) {
                    out.append_null();
                } else {
                    out.append_value(format_number(text.value(i), &pieces, fm));
                }
            }
        }
        DataType::Interval(_) => {
            let pieces = pieces(template);
            let spans = datafusion::arrow::compute::cast(
                &input,
                &DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
            )?;
            let spans =
                spans.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
            for v in spans.iter() {
                match v {
                    Some(v) => {
                        out.append_value(format_interval(v.months, v.days, v.nanoseconds, &pieces)?)
                    }
                    None => out.append_null(),
                }
            }
        }
        _ => {
            let pieces = pieces(template);
            // A date is formatted as PostgreSQL's to_char(timestamptz), in the
            // session's time zone (UTC).
            let offset = matches!(
                input.data_type(),
                DataType::Timestamp(_, Some(_)) | DataType::Date32 | DataType::Date64
            )
            .then_some(0);
            let micros = datafusion::arrow::compute::cast(
                &input,
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )?;
            let micros = micros.as_primitive::<TimestampMicrosecondType>();
            for i in 0..micros.len() {
                if micros.is_null(i) {
                    out.append_null();
                    continue;
                }
                let Some(dt) = chrono::DateTime::from_timestamp_micros(micros.value(i)) else {
                    return exec_err!("timestamp out of range");
                };
                out.append_value(format_datetime(dt.naive_utc(), offset, &pieces)?);
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// A float's digits as PostgreSQL's `to_char(float8)` reads them: 15
/// significant digits.
fn float_text(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let digits = 15 - 1 - v.abs().log10().floor() as i32;
    format!("{:.*}", digits.clamp(0, 30) as usize, v)
}

/// `to_date(text, template)` and `to_timestamp(text, template)`;
/// `to_timestamp(seconds)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Parse {
    signature: Signature,
    timestamp: bool,
}

impl ScalarUDFImpl for Parse {
    fn name(&self) -> &str {
        if self.timestamp {
            "to_timestamp"
        } else {
            "to_date"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let fits = match args {
            [t] => self.timestamp && (t.is_numeric() || *t == DataType::Null),
            [_, _] => true,
            _ => false,
        };
        if !fits {
            let names: Vec<String> = args
                .iter()
                .map(|t| super::PgType::from_arrow(t).name)
                .collect();
            return plan_err!(
                "function {}({}) does not exist",
                self.name(),
                names.join(", ")
            );
        }
        Ok(if self.timestamp {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        } else {
            DataType::Date32
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() == 1 {
            if !self.timestamp || !args.args[0].data_type().is_numeric() {
                return plan_err!("{} needs a template", self.name());
            }
            return make_scalar_function(|a: &[ArrayRef]| from_seconds(&a[0]), vec![])(&args.args);
        }
        let Some(template) = template_of(&args.args[1])? else {
            let t = if self.timestamp {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            } else {
                DataType::Date32
            };
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(&t)?));
        };
        make_scalar_function(|a: &[ArrayRef]| self.parse(&a[0], &template), vec![])(&args.args[..1])
    }
}

/// `to_timestamp(seconds)`: seconds since the epoch, with their fraction.
fn from_seconds(input: &ArrayRef) -> Result<ArrayRef> {
    let n = input.len();
    let f = datafusion::arrow::compute::cast(&input, &DataType::Float64)?;
    let f = f.as_primitive::<Float64Type>();
    let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    for i in 0..f.len() {
        if f.is_null(i) {
            b.append_null();
            continue;
        }
        let micros = (f.value(i) * 1e6).round();
        if !micros.is_finite() || micros.abs() > 9.2e18 {
            return exec_err!("timestamp out of range: \"{}\"", f.value(i));
        }
        b.append_value(micros as i64);
    }
    Ok(Arc::new(b.finish()))
}

impl Parse {
    /// Each text of `input` read by `template`.
    fn parse(&self, input: &ArrayRef, template: &str) -> Result<ArrayRef> {
        let n = input.len();
        let fmt = input_format(template).map_err(input_error)?;
        let text = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let read = |i: usize| -> Result<Option<NaiveDateTime>> {
            if text.is_null(i) {
                return Ok(None);
            }
            read_datetime(text.value(i), &fmt, template)
                .map(Some)
                .map_err(input_error)
        };
        let array: ArrayRef = if self.timestamp {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
            for i in 0..text.len() {
                b.append_option(read(i)?.map(|dt| dt.and_utc().timestamp_micros()));
            }
            Arc::new(b.finish())
        } else {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
            let mut b = Date32Builder::with_capacity(n);
            for i in 0..text.len() {
                b.append_option(read(i)?.map(|dt| (dt.date() - epoch).num_days() as i32));
            }
            Arc::new(b.finish())
        };
        Ok(array)
    }
}

/// `format(formatstr, arg, ...)`, PostgreSQL's: `%s` (the argument's
/// text, an empty string for NULL), `%I` (quoted as an identifier when it
/// must be), `%L` (quoted as a literal, `NULL` for NULL) and `%%`, each
/// with an optional argument position (`%2$s`), a `-` flag and a width
/// (`%-10s`, `%*s`, `%*1$s`). The arguments arrive as text: the parser
/// wraps them in [`super::text::OUTPUT_TEXT`]
/// (`frontend::compat::format_arguments`), so each shows as PostgreSQL's
/// output function prints it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Format {
    signature: Signature,
}

impl ScalarUDFImpl for Format {
    fn name(&self) -> &str {
        "format"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = args
            .args
            .iter()
            .map(|a| {
                let a = a.to_array(rows)?;
                Ok(datafusion::arrow::compute::cast(&a, &DataType::Utf8)?)
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let Some((template, values)) = arrays.split_first() else {
            return plan_err!("format needs a format string");
        };
        let template = template.as_string::<i32>();
        let values: Vec<_> = values.iter().map(|a| a.as_string::<i32>()).collect();
        let mut out = StringBuilder::new();
        for row in 0..template.len() {
            if template.is_null(row) {
                out.append_null();
                continue;
            }
            let args: Vec<Option<&str>> = values
                .iter()
                .map(|v| (!v.is_null(row)).then(|| v.value(row)))
                .collect();
            out.append_value(format_pg(template.value(row), &args)?);
        }
        let array: ArrayRef = Arc::new(out.finish());
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    }
}

/// The widest field `format` pads to: a width from a value must not make
/// one call allocate without bound.
const MAX_WIDTH: usize = 10 * 1024 * 1024;

/// PostgreSQL's `format` over text arguments (None is NULL).
fn format_pg(template: &str, args: &[Option<&str>]) -> Result<String> {
    let invalid = |what: &str| {
        DataFusionError::from(crate::error::Error::new(
            crate::error::ErrorKind::InvalidParameter,
            what.to_string(),
        ))
    };
    let too_few = || invalid("too few arguments for format()");
    let chars: Vec<char> = template.chars().collect();
    let mut out = String::new();
    let mut next = 0usize;
    let mut i = 0usize;
    // A number at `i`, and the position after it.
    let number = |i: usize| -> (Option<usize>, usize) {
        let mut j = i;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        let n = chars[i..j].iter().collect::<String>().parse().ok();
        (n, j)
    };
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        if i >= chars.len() {
            return Err(invalid("unterminated format() type specifier"));
        }
        if chars[i] == '%' {
            out.push('%');
            i += 1;
            continue;
        }
        // [position$][flags][width]type
        let mut position = None;
        let (n, j) = number(i);
        if n.is_some() && chars.get(j) == Some(&'$') {
            position = n;
            i = j + 1;
        }
        let mut left = false;
        while chars.get(i) == Some(&'-') {
            left = true;
            i += 1;
        }
        let mut width: Option<i64> = None;
        if chars.get(i) == Some(&'*') {
            i += 1;
            let (n, j) = number(i);
            let at = match n {
                Some(0) if chars.get(j) == Some(&'$') => {
                    return Err(invalid(
                        "format specifies argument 0, but arguments are numbered from 1",
                    ));
                }
                Some(n) if chars.get(j) == Some(&'$') => {
                    i = j + 1;
                    n - 1
                }
                _ => {
                    next += 1;
                    next - 1
                }
            };
            let w = args.get(at).ok_or_else(too_few)?;
            width = match w {
                Some(w) => Some(
                    w.trim()
                        .parse::<i64>()
                        .map_err(|_| invalid("width argument of format() is not an integer"))?,
                ),
                None => None,
            };
        } else {
            let (n, j) = number(i);
            if let Some(n) = n {
                width = Some(n as i64);
                i = j;
            }
        }
        let Some(&kind) = chars.get(i) else {
            return Err(invalid("unterminated format() type specifier"));
        };
        i += 1;
        let at = match position {
            Some(0) => {
                return Err(invalid(
                    "format specifies argument 0, but arguments are numbered from 1",
                ));
            }
            Some(p) => {
                next = p;
                p - 1
            }
            None => {
                next += 1;
                next - 1
            }
        };
        let value = *args.get(at).ok_or_else(too_few)?;
        let text = match kind {
            's' => value.unwrap_or("").to_string(),
            'I' => match value {
                Some(v) => crate::types::ident::quote_ident_if_needed(v),
                None => {
                    return Err(DataFusionError::from(crate::error::Error::new(
                        crate::error::ErrorKind::NullValueNotAllowed,
                        "null values cannot be formatted as an SQL identifier",
                    )));
                }
            },
            'L' => match value {
                Some(v) => quote_literal(v),
                None => "NULL".to_string(),
            },
            other => {
                return Err(invalid(&format!(
                    "unrecognized format() type specifier \"{other}\""
                )));
            }
        };
        // A negative width left-justifies, as the `-` flag does.
        let (left, width) = match width {
            Some(w) if w < 0 => (true, w.unsigned_abs() as usize),
            Some(w) => (left, w as usize),
            None => (left, 0),
        };
        if width > MAX_WIDTH {
            return Err(DataFusionError::from(crate::error::Error::new(
                crate::error::ErrorKind::InvalidParameter,
                format!("format() width {width} is over the limit of {MAX_WIDTH}"),
            )));
        }
        let pad = width.saturating_sub(text.chars().count());
        if left {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
    }
    Ok(out)
}

/// PostgreSQL's `quote_literal` of a text: single quotes doubled, and an
/// `E''` string when it holds a backslash.
fn quote_literal(v: &str) -> String {
    let body = v.replace('\'', "''");
    if v.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

/// `quote_literal(text)` and `quote_nullable(text)`: the text as a string
/// literal (`'it''s'`, `E'a\\b'`); NULL stays NULL, or is the word `NULL`
/// for `quote_nullable`. The parser casts any other argument to text, as
/// PostgreSQL's `quote_literal(anyelement)` does.
#[derive(Debug, PartialEq, Eq, Hash)]
struct QuoteLiteral {
    signature: Signature,
    nullable: bool,
}

impl ScalarUDFImpl for QuoteLiteral {
    fn name(&self) -> &str {
        if self.nullable {
            "quote_nullable"
        } else {
            "quote_literal"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let nullable = self.nullable;
        make_scalar_function(
            move |args: &[ArrayRef]| {
                let text = datafusion::arrow::compute::cast(&args[0], &DataType::Utf8)?;
                let out: datafusion::arrow::array::StringArray = text
                    .as_string::<i32>()
                    .iter()
                    .map(|v| match v {
                        Some(v) => Some(quote_literal(v)),
                        None => nullable.then(|| "NULL".to_string()),
                    })
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            },
            vec![],
        )(&args.args)
    }
}

/// Register `to_char`, `to_date` and `to_timestamp` in place of
/// DataFusion's functions of those names, `format`, and the output text
/// function its arguments go through.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Format {
        signature: Signature::variadic_any(Volatility::Stable),
    }));
    ctx.register_udf(super::text::output_text_udf());
    ctx.register_udf(super::text::array_to_string_udf());
    for nullable in [false, true] {
        ctx.register_udf(ScalarUDF::new_from_impl(QuoteLiteral {
            signature: Signature::any(1, Volatility::Immutable),
            nullable,
        }));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(ToChar {
        signature: Signature::any(2, Volatility::Immutable),
    }));
    for timestamp in [false, true] {
        ctx.register_udf(ScalarUDF::new_from_impl(Parse {
            signature: Signature::variadic_any(Volatility::Immutable),
            timestamp,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    fn char_of(s: &str, t: &str) -> String {
        format_datetime(at(s), None, &pieces(t)).unwrap()
    }

    fn num(v: &str, t: &str) -> String {
        let (p, fm) = numeric_template(t).unwrap();
        format_number(v, &p, fm)
    }

    #[test]
    fn format_like_postgres() {
        let f = |t: &str, a: &[Option<&str>]| format_pg(t, a).unwrap();
        assert_eq!(f("Hello %s, %s", &[Some("World"), None]), "Hello World, ");
        assert_eq!(
            f("%I.%I", &[Some("My Schema"), Some("t")]),
            "\"My Schema\".t"
        );
        assert_eq!(f("v = %L", &[Some("O'Reilly")]), "v = 'O''Reilly'");
        assert_eq!(f("%L", &[None]), "NULL");
        assert_eq!(f("%L", &[Some("a\\b")]), "E'a\\\\b'");
        assert_eq!(
            f("%2$s %1$s %s", &[Some("a"), Some("b"), Some("c")]),
            "b a b"
        );
        assert_eq!(
            f("|%10s|%-4s|", &[Some("x"), Some("y")]),
            "|         x|y   |"
        );
        assert_eq!(f("|%*s|", &[Some("3"), Some("x")]), "|  x|");
        assert_eq!(f("|%*s|", &[Some("-3"), Some("x")]), "|x  |");
        assert_eq!(f("100%%", &[]), "100%");
        assert!(format_pg("%s %s", &[Some("a")]).is_err());
        assert!(format_pg("%x", &[Some("a")]).is_err());
        assert!(format_pg("%I", &[None]).is_err());
        assert!(format_pg("50%", &[]).is_err());
        assert!(format_pg("%*0$s", &[Some("1"), Some("a")]).is_err());
        assert!(format_pg("%0$s", &[Some("a")]).is_err());
        assert!(format_pg("%*s", &[Some("2000000000"), Some("a")]).is_err());
    }

    #[test]
    fn datetime_templates() {
        let t = "2024-03-05 14:07:09.5";
        assert_eq!(char_of(t, "YYYY-MM-DD HH24:MI:SS"), "2024-03-05 14:07:09");
        assert_eq!(char_of(t, "DD Mon YYYY"), "05 Mar 2024");
        assert_eq!(char_of(t, "Month"), "March    ");
        assert_eq!(char_of(t, "FMMonth FMDDth, YYYY"), "March 5th, 2024");
        assert_eq!(char_of(t, "HH12:MI AM"), "02:07 PM");
        assert_eq!(char_of(t, "Dy DAY d"), "Tue TUESDAY   3");
        assert_eq!(char_of(t, "MS US"), "500 500000");
        assert_eq!(char_of(t, "\"Q\"Q YYYY\"-W\"IW"), "Q1 2024-W10");
        assert_eq!(char_of(t, "DDD J"), "065 2460375");
    }

    #[test]
    fn interval_templates() {
        let span = |m, d, micros: i64, t| format_interval(m, d, micros * 1000, &pieces(t)).unwrap();
        let time = (27 * 3600 + 4 * 60 + 5) * 1_000_000 + 678_000;
        assert_eq!(
            span(14, 3, time, "YYYY MM DD HH24 HH12 HH MI SS MS US SSSS AM"),
            "0001 02 03 27 03 03 04 05 678 678000 97445 AM"
        );
        assert_eq!(
            span(0, -1, -(2 * 3600 + 30 * 60) * 1_000_000, "DD HH24:MI:SS"),
            "-1 -02:-30:00"
        );
        assert_eq!(span(0, 0, 0, "HH12"), "12");
        assert_eq!(
            span(0, 0, 30 * 3_600_000_000, "HH24 FMHH24 DDD"),
            "30 30 000"
        );
        assert_eq!(span(14, 3, 0, "DDD"), "423");
        assert_eq!(span(0, 0, -3 * 3_600_000_000, "AM"), "AM");
        assert_eq!(span(0, 0, 15 * 3_600_000_000, "HH12 PM"), "03 PM");
    }

    #[test]
    fn datetime_input() {
        assert_eq!(
            parse_datetime("04/07/2026", "DD/MM/YYYY").unwrap(),
            at("2026-07-04 00:00:00")
        );
        assert_eq!(
            parse_datetime("2024-03-05 14:07", "YYYY-MM-DD HH24:MI").unwrap(),
            at("2024-03-05 14:07:00")
        );
        assert_eq!(
            parse_datetime("2024", "YYYY").unwrap(),
            at("2024-01-01 00:00:00")
        );
        assert!(parse_datetime("31/02/2024", "DD/MM/YYYY").is_err());
    }

    #[test]
    fn numeric_templates() {
        assert_eq!(num("1234.5", "FM9999.00"), "1234.50");
        assert_eq!(num("1234.5", "9999.99"), " 1234.50");
        assert_eq!(num("1234.5", "FM9999.99"), "1234.5");
        assert_eq!(num("-5", "999"), "  -5");
        assert_eq!(num("5", "999"), "   5");
        assert_eq!(num("0.5", "999.99"), "    .50");
        assert_eq!(num("5", "0999"), " 0005");
        assert_eq!(num("1234567.891", "9,999,999.99"), " 1,234,567.89");
        assert_eq!(num("12345", "999"), " ###");
        assert_eq!(num("-12.5", "S999.9"), " -12.5");
        assert_eq!(num("-12", "MI9999"), "-  12");
        assert_eq!(num("12.5", "999.9MI"), " 12.5 ");
        assert_eq!(num("0.995", "FM990.00"), "1.00");
        assert_eq!(num("5", "FM9.999"), "5.");
        assert_eq!(num("0", "999"), "   0");
        // Not ASCII: copied, and refused patterns name themselves.
        assert_eq!(num("5", "9 €"), " 5 €");
        assert!(numeric_template("é EEEE").is_err());
    }

    /// PostgreSQL 15's answers.
    #[test]
    fn scientific_notation_is_postgres() {
        let post = |t: &str| scientific_template(t).unwrap();
        assert_eq!(decimal_scientific("1234.5", post("9.99EEEE")), " 1.23e+03");
        assert_eq!(decimal_scientific("-0.000123", post("9.9EEEE")), "-1.2e-04");
        assert_eq!(decimal_scientific("0", post("9.99EEEE")), " 0.00e+00");
        assert_eq!(decimal_scientific("12345", post("99.9EEEE")), " 1.2e+04");
        assert_eq!(decimal_scientific("9.99", post("9.9EEEE")), " 10.0e+00");
        assert_eq!(float_scientific(5.0, post("9EEEE")), " 5e+00");
        assert_eq!(float_scientific(1e100, post("9.9EEEE")), " 1.0e+100");
        assert_eq!(float_scientific(123.0, post("9.9EEEE")), " 1.2e+02");
        assert!(scientific_template("FM9.999EEEE").is_err());
    }
}
