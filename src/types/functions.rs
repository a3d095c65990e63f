//! PostgreSQL functions DataFusion does not have: `age`, `justify_days`,
//! `justify_hours`, `justify_interval`, `make_timestamp`, `isfinite`,
//! `num_nulls`, `num_nonnulls`, `div`, `regexp_split_to_array`, and the
//! other names PostgreSQL gives to functions DataFusion has (`sign`,
//! `every`, `variance`).

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Int32Array, IntervalMonthDayNanoArray,
    ListBuilder, StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, IntervalMonthDayNano, IntervalMonthDayNanoType, TimeUnit,
    TimestampMicrosecondType,
};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::error::{Error, ErrorKind};

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn ours(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Function {
    Age,
    JustifyDays,
    JustifyHours,
    JustifyInterval,
    MakeTimestamp,
    IsFinite,
    NumNulls,
    NumNonNulls,
    Div,
    RegexpSplitToArray,
}

impl Function {
    const ALL: [Function; 10] = [
        Function::Age,
        Function::JustifyDays,
        Function::JustifyHours,
        Function::JustifyInterval,
        Function::MakeTimestamp,
        Function::IsFinite,
        Function::NumNulls,
        Function::NumNonNulls,
        Function::Div,
        Function::RegexpSplitToArray,
    ];

    fn name(self) -> &'static str {
        match self {
            Function::Age => "age",
            Function::JustifyDays => "justify_days",
            Function::JustifyHours => "justify_hours",
            Function::JustifyInterval => "justify_interval",
            Function::MakeTimestamp => "make_timestamp",
            Function::IsFinite => "isfinite",
            Function::NumNulls => "num_nulls",
            Function::NumNonNulls => "num_nonnulls",
            Function::Div => "div",
            Function::RegexpSplitToArray => "regexp_split_to_array",
        }
    }

    fn signature(self) -> Signature {
        let volatility = if self == Function::Age {
            // age(ts) reads the current date.
            Volatility::Stable
        } else {
            Volatility::Immutable
        };
        match self {
            Function::Age
            | Function::NumNulls
            | Function::NumNonNulls
            | Function::RegexpSplitToArray
            | Function::MakeTimestamp => Signature::variadic_any(volatility),
            Function::Div => Signature::any(2, volatility),
            _ => Signature::any(1, volatility),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Pg {
    function: Function,
    signature: Signature,
}

impl ScalarUDFImpl for Pg {
    fn name(&self) -> &str {
        self.function.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        datafusion::common::internal_err!("return_field_from_args is used")
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<&DataType> = args.arg_fields.iter().map(|f| f.data_type()).collect();
        let arity = |range: std::ops::RangeInclusive<usize>| {
            if range.contains(&types.len()) {
                Ok(())
            } else {
                Err(ours(Error::new(
                    ErrorKind::UndefinedFunction,
                    format!(
                        "function {}() does not take {} arguments",
                        self.function.name(),
                        types.len()
                    ),
                )))
            }
        };
        let t = match self.function {
            Function::Age => {
                arity(1..=2)?;
                DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano)
            }
            Function::JustifyDays | Function::JustifyHours | Function::JustifyInterval => {
                DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano)
            }
            Function::MakeTimestamp => {
                arity(6..=6)?;
                DataType::Timestamp(TimeUnit::Microsecond, None)
            }
            Function::IsFinite => DataType::Boolean,
            Function::NumNulls | Function::NumNonNulls => DataType::Int32,
            Function::Div => DataType::Decimal128(38, 0),
            Function::RegexpSplitToArray => {
                arity(2..=3)?;
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
            }
        };
        Ok(Arc::new(Field::new(self.function.name(), t, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let function = self.function;
        let rows = args.number_rows;
        if matches!(function, Function::NumNulls | Function::NumNonNulls) {
            let arrays = args
                .args
                .iter()
                .map(|a| a.to_array(rows))
                .collect::<Result<Vec<_>>>()?;
            // Logical: an untyped NULL is a column without a null mask.
            let masks: Vec<_> = arrays.iter().map(|a| a.logical_nulls()).collect();
            let counts: Int32Array = (0..rows)
                .map(|r| {
                    let nulls = masks
                        .iter()
                        .filter(|m| m.as_ref().is_some_and(|m| m.is_null(r)))
                        .count() as i32;
                    Some(if function == Function::NumNulls {
                        nulls
                    } else {
                        arrays.len() as i32 - nulls
                    })
                })
                .collect();
            let scalar = args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)));
            return Ok(if scalar {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&counts, 0)?)
            } else {
                ColumnarValue::Array(Arc::new(counts))
            });
        }
        if function == Function::Age && args.args.len() == 1 {
            let today = chrono::Utc::now().date_naive().and_hms_opt(0, 0, 0);
            let micros = today.map(|t| t.and_utc().timestamp_micros());
            let now = ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(micros, None));
            return make_scalar_function(move |a: &[ArrayRef]| apply(function, a), vec![])(&[
                now,
                args.args[0].clone(),
            ]);
        }
        make_scalar_function(move |a: &[ArrayRef]| apply(function, a), vec![])(&args.args)
    }
}

fn apply(function: Function, args: &[ArrayRef]) -> Result<ArrayRef> {
    Ok(match function {
        Function::Age => {
            let a = timestamps(&args[0])?;
            let b = timestamps(&args[1])?;
            let out: IntervalMonthDayNanoArray = a
                .iter()
                .zip(b.iter())
                .map(|(a, b)| Some(age(datetime(a?)?, datetime(b?)?)))
                .collect();
            Arc::new(out)
        }
        Function::JustifyDays | Function::JustifyHours | Function::JustifyInterval => {
            let spans = datafusion::arrow::compute::cast(
                &args[0],
                &DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
            )?;
            let spans = spans.as_primitive::<IntervalMonthDayNanoType>();
            Arc::new(
                spans.unary::<_, IntervalMonthDayNanoType>(|v| match function {
                    Function::JustifyDays => justify_days(v),
                    Function::JustifyHours => justify_hours(v),
                    _ => justify_interval(v),
                }),
            )
        }
        Function::MakeTimestamp => {
            let ints = args[..5]
                .iter()
                .map(|a| datafusion::arrow::compute::cast(a, &DataType::Int32))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let ints: Vec<&Int32Array> = ints.iter().map(|a| a.as_primitive()).collect();
            let secs = datafusion::arrow::compute::cast(&args[5], &DataType::Float64)?;
            let secs = secs.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            let mut out = Vec::with_capacity(secs.len());
            for r in 0..secs.len() {
                if secs.is_null(r) || ints.iter().any(|a| a.is_null(r)) {
                    out.push(None);
                    continue;
                }
                let f: Vec<i32> = ints.iter().map(|a| a.value(r)).collect();
                out.push(Some(make_timestamp(&f, secs.value(r))?));
            }
            Arc::new(TimestampMicrosecondArray::from(out))
        }
        Function::IsFinite => {
            let a = &args[0];
            let nulls = a.logical_nulls();
            Arc::new(BooleanArray::from_iter((0..a.len()).map(|i| {
                (!nulls.as_ref().is_some_and(|n| n.is_null(i))).then_some(true)
            })))
        }
        Function::Div => div(&args[0], &args[1])?,
        Function::RegexpSplitToArray => split(args)?,
        Function::NumNulls | Function::NumNonNulls => unreachable!("counted above"),
    })
}

/// A date, timestamp or timestamptz column as microseconds since the epoch
/// (a timestamptz in UTC, the session's time zone).
fn timestamps(a: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    let naive = match a.data_type() {
        DataType::Timestamp(_, Some(_)) => datafusion::arrow::compute::cast(
            a,
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )?,
        _ => a.clone(),
    };
    let micros = datafusion::arrow::compute::cast(
        &naive,
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    Ok(micros.as_primitive::<TimestampMicrosecondType>().clone())
}

fn datetime(micros: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

fn days_in_month(year: i32, month: u32) -> i64 {
    let first = NaiveDate::from_ymd_opt(year, month, 1);
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    match (first, next) {
        (Some(a), Some(b)) => (b - a).num_days(),
        _ => 30,
    }
}

/// PostgreSQL's `age(a, b)`: the difference of the fields (years, months,
/// days, time), each negative field borrowing from the next larger one, a
/// day borrowing the length of the month of the earlier date.
fn age(a: NaiveDateTime, b: NaiveDateTime) -> IntervalMonthDayNano {
    let flip = a < b;
    let (hi, lo) = if flip { (b, a) } else { (a, b) };
    let mut micros = i64::from(hi.nanosecond() / 1000) - i64::from(lo.nanosecond() / 1000);
    let mut sec = i64::from(hi.second()) - i64::from(lo.second());
    let mut min = i64::from(hi.minute()) - i64::from(lo.minute());
    let mut hour = i64::from(hi.hour()) - i64::from(lo.hour());
    let mut day = i64::from(hi.day()) - i64::from(lo.day());
    let mut month = i64::from(hi.month()) - i64::from(lo.month());
    let mut year = i64::from(hi.year()) - i64::from(lo.year());
    while micros < 0 {
        micros += 1_000_000;
        sec -= 1;
    }
    while sec < 0 {
        sec += 60;
        min -= 1;
    }
    while min < 0 {
        min += 60;
        hour -= 1;
    }
    while hour < 0 {
        hour += 24;
        day -= 1;
    }
    // A day borrows the length of the earlier timestamp's month.
    while day < 0 {
        day += days_in_month(lo.year(), lo.month());
        month -= 1;
    }
    while month < 0 {
        month += 12;
        year -= 1;
    }
    let sign = if flip { -1 } else { 1 };
    let nanos = (((hour * 60 + min) * 60 + sec) * 1_000_000 + micros) * 1000;
    IntervalMonthDayNano::new(
        (sign * (year * 12 + month)) as i32,
        (sign * day) as i32,
        sign * nanos,
    )
}

fn justify_days(v: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let (mut months, mut days) = (v.months, v.days);
    let whole = days / 30;
    days -= whole * 30;
    months += whole;
    if months > 0 && days < 0 {
        days += 30;
        months -= 1;
    } else if months < 0 && days > 0 {
        days -= 30;
        months += 1;
    }
    IntervalMonthDayNano::new(months, days, v.nanoseconds)
}

fn justify_hours(v: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let (mut days, mut nanos) = (v.days, v.nanoseconds);
    let whole = nanos / NANOS_PER_DAY;
    nanos -= whole * NANOS_PER_DAY;
    days += whole as i32;
    if days > 0 && nanos < 0 {
        nanos += NANOS_PER_DAY;
        days -= 1;
    } else if days < 0 && nanos > 0 {
        nanos -= NANOS_PER_DAY;
        days += 1;
    }
    IntervalMonthDayNano::new(v.months, days, nanos)
}

fn justify_interval(v: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let (mut months, mut days, mut nanos) = (v.months, v.days, v.nanoseconds);
    let whole_days = nanos / NANOS_PER_DAY;
    nanos -= whole_days * NANOS_PER_DAY;
    days += whole_days as i32;
    let whole_months = days / 30;
    days -= whole_months * 30;
    months += whole_months;
    if months > 0 && (days < 0 || (days == 0 && nanos < 0)) {
        days += 30;
        months -= 1;
    } else if months < 0 && (days > 0 || (days == 0 && nanos > 0)) {
        days -= 30;
        months += 1;
    }
    if days > 0 && nanos < 0 {
        nanos += NANOS_PER_DAY;
        days -= 1;
    } else if days < 0 && nanos > 0 {
        nanos -= NANOS_PER_DAY;
        days += 1;
    }
    IntervalMonthDayNano::new(months, days, nanos)
}

/// `make_timestamp(year, month, day, hour, min, sec)` in microseconds.
fn make_timestamp(f: &[i32], sec: f64) -> Result<i64> {
    let date = NaiveDate::from_ymd_opt(f[0], f[1] as u32, f[2] as u32).ok_or_else(|| {
        ours(Error::new(
            ErrorKind::DatetimeOverflow,
            format!(
                "date field value out of range: {}-{:02}-{:02}",
                f[0], f[1], f[2]
            ),
        ))
    })?;
    let micros = (sec * 1e6).round() as i64;
    if !(0..=23).contains(&f[3]) || !(0..=59).contains(&f[4]) || !(0..60_000_000).contains(&micros)
    {
        return Err(ours(Error::new(
            ErrorKind::DatetimeOverflow,
            format!(
                "time field value out of range: {}:{:02}:{:02}",
                f[3], f[4], sec
            ),
        )));
    }
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc().timestamp_micros())
        .unwrap_or_default();
    Ok(midnight + (i64::from(f[3]) * 60 + i64::from(f[4])) * 60_000_000 + micros)
}

/// `div(a, b)`: the integer quotient of two numbers, truncated toward zero,
/// as a numeric.
fn div(a: &ArrayRef, b: &ArrayRef) -> Result<ArrayRef> {
    let scale = |t: &DataType| match t {
        DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => (*s).max(0),
        t if t.is_floating() => 10,
        _ => 0,
    };
    let s = scale(a.data_type()).max(scale(b.data_type()));
    let as_decimal = |x: &ArrayRef| -> Result<Decimal128Array> {
        let d = datafusion::arrow::compute::cast(x, &DataType::Decimal128(38, s))?;
        Ok(
            d.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>()
                .clone(),
        )
    };
    let (a, b) = (as_decimal(a)?, as_decimal(b)?);
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        if a.is_null(i) || b.is_null(i) {
            out.push(None);
            continue;
        }
        if b.value(i) == 0 {
            return Err(ours(Error::new(
                ErrorKind::DivisionByZero,
                "division by zero",
            )));
        }
        out.push(Some(a.value(i) / b.value(i)));
    }
    Ok(Arc::new(
        Decimal128Array::from(out).with_precision_and_scale(38, 0)?,
    ))
}

/// `regexp_split_to_array(text, pattern [, flags])`: the pieces between
/// the matches. A match of no characters at the start or end of the text,
/// or right after another match, splits nothing, as in PostgreSQL.
fn split(args: &[ArrayRef]) -> Result<ArrayRef> {
    let text = |a: &ArrayRef| datafusion::arrow::compute::cast(a, &DataType::Utf8);
    let strings = text(&args[0])?;
    let patterns = text(&args[1])?;
    let flags = args.get(2).map(text).transpose()?;
    let (strings, patterns) = (strings.as_string::<i32>(), patterns.as_string::<i32>());
    let flags = flags.as_ref().map(|f| f.as_string::<i32>());
    let mut out = ListBuilder::new(StringBuilder::new());
    let mut compiled: Option<(String, regex::Regex)> = None;
    for r in 0..strings.len() {
        if strings.is_null(r) || patterns.is_null(r) || flags.is_some_and(|f| f.is_null(r)) {
            out.append_null();
            continue;
        }
        let mut pattern = String::new();
        if let Some(f) = flags {
            for c in f.value(r).chars() {
                match c {
                    'i' => pattern.push_str("(?i)"),
                    'c' => {}
                    'n' | 'm' => pattern.push_str("(?m)"),
                    's' => pattern.push_str("(?s)"),
                    'x' => pattern.push_str("(?x)"),
                    other => {
                        return Err(ours(Error::new(
                            ErrorKind::InvalidParameter,
                            format!("invalid regular expression option: \"{other}\""),
                        )));
                    }
                }
            }
        }
        pattern.push_str(patterns.value(r));
        if compiled.as_ref().is_none_or(|(p, _)| *p != pattern) {
            let re = regex::Regex::new(&pattern).map_err(|e| {
                ours(Error::new(
                    ErrorKind::InvalidRegularExpression,
                    format!("invalid regular expression: {e}"),
                ))
            })?;
            compiled = Some((pattern, re));
        }
        let Some((_, re)) = compiled.as_ref() else {
            return exec_err!("regexp_split_to_array: no pattern");
        };
        let s = strings.value(r);
        let mut start = 0;
        let mut last_end = None;
        for m in re.find_iter(s) {
            if m.start() == m.end()
                && (m.start() == 0 || m.start() == s.len() || Some(m.start()) == last_end)
            {
                continue;
            }
            out.values().append_value(&s[start..m.start()]);
            start = m.end();
            last_end = Some(m.end());
        }
        out.values().append_value(&s[start..]);
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

/// Register the functions of this module, and PostgreSQL's names for
/// DataFusion's `signum`, `bool_and` and `var_samp`.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    for function in Function::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(Pg {
            function,
            signature: function.signature(),
        }));
    }
    ctx.register_udf(
        datafusion::functions::math::signum()
            .as_ref()
            .clone()
            .with_aliases(["sign"]),
    );
    ctx.register_udaf(
        datafusion::functions_aggregate::bool_and_or::bool_and_udaf()
            .as_ref()
            .clone()
            .with_aliases(["every"]),
    );
    ctx.register_udaf(
        datafusion::functions_aggregate::variance::var_samp_udaf()
            .as_ref()
            .clone()
            .with_aliases(["variance"]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn age_borrows_as_postgres_does() {
        // SELECT age('2024-02-29', '2023-01-15'): 1 year 1 mon 14 days
        assert_eq!(
            age(at("2024-02-29 00:00:00"), at("2023-01-15 00:00:00")),
            IntervalMonthDayNano::new(13, 14, 0)
        );
        // age('2024-03-01', '2024-01-31'): 1 mon 1 day
        assert_eq!(
            age(at("2024-03-01 00:00:00"), at("2024-01-31 00:00:00")),
            IntervalMonthDayNano::new(1, 1, 0)
        );
        // age('2024-01-31', '2024-03-01'): -1 mons -1 days
        assert_eq!(
            age(at("2024-01-31 00:00:00"), at("2024-03-01 00:00:00")),
            IntervalMonthDayNano::new(-1, -1, 0)
        );
        // age('2024-01-01 01:00', '2023-12-31 23:00'): 02:00:00
        assert_eq!(
            age(at("2024-01-01 01:00:00"), at("2023-12-31 23:00:00")),
            IntervalMonthDayNano::new(0, 0, 2 * 3_600_000_000_000)
        );
    }

    #[test]
    fn justify_follows_postgres() {
        let h = 3_600_000_000_000i64;
        assert_eq!(
            justify_days(IntervalMonthDayNano::new(0, 35, 0)),
            IntervalMonthDayNano::new(1, 5, 0)
        );
        assert_eq!(
            justify_hours(IntervalMonthDayNano::new(0, 0, 27 * h)),
            IntervalMonthDayNano::new(0, 1, 3 * h)
        );
        assert_eq!(
            justify_interval(IntervalMonthDayNano::new(1, 0, -h)),
            IntervalMonthDayNano::new(0, 29, 23 * h)
        );
        assert_eq!(
            justify_days(IntervalMonthDayNano::new(1, -35, 0)),
            IntervalMonthDayNano::new(0, -5, 0)
        );
    }
}
