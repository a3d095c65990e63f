//! `power` (`^`) and `exp` of floats fail where PostgreSQL's do: a result
//! too large for a `double precision` from finite arguments is `22003
//! value out of range: overflow` (`2 ^ 10000`, `exp(1000)`), one too
//! small to be anything but zero from a nonzero base is `22003 value out
//! of range: underflow` (`power(10, -400)`, `exp(-1000)`). DataFusion
//! answered `Infinity` and 0, which a query then computed on. Each is
//! DataFusion's function behind a check of its result; a numeric power
//! is left as it is.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef, Float64Type};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

use crate::error::{Error, ErrorKind};

/// DataFusion's `inner` (`power` or `exp`), with its float results checked.
#[derive(Debug, PartialEq, Eq, Hash)]
struct InRange {
    inner: ScalarUDF,
}

/// `power` and `exp` with PostgreSQL's range errors.
pub fn udfs() -> Vec<ScalarUDF> {
    use datafusion::functions::math::{exp, power};
    [power(), exp()]
        .into_iter()
        .map(|f| {
            ScalarUDF::new_from_impl(InRange {
                inner: f.as_ref().clone(),
            })
        })
        .collect()
}

fn out_of_range(what: &str) -> datafusion::error::DataFusionError {
    Error::new(
        ErrorKind::NumericOutOfRange,
        format!("value out of range: {what}"),
    )
    .into()
}

fn floats(v: &ColumnarValue, rows: usize) -> Result<ArrayRef> {
    let a = v.to_array(rows)?;
    Ok(datafusion::arrow::compute::cast(&a, &DataType::Float64)?)
}

/// Fails for the first row whose result is out of range: `args` are the
/// function's arguments (the base first), `result` what it computed.
fn check(args: &[ArrayRef], result: &ArrayRef) -> Result<()> {
    let result = result.as_primitive::<Float64Type>();
    let args: Vec<_> = args
        .iter()
        .map(|a| a.as_primitive::<Float64Type>())
        .collect();
    for i in 0..result.len() {
        if result.is_null(i) || args.iter().any(|a| a.is_null(i)) {
            continue;
        }
        let r = result.value(i);
        let finite = args.iter().all(|a| a.value(i).is_finite());
        if r.is_infinite() && finite {
            return Err(out_of_range("overflow"));
        }
        // `exp` has one argument; `power`'s base must not be zero.
        let nonzero_base = args.len() == 1 || args[0].value(i) != 0.0;
        if r == 0.0 && finite && nonzero_base {
            return Err(out_of_range("underflow"));
        }
    }
    Ok(())
}

impl ScalarUDFImpl for InRange {
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
        let rows = args.number_rows;
        let floats_out = args.return_field.data_type().is_floating();
        let inputs = floats_out
            .then(|| {
                args.args
                    .iter()
                    .map(|a| floats(a, rows))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        let out = self.inner.invoke_with_args(args)?;
        if let Some(inputs) = inputs {
            check(&inputs, &floats(&out, rows)?)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn f(v: Vec<Option<f64>>) -> ArrayRef {
        Arc::new(datafusion::arrow::array::Float64Array::from(v))
    }

    #[test]
    fn results_beyond_a_double_fail() {
        // 2 ^ 10000, power(10, -400), exp(1000), exp(-1000).
        let e = check(
            &[f(vec![Some(2.0)]), f(vec![Some(1e4)])],
            &f(vec![Some(f64::INFINITY)]),
        );
        assert!(e.unwrap_err().to_string().contains("overflow"));
        let e = check(
            &[f(vec![Some(10.0)]), f(vec![Some(-400.0)])],
            &f(vec![Some(0.0)]),
        );
        assert!(e.unwrap_err().to_string().contains("underflow"));
        assert!(check(&[f(vec![Some(1000.0)])], &f(vec![Some(f64::INFINITY)])).is_err());
        assert!(check(&[f(vec![Some(-1000.0)])], &f(vec![Some(0.0)])).is_err());
        // 0 ^ 5, power of an infinity, NULLs: as computed.
        assert!(
            check(
                &[f(vec![Some(0.0)]), f(vec![Some(5.0)])],
                &f(vec![Some(0.0)])
            )
            .is_ok()
        );
        assert!(
            check(
                &[f(vec![Some(f64::INFINITY)]), f(vec![Some(2.0)])],
                &f(vec![Some(f64::INFINITY)])
            )
            .is_ok()
        );
        assert!(check(&[f(vec![None]), f(vec![Some(2.0)])], &f(vec![None])).is_ok());
    }
}
