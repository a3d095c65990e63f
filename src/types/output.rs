//! PostgreSQL's text output for the types whose rendering by Arrow differs
//! from PostgreSQL's: timestamps print only the fractional digits they have
//! (`13:45:00`, `23:59:59.5`), floats their shortest round-trip form
//! (`1024`, not `1024.0`; `1e+15`; `Infinity`, `NaN`). Used for text results
//! on the wire and for casts to text.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, TimeUnit, TimestampMicrosecondType,
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
    shortest_text(format!("{v}"), format!("{v:e}"), 15)
}

fn f32_text(v: f32) -> String {
    if !v.is_finite() {
        return non_finite(v as f64);
    }
    // The shortest form of the f32 itself, not of its widened f64.
    shortest_text(format!("{v}"), format!("{v:e}"), 6)
}

/// `2024-02-29 13:45:00.25` from microseconds since the epoch.
fn timestamp_text(micros: i64, tz: bool) -> String {
    let Some(dt) = chrono::DateTime::from_timestamp_micros(micros) else {
        return micros.to_string();
    };
    let mut s = dt.format("%Y-%m-%d %H:%M:%S").to_string();
    let frac = dt.timestamp_subsec_micros();
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    if tz {
        s.push_str("+00");
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

/// `arr` as PostgreSQL prints it, for the types Arrow prints otherwise.
pub fn render(arr: &ArrayRef) -> Option<ArrayRef> {
    Some(match arr.data_type() {
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
        _ => return None,
    })
}

/// Whether [`render`] prints values of type `t`.
pub fn renders(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Float64 | DataType::Float32 | DataType::Timestamp(..)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn timestamps_print_only_their_fraction() {
        assert_eq!(timestamp_text(0, false), "1970-01-01 00:00:00");
        assert_eq!(timestamp_text(500_000, false), "1970-01-01 00:00:00.5");
        assert_eq!(timestamp_text(123, true), "1970-01-01 00:00:00.000123+00");
    }
}
