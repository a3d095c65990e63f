//! PostgreSQL functions DataFusion does not have: `age`, `justify_days`,
//! `justify_hours`, `justify_interval`, `make_timestamp`, `make_interval`,
//! `isfinite`, `num_nulls`, `num_nonnulls`, `div`, `sign`, `width_bucket`,
//! `regexp_split_to_array`, `regexp_substr`, `scale`, `min_scale`,
//! `trim_scale`, `OVERLAPS`, `pg_sleep`, the list behind the set-returning
//! `regexp_matches`, `every` (DataFusion's `bool_and`) and `variance`
//! (`var_samp`).

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
    RegexpMatches,
    MakeInterval,
    Sign,
    WidthBucket,
    RegexpSubstr,
    Scale,
    MinScale,
    TrimScale,
    Overlaps,
    ToNumber,
}

impl Function {
    const ALL: [Function; 20] = [
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
        Function::RegexpMatches,
        Function::MakeInterval,
        Function::Sign,
        Function::WidthBucket,
        Function::RegexpSubstr,
        Function::Scale,
        Function::MinScale,
        Function::TrimScale,
        Function::Overlaps,
        Function::ToNumber,
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
            Function::RegexpMatches => "sluice_regexp_matches",
            Function::MakeInterval => "make_interval",
            Function::Sign => "sign",
            Function::WidthBucket => "width_bucket",
            Function::RegexpSubstr => "regexp_substr",
            Function::Scale => "scale",
            Function::MinScale => "min_scale",
            Function::TrimScale => "trim_scale",
            Function::Overlaps => OVERLAPS,
            Function::ToNumber => "to_number",
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
            | Function::RegexpMatches
            | Function::MakeTimestamp
            | Function::MakeInterval
            | Function::RegexpSubstr => Signature::variadic_any(volatility),
            Function::Div | Function::ToNumber => Signature::any(2, volatility),
            Function::Overlaps => Signature::any(4, volatility),
            Function::WidthBucket => Signature::any(4, volatility),
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
            Function::Div => {
                // div(numeric, numeric): PostgreSQL has no float form.
                if let Some(t) = types.iter().find(|t| t.is_floating()) {
                    return Err(ours(no_such_function(self.function, &types).with_hint(
                        format!("Cast the {} to numeric.", super::PgType::from_arrow(t).name),
                    )));
                }
                DataType::Decimal128(38, 0)
            }
            Function::MakeInterval => {
                arity(7..=7)?;
                DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano)
            }
            // sign(numeric) is a numeric; of anything else, PostgreSQL
            // picks sign(double precision).
            Function::WidthBucket => DataType::Int32,
            Function::Sign => match types.first() {
                Some(DataType::Decimal128(..) | DataType::Decimal256(..)) => {
                    DataType::Decimal128(1, 0)
                }
                _ => DataType::Float64,
            },
            Function::RegexpSubstr => {
                arity(2..=6)?;
                DataType::Utf8
            }
            Function::Scale | Function::MinScale => {
                numeric_argument(self.function, &types).map(|_| DataType::Int32)?
            }
            Function::TrimScale => numeric_argument(self.function, &types)?,
            Function::Overlaps => DataType::Boolean,
            // Stored at the places its format reads (10 when the format
            // is not a constant).
            Function::ToNumber => {
                let places = match args.scalar_arguments.get(1) {
                    Some(Some(format)) => match format.try_as_str() {
                        Some(Some(f)) => number_format(f).1,
                        _ => 10,
                    },
                    _ => 10,
                };
                DataType::Decimal128(38, places)
            }
            Function::RegexpSplitToArray => {
                arity(2..=3)?;
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
            }
            Function::RegexpMatches => {
                arity(2..=3)?;
                let text_array =
                    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
                DataType::List(Arc::new(Field::new_list_field(text_array, true)))
            }
        };
        Ok(Arc::new(Field::new(self.function.name(), t, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let function = self.function;
        if function == Function::Age && args.args.len() == 1 {
            let today = chrono::Utc::now().date_naive().and_hms_opt(0, 0, 0);
            let micros = today.map(|t| t.and_utc().timestamp_micros());
            let now = ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(micros, None));
            return make_scalar_function(move |a: &[ArrayRef]| apply(function, a), vec![])(&[
                now,
                args.args[0].clone(),
            ]);
        }
        if function == Function::ToNumber {
            let DataType::Decimal128(_, places) = args.return_field.data_type() else {
                return datafusion::common::internal_err!("to_number returns a numeric");
            };
            let places = *places;
            return make_scalar_function(move |a: &[ArrayRef]| to_number(a, places), vec![])(
                &args.args,
            );
        }
        make_scalar_function(move |a: &[ArrayRef]| apply(function, a), vec![])(&args.args)
    }
}

/// The digit positions of a `to_number` format before and after its
/// decimal point (`9G999D99`: 4 and 2).
fn number_format(format: &str) -> (usize, i8) {
    let upper = format.to_uppercase();
    let (int, frac) = match upper.find(['D', '.']) {
        Some(at) => (&upper[..at], &upper[at + 1..]),
        None => (upper.as_str(), ""),
    };
    let digits = |s: &str| s.chars().filter(|c| matches!(c, '9' | '0')).count();
    (digits(int), digits(frac).min(38) as i8)
}

/// `to_number(text, format)`: the number `text` writes as `format` reads
/// it, PostgreSQL's way: each `9` or `0` takes a digit (a blank or a sign
/// before the first), `D` or `.` the decimal point, `G` or `,` a group
/// separator, `S`, `MI`, `PL`, `SG` a sign, `L` or `$` a currency sign,
/// any other character one character; reading stops where the format or
/// the text ends. Stored at `places`.
fn to_number(args: &[ArrayRef], places: i8) -> Result<ArrayRef> {
    use datafusion::arrow::array::Decimal128Array;
    let text = datafusion::arrow::compute::cast(&args[0], &DataType::Utf8)?;
    let format = datafusion::arrow::compute::cast(&args[1], &DataType::Utf8)?;
    let (text, format) = (text.as_string::<i32>(), format.as_string::<i32>());
    let out: Decimal128Array = (0..text.len())
        .map(|i| {
            if text.is_null(i) || format.is_null(i) {
                return Ok(None);
            }
            read_number(text.value(i), format.value(i), places).map(Some)
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out.with_precision_and_scale(38, places)?))
}

/// One value of [`to_number`], unscaled at `places`.
fn read_number(text: &str, format: &str, places: i8) -> Result<i128> {
    let input: Vec<char> = text.trim_start().chars().collect();
    let fmt: Vec<char> = format.to_uppercase().chars().collect();
    let (mut at, mut f) = (0, 0);
    let (mut int, mut frac, mut fraction, mut negative) =
        (String::new(), String::new(), false, false);
    let peek = |at: usize| input.get(at).copied();
    let starts = |f: usize, word: &str| word.chars().zip(f..).all(|(c, i)| fmt.get(i) == Some(&c));
    while f < fmt.len() && at < input.len() {
        if starts(f, "FM")
            || starts(f, "PR")
            || starts(f, "MI")
            || starts(f, "PL")
            || starts(f, "SG")
        {
            if !starts(f, "FM") && !starts(f, "PR") && matches!(peek(at), Some('-' | '+')) {
                negative = peek(at) == Some('-');
                at += 1;
            }
            f += 2;
            continue;
        }
        match fmt[f] {
            '9' | '0' => match peek(at) {
                Some(c) if c.is_ascii_digit() => {
                    if fraction {
                        frac.push(c)
                    } else {
                        int.push(c)
                    }
                    at += 1;
                }
                Some('-' | '+') if int.is_empty() && !fraction => {
                    negative = peek(at) == Some('-');
                    at += 1;
                    continue;
                }
                // Anything else takes the position without a digit.
                Some(_) => at += 1,
                None => {}
            },
            'D' | '.' => {
                if peek(at) == Some('.') {
                    at += 1;
                }
                fraction = true;
            }
            'G' | ',' => {
                if peek(at) == Some(',') {
                    at += 1;
                }
            }
            'S' => {
                if matches!(peek(at), Some('-' | '+')) {
                    negative = peek(at) == Some('-');
                    at += 1;
                }
            }
            'L' | '$' => {
                if peek(at).is_some_and(|c| !c.is_ascii_digit() && !matches!(c, '-' | '+' | '.')) {
                    at += 1;
                }
            }
            _ => at += 1,
        }
        f += 1;
    }
    if int.is_empty() && frac.is_empty() {
        return Err(ours(Error::new(
            ErrorKind::InvalidText,
            "invalid input syntax for type numeric: \" \"",
        )));
    }
    frac.truncate(places.max(0) as usize);
    while frac.len() < places.max(0) as usize {
        frac.push('0');
    }
    let digits = format!("{int}{frac}");
    // A decimal holds 38 digits.
    if digits.trim_start_matches('0').len() > 38 {
        return Err(ours(Error::new(
            ErrorKind::NumericOutOfRange,
            "value overflows numeric format",
        )));
    }
    let value: i128 = digits.trim_start_matches('0').parse().or_else(|_| {
        if digits.chars().all(|c| c == '0') {
            Ok(0)
        } else {
            Err(ours(Error::new(
                ErrorKind::NumericOutOfRange,
                "value overflows numeric format",
            )))
        }
    })?;
    Ok(if negative { -value } else { value })
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
            // Days carried past i32's range are out of range, not wrapped.
            Arc::new(spans.try_unary::<_, IntervalMonthDayNanoType, _>(|v| {
                let carried = i64::from(v.days).abs() + (v.nanoseconds / NANOS_PER_DAY).abs();
                if carried > i64::from(i32::MAX) {
                    return Err(datafusion::arrow::error::ArrowError::ArithmeticOverflow(
                        "interval out of range".into(),
                    ));
                }
                Ok(match function {
                    Function::JustifyDays => justify_days(v),
                    Function::JustifyHours => justify_hours(v),
                    _ => justify_interval(v),
                })
            })?)
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
        Function::RegexpMatches => matches(args)?,
        Function::MakeInterval => make_interval(args)?,
        Function::Sign => sign(&args[0])?,
        Function::WidthBucket => width_bucket(args)?,
        Function::RegexpSubstr => regexp_substr(args)?,
        Function::Scale | Function::MinScale | Function::TrimScale => scales(function, &args[0])?,
        Function::Overlaps => overlaps(args)?,
        Function::ToNumber => to_number(args, 10)?,
        Function::NumNulls | Function::NumNonNulls => {
            // Logical: an untyped NULL is a column without a null mask.
            let masks: Vec<_> = args.iter().map(|a| a.logical_nulls()).collect();
            let rows = args.first().map_or(0, |a| a.len());
            let counts: Int32Array = (0..rows)
                .map(|r| {
                    let nulls = masks
                        .iter()
                        .filter(|m| m.as_ref().is_some_and(|m| m.is_null(r)))
                        .count() as i32;
                    Some(if function == Function::NumNulls {
                        nulls
                    } else {
                        args.len() as i32 - nulls
                    })
                })
                .collect();
            Arc::new(counts)
        }
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
    // A negative field borrows from the next larger one; a day borrows
    // the length of the earlier timestamp's month.
    fn borrow(field: &mut i64, next: &mut i64, size: i64) {
        while *field < 0 {
            *field += size;
            *next -= 1;
        }
    }
    borrow(&mut micros, &mut sec, 1_000_000);
    borrow(&mut sec, &mut min, 60);
    borrow(&mut min, &mut hour, 60);
    borrow(&mut hour, &mut day, 24);
    borrow(&mut day, &mut month, days_in_month(lo.year(), lo.month()));
    borrow(&mut month, &mut year, 12);
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

/// `make_timestamp(year, month, day, hour, min, sec)` in microseconds, as
/// PostgreSQL checks it: a negative year is BC (`-44` is 44 BC), year 0 and
/// impossible dates are `22008`, the time may be `24:00:00` and the
/// seconds 60, and the seconds round to microseconds half to even.
fn make_timestamp(f: &[i32], sec: f64) -> Result<i64> {
    let out_of_range = |what: &str, text: String| {
        ours(Error::new(
            ErrorKind::DatetimeOverflow,
            format!("{what} field value out of range: {text}"),
        ))
    };
    let (year, month, day, hour, min) = (f[0], f[1], f[2], f[3], f[4]);
    let date_text = || format!("{year}-{month:02}-{day:02}");
    // Astronomical numbering, chrono's: 1 BC is year 0.
    let astronomical = match year {
        0 => return Err(out_of_range("date", date_text())),
        y if y < 0 => y + 1,
        y => y,
    };
    let date = u32::try_from(month)
        .ok()
        .zip(u32::try_from(day).ok())
        .and_then(|(m, d)| NaiveDate::from_ymd_opt(astronomical, m, d))
        .ok_or_else(|| out_of_range("date", date_text()))?;
    if hour < 0
        || !(0..=59).contains(&min)
        || !(0.0..=60.0).contains(&sec)
        || hour > 24
        || (hour == 24 && (min > 0 || sec > 0.0))
    {
        return Err(out_of_range("time", format!("{hour}:{min:02}:{sec:02}")));
    }
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc().timestamp_micros())
        .unwrap_or_default();
    let micros = (sec * 1e6).round_ties_even() as i64;
    Ok(midnight + (i64::from(hour) * 60 + i64::from(min)) * 60_000_000 + micros)
}

/// `make_interval(years, months, weeks, days, hours, mins, secs)`, every
/// argument given (the parser fills the ones a call leaves out with 0).
fn make_interval(args: &[ArrayRef]) -> Result<ArrayRef> {
    let ints = args[..6]
        .iter()
        .map(|a| datafusion::arrow::compute::cast(a, &DataType::Int64))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let ints: Vec<&datafusion::arrow::array::Int64Array> =
        ints.iter().map(|a| a.as_primitive()).collect();
    let secs = datafusion::arrow::compute::cast(&args[6], &DataType::Float64)?;
    let secs = secs.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let overflow = || {
        ours(Error::new(
            ErrorKind::DatetimeOverflow,
            "interval out of range",
        ))
    };
    let mut out = Vec::with_capacity(secs.len());
    for r in 0..secs.len() {
        if secs.is_null(r) || ints.iter().any(|a| a.is_null(r)) {
            out.push(None);
            continue;
        }
        let v: Vec<i64> = ints.iter().map(|a| a.value(r)).collect();
        let months = v[0].checked_mul(12).and_then(|m| m.checked_add(v[1]));
        let days = v[2].checked_mul(7).and_then(|d| d.checked_add(v[3]));
        let secs = secs.value(r);
        let nanos = v[4]
            .checked_mul(3_600_000_000_000)
            .zip(v[5].checked_mul(60_000_000_000))
            .and_then(|(h, m)| h.checked_add(m))
            .and_then(|t| {
                let micros = (secs * 1e6).round_ties_even();
                (micros.abs() < 9.2e15).then(|| t.checked_add(micros as i64 * 1000))?
            });
        let (Some(months), Some(days), Some(nanos)) = (
            months.and_then(|m| i32::try_from(m).ok()),
            days.and_then(|d| i32::try_from(d).ok()),
            nanos,
        ) else {
            return Err(overflow());
        };
        out.push(Some(IntervalMonthDayNano::new(months, days, nanos)));
    }
    Ok(Arc::new(IntervalMonthDayNanoArray::from(out)))
}

/// `sign(x)`: -1, 0 or 1, a numeric of a numeric and a float of anything
/// else (NaN stays NaN).
fn sign(x: &ArrayRef) -> Result<ArrayRef> {
    Ok(match x.data_type() {
        DataType::Decimal128(..) => {
            let d = x.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
            let out: Decimal128Array = d.iter().map(|v| v.map(i128::signum)).collect();
            Arc::new(out.with_precision_and_scale(1, 0)?)
        }
        DataType::Decimal256(..) => {
            let d = x.as_primitive::<datafusion::arrow::datatypes::Decimal256Type>();
            let zero = datafusion::arrow::datatypes::i256::ZERO;
            let out: Decimal128Array = d
                .iter()
                .map(|v| v.map(|v| i128::from(v > zero) - i128::from(v < zero)))
                .collect();
            Arc::new(out.with_precision_and_scale(1, 0)?)
        }
        _ => {
            let f = datafusion::arrow::compute::cast(x, &DataType::Float64)?;
            let f = f.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            Arc::new(
                f.unary::<_, datafusion::arrow::datatypes::Float64Type>(|v| {
                    if v.is_nan() {
                        v
                    } else if v > 0.0 {
                        1.0
                    } else if v < 0.0 {
                        -1.0
                    } else {
                        0.0
                    }
                }),
            )
        }
    })
}

/// The largest scale among `types` (integers count as 0).
fn common_scale<'a>(types: impl Iterator<Item = &'a DataType>) -> i8 {
    types
        .map(|t| match t {
            DataType::Decimal32(_, s)
            | DataType::Decimal64(_, s)
            | DataType::Decimal128(_, s)
            | DataType::Decimal256(_, s) => (*s).max(0),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// `x` as `to`, a value that does not convert being an error rather than
/// a NULL (Arrow's `cast` makes it a NULL).
fn strict_cast(x: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    Ok(datafusion::arrow::compute::cast_with_options(
        x,
        to,
        &datafusion::arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        },
    )?)
}

/// `x` as exact `numeric(38, scale)` values; a value that does not fit is
/// an error (22003), not a NULL.
fn decimals_at(x: &ArrayRef, scale: i8) -> Result<Decimal128Array> {
    let d = strict_cast(x, &DataType::Decimal128(38, scale))?;
    Ok(
        d.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>()
            .clone(),
    )
}

/// `width_bucket(x, low, high, count)`: which of `count` equal buckets
/// between `low` and `high` holds `x` (0 below, `count + 1` above; the
/// buckets run downward when `low > high`). Numerics are bucketed exactly,
/// floats in `double precision`, as in PostgreSQL.
fn width_bucket(args: &[ArrayRef]) -> Result<ArrayRef> {
    let invalid = |m: &str| ours(Error::new(ErrorKind::InvalidWidthBucket, m.to_string()));
    let counts = datafusion::arrow::compute::cast(&args[3], &DataType::Int64)?;
    let counts = counts.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let decimal = args[..3].iter().all(|a| {
        matches!(
            a.data_type(),
            DataType::Decimal128(..) | DataType::Int16 | DataType::Int32 | DataType::Int64
        )
    }) && args[..3]
        .iter()
        .any(|a| matches!(a.data_type(), DataType::Decimal128(..)));
    // The three bounds as exact integers at one scale, or as floats.
    let values: Vec<Vec<Option<i128>>>;
    let floats: Vec<Vec<Option<f64>>>;
    if decimal {
        let scale = common_scale(args[..3].iter().map(|a| a.data_type()));
        values = args[..3]
            .iter()
            .map(|a| Ok(decimals_at(a, scale)?.iter().collect()))
            .collect::<Result<_>>()?;
        floats = Vec::new();
    } else {
        floats = args[..3]
            .iter()
            .map(|a| {
                let f = datafusion::arrow::compute::cast(a, &DataType::Float64)?;
                Ok(
                    f.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                        .iter()
                        .collect(),
                )
            })
            .collect::<Result<_>>()?;
        values = Vec::new();
    }
    let mut out = Vec::with_capacity(counts.len());
    for r in 0..counts.len() {
        let Some(count) = (!counts.is_null(r)).then(|| counts.value(r)) else {
            out.push(None);
            continue;
        };
        if count <= 0 || count > i64::from(i32::MAX - 1) {
            return Err(invalid("count must be greater than zero"));
        }
        let bucket = if decimal {
            let (Some(x), Some(low), Some(high)) = (values[0][r], values[1][r], values[2][r])
            else {
                out.push(None);
                continue;
            };
            if low == high {
                return Err(invalid("lower bound cannot equal upper bound"));
            }
            let (offset, width) = if low < high {
                if x < low {
                    out.push(Some(0));
                    continue;
                }
                if x >= high {
                    out.push(Some(count as i32 + 1));
                    continue;
                }
                (x - low, high - low)
            } else {
                if x > low {
                    out.push(Some(0));
                    continue;
                }
                if x <= high {
                    out.push(Some(count as i32 + 1));
                    continue;
                }
                (low - x, low - high)
            };
            offset
                .checked_mul(i128::from(count))
                .map(|n| n / width + 1)
                .ok_or_else(|| {
                    ours(Error::new(
                        ErrorKind::NumericOutOfRange,
                        "value out of range",
                    ))
                })? as i32
        } else {
            let (Some(x), Some(low), Some(high)) = (floats[0][r], floats[1][r], floats[2][r])
            else {
                out.push(None);
                continue;
            };
            if low == high {
                return Err(invalid("lower bound cannot equal upper bound"));
            }
            if x.is_nan() || low.is_nan() || high.is_nan() {
                return Err(invalid(
                    "operand, lower bound, and upper bound cannot be NaN",
                ));
            }
            let n = count as f64;
            if low < high {
                if x < low {
                    0
                } else if x >= high {
                    count as i32 + 1
                } else {
                    ((n * ((x - low) / (high - low))) as i32 + 1).min(count as i32)
                }
            } else if x > low {
                0
            } else if x <= high {
                count as i32 + 1
            } else {
                ((n * ((low - x) / (low - high))) as i32 + 1).min(count as i32)
            }
        };
        out.push(Some(bucket));
    }
    Ok(Arc::new(Int32Array::from(out)))
}

/// `div(a, b)`: the integer quotient of two numbers, truncated toward zero,
/// as a numeric.
fn div(a: &ArrayRef, b: &ArrayRef) -> Result<ArrayRef> {
    let s = common_scale([a.data_type(), b.data_type()].into_iter());
    let (a, b) = (decimals_at(a, s)?, decimals_at(b, s)?);
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

/// The inline flags of a PostgreSQL regular expression with `flags`: `.`
/// matches a newline unless `n`, `m` or `p` says otherwise, `^`/`$` match
/// at lines with `n`, `m` or `w`, `i` ignores case, `x` is the expanded
/// syntax. `g` is refused, as PostgreSQL refuses it here.
fn regex_flags(function: &str, flags: &str) -> Result<String> {
    let (mut dot_newline, mut lines, mut case, mut expanded) = (true, false, false, false);
    for c in flags.chars() {
        match c {
            'i' => case = true,
            'c' => case = false,
            'n' | 'm' => (dot_newline, lines) = (false, true),
            'p' => (dot_newline, lines) = (false, false),
            'w' => (dot_newline, lines) = (true, true),
            's' => (dot_newline, lines) = (true, false),
            'x' => expanded = true,
            't' => expanded = false,
            'g' => {
                return Err(ours(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("{function}() does not support the \"global\" option"),
                )));
            }
            other => {
                return Err(ours(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("invalid regular expression option: \"{other}\""),
                )));
            }
        }
    }
    let mut out = String::from("(?");
    for (on, flag) in [
        (dot_newline, 's'),
        (lines, 'm'),
        (case, 'i'),
        (expanded, 'x'),
    ] {
        if on {
            out.push(flag);
        }
    }
    Ok(if out.len() == 2 {
        String::new()
    } else {
        out + ")"
    })
}

/// The `(text, pattern [, flags])` arguments of a regular-expression
/// function, as text.
struct RegexArgs {
    strings: ArrayRef,
    patterns: ArrayRef,
    flags: Option<ArrayRef>,
}

impl RegexArgs {
    fn of(args: &[ArrayRef]) -> Result<RegexArgs> {
        let text = |a: &ArrayRef| datafusion::arrow::compute::cast(a, &DataType::Utf8);
        Ok(RegexArgs {
            strings: text(&args[0])?,
            patterns: text(&args[1])?,
            flags: args.get(2).map(text).transpose()?,
        })
    }

    fn rows(&self) -> usize {
        self.strings.len()
    }

    /// Row `r`'s text, pattern and flags (`""` when not given); `None`
    /// when one of them is NULL.
    fn row(&self, r: usize) -> Option<(&str, &str, &str)> {
        fn value(a: &ArrayRef, r: usize) -> Option<&str> {
            let a = a.as_string::<i32>();
            (!a.is_null(r)).then(|| a.value(r))
        }
        let flags = match &self.flags {
            Some(f) => value(f, r)?,
            None => "",
        };
        Some((value(&self.strings, r)?, value(&self.patterns, r)?, flags))
    }
}

/// A pattern with its flags, compiled once for the rows that share it.
struct Compiled {
    function: &'static str,
    last: Option<(String, regex::Regex)>,
}

impl Compiled {
    fn new(function: &'static str) -> Compiled {
        Compiled {
            function,
            last: None,
        }
    }

    /// `pattern` under `flags` (PostgreSQL's letters, without `g`).
    fn get(&mut self, pattern: &str, flags: &str) -> Result<&regex::Regex> {
        let mut full = regex_flags(self.function, flags)?;
        full.push_str(pattern);
        if self.last.as_ref().is_none_or(|(p, _)| *p != full) {
            let re = regex::Regex::new(&full).map_err(|e| {
                ours(Error::new(
                    ErrorKind::InvalidRegularExpression,
                    format!("invalid regular expression: {e}"),
                ))
            })?;
            self.last = Some((full, re));
        }
        match &self.last {
            Some((_, re)) => Ok(re),
            None => exec_err!("{}: no pattern", self.function),
        }
    }
}

/// `sluice_regexp_matches(text, pattern [, flags])`: the rows of
/// PostgreSQL's set-returning `regexp_matches` as one list per input row
/// (unnested by the rewriter): the first match, or every match with the
/// `g` flag, each the text array of its capture groups (a group that took
/// no part is NULL), or of the whole match when the pattern has no groups.
/// No match (or a NULL argument) is no row.
fn matches(args: &[ArrayRef]) -> Result<ArrayRef> {
    let args = RegexArgs::of(args)?;
    let mut out = ListBuilder::new(ListBuilder::new(StringBuilder::new()));
    let mut compiled = Compiled::new("regexp_matches");
    for r in 0..args.rows() {
        let Some((s, pattern, given)) = args.row(r) else {
            out.append_null();
            continue;
        };
        let global = given.contains('g');
        let re = compiled.get(pattern, &given.replace('g', ""))?;
        let groups = re.captures_len() > 1;
        for caps in re
            .captures_iter(s)
            .take(if global { usize::MAX } else { 1 })
        {
            let one = out.values();
            if groups {
                for g in caps.iter().skip(1) {
                    one.values().append_option(g.map(|m| m.as_str()));
                }
            } else {
                one.values().append_value(&caps[0]);
            }
            one.append(true);
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

/// `regexp_split_to_array(text, pattern [, flags])`: the pieces between
/// the matches. A match of no characters at the start or end of the text,
/// or right after another match, splits nothing, as in PostgreSQL.
fn split(args: &[ArrayRef]) -> Result<ArrayRef> {
    let args = RegexArgs::of(args)?;
    let mut out = ListBuilder::new(StringBuilder::new());
    let mut compiled = Compiled::new("regexp_split_to_array");
    for r in 0..args.rows() {
        let Some((s, pattern, flags)) = args.row(r) else {
            out.append_null();
            continue;
        };
        let re = compiled.get(pattern, flags)?;
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

/// The name `(a, b) OVERLAPS (c, d)` is planned as.
pub const OVERLAPS: &str = "sluice_overlaps";

/// The numeric type `scale`, `min_scale` and `trim_scale` read their
/// argument as (an integer is a numeric of scale 0), and the type
/// `trim_scale` answers.
fn numeric_argument(function: Function, types: &[&DataType]) -> Result<DataType> {
    match types {
        [t @ (DataType::Decimal128(..) | DataType::Null)] => Ok((*t).clone()),
        [t] if t.is_integer() => Ok(DataType::Decimal128(20, 0)),
        // `avg(x)` is a float until the analyzer makes it the numeric it
        // is; a float that stays one is refused when the call runs.
        [t] if t.is_floating() => Ok(DataType::Decimal128(38, 10)),
        _ => Err(ours(no_such_function(function, types))),
    }
}

/// `42883`: `function` takes no arguments of `types`.
fn no_such_function(function: Function, types: &[&DataType]) -> Error {
    Error::new(
        ErrorKind::UndefinedFunction,
        format!(
            "function {}({}) does not exist",
            function.name(),
            types
                .iter()
                .map(|t| super::PgType::from_arrow(t).name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// `scale(x)`: the places of `x` (those of its type: `places` shows each
/// value's own where they differ); `min_scale(x)`: the fewest places that
/// write the value exactly; `trim_scale(x)`: the value itself, shown at
/// those places (see `places`).
fn scales(function: Function, arg: &ArrayRef) -> Result<ArrayRef> {
    let decimals = match arg.data_type() {
        DataType::Decimal128(..) => arg.clone(),
        t if t.is_floating() => return Err(ours(no_such_function(function, &[t]))),
        DataType::Null => {
            return Ok(datafusion::arrow::array::new_null_array(
                &if function == Function::TrimScale {
                    DataType::Null
                } else {
                    DataType::Int32
                },
                arg.len(),
            ));
        }
        _ => datafusion::arrow::compute::cast(arg, &DataType::Decimal128(20, 0))?,
    };
    if function == Function::TrimScale {
        return Ok(decimals);
    }
    let DataType::Decimal128(_, scale) = decimals.data_type().clone() else {
        return exec_err!("{}: not a numeric", function.name());
    };
    let values = decimals.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
    let out: Int32Array = values
        .iter()
        .map(|v| {
            v.map(|v| {
                if function == Function::Scale {
                    i32::from(scale.max(0))
                } else {
                    min_scale(v, scale)
                }
            })
        })
        .collect();
    Ok(Arc::new(out))
}

/// The fewest fractional digits that write `v` (of `scale`) exactly.
pub fn min_scale(mut v: i128, scale: i8) -> i32 {
    let mut places = i32::from(scale.max(0));
    while places > 0 && v % 10 == 0 {
        v /= 10;
        places -= 1;
    }
    places
}

/// `regexp_substr(text, pattern [, start [, n [, flags [, subexpr]]]])`:
/// the `n`-th match at or after character `start` (or the part its
/// `subexpr`-th parenthesized group matched), NULL when there is none.
fn regexp_substr(args: &[ArrayRef]) -> Result<ArrayRef> {
    use datafusion::arrow::datatypes::Int64Type;
    let text = |a: &ArrayRef| strict_cast(a, &DataType::Utf8);
    let int = |a: &ArrayRef| strict_cast(a, &DataType::Int64);
    let strings = text(&args[0])?;
    let patterns = text(&args[1])?;
    let starts = args.get(2).map(int).transpose()?;
    let counts = args.get(3).map(int).transpose()?;
    let flags = args.get(4).map(text).transpose()?;
    let groups = args.get(5).map(int).transpose()?;
    fn text_at(a: &ArrayRef, r: usize) -> Option<&str> {
        let a = a.as_string::<i32>();
        (!a.is_null(r)).then(|| a.value(r))
    }
    fn int_at(a: &Option<ArrayRef>, r: usize, default: i64) -> Option<i64> {
        match a {
            None => Some(default),
            Some(a) => {
                let a = a.as_primitive::<Int64Type>();
                (!a.is_null(r)).then(|| a.value(r))
            }
        }
    }
    let invalid = |name: &str, v: i64| {
        ours(Error::new(
            ErrorKind::InvalidParameter,
            format!("invalid value for parameter \"{name}\": {v}"),
        ))
    };
    let mut out = StringBuilder::new();
    let mut compiled = Compiled::new("regexp_substr");
    for r in 0..strings.len() {
        let given = match &flags {
            Some(f) => text_at(f, r),
            None => Some(""),
        };
        let (Some(s), Some(pattern), Some(start), Some(n), Some(group), Some(given)) = (
            text_at(&strings, r),
            text_at(&patterns, r),
            int_at(&starts, r, 1),
            int_at(&counts, r, 1),
            int_at(&groups, r, 0),
            given,
        ) else {
            out.append_null();
            continue;
        };
        if start < 1 {
            return Err(invalid("start", start));
        }
        if n < 1 {
            return Err(invalid("n", n));
        }
        if group < 0 {
            return Err(invalid("subexpr", group));
        }
        let re = compiled.get(pattern, given)?;
        let Some(mut at) = s
            .char_indices()
            .map(|(i, _)| i)
            .chain([s.len()])
            .nth((start - 1) as usize)
        else {
            out.append_null();
            continue;
        };
        let mut seen = 0;
        let mut found = None;
        while let Some(caps) = re.captures_at(s, at) {
            let whole = caps.get(0).map_or(at..at, |m| m.range());
            seen += 1;
            if seen == n {
                found = caps.get(group as usize).map(|m| m.as_str());
                break;
            }
            at = if whole.end > whole.start {
                whole.end
            } else {
                match s[whole.end..].chars().next() {
                    Some(c) => whole.end + c.len_utf8(),
                    None => break,
                }
            };
        }
        out.append_option(found);
    }
    Ok(Arc::new(out.finish()))
}

/// `sluice_overlaps(s1, e1, s2, e2)`: `(s1, e1) OVERLAPS (s2, e2)` as
/// PostgreSQL answers it: each period from its earlier to its later end
/// (an end given as an interval counts from its start), overlapping when
/// one starts inside the other, NULL where a NULL end leaves it unknown.
fn overlaps(args: &[ArrayRef]) -> Result<ArrayRef> {
    use datafusion::arrow::datatypes::Int64Type;
    let end = |s: &ArrayRef, e: &ArrayRef| -> Result<ArrayRef> {
        Ok(match e.data_type() {
            DataType::Interval(_) => datafusion::arrow::compute::kernels::numeric::add(s, e)?,
            _ => e.clone(),
        })
    };
    let ends = [
        args[0].clone(),
        end(&args[0], &args[1])?,
        args[2].clone(),
        end(&args[2], &args[3])?,
    ];
    let times = ends
        .iter()
        .any(|a| matches!(a.data_type(), DataType::Time32(_) | DataType::Time64(_)));
    let common = if times {
        DataType::Time64(TimeUnit::Microsecond)
    } else {
        DataType::Timestamp(TimeUnit::Microsecond, None)
    };
    let micros = ends
        .iter()
        .map(|a| {
            // Text that is not a time is an error, as its cast is.
            strict_cast(&strict_cast(a, &common)?, &DataType::Int64)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let at = |k: usize, r: usize| {
        let a = micros[k].as_primitive::<Int64Type>();
        (!a.is_null(r)).then(|| a.value(r))
    };
    let out: BooleanArray = (0..micros[0].len())
        .map(|r| overlap(at(0, r), at(1, r), at(2, r), at(3, r)))
        .collect();
    Ok(Arc::new(out))
}

/// PostgreSQL's `overlaps_timestamp`.
fn overlap(s1: Option<i64>, e1: Option<i64>, s2: Option<i64>, e2: Option<i64>) -> Option<bool> {
    // A period's start is its non-NULL end, or the earlier of the two.
    let ordered = |s: Option<i64>, e: Option<i64>| match (s, e) {
        (None, None) => None,
        (None, Some(e)) => Some((e, None)),
        (Some(s), None) => Some((s, None)),
        (Some(s), Some(e)) => Some((s.min(e), Some(s.max(e)))),
    };
    let (s1, e1) = ordered(s1, e1)?;
    let (s2, e2) = ordered(s2, e2)?;
    match s1.cmp(&s2) {
        std::cmp::Ordering::Greater => {
            if s1 < e2? {
                return Some(true);
            }
            e1.map(|_| false)
        }
        std::cmp::Ordering::Less => {
            if s2 < e1? {
                return Some(true);
            }
            e2.map(|_| false)
        }
        std::cmp::Ordering::Equal => (e1.is_some() && e2.is_some()).then_some(true),
    }
}

/// `clock_timestamp()`: the time when it is evaluated (`now()` is the
/// statement's start), a `timestamptz`.
fn clock_timestamp_udf() -> ScalarUDF {
    use datafusion::arrow::datatypes::TimeUnit;
    datafusion::logical_expr::create_udf(
        CLOCK_TIMESTAMP,
        vec![],
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        datafusion::logical_expr::Volatility::Volatile,
        Arc::new(|_: &[ColumnarValue]| {
            let micros = chrono::Utc::now().timestamp_micros();
            Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
                Some(micros),
                Some("UTC".into()),
            )))
        }),
    )
}

/// The name `clock_timestamp()` is planned as.
pub const CLOCK_TIMESTAMP: &str = "sluice_clock_timestamp";

/// `pg_sleep(seconds)`: waits, once for each row it is evaluated on, and
/// answers an empty text (PostgreSQL's `void`, which prints so). The wait is asynchronous, so that a
/// cancel request or `statement_timeout` ends it at once.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Sleep {
    signature: Signature,
}

impl ScalarUDFImpl for Sleep {
    fn name(&self) -> &str {
        "pg_sleep"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!("pg_sleep is evaluated asynchronously")
    }
}

#[async_trait::async_trait]
impl datafusion::logical_expr::async_udf::AsyncScalarUDFImpl for Sleep {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let seconds = match &args.args[0] {
            ColumnarValue::Scalar(v) => {
                let v = v.cast_to(&DataType::Float64)?;
                let each = match v {
                    ScalarValue::Float64(Some(s)) if s.is_finite() && s > 0.0 => s,
                    _ => 0.0,
                };
                each * rows.max(1) as f64
            }
            ColumnarValue::Array(a) => {
                let a = datafusion::arrow::compute::cast(a, &DataType::Float64)?;
                a.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                    .iter()
                    .flatten()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .sum()
            }
        };
        // Longer than any statement runs: a day.
        let seconds = seconds.min(86_400.0);
        tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(
            Some(String::new()),
        )))
    }
}

fn sleep_udf() -> ScalarUDF {
    datafusion::logical_expr::async_udf::AsyncScalarUDF::new(Arc::new(Sleep {
        signature: Signature::any(1, Volatility::Volatile),
    }))
    .into_scalar_udf()
}

/// `min_scale(x)` as a UDF.
pub fn min_scale_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Pg {
        function: Function::MinScale,
        signature: Function::MinScale.signature(),
    })
}

/// Register the functions of this module, `bool_and` (also `every`) and
/// `bool_or` over sliding frames, the variances and standard deviations
/// (`variance` is `var_samp`), and the
/// ordered-set aggregates.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    for function in Function::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(Pg {
            function,
            signature: function.signature(),
        }));
    }
    ctx.register_udf(super::like::similar_to_escape_udf());
    ctx.register_udf(super::encoding::encode_udf());
    ctx.register_udf(super::encoding::decode_udf());
    ctx.register_udf(super::encoding::octet_length_udf());
    ctx.register_udf(super::bpchar::cast_udf());
    ctx.register_udf(super::chr::udf());
    for udf in super::logarithms::udfs() {
        ctx.register_udf(udf);
    }
    for udf in super::float_range::udfs() {
        ctx.register_udf(udf);
    }
    ctx.register_udf(clock_timestamp_udf());
    ctx.register_udf(sleep_udf());
    for udaf in super::sliding_bools::udafs() {
        ctx.register_udaf(udaf);
    }
    ctx.register_udaf(super::interval_avg::udaf());
    // Exact for numerics; `variance` is PostgreSQL's historical name for
    // the sample variance.
    for udaf in super::variance::udafs() {
        ctx.register_udaf(udaf);
    }
    for udaf in super::ordered_set::udafs() {
        ctx.register_udaf(udaf);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn to_number_reads_as_postgres() {
        for (text, format, places, want) in [
            ("12,454.8-", "99G999D9S", 1, -124548),
            ("$1,234.50", "L9G999D99", 2, 123450),
            ("  -1,000", "99G999", 0, -1000),
            ("12345", "99", 0, 12),
            ("1e3", "9999", 0, 13),
            ("42-", "99MI", 0, -42),
            ("42-", "99", 0, 42),
            ("1.23456", "9.99", 2, 123),
        ] {
            assert_eq!(number_format(format).1, places, "{format}");
            assert_eq!(
                read_number(text, format, places).unwrap(),
                want,
                "{text} {format}"
            );
        }
        assert!(read_number("abc", "999", 0).is_err());
        let wide = "9".repeat(40);
        assert!(read_number(&wide, &wide, 0).is_err());
    }

    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn overlaps_as_postgres() {
        // (s1, e1) OVERLAPS (s2, e2) over numbers standing for times.
        assert_eq!(overlap(Some(1), Some(5), Some(4), Some(9)), Some(true));
        assert_eq!(overlap(Some(1), Some(4), Some(4), Some(9)), Some(false));
        assert_eq!(overlap(Some(5), Some(1), Some(4), Some(9)), Some(true));
        assert_eq!(overlap(Some(1), Some(1), Some(1), Some(1)), Some(true));
        assert_eq!(overlap(Some(1), None, Some(4), Some(9)), None);
        assert_eq!(overlap(Some(5), None, Some(4), Some(9)), Some(true));
        assert_eq!(overlap(Some(9), None, Some(4), Some(9)), None);
        assert_eq!(overlap(Some(9), Some(12), Some(4), Some(9)), Some(false));
        assert_eq!(overlap(None, None, Some(4), Some(9)), None);
        assert_eq!(min_scale(1230, 3), 2);
        assert_eq!(min_scale(0, 4), 0);
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
