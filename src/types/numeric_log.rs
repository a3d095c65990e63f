//! Logarithms of numerics as PostgreSQL computes them: `ln(numeric)`,
//! `log(numeric)` / `log10(numeric)` and `log(b, x)` (whose arguments are
//! numerics, integers included) are numerics, exact to the places
//! PostgreSQL chooses for each value: at least 16 significant digits and
//! no fewer places than an argument has (`log(2, 8)` is
//! `3.0000000000000000`; a quotient of two floating-point logarithms was
//! `2.9999999999999996` for `log(10, 1000)`).
//!
//! The logarithm is computed in fixed point with 32 fractional digits
//! (256-bit integers), rounded at PostgreSQL's places, and stored at
//! [`SCALE`] places (planned at [`PLANNED_SCALE`] until the analyzer widens
//! it, so that a product of two logarithms can be planned at all); the
//! places UDF gives the places it is shown with (see
//! `places::display_scales`).

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Int32Array};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, i256};
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;
use std::sync::Arc;

use crate::error::{Error, ErrorKind};

/// The scale a numeric logarithm is stored at (as a quotient is): a value
/// PostgreSQL gives more places (a logarithm below 0.0001) is rounded here.
pub const SCALE: i8 = 20;

/// The scale a numeric logarithm is planned with: DataFusion refuses to
/// type a product whose scales add up to more than 38.
pub const PLANNED_SCALE: i8 = 16;

/// Fractional digits of the fixed-point computation.
const DIGITS: u32 = 32;
/// ln 2 and ln 10, times 10^32, rounded.
const LN2: i128 = 69_314_718_055_994_530_941_723_212_145_818;
const LN10: i128 = 230_258_509_299_404_568_401_799_145_468_436;

/// Which logarithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `ln(x)`.
    Natural,
    /// `log(x)`, `log10(x)`.
    Ten,
    /// `log(b, x)`.
    Base,
}

fn pow10(n: u32) -> i256 {
    i256::from_i128(10).wrapping_pow(n)
}

/// A positive decimal `u / 10^s`.
#[derive(Clone, Copy)]
struct Value {
    u: i128,
    s: i8,
}

impl Value {
    fn digits(self) -> i32 {
        self.u
            .unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d as i32 + 1)
    }

    /// ln(x) times 10^32.
    fn ln(self) -> i256 {
        let one = pow10(DIGITS);
        // x = m * 10^k, m in [1, 10), m in fixed point.
        let d = self.digits();
        let k = d - 1 - self.s as i32;
        let shift = DIGITS as i32 - (d - 1);
        let mut m = if shift >= 0 {
            i256::from_i128(self.u) * pow10(shift as u32)
        } else {
            i256::from_i128(self.u) / pow10((-shift) as u32)
        };
        // m in [1, 2): ln m = ln(m / 2^j) + j ln 2.
        let two = one * i256::from_i128(2);
        let mut j = 0i128;
        while m >= two {
            m /= i256::from_i128(2);
            j += 1;
        }
        // ln m = 2 atanh(z), z = (m - 1) / (m + 1) in [0, 1/3).
        let z = (m - one) * one / (m + one);
        let z2 = z * z / one;
        let mut sum = i256::ZERO;
        let mut term = z;
        let mut n = 1i128;
        // About 35 terms for z below 1/3; bounded all the same.
        while term != i256::ZERO && n < 400 {
            sum += term / i256::from_i128(n);
            term = term * z2 / one;
            n += 2;
        }
        sum * i256::from_i128(2)
            + i256::from_i128(LN2) * i256::from_i128(j)
            + i256::from_i128(LN10) * i256::from_i128(k as i128)
    }

    /// PostgreSQL's estimate of the decimal weight of ln(x)
    /// (`estimate_ln_dweight`): of x - 1 for x in [0.9, 1.1], else of
    /// ln(x) as estimated from x's first two base-10000 digits, truncated
    /// toward zero.
    fn ln_weight(self) -> i32 {
        let s = self.s as i32;
        let u = i256::from_i128(self.u);
        if s >= 0 {
            let unit = pow10(s as u32);
            let ten_u = u * i256::from_i128(10);
            if ten_u >= unit * i256::from_i128(9) && ten_u <= unit * i256::from_i128(11) {
                let d = u - unit;
                if d == i256::ZERO {
                    return 0;
                }
                let digits = d.wrapping_abs().to_string().len() as i32;
                return digits - 1 - s;
            }
        }
        // x's digits in groups of four aligned at the decimal point.
        let text = self.u.unsigned_abs().to_string();
        let (int, frac) = if s <= 0 {
            (
                format!("{text}{}", "0".repeat((-s) as usize)),
                String::new(),
            )
        } else if text.len() as i32 > s {
            let at = text.len() - s as usize;
            (text[..at].to_string(), text[at..].to_string())
        } else {
            (
                String::new(),
                format!("{}{text}", "0".repeat((s as usize) - text.len())),
            )
        };
        let int = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
        let frac = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
        let groups: Vec<u32> = format!("{int}{frac}")
            .as_bytes()
            .chunks(4)
            .map(|c| {
                std::str::from_utf8(c)
                    .ok()
                    .and_then(|g| g.parse().ok())
                    .unwrap_or(0)
            })
            .collect();
        let mut weight = (int.len() / 4) as i32 - 1;
        let Some(first) = groups.iter().position(|g| *g != 0) else {
            return 0;
        };
        weight -= first as i32;
        let mut digits = f64::from(groups[first]);
        let mut dweight = weight * 4;
        if let Some(next) = groups.get(first + 1) {
            digits = digits * 10000.0 + f64::from(*next);
            dweight -= 4;
        }
        let ln = digits.ln() + f64::from(dweight) * std::f64::consts::LN_10;
        ln.abs().log10() as i32
    }
}

/// The places PostgreSQL gives a logarithm: 16 significant digits, no
/// fewer than an argument's places (`dscales`), capped at `scale`.
fn result_places(weight: i32, dscales: &[i32], scale: i8) -> i32 {
    let mut r = 16 - weight;
    for d in dscales {
        r = r.max(*d);
    }
    r.clamp(0, scale as i32)
}

/// The places of one logarithm (see [`result_places`]), without
/// computing it.
fn places_of(kind: Kind, base: Option<Value>, x: Value, scale: i8) -> i32 {
    match kind {
        Kind::Natural => result_places(x.ln_weight(), &[x.s as i32], scale),
        Kind::Ten | Kind::Base => {
            let b = base.unwrap_or(Value { u: 10, s: 0 });
            result_places(
                x.ln_weight() - b.ln_weight(),
                &[b.s as i32, x.s as i32],
                scale,
            )
        }
    }
}

/// The value (stored at `scale` places, rounded at its own) and places
/// of one logarithm; `base` is given for [`Kind::Base`].
fn one(kind: Kind, base: Option<Value>, x: Value, scale: i8) -> Result<(i128, i32)> {
    let ln_x = x.ln();
    let (fixed, weight, dscales) = match kind {
        Kind::Natural => (ln_x, x.ln_weight(), vec![x.s as i32]),
        Kind::Ten | Kind::Base => {
            let b = match kind {
                Kind::Base => base.expect("a base"),
                _ => Value { u: 10, s: 0 },
            };
            let ln_b = b.ln();
            if ln_b == i256::ZERO {
                // A base of 1 divides by zero; one within 10^-32 of it
                // gives a logarithm beyond any numeric Sluice stores.
                return Err(if b.u == 10i128.pow(b.s.max(0) as u32) {
                    Error::new(ErrorKind::DivisionByZero, "division by zero")
                } else {
                    Error::new(
                        ErrorKind::NumericOutOfRange,
                        "value overflows numeric format",
                    )
                }
                .into());
            }
            (
                ln_x * pow10(DIGITS) / ln_b,
                x.ln_weight() - b.ln_weight(),
                vec![b.s as i32, x.s as i32],
            )
        }
    };
    let places = result_places(weight, &dscales, scale);
    // Round half away from zero at `places`, then store at `scale`.
    let cut = pow10(DIGITS - places as u32);
    let half = cut / i256::from_i128(2);
    let rounded = if fixed < i256::ZERO {
        -((-fixed + half) / cut)
    } else {
        (fixed + half) / cut
    };
    let stored = rounded
        .checked_mul(pow10((scale as i32 - places) as u32))
        .and_then(|v| v.to_i128())
        .filter(|v| v.unsigned_abs() < 10u128.pow(38))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NumericOutOfRange,
                "value overflows numeric format",
            )
        })?;
    Ok((stored, places))
}

/// The decimals of `arg` as values; `None` when it is not a Decimal128.
fn decimals(arg: &ColumnarValue, rows: usize) -> Result<Option<(Decimal128Array, i8)>> {
    let DataType::Decimal128(_, s) = arg.data_type() else {
        return Ok(None);
    };
    let a = arg.to_array(rows)?;
    Ok(Some((a.as_primitive::<Decimal128Type>().clone(), s)))
}

/// Whether [`evaluate`] takes arguments of these types.
pub fn takes(args: &[DataType]) -> bool {
    !args.is_empty() && args.iter().all(|t| matches!(t, DataType::Decimal128(_, _)))
}

/// The logarithms of `args` (decimals: `x`, or `b, x`), as numerics at
/// `scale` places, or with `places` the places each is shown with.
pub fn evaluate(
    kind: Kind,
    args: &[ColumnarValue],
    rows: usize,
    places: bool,
    scale: i8,
) -> Result<ColumnarValue> {
    let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if scalar { 1 } else { rows };
    let mut columns = Vec::new();
    for a in args {
        match decimals(a, rows)? {
            Some(c) => columns.push(c),
            None => {
                return Err(datafusion::error::DataFusionError::Internal(
                    "a numeric logarithm of something that is not a decimal".into(),
                ));
            }
        }
    }
    let mut values: Vec<Option<i128>> = Vec::with_capacity(rows);
    for i in 0..rows {
        if columns.iter().any(|(c, _)| c.is_null(i)) {
            values.push(None);
            continue;
        }
        let value = |j: usize| Value {
            u: columns[j].0.value(i),
            s: columns[j].1,
        };
        let (base, x) = match kind {
            Kind::Base => (Some(value(0)), value(1)),
            _ => (None, value(0)),
        };
        // Zero and negative numbers are refused (`logarithms::check`), also
        // where only the places are asked for.
        if let Some(v) = base.iter().chain([&x]).find(|v| v.u <= 0) {
            let what = if v.u == 0 {
                "zero"
            } else {
                "a negative number"
            };
            return Err(Error::new(
                ErrorKind::InvalidLogarithmArgument,
                format!("cannot take logarithm of {what}"),
            )
            .into());
        }
        values.push(Some(if places {
            places_of(kind, base, x, scale) as i128
        } else {
            one(kind, base, x, scale)?.0
        }));
    }
    let out: ArrayRef = if places {
        Arc::new(Int32Array::from_iter(
            values.into_iter().map(|v| v.map(|v| v as i32)),
        ))
    } else {
        Arc::new(Decimal128Array::from_iter(values).with_precision_and_scale(38, scale)?)
    };
    super::columnar(out, scalar)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(kind: Kind, base: Option<(i128, i8)>, x: (i128, i8)) -> String {
        let v = |(u, s)| Value { u, s };
        let (stored, places) = one(kind, base.map(v), v(x), SCALE).unwrap();
        let text = stored.to_string();
        let (int, frac) = text.split_at(text.len() - SCALE as usize);
        format!(
            "{}.{}",
            if int.is_empty() { "0" } else { int },
            &frac[..places as usize]
        )
    }

    #[test]
    fn logarithms_have_postgresql_digits_and_places() {
        // What PostgreSQL 15 prints for each.
        assert_eq!(
            shown(Kind::Base, Some((2, 0)), (8, 0)),
            "3.0000000000000000"
        );
        assert_eq!(
            shown(Kind::Base, Some((10, 0)), (1000, 0)),
            "3.0000000000000000"
        );
        assert_eq!(
            shown(Kind::Base, Some((20, 1)), (85, 1)),
            "3.0874628412503394"
        );
        assert_eq!(
            shown(Kind::Base, Some((15, 1)), (100, 0)),
            "11.3577471745351456"
        );
        assert_eq!(
            shown(Kind::Base, Some((100, 0)), (2, 0)),
            "0.1505149978319906"
        );
        assert_eq!(shown(Kind::Natural, None, (2, 0)), "0.6931471805599453");
        // PostgreSQL estimates the weight from the first eight digits.
        assert_eq!(
            shown(Kind::Natural, None, (220264658, 4)),
            "10.0000000002357747"
        );
        assert_eq!(shown(Kind::Ten, None, (1, 3)), "-3.0000000000000000");
        assert_eq!(
            shown(
                Kind::Base,
                Some((2, 0)),
                (1_000_000_000_000_000_000_000_000_000_000, 0)
            ),
            "99.657842846620870"
        );
    }

    #[test]
    fn a_base_of_one_divides_by_zero() {
        let v = |u| Value { u, s: 0 };
        assert!(one(Kind::Base, Some(v(1)), v(8), SCALE).is_err());
    }
}
