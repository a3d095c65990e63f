//! PostgreSQL's date and time arithmetic where DataFusion's differs:
//! `date ± interval` is a timestamp (DataFusion kept a date and dropped the
//! hours), and `date_part` / `EXTRACT` give a fractional number (DataFusion
//! an integer: `EXTRACT(SECOND FROM '00:00:00.5')` was 0, `date_part('day',
//! ts) / 6` an integer division).

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, cast, lit};

fn is_interval(e: &Expr, schema: &DFSchema) -> bool {
    e.get_type(schema)
        .is_ok_and(|t| matches!(t, DataType::Interval(_)))
}

fn is_date(e: &Expr, schema: &DFSchema) -> bool {
    e.get_type(schema)
        .is_ok_and(|t| matches!(t, DataType::Date32 | DataType::Date64))
}

fn timestamp(e: Expr) -> Expr {
    cast(e, DataType::Timestamp(TimeUnit::Microsecond, None))
}

fn rewrite(x: Expr, schema: &DFSchema) -> DfResult<Transformed<Expr>> {
    match x {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::Plus | Operator::Minus)
                && ((is_date(&left, schema) && is_interval(&right, schema))
                    || (op == Operator::Plus
                        && is_interval(&left, schema)
                        && is_date(&right, schema))) =>
        {
            let (left, right) = if is_date(&left, schema) {
                (timestamp(*left), *right)
            } else {
                (*left, timestamp(*right))
            };
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(left),
                op,
                Box::new(right),
            ))))
        }
        Expr::ScalarFunction(f) if f.name() == "date_part" && f.args.len() == 2 => {
            let part = match &f.args[0] {
                Expr::Literal(v, _) => v.try_as_str().flatten().map(str::to_ascii_lowercase),
                _ => None,
            };
            let value = match part.as_deref() {
                // Seconds with their fraction, as PostgreSQL gives them.
                Some("second" | "seconds" | "s" | "sec" | "secs") => {
                    let mut micros = f.clone();
                    micros.args[0] = lit("microsecond");
                    cast(Expr::ScalarFunction(micros), DataType::Float64) / lit(1_000_000f64)
                }
                Some("epoch") | None => return Ok(Transformed::no(Expr::ScalarFunction(f))),
                Some(_) => cast(Expr::ScalarFunction(f), DataType::Float64),
            };
            // Its parts are done: not visited again.
            Ok(Transformed::new(value, true, TreeNodeRecursion::Jump))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// `plan` (as the SQL planner gave it, before analysis: the types it
/// changes are then the plan's own) with PostgreSQL's date and time rules.
pub fn rewrite_plan(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let schema: DFSchema = match node.inputs().as_slice() {
            [one] => one.schema().as_ref().clone(),
            _ => node.schema().as_ref().clone(),
        };
        let names = NamePreserver::new(&node);
        let node = node.map_expressions(|e| {
            let saved = names.save(&e);
            // Top down; a date_part already wrapped in a float8 cast is
            // left as it is.
            let rewritten = e.transform_down(|x| match &x {
                Expr::Cast(c)
                    if *c.field.data_type() == DataType::Float64
                        && matches!(c.expr.as_ref(), Expr::ScalarFunction(f) if f.name() == "date_part") =>
                {
                    Ok(Transformed::new(x, false, TreeNodeRecursion::Jump))
                }
                _ => rewrite(x, &schema),
            })?;
            Ok(rewritten.update_data(|x| saved.restore(x)))
        })?;
        // A changed type changes the schema of this node and those above.
        node.map_data(|n| n.recompute_schema())
    })
    .map(|t| t.data)
}
