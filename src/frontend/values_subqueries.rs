//! A subquery inside `VALUES`: `INSERT INTO t VALUES ((SELECT max(id) + 1
//! FROM t), 'x')`.
//!
//! DataFusion runs the uncorrelated subqueries of a projection or a filter
//! before the plan, but not those of a `VALUES` list, which failed with
//! `XX000 ScalarSubqueryExpr evaluated before the subquery was executed`.
//! Such a list becomes a select over itself: each cell that holds a
//! subquery is NULL in the list, which gains a row number, and the select
//! computes the cell by that number:
//!
//! ```text
//! VALUES ((SELECT max(a) FROM t), 1), (2, 3)
//!   => SELECT CASE "*VALUES*".sluice_row WHEN 1 THEN (SELECT max(a) FROM t)
//!             ELSE "*VALUES*".column1 END AS column1,
//!             "*VALUES*".column2 AS column2
//!      FROM (VALUES (1, NULL, 1), (2, 2, 3)) AS "*VALUES*" (sluice_row, column1, column2)
//! ```
//!
//! The rows keep their order (one list, one partition) and the column
//! types come from every row, as before. A list with `DEFAULT` is left
//! alone (INSERT reads those itself).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    CaseWhen, Expr, Ident, Query, SelectItem, SetExpr, Statement, TableAlias, TableAliasColumnDef,
    TableFactor, Value, Values, VisitorMut,
};

/// The row number's column.
const ROW: &str = "sluice_row";
/// The list's alias, PostgreSQL's name for it.
const LIST: &str = "*VALUES*";

/// Rewrite every `VALUES` list of `stmt` that holds a subquery.
pub fn values_subqueries(stmt: &mut Statement) {
    struct Lists;
    impl VisitorMut for Lists {
        type Break = ();
        fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            if let SetExpr::Values(values) = q.body.as_mut()
                && values.rows.iter().flat_map(|r| r.iter()).any(has_subquery)
                && !values.rows.iter().flat_map(|r| r.iter()).any(is_default)
                && let Some(select) = select_over(values)
            {
                *q.body = select;
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut Lists);
}

fn has_subquery(e: &Expr) -> bool {
    crate::visit::visit_expressions(e, |e| match e {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

fn number(n: usize) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

fn listed(column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![Ident::with_quote('"', LIST), Ident::new(column)])
}

/// The select that computes `values` (see the module docs); `None` when
/// its rows are not all of one width.
fn select_over(values: &mut Values) -> Option<SetExpr> {
    let width = values.rows.first()?.len();
    if values.rows.iter().any(|r| r.len() != width) {
        return None;
    }
    // Both made before the list is changed: `None` leaves it as it was.
    let mut list = super::plain_select()?;
    let SetExpr::Select(mut select) = *super::plain_select()?.body else {
        return None;
    };
    // Per column, the cells taken out of the list, by row number.
    let mut taken: Vec<Vec<CaseWhen>> = vec![Vec::new(); width];
    for (i, row) in values.rows.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            if has_subquery(cell) {
                let e = std::mem::replace(cell, Expr::value(Value::Null));
                taken[j].push(CaseWhen {
                    condition: number(i + 1),
                    result: e,
                });
            }
        }
        row.insert(0, number(i + 1));
    }
    let names: Vec<String> = (1..=width).map(|j| format!("column{j}")).collect();
    let projection = taken
        .into_iter()
        .zip(&names)
        .map(|(conditions, name)| {
            let expr = if conditions.is_empty() {
                listed(name)
            } else {
                Expr::Case {
                    case_token: AttachedToken::empty(),
                    end_token: AttachedToken::empty(),
                    operand: Some(Box::new(listed(ROW))),
                    conditions,
                    else_result: Some(Box::new(listed(name))),
                }
            };
            SelectItem::ExprWithAlias {
                expr,
                alias: Ident::new(name),
            }
        })
        .collect();
    list.body = Box::new(SetExpr::Values(std::mem::replace(
        values,
        Values {
            explicit_row: false,
            value_keyword: false,
            rows: vec![],
        },
    )));
    let alias = TableAlias {
        explicit: true,
        name: Ident::with_quote('"', LIST),
        columns: std::iter::once(ROW.to_string())
            .chain(names)
            .map(|n| TableAliasColumnDef {
                name: Ident::new(n),
                data_type: None,
            })
            .collect(),
        at: None,
    };
    select.projection = projection;
    select.from[0].relation = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(list),
        alias: Some(alias),
        sample: None,
    };
    Some(SetExpr::Select(select))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut stmt = crate::frontend::parse_one(sql);
        values_subqueries(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn a_cell_with_a_subquery_is_computed_by_its_row_number() {
        assert_eq!(
            rewritten("INSERT INTO t VALUES ((SELECT max(a) FROM t), 'x'), (2, 'y')"),
            "INSERT INTO t SELECT CASE \"*VALUES*\".sluice_row WHEN 1 THEN (SELECT max(a) FROM t) \
             ELSE \"*VALUES*\".column1 END AS column1, \"*VALUES*\".column2 AS column2 \
             FROM (VALUES (1, NULL, 'x'), (2, 2, 'y')) AS \"*VALUES*\" (sluice_row, column1, column2)"
        );
    }

    #[test]
    fn lists_without_subqueries_or_with_default_stay() {
        for sql in [
            "INSERT INTO t VALUES (1, 'x')",
            "SELECT * FROM (VALUES (1), (2)) AS v (a)",
            "INSERT INTO t VALUES ((SELECT 1), DEFAULT)",
        ] {
            assert_eq!(rewritten(sql), sql);
        }
    }
}
