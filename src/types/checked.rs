//! Integer arithmetic that fails on overflow, as PostgreSQL's does
//! (`22003 bigint out of range`): DataFusion's `+`, `-`, `*` and unary `-`
//! on integers wrap around, which turns an overflow into a wrong answer.
//! An analyzer rule, after type coercion, plans them on integer operands as
//! functions that use Arrow's checked kernels.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::{Error, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Sub,
    Mul,
    Neg,
}

impl Op {
    /// The binary operator this replaces (none for negation).
    fn operator(self) -> Option<Operator> {
        match self {
            Op::Add => Some(Operator::Plus),
            Op::Sub => Some(Operator::Minus),
            Op::Mul => Some(Operator::Multiply),
            Op::Neg => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Add => "sluice_int_add",
            Op::Sub => "sluice_int_sub",
            Op::Mul => "sluice_int_mul",
            Op::Neg => "sluice_int_neg",
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Checked {
    op: Op,
    signature: Signature,
}

fn udf(op: Op) -> Arc<ScalarUDF> {
    let args = if op == Op::Neg { 1 } else { 2 };
    Arc::new(ScalarUDF::new_from_impl(Checked {
        op,
        signature: Signature::any(args, Volatility::Immutable),
    }))
}

/// PostgreSQL's name of an integer type, for its out-of-range error.
fn pg_name(t: &DataType) -> &'static str {
    match t {
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        _ => "bigint",
    }
}

fn is_integer(t: &DataType) -> bool {
    matches!(t, DataType::Int16 | DataType::Int32 | DataType::Int64)
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        self.op.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    /// Named as the operator it replaces (`t.k + Int64(1)`): the column it
    /// makes keeps its name, so no alias is needed, which a grouping set
    /// cannot carry (`GROUPING SETS ((k + 1), (k + 1))` failed).
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(match (self.op.operator(), args) {
            (None, [x]) => format!("(- {})", x.schema_name()),
            (Some(op), [l, r]) => format!("{} {op} {}", l.schema_name(), r.schema_name()),
            _ => {
                return Err(DataFusionError::Internal(format!(
                    "{} arguments",
                    self.op.name()
                )));
            }
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        make_scalar_function(|arrays: &[ArrayRef]| self.apply(arrays), vec![])(&args.args)
    }
}

impl Checked {
    fn apply(&self, arrays: &[ArrayRef]) -> Result<ArrayRef> {
        let out = match self.op {
            Op::Add => numeric::add(&arrays[0], &arrays[1]),
            Op::Sub => numeric::sub(&arrays[0], &arrays[1]),
            Op::Mul => numeric::mul(&arrays[0], &arrays[1]),
            Op::Neg => numeric::neg(&arrays[0]),
        };
        let out = out.map_err(|e| match e {
            datafusion::arrow::error::ArrowError::ArithmeticOverflow(_) => {
                DataFusionError::from(Error::new(
                    ErrorKind::NumericOutOfRange,
                    format!("{} out of range", pg_name(arrays[0].data_type())),
                ))
            }
            other => other.into(),
        })?;
        Ok(out)
    }
}

/// Plans `+`, `-`, `*` and unary `-` on integers as the checked functions.
#[derive(Debug)]
pub struct CheckedIntegers;

impl AnalyzerRule for CheckedIntegers {
    fn name(&self) -> &str {
        "sluice_checked_integers"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_expressions(plan, checked)
    }
}

fn checked(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let integer = |x: &Expr| x.get_type(schema).is_ok_and(|t| is_integer(&t));
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply)
                && integer(&left)
                && left.get_type(schema).ok() == right.get_type(schema).ok() =>
        {
            let op = match op {
                Operator::Plus => Op::Add,
                Operator::Minus => Op::Sub,
                _ => Op::Mul,
            };
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(udf(op), vec![*left, *right]),
            )))
        }
        Expr::Negative(inner) if integer(&inner) => Ok(Transformed::yes(Expr::ScalarFunction(
            ScalarFunction::new_udf(udf(Op::Neg), vec![*inner]),
        ))),
        other => Ok(Transformed::no(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn overflow_is_an_error_and_the_rest_computes() {
        let ctx = SessionContext::new();
        ctx.add_analyzer_rule(Arc::new(CheckedIntegers));
        let batches = ctx
            .sql("SELECT a + 1 AS s, a * 2 AS m, -a AS n, a - 3 FROM (VALUES (CAST(5 AS bigint)), (NULL)) t(a)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(text.contains("| 6 | 10 | -5 | 2 "), "{text}");
        for sql in [
            "SELECT a + 1 FROM (VALUES (CAST(9223372036854775807 AS bigint))) t(a)",
            "SELECT a * a FROM (VALUES (CAST(2000000000 AS bigint) * 4)) t(a)",
            "SELECT -a FROM (VALUES (CAST(-9223372036854775807 AS bigint) - 1)) t(a)",
            "SELECT CAST(a AS int) + CAST(1 AS int) FROM (VALUES (2147483647)) t(a)",
        ] {
            let e = match ctx.sql(sql).await {
                Ok(df) => df.collect().await.unwrap_err(),
                Err(e) => e,
            };
            let e = Error::from(e);
            assert_eq!(e.kind, ErrorKind::NumericOutOfRange, "{sql}: {e}");
            assert!(e.message.ends_with("out of range"), "{sql}: {e}");
        }
    }
}
