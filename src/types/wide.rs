//! Result numerics wider than 38 digits. A literal such as `1e-50` or
//! `123456789012345678901234567890123456789012`, or arithmetic on one, is
//! planned as a 256-bit decimal, which the wire layer cannot send (it
//! answered `XX000 Unsupported Datatype Decimal256(50, 50)`). Each such
//! result column is narrowed to a decimal of 38 digits, its integer
//! digits kept: a value that fits is sent exactly, one that needs more
//! than 38 digits fails with `22003`, as any numeric of Sluice's beyond
//! 38 digits does, instead of being rounded.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Decimal128Array};
use datafusion::arrow::datatypes::{DataType, Decimal256Type, i256};
use datafusion::common::Column;
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, Projection, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};

use crate::error::{Error, ErrorKind};

/// `plan`, a query whose rows go to a client, with each result column of
/// a decimal wider than 38 digits narrowed (see the module docs).
pub fn narrowed_results(plan: LogicalPlan) -> Result<LogicalPlan> {
    let wide = |t: &DataType| matches!(t, DataType::Decimal256(..));
    if !plan.schema().fields().iter().any(|f| wide(f.data_type())) {
        return Ok(plan);
    }
    let exprs: Vec<Expr> = plan
        .schema()
        .iter()
        .map(|(q, f)| {
            let column = Expr::Column(Column::from((q, f)));
            match f.data_type() {
                DataType::Decimal256(p, s) => {
                    let integer = (*p as i16 - *s as i16).clamp(0, 38);
                    let scale = (*s as i16).clamp(0, 38 - integer) as i8;
                    Expr::ScalarFunction(ScalarFunction::new_udf(
                        Arc::new(ScalarUDF::new_from_impl(Narrow {
                            scale,
                            signature: Signature::any(1, Volatility::Immutable),
                        })),
                        vec![column],
                    ))
                    .alias_qualified(q.cloned(), f.name())
                }
                _ => column,
            }
        })
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(plan),
    )?))
}

/// A 256-bit decimal as a 38-digit one of `scale`, failing for a value
/// that does not fit exactly.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Narrow {
    scale: i8,
    signature: Signature,
}

fn too_wide() -> datafusion::error::DataFusionError {
    Error::new(
        ErrorKind::NumericOutOfRange,
        "value overflows numeric format",
    )
    .with_detail("A numeric of Sluice's holds at most 38 digits.")
    .into()
}

/// `v` at `from` places as a 38-digit decimal at `to` (not more) places.
fn narrowed(v: i256, from: i8, to: i8) -> Result<i128> {
    let ten = i256::from_i128(10);
    let shift = i32::from(from) - i32::from(to);
    let v = if shift < 0 {
        // A negative scale (`1e30` of a wide type) gains places.
        ten.checked_pow(shift.unsigned_abs())
            .and_then(|m| v.checked_mul(m))
            .ok_or_else(too_wide)?
    } else {
        let divisor = ten.checked_pow(shift as u32).ok_or_else(too_wide)?;
        if v % divisor != i256::ZERO {
            return Err(too_wide());
        }
        v / divisor
    };
    v.to_i128()
        .filter(|n| n.unsigned_abs() < 10u128.pow(38))
        .ok_or_else(too_wide)
}

impl ScalarUDFImpl for Narrow {
    fn name(&self) -> &str {
        "sluice_numeric_narrow"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, self.scale))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let DataType::Decimal256(_, from) = input.data_type() else {
            return Err(
                Error::internal("sluice_numeric_narrow of a decimal that is not wide").into(),
            );
        };
        let values = input.as_primitive::<Decimal256Type>();
        let out: Decimal128Array = (0..values.len())
            .map(|i| {
                (!values.is_null(i))
                    .then(|| narrowed(values.value(i), *from, self.scale))
                    .transpose()
            })
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(38, self.scale)?;
        Ok(if scalar {
            ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(Arc::new(out))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_value_is_sent_exactly_or_refused() {
        let v = |s: &str| i256::from_string(s).unwrap();
        // 12.5 at 50 places, narrowed to 36.
        let at50 = v("125")
            .checked_mul(i256::from_i128(10).checked_pow(49).unwrap())
            .unwrap();
        assert_eq!(narrowed(at50, 50, 36).unwrap(), 125 * 10i128.pow(35));
        // 1e-50 cannot be written in 38 places; 39 integer digits cannot at all.
        assert!(narrowed(v("1"), 50, 38).is_err());
        assert!(narrowed(v("123456789012345678901234567890123456789"), 0, 0).is_err());
        assert_eq!(narrowed(v("-7"), 0, 0).unwrap(), -7);
        // 5 at scale -3 is 5000.
        assert_eq!(narrowed(v("5"), -3, 0).unwrap(), 5000);
    }
}
