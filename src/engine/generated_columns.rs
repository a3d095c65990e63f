//! Generated columns in DDL: `GENERATED ALWAYS AS (expr) STORED` checked
//! as PostgreSQL checks it when a table is created or a column added, and
//! what ALTER TABLE may do to the columns such an expression reads. The
//! values themselves are computed by the write path
//! (`crate::write::generated`).

use datafusion::common::DFSchema;
use datafusion::logical_expr::{Expr as DfExpr, Volatility};
use datafusion::sql::sqlparser::ast::Expr;

use super::Session;
use crate::catalog::TableDef;
use crate::error::{Error, ErrorKind, Result};
use crate::write::generated::{columns_read, expression};

/// A generation expression as the catalog keeps it:
/// written as a default is (`ddl::stored_default`), without subqueries.
pub(super) fn stored(session: &Session, e: &Expr) -> Result<String> {
    if crate::write::has_subquery(e) {
        return Err(Error::not_supported(
            "cannot use subquery in column generation expression",
        ));
    }
    super::ddl::stored_default(session, e.clone())
}

/// Every generated column of `def` (a table being created, or one a
/// column is being added to) checked as PostgreSQL does: it reads only
/// columns of the table that are not generated themselves, has no
/// aggregate or window function, is immutable, and its value can be
/// stored in its column.
pub(super) fn check(session: &Session, def: &TableDef) -> Result<()> {
    let schema = DFSchema::try_from(def.arrow_schema().as_ref().clone())?;
    for c in &def.columns {
        let Some(e) = expression(c)? else { continue };
        for name in columns_read(&e) {
            match def.column(&name) {
                None => {
                    return Err(Error::new(
                        ErrorKind::UndefinedColumn,
                        format!("column \"{name}\" does not exist"),
                    ));
                }
                Some(read) if read.generated.is_some() => {
                    return Err(Error::new(
                        ErrorKind::InvalidObjectDefinition,
                        format!(
                            "cannot use generated column \"{name}\" in column generation expression"
                        ),
                    )
                    .with_detail("A generated column cannot reference another generated column."));
                }
                Some(_) => {}
            }
        }
        let text = c.generated.as_deref().unwrap_or_default();
        let planned = crate::frontend::generated::plan_text(session.context(), text, &schema)?;
        refuse_unfit(&planned)?;
        // Its value is stored as the column's type.
        let stored = crate::write::store_expr(planned, def, &c.name, "");
        let rows = datafusion::logical_expr::LogicalPlan::EmptyRelation(
            datafusion::logical_expr::EmptyRelation {
                produce_one_row: false,
                schema: std::sync::Arc::new(schema.clone()),
            },
        );
        let plan = datafusion::logical_expr::LogicalPlanBuilder::from(rows)
            .project(vec![stored])
            .and_then(|b| b.build());
        if let Err(e) = plan {
            return Err(Error::new(
                ErrorKind::DatatypeMismatch,
                format!(
                    "column \"{}\" is of type {} but generation expression cannot be stored in it: {e}",
                    c.name,
                    c.ty.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Aggregates, window functions and functions that are not immutable,
/// which a generation expression may not call.
fn refuse_unfit(e: &DfExpr) -> Result<()> {
    let refusal = |x: &DfExpr| match x {
        DfExpr::AggregateFunction(_) => Some(Error::new(
            ErrorKind::Grouping,
            "aggregate functions are not allowed in column generation expressions",
        )),
        DfExpr::WindowFunction(_) => Some(Error::new(
            ErrorKind::Windowing,
            "window functions are not allowed in column generation expressions",
        )),
        DfExpr::ScalarFunction(f) if f.func.signature().volatility != Volatility::Immutable => {
            Some(Error::new(
                ErrorKind::InvalidObjectDefinition,
                "generation expression is not immutable",
            ))
        }
        _ => None,
    };
    let mut found: Option<Error> = None;
    crate::tree::exists(e, |x| {
        found = refusal(x);
        Ok(found.is_some())
    })?;
    found.map_or(Ok(()), Err)
}

/// The generated columns of `def` whose expression reads `column`.
pub(super) fn reading(def: &TableDef, column: &str) -> Vec<String> {
    let column = [column.to_string()];
    def.columns
        .iter()
        .filter(|c| {
            c.generated
                .as_deref()
                .is_some_and(|e| super::alter_columns::mentions(e, &column))
        })
        .map(|c| c.name.clone())
        .collect()
}

/// The generation expressions of `def` with column `from` named `to`.
pub(super) fn rename_column(def: &mut TableDef, from: &str, to: &str) -> Result<()> {
    for c in def.columns.iter_mut() {
        if let Some(text) = &c.generated {
            c.generated = Some(crate::quality::rename_column(text, from, to)?);
        }
    }
    Ok(())
}
