//! `ln`, `log` and `log10` of zero or of a negative number fail with
//! 2201E, as in PostgreSQL: DataFusion answered `-Infinity` and `NaN`,
//! which a query then computed on. Each is DataFusion's function behind a
//! check of its arguments, and PostgreSQL's numeric logarithm for numerics.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

use crate::error::{Error, ErrorKind};

/// DataFusion's logarithm `inner`, refusing arguments that are not
/// positive; of numerics, PostgreSQL's numeric logarithm
/// ([`super::numeric_log`]); `log(x)` of a float is `log10(x)`, exact at
/// powers of ten (DataFusion's divides two natural logarithms:
/// `log(1000)` was `2.9999999999999996`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Positive {
    inner: ScalarUDF,
    /// `log10`, which `log` of one float is.
    ten: Option<ScalarUDF>,
    signature: Signature,
    /// The scale of a numeric result (see `numeric_log::PLANNED_SCALE`).
    scale: i8,
}

/// Which logarithm the function `name` of `args` arguments is.
fn kind(name: &str, args: usize) -> super::numeric_log::Kind {
    use super::numeric_log::Kind;
    match (name, args) {
        ("ln", _) => Kind::Natural,
        ("log", 2) => Kind::Base,
        _ => Kind::Ten,
    }
}

/// `ln`, `log` and `log10` with PostgreSQL's errors and numerics, a
/// numeric planned at `numeric_log::PLANNED_SCALE` places.
pub fn udfs() -> Vec<ScalarUDF> {
    at_scale(super::numeric_log::PLANNED_SCALE)
}

fn at_scale(scale: i8) -> Vec<ScalarUDF> {
    use datafusion::functions::math::{ln, log, log10};
    [ln(), log(), log10()]
        .into_iter()
        .map(|f| {
            ScalarUDF::new_from_impl(Positive {
                ten: (f.name() == "log").then(|| log10().as_ref().clone()),
                inner: f.as_ref().clone(),
                signature: Signature::user_defined(datafusion::logical_expr::Volatility::Immutable),
                scale,
            })
        })
        .collect()
}

/// The logarithm `name` (`ln`, `log`, `log10`) whose numeric is stored at
/// `numeric_log::SCALE` places: what the analyzer puts in the place of the
/// planned one (see `numeric::NumericScales`).
pub fn wide_udf(name: &str) -> Option<ScalarUDF> {
    at_scale(super::numeric_log::SCALE)
        .into_iter()
        .find(|f| f.name() == name)
}

/// A places UDF: the places each numeric logarithm of these arguments is
/// shown with (see `places::display_scales`), for the function `name`
/// whose numeric has `scale` places.
pub fn places_udf(name: &str, scale: i8) -> Option<ScalarUDF> {
    at_scale(scale)
        .into_iter()
        .find(|f| f.name() == name)
        .map(|f| ScalarUDF::new_from_impl(Places { of: f, scale }))
}

/// The places of [`Positive`]'s numeric values.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Places {
    of: ScalarUDF,
    scale: i8,
}

impl ScalarUDFImpl for Places {
    fn name(&self) -> &str {
        match self.of.name() {
            "ln" => "sluice_ln_places",
            "log10" => "sluice_log10_places",
            _ => "sluice_log_places",
        }
    }
    fn signature(&self) -> &Signature {
        self.of.signature()
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        self.of.coerce_types(args)
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let kind = kind(self.of.name(), args.args.len());
        super::numeric_log::evaluate(kind, &args.args, args.number_rows, true, self.scale)
    }
}

/// The sign of a value that is not positive: `Some(true)` for zero,
/// `Some(false)` for a negative number.
fn not_positive(v: &ScalarValue) -> Option<bool> {
    if v.is_null() {
        return None;
    }
    let zero = ScalarValue::new_zero(&v.data_type()).ok()?;
    match v.partial_cmp(&zero)? {
        std::cmp::Ordering::Equal => Some(true),
        std::cmp::Ordering::Less => Some(false),
        std::cmp::Ordering::Greater => None,
    }
}

fn check(array: &ArrayRef) -> Result<()> {
    if !(array.data_type().is_numeric()) {
        return Ok(());
    }
    // One comparison of the whole array; the value is looked at only when
    // one fails.
    let zero = ScalarValue::new_zero(array.data_type())?.to_array()?;
    let bad = datafusion::arrow::compute::kernels::cmp::lt_eq(
        array,
        &datafusion::arrow::array::Scalar::new(zero),
    )?;
    if bad.true_count() == 0 {
        return Ok(());
    }
    for i in (0..array.len()).filter(|&i| bad.is_valid(i) && bad.value(i)) {
        let v = ScalarValue::try_from_array(array, i)?;
        if let Some(zero) = not_positive(&v) {
            let what = if zero { "zero" } else { "a negative number" };
            return Err(Error::new(
                ErrorKind::InvalidLogarithmArgument,
                format!("cannot take logarithm of {what}"),
            )
            .into());
        }
    }
    Ok(())
}

impl ScalarUDFImpl for Positive {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    /// Numerics stay numerics (`log(b, x)` takes integers as numerics, as
    /// PostgreSQL has no other); anything else is a float.
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let decimal = |t: &DataType| matches!(t, DataType::Decimal128(_, _));
        let exact = |t: &DataType| decimal(t) || t.is_integer();
        let numeric = match args.len() {
            1 => decimal(&args[0]),
            2 if self.inner.name() == "log" => {
                args.iter().all(|t| exact(t) || t.is_null()) && args.iter().any(exact)
            }
            _ => false,
        };
        Ok(args
            .iter()
            .map(|t| match t {
                t if numeric && decimal(t) => t.clone(),
                t if numeric && (t.is_integer() || t.is_null()) => DataType::Decimal128(20, 0),
                _ => DataType::Float64,
            })
            .collect())
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if super::numeric_log::takes(args) {
            return Ok(DataType::Decimal128(38, self.scale));
        }
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        for a in &args.args {
            match a {
                ColumnarValue::Scalar(v) => {
                    check(&v.to_array_of_size(1)?)?;
                }
                ColumnarValue::Array(a) => check(a)?,
            }
        }
        let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
        if super::numeric_log::takes(&types) {
            return super::numeric_log::evaluate(
                kind(self.inner.name(), args.args.len()),
                &args.args,
                args.number_rows,
                false,
                self.scale,
            );
        }
        match &self.ten {
            Some(ten) if args.args.len() == 1 => ten.invoke_with_args(args),
            _ => self.inner.invoke_with_args(args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn zero_and_negative_numbers_are_refused() {
        let a: ArrayRef = Arc::new(datafusion::arrow::array::Float64Array::from(vec![
            Some(1.0),
            None,
            Some(0.0),
        ]));
        assert!(check(&a).is_err());
        let a: ArrayRef = Arc::new(datafusion::arrow::array::Int64Array::from(vec![-1]));
        assert!(check(&a).is_err());
        let a: ArrayRef = Arc::new(datafusion::arrow::array::Float64Array::from(vec![
            Some(2.5),
            None,
        ]));
        assert!(check(&a).is_ok());
    }
}
