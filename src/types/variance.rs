//! `var_samp`, `var_pop`, `stddev_samp` and `stddev_pop` (and `variance`,
//! `stddev`) of a numeric or an integer, as PostgreSQL computes them: a
//! `numeric`, exact. PostgreSQL sums the values and their squares exactly
//! (`numeric_stddev_internal`), divides `n * sum(x^2) - sum(x)^2` by
//! `n * (n - 1)` (or `n * n`) at the places `select_div_scale` chooses,
//! and takes the square root at the same places: `stddev` of 10.50,
//! 20.25, 5.00, 99.99 is `44.4858617990030626`, of integers 3 and 7
//! `2.8284271247461901`. DataFusion answered a `double precision` from
//! floating-point running sums (`44.48586179900306`).
//!
//! Each function is DataFusion's for a `double precision` or `real`
//! argument and [`Moments`] for a numeric or an integer. A value has the
//! places PostgreSQL gives it and is stored at the one scale of its column
//! (20, or fewer when the integer digits need the room); its places are
//! computed beside it by the function's twin (`places_twin`), which
//! `places` adds where the result is sent.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Int64Type, i256};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Coercion, ReversedUDAF, Signature, TypeSignature,
    TypeSignatureClass,
};

use crate::error::{Error, ErrorKind};

/// Which statistic a function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Kind {
    /// Divided by `n * (n - 1)` rather than `n * n`.
    sample: bool,
    /// The square root of the variance.
    root: bool,
}

/// The function names DataFusion registers (`var` is `var_samp`).
const NAMES: [(&str, Kind); 4] = [
    (
        "var",
        Kind {
            sample: true,
            root: false,
        },
    ),
    (
        "var_pop",
        Kind {
            sample: false,
            root: false,
        },
    ),
    (
        "stddev",
        Kind {
            sample: true,
            root: true,
        },
    ),
    (
        "stddev_pop",
        Kind {
            sample: false,
            root: true,
        },
    ),
];

/// DataFusion's function, with exact numerics for a numeric or an integer
/// argument; or, as `places`, the places of each such result.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Statistic {
    inner: AggregateUDF,
    kind: Kind,
    signature: Signature,
    /// The twin giving the places of the result instead of the result.
    places: Option<String>,
}

/// The four functions, named as DataFusion's (`variance` is also an alias
/// of `var_samp`, as in PostgreSQL).
pub fn udafs() -> Vec<AggregateUDF> {
    use datafusion::functions_aggregate::{stddev, variance};
    let inners = [
        variance::var_samp_udaf()
            .as_ref()
            .clone()
            .with_aliases(["variance"]),
        variance::var_pop_udaf().as_ref().clone(),
        stddev::stddev_udaf().as_ref().clone(),
        stddev::stddev_pop_udaf().as_ref().clone(),
    ];
    inners
        .into_iter()
        .map(|inner| statistic(inner, None))
        .collect()
}

fn statistic(inner: AggregateUDF, places: Option<String>) -> AggregateUDF {
    let kind = NAMES
        .iter()
        .find(|(n, _)| *n == inner.name())
        .map(|(_, k)| *k)
        .expect("one of the four statistics");
    // A numeric or an integer as it is; anything else as DataFusion's.
    let exact = |class| TypeSignature::Coercible(vec![Coercion::new_exact(class)]);
    let signature = Signature::one_of(
        vec![
            exact(TypeSignatureClass::Decimal),
            exact(TypeSignatureClass::Integer),
            inner.signature().type_signature.clone(),
        ],
        inner.signature().volatility,
    );
    AggregateUDF::new_from_impl(Statistic {
        inner,
        kind,
        signature,
        places,
    })
}

/// The aggregate giving the places of `name`'s results (a statistic of a
/// numeric or an integer), when `name` is one of these functions.
pub fn places_twin(name: &str) -> Option<Arc<AggregateUDF>> {
    use datafusion::functions_aggregate::{stddev, variance};
    let inner = match name {
        "var" => variance::var_samp_udaf(),
        "var_pop" => variance::var_pop_udaf(),
        "stddev" => stddev::stddev_udaf(),
        "stddev_pop" => stddev::stddev_pop_udaf(),
        _ => return None,
    };
    Some(Arc::new(statistic(
        inner.as_ref().clone(),
        Some(format!("sluice_{name}_places")),
    )))
}

/// The precision and scale a numeric or integer argument is summed at.
fn exact_input(t: &DataType) -> Option<(u8, i8)> {
    match t {
        DataType::Decimal128(p, s) => Some((*p, *s)),
        t if t.is_integer() => match super::numeric::unconstrained(t) {
            DataType::Decimal128(p, s) => Some((p, s)),
            _ => None,
        },
        _ => None,
    }
}

/// The scale a statistic of a `numeric(p, s)` is stored at: the 20 places
/// PostgreSQL gives a value between 0.0001 and 1 (at least twice the
/// argument's), as far as the integer digits the values could reach leave
/// room, and never fewer than 16.
fn stored_scale((p, s): (u8, i8), root: bool) -> i8 {
    let integer = (p as i32 - s as i32).max(1);
    let integer = if root { integer + 1 } else { 2 * integer };
    let wanted = (2 * s as i32).clamp(20, 38);
    wanted.min((38 - integer).max(16)) as i8
}

impl AggregateUDFImpl for Statistic {
    fn name(&self) -> &str {
        self.places.as_deref().unwrap_or(self.inner.name())
    }
    fn aliases(&self) -> &[String] {
        if self.places.is_some() {
            &[]
        } else {
            self.inner.aliases()
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match (args.first().and_then(exact_input), &self.places) {
            (Some(_), Some(_)) => Ok(DataType::Int32),
            (Some(input), None) => Ok(DataType::Decimal128(
                38,
                stored_scale(input, self.kind.root),
            )),
            (None, _) => self.inner.return_type(args),
        }
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match self.moments(&args)? {
            Some(m) => Ok(Box::new(m)),
            None => self.inner.accumulator(args),
        }
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match self.moments(&args)? {
            Some(m) => Ok(Box::new(m)),
            None => self.inner.create_sliding_accumulator(args),
        }
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let Some((_, s)) = args
            .input_fields
            .first()
            .and_then(|f| exact_input(f.data_type()))
        else {
            return self.inner.state_fields(args);
        };
        Ok([
            ("count", DataType::Int64),
            ("sum", DataType::Decimal256(76, s)),
            ("sum_squares", DataType::Decimal256(76, 2 * s)),
        ]
        .into_iter()
        .map(|(n, t)| Arc::new(Field::new(format!("{}[{n}]", args.name), t, true)))
        .collect())
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        args.expr_fields
            .first()
            .is_none_or(|f| exact_input(f.data_type()).is_none())
            && self.inner.groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn datafusion::logical_expr::GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        ScalarValue::try_from(data_type)
    }
}

impl Statistic {
    /// The exact accumulator for a numeric or integer argument.
    fn moments(&self, args: &AccumulatorArgs) -> Result<Option<Moments>> {
        let Some(input) = args
            .expr_fields
            .first()
            .and_then(|f| exact_input(f.data_type()))
        else {
            return Ok(None);
        };
        if args.is_distinct {
            return Err(DataFusionError::External(Box::new(Error::not_supported(
                format!("{}(DISTINCT ...) of a numeric", self.inner.name()),
            ))));
        }
        Ok(Some(Moments {
            kind: self.kind,
            scale: input.1,
            stored: stored_scale(input, self.kind.root),
            places: self.places.is_some(),
            n: 0,
            sum: i256::ZERO,
            squares: i256::ZERO,
        }))
    }
}

fn overflow() -> DataFusionError {
    DataFusionError::External(Box::new(Error::new(
        ErrorKind::NumericOutOfRange,
        "value overflows numeric format",
    )))
}

/// The count, sum and sum of squares of the values seen, exactly.
#[derive(Debug)]
struct Moments {
    kind: Kind,
    /// The argument's scale (the sum's; the squares have twice as many).
    scale: i8,
    /// The scale the result is stored at.
    stored: i8,
    /// Give the result's places, not the result.
    places: bool,
    n: i64,
    sum: i256,
    squares: i256,
}

impl Moments {
    fn add(&mut self, values: &ArrayRef, sign: i64) -> Result<()> {
        let values = match values.data_type() {
            DataType::Decimal128(..) => values.clone(),
            _ => datafusion::arrow::compute::cast(values, &DataType::Decimal128(38, 0))?,
        };
        let step = |a: i256, b: i256| {
            if sign > 0 {
                a.checked_add(b)
            } else {
                a.checked_sub(b)
            }
        };
        for v in values.as_primitive::<Decimal128Type>().iter().flatten() {
            let v = i256::from_i128(v);
            self.n += sign;
            self.sum = step(self.sum, v).ok_or_else(overflow)?;
            let square = v.checked_mul(v).ok_or_else(overflow)?;
            self.squares = step(self.squares, square).ok_or_else(overflow)?;
        }
        Ok(())
    }

    /// The statistic at its places, and those places; `None` for NULL.
    fn value(&self) -> Result<Option<(i256, i32)>> {
        let n = self.n as i128;
        if n == 0 || (self.kind.sample && n == 1) {
            return Ok(None);
        }
        let n = i256::from_i128(n);
        let numerator = n
            .checked_mul(self.squares)
            .zip(self.sum.checked_mul(self.sum))
            .and_then(|(a, b)| a.checked_sub(b))
            .ok_or_else(overflow)?;
        // Equal values (PostgreSQL's guard against a rounding error).
        if numerator <= i256::ZERO {
            return Ok(Some((i256::ZERO, 0)));
        }
        let denominator = if self.kind.sample {
            n.checked_mul(n - i256::ONE)
        } else {
            n.checked_mul(n)
        }
        .ok_or_else(overflow)?;
        let numerator_scale = 2 * self.scale as i32;
        let r = select_div_scale(numerator, numerator_scale, denominator);
        let places = r.min(self.stored as i32);
        if !self.kind.root {
            let v = divided(numerator, numerator_scale, denominator, places)?;
            return Ok(Some((v, places)));
        }
        // The square root of the variance PostgreSQL rounds at `r`.
        let variance = divided(numerator, numerator_scale, denominator, r)?;
        let shift = 2 * places - r;
        let scaled = if shift >= 0 {
            variance.checked_mul(ten_to(shift)?)
        } else {
            variance.checked_div(ten_to(-shift)?)
        }
        .ok_or_else(overflow)?;
        Ok(Some((rounded_sqrt(scaled)?, places)))
    }
}

fn ten_to(k: i32) -> Result<i256> {
    i256::from_i128(10)
        .checked_pow(k as u32)
        .ok_or_else(overflow)
}

/// The weight and value of the leading base-10000 digit group of `v` (not
/// zero) at `scale`, as PostgreSQL's numeric keeps it.
fn leading_group(v: i256, scale: i32) -> (i32, u32) {
    let digits = v.wrapping_abs().to_string();
    let exponent = digits.len() as i32 - 1 - scale;
    let width = exponent.rem_euclid(4) as usize + 1;
    let head: String = digits
        .chars()
        .chain(std::iter::repeat('0'))
        .take(width)
        .collect();
    (exponent.div_euclid(4), head.parse().unwrap_or(0))
}

/// PostgreSQL's places for `numerator / denominator` (an integer).
fn select_div_scale(numerator: i256, scale: i32, denominator: i256) -> i32 {
    let (w1, d1) = leading_group(numerator, scale);
    let (w2, d2) = leading_group(denominator, 0);
    let mut qweight = w1 - w2;
    if d1 <= d2 {
        qweight -= 1;
    }
    (16 - qweight * 4).max(scale).clamp(0, 1000)
}

/// `numerator / 10^scale / denominator` rounded half up at `places`, as
/// an integer of that many places (both operands positive).
fn divided(numerator: i256, scale: i32, denominator: i256, places: i32) -> Result<i256> {
    let shift = places - scale;
    let (a, b) = if shift >= 0 {
        (
            numerator.checked_mul(ten_to(shift)?).ok_or_else(overflow)?,
            denominator,
        )
    } else {
        (
            numerator,
            denominator
                .checked_mul(ten_to(-shift)?)
                .ok_or_else(overflow)?,
        )
    };
    let (q, r) = (a / b, a % b);
    let twice = r.checked_mul(i256::from_i128(2)).ok_or_else(overflow)?;
    Ok(if twice >= b { q + i256::ONE } else { q })
}

/// The square root of `v` (not negative) rounded half up to an integer.
fn rounded_sqrt(v: i256) -> Result<i256> {
    let four = v.checked_mul(i256::from_i128(4)).ok_or_else(overflow)?;
    Ok((isqrt(four) + i256::ONE) / i256::from_i128(2))
}

/// The integer square root (floor) of `n`, not negative.
fn isqrt(n: i256) -> i256 {
    if n < i256::from_i128(2) {
        return n;
    }
    let bits = n.ilog2() / 2 + 1;
    let mut x = i256::ONE << (bits as u8);
    loop {
        let y = (x + n / x) >> 1;
        if y >= x {
            return x;
        }
        x = y;
    }
}

impl Accumulator for Moments {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], 1)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], -1)
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = states[0].as_primitive::<Int64Type>();
        let sums = states[1].as_primitive::<datafusion::arrow::datatypes::Decimal256Type>();
        let squares = states[2].as_primitive::<datafusion::arrow::datatypes::Decimal256Type>();
        for i in 0..counts.len() {
            if counts.is_null(i) {
                continue;
            }
            self.n += counts.value(i);
            self.sum = self.sum.checked_add(sums.value(i)).ok_or_else(overflow)?;
            self.squares = self
                .squares
                .checked_add(squares.value(i))
                .ok_or_else(overflow)?;
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.n)),
            ScalarValue::Decimal256(Some(self.sum), 76, self.scale),
            ScalarValue::Decimal256(Some(self.squares), 76, 2 * self.scale),
        ])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let value = self.value()?;
        if self.places {
            return Ok(ScalarValue::Int32(value.map(|(_, p)| p)));
        }
        let stored = match value {
            Some((v, places)) => {
                let v = v
                    .checked_mul(ten_to(self.stored as i32 - places)?)
                    .and_then(|v| v.to_i128())
                    .filter(|v| v.unsigned_abs() < 10u128.pow(38))
                    .ok_or_else(overflow)?;
                Some(v)
            }
            None => None,
        };
        Ok(ScalarValue::Decimal128(stored, 38, self.stored))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statistic(values: &[i128], scale: i8, kind: Kind) -> Option<String> {
        let mut m = Moments {
            kind,
            scale,
            stored: 38,
            places: false,
            n: 0,
            sum: i256::ZERO,
            squares: i256::ZERO,
        };
        let array: ArrayRef = Arc::new(
            datafusion::arrow::array::Decimal128Array::from(values.to_vec())
                .with_precision_and_scale(38, scale)
                .unwrap(),
        );
        m.add(&array, 1).unwrap();
        let (v, places) = m.value().unwrap()?;
        let digits = format!("{:0>width$}", v.to_string(), width = places as usize + 1);
        let (int, frac) = digits.split_at(digits.len() - places as usize);
        Some(if places == 0 {
            int.to_string()
        } else {
            format!("{int}.{frac}")
        })
    }

    const SAMPLE: Kind = Kind {
        sample: true,
        root: false,
    };
    const STDDEV: Kind = Kind {
        sample: true,
        root: true,
    };
    const STDDEV_POP: Kind = Kind {
        sample: false,
        root: true,
    };

    /// PostgreSQL 15's answers.
    #[test]
    fn statistics_are_postgres_numerics() {
        let amounts = [1050, 2025, 500, 9999];
        assert_eq!(
            statistic(&amounts, 2, STDDEV).unwrap(),
            "44.4858617990030626"
        );
        assert_eq!(
            statistic(&amounts, 2, SAMPLE).unwrap(),
            "1978.9919000000000000"
        );
        assert_eq!(
            statistic(&[3, 1, 7, 2, 10], 0, STDDEV_POP).unwrap(),
            "3.3823069050575526"
        );
        assert_eq!(
            statistic(&[3, 1, 7, 2, 10], 0, SAMPLE).unwrap(),
            "14.3000000000000000"
        );
        assert_eq!(statistic(&[3, 7], 0, STDDEV).unwrap(), "2.8284271247461901");
        assert_eq!(
            statistic(&[150, 225, 300], 2, STDDEV).unwrap(),
            "0.75000000000000000000"
        );
        assert_eq!(statistic(&[5, 5], 0, STDDEV).unwrap(), "0");
        assert_eq!(statistic(&[5], 0, STDDEV), None);
        assert_eq!(statistic(&[], 0, STDDEV_POP), None);
    }

    #[test]
    fn square_roots_round_half_up() {
        for (n, root) in [(0, 0), (1, 1), (2, 1), (3, 2), (6, 2), (7, 3), (99, 10)] {
            assert_eq!(
                rounded_sqrt(i256::from_i128(n)).unwrap(),
                i256::from_i128(root),
                "{n}"
            );
        }
        let big = i256::from_i128(10).checked_pow(70).unwrap();
        assert_eq!(isqrt(big), i256::from_i128(10).checked_pow(35).unwrap());
    }
}
