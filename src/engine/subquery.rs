//! Scalar subqueries as PostgreSQL evaluates them.
//!
//! PostgreSQL runs `(SELECT title FROM dept WHERE code = emp.dept)` per row:
//! no row gives NULL, one row its value, two rows the error 21000. DataFusion
//! only plans a correlated scalar subquery that aggregates, so the subquery
//! becomes one that does, without changing what it means:
//!
//! ```text
//!  (SELECT e FROM ... )                 ─▶ sluice_subquery_value((SELECT sluice_subquery_rows(e) FROM ...))
//!  (SELECT e FROM ... ORDER BY o LIMIT 1) ─▶ (SELECT first_value(e ORDER BY o) FROM ...)
//! ```
//!
//! `sluice_subquery_rows` keeps at most two values of its group and
//! `sluice_subquery_value` turns them into the one value, or into 21000 for
//! an outer row that really meets two: a key that repeats where no outer
//! row looks is no error, as in PostgreSQL.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments,
    GroupByExpr, Ident, LimitClause, OrderByKind, Query, SelectItem, SetExpr, Statement,
    TableAlias, TableFactor, Value, VisitMut, VisitorMut,
};

use crate::error::{Error, ErrorKind};
use crate::frontend::compat::call;

pub const ROWS: &str = "sluice_subquery_rows";
pub const VALUE: &str = "sluice_subquery_value";

/// Rewrite the scalar subqueries of `stmt` (see the module docs).
/// `is_aggregate` tells aggregate function names.
pub fn rewrite(stmt: &mut Statement, is_aggregate: &dyn Fn(&str) -> bool) {
    struct V<'a>(&'a dyn Fn(&str) -> bool);
    impl VisitorMut for V<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            constant_not_in(q);
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
            if let Some(derived) = unnest_in_from(f) {
                *f = derived;
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Subquery(q) = e
                && let Some(wrapped) = single_row(q, self.0)
            {
                *e = wrapped;
            }
            if let Some(collected) = array_of_rows(e) {
                *e = collected;
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut V(is_aggregate));
}

/// `c NOT IN (SELECT v ...)` in WHERE with a constant `c`: DataFusion
/// filters the subquery by `v = c` before its null-aware anti join looks
/// for NULLs, so a NULL `v` no longer keeps every row out. As a condition
/// of WHERE, where NULL and false both drop the row, it is
/// `NOT EXISTS (SELECT 1 FROM (SELECT v ...) AS s(v) WHERE s.v = c OR
/// s.v IS NULL OR c IS NULL)`: no row when the subquery is empty, none
/// when it has `c` or a NULL, as PostgreSQL answers.
fn constant_not_in(q: &mut Query) {
    let SetExpr::Select(s) = q.body.as_mut() else {
        return;
    };
    if let Some(w) = s.selection.as_mut() {
        conjuncts_not_in(w);
    }
}

fn conjuncts_not_in(e: &mut Expr) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts_not_in(left);
            conjuncts_not_in(right);
        }
        Expr::Nested(inner) => conjuncts_not_in(inner),
        Expr::InSubquery {
            expr,
            subquery,
            negated: true,
        } if constant(expr) => {
            let Ok(q) = crate::frontend::template::query(
                "SELECT NOT EXISTS (SELECT 1 FROM (SELECT 1) AS __not_in(v) \
                 WHERE __not_in.v = $1 OR __not_in.v IS NULL OR $1 IS NULL)",
                &[expr.as_ref().clone()],
            ) else {
                return;
            };
            let SetExpr::Select(select) = *q.body else {
                return;
            };
            let Some(SelectItem::UnnamedExpr(mut exists)) = select.projection.into_iter().next()
            else {
                return;
            };
            // The placeholder derived table becomes the user's subquery.
            struct Derived<'a>(Option<&'a Query>);
            impl VisitorMut for Derived<'_> {
                type Break = ();
                fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
                    if let TableFactor::Derived { subquery, .. } = f
                        && let Some(q) = self.0.take()
                    {
                        **subquery = q.clone();
                    }
                    ControlFlow::Continue(())
                }
            }
            let _ = exists.visit(&mut Derived(Some(subquery)));
            *e = exists;
        }
        _ => {}
    }
}

/// Does `e` read no column and run no query?
fn constant(e: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::{Visit, Visitor};
    struct Reads;
    impl Visitor for Reads {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
                | Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::InSubquery { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    e.visit(&mut Reads).is_continue()
}

/// Does `e` call an aggregate or a window function (outside nested queries)?
fn aggregates(e: &Expr, is_aggregate: &dyn Fn(&str) -> bool) -> bool {
    use datafusion::sql::sqlparser::ast::{Visit, Visitor};
    struct A<'a>(&'a dyn Fn(&str) -> bool, usize);
    impl Visitor for A<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.1 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.1 -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.1 == 0
                && let Expr::Function(f) = e
            {
                let name = f.name.to_string().to_ascii_lowercase();
                if f.over.is_some() || (self.0)(&name) {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    e.visit(&mut A(is_aggregate, 0)).is_break()
}

/// The rewritten expression for the scalar subquery `q`, when it has the
/// shape DataFusion cannot plan as it is.
fn single_row(q: &mut Query, is_aggregate: &dyn Fn(&str) -> bool) -> Option<Expr> {
    if q.with.is_some() || q.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(select) = q.body.as_mut() else {
        return None;
    };
    let grouped = match &select.group_by {
        GroupByExpr::All(_) => true,
        GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
    };
    if select.from.is_empty()
        || grouped
        || select.having.is_some()
        || select.distinct.is_some()
        || select.projection.len() != 1
    {
        return None;
    }
    let item = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    if aggregates(item, is_aggregate) {
        return None;
    }
    let limit_one = match &q.limit_clause {
        None => false,
        Some(LimitClause::LimitOffset {
            limit: Some(l),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => {
            matches!(l, Expr::Value(v) if v.value == Value::Number("1".into(), false))
        }
        Some(_) => return None,
    };
    if limit_one {
        // The first row, in the subquery's order if it has one.
        let order = match q.order_by.take().map(|o| o.kind) {
            Some(OrderByKind::Expressions(exprs)) => exprs,
            Some(OrderByKind::All(_)) => return None,
            None => vec![],
        };
        let clauses = if order.is_empty() {
            vec![]
        } else {
            vec![FunctionArgumentClause::OrderBy(order)]
        };
        *item = call("first_value", vec![item.clone()], clauses);
        q.limit_clause = None;
        return None;
    }
    *item = call(ROWS, vec![item.clone()], vec![]);
    Some(call(
        VALUE,
        vec![Expr::Subquery(Box::new(q.clone()))],
        vec![],
    ))
}

/// `FROM unnest(e) [AS a]`, a set-returning function in the FROM list,
/// as the query `(SELECT unnest(e) AS a) AS a`: then `e` may read the
/// columns of an outer query, as it may in PostgreSQL.
fn unnest_in_from(f: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        alias,
        args: Some(args),
        with_hints,
        version: None,
        ..
    } = f
    else {
        return None;
    };
    let last = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    if last != "unnest" || !with_hints.is_empty() {
        return None;
    }
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = args.args.as_slice() else {
        return None;
    };
    if alias.as_ref().is_some_and(|a| a.columns.len() > 1) {
        return None;
    }
    let column = alias
        .as_ref()
        .map(|a| {
            a.columns
                .first()
                .map(|c| c.name.clone())
                .unwrap_or(a.name.clone())
        })
        .unwrap_or_else(|| Ident::new("unnest"));
    let sql_alias = TableAlias {
        explicit: true,
        name: alias
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_else(|| Ident::new("unnest")),
        columns: vec![],
        at: None,
    };
    let mut query =
        crate::frontend::template::query("SELECT unnest($1) AS c", std::slice::from_ref(arg))
            .ok()?;
    if let SetExpr::Select(s) = query.body.as_mut()
        && let Some(SelectItem::ExprWithAlias { alias, .. }) = s.projection.first_mut()
    {
        *alias = column;
    }
    Some(TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: Some(sql_alias),
        sample: None,
    })
}

/// `ARRAY(SELECT e FROM ... [ORDER BY o])`: the rows' values as an array,
/// empty (not NULL) when there are none.
fn array_of_rows(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    if !f.name.to_string().eq_ignore_ascii_case("array") {
        return None;
    }
    let FunctionArguments::Subquery(q) = &f.args else {
        return None;
    };
    let mut q = q.as_ref().clone();
    if q.limit_clause.is_some() || q.fetch.is_some() {
        return None;
    }
    let order = match q.order_by.take().map(|o| o.kind) {
        Some(OrderByKind::Expressions(exprs)) => exprs,
        Some(OrderByKind::All(_)) => return None,
        None => vec![],
    };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return None;
    };
    if select.projection.len() != 1 {
        return None;
    }
    let item = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    // ORDER BY 1 names the (only) select item.
    let mut order = order;
    for o in order.iter_mut() {
        if let Expr::Value(v) = &o.expr {
            if v.value != Value::Number("1".into(), false) {
                return None;
            }
            o.expr = item.clone();
        }
    }
    let clauses = if order.is_empty() {
        vec![]
    } else {
        vec![FunctionArgumentClause::OrderBy(order)]
    };
    *item = call("array_agg", vec![item.clone()], clauses);
    Some(call(
        "coalesce",
        vec![
            Expr::Subquery(Box::new(q)),
            call("make_array", vec![], vec![]),
        ],
        vec![],
    ))
}

/// The functions the rewrite calls, to register with a session.
pub fn functions() -> (AggregateUDF, ScalarUDF) {
    (
        AggregateUDF::new_from_impl(Rows {
            signature: Signature::any(1, Volatility::Immutable),
        }),
        ScalarUDF::new_from_impl(SingleValue {
            signature: Signature::any(1, Volatility::Immutable),
        }),
    )
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Rows {
    signature: Signature,
}

fn list_of(t: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t.clone(), true)))
}

impl AggregateUDFImpl for Rows {
    fn name(&self) -> &str {
        ROWS
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        Ok(list_of(&args[0]))
    }
    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let DataType::List(item) = args.return_field.data_type() else {
            return exec_err!("{ROWS} returns a list");
        };
        Ok(Box::new(FirstTwo {
            ty: item.data_type().clone(),
            values: Vec::new(),
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[rows]", args.name),
            args.return_field.data_type().clone(),
            true,
        ))])
    }
}

/// Up to two values of a group: enough to tell none, one and many apart.
#[derive(Debug)]
struct FirstTwo {
    ty: DataType,
    values: Vec<ScalarValue>,
}

impl FirstTwo {
    fn take(&mut self, a: &ArrayRef) -> DfResult<()> {
        for i in 0..a.len() {
            if self.values.len() >= 2 {
                break;
            }
            self.values.push(ScalarValue::try_from_array(a, i)?);
        }
        Ok(())
    }

    fn list(&self) -> ScalarValue {
        ScalarValue::List(ScalarValue::new_list_nullable(&self.values, &self.ty))
    }
}

impl Accumulator for FirstTwo {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.take(&values[0])
    }
    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(self.list())
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.iter().map(|v| v.size()).sum::<usize>()
    }
    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![self.list()])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                self.take(&lists.value(i))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleValue {
    signature: Signature,
}

impl ScalarUDFImpl for SingleValue {
    fn name(&self) -> &str {
        VALUE
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match &args[0] {
            DataType::List(f) => Ok(f.data_type().clone()),
            DataType::Null => Ok(DataType::Null),
            other => exec_err!("{VALUE} takes a list, not {other}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let input = args.args[0].to_array(rows)?;
        let out_type = args.return_field.data_type().clone();
        if input.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from(&out_type)?));
        }
        let lists: &ListArray = input.as_list::<i32>();
        let mut values = Vec::with_capacity(rows);
        for i in 0..lists.len() {
            if lists.is_null(i) || lists.value_length(i) == 0 {
                values.push(ScalarValue::try_from(&out_type)?);
                continue;
            }
            if lists.value_length(i) > 1 {
                return Err(datafusion::error::DataFusionError::External(Box::new(
                    Error::new(
                        ErrorKind::CardinalityViolation,
                        "more than one row returned by a subquery used as an expression",
                    ),
                )));
            }
            values.push(ScalarValue::try_from_array(&lists.value(i), 0)?);
        }
        if values.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(&out_type),
            ));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            sql,
        )
        .unwrap()
        .remove(0);
        rewrite(&mut stmt, &|n| matches!(n, "count" | "max"));
        stmt.to_string()
    }

    #[test]
    fn only_unaggregated_subqueries_change() {
        assert_eq!(
            rewritten("SELECT (SELECT t FROM d WHERE d.c = e.c) FROM e"),
            "SELECT sluice_subquery_value((SELECT sluice_subquery_rows(t) FROM d WHERE d.c = e.c)) FROM e"
        );
        let same = "SELECT (SELECT max(t) FROM d WHERE d.c = e.c) FROM e";
        assert_eq!(rewritten(same), same);
        let same = "SELECT (SELECT 1) FROM e";
        assert_eq!(rewritten(same), same);
        assert_eq!(
            rewritten("SELECT (SELECT t FROM d ORDER BY k DESC LIMIT 1) FROM e"),
            "SELECT (SELECT first_value(t ORDER BY k DESC) FROM d) FROM e"
        );
    }
}
