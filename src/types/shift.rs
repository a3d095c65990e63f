//! `lead(value, offset, default)` and `lag(...)` answer the common type of
//! the value and the default, as PostgreSQL's `anycompatible` arguments
//! do (`lead(2.50, 1, 1234.56)` is a numeric that holds both; `lag(int4,
//! 1, 10000000000)` a bigint). DataFusion casts the default to the value's
//! type, which overflows or truncates. An analyzer rule, before type
//! coercion, casts both to the common numeric type.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{Cast, Expr, ExprSchemable, LogicalPlan, WindowFunctionDefinition};
use datafusion::optimizer::AnalyzerRule;

/// Gives `lead` and `lag` the common type of their value and default.
#[derive(Debug)]
pub struct ShiftDefaults;

impl AnalyzerRule for ShiftDefaults {
    fn name(&self) -> &str {
        "sluice_shift_defaults"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        // Type coercion, after this, recomputes the schemas.
        super::rewrite_expressions(plan, common)
    }
}

/// `e` as a `ty`: a literal converted (DataFusion reads a default only
/// as a literal, and a decimal keeps its places as metadata), anything
/// else cast.
fn as_type(e: Expr, ty: &DataType) -> Result<Expr> {
    Ok(match e {
        Expr::Literal(v, meta) => {
            let places = match v.data_type() {
                DataType::Decimal128(_, s) => Some(s.max(0)),
                t if t.is_integer() => Some(0),
                _ => None,
            };
            let meta = match places {
                Some(k) if meta.is_none() && matches!(ty, DataType::Decimal128(..)) => Some(
                    std::collections::BTreeMap::from([(
                        super::places::LITERAL_PLACES.to_string(),
                        k.to_string(),
                    )])
                    .into(),
                ),
                _ => meta,
            };
            Expr::Literal(v.cast_to(ty)?, meta)
        }
        other => Expr::Cast(Cast::new(Box::new(other), ty.clone())),
    })
}

fn common(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::WindowFunction(mut w) = e else {
        return Ok(Transformed::no(e));
    };
    let shift = matches!(&w.fun, WindowFunctionDefinition::WindowUDF(f) if matches!(f.name(), "lead" | "lag"));
    let WindowFunction { params, .. } = w.as_mut();
    if !shift || params.args.len() != 3 {
        return Ok(Transformed::no(Expr::WindowFunction(w)));
    }
    let value = params.args[0].get_type(schema)?;
    let default = params.args[2].get_type(schema)?;
    let to = match comparison_coercion(&value, &default) {
        Some(t) if value != default && value.is_numeric() && default.is_numeric() => t,
        _ => return Ok(Transformed::no(Expr::WindowFunction(w))),
    };
    for i in [0, 2] {
        let arg = std::mem::replace(&mut params.args[i], Expr::Literal(ScalarValue::Null, None));
        params.args[i] = as_type(arg, &to)?;
    }
    Ok(Transformed::yes(Expr::WindowFunction(w)))
}
