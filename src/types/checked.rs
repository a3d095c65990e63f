//! Integer arithmetic that fails on overflow, as PostgreSQL's does
//! (`22003 bigint out of range`): DataFusion's `+`, `-`, `*` and unary `-`
//! on integers wrap around, which turns an overflow into a wrong answer.
//! An analyzer rule, after type coercion, plans them on integer operands as
//! functions that use Arrow's checked kernels. The same rule plans `+ - * /`
//! on floats as functions that fail where PostgreSQL's do (overflow,
//! underflow, division by zero: Arrow gives `Infinity` or 0), and
//! `round(float)` as PostgreSQL's, halves to even.

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
    /// `+`, `-`, `*`, `/` on floats: Arrow's give `Infinity` on overflow
    /// and on a division by zero, PostgreSQL's fail (22003, 22012).
    FloatAdd,
    FloatSub,
    FloatMul,
    FloatDiv,
}

impl Op {
    /// The binary operator this replaces (none for negation).
    fn operator(self) -> Option<Operator> {
        match self {
            Op::Add | Op::FloatAdd => Some(Operator::Plus),
            Op::Sub | Op::FloatSub => Some(Operator::Minus),
            Op::Mul | Op::FloatMul => Some(Operator::Multiply),
            Op::FloatDiv => Some(Operator::Divide),
            Op::Neg => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Add => "sluice_int_add",
            Op::Sub => "sluice_int_sub",
            Op::Mul => "sluice_int_mul",
            Op::Neg => "sluice_int_neg",
            Op::FloatAdd => "sluice_float_add",
            Op::FloatSub => "sluice_float_sub",
            Op::FloatMul => "sluice_float_mul",
            Op::FloatDiv => "sluice_float_div",
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

    /// NULL only from a NULL operand, as the operator it replaces: a
    /// result that is never NULL must stay so, or a UNION whose schema
    /// was derived before the replacement disagrees with its plan.
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let data_type = args.arg_fields[0].data_type().clone();
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(
            self.name(),
            data_type,
            nullable,
        )))
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

    /// A NULL operand makes the result NULL without computing the other,
    /// as PostgreSQL folds a strict operator of a NULL constant when it
    /// plans (`NULL::bigint + k = abs(i8)` never takes `abs`).
    fn simplify(
        &self,
        args: Vec<Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        use datafusion::logical_expr::simplify::ExprSimplifyResult;
        let null = args
            .iter()
            .any(|a| matches!(a, Expr::Literal(v, _) if v.is_null()));
        if !null {
            return Ok(ExprSimplifyResult::Original(args));
        }
        let t = info.get_data_type(&args[0])?;
        Ok(ExprSimplifyResult::Simplified(Expr::Literal(
            datafusion::common::ScalarValue::try_from(&t)?,
            None,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if matches!(
            self.op,
            Op::FloatAdd | Op::FloatSub | Op::FloatMul | Op::FloatDiv
        ) {
            return float_checked(self.op, &args.args[0], &args.args[1]);
        }
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
            Op::FloatAdd | Op::FloatSub | Op::FloatMul | Op::FloatDiv => {
                return Err(DataFusionError::Internal(
                    "float operations are not computed on arrays".into(),
                ));
            }
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

/// A float operation as PostgreSQL's: a finite result from finite operands
/// (`22003 value out of range: overflow` otherwise), no division by zero
/// (`22012`), and a product or quotient of nonzero operands that is not
/// zero (`22003 value out of range: underflow`).
fn float_checked(op: Op, a: &ColumnarValue, b: &ColumnarValue) -> Result<ColumnarValue> {
    use datafusion::arrow::array::{Array, AsArray, Float64Array};
    use datafusion::arrow::datatypes::Float64Type;
    /// One operand's values in float8: a column, or one value for all rows.
    enum Side {
        Column(Float64Array),
        Value(Option<f64>),
    }
    impl Side {
        fn of(c: &ColumnarValue) -> Result<Side> {
            Ok(match c {
                ColumnarValue::Array(a) => Side::Column(
                    datafusion::arrow::compute::cast(a, &DataType::Float64)?
                        .as_primitive::<Float64Type>()
                        .clone(),
                ),
                ColumnarValue::Scalar(v) => Side::Value(match v.cast_to(&DataType::Float64)? {
                    datafusion::common::ScalarValue::Float64(f) => f,
                    _ => None,
                }),
            })
        }
        fn at(&self, i: usize) -> Option<f64> {
            match self {
                Side::Column(a) => (!a.is_null(i)).then(|| a.value(i)),
                Side::Value(v) => *v,
            }
        }
    }
    let datum = |c: &ColumnarValue| -> Result<Box<dyn datafusion::arrow::array::Datum>> {
        Ok(match c {
            ColumnarValue::Array(a) => Box::new(a.clone()),
            ColumnarValue::Scalar(v) => Box::new(v.to_scalar()?),
        })
    };
    let (x, y) = (Side::of(a)?, Side::of(b)?);
    let (l, r) = (datum(a)?, datum(b)?);
    let out = match op {
        Op::FloatAdd => numeric::add(l.as_ref(), r.as_ref()),
        Op::FloatSub => numeric::sub(l.as_ref(), r.as_ref()),
        Op::FloatMul => numeric::mul(l.as_ref(), r.as_ref()),
        _ => numeric::div(l.as_ref(), r.as_ref()),
    }?;
    let fail = |kind: ErrorKind, message: &str| {
        Err(DataFusionError::from(Error::new(kind, message.to_string())))
    };
    let result = datafusion::arrow::compute::cast(&out, &DataType::Float64)?;
    let result = result.as_primitive::<Float64Type>();
    for i in 0..result.len() {
        let (Some(p), Some(q)) = (x.at(i), y.at(i)) else {
            continue;
        };
        if op == Op::FloatDiv && q == 0.0 && !p.is_nan() {
            return fail(ErrorKind::DivisionByZero, "division by zero");
        }
        let v = result.value(i);
        if v.is_infinite() && p.is_finite() && q.is_finite() {
            return fail(ErrorKind::NumericOutOfRange, "value out of range: overflow");
        }
        let underflow = match op {
            Op::FloatMul => p != 0.0 && q != 0.0,
            Op::FloatDiv => p != 0.0 && q.is_finite(),
            _ => false,
        };
        if v == 0.0 && underflow {
            return fail(
                ErrorKind::NumericOutOfRange,
                "value out of range: underflow",
            );
        }
    }
    super::columnar(
        out,
        matches!(a, ColumnarValue::Scalar(_)) && matches!(b, ColumnarValue::Scalar(_)),
    )
}

/// Plans `+`, `-`, `*` and unary `-` on integers as the checked functions,
/// `+`, `-`, `*` and `/` on floats as the float ones, and `round(float)`
/// as PostgreSQL's, which rounds halves to even.
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
    let float = |x: &Expr| x.get_type(schema).is_ok_and(|t| t.is_floating());
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
            ) && float(&left)
                && left.get_type(schema).ok() == right.get_type(schema).ok() =>
        {
            let op = match op {
                Operator::Plus => Op::FloatAdd,
                Operator::Minus => Op::FloatSub,
                Operator::Multiply => Op::FloatMul,
                _ => Op::FloatDiv,
            };
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(udf(op), vec![*left, *right]),
            )))
        }
        Expr::ScalarFunction(f)
            if f.name() == "round" && f.args.len() == 1 && float(&f.args[0]) =>
        {
            let x = f.args.into_iter().next().expect("one argument");
            Ok(Transformed::yes(super::text::rint(x)))
        }
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
