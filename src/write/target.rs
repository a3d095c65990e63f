//! The table a write changes, opened once.

use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::sql::sqlparser::ast::{AssignmentTarget, Expr, ObjectName};
use deltalake::DeltaTable;

use deltalake::protocol::SaveMode;

use super::{WriteContext, WriteOptions, conform, referencing, write_plan};
use crate::catalog::TableDef;
use crate::catalog::provider::{TIME_TRAVEL_SCHEMA, time_travel_name};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::names::{last_ident, quote_ident as ident};
use crate::lake::TimeTravel;

/// The table a DML statement writes, opened once: every read the statement
/// makes of it and the commit it makes are on this one snapshot, so a
/// concurrent commit is detected by Delta instead of silently overwritten.
pub struct Target {
    pub schema: String,
    pub name: String,
    /// The name the statement refers to the table by (its alias, if any).
    pub alias: Option<String>,
    pub def: Arc<TableDef>,
    pub table: DeltaTable,
}

crate::send_sync::send_sync_by_fields!(Target {
    schema,
    name,
    alias,
    def,
    table
});

impl Target {
    /// The newest snapshot of `schema.name` (a table of definition `def`).
    pub async fn open(
        wc: &WriteContext,
        schema: &str,
        name: &str,
        def: Arc<TableDef>,
        alias: Option<String>,
    ) -> Result<Target> {
        let table = wc.lake.table(&wc.lake.url_for(&def.location)?).await?;
        Ok(Target {
            schema: schema.to_string(),
            name: name.to_string(),
            alias,
            def,
            table,
        })
    }

    /// The table a qualified `schema.name` names (statements the write
    /// path generates name their tables in full).
    pub async fn open_qualified(
        wc: &WriteContext,
        name: &ObjectName,
        alias: Option<String>,
    ) -> Result<Target> {
        let parts = crate::frontend::names::name_parts(name);
        let [schema, table] = parts.as_slice() else {
            return Err(Error::internal(format!("unqualified write target {name}")));
        };
        let object = wc
            .catalog
            .snapshot()
            .relation(schema, table)
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedTable,
                    format!("relation \"{table}\" does not exist"),
                )
            })?;
        Target::open(wc, schema, table, object.table_def()?, alias).await
    }

    /// `FROM` text that reads exactly the opened snapshot.
    pub fn snapshot_sql(&self) -> String {
        format!(
            "{} AS {}",
            self.pinned_sql(),
            ident(self.alias.as_deref().unwrap_or(&self.name))
        )
    }

    /// The name that reads exactly the opened snapshot.
    pub fn pinned_sql(&self) -> String {
        self.pinned_sql_at(self.table.version().unwrap_or(0) as i64)
    }

    /// The name that reads exactly `version` of the table.
    pub fn pinned_sql_at(&self, version: i64) -> String {
        let pinned = time_travel_name(&self.schema, &self.name, &TimeTravel::Version(version));
        format!("{}.{}", ident(TIME_TRAVEL_SCHEMA), ident(&pinned))
    }

    /// `SELECT list FROM <snapshot> [WHERE pred]`.
    pub fn select_sql(&self, list: &str, pred: Option<&Expr>) -> String {
        let where_sql = pred.map(|p| format!(" WHERE {p}")).unwrap_or_default();
        format!("SELECT {list} FROM {}{where_sql}", self.snapshot_sql())
    }

    /// All columns, in table order.
    pub fn columns_sql(&self) -> String {
        let cols: Vec<String> = self.def.columns.iter().map(|c| ident(&c.name)).collect();
        cols.join(", ")
    }

    /// The row after `SET`: assigned columns cast to their type, the rest as they are.
    pub fn new_row_sql(&self, sets: &[(String, Expr)]) -> String {
        let cols: Vec<String> = self
            .def
            .columns
            .iter()
            .map(|c| match sets.iter().find(|(n, _)| n == &c.name) {
                Some((_, e)) => format!(
                    "CAST({e} AS {}) AS {}",
                    c.ty.assignment_cast(),
                    ident(&c.name)
                ),
                None => format!(
                    "{}.{} AS {}",
                    ident(self.alias.as_deref().unwrap_or(&self.name)),
                    ident(&c.name),
                    ident(&c.name)
                ),
            })
            .collect();
        cols.join(", ")
    }

    /// Old values kept beside new ones as `__sluice_old_<i>` (`i` in
    /// table order), shown again as the table's columns: all of them in
    /// table order, or `only` these in the order given, so the list lines
    /// up with [`ident_list`] of the same columns (set operations match
    /// columns by position).
    pub fn old_columns_sql(&self, only: Option<&[String]>) -> String {
        let old = |name: &String| {
            let j = self.def.columns.iter().position(|c| &c.name == name)?;
            Some(format!("__sluice_old_{j} AS {}", ident(name)))
        };
        let names: Vec<&String> = match only {
            Some(o) => o.iter().collect(),
            None => self.def.columns.iter().map(|c| &c.name).collect(),
        };
        names
            .into_iter()
            .filter_map(old)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The column an assignment of `statement` sets, checked.
    pub fn assigned_column(&self, to: &AssignmentTarget, statement: &str) -> Result<String> {
        let AssignmentTarget::ColumnName(n) = to else {
            return Err(Error::not_supported(format!(
                "{statement} of a column tuple"
            )));
        };
        let col = last_ident(n);
        if self.def.column(&col).is_none() {
            return Err(Error::new(
                ErrorKind::UndefinedColumn,
                format!(
                    "column \"{col}\" of relation \"{}\" does not exist",
                    self.name
                ),
            ));
        }
        Ok(col)
    }

    pub fn all_columns(&self) -> Vec<String> {
        self.def.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The columns COPY reads or writes: those listed, or every column
    /// but the generated ones (see [`copy_columns`]).
    pub fn copy_columns(&self, listed: &[String]) -> Result<Vec<String>> {
        copy_columns(&self.def, &self.name, listed)
    }

    /// The table columns a column list names, checked; all columns when
    /// the list is empty.
    pub fn target_columns(&self, listed: &[String]) -> Result<Vec<String>> {
        if listed.is_empty() {
            return Ok(self.all_columns());
        }
        named_columns(&self.def, &self.name, listed, false)
    }

    /// `df` (rows to append) with the table's rules on it: expectations
    /// applied (and their quarantine writer started), and at the end of
    /// the input the key check and the quarantine commit. The returned run,
    /// if any, records the expectation results once the write committed.
    pub async fn prepare_append(
        &self,
        wc: &WriteContext,
        df: DataFrame,
    ) -> Result<(DataFrame, Option<super::Run>)> {
        let parents = crate::quality::keys::parents(&wc.catalog, &self.def).await?;
        let mut hooks: Vec<Box<dyn crate::quality::guard::InputHook>> =
            crate::quality::keys::hook(&self.def, &self.name, Some(self.table.clone()), parents)
                .into_iter()
                .collect();
        let mut run = None;
        let mut df = df;
        if !self.def.expectations.is_empty() {
            let quarantine = if crate::quality::expect::quarantines(&self.def) {
                Some(self.quarantine(wc).await?.1)
            } else {
                None
            };
            let (applied, r, hook) = super::Run::start(
                wc.ctx.state(),
                wc.lake.clone(),
                (&self.schema, &self.name),
                &self.def,
                df,
                quarantine,
            )?;
            df = applied;
            run = Some(r);
            // Keys first: a duplicate must stop the quarantine commit too.
            hooks.extend(hook);
        }
        Ok((crate::quality::guard::guard(&wc.ctx, df, hooks)?, run))
    }

    /// The foreign keys of other tables (and this one) that point here:
    /// (child schema, child table, the foreign key).
    pub fn referenced_by(
        &self,
        wc: &WriteContext,
    ) -> Vec<(String, String, crate::quality::keys::ForeignKeyDef)> {
        referencing(wc, &self.schema, &self.name)
    }

    /// The quarantine table of this table: its definition and state.
    pub async fn quarantine(&self, wc: &WriteContext) -> Result<(Arc<TableDef>, DeltaTable)> {
        let qname = crate::quality::expect::quarantine_table(&self.name);
        let entry = wc
            .catalog
            .snapshot()
            .relation(&self.schema, &qname)
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedTable,
                    format!(
                        "relation \"{qname}\" (the quarantine of \"{}\") does not exist",
                        self.name
                    ),
                )
            })?;
        let def = entry.table_def()?;
        let lake = &wc.lake;
        let table = lake.table(&lake.url_for(&def.location)?).await?;
        Ok((def, table))
    }

    /// Does `column` belong to a PRIMARY KEY or UNIQUE constraint?
    pub fn in_key(&self, column: &str) -> bool {
        self.def
            .keys
            .iter()
            .any(|k| k.columns.iter().any(|c| c == column))
            || self
                .def
                .foreign_keys
                .iter()
                .any(|f| f.columns.iter().any(|c| c == column))
    }

    /// The table with the columns of `wider` (this table's and new ones at
    /// the end), in one overwrite commit on the opened snapshot: every
    /// row gets each new column's DEFAULT (or NULL), checked against its
    /// NOT NULL and the table's rules as an inserted row is. `ALTER TABLE
    /// ... ADD COLUMN ... DEFAULT`.
    pub async fn widen(&self, wc: &WriteContext, wider: Arc<TableDef>) -> Result<DeltaTable> {
        let old = self.all_columns();
        self.reshape(wc, wider, &self.columns_sql(), &old).await
    }

    /// The table as `def` describes it, in one overwrite commit on the
    /// opened snapshot that replaces its schema: each row is `list` (a
    /// select list over the opened snapshot, the values of the columns
    /// `targets` names), the other columns of `def` get their DEFAULT or
    /// NULL, and the rows are checked by `def`'s rules and keys as an
    /// inserted row is (`ALTER TABLE ... ADD`, `DROP` and `ALTER COLUMN`).
    pub async fn reshape(
        &self,
        wc: &WriteContext,
        def: Arc<TableDef>,
        list: &str,
        targets: &[String],
    ) -> Result<DeltaTable> {
        let shaped = Target {
            def,
            ..self.clone_handle()
        };
        let df = crate::frontend::generated::query(&wc.ctx, &self.select_sql(list, None)).await?;
        let df = conform(wc, df, &shaped.def, targets, &shaped.name)?;
        shaped.overwrite(wc, df, None, true).await
    }

    fn clone_handle(&self) -> Target {
        Target {
            schema: self.schema.clone(),
            name: self.name.clone(),
            alias: self.alias.clone(),
            def: self.def.clone(),
            table: self.table.clone(),
        }
    }

    /// Replace the table's rows with the result of `sql` in one overwrite
    /// commit on the opened snapshot.
    /// `last` runs after the checks, at the end of the input.
    pub async fn overwrite_with(
        &self,
        wc: &WriteContext,
        sql: &str,
        last: Option<Box<dyn crate::quality::guard::InputHook>>,
    ) -> Result<DeltaTable> {
        let df = crate::frontend::generated::query(&wc.ctx, sql).await?;
        let df = conform(wc, df, &self.def, &self.all_columns(), &self.name)?;
        self.overwrite(wc, df, last, false).await
    }

    /// Replace the table's rows with `df` (in the table's columns) in one
    /// overwrite commit on the opened snapshot, its schema too with
    /// `new_schema`: the whole new table goes through, so its keys must be
    /// unique in it and its references present; `last` runs after those
    /// checks, at the end of the input.
    async fn overwrite(
        &self,
        wc: &WriteContext,
        df: datafusion::dataframe::DataFrame,
        last: Option<Box<dyn crate::quality::guard::InputHook>>,
        new_schema: bool,
    ) -> Result<DeltaTable> {
        let parents = crate::quality::keys::parents(&wc.catalog, &self.def).await?;
        let hooks = crate::quality::keys::hook(&self.def, &self.name, None, parents)
            .into_iter()
            .chain(last)
            .collect();
        let df = crate::quality::guard::guard(&wc.ctx, df, hooks)?;
        write_plan(
            wc.ctx.state(),
            wc.lake.clone(),
            self.table.clone(),
            df.into_unoptimized_plan(),
            SaveMode::Overwrite,
            WriteOptions {
                partition_by: self.def.partition_by.clone(),
                unique_columns: self.def.unique_columns(),
                new_schema,
                ..Default::default()
            },
        )
        .await
        .map(|o| o.table)
    }
}

/// The columns of `def` that COPY reads or writes, as PostgreSQL takes
/// them: those `listed` (checked), or every column but the generated ones
/// when there is no list. A generated column listed is 42P10.
pub fn copy_columns(def: &TableDef, table: &str, listed: &[String]) -> Result<Vec<String>> {
    if listed.is_empty() {
        return Ok(def
            .columns
            .iter()
            .filter(|c| c.generated.is_none())
            .map(|c| c.name.clone())
            .collect());
    }
    named_columns(def, table, listed, true)
}

/// The columns `listed` of `def`, checked: each exists (42703) and is named
/// once (42701); with `copy`, none is generated (42P10).
fn named_columns(
    def: &TableDef,
    table: &str,
    listed: &[String],
    copy: bool,
) -> Result<Vec<String>> {
    let mut t: Vec<String> = Vec::new();
    for n in listed {
        match def.column(n) {
            None => {
                return Err(Error::new(
                    ErrorKind::UndefinedColumn,
                    format!("column \"{n}\" of relation \"{table}\" does not exist"),
                ));
            }
            Some(c) if copy && c.generated.is_some() => {
                return Err(Error::new(
                    ErrorKind::InvalidColumnReference,
                    format!("column \"{n}\" is a generated column"),
                )
                .with_detail("Generated columns cannot be used in COPY."));
            }
            Some(_) => {}
        }
        if t.contains(n) {
            return Err(Error::new(
                ErrorKind::DuplicateColumn,
                format!("column \"{n}\" specified more than once"),
            ));
        }
        t.push(n.clone());
    }
    Ok(t)
}
