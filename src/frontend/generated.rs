//! SQL the engine reads besides the client's statements: the queries the
//! write path builds over a table, a column's DEFAULT and a CHECK kept in
//! the catalog. They are read exactly as a client's statement is, with
//! PostgreSQL's grammar (`j ->> 'k' = 'w'` compares the member; `j ? 'k'`
//! is an operator) and the casts Sluice plans itself (`CAST(x AS jsonb)`,
//! timestamps in microseconds). An expression that is already a syntax
//! tree (a part of the client's statement) is planned as it is, never
//! printed and read again.
//!
//! ```text
//!   text ──▶ SluiceDialect parser ──▶ typed casts ──▶ DataFusion planner
//!   syntax tree ─────────────────────────────────────▶ DataFusion planner
//! ```

use datafusion::common::DFSchema;
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlan};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Statement, TableFactor};
use datafusion::sql::sqlparser::parser::Parser;

use super::dialect::SluiceDialect;
use crate::error::{Error, Result};

/// The casts a statement's own text gets (see [`super::compat::rewrite`]),
/// which the engine's text needs too.
fn casts<N: datafusion::sql::sqlparser::ast::VisitMut>(node: &mut N) {
    super::compat::typed_casts(node);
    super::compat::timestamp_casts(node);
}

/// `sql`, one statement, parsed as a client's would be (its casts are
/// planned by [`plan_statement`]).
pub fn statement(sql: &str) -> Result<Statement> {
    let dialect = SluiceDialect::for_sql(sql);
    Parser::new(&dialect)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statement())
        .map_err(|e| Error::internal(format!("generated statement {sql}: {e}")))
}

/// `sql`, one expression (a DEFAULT, a CHECK), parsed as a client's would be.
pub fn expr(sql: &str) -> Result<Expr> {
    let dialect = SluiceDialect::default();
    let mut e = Parser::new(&dialect)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(Error::from)?;
    casts(&mut e);
    Ok(e)
}

/// The logical plan of the query `sql` (not yet analyzed).
pub async fn plan(ctx: &SessionContext, sql: &str) -> Result<LogicalPlan> {
    plan_statement(ctx, statement(sql)?).await
}

/// The logical plan of `stmt` (not yet analyzed). Its casts are planned
/// as a client statement's are (they may come from one that was parsed
/// apart, as a MERGE's source is).
pub async fn plan_statement(ctx: &SessionContext, mut stmt: Statement) -> Result<LogicalPlan> {
    casts(&mut stmt);
    Ok(ctx
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
        .await?)
}

/// The rows of the query `q`, a syntax tree.
pub async fn rows_of(ctx: &SessionContext, q: Query) -> Result<DataFrame> {
    let plan = plan_statement(ctx, Statement::Query(Box::new(q))).await?;
    Ok(ctx.execute_logical_plan(plan).await?)
}

/// The rows of the query `sql`.
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let plan = plan(ctx, sql).await?;
    Ok(ctx.execute_logical_plan(plan).await?)
}

/// `SELECT * FROM relation`, for a relation of a statement.
pub fn select_all_from(relation: TableFactor) -> Result<Statement> {
    let mut s = statement("SELECT * FROM relation")?;
    if let Statement::Query(q) = &mut s
        && let SetExpr::Select(select) = q.body.as_mut()
        && let Some(from) = select.from.first_mut()
    {
        from.relation = relation;
        return Ok(s);
    }
    Err(Error::internal("SELECT * FROM relation"))
}

/// The expression `e` of a statement, planned over `schema`.
pub fn plan_expr(ctx: &SessionContext, e: &Expr, schema: &DFSchema) -> Result<DfExpr> {
    let mut expr = e.clone();
    casts(&mut expr);
    let e = datafusion::sql::sqlparser::ast::ExprWithAlias { expr, alias: None };
    Ok(ctx.state().create_logical_expr_from_sql_expr(e, schema)?)
}

/// The expression text `sql` (a DEFAULT, a CHECK), planned over `schema`.
pub fn plan_text(ctx: &SessionContext, sql: &str, schema: &DFSchema) -> Result<DfExpr> {
    let e = datafusion::sql::sqlparser::ast::ExprWithAlias {
        expr: expr(sql)?,
        alias: None,
    };
    Ok(ctx.state().create_logical_expr_from_sql_expr(e, schema)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_keep_postgresql_precedence() {
        let e = expr("j ->> 'k' = 'w' AND id IS NOT NULL").unwrap();
        assert_eq!(e.to_string(), "j ->> 'k' = 'w' AND id IS NOT NULL");
        let Expr::BinaryOp { left, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(
            matches!(left.as_ref(), Expr::BinaryOp { op, .. } if op.to_string() == "="),
            "{left:?}"
        );
        assert!(statement("SELECT * FROM t WHERE j ? 'k'").is_ok());
    }

    #[test]
    fn casts_are_the_ones_sluice_plans() {
        let e = expr("CAST(x AS jsonb)").unwrap();
        assert!(!e.to_string().to_ascii_lowercase().contains("cast"), "{e}");
    }
}
