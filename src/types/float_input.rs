//! Text read as `double precision` or `real` as PostgreSQL's `float8in`
//! and `float4in` read it: spaces around the number, `Infinity`, `inf`
//! and `NaN` in any case, and a number beyond the type's range (`1e400`,
//! `1e-400`) is 22003, where Arrow's cast gave an infinity or zero.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float32Array, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::{Error, ErrorKind};

/// The function a cast of text to a float calls:
/// `sluice_text_to_float(text, <a value of the float type>)`.
pub const TEXT_TO_FLOAT: &str = "sluice_text_to_float";

/// One text value as a float of `real` (f32) or `double precision` range.
fn parse(text: &str, real: bool) -> std::result::Result<f64, Error> {
    let type_name = if real { "real" } else { "double precision" };
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{b}');
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let negative = lower.starts_with('-');
    if matches!(unsigned, "inf" | "infinity") && lower.len() - unsigned.len() <= 1 {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if unsigned == "nan" && lower.len() - unsigned.len() <= 1 {
        return Ok(f64::NAN);
    }
    // strtod reads hexadecimal too (`0x10` is 16).
    if let Some(hex) = unsigned.strip_prefix("0x")
        && lower.len() - unsigned.len() <= 1
        && !hex.is_empty()
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && let Ok(v) = u64::from_str_radix(hex, 16)
    {
        let v = v as f64;
        return Ok(if negative { -v } else { v });
    }
    let invalid = || {
        Error::new(
            ErrorKind::InvalidText,
            format!("invalid input syntax for type {type_name}: \"{text}\""),
        )
    };
    // Digits, a point, an exponent: what strtod reads (not "inf" spelled
    // inside, nor Rust's own forms).
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(invalid());
    }
    let v: f64 = t.parse().map_err(|_| invalid())?;
    let out_of_range = || {
        Error::new(
            ErrorKind::NumericOutOfRange,
            format!("\"{text}\" is out of range for type {type_name}"),
        )
    };
    let mantissa_nonzero = t
        .split(['e', 'E'])
        .next()
        .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)));
    if real {
        let r: f32 = t.parse().map_err(|_| invalid())?;
        if r.is_infinite() || (r == 0.0 && mantissa_nonzero) {
            return Err(out_of_range());
        }
        return Ok(f64::from(r));
    }
    if v.is_infinite() || (v == 0.0 && mantissa_nonzero) {
        return Err(out_of_range());
    }
    Ok(v)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TextToFloat {
    signature: Signature,
}

impl ScalarUDFImpl for TextToFloat {
    fn name(&self) -> &str {
        TEXT_TO_FLOAT
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args.get(1) {
            Some(DataType::Float32) => DataType::Float32,
            _ => DataType::Float64,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let real = args.args.get(1).map(|a| a.data_type()) == Some(DataType::Float32);
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        let strings = input.as_string::<i32>();
        let mut values: Vec<Option<f64>> = Vec::with_capacity(strings.len());
        for i in 0..strings.len() {
            values.push(if strings.is_null(i) {
                None
            } else {
                Some(parse(strings.value(i), real)?)
            });
        }
        let out: ArrayRef = if real {
            Arc::new(Float32Array::from_iter(
                values.into_iter().map(|v| v.map(|v| v as f32)),
            ))
        } else {
            Arc::new(Float64Array::from_iter(values))
        };
        super::columnar(out, scalar)
    }
}

/// [`TEXT_TO_FLOAT`] as a UDF.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(TextToFloat {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_read_as_postgresql_reads_them() {
        assert_eq!(parse(" 1.5 ", false).unwrap(), 1.5);
        assert_eq!(parse("-Infinity", false).unwrap(), f64::NEG_INFINITY);
        assert_eq!(parse("inf", true).unwrap(), f64::INFINITY);
        assert!(parse("NaN", false).unwrap().is_nan());
        assert_eq!(parse("1e308", false).unwrap(), 1e308);
        assert_eq!(parse("0e-400", false).unwrap(), 0.0);
        for (text, real) in [
            ("1e400", false),
            ("-1e-400", false),
            ("1e40", true),
            ("1e-50", true),
        ] {
            let e = parse(text, real).unwrap_err();
            assert_eq!(e.kind, ErrorKind::NumericOutOfRange, "{text}");
        }
        assert_eq!(parse("0x10", false).unwrap(), 16.0);
        assert!(parse("-nan", false).unwrap().is_nan());
        assert!(parse("0x+10", false).is_err());
        for text in ["abc", "", "1.5x", "--1", "infinityx", "1.5e"] {
            let e = parse(text, false).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidText, "{text}");
        }
    }
}
