//! PostgreSQL's text output for the types whose rendering by Arrow differs
//! from PostgreSQL's: timestamps print only the fractional digits they have
//! (`13:45:00`, `23:59:59.5`), floats their shortest round-trip form
//! (`1024`, not `1024.0`; `1e+15`; `Infinity`, `NaN`). Used for text results
//! on the wire and for casts to text.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Decimal128Array, StringArray,
};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Float32Type, Float64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};

/// PostgreSQL's float output (extra_float_digits = 1): the shortest text
/// that reads back as the same value, in exponent form when the decimal
/// exponent is below -4 or at least the type's digits (15, real 6).
fn shortest_text(plain: String, exp_form: String, digits: i32) -> String {
    let Some((mantissa, exp)) = exp_form.split_once('e') else {
        return plain;
    };
    let e: i32 = exp.parse().unwrap_or(0);
    if plain.trim_start_matches('-') == "0" || (-4..digits).contains(&e) {
        return plain;
    }
    let sign = if e < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", e.abs())
}

fn non_finite(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "Infinity".into()
    } else {
        "-Infinity".into()
    }
}

fn float_text(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v);
    }
    // The shortest form of a value in [1e-4, 1e15) has an exponent in
    // -4..15 (the shortest decimal of a double below 1e15 is below it, and
    // 1e-4 is itself that double): plain, without the exponent form.
    if v == 0.0 || (1e-4..1e15).contains(&v.abs()) {
        return format!("{v}");
    }
    shortest_text(format!("{v}"), format!("{v:e}"), 15)
}

fn f32_text(v: f32) -> String {
    if !v.is_finite() {
        return non_finite(v as f64);
    }
    // The shortest form of the f32 itself, not of its widened f64.
    if v == 0.0 || (1e-4..1e6).contains(&v.abs()) {
        return format!("{v}");
    }
    shortest_text(format!("{v}"), format!("{v:e}"), 6)
}

/// `2024-02-29 13:45:00.25` from microseconds since the epoch.
fn timestamp_text(micros: i64, tz: bool) -> String {
    let Some(dt) = chrono::DateTime::from_timestamp_micros(micros) else {
        return micros.to_string();
    };
    // Years before 1 are BC, counted from 1 (chrono's year 0 is 1 BC).
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let bc = dt.year() <= 0;
    let year = if bc { 1 - dt.year() } else { dt.year() };
    let mut s = String::with_capacity(32);
    let _ = write!(
        s,
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let frac = dt.timestamp_subsec_micros();
    if frac != 0 {
        let at = s.len();
        let _ = write!(s, ".{frac:06}");
        s.truncate(s.trim_end_matches('0').len().max(at + 2));
    }
    if tz {
        s.push_str("+00");
    }
    if bc {
        s.push_str(" BC");
    }
    s
}

/// A time of day in microseconds as PostgreSQL prints it: `10:11:12`,
/// `10:11:12.5` (only the fractional digits it has).
fn time_text(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let mut s = format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

/// A timestamp in seconds or milliseconds (`factor` to microseconds); one
/// beyond the microsecond range prints its raw value.
fn scaled_text(value: i64, factor: i64, tz: bool) -> String {
    value
        .checked_mul(factor)
        .map_or_else(|| value.to_string(), |micros| timestamp_text(micros, tz))
}

fn strings(arr: &ArrayRef, f: impl Fn(usize) -> String) -> ArrayRef {
    let values: StringArray = (0..arr.len())
        .map(|i| (!arr.is_null(i)).then(|| f(i)))
        .collect();
    Arc::new(values)
}

/// `-12.50` of a Decimal128 value with `scale` digits.
pub fn decimal_text(v: i128, scale: i8, out: &mut String) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v.unsigned_abs());
    if v < 0 {
        out.push('-');
    }
    if scale < 0 {
        // A negative scale (an exponent literal: `1e15` is 1 with scale
        // -15) is an integer with that many zeros more.
        out.push_str(digits);
        if v != 0 {
            out.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        }
        return;
    }
    let scale = scale as usize;
    if scale == 0 {
        out.push_str(digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str("0.");
        for _ in digits.len()..scale {
            out.push('0');
        }
        out.push_str(digits);
    }
}

/// The largest magnitude the wire encoder's decimal holds (96 bits, scale
/// at most 28): a numeric beyond it is printed and encoded by Sluice.
fn fits_wire_decimal(a: &Decimal128Array, precision: u8, scale: i8) -> bool {
    if !(0..=28).contains(&scale) {
        return false;
    }
    // 28 digits always fit (10^28 < 2^96): no value needs looking at.
    precision <= 28 || a.iter().flatten().all(|v| v.unsigned_abs() < (1u128 << 96))
}

/// A Decimal128 column the wire encoder cannot hold, as PostgreSQL's
/// binary `numeric`: base-10000 digits with a weight, a sign and the
/// display scale. `None` when the encoder holds every value.
pub fn numeric_binary(arr: &ArrayRef) -> Option<ArrayRef> {
    let DataType::Decimal128(precision, scale) = arr.data_type() else {
        return None;
    };
    let a = arr.as_primitive::<Decimal128Type>();
    // The encoder sends a zero without its display scale (`0` where
    // PostgreSQL sends `0.00`, which a binary reader prints).
    let zero_with_scale = *scale > 0 && a.iter().any(|v| v == Some(0));
    if fits_wire_decimal(a, *precision, *scale) && !zero_with_scale {
        return None;
    }
    let values: BinaryArray = a
        .iter()
        .map(|v| v.map(|v| numeric_bytes(v, *scale)))
        .collect();
    Some(Arc::new(values))
}

/// A result column of type `numeric` sent as text (a quotient written at
/// each value's own places), as PostgreSQL's binary `numeric`; `None` for
/// a column that is not text.
pub fn numeric_text_binary(arr: &ArrayRef) -> Option<ArrayRef> {
    if let DataType::Utf8 = arr.data_type() {
        let values: BinaryArray = arr
            .as_string::<i32>()
            .iter()
            .map(|v| {
                v.and_then(|t| {
                    let (p, s) = super::numeric::literal_digits(t)?;
                    let v = super::numeric::text_to_decimal(t, p, s)?.ok()?;
                    Some(numeric_bytes(v, s))
                })
            })
            .collect();
        return Some(Arc::new(values));
    }
    None
}

/// PostgreSQL's binary `numeric` of a Decimal128 value of `scale`.
pub(crate) fn numeric_bytes(v: i128, scale: i8) -> Vec<u8> {
    let dscale = scale.max(0) as usize;
    let mut digits = v.unsigned_abs().to_string();
    if scale < 0 && v != 0 {
        digits.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
    }
    // Integer and fraction digits, each padded to whole groups of four
    // away from the decimal point.
    let (int, frac) = if digits.len() > dscale {
        digits.split_at(digits.len() - dscale)
    } else {
        ("", digits.as_str())
    };
    let frac = format!("{}{frac}", "0".repeat(dscale - frac.len()));
    let int = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    let frac = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    let group = |s: &str| -> Vec<i16> {
        s.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or("0").parse().unwrap_or(0))
            .collect()
    };
    let mut groups = group(&int);
    let mut weight = groups.len() as i16 - 1;
    groups.extend(group(&frac));
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if v < 0 { 0x4000 } else { 0 };
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(dscale as i16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    out
}

/// A list column as PostgreSQL's array text (`{1,2,NULL}`, `{"x y",z}`,
/// `{t,f}`, `{{1,2},{3}}`): Arrow's cast to text prints `[1, 2, ]`.
pub fn array_text(arr: &ArrayRef) -> Option<ArrayRef> {
    let list = match arr.data_type() {
        DataType::List(_) => arr.as_list::<i32>(),
        _ => return None,
    };
    let values = list.values();
    let nested = matches!(values.data_type(), DataType::List(_));
    let elements = output_utf8(values).ok()?;
    let elements = elements.as_string::<i32>();
    Some(strings(arr, |row| {
        let mut out = String::from("{");
        for (n, i) in
            (list.value_offsets()[row] as usize..list.value_offsets()[row + 1] as usize).enumerate()
        {
            if n > 0 {
                out.push(',');
            }
            if elements.is_null(i) {
                out.push_str("NULL");
            } else if nested {
                out.push_str(elements.value(i));
            } else {
                array_element(&mut out, elements.value(i));
            }
        }
        out.push('}');
        out
    }))
}

/// A list column of integers as the text of PostgreSQL's `int2vector` /
/// `oidvector`: the items separated by spaces (`1 3`).
pub fn vector_text(arr: &ArrayRef) -> Option<ArrayRef> {
    let DataType::List(_) = arr.data_type() else {
        return None;
    };
    let list = arr.as_list::<i32>();
    let items = datafusion::arrow::compute::cast(list.values(), &DataType::Utf8).ok()?;
    let items = items.as_string::<i32>();
    Some(strings(arr, |row| {
        let range = list.value_offsets()[row] as usize..list.value_offsets()[row + 1] as usize;
        range
            .filter(|i| items.is_valid(*i))
            .map(|i| items.value(i))
            .collect::<Vec<_>>()
            .join(" ")
    }))
}

/// One element of an array's text, quoted when PostgreSQL quotes it.
fn array_element(out: &mut String, v: &str) {
    let quote = v.is_empty()
        || v.eq_ignore_ascii_case("NULL")
        || v.chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if !quote {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// An interval as PostgreSQL prints it (`IntervalStyle` postgres): `1 year
/// 2 mons -3 days +04:05:06.5`, `00:00:00` when zero.
pub fn interval_text(months: i32, days: i32, nanos: i64) -> String {
    let mut out = String::new();
    let mut before_negative = false;
    let mut zero = true;
    let mut part = |out: &mut String, v: i64, unit: &str| {
        if v == 0 {
            return;
        }
        if !zero {
            out.push(' ');
        }
        let plus = if !zero && before_negative && v > 0 {
            "+"
        } else {
            ""
        };
        let plural = if v == 1 { "" } else { "s" };
        out.push_str(&format!("{plus}{v} {unit}{plural}"));
        before_negative = v < 0;
        zero = false;
    };
    part(&mut out, i64::from(months / 12), "year");
    part(&mut out, i64::from(months % 12), "mon");
    part(&mut out, i64::from(days), "day");
    let micros = nanos / 1000;
    if micros != 0 || zero {
        if !zero {
            out.push(' ');
        }
        let sign = if micros < 0 {
            "-"
        } else if before_negative {
            "+"
        } else {
            ""
        };
        let m = micros.unsigned_abs();
        let (h, rest) = (m / 3_600_000_000, m % 3_600_000_000);
        let (min, rest) = (rest / 60_000_000, rest % 60_000_000);
        let (sec, frac) = (rest / 1_000_000, rest % 1_000_000);
        out.push_str(&format!("{sign}{h:02}:{min:02}:{sec:02}"));
        if frac != 0 {
            let f = format!("{frac:06}");
            out.push('.');
            out.push_str(f.trim_end_matches('0'));
        }
    }
    out
}

/// `arr` as PostgreSQL prints it, for the types Arrow prints otherwise.
pub fn render(arr: &ArrayRef) -> Option<ArrayRef> {
    Some(match arr.data_type() {
        DataType::Decimal128(precision, scale) => {
            let a = arr.as_primitive::<Decimal128Type>();
            if fits_wire_decimal(a, *precision, *scale) {
                return None;
            }
            strings(arr, |i| {
                let mut s = String::new();
                decimal_text(a.value(i), *scale, &mut s);
                s
            })
        }
        DataType::Float64 => {
            let a = arr.as_primitive::<Float64Type>();
            strings(arr, |i| float_text(a.value(i)))
        }
        DataType::Float32 => {
            let a = arr.as_primitive::<Float32Type>();
            strings(arr, |i| f32_text(a.value(i)))
        }
        DataType::Timestamp(unit, tz) => {
            let tz = tz.is_some();
            match unit {
                TimeUnit::Second => {
                    let a = arr.as_primitive::<TimestampSecondType>();
                    strings(arr, |i| scaled_text(a.value(i), 1_000_000, tz))
                }
                TimeUnit::Millisecond => {
                    let a = arr.as_primitive::<TimestampMillisecondType>();
                    strings(arr, |i| scaled_text(a.value(i), 1_000, tz))
                }
                TimeUnit::Microsecond => {
                    let a = arr.as_primitive::<TimestampMicrosecondType>();
                    strings(arr, |i| timestamp_text(a.value(i), tz))
                }
                TimeUnit::Nanosecond => {
                    let a = arr.as_primitive::<TimestampNanosecondType>();
                    strings(arr, |i| timestamp_text(a.value(i).div_euclid(1_000), tz))
                }
            }
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let a = arr.as_primitive::<datafusion::arrow::datatypes::Time64MicrosecondType>();
            strings(arr, |i| time_text(a.value(i)))
        }
        DataType::Time64(_) => {
            let a = arr.as_primitive::<datafusion::arrow::datatypes::Time64NanosecondType>();
            strings(arr, |i| time_text(a.value(i).div_euclid(1_000)))
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            let a = arr.as_primitive::<datafusion::arrow::datatypes::Time32MillisecondType>();
            strings(arr, |i| time_text(i64::from(a.value(i)) * 1_000))
        }
        DataType::Time32(_) => {
            let a = arr.as_primitive::<datafusion::arrow::datatypes::Time32SecondType>();
            strings(arr, |i| time_text(i64::from(a.value(i)) * 1_000_000))
        }
        DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano) => {
            let a = arr.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
            strings(arr, |i| {
                let v = a.value(i);
                interval_text(v.months, v.days, v.nanoseconds)
            })
        }
        _ => return None,
    })
}

/// `bytea` as PostgreSQL prints it (`bytea_output = hex`): `\x01ff`.
pub fn bytea_text(arr: &ArrayRef) -> Option<ArrayRef> {
    if !matches!(
        arr.data_type(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    ) {
        return None;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = datafusion::arrow::compute::cast(arr, &DataType::Binary).ok()?;
    let bytes = bytes.as_binary::<i32>();
    Some(strings(arr, |i| {
        let v = bytes.value(i);
        let mut out = String::with_capacity(2 + 2 * v.len());
        out.push_str("\\x");
        for b in v {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        out
    }))
}

/// `arr` as PostgreSQL's output functions print it, which is what
/// `format`'s `%s` and `concat` show: booleans as `t`/`f` (a cast to text
/// gives `true`), bytea in hex, arrays, floats, timestamps and intervals as
/// [`render`] and [`array_text`] do, the rest as Arrow's cast to text.
/// Text comes back as it is, in whichever string type it has.
pub fn output_text(arr: &ArrayRef) -> Result<ArrayRef, datafusion::arrow::error::ArrowError> {
    match arr.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => return Ok(arr.clone()),
        DataType::Boolean => {
            let b = arr.as_boolean();
            let out: StringArray = b
                .iter()
                .map(|v| v.map(|v| if v { "t" } else { "f" }))
                .collect();
            return Ok(Arc::new(out));
        }
        _ => {}
    }
    match render(arr)
        .or_else(|| array_text(arr))
        .or_else(|| bytea_text(arr))
    {
        Some(text) => Ok(text),
        None => datafusion::arrow::compute::cast(arr, &DataType::Utf8),
    }
}

/// [`output_text`] as `Utf8`.
pub fn output_utf8(arr: &ArrayRef) -> Result<ArrayRef, datafusion::arrow::error::ArrowError> {
    let text = output_text(arr)?;
    if *text.data_type() == DataType::Utf8 {
        Ok(text)
    } else {
        datafusion::arrow::compute::cast(&text, &DataType::Utf8)
    }
}

/// Whether [`render`] prints values of type `t`.
pub fn renders(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Float64
            | DataType::Float32
            | DataType::Timestamp(..)
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_only_the_digits_they_have() {
        assert_eq!(time_text(0), "00:00:00");
        assert_eq!(time_text(36_672_500_000), "10:11:12.5");
        assert_eq!(time_text(86_399_999_999), "23:59:59.999999");
        let nanos: ArrayRef =
            Arc::new(datafusion::arrow::array::Time64NanosecondArray::from(vec![
                Some(1_500),
                None,
            ]));
        let text = render(&nanos).unwrap();
        assert_eq!(text.as_string::<i32>().value(0), "00:00:00.000001");
        assert!(text.is_null(1));
        let bytes: ArrayRef = Arc::new(BinaryArray::from(vec![&b"\x01\xff"[..], &b""[..]]));
        let text = output_text(&bytes).unwrap();
        assert_eq!(text.as_string::<i32>().value(0), "\\x01ff");
        assert_eq!(text.as_string::<i32>().value(1), "\\x");
    }

    #[test]
    fn intervals_print_like_postgres() {
        assert_eq!(interval_text(0, 0, 0), "00:00:00");
        assert_eq!(interval_text(1, 15, 0), "1 mon 15 days");
        assert_eq!(
            interval_text(14, 1, 3_600_000_000_000),
            "1 year 2 mons 1 day 01:00:00"
        );
        assert_eq!(interval_text(0, -1, 7_200_000_000_000), "-1 days +02:00:00");
        assert_eq!(interval_text(0, 0, -1_500_000_000), "-00:00:01.5");
        assert_eq!(interval_text(-13, 0, 0), "-1 years -1 mons");
    }

    #[test]
    fn arrays_print_like_postgres() {
        use datafusion::arrow::array::{ListArray, StringArray as S};
        use datafusion::arrow::datatypes::Int32Type;
        let ints: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(3)]),
            None,
            Some(vec![]),
        ]));
        let text = array_text(&ints).unwrap();
        let text = text.as_string::<i32>();
        assert_eq!(text.value(0), "{1,NULL,3}");
        assert!(text.is_null(1));
        assert_eq!(text.value(2), "{}");
        let words = S::from(vec![
            Some("x y"),
            Some("z"),
            Some(""),
            Some("a\"b"),
            Some("null"),
            None,
        ]);
        let field = Arc::new(datafusion::arrow::datatypes::Field::new(
            "item",
            DataType::Utf8,
            true,
        ));
        let list: ArrayRef = Arc::new(ListArray::new(
            field,
            datafusion::arrow::buffer::OffsetBuffer::from_lengths([6]),
            Arc::new(words),
            None,
        ));
        let text = array_text(&list).unwrap();
        assert_eq!(
            text.as_string::<i32>().value(0),
            r#"{"x y",z,"","a\"b","null",NULL}"#
        );
    }

    #[test]
    fn negative_scales_are_integers() {
        let text = |v, scale| {
            let mut s = String::new();
            decimal_text(v, scale, &mut s);
            s
        };
        assert_eq!(text(1, -15), "1000000000000000");
        assert_eq!(text(-15, -2), "-1500");
        assert_eq!(text(0, -3), "0");
        // 1500 as base-10000 digits: weight 0, one group.
        assert_eq!(numeric_bytes(15, -2)[..4], [0, 1, 0, 0]);
    }

    #[test]
    fn numerics_beyond_the_encoder_print_and_encode_whole() {
        let big: i128 = 92233720368547758070000000000000000; // 9223372036854775807.0000000000000000
        let arr: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(big), Some(-125), None, Some(0), Some(50000)])
                .with_precision_and_scale(38, 16)
                .unwrap(),
        );
        let text = render(&arr).unwrap();
        let text = text.as_string::<i32>();
        assert_eq!(text.value(0), "9223372036854775807.0000000000000000");
        assert_eq!(text.value(1), "-0.0000000000000125");
        assert!(text.is_null(2));
        assert_eq!(text.value(3), "0.0000000000000000");
        let small: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(125)])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        assert!(render(&small).is_none() && numeric_binary(&small).is_none());
        // A zero keeps its display scale (`0.00`), which the encoder drops.
        let zero: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(125), Some(0)])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        let zero = numeric_binary(&zero).unwrap();
        assert_eq!(zero.as_binary::<i32>().value(1), [0, 0, 0, 0, 0, 0, 0, 2]);
        // PostgreSQL's own bytes (numeric_send) of these values.
        let hex = |v: i128, s: i8| {
            numeric_bytes(v, s)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(hex(big, 16), "0005000400000010039a0d2c0170156516af");
        assert_eq!(hex(-125, 2), "0002000040000002000109c4");
        assert_eq!(hex(-125, 16), "0001fffc40000010007d");
        assert_eq!(numeric_bytes(0, 16), [0, 0, 0, 0, 0, 0, 0, 16]);
    }

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(float_text(1024.0), "1024");
        assert_eq!(float_text(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(float_text(-2.5), "-2.5");
        assert_eq!(float_text(f64::INFINITY), "Infinity");
        assert_eq!(float_text(f64::NAN), "NaN");
        assert_eq!(float_text(1e20), "1e+20");
        assert_eq!(f32_text(1.5), "1.5");
        assert_eq!(f32_text(0.1), "0.1");
        assert_eq!(f32_text(1e6), "1e+06");
        assert_eq!(f32_text(123456.0), "123456");
        assert_eq!(float_text(1e15), "1e+15");
        assert_eq!(float_text(123456789012345.0), "123456789012345");
        assert_eq!(float_text(-0.000015), "-1.5e-05");
        assert_eq!(float_text(0.0001), "0.0001");
        assert_eq!(float_text(0.0), "0");
        assert_eq!(float_text(-0.0), "-0");
    }

    #[test]
    fn the_plain_range_agrees_with_the_exponent_form() {
        // Values around the range's ends, and a spread of others, print as
        // the exponent form decides.
        let mut values: Vec<f64> = Vec::new();
        for edge in [1e-4, 1e15, 1e-5, 1e14] {
            let mut v: f64 = edge;
            for _ in 0..50 {
                v = f64::from_bits(v.to_bits() - 1);
            }
            for _ in 0..100 {
                values.push(v);
                values.push(-v);
                v = f64::from_bits(v.to_bits() + 1);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                values.push(v);
            }
            values.push((x % 1_000_000_007) as f64 / 1e9 * 10f64.powi((x % 40) as i32 - 20));
        }
        for v in values {
            assert_eq!(
                float_text(v),
                shortest_text(format!("{v}"), format!("{v:e}"), 15),
                "{v:e}"
            );
            let f = v as f32;
            if f.is_finite() {
                assert_eq!(
                    f32_text(f),
                    shortest_text(format!("{f}"), format!("{f:e}"), 6),
                    "{f:e}"
                );
            }
        }
    }

    #[test]
    fn timestamps_print_only_their_fraction() {
        assert_eq!(timestamp_text(0, false), "1970-01-01 00:00:00");
        assert_eq!(timestamp_text(500_000, false), "1970-01-01 00:00:00.5");
        assert_eq!(timestamp_text(123, true), "1970-01-01 00:00:00.000123+00");
        assert_eq!(
            timestamp_text(253_402_300_800_000_000, false),
            "10000-01-01 00:00:00"
        );
        assert_eq!(
            timestamp_text(-63_517_824_000_000_000 + 120_000, false),
            "0044-03-15 00:00:00.12 BC"
        );
    }
}
