//! A query that is one group of all its rows although nothing asks
//! DataFusion to aggregate: grouped by the empty set (`GROUP BY ()`), or
//! with a HAVING clause and neither GROUP BY nor an aggregate
//! (`SELECT 1 FROM t HAVING EXISTS (...)`). PostgreSQL makes one row of
//! it when HAVING holds, even of an empty input; DataFusion refuses the
//! first (`Empty tuple not supported yet`) and asks the second for a GROUP
//! BY. The empty sets are dropped and, where no aggregate is in sight, a
//! condition that always holds over `count(*)` makes the aggregate: what
//! the select list may read is then what PostgreSQL allows (a column of
//! the input is `42803`, as there).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Query, Select, SetExpr, Statement, VisitorMut,
};

/// Aggregate functions PostgreSQL and Sluice both have. A query that has
/// one needs no help; one missed here gets the (harmless) extra condition.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "bit_and",
    "bit_or",
    "bit_xor",
    "corr",
    "covar_pop",
    "covar_samp",
    "percentile_cont",
    "percentile_disc",
    "mode",
];

/// Rewrite every SELECT of `stmt` that is one group (see the module docs).
pub fn one_group(stmt: &mut Statement) {
    struct Groups;
    impl VisitorMut for Groups {
        type Break = ();
        fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            selects(q.body.as_mut());
            ControlFlow::Continue(())
        }
    }
    fn selects(body: &mut SetExpr) {
        match body {
            SetExpr::Select(s) => one_group_select(s),
            SetExpr::SetOperation { left, right, .. } => {
                selects(left);
                selects(right);
            }
            _ => {}
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut Groups);
}

fn one_group_select(s: &mut Select) {
    let GroupByExpr::Expressions(keys, modifiers) = &mut s.group_by else {
        return;
    };
    let before = keys.len();
    keys.retain(|k| !matches!(k, Expr::Tuple(t) if t.is_empty()));
    let emptied = before > 0 && keys.is_empty();
    if !keys.is_empty() || !modifiers.is_empty() || !(emptied || s.having.is_some()) {
        return;
    }
    if has_aggregate(s) {
        return;
    }
    let always = Expr::BinaryOp {
        left: Box::new(count_star()),
        op: BinaryOperator::GtEq,
        right: Box::new(Expr::value(datafusion::sql::sqlparser::ast::Value::Number(
            "0".into(),
            false,
        ))),
    };
    s.having = Some(match s.having.take() {
        Some(h) => Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(h))),
            op: BinaryOperator::And,
            right: Box::new(always),
        },
        None => always,
    });
}

fn count_star() -> Expr {
    use datafusion::sql::sqlparser::ast::{
        Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
        ObjectName,
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("count")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Wildcard)],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// Whether `f` is a call of an aggregate function (not as a window).
pub fn is_aggregate(f: &datafusion::sql::sqlparser::ast::Function) -> bool {
    f.over.is_none()
        && matches!(f.name.0.as_slice(), [part] if part
            .as_ident()
            .is_some_and(|i| AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str())))
}

/// Does the select list or HAVING of `s` (not a subquery's) call an
/// aggregate?
fn has_aggregate(s: &Select) -> bool {
    let mut found = false;
    let mut look = |e: &Expr| {
        if let Expr::Function(f) = e
            && is_aggregate(f)
        {
            found = true;
        }
    };
    for item in &s.projection {
        let _ = crate::visit::at_level(item, &mut look);
    }
    if let Some(h) = &s.having {
        let _ = crate::visit::at_level(h, &mut look);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut stmt = crate::frontend::parse_one(sql);
        one_group(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn the_empty_grouping_set_is_one_group() {
        assert_eq!(
            rewritten("SELECT 1 FROM t GROUP BY ()"),
            "SELECT 1 FROM t HAVING count(*) >= 0"
        );
        assert_eq!(
            rewritten("SELECT count(*) FROM t GROUP BY ()"),
            "SELECT count(*) FROM t"
        );
        assert_eq!(
            rewritten("SELECT a FROM t GROUP BY (), a"),
            "SELECT a FROM t GROUP BY a"
        );
    }

    #[test]
    fn having_without_an_aggregate_makes_one() {
        assert_eq!(
            rewritten("SELECT 1 FROM t HAVING EXISTS (SELECT 1 FROM u)"),
            "SELECT 1 FROM t HAVING (EXISTS (SELECT 1 FROM u)) AND count(*) >= 0"
        );
        // A subquery's aggregate is not the query's own.
        assert_eq!(
            rewritten("SELECT 1 FROM t HAVING (SELECT max(a) FROM u) > 1"),
            "SELECT 1 FROM t HAVING ((SELECT max(a) FROM u) > 1) AND count(*) >= 0"
        );
        for unchanged in [
            "SELECT count(*) FROM t HAVING count(*) > 1",
            "SELECT a FROM t GROUP BY a HAVING true",
            "SELECT 1 FROM t",
            "SELECT x FROM (SELECT sum(a) AS x FROM t HAVING sum(a) > 0) AS d",
        ] {
            assert_eq!(rewritten(unchanged), unchanged);
        }
    }
}
