//! Integer literals typed as PostgreSQL types them: a whole number that
//! fits in 32 bits is an `integer`, a larger one a `bigint`. DataFusion
//! makes every integer literal an Int64, so `SELECT 1` answered a bigint
//! (a string in node-postgres), `2147483647 + 1` did not overflow, and a
//! table made by `CREATE TABLE AS SELECT 1` got a bigint column.
//!
//! Changes result types, so it is applied to the plan as the SQL planner
//! gives it (before analysis), where every consumer of the plan's schema
//! (a statement's description, a view, a table made from a query) sees the
//! types its rows come in.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    Expr, ExprSchemable, LogicalPlan, Operator, RecursiveQuery, Subquery, TableScan,
    TableScanBuilder, Union, Values, WindowFunctionDefinition, cast,
};
use datafusion::optimizer::analyzer::type_coercion::coerce_union_schema;

/// `e` with its integer literals that fit in 32 bits made Int32.
fn narrow(e: Expr) -> Result<Transformed<Expr>> {
    crate::tree::transform_up(e, |x| match x {
        Expr::Literal(ScalarValue::Int64(Some(v)), meta) if i32::try_from(v).is_ok() => Ok(
            Transformed::yes(Expr::Literal(ScalarValue::Int32(Some(v as i32)), meta)),
        ),
        other => Ok(Transformed::no(other)),
    })
}

/// The numeric an aggregate's integer argument is read as, when
/// PostgreSQL's aggregate of that integer answers a numeric: `sum(bigint)`
/// (DataFusion's wraps around on overflow) and `avg` of any integer
/// (DataFusion's is a double). Precision enough for the integer's digits;
/// `avg` then takes the digits of an average of numerics.
fn numeric_argument(name: &str, args: &[Expr], schema: &DFSchema) -> Option<DataType> {
    let [arg] = args else { return None };
    match (name, arg.get_type(schema).ok()?) {
        ("sum", DataType::Int64) => Some(DataType::Decimal128(38, 0)),
        ("avg", DataType::Int16 | DataType::Int32) => Some(DataType::Decimal128(10, 0)),
        ("avg", DataType::Int64) => Some(DataType::Decimal128(20, 0)),
        _ => None,
    }
}

/// `e` replaced by its cast to `t`.
fn cast_in_place(e: &mut Expr, t: DataType) {
    let inner = std::mem::replace(e, Expr::Literal(ScalarValue::Null, None));
    *e = cast(inner, t);
}

fn numeric_aggregates(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    crate::tree::transform_up(e, |x| match x {
        Expr::AggregateFunction(mut a) => {
            let Some(t) = numeric_argument(a.func.name(), &a.params.args, schema) else {
                return Ok(Transformed::no(Expr::AggregateFunction(a)));
            };
            cast_in_place(&mut a.params.args[0], t);
            Ok(Transformed::yes(Expr::AggregateFunction(a)))
        }
        Expr::WindowFunction(mut w) => {
            let t = match &w.fun {
                WindowFunctionDefinition::AggregateUDF(f) => {
                    numeric_argument(f.name(), &w.params.args, schema)
                }
                _ => None,
            };
            let Some(t) = t else {
                return Ok(Transformed::no(Expr::WindowFunction(w)));
            };
            cast_in_place(&mut w.params.args[0], t);
            Ok(Transformed::yes(Expr::WindowFunction(w)))
        }
        other => Ok(Transformed::no(other)),
    })
}

/// Function and operator results PostgreSQL types otherwise than
/// DataFusion: `array_length`, `cardinality`, the lengths and positions in
/// a string and the days between two dates are `integer` (DataFusion: 64
/// bits); `NULLIF(a, b)` is of `a`'s type when
/// `=` compares the two without promoting `a` (two integers, two numerics),
/// where DataFusion gives the type both coerce to
/// (`NULLIF(-3.75, CAST(NULL AS numeric(18,6)))` printed `-3.750000`) —
/// its value is `a`'s or NULL, so the cast back loses nothing, and
/// `NULLIF(1, 2.5)` stays a numeric, as in PostgreSQL.
fn function_results(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let type_of = |e: &Expr| e.get_type(schema).ok();
    let is_date = |e: &Expr| matches!(type_of(e), Some(DataType::Date32 | DataType::Date64));
    let is_day = |e: &Expr| matches!(type_of(e), Some(DataType::Date32));
    let is_bytes = |e: &Expr| {
        matches!(
            type_of(e),
            Some(DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
        )
    };
    crate::tree::transform_up(e, |x| {
        // The length of a bytea is its bytes (`octet_length` is Sluice's
        // own, which counts them).
        if let Expr::ScalarFunction(f) = &x
            && f.name() == "character_length"
            && let [arg] = f.args.as_slice()
            && is_bytes(arg)
        {
            return Ok(Transformed::yes(super::encoding::byte_length(arg.clone())));
        }
        // The days between two dates, counted as integers: DataFusion
        // types `a - b` as a bigint but computes a duration, which a
        // comparison with a number then failed on once the optimizer
        // moved the cast around it (`WHERE d - DATE '2024-01-01' = 31`
        // was XX000).
        if let Expr::BinaryExpr(b) = &x
            && b.op == Operator::Minus
            && is_day(&b.left)
            && is_day(&b.right)
        {
            let Expr::BinaryExpr(b) = x else {
                unreachable!("matched above")
            };
            return Ok(Transformed::yes(
                cast(*b.left, DataType::Int32) - cast(*b.right, DataType::Int32),
            ));
        }
        let wanted = match &x {
            // Of a `LargeUtf8` (what `string_agg` makes) DataFusion's
            // lengths and positions are 64 bits too.
            Expr::ScalarFunction(f)
                if matches!(
                    f.name(),
                    "array_length"
                        | "cardinality"
                        | "character_length"
                        | "octet_length"
                        | "bit_length"
                        | "strpos"
                ) =>
            {
                Some(DataType::Int32)
            }
            Expr::BinaryExpr(b)
                if b.op == Operator::Minus && is_date(&b.left) && is_date(&b.right) =>
            {
                Some(DataType::Int32)
            }
            // The type `a` has once coerced (a CASE's is its branches'
            // common type, not its first branch's).
            Expr::ScalarFunction(f) if f.name() == "nullif" && f.args.len() == 2 => {
                super::numeric::coerced_type(&f.args[0], schema).ok()
            }
            _ => None,
        };
        // A string function of a CASE that type coercion makes a
        // `LargeUtf8` later (`position('a' IN CASE ... string_agg(...)
        // END)`) is 64 bits only then: cast now, whatever it is yet.
        let of_strings = matches!(&x, Expr::ScalarFunction(f)
            if matches!(f.name(), "character_length" | "octet_length" | "bit_length" | "strpos"));
        let retype = match (wanted, type_of(&x)) {
            (Some(DataType::Int32), Some(DataType::Int64 | DataType::UInt64)) => {
                Some(DataType::Int32)
            }
            (Some(DataType::Int32), Some(DataType::Int32)) if of_strings => Some(DataType::Int32),
            (Some(t), Some(now)) if now != t => {
                let both = |p: fn(&DataType) -> bool| p(&t) && p(&now);
                (both(DataType::is_integer) || both(|d| matches!(d, DataType::Decimal128(..))))
                    .then_some(t)
            }
            _ => None,
        };
        // An empty array has no dimensions: its length is NULL, not 0.
        let length = matches!(&x, Expr::ScalarFunction(f) if f.name() == "array_length");
        Ok(match retype {
            Some(t) if length => Transformed::yes(datafusion::functions::core::expr_fn::nullif(
                cast(x, t),
                datafusion::logical_expr::lit(0i32),
            )),
            Some(t) => Transformed::yes(cast(x, t)),
            None => Transformed::no(x),
        })
    })
}

/// The type PostgreSQL gives a ranking window function's result where
/// DataFusion's is an unsigned 64-bit integer (a `numeric` on the wire):
/// `ntile` is an `integer`, `row_number`, `rank` and `dense_rank` are
/// `bigint`s.
fn ranking_type(e: &Expr) -> Option<DataType> {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        e => e,
    };
    let Expr::WindowFunction(w) = e else {
        return None;
    };
    match &w.fun {
        WindowFunctionDefinition::WindowUDF(f) => match f.name() {
            "ntile" => Some(DataType::Int32),
            "row_number" | "rank" | "dense_rank" => Some(DataType::Int64),
            _ => None,
        },
        _ => None,
    }
}

/// `e` with its references to a ranking window function's unsigned
/// result (`ranked`: column name to PostgreSQL's type) cast to the type
/// PostgreSQL gives it.
fn ranking_results(
    e: Expr,
    schema: &DFSchema,
    ranked: &HashMap<String, DataType>,
) -> Result<Transformed<Expr>> {
    if ranked.is_empty() {
        return Ok(Transformed::no(e));
    }
    crate::tree::transform_up(e, |x| match x {
        Expr::Column(c) => match ranked.get(&c.name) {
            Some(t)
                if Expr::Column(c.clone())
                    .get_type(schema)
                    .is_ok_and(|u| u == DataType::UInt64) =>
            {
                Ok(Transformed::yes(cast(Expr::Column(c), t.clone())))
            }
            _ => Ok(Transformed::no(Expr::Column(c))),
        },
        other => Ok(Transformed::no(other)),
    })
}

/// Whether a node of `plan` (subqueries included) is one `found` picks.
fn holds(plan: &LogicalPlan, found: impl Fn(&LogicalPlan) -> bool) -> bool {
    let mut hit = false;
    let _ = crate::tree::apply_with_subqueries(plan, |n| {
        hit = found(n);
        Ok(if hit {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    hit
}

/// Whether `e` calls the aggregate `grouping(...)`.
fn grouping_function(e: &Expr) -> bool {
    crate::tree::exists(e, |x| {
        Ok(matches!(x, Expr::AggregateFunction(a) if a.func.name() == "grouping"))
    })
    .unwrap_or(true)
}

/// Whether `plan` holds a recursive query.
fn recursive(plan: &LogicalPlan) -> bool {
    holds(plan, |n| matches!(n, LogicalPlan::RecursiveQuery(_)))
}

/// A recursive query whose terms got PostgreSQL's integer types: the work
/// table (typed from the static term as planned) takes the static term's
/// new types, and the recursive term reading it is typed again. `None`
/// when the recursive term's columns then differ from the static term's
/// (`SELECT 1 UNION ALL SELECT n * 3000000000 FROM t`): PostgreSQL refuses
/// such a query, DataFusion casts, and the query keeps DataFusion's types.
fn recursive_query(q: &RecursiveQuery) -> Result<Option<LogicalPlan>> {
    use datafusion::catalog::cte_worktable::CteWorkTable;
    use datafusion::datasource::{provider_as_source, source_as_provider};
    let work: SchemaRef = Arc::new(Schema::new_with_metadata(
        q.static_term
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
        q.static_term.schema().inner().metadata().clone(),
    ));
    let is_work_table = |scan: &TableScan| {
        source_as_provider(&scan.source).is_ok_and(|p| {
            p.downcast_ref::<CteWorkTable>()
                .is_some_and(|w| w.name() == q.name && w.schema() != work)
        })
    };
    let recursive_term =
        crate::tree::transform_up_with_subqueries(q.recursive_term.as_ref().clone(), |node| {
            match node {
                LogicalPlan::TableScan(scan) if is_work_table(&scan) => {
                    let source =
                        provider_as_source(Arc::new(CteWorkTable::new(&q.name, work.clone())));
                    let scan = TableScanBuilder::new(scan.table_name, source)
                        .with_projection(scan.projection)
                        .with_filters(scan.filters)
                        .with_fetch(scan.fetch)
                        .build()?;
                    Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                }
                node => Ok(Transformed::yes(node.recompute_schema()?)),
            }
        })?
        .data;
    let types = |p: &LogicalPlan| -> Vec<DataType> {
        p.schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    };
    if types(&recursive_term) != types(&q.static_term) {
        return Ok(None);
    }
    Ok(Some(LogicalPlan::RecursiveQuery(RecursiveQuery::try_new(
        q.name.clone(),
        Arc::clone(&q.static_term),
        Arc::new(recursive_term),
        q.is_distinct,
    )?)))
}

/// Whether `plan` has a subquery, whose outer references may need retyping.
fn has_subqueries(plan: &LogicalPlan) -> bool {
    holds(plan, |n| {
        matches!(n, LogicalPlan::Subquery(_))
            || n.expressions().iter().any(|e| {
                crate::tree::exists(e, |x| {
                    Ok(matches!(
                        x,
                        Expr::ScalarSubquery(_)
                            | Expr::Exists(_)
                            | Expr::InSubquery(_)
                            | Expr::SetComparison(_)
                    ))
                })
                .unwrap_or(true)
            })
    })
}

/// `plan` (as the SQL planner gave it) with PostgreSQL's integer literals.
pub fn rewrite_plan(plan: LogicalPlan) -> Result<LogicalPlan> {
    // What a recursive query whose terms disagree keeps.
    let planned = recursive(&plan).then(|| plan.clone());
    let mut disagree = false;
    // Columns of window nodes below that hold a ranking function's result.
    let mut ranked: HashMap<String, DataType> = HashMap::new();
    let rewritten = crate::tree::transform_up_with_subqueries(plan, |node| match node {
        // LIMIT and OFFSET are bigints, as the planner wants them.
        LogicalPlan::Limit(_) => Ok(Transformed::no(node)),
        LogicalPlan::Values(v) => values(v),
        LogicalPlan::Union(u) => union(u),
        LogicalPlan::RecursiveQuery(q) => match recursive_query(&q)? {
            Some(typed) => Ok(Transformed::yes(typed)),
            None => {
                disagree = true;
                Ok(Transformed::no(LogicalPlan::RecursiveQuery(q)))
            }
        },
        node => {
            let names = NamePreserver::new(&node);
            let aggregates = matches!(node, LogicalPlan::Aggregate(_) | LogicalPlan::Window(_));
            let input = match node.inputs().as_slice() {
                [one] => Arc::clone(one.schema()),
                many => {
                    let mut merged = DFSchema::empty();
                    for i in many {
                        merged.merge(i.schema());
                    }
                    Arc::new(merged)
                }
            };
            let node = crate::tree::map_expressions(node, |e| {
                // A grouping set names its columns after its expressions,
                // and an alias would hide it from the physical planner:
                // its literals stay as planned. So does `grouping(...)`,
                // which the analyzer finds by its shape and turns into
                // bits of the internal grouping id.
                if matches!(e, Expr::GroupingSet(_)) || grouping_function(&e) {
                    return Ok(Transformed::no(e));
                }
                let saved = crate::types::save_name(&names, &e);
                let e = narrow(e)?
                    .transform_data(|e| function_results(e, &input))?
                    .transform_data(|e| ranking_results(e, &input, &ranked))?;
                let e = if aggregates {
                    e.transform_data(|e| numeric_aggregates(e, &input))?
                } else {
                    e
                };
                Ok(e.update_data(|x| crate::types::keep_name(saved, x)))
            })?;
            if let LogicalPlan::Window(w) = &node.data {
                for (e, f) in w.window_expr.iter().zip(
                    w.schema
                        .fields()
                        .iter()
                        .skip(w.schema.fields().len() - w.window_expr.len()),
                ) {
                    if let Some(t) = ranking_type(e) {
                        ranked.insert(f.name().clone(), t);
                    }
                }
            }
            // A changed type changes the schema of this node and those above.
            node.map_data(|n| n.recompute_schema())
        }
    })?;
    if let (true, Some(planned)) = (disagree, planned) {
        return Ok(planned);
    }
    // Retyping outer references rebuilds every node's schema: only when
    // a type changed and some subquery could refer to it.
    if rewritten.transformed && has_subqueries(&rewritten.data) {
        outer_references(rewritten.data)
    } else {
        Ok(rewritten.data)
    }
}

/// A subquery's references to the columns of its outer query carry the
/// type the column had when planned: each takes the type its column has
/// now. A name given two different types in the plan is left as it is.
fn outer_references(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mut types: HashMap<Column, Option<DataType>> = HashMap::new();
    crate::tree::apply_with_subqueries(&plan, |n| {
        for (q, f) in n.schema().iter() {
            let c = Column::new(q.cloned(), f.name());
            types
                .entry(c)
                .and_modify(|t| {
                    if t.as_ref() != Some(f.data_type()) {
                        *t = None
                    }
                })
                .or_insert_with(|| Some(f.data_type().clone()));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let retype = |e: Expr| -> Result<Transformed<Expr>> {
        crate::tree::transform_up(e, |x| match x {
            Expr::OuterReferenceColumn(f, c) => match types.get(&c) {
                Some(Some(t)) if t != f.data_type() => {
                    Ok(Transformed::yes(Expr::OuterReferenceColumn(
                        Arc::new(f.as_ref().clone().with_data_type(t.clone())),
                        c,
                    )))
                }
                _ => Ok(Transformed::no(Expr::OuterReferenceColumn(f, c))),
            },
            other => Ok(Transformed::no(other)),
        })
    };
    let subquery = |mut s: Subquery| -> Result<Subquery> {
        s.outer_ref_columns = s
            .outer_ref_columns
            .into_iter()
            .map(|e| retype(e).map(|t| t.data))
            .collect::<Result<_>>()?;
        Ok(s)
    };
    crate::tree::transform_up_with_subqueries(plan, |node| {
        let node = crate::tree::map_expressions(node, |e| {
            retype(e)?.transform_data(|e| {
                crate::tree::transform_up(e, |x| {
                    Ok(Transformed::yes(match x {
                        Expr::ScalarSubquery(s) => Expr::ScalarSubquery(subquery(s)?),
                        Expr::Exists(mut x) => {
                            x.subquery = subquery(x.subquery)?;
                            Expr::Exists(x)
                        }
                        Expr::InSubquery(mut x) => {
                            x.subquery = subquery(x.subquery)?;
                            Expr::InSubquery(x)
                        }
                        Expr::SetComparison(mut x) => {
                            x.subquery = subquery(x.subquery)?;
                            Expr::SetComparison(x)
                        }
                        other => return Ok(Transformed::no(other)),
                    }))
                })
            })
        })?;
        node.transform_data(|n| match n {
            LogicalPlan::Subquery(s) => Ok(Transformed::yes(LogicalPlan::Subquery(subquery(s)?))),
            LogicalPlan::Limit(_) | LogicalPlan::Values(_) | LogicalPlan::Union(_) => {
                Ok(Transformed::no(n))
            }
            n => n.recompute_schema().map(Transformed::yes),
        })
    })
    .map(|t| t.data)
}

/// A VALUES list: a column whose rows all became one type takes it; any
/// other column keeps its type, each row cast to it.
fn values(v: Values) -> Result<Transformed<LogicalPlan>> {
    let Values { schema, values } = v;
    let empty = DFSchema::empty();
    let mut changed = false;
    let mut rows = Vec::with_capacity(values.len());
    for row in values {
        let mut out = Vec::with_capacity(row.len());
        for e in row {
            let t = narrow(e)?;
            changed |= t.transformed;
            out.push(t.data);
        }
        rows.push(out);
    }
    // DataFusion types a column of floats and numerics as a numeric
    // (`Decimal128(30, 15)`), casting each cell to it: seen through that
    // cast, the column is PostgreSQL's float.
    for (i, field) in schema.fields().iter().enumerate() {
        let planned = |e: &Expr| match e {
            Expr::Cast(c) if c.field.data_type() == field.data_type() => {
                c.expr.get_type(&empty).ok()
            }
            e => e.get_type(&empty).ok(),
        };
        let cells = rows
            .iter()
            .filter(|r| !matches!(&r[i], Expr::Literal(v, _) if v.is_null()))
            .map(|r| planned(&r[i]))
            .collect::<Option<Vec<_>>>();
        // Uncast here; the column is typed with the others below.
        if matches!(field.data_type(), DataType::Decimal128(..))
            && cells.is_some_and(|c| float_of(c.iter()).is_some())
        {
            for r in rows.iter_mut() {
                if let Expr::Cast(c) = &mut r[i]
                    && c.field.data_type() == field.data_type()
                {
                    let null = Expr::Literal(ScalarValue::Null, None);
                    r[i] = std::mem::replace(c.expr.as_mut(), null);
                }
            }
            changed = true;
        }
    }
    if !changed {
        return Ok(Transformed::no(LogicalPlan::Values(Values {
            schema,
            values: rows,
        })));
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    for (i, (qualifier, field)) in schema.iter().enumerate() {
        let types = rows
            .iter()
            .map(|r| {
                if matches!(&r[i], Expr::Literal(v, _) if v.is_null()) {
                    Ok(None)
                } else {
                    r[i].get_type(&empty).map(Some)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let mut present = types.iter().flatten();
        let one = present
            .next()
            .filter(|first| present.all(|t| t == *first))
            .cloned();
        let target = one
            .or_else(|| float_of(types.iter().flatten()))
            .unwrap_or_else(|| field.data_type().clone());
        for (r, t) in rows.iter_mut().zip(&types) {
            if t.as_ref() != Some(&target) {
                cast_in_place(&mut r[i], target.clone());
            }
        }
        fields.push((
            qualifier.cloned(),
            Arc::new(field.as_ref().clone().with_data_type(target)),
        ));
    }
    let schema = DFSchema::new_with_metadata(fields, schema.metadata().clone())?;
    Ok(Transformed::yes(LogicalPlan::Values(Values {
        schema: Arc::new(schema),
        values: rows,
    })))
}

/// The float a column of numbers some of which are floats is, as
/// PostgreSQL resolves it: `double precision` if one is, else `real`
/// (`VALUES (1.5::float8), (2.25)` is a `double precision` column; it was
/// a numeric of 15 fractional digits).
fn float_of<'a>(types: impl Iterator<Item = &'a DataType> + Clone) -> Option<DataType> {
    let numbers = types
        .clone()
        .all(|t| t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..)));
    if !numbers {
        return None;
    }
    if types.clone().any(|t| *t == DataType::Float64) {
        Some(DataType::Float64)
    } else if types.clone().any(|t| t.is_floating()) {
        Some(DataType::Float32)
    } else {
        None
    }
}

/// A UNION takes the types its inputs coerce to, as the analyzer will
/// compute them (it starts from the union's own types).
fn union(u: Union) -> Result<Transformed<LogicalPlan>> {
    let coerced = coerce_union_schema(&u.inputs)?;
    let same = u
        .schema
        .fields()
        .iter()
        .zip(coerced.fields())
        .all(|(a, b)| a.data_type() == b.data_type());
    if same {
        return Ok(Transformed::no(LogicalPlan::Union(u)));
    }
    let fields = u
        .schema
        .iter()
        .zip(coerced.fields())
        .map(|((q, f), c)| {
            (
                q.cloned(),
                Arc::new(f.as_ref().clone().with_data_type(c.data_type().clone())),
            )
        })
        .collect();
    let schema = DFSchema::new_with_metadata(fields, u.schema.metadata().clone())?;
    Ok(Transformed::yes(LogicalPlan::Union(Union {
        inputs: u.inputs,
        schema: Arc::new(schema),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn types(sql: &str) -> Vec<DataType> {
        let of = |s: &DFSchema| -> Vec<DataType> {
            s.fields().iter().map(|f| f.data_type().clone()).collect()
        };
        let ctx = SessionContext::new();
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let plan = rewrite_plan(plan).unwrap();
        let want = of(plan.schema());
        // The analyzed plan and the rows answer with the types the plan says.
        let analyzed = ctx
            .state()
            .analyzer()
            .execute_and_check(plan.clone(), ctx.state().config_options(), |_, _| {})
            .unwrap();
        assert_eq!(want, of(analyzed.schema()), "{sql}");
        let batches = ctx
            .execute_logical_plan(plan)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        if let Some(b) = batches.first() {
            let rows: Vec<DataType> = b
                .schema()
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect();
            assert_eq!(want, rows, "{sql}");
        }
        want
    }

    #[tokio::test]
    async fn literals_that_fit_are_integers() {
        use DataType::*;
        assert_eq!(
            types("SELECT 1, 2147483648, -2147483648").await,
            [Int32, Int64, Int32]
        );
        assert_eq!(types("SELECT 1 + 1, 1 + 2147483648").await, [Int32, Int64]);
        assert_eq!(types("SELECT sum(1), count(1)").await, [Int64, Int64]);
        // A literal among grouping sets keeps its planned type.
        assert_eq!(
            types("SELECT true, 2 FROM (VALUES (1)) t(k) GROUP BY CUBE (k), 2").await,
            [Boolean, Int64]
        );
        assert_eq!(
            types("SELECT array_length([1, 2], 1), cardinality([1]), DATE '2024-03-01' - DATE '2024-02-01'").await,
            [Int32, Int32, Int32]
        );
        assert_eq!(
            types("SELECT sum(x), avg(x), sum(y), avg(y) FROM (VALUES (1, 3000000000)) t(y, x)")
                .await,
            [
                Decimal128(38, 0),
                Decimal128(24, 4),
                Int64,
                Decimal128(14, 4)
            ]
        );
        assert_eq!(
            types("SELECT sum(x) OVER (), avg(y) OVER () FROM (VALUES (1, 3000000000)) t(y, x)")
                .await,
            [Decimal128(38, 0), Decimal128(14, 4)]
        );
        assert_eq!(types("SELECT * FROM (VALUES (1), (2)) t(x)").await, [Int32]);
        assert_eq!(
            types("SELECT * FROM (VALUES (1, 1), (NULL, 3000000000)) t(x, y)").await,
            [Int32, Int64]
        );
        assert_eq!(types("SELECT 1 UNION ALL SELECT 2").await, [Int32]);
        assert_eq!(types("SELECT 1 UNION SELECT 3000000000").await, [Int64]);
        assert_eq!(
            types("SELECT x FROM (SELECT 1 AS x) s LIMIT 1 OFFSET 0").await,
            [Int32]
        );
        assert_eq!(
            types("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r").await,
            [Int32]
        );
        // Terms that then disagree (PostgreSQL: 42804) keep the planned types.
        assert_eq!(
            types("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n * 3000000000 FROM r WHERE n < 3) SELECT n FROM r").await,
            [Int64]
        );
        assert_eq!(
            types(
                "SELECT k, count(*) FROM (VALUES (1), (1), (2)) t(k) GROUP BY k HAVING count(*) > 1"
            )
            .await,
            [Int32, Int64]
        );
        assert_eq!(
            types("SELECT row_number() OVER (ORDER BY 1), lag(x, 1, 0) OVER (ORDER BY x) FROM (SELECT 5 AS x) s").await,
            [Int64, Int32]
        );
        assert_eq!(
            types("SELECT (SELECT count(*) FROM (VALUES (1)) v(k) WHERE v.k = s.k), s.k FROM (SELECT 1 AS k) s WHERE EXISTS (SELECT 1 FROM (VALUES (1)) w(k) WHERE w.k IN (s.k, 2))").await,
            [Int64, Int32]
        );
    }
}
