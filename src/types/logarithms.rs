//! `ln`, `log` and `log10` of zero or of a negative number fail with
//! 2201E, as in PostgreSQL: DataFusion answered `-Infinity` and `NaN`,
//! which a query then computed on. Each is DataFusion's function behind a
//! check of its arguments.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

use crate::error::{Error, ErrorKind};

/// DataFusion's logarithm `inner`, refusing arguments that are not
/// positive.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Positive {
    inner: ScalarUDF,
}

/// `ln`, `log` and `log10` with PostgreSQL's errors.
pub fn udfs() -> Vec<ScalarUDF> {
    use datafusion::functions::math::{ln, log, log10};
    [ln(), log(), log10()]
        .into_iter()
        .map(|f| {
            ScalarUDF::new_from_impl(Positive {
                inner: f.as_ref().clone(),
            })
        })
        .collect()
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
        self.inner.signature()
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(args)
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
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
        self.inner.invoke_with_args(args)
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
