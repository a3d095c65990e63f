//! The quotient of numerics, digit for digit as PostgreSQL gives it.
//!
//! PostgreSQL chooses a quotient's scale per value (`select_div_scale` in
//! its `numeric.c`): at least 16 significant digits, estimated from the
//! leading base-10000 digit groups of the operands, and never fewer
//! fractional digits than either operand has; the exact quotient is
//! rounded there, half away from zero. `120000.00 / 12` is
//! `10000.0000000000000000` (16 places), `1 / 3.0` is
//! `0.33333333333333333333` (20), `95000.50 / 12` is
//! `7916.7083333333333333`.
//!
//! An Arrow decimal has one scale per column, so [`divide`] computes each
//! value at its own scale and stores it at the column's (the rule in
//! `numeric` chooses 20, or fewer when the integer digits need the room):
//! the value is PostgreSQL's, with zeros after its last place. A result
//! column that is such a quotient is sent with each value's own places:
//! `places::display_scales` adds each row's scale beside it and a last
//! projection that writes the text PostgreSQL would.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Int32Type, i256};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use crate::error::{Error, ErrorKind};

/// `sluice_numeric_divide(a, b, like [, places of a, places of b])`:
/// `a / b` at PostgreSQL's places for the values, stored at the scale of
/// `like` (a typed NULL). An operand's places are its scale unless given.
pub const DIVIDE: &str = "sluice_numeric_divide";
/// `sluice_numeric_divide_places(a, b, like [, ...])`: the places of each
/// quotient [`DIVIDE`] computes.
pub const PLACES: &str = "sluice_numeric_divide_places";
/// `sluice_numeric_text(q, places)`: a quotient as text with its places.
pub const TEXT: &str = "sluice_numeric_text";

/// PostgreSQL's minimum significant digits of a quotient.
const MIN_SIG_DIGITS: i32 = 16;

/// The weight (position of the leading base-10000 group, 0 for the units
/// group, -1 for the first four fractional digits) and the value of that
/// group, of `v` at `scale`; (0, 0) for zero.
fn leading_group(v: i128, scale: i8) -> (i32, u128) {
    let mut v = v.unsigned_abs();
    if v == 0 {
        return (0, 0);
    }
    // Align the fractional digits to whole groups of four.
    let scale = scale.max(0) as u32;
    let padded = scale.div_ceil(4) * 4;
    let Some(aligned) = 10u128
        .checked_pow(padded - scale)
        .and_then(|m| v.checked_mul(m))
    else {
        // Beyond 38 digits once aligned: drop the digits that cannot lead.
        v /= 10u128.pow(4 - (padded - scale));
        return leading_group(v as i128, (padded - 4) as i8);
    };
    let mut groups = 0i32;
    let mut rest = aligned;
    while rest >= 10_000 {
        rest /= 10_000;
        groups += 1;
    }
    (groups - (padded / 4) as i32, rest)
}

/// PostgreSQL's scale for `a / b` (`select_div_scale`), of operands
/// whose places are their scales.
pub fn places(a: i128, s1: i8, b: i128, s2: i8) -> i32 {
    places_of(a, s1, s1 as i32, b, s2, s2 as i32)
}

/// PostgreSQL's scale for `a / b`, of operands at scales `s1` and `s2`
/// whose own places are `p1` and `p2` (an average stored at scale 16 may
/// have 20 of them).
fn places_of(a: i128, s1: i8, p1: i32, b: i128, s2: i8, p2: i32) -> i32 {
    let (w1, d1) = leading_group(a, s1);
    let (w2, d2) = leading_group(b, s2);
    let mut qweight = w1 - w2;
    if d1 <= d2 {
        qweight -= 1;
    }
    (MIN_SIG_DIGITS - qweight * 4)
        .max(p1.max(0))
        .max(p2.max(0))
        .clamp(0, 1000)
}

fn overflow() -> DataFusionError {
    DataFusionError::External(Box::new(Error::new(
        ErrorKind::NumericOutOfRange,
        "value overflows numeric format",
    )))
}

/// `a / b` rounded half away from zero at `places` and written at `scale`
/// (at least `places`).
fn quotient(a: i128, s1: i8, b: i128, s2: i8, places: i32, scale: i8) -> Result<i128> {
    if b == 0 {
        return Err(DataFusionError::External(Box::new(Error::new(
            ErrorKind::DivisionByZero,
            "division by zero",
        ))));
    }
    // a / 10^s1 / (b / 10^s2) * 10^places = a * 10^(places - s1 + s2) / b
    let shift = places - s1 as i32 + s2 as i32;
    let ten = i256::from_i128(10);
    let (mut num, mut den) = (i256::from_i128(a), i256::from_i128(b));
    if shift >= 0 {
        num = num
            .checked_mul(ten.checked_pow(shift as u32).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
    } else {
        den = den
            .checked_mul(ten.checked_pow((-shift) as u32).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
    }
    let (q, r) = (num / den, num % den);
    let two_r = r.wrapping_abs().checked_mul(i256::from_i128(2));
    let q = match two_r {
        Some(t) if t >= den.wrapping_abs() => {
            if (num < i256::ZERO) != (den < i256::ZERO) {
                q - i256::ONE
            } else {
                q + i256::ONE
            }
        }
        _ => q,
    };
    let widened = q
        .checked_mul(
            ten.checked_pow((scale as i32 - places) as u32)
                .ok_or_else(overflow)?,
        )
        .ok_or_else(overflow)?;
    let v = widened.to_i128().ok_or_else(overflow)?;
    if v.unsigned_abs() >= 10u128.pow(38) {
        return Err(overflow());
    }
    Ok(v)
}

fn decimal_scale(t: &DataType) -> Result<i8> {
    match t {
        DataType::Decimal128(_, s) => Ok(*s),
        other => Err(DataFusionError::Internal(format!(
            "{DIVIDE} of a {other}, not a decimal"
        ))),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Divide {
    signature: Signature,
    /// [`PLACES`] instead of [`DIVIDE`].
    places: bool,
}

impl ScalarUDFImpl for Divide {
    fn name(&self) -> &str {
        if self.places { PLACES } else { DIVIDE }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(if self.places {
            DataType::Int32
        } else {
            types[2].clone()
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (s1, s2) = (
            decimal_scale(&args.args[0].data_type())?,
            decimal_scale(&args.args[1].data_type())?,
        );
        let DataType::Decimal128(precision, scale) = args.args[2].data_type() else {
            return Err(DataFusionError::Internal(format!(
                "{DIVIDE}: the result's type is not a decimal"
            )));
        };
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        // Scalars alone make arrays of one row.
        let rows = if scalar { 1 } else { args.number_rows };
        let arrays = ColumnarValue::values_to_arrays(&args.args[..2])?;
        let (a, b) = (
            arrays[0].as_primitive::<Decimal128Type>(),
            arrays[1].as_primitive::<Decimal128Type>(),
        );
        // The operands' own places, when given (see `places::display_scales`).
        let own = match args.args.get(3..5) {
            Some([p1, p2]) => {
                let cast = |a: &ColumnarValue| -> Result<Int32Array> {
                    let a = datafusion::arrow::compute::cast(&a.to_array(rows)?, &DataType::Int32)?;
                    Ok(a.as_primitive::<Int32Type>().clone())
                };
                Some((cast(p1)?, cast(p2)?))
            }
            _ => None,
        };
        let own_places = |i: usize| match &own {
            Some((p1, p2)) => (
                if p1.is_null(i) {
                    s1 as i32
                } else {
                    p1.value(i)
                },
                if p2.is_null(i) {
                    s2 as i32
                } else {
                    p2.value(i)
                },
            ),
            None => (s1 as i32, s2 as i32),
        };
        let each = (0..rows).map(|i| {
            if a.is_null(i) || b.is_null(i) {
                return Ok(None);
            }
            let (x, y) = (a.value(i), b.value(i));
            let (p1, p2) = own_places(i);
            let p = places_of(x, s1, p1, y, s2, p2).min(scale as i32);
            Ok(Some(if self.places {
                p as i128
            } else {
                quotient(x, s1, y, s2, p, scale)?
            }))
        });
        let values: Vec<Option<i128>> = each.collect::<Result<_>>()?;
        let out: ArrayRef = if self.places {
            Arc::new(Int32Array::from_iter(
                values.into_iter().map(|v| v.map(|v| v as i32)),
            ))
        } else {
            Arc::new(
                datafusion::arrow::array::Decimal128Array::from_iter(values)
                    .with_precision_and_scale(precision, scale)?,
            )
        };
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// [`DIVIDE`] as a UDF.
pub fn divide_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Divide {
        signature: Signature::one_of(
            vec![TypeSignature::Any(3), TypeSignature::Any(5)],
            Volatility::Immutable,
        ),
        places: false,
    })
}

/// [`PLACES`] as a UDF.
pub fn places_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Divide {
        signature: Signature::one_of(
            vec![TypeSignature::Any(3), TypeSignature::Any(5)],
            Volatility::Immutable,
        ),
        places: true,
    })
}

/// `a / b` (numerics of the scales they have) at PostgreSQL's places,
/// stored as `numeric(precision, scale)`.
pub fn divide(a: Expr, b: Expr, precision: u8, scale: i8) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(divide_udf()),
        vec![
            a,
            b,
            Expr::Literal(ScalarValue::Decimal128(None, precision, scale), None),
        ],
    ))
}

/// A decimal `v` of `scale` written with `places` fractional digits, its
/// digits beyond them being zeros.
fn text_of(v: i128, scale: i8, places: i32) -> String {
    let places = places.clamp(0, scale.max(0) as i32) as u32;
    let v = v / 10i128.pow(scale.max(0) as u32 - places);
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 { "-" } else { "" };
    if places == 0 {
        return format!("{sign}{digits}");
    }
    let p = places as usize;
    let digits = format!("{digits:0>width$}", width = p + 1);
    let (int, frac) = digits.split_at(digits.len() - p);
    format!("{sign}{int}.{frac}")
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Text {
    signature: Signature,
}

impl ScalarUDFImpl for Text {
    fn name(&self) -> &str {
        TEXT
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scale = decimal_scale(&args.args[0].data_type())?;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        // Scalars alone make arrays of one row.
        let rows = if scalar { 1 } else { args.number_rows };
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let values = arrays[0].as_primitive::<Decimal128Type>();
        let places = datafusion::arrow::compute::cast(&arrays[1], &DataType::Int32)?;
        let places = places.as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        let out: StringArray = (0..rows)
            .map(|i| {
                (!values.is_null(i)).then(|| {
                    let p = if places.is_null(i) {
                        scale as i32
                    } else {
                        places.value(i)
                    };
                    text_of(values.value(i), scale, p)
                })
            })
            .collect();
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(Arc::new(out))
        })
    }
}

/// [`TEXT`] as a UDF.
pub fn text_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Text {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_follow_postgres() {
        // (a, s1, b, s2) -> places, as PostgreSQL 15 answers.
        assert_eq!(places(12000000, 2, 12, 0), 16); // 120000.00 / 12
        assert_eq!(places(9500050, 2, 12, 0), 16); // 95000.50 / 12
        assert_eq!(places(1, 0, 30, 1), 20); // 1 / 3.0
        assert_eq!(places(1, 2, 7, 0), 20); // 0.01 / 7
        assert_eq!(places(1000000000, 2, 1, 0), 12); // 1e7 / 1
        assert_eq!(places(10, 0, 4, 0), 16); // 10 / 4
        assert_eq!(places(7, 0, 2, 0), 16); // 7 / 2
        // An average stored at scale 20 with 16 places of its own, by 2.50:
        // its places, not its column's, count.
        let avg = -394128356666666667i128 * 10i128.pow(4);
        assert_eq!(places(avg, 20, 250, 2), 20);
        assert_eq!(places_of(avg, 20, 16, 250, 2, 2), 16);
        assert_eq!(places(9500050, 2, 3, 4), 8); // 950.0050 ... / 0.0003
        assert_eq!(places(0, 0, 3, 0), 20); // 0 / 3
    }

    #[test]
    fn quotients_round_half_away_at_their_places() {
        let q = |a, s1, b, s2, scale| {
            let p = places(a, s1, b, s2).min(scale as i32);
            text_of(quotient(a, s1, b, s2, p, scale).unwrap(), scale, p)
        };
        assert_eq!(q(9500050, 2, 12, 0, 20), "7916.7083333333333333");
        assert_eq!(q(12000000, 2, 12, 0, 20), "10000.0000000000000000");
        assert_eq!(q(-500, 2, 3, 0, 20), "-1.6666666666666667");
        assert_eq!(q(1, 0, 30, 1, 20), "0.33333333333333333333");
        assert_eq!(q(1000000000, 2, 1, 0, 20), "10000000.000000000000");
        assert_eq!(q(1, 2, 7, 0, 20), "0.00142857142857142857");
        assert!(quotient(1, 0, 0, 0, 16, 20).is_err());
    }
}
