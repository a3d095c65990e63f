//! A float beside a numeric is a float, as in PostgreSQL, where `numeric`
//! casts to `double precision` implicitly and not the other way round.
//! DataFusion prefers the decimal: `float_col > 1.5` turned each float
//! into a decimal, which fails on `1e20` (`22003 numeric field overflow`)
//! and rounds others (`coalesce(0.123456789::float8, 1.5)` kept 15
//! digits). An analyzer rule ahead of type coercion casts the numeric
//! operands of comparisons (also `CASE x WHEN v`), `+ - * /`, `IN (list)`,
//! `BETWEEN`, the results of `CASE`, and the arguments of `coalesce`,
//! `greatest`, `least` and `nullif` to the float type when a float is
//! among them (a `real` beside an integer is a `double precision`), and so the columns of `UNION` branches and the value of an
//! `IN (subquery)`; `= ANY(array)` is cast by [`super::arrays::ArrayElementTypes`].
//! Not yet: `JOIN ... USING` and `VALUES` rows.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Between, Case, InList, InSubquery, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Operator, cast,
};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct FloatsOverNumerics;

impl AnalyzerRule for FloatsOverNumerics {
    fn name(&self) -> &str {
        "sluice_floats_over_numerics"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let mut changed = false;
        crate::tree::transform_up_with_subqueries(plan, |node| {
            let node = match rows(node, changed)? {
                Transformed {
                    data,
                    transformed: true,
                    ..
                } => {
                    changed = true;
                    data
                }
                t => t.data,
            };
            let inputs = node.inputs();
            if inputs.is_empty() {
                return Ok(Transformed::no(node));
            }
            let mut schema = DFSchema::empty();
            for input in inputs {
                schema.merge(input.schema());
            }
            let names = NamePreserver::new(&node);
            let rewritten = crate::tree::map_expressions(node, |e| {
                let saved = super::save_name(&names, &e);
                let out = crate::tree::transform_up(e, |x| floats(x, &schema))?;
                Ok(out.update_data(|e| super::keep_name(saved, e)))
            })?;
            changed |= rewritten.transformed;
            // The types of this node's columns, and of every node above,
            // follow from the casts.
            if changed {
                Ok(Transformed::yes(rewritten.data.recompute_schema()?))
            } else {
                Ok(rewritten)
            }
        })
        .map(|t| t.data)
    }
}

/// The branches of a `UNION`, with a numeric column cast to float where
/// another branch has a float there. (`VALUES` rows are given one type per
/// column as they are planned, before any analyzer rule sees them.)
fn rows(node: LogicalPlan, below: bool) -> Result<Transformed<LogicalPlan>> {
    match node {
        LogicalPlan::Union(u) if u.inputs.len() > 1 => {
            let width = u.schema.fields().len();
            let mut targets = Vec::with_capacity(width);
            for c in 0..width {
                let types: Vec<DataType> = u
                    .inputs
                    .iter()
                    .map(|i| i.schema().field(c).data_type().clone())
                    .collect();
                targets.push(resolved(&types));
            }
            if targets.iter().all(Option::is_none) {
                // A union's column types are its inputs' as planned: when
                // a cast below changed them, they are worked out again.
                return Ok(if below {
                    Transformed::yes(LogicalPlan::Union(
                        datafusion::logical_expr::Union::try_new_with_loose_types(u.inputs)?,
                    ))
                } else {
                    Transformed::no(LogicalPlan::Union(u))
                });
            }
            let inputs = u
                .inputs
                .iter()
                .map(|input| {
                    let exprs: Vec<Expr> = input
                        .schema()
                        .iter()
                        .zip(&targets)
                        .map(|((q, f), to)| {
                            let column = Expr::Column(datafusion::common::Column::from((q, f)));
                            match to {
                                Some(to) if is_decimal(f.data_type()) => {
                                    cast(column, to.clone()).alias_qualified(q.cloned(), f.name())
                                }
                                _ => column,
                            }
                        })
                        .collect();
                    Ok(std::sync::Arc::new(
                        LogicalPlanBuilder::from(input.as_ref().clone())
                            .project(exprs)?
                            .build()?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Transformed::yes(LogicalPlan::Union(
                datafusion::logical_expr::Union::try_new_with_loose_types(inputs)?,
            )))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// Whether `t` is one of Arrow's decimal types.
pub(crate) fn is_decimal(t: &DataType) -> bool {
    matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
}

/// The float type `types` resolve to when one of them is a float and
/// another a decimal, else None.
fn resolved(types: &[DataType]) -> Option<DataType> {
    if !types.iter().any(is_decimal) {
        return None;
    }
    if types.contains(&DataType::Float64) {
        Some(DataType::Float64)
    } else if types.contains(&DataType::Float32) {
        Some(DataType::Float32)
    } else {
        None
    }
}

/// A `real` and an integer: PostgreSQL has no operator for the pair and
/// takes `double precision`'s (`real_col / 3` is a `double precision`),
/// where DataFusion would compute in `real`.
fn real_beside_integer(a: &DataType, b: &DataType) -> bool {
    matches!((a, b), (DataType::Float32, t) | (t, DataType::Float32) if t.is_integer())
}

/// `e` cast to `to` when it is a decimal.
fn widened(e: Expr, to: &DataType, schema: &DFSchema) -> Expr {
    match e.get_type(schema) {
        Ok(t) if is_decimal(&t) => cast(e, to.clone()),
        _ => e,
    }
}

/// An operand of a comparison or arithmetic between a float and a numeric:
/// PostgreSQL's operators on `real` and `numeric` are `double precision`'s,
/// so both a numeric and a `real` become `double precision`.
fn compared(e: Expr, schema: &DFSchema) -> Expr {
    match e.get_type(schema) {
        Ok(DataType::Float32) => cast(e, DataType::Float64),
        _ => widened(e, &DataType::Float64, schema),
    }
}

fn floats(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let ty = |x: &Expr| x.get_type(schema).unwrap_or(DataType::Null);
    let side = |x: Expr| compared(x, schema);
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if (super::is_comparison(&op)
                || matches!(
                    op,
                    Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
                ))
                && (resolved(&[ty(&left), ty(&right)]).is_some()
                    || real_beside_integer(&ty(&left), &ty(&right))) =>
        {
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(side(*left)),
                op,
                Box::new(side(*right)),
            ))))
        }
        Expr::Between(b) if resolved(&[ty(&b.expr), ty(&b.low), ty(&b.high)]).is_some() => {
            Ok(Transformed::yes(Expr::Between(Between::new(
                Box::new(side(*b.expr)),
                b.negated,
                Box::new(side(*b.low)),
                Box::new(side(*b.high)),
            ))))
        }
        Expr::InList(l) => {
            let mut types: Vec<DataType> = l.list.iter().map(ty).collect();
            types.push(ty(&l.expr));
            if resolved(&types).is_none() {
                return Ok(Transformed::no(Expr::InList(l)));
            }
            Ok(Transformed::yes(Expr::InList(InList::new(
                Box::new(side(*l.expr)),
                l.list.into_iter().map(side).collect(),
                l.negated,
            ))))
        }
        // `x IN (SELECT v ...)`: the subquery's value is cast in a
        // projection over it.
        Expr::InSubquery(mut q) => {
            let inner = q.subquery.subquery.schema().field(0).data_type().clone();
            if resolved(&[ty(&q.expr), inner.clone()]).is_none() {
                return Ok(Transformed::no(Expr::InSubquery(q)));
            }
            if is_decimal(&inner) || inner == DataType::Float32 {
                let plan = q.subquery.subquery.as_ref().clone();
                let (qualifier, field) = plan.schema().qualified_field(0);
                let column = Expr::Column(datafusion::common::Column::from((qualifier, field)));
                let name = field.name().clone();
                let cast_plan = LogicalPlanBuilder::from(plan)
                    .project(vec![cast(column, DataType::Float64).alias(name)])?
                    .build()?;
                q.subquery.subquery = std::sync::Arc::new(cast_plan);
            }
            Ok(Transformed::yes(Expr::InSubquery(InSubquery::new(
                Box::new(side(*q.expr)),
                q.subquery,
                q.negated,
            ))))
        }
        Expr::Case(c) => {
            // `CASE x WHEN v ...` compares `x` with each `v`.
            let operand: Vec<DataType> = c
                .expr
                .as_deref()
                .map(|x| {
                    std::iter::once(ty(x))
                        .chain(c.when_then_expr.iter().map(|(w, _)| ty(w)))
                        .collect()
                })
                .unwrap_or_default();
            let compare = resolved(&operand).is_some();
            let results: Vec<DataType> = c
                .when_then_expr
                .iter()
                .map(|(_, t)| ty(t))
                .chain(c.else_expr.as_deref().map(ty))
                .collect();
            let to = resolved(&results);
            if !compare && to.is_none() {
                return Ok(Transformed::no(Expr::Case(c)));
            }
            let result = |x: Expr| match &to {
                Some(to) => widened(x, to, schema),
                None => x,
            };
            let when = |x: Expr| if compare { side(x) } else { x };
            Ok(Transformed::yes(Expr::Case(Case::new(
                c.expr.map(|x| Box::new(when(*x))),
                c.when_then_expr
                    .into_iter()
                    .map(|(w, t)| (Box::new(when(*w)), Box::new(result(*t))))
                    .collect(),
                c.else_expr.map(|x| Box::new(result(*x))),
            ))))
        }
        Expr::ScalarFunction(f)
            if matches!(f.name(), "coalesce" | "greatest" | "least" | "nullif") =>
        {
            let types: Vec<DataType> = f.args.iter().map(ty).collect();
            let Some(to) = resolved(&types) else {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            };
            let args = f
                .args
                .into_iter()
                .map(|x| widened(x, &to, schema))
                .collect();
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(f.func, args),
            )))
        }
        other => Ok(Transformed::no(other)),
    }
}
