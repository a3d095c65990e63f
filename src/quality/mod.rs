//! Rules a table's rows obey, enforced inside every write plan.
//!
//! CHECK constraints are evaluated batch by batch in the plan that streams
//! rows into the Delta writer, so nothing is collected: the first batch
//! with a row whose condition is false fails the statement (23514) before
//! anything is committed. A NULL result passes, as in PostgreSQL.
//!
//! Two placements, one operator:
//! - INSERT, COPY and rewrites end in a projection of the table's columns;
//!   the checks are a filter on top that never drops a row (`filter`).
//! - UPDATE and MERGE hand delta-rs one expression per column; the checks
//!   ride on one of them, over the new row's values (`on_value`).

pub mod expect;
pub mod guard;
pub mod keys;

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::catalog::TableDef;
pub use crate::catalog::rules::CheckDef;
use crate::error::{Error, ErrorKind, Result};

/// PostgreSQL's name for an unnamed constraint: `<table>_<column>_<kind>`
/// (`<table>_<kind>` without a column), numbered when taken.
pub fn default_name(table: &str, column: Option<&str>, kind: &str, taken: &[String]) -> String {
    let base = match column {
        Some(c) => format!("{table}_{c}_{kind}"),
        None => format!("{table}_{kind}"),
    };
    if !taken.contains(&base) {
        return base;
    }
    (1..)
        .map(|i| format!("{base}{i}"))
        .find(|n| !taken.contains(n))
        .expect("some number is free")
}

/// The condition of `check`, planned over `schema` (the table's columns,
/// qualified or not as the caller's plan has them).
pub fn plan_check(ctx: &SessionContext, check: &CheckDef, schema: &DFSchema) -> Result<Expr> {
    crate::frontend::generated::plan_text(ctx, &check.expr, schema).map_err(|e| {
        Error::new(
            e.kind,
            format!("check constraint \"{}\": {}", check.name, e.message),
        )
    })
}

/// The column a condition names, when it names exactly one (PostgreSQL
/// puts it in the constraint's default name).
pub fn only_column(e: &Expr) -> Option<String> {
    let mut found: Vec<String> = Vec::new();
    let _ = crate::tree::apply(e, |x| {
        if let Expr::Column(c) = x
            && !found.contains(&c.name)
        {
            found.push(c.name.clone());
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// `df` (the table's columns, in order) with the table's checks enforced.
pub fn filter(
    ctx: &SessionContext,
    df: DataFrame,
    def: &TableDef,
    table: &str,
) -> Result<DataFrame> {
    match check_call(ctx, df.schema(), def, table)? {
        Some(call) => Ok(df.filter(call)?),
        None => Ok(df),
    }
}

/// A predicate over rows of `schema` (the table's columns) that is true,
/// or fails the statement for a row breaking one of `def`'s checks; `None`
/// without checks.
pub fn check_call(
    ctx: &SessionContext,
    schema: &DFSchema,
    def: &TableDef,
    table: &str,
) -> Result<Option<Expr>> {
    if def.checks.is_empty() {
        return Ok(None);
    }
    let conditions = in_name_order(def)
        .iter()
        .map(|c| plan_check(ctx, c, schema))
        .collect::<Result<Vec<_>>>()?;
    let row: Vec<Expr> = def
        .columns
        .iter()
        .map(|c| Expr::Column(Column::new_unqualified(&c.name)))
        .collect();
    let udf = enforcer(def, table, Mode::Filter);
    let mut args = conditions;
    args.extend(row);
    Ok(Some(udf.call(args)))
}

/// `value` (the new value of one column) that fails the statement when
/// the new row breaks a check. `new_row` gives each table column's new
/// value, in table order; `schema` is what the checks are planned over,
/// and its columns are replaced by those values.
pub fn on_value(
    ctx: &SessionContext,
    value: Expr,
    def: &TableDef,
    table: &str,
    schema: &DFSchema,
    new_row: &[Expr],
) -> Result<Expr> {
    if def.checks.is_empty() {
        return Ok(value);
    }
    let mut args = vec![value];
    for c in in_name_order(def) {
        args.push(substitute_columns(
            plan_check(ctx, c, schema)?,
            def,
            new_row,
        )?);
    }
    args.extend(new_row.iter().cloned());
    Ok(enforcer(def, table, Mode::PassFirst).call(args))
}

/// The first row of `table` (as `def` describes it) that breaks `check`,
/// shown as in "Failing row contains (...)"; None when every row passes.
pub async fn violating_row(
    ctx: &SessionContext,
    table: deltalake::DeltaTable,
    def: &TableDef,
    check: &CheckDef,
) -> Result<Option<String>> {
    let provider = crate::lake::provider(&table).await?;
    let df = ctx.read_table(provider)?;
    let condition = plan_check(ctx, check, df.schema())?;
    let row: Vec<Expr> = def
        .columns
        .iter()
        .map(|c| Expr::Column(Column::new_unqualified(&c.name)))
        .collect();
    let batches = df
        .filter(condition.is_false())?
        .select(row)?
        .limit(0, Some(1))?
        .collect()
        .await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let columns: Vec<ColumnarValue> = batch
        .columns()
        .iter()
        .map(|c| ColumnarValue::Array(c.clone()))
        .collect();
    Ok(Some(failing_row(&columns, 0, 1)))
}

/// A condition with column `old` renamed to `new` (ALTER TABLE RENAME
/// COLUMN keeps the table's checks working).
pub fn rename_column(expr: &str, old: &str, new: &str) -> Result<String> {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{Expr as Sql, Ident};
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let mut parsed = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(expr)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| Error::internal(format!("stored check {expr} does not parse: {e}")))?;
    // Quoted only where PostgreSQL would print it quoted (`"order"`).
    let renamed = if crate::frontend::names::quote_ident_if_needed(new).starts_with('"') {
        Ident::with_quote('"', new)
    } else {
        Ident::new(new)
    };
    let _ = visit_expressions_mut(&mut parsed, |e| {
        match e {
            Sql::Identifier(id) if crate::frontend::names::normalize_ident(id) == old => {
                *id = renamed.clone();
            }
            Sql::CompoundIdentifier(ids) => {
                if let Some(last) = ids.last_mut()
                    && crate::frontend::names::normalize_ident(last) == old
                {
                    *last = renamed.clone();
                }
            }
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    Ok(parsed.to_string())
}

/// Checks run in name order, as in PostgreSQL, so a row that breaks
/// several is reported against the same one.
fn in_name_order(def: &TableDef) -> Vec<&CheckDef> {
    let mut checks: Vec<&CheckDef> = def.checks.iter().collect();
    checks.sort_by(|a, b| a.name.cmp(&b.name));
    checks
}

/// `e` with each of `def`'s columns replaced by its value in `row`
/// (table order): a condition over the row a statement would write.
pub fn substitute_columns(e: Expr, def: &TableDef, row: &[Expr]) -> Result<Expr> {
    Ok(crate::tree::transform_up(e, |x| {
        Ok(match x {
            Expr::Column(c) => match def.columns.iter().position(|d| d.name == c.name) {
                Some(i) => Transformed::yes(row[i].clone()),
                None => Transformed::no(Expr::Column(c)),
            },
            other => Transformed::no(other),
        })
    })?
    .data)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    /// Arguments: conditions, then the row; returns all-true.
    Filter,
    /// Arguments: a value, conditions, then the row; returns the value.
    PassFirst,
}

fn enforcer(def: &TableDef, table: &str, mode: Mode) -> ScalarUDF {
    ScalarUDF::new_from_impl(Enforce {
        signature: Signature::variadic_any(Volatility::Volatile),
        table: table.to_string(),
        checks: in_name_order(def).iter().map(|c| c.name.clone()).collect(),
        mode,
    })
}

/// Fails the statement at the first row whose check condition is false.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Enforce {
    signature: Signature,
    table: String,
    checks: Vec<String>,
    mode: Mode,
}

impl ScalarUDFImpl for Enforce {
    fn name(&self) -> &str {
        "sluice_check"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(match self.mode {
            Mode::Filter => DataType::Boolean,
            Mode::PassFirst => args[0].clone(),
        })
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let rows = args.number_rows;
        let skip = usize::from(self.mode == Mode::PassFirst);
        let n = self.checks.len();
        for (i, name) in self.checks.iter().enumerate() {
            let ok = args.args[skip + i].to_array(rows)?;
            let ok = ok.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| {
                datafusion::error::DataFusionError::External(Box::new(Error::new(
                    ErrorKind::DatatypeMismatch,
                    format!(
                        "argument of CHECK constraint \"{name}\" must be type boolean, not type {}",
                        ok.data_type()
                    ),
                )))
            })?;
            // A NULL condition passes; only a false one fails.
            let failing = (0..ok.len()).find(|&r| ok.is_valid(r) && !ok.value(r));
            if let Some(r) = failing {
                let row = failing_row(&args.args[skip + n..], r, rows);
                return Err(datafusion::error::DataFusionError::External(Box::new(
                    Error::new(
                        ErrorKind::CheckViolation,
                        format!(
                            "new row for relation \"{}\" violates check constraint \"{name}\"",
                            self.table
                        ),
                    )
                    .with_detail(format!("Failing row contains ({row})."))
                    .with_table(&self.table, None)
                    .with_constraint(name),
                )));
            }
        }
        Ok(match self.mode {
            Mode::PassFirst => args.args[0].clone(),
            Mode::Filter => ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))),
        })
    }
}

/// The first row of `batch` as in "Failing row contains (...)".
pub fn first_row_text(batch: &datafusion::arrow::array::RecordBatch) -> String {
    let columns: Vec<ColumnarValue> = batch
        .columns()
        .iter()
        .map(|c| ColumnarValue::Array(c.clone()))
        .collect();
    failing_row(&columns, 0, batch.num_rows())
}

/// Row `r` as PostgreSQL shows it in "Failing row contains (...)": each
/// value as its type's output function prints it (`2020-01-01 00:00:00`,
/// `{a,b}`), NULL as `null`.
fn failing_row(columns: &[ColumnarValue], r: usize, rows: usize) -> String {
    use datafusion::arrow::array::{Array, AsArray};
    columns
        .iter()
        .map(|c| {
            let Ok(array) = c.to_array(rows) else {
                return "?".to_string();
            };
            let one = array.slice(r, 1);
            if one.is_null(0) {
                return "null".to_string();
            }
            match crate::types::output::output_utf8(&one) {
                Ok(text) => text.as_string::<i32>().value(0).to_string(),
                Err(_) => "?".to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_rows_print_values_as_postgres_does() {
        use datafusion::arrow::array::{
            ArrayRef, ListArray, StringArray, TimestampMicrosecondArray,
        };
        use datafusion::arrow::datatypes::Int32Type;
        use std::sync::Arc;
        let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
            Some(1_577_862_300_000_000),
            None,
        ]));
        let tags: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![]),
        ]));
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("a b"), None]));
        let columns: Vec<ColumnarValue> = [ts, tags, text]
            .into_iter()
            .map(ColumnarValue::Array)
            .collect();
        assert_eq!(
            failing_row(&columns, 0, 2),
            "2020-01-01 07:05:00, {1,2}, a b"
        );
        assert_eq!(failing_row(&columns, 1, 2), "null, {}, null");
    }

    #[test]
    fn unnamed_constraints_get_postgres_names() {
        assert_eq!(
            default_name("pay", Some("amount"), "check", &[]),
            "pay_amount_check"
        );
        assert_eq!(default_name("pay", None, "check", &[]), "pay_check");
        let taken = vec!["pay_amount_check".to_string()];
        assert_eq!(
            default_name("pay", Some("amount"), "check", &taken),
            "pay_amount_check1"
        );
    }
}
