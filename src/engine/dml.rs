//! INSERT, UPDATE and DELETE on Delta tables (MERGE is in `merge`).
//!
//! Rows are never collected (except for RETURNING): the source plan streams
//! into delta-rs' writer and one statement is one Delta commit. UPDATE and
//! DELETE go through delta-rs' builders, which rewrite only the files that
//! hold matching rows. A predicate with a subquery (`IN (SELECT ...)`,
//! `EXISTS`) is not something those builders can evaluate, so it is planned
//! by DataFusion as a full rewrite of the table in one overwrite commit.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{
    ColumnarValue, Expr as DfExpr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility, cast, lit,
};
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, Delete, Expr, FromTable, Insert, ObjectName, SelectItem, Statement,
    TableFactor, TableObject, TableWithJoins, Update, visit_expressions,
};
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;

use super::{Output, Session, last_ident, normalize_ident};
use crate::catalog::TableDef;
use crate::catalog::provider::{TIME_TRAVEL_SCHEMA, time_travel_name};
use crate::error::{Error, ErrorKind, Result};
use crate::lake::TimeTravel;
use crate::quality::expect::Action;
use crate::quality::keys::ForeignKeyChecks;

/// Does an expression contain a subquery?
pub fn has_subquery(e: &Expr) -> bool {
    visit_expressions(e, |x| match x {
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Fails a statement when a NOT NULL column gets a NULL; otherwise passes
/// its input through. Runs inside the write plan, batch by batch.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AssertNotNull {
    signature: Signature,
}

impl ScalarUDFImpl for AssertNotNull {
    fn name(&self) -> &str {
        "sluice_assert_not_null"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(args[0].clone())
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let text = |i: usize| match &args.args[i] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))) => s.clone(),
            _ => String::new(),
        };
        let has_null = match &args.args[0] {
            ColumnarValue::Array(a) => a.null_count() > 0,
            ColumnarValue::Scalar(s) => s.is_null(),
        };
        if has_null {
            let (column, table) = (text(1), text(2));
            return Err(datafusion::error::DataFusionError::External(Box::new(
                Error::new(
                    ErrorKind::NotNullViolation,
                    format!(
                        "null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"
                    ),
                ),
            )));
        }
        Ok(args.args[0].clone())
    }
}

/// Enforces `varchar(n)` / `char(n)`: a longer value fails with 22001,
/// unless the excess characters are all spaces, which are cut off, as in
/// PostgreSQL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FitLength {
    signature: Signature,
}

impl ScalarUDFImpl for FitLength {
    fn name(&self) -> &str {
        "sluice_fit_length"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, StringArray};
        let (max, type_name) = match (&args.args[1], &args.args[2]) {
            (
                ColumnarValue::Scalar(ScalarValue::Int64(Some(n))),
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(t))),
            ) => (*n as usize, t.clone()),
            _ => return datafusion::common::exec_err!("sluice_fit_length needs literal arguments"),
        };
        let input = args.args[0].to_array(args.number_rows)?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        let strings = input.as_string::<i32>();
        // No value has more bytes than the limit has characters: all fit.
        let offsets = strings.value_offsets();
        if offsets.windows(2).all(|w| (w[1] - w[0]) as usize <= max) {
            return Ok(ColumnarValue::Array(input));
        }
        let mut out = Vec::with_capacity(strings.len());
        for i in 0..strings.len() {
            if strings.is_null(i) {
                out.push(None);
                continue;
            }
            let v = strings.value(i);
            match v.char_indices().nth(max) {
                None => out.push(Some(v.to_string())),
                Some((cut, _)) if v[cut..].chars().all(|c| c == ' ') => {
                    out.push(Some(v[..cut].to_string()))
                }
                Some(_) => {
                    return Err(datafusion::error::DataFusionError::External(Box::new(
                        Error::new(
                            ErrorKind::StringTooLong,
                            format!("value too long for type {type_name}"),
                        ),
                    )));
                }
            }
        }
        Ok(ColumnarValue::Array(std::sync::Arc::new(
            StringArray::from(out),
        )))
    }
}

fn assert_not_null(e: DfExpr, column: &str, table: &str) -> DfExpr {
    let udf = ScalarUDF::new_from_impl(AssertNotNull {
        signature: Signature::any(3, Volatility::Volatile),
    });
    udf.call(vec![e, lit(column), lit(table)])
}

pub(crate) use crate::frontend::names::{quote_ident as ident, quote_list as ident_list};

/// The table a DML statement writes, opened once: every read the statement
/// makes of it and the commit it makes are on this one snapshot, so a
/// concurrent commit is detected by Delta instead of silently overwritten.
pub(crate) struct Target {
    pub(crate) schema: String,
    pub(crate) name: String,
    /// The name the statement refers to the table by (its alias, if any).
    alias: Option<String>,
    pub(crate) def: Arc<TableDef>,
    pub(crate) table: DeltaTable,
}

impl Target {
    pub(crate) async fn open(
        session: &Session,
        name: &ObjectName,
        alias: Option<String>,
    ) -> Result<Target> {
        let (schema, name, def) = session.resolve_table(name)?;
        let lake = session.engine.lake();
        let table = lake.table(&lake.url_for(&def.location)?).await?;
        Ok(Target {
            schema,
            name,
            alias,
            def,
            table,
        })
    }

    /// `FROM` text that reads exactly the opened snapshot.
    pub(crate) fn snapshot_sql(&self) -> String {
        format!(
            "{} AS {}",
            self.pinned_sql(),
            ident(self.alias.as_deref().unwrap_or(&self.name))
        )
    }

    /// The name that reads exactly the opened snapshot.
    pub(crate) fn pinned_sql(&self) -> String {
        let version = self.table.version().unwrap_or(0) as i64;
        let pinned = time_travel_name(&self.schema, &self.name, &TimeTravel::Version(version));
        format!("{}.{}", ident(TIME_TRAVEL_SCHEMA), ident(&pinned))
    }

    /// `SELECT list FROM <snapshot> [WHERE pred]`.
    fn select_sql(&self, list: &str, pred: Option<&Expr>) -> String {
        let where_sql = pred.map(|p| format!(" WHERE {p}")).unwrap_or_default();
        format!("SELECT {list} FROM {}{where_sql}", self.snapshot_sql())
    }

    /// All columns, in table order.
    pub(crate) fn columns_sql(&self) -> String {
        let cols: Vec<String> = self.def.columns.iter().map(|c| ident(&c.name)).collect();
        cols.join(", ")
    }

    /// The row after `SET`: assigned columns cast to their type, the rest as they are.
    fn new_row_sql(&self, sets: &[(String, Expr)]) -> String {
        let cols: Vec<String> = self
            .def
            .columns
            .iter()
            .map(|c| match sets.iter().find(|(n, _)| n == &c.name) {
                Some((_, e)) => format!("CAST({e} AS {}) AS {}", c.ty.display(), ident(&c.name)),
                None => ident(&c.name),
            })
            .collect();
        cols.join(", ")
    }

    /// Old values kept beside new ones as `__sluice_old_<i>` (`i` in
    /// table order), shown again as the table's columns: all of them in
    /// table order, or `only` these in the order given, so the list lines
    /// up with [`ident_list`] of the same columns (set operations match
    /// columns by position).
    pub(crate) fn old_columns_sql(&self, only: Option<&[String]>) -> String {
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
    pub(crate) fn assigned_column(&self, to: &AssignmentTarget, statement: &str) -> Result<String> {
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

    pub(crate) fn all_columns(&self) -> Vec<String> {
        self.def.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The table columns a column list names, checked; all columns when
    /// the list is empty.
    pub(crate) fn target_columns(&self, listed: &[String]) -> Result<Vec<String>> {
        if listed.is_empty() {
            return Ok(self.all_columns());
        }
        let mut t: Vec<String> = Vec::new();
        for n in listed {
            if self.def.column(n).is_none() {
                return Err(Error::new(
                    ErrorKind::UndefinedColumn,
                    format!(
                        "column \"{n}\" of relation \"{}\" does not exist",
                        self.name
                    ),
                ));
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

    /// `df` (rows to append) with the table's rules on it: expectations
    /// applied (and their quarantine writer started), and at the end of
    /// the input the key check and the quarantine commit. The returned run,
    /// if any, records the expectation results once the write committed.
    pub(crate) async fn prepare_append(
        &self,
        session: &Session,
        df: DataFrame,
    ) -> Result<(DataFrame, Option<crate::quality::expect::Run>)> {
        let parents = crate::quality::keys::parents(session.engine.catalog(), &self.def).await?;
        let mut hooks: Vec<Box<dyn crate::quality::guard::InputHook>> =
            crate::quality::keys::hook(&self.def, &self.name, Some(self.table.clone()), parents)
                .into_iter()
                .collect();
        let mut run = None;
        let mut df = df;
        if !self.def.expectations.is_empty() {
            let quarantine = if crate::quality::expect::quarantines(&self.def) {
                Some(self.quarantine(session).await?.1)
            } else {
                None
            };
            let (applied, r, hook) = crate::quality::expect::Run::start(
                session.ctx.state(),
                session.engine.lake().clone(),
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
        Ok((crate::quality::guard::guard(&session.ctx, df, hooks)?, run))
    }

    /// The foreign keys of other tables (and this one) that point here:
    /// (child schema, child table, the foreign key).
    pub(crate) fn referenced_by(
        &self,
        session: &Session,
    ) -> Vec<(String, String, crate::quality::keys::ForeignKeyDef)> {
        referencing(session, &self.schema, &self.name)
    }

    /// The quarantine table of this table: its definition and state.
    pub(crate) async fn quarantine(
        &self,
        session: &Session,
    ) -> Result<(Arc<TableDef>, DeltaTable)> {
        let qname = crate::quality::expect::quarantine_table(&self.name);
        let entry = session.catalog_entry(&self.schema, &qname).ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedTable,
                format!(
                    "relation \"{qname}\" (the quarantine of \"{}\") does not exist",
                    self.name
                ),
            )
        })?;
        let def = entry.table_def()?;
        let lake = session.engine.lake();
        let table = lake.table(&lake.url_for(&def.location)?).await?;
        Ok((def, table))
    }

    /// Does `column` belong to a PRIMARY KEY or UNIQUE constraint?
    pub(crate) fn in_key(&self, column: &str) -> bool {
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

    /// Replace the table's rows with the result of `sql` in one overwrite
    /// commit on the opened snapshot.
    /// `last` runs after the checks, at the end of the input.
    async fn overwrite_with(
        &self,
        session: &Session,
        sql: &str,
        last: Option<Box<dyn crate::quality::guard::InputHook>>,
    ) -> Result<DeltaTable> {
        let df = session.ctx.sql(sql).await?;
        let df = conform(session, df, &self.def, &self.all_columns(), &self.name)?;
        // The whole new table goes through: its keys must be unique in it
        // and its references present.
        let parents = crate::quality::keys::parents(session.engine.catalog(), &self.def).await?;
        let hooks = crate::quality::keys::hook(&self.def, &self.name, None, parents)
            .into_iter()
            .chain(last)
            .collect();
        let df = crate::quality::guard::guard(&session.ctx, df, hooks)?;
        write_plan(
            session,
            self.table.clone(),
            df.into_unoptimized_plan(),
            SaveMode::Overwrite,
            &self.def.partition_by,
            false,
        )
        .await
        .map(|(t, _)| t)
    }
}

/// The foreign keys of all tables (`schema.table` itself included) that
/// point at `schema.table`: (child schema, child table, the foreign key).
pub(crate) fn referencing(
    session: &Session,
    schema: &str,
    table: &str,
) -> Vec<(String, String, crate::quality::keys::ForeignKeyDef)> {
    session
        .engine
        .catalog()
        .snapshot()
        .referencing(schema, table)
        .iter()
        .map(|(child, fk)| (child.schema.clone(), child.name.clone(), fk.clone()))
        .collect()
}

/// The expression that stores `e` into column `c` of `def`: cast to the
/// column type, with the NOT NULL check when declared.
pub(crate) fn store_expr(e: DfExpr, def: &TableDef, column: &str, table: &str) -> DfExpr {
    let c = def.column(column).expect("column exists");
    let mut e = cast(e, c.ty.arrow_type());
    if let ("character varying" | "character", Some(n)) = (c.ty.name.as_str(), c.ty.length) {
        let fit = ScalarUDF::new_from_impl(FitLength {
            signature: Signature::any(3, Volatility::Immutable),
        });
        e = fit.call(vec![e, lit(n as i64), lit(c.ty.display())]);
    }
    if c.not_null {
        assert_not_null(e, column, table)
    } else {
        e
    }
}

/// Each column's value in the new row: the assigned expression, or the
/// column as it is (`old`).
pub(crate) fn new_row(
    def: &TableDef,
    sets: &[(String, DfExpr)],
    old: impl Fn(&str) -> DfExpr,
) -> Vec<DfExpr> {
    def.columns
        .iter()
        .map(|c| match sets.iter().find(|(n, _)| n == &c.name) {
            Some((_, v)) => v.clone(),
            None => old(&c.name),
        })
        .collect()
}

/// Reshape `df` into the table's columns: `targets[i]` names the table
/// column the i-th input column fills; the others get their DEFAULT or NULL.
pub(crate) fn conform(
    session: &Session,
    df: DataFrame,
    def: &TableDef,
    targets: &[String],
    table: &str,
) -> Result<DataFrame> {
    let input: Vec<DfExpr> = df
        .schema()
        .columns()
        .into_iter()
        .map(DfExpr::Column)
        .collect();
    let mut exprs = Vec::with_capacity(def.columns.len());
    for c in &def.columns {
        let source = match targets.iter().position(|t| t == &c.name) {
            Some(i) => input[i].clone(),
            None => match &c.default {
                Some(sql) => session.ctx.parse_sql_expr(sql, df.schema())?,
                None => lit(ScalarValue::Null),
            },
        };
        exprs.push(store_expr(source, def, &c.name, table).alias(&c.name));
    }
    crate::quality::filter(&session.ctx, df.select(exprs)?, def, table)
}

/// Rows added by the commit that produced `table`, from its commit info.
async fn added_rows(table: &DeltaTable) -> usize {
    use futures::StreamExt;
    let mut h = table.history(Some(1));
    if let Some(Ok(info)) = h.next().await
        && let Some(m) = info.info.get("operationMetrics")
    {
        for key in ["num_added_rows", "numOutputRows"] {
            if let Some(n) = m.get(key).and_then(|v| v.as_u64()) {
                return n as usize;
            }
        }
    }
    0
}

/// Stream `plan` into `table` (created by this write when it has no state
/// yet) in one commit. `new_schema` replaces the table's schema with the
/// plan's (an overwrite that renames columns); otherwise the schema must
/// match. Returns the new table and the rows written.
pub(crate) async fn write_plan(
    session: &Session,
    table: DeltaTable,
    plan: LogicalPlan,
    mode: SaveMode,
    partition_by: &[String],
    new_schema: bool,
) -> Result<(DeltaTable, usize)> {
    write_with(
        session.ctx.state(),
        session.engine.lake().clone(),
        table,
        plan,
        mode,
        partition_by.to_vec(),
        new_schema,
    )
    .await
}

/// Commit settings for writes: a commit that loses the race for a version
/// checks the winners for conflicts and tries again. Appends never
/// conflict, so with many writers they need more attempts than delta-rs'
/// default 15 to get through.
pub(crate) fn commit_properties() -> deltalake::kernel::transaction::CommitProperties {
    deltalake::kernel::transaction::CommitProperties::default().with_max_retries(1000)
}

/// [`write_plan`] with everything it needs owned, so it can run as a task
/// of its own while its input is still arriving (COPY).
pub(crate) async fn write_with(
    state: datafusion::execution::SessionState,
    lake: Arc<crate::lake::Lake>,
    table: DeltaTable,
    plan: LogicalPlan,
    mode: SaveMode,
    partition_by: Vec<String>,
    new_schema: bool,
) -> Result<(DeltaTable, usize)> {
    let mut builder = table
        .write(vec![])
        .with_input_plan(plan)
        .with_save_mode(mode)
        .with_session_state(Arc::new(state))
        .with_commit_properties(commit_properties());
    if !partition_by.is_empty() {
        builder = builder.with_partition_columns(partition_by);
    }
    if new_schema {
        builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
    }
    let written = builder.await?;
    lake.remember(&written);
    let n = added_rows(&written).await;
    Ok((written, n))
}

fn table_name(t: &TableObject) -> Result<&ObjectName> {
    match t {
        TableObject::TableName(n) => Ok(n),
        _ => Err(Error::not_supported("INSERT into a table function")),
    }
}

pub async fn insert(session: &mut Session, ins: Insert) -> Result<Output> {
    if ins.on.is_some() {
        return Box::pin(super::upsert::upsert(session, ins)).await;
    }
    let target = Target::open(session, table_name(&ins.table)?, None).await?;
    let (def, tname) = (&target.def, &target.name);
    let listed: Vec<String> = ins.columns.iter().map(last_ident).collect();
    let targets = target.target_columns(&listed)?;
    let Some(source) = ins.source else {
        return Err(Error::not_supported("INSERT without VALUES or SELECT"));
    };
    let plan = session.plan(Statement::Query(source)).await?;
    let n_in = plan.schema().fields().len();
    if n_in > targets.len() {
        return Err(Error::syntax(
            "INSERT has more expressions than target columns",
        ));
    }
    if n_in < targets.len() && !ins.columns.is_empty() {
        return Err(Error::syntax(
            "INSERT has more target columns than expressions",
        ));
    }
    let df = session.ctx.execute_logical_plan(plan).await?;
    let df = conform(session, df, def, &targets[..n_in], tname)?;
    let (df, run) = target.prepare_append(session, df).await?;
    match ins.returning {
        None => {
            let plan = df.into_unoptimized_plan();
            let (written, n) =
                write_plan(session, target.table, plan, SaveMode::Append, &[], false).await?;
            if let Some(run) = run {
                run.record(written.version().unwrap_or(0) as i64).await;
            }
            Ok(Output::Command {
                tag: "INSERT".into(),
                rows: Some(n),
            })
        }
        Some(items) => {
            // RETURNING needs the rows after the write; they are the
            // statement's own rows, so holding them is bounded by its size.
            let batches = df.collect().await?;
            let written = target
                .table
                .clone()
                .write(batches.clone())
                .with_save_mode(SaveMode::Append)
                .with_session_state(Arc::new(session.ctx.state()))
                .await?;
            session.engine.lake().remember(&written);
            if let Some(run) = run {
                run.record(written.version().unwrap_or(0) as i64).await;
            }
            returning(session, batches, &target, &items, "INSERT 0").await
        }
    }
}

/// Evaluate a RETURNING list over the rows a statement wrote or removed.
async fn returning(
    session: &Session,
    mut batches: Vec<RecordBatch>,
    target: &Target,
    items: &[SelectItem],
    tag: &'static str,
) -> Result<Output> {
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(target.def.arrow_schema()));
    }
    let df = session.ctx.read_batches(batches)?.alias(&target.name)?;
    let exprs = returning_exprs(session, &df, items)?;
    let out = df.select(exprs)?;
    let schema: SchemaRef = Arc::new(out.schema().as_arrow().clone());
    let rows = out.collect().await?;
    Output::batches(schema, rows, tag)
}

/// The expressions of a RETURNING list over rows shaped like the table.
fn returning_exprs(session: &Session, df: &DataFrame, items: &[SelectItem]) -> Result<Vec<DfExpr>> {
    let mut exprs = Vec::new();
    for item in items {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                exprs.extend(df.schema().columns().into_iter().map(DfExpr::Column));
            }
            SelectItem::UnnamedExpr(e) => {
                let x = session.ctx.parse_sql_expr(&e.to_string(), df.schema())?;
                exprs.push(x.alias(e.to_string().to_lowercase()));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let x = session.ctx.parse_sql_expr(&expr.to_string(), df.schema())?;
                exprs.push(x.alias(normalize_ident(alias)));
            }
            other => return Err(Error::not_supported(format!("RETURNING {other}"))),
        }
    }
    Ok(exprs)
}

/// Result columns of a DML statement's RETURNING clause, for Describe.
pub async fn returning_schema(session: &Session, s: &Statement) -> Result<Option<SchemaRef>> {
    let (name, items) = match s {
        Statement::Insert(i) => (table_name(&i.table)?.clone(), &i.returning),
        Statement::Update(u) => (target(&u.table)?.0, &u.returning),
        Statement::Delete(d) => match &d.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) if t.len() == 1 => {
                (target(&t[0])?.0, &d.returning)
            }
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let Some(items) = items else { return Ok(None) };
    let (_, tname, def) = session.resolve_table(&name)?;
    let df = session
        .ctx
        .read_batch(RecordBatch::new_empty(def.arrow_schema()))?
        .alias(&tname)?;
    let exprs = returning_exprs(session, &df, items)?;
    let out = df.select(exprs)?;
    Ok(Some(Arc::new(out.schema().as_arrow().clone())))
}

/// The single table a DML statement targets, with its alias.
fn target(t: &TableWithJoins) -> Result<(ObjectName, Option<String>)> {
    if !t.joins.is_empty() {
        return Err(Error::not_supported("joins in the target of UPDATE/DELETE"));
    }
    match &t.relation {
        TableFactor::Table { name, alias, .. } => Ok((
            name.clone(),
            alias.as_ref().map(|a| normalize_ident(&a.name)),
        )),
        _ => Err(Error::not_supported(
            "UPDATE/DELETE of something that is not a table",
        )),
    }
}

fn unqualify(e: DfExpr) -> Result<DfExpr> {
    Ok(e.transform_up(|x| {
        Ok(match x {
            DfExpr::Column(c) => Transformed::yes(DfExpr::Column(Column::new_unqualified(c.name))),
            other => Transformed::no(other),
        })
    })?
    .data)
}

/// Plan `SELECT exprs FROM target WHERE pred` and pull out the DataFusion
/// expressions, unqualified, for delta-rs' builders.
async fn plan_exprs(
    session: &Session,
    target: &Target,
    exprs: &[String],
    pred: Option<&Expr>,
) -> Result<(Vec<DfExpr>, Option<DfExpr>)> {
    let list = if exprs.is_empty() {
        "1".to_string()
    } else {
        exprs.join(", ")
    };
    let plan = session
        .ctx
        .state()
        .create_logical_plan(&target.select_sql(&list, pred))
        .await?;
    let mut projections = Vec::new();
    let mut filter = None;
    let mut node = &plan;
    loop {
        match node {
            LogicalPlan::Projection(p) => {
                projections = p.expr.iter().map(|e| e.clone().unalias()).collect();
                node = p.input.as_ref();
            }
            LogicalPlan::Filter(f) => {
                filter = Some(f.predicate.clone());
                node = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(a) => node = a.input.as_ref(),
            _ => break,
        }
    }
    projections.truncate(exprs.len());
    let projections = projections
        .into_iter()
        .map(unqualify)
        .collect::<Result<Vec<_>>>()?;
    Ok((projections, filter.map(unqualify).transpose()?))
}

pub async fn update(session: &mut Session, up: Update) -> Result<Output> {
    if up.from.is_some() {
        return Err(Error::not_supported("UPDATE ... FROM"));
    }
    let (name, alias) = target(&up.table)?;
    let target = Target::open(session, &name, alias).await?;
    let mut sets: Vec<(String, Expr)> = Vec::new();
    for a in &up.assignments {
        let col = target.assigned_column(&a.target, "UPDATE")?;
        sets.push((col, a.value.clone()));
    }
    let pred = up.selection.as_ref();
    // RETURNING: the new rows, computed on the snapshot the update reads.
    let returned = match &up.returning {
        Some(_) => {
            let sql = target.select_sql(&target.new_row_sql(&sets), pred);
            Some(session.ctx.sql(&sql).await?.collect().await?)
        }
        None => None,
    };
    // delta-rs evaluates neither subqueries nor moves rows between
    // partitions; those updates rewrite the table instead.
    let referenced: Vec<String> = target
        .referenced_by(session)
        .into_iter()
        .flat_map(|(_, _, fk)| fk.parent_columns)
        .collect();
    // A referenced key that changes must not be referenced any more.
    let moved: Vec<String> = sets
        .iter()
        .filter(|(c, _)| referenced.contains(c))
        .map(|(c, e)| {
            format!(
                "(CAST({e} AS {}) IS DISTINCT FROM {})",
                target.def.column(c).expect("checked").ty.display(),
                ident(c)
            )
        })
        .collect();
    if !moved.is_empty() {
        let cond = pred.map(|p| format!("({p}) AND ")).unwrap_or_default();
        let gone = format!(
            "SELECT {} FROM {} WHERE {cond}({})",
            target.columns_sql(),
            target.snapshot_sql(),
            moved.join(" OR ")
        );
        Box::pin(delete_references(session, &target, &gone, false)).await?;
    }
    // A key or reference that changes is checked over the whole new table.
    let rewrite = pred.is_some_and(has_subquery)
        || sets.iter().any(|(c, e)| {
            has_subquery(e) || target.def.partition_by.contains(c) || target.in_key(c)
        });
    let n = if rewrite {
        // The selected rows with new and old values; those the DROP ROW and
        // QUARANTINE rules let through change. The new table is the changed
        // rows plus every other row (EXCEPT ALL keeps duplicates and treats
        // NULLs as equal, so rows where the predicate is NULL stay as they
        // were). DataFusion turns the subqueries into joins.
        let cond = pred.map(|p| p.to_string()).unwrap_or_else(|| "TRUE".into());
        let qualifier = ident(target.alias.as_deref().unwrap_or(&target.name));
        let old: Vec<String> = target
            .def
            .columns
            .iter()
            .enumerate()
            .map(|(j, c)| format!("{qualifier}.{} AS __sluice_old_{j}", ident(&c.name)))
            .collect();
        let selected = format!(
            "(SELECT {}, {} FROM {} WHERE {cond}) AS __sluice_u",
            target.new_row_sql(&sets),
            old.join(", "),
            target.snapshot_sql(),
        );
        let all = target.columns_sql();
        let changed = format!("(SELECT {all} FROM {selected}) AS {}", ident(&target.name));
        let mut expected = expectations_before(session, &target, &changed).await?;
        let kept = crate::quality::expect::kept_sql(&target.def);
        let n = count(
            session,
            &format!("SELECT count(*) FROM {selected} WHERE {kept}"),
        )
        .await?;
        let sql = format!(
            "SELECT {all} FROM {selected} WHERE {kept} UNION ALL \
             (SELECT {all} FROM {from} EXCEPT ALL SELECT {} FROM {selected} WHERE {kept})",
            target.old_columns_sql(None),
            from = target.snapshot_sql(),
        );
        let hook = expected.as_mut().map(Expected::at_end);
        let written = target.overwrite_with(session, &sql, hook).await?;
        if let Some(run) = expected {
            run.record(written.version().unwrap_or(0) as i64).await;
        }
        n
    } else {
        let texts: Vec<String> = sets.iter().map(|(_, e)| e.to_string()).collect();
        let changed = format!(
            "({}) AS {}",
            target.select_sql(&target.new_row_sql(&sets), pred),
            ident(&target.name)
        );
        let mut expected = expectations_before(session, &target, &changed).await?;
        let (values, pred) = plan_exprs(session, &target, &texts, pred).await?;
        // Rows whose new values a DROP ROW or QUARANTINE rule refuses keep
        // their old values.
        let schema = DFSchema::try_from(target.def.arrow_schema().as_ref().clone())?;
        let raw_row = new_row(
            &target.def,
            &sets
                .iter()
                .zip(&values)
                .map(|((c, _), v)| {
                    (
                        c.clone(),
                        cast(
                            v.clone(),
                            target.def.column(c).expect("checked").ty.arrow_type(),
                        ),
                    )
                })
                .collect::<Vec<_>>(),
            |c| DfExpr::Column(Column::new_unqualified(c)),
        );
        let mut pred = pred;
        for e in &target.def.expectations {
            if matches!(e.action, Action::Drop | Action::Quarantine) {
                let check = crate::quality::CheckDef {
                    name: e.name.clone(),
                    expr: e.expr.clone(),
                };
                let cond = crate::quality::plan_check(&session.ctx, &check, &schema)?;
                let cond =
                    crate::quality::substitute_columns(cond, &target.def, &raw_row)?.is_not_false();
                pred = Some(match pred {
                    Some(p) => p.and(cond),
                    None => cond,
                });
            }
        }
        let mut builder = target
            .table
            .clone()
            .update()
            .with_session_state(Arc::new(session.ctx.state()))
            .with_commit_properties(commit_properties());
        if let Some(p) = pred {
            builder = builder.with_predicate(p);
        }
        let stored: Vec<(String, DfExpr)> = sets
            .iter()
            .zip(values)
            .map(|((c, _), v)| (c.clone(), store_expr(v, &target.def, c, &target.name)))
            .collect();
        let schema = DFSchema::try_from(target.def.arrow_schema().as_ref().clone())?;
        let new_row = new_row(&target.def, &stored, |c| {
            DfExpr::Column(Column::new_unqualified(c))
        });
        for (i, (c, v)) in stored.into_iter().enumerate() {
            let v = if i == 0 {
                crate::quality::on_value(
                    &session.ctx,
                    v,
                    &target.def,
                    &target.name,
                    &schema,
                    &new_row,
                )?
            } else {
                v
            };
            builder = builder.with_update(c.as_str(), v);
        }
        if let Some(e) = expected.as_mut() {
            e.quarantine().await?;
        }
        let (written, metrics) = builder.await?;
        session.engine.lake().remember(&written);
        if let Some(run) = expected {
            run.record(written.version().unwrap_or(0) as i64).await;
        }
        metrics.num_updated_rows
    };
    match (returned, &up.returning) {
        (Some(batches), Some(items)) => returning(session, batches, &target, items, "UPDATE").await,
        _ => Ok(Output::Command {
            tag: "UPDATE".into(),
            rows: Some(n),
        }),
    }
}

/// The expectations of an UPDATE or MERGE, over the rows' new values
/// (`changed`: a relation named like the table), before it writes: counts
/// per rule, NOT NULL, CHECKs and FAIL rules checked (23502, 23514), and
/// the append of the rows a QUARANTINE rule refuses to the quarantine,
/// planned for the caller to commit once its own checks passed. Nothing
/// is written here. None when the table has no expectations.
pub(crate) async fn expectations_before(
    session: &Session,
    target: &Target,
    changed: &str,
) -> Result<Option<Expected>> {
    let rules = &target.def.expectations;
    if rules.is_empty() {
        return Ok(None);
    }
    let fails = |e: &crate::quality::expect::ExpectDef| format!("({}) IS FALSE", e.expr);
    // One pass over the changed rows counts the rows that break each hard
    // constraint (NOT NULL, then the CHECKs in name order, as PostgreSQL
    // checks them) and each expectation.
    let mut checks: Vec<&crate::quality::CheckDef> = target.def.checks.iter().collect();
    checks.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hard: Vec<(String, Error)> = Vec::new();
    for c in target.def.columns.iter().filter(|c| c.not_null) {
        hard.push((
            format!("{} IS NULL", ident(&c.name)),
            Error::new(
                ErrorKind::NotNullViolation,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, target.name
                ),
            ),
        ));
    }
    for c in &checks {
        hard.push((
            format!("({}) IS FALSE", c.expr),
            Error::new(
                ErrorKind::CheckViolation,
                format!(
                    "new row for relation \"{}\" violates check constraint \"{}\"",
                    target.name, c.name
                ),
            ),
        ));
    }
    let conditions: Vec<String> = hard
        .iter()
        .map(|(c, _)| c.clone())
        .chain(rules.iter().map(fails))
        .collect();
    let mut list = vec!["count(*)".to_string()];
    list.extend(
        conditions
            .iter()
            .map(|c| format!("sum(CASE WHEN {c} THEN 1 ELSE 0 END)")),
    );
    let batches = session
        .ctx
        .sql(&format!("SELECT {} FROM {changed}", list.join(", ")))
        .await?
        .collect()
        .await?;
    let value = |i: usize| -> u64 {
        batches
            .first()
            .and_then(|b| ScalarValue::try_from_array(b.column(i), 0).ok())
            .and_then(|v| match v {
                ScalarValue::Int64(Some(n)) => Some(n as u64),
                _ => None,
            })
            .unwrap_or(0)
    };
    // A row breaking the `i`-th condition, for the error's DETAIL.
    let failing_row = |i: usize| {
        let sql = format!(
            "SELECT {} FROM {changed} WHERE {} LIMIT 1",
            target.columns_sql(),
            conditions[i]
        );
        async move {
            let rows = session.ctx.sql(&sql).await?.collect().await?;
            Ok::<String, Error>(
                rows.iter()
                    .find(|b| b.num_rows() > 0)
                    .map(crate::quality::first_row_text)
                    .unwrap_or_default(),
            )
        }
    };
    // Hard constraints come first, as in INSERT: a row a rule would drop
    // must still not break one.
    for (i, (_, error)) in hard.into_iter().enumerate() {
        if value(i + 1) > 0 {
            let row = failing_row(i).await?;
            return Err(error.with_detail(format!("Failing row contains ({row}).")));
        }
    }
    let checks = conditions.len() - rules.len();
    let total = value(0);
    let mut counts = Vec::new();
    for (i, e) in rules.iter().enumerate() {
        let failed = value(checks + i + 1);
        if e.action == Action::Fail && failed > 0 {
            let row = failing_row(checks + i).await?;
            return Err(Error::new(
                ErrorKind::CheckViolation,
                format!(
                    "new row for relation \"{}\" violates expectation \"{}\"",
                    target.name, e.name
                ),
            )
            .with_detail(format!("Failing row contains ({row}).")));
        }
        counts.push((total - failed, failed));
    }
    let quarantined: Vec<&crate::quality::expect::ExpectDef> = rules
        .iter()
        .filter(|e| e.action == Action::Quarantine)
        .collect();
    let mut quarantine = None;
    if !quarantined.is_empty() {
        let broken = rules
            .iter()
            .map(|e| {
                format!(
                    "CASE WHEN {} THEN '{}' END",
                    fails(e),
                    e.name.replace('\'', "''")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let any = quarantined
            .iter()
            .map(|e| fails(e))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT *, string_to_array(concat_ws(',', {broken}), ',') AS broken_rules, \
             now() AS quarantined_at FROM {changed} WHERE {any}"
        );
        let qname = crate::quality::expect::quarantine_table(&target.name);
        let (qdef, qtable) = target.quarantine(session).await?;
        let df = session.ctx.sql(&sql).await?;
        let cols: Vec<String> = qdef.columns.iter().map(|c| c.name.clone()).collect();
        let df = conform(session, df, &qdef, &cols, &qname)?;
        quarantine = Some(Pending {
            state: session.ctx.state(),
            lake: session.engine.lake().clone(),
            table: qtable,
            plan: df.into_unoptimized_plan(),
        });
    }
    Ok(Some(Expected {
        record: crate::quality::expect::ExpectRecord::new(
            session.engine.lake().clone(),
            &target.schema,
            &target.name,
            rules,
            counts,
        ),
        quarantine,
    }))
}

/// What [`expectations_before`] found: the counts to record once the
/// statement committed, and the quarantine append to commit just before it.
pub(crate) struct Expected {
    pub(crate) record: crate::quality::expect::ExpectRecord,
    pub(crate) quarantine: Option<Pending>,
}

impl Expected {
    /// Commit the quarantine append, if any: the last step before the
    /// statement's own commit, once every check passed.
    pub(crate) async fn quarantine(&mut self) -> Result<()> {
        match self.quarantine.take() {
            Some(p) => p.write().await,
            None => Ok(()),
        }
    }

    /// The quarantine append as a hook at the end of a write's input.
    fn at_end(&mut self) -> Box<dyn crate::quality::guard::InputHook> {
        Box::new(AtEnd(self.quarantine.take()))
    }

    /// Record the counts against the version the statement produced.
    pub(crate) async fn record(self, version: i64) {
        self.record.record(version).await
    }
}

/// An append planned now and committed later.
pub(crate) struct Pending {
    state: datafusion::execution::SessionState,
    lake: Arc<crate::lake::Lake>,
    table: DeltaTable,
    plan: LogicalPlan,
}

impl Pending {
    async fn write(self) -> Result<()> {
        write_with(
            self.state,
            self.lake,
            self.table,
            self.plan,
            SaveMode::Append,
            Vec::new(),
            false,
        )
        .await
        .map(|_| ())
    }
}

/// The append as the last step of a rewrite's input, after its key checks.
struct AtEnd(Option<Pending>);

#[async_trait::async_trait]
impl crate::quality::guard::InputHook for AtEnd {
    fn batch(&mut self, _: &RecordBatch) -> Result<()> {
        Ok(())
    }

    async fn end(&mut self) -> Result<()> {
        match self.0.take() {
            Some(p) => p.write().await,
            None => Ok(()),
        }
    }
}

/// Before rows of `target` go (`gone`: a query for their old values, in
/// the table's columns), what references them: when the rows are deleted
/// (`deleted`) and the foreign key says ON DELETE CASCADE / SET NULL / SET
/// DEFAULT, a statement on the child deletes or changes the referencing
/// rows; otherwise a referencing row stops the statement (23503). Every
/// reference that stops the statement, and every SET NULL that a NOT NULL
/// column refuses (23502), is found before any action commits.
pub(crate) async fn delete_references(
    session: &mut Session,
    target: &Target,
    gone: &str,
    deleted: bool,
) -> Result<()> {
    use crate::quality::keys::SetOnDelete;
    let refs = target.referenced_by(session);
    let mut actions = Vec::new();
    for (schema, child, fk) in refs {
        let on = fk.join_on("__gone", "__child");
        let child_name = format!("{}.{}", ident(&schema), ident(&child));
        let referencing = format!("EXISTS (SELECT 1 FROM ({gone}) AS __gone WHERE {on})");
        let child_def = session
            .catalog_entry(&schema, &child)
            .ok_or_else(|| Error::internal(format!("no table {child}")))?
            .table_def()?;
        let first_referencing = |cols: &[String]| {
            let list = cols
                .iter()
                .map(|c| format!("__child.{}", ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT {list} FROM {child_name} AS __child WHERE {referencing} LIMIT 1")
        };
        // Nothing refers to the rows that go: no action, no error.
        let Some(key) =
            crate::quality::keys::first_row(&session.ctx, &first_referencing(&fk.columns)).await?
        else {
            continue;
        };
        let acts = deleted && (fk.cascade || fk.on_delete_set.is_some());
        if !acts {
            return Err(Error::new(
                ErrorKind::ForeignKeyViolation,
                format!(
                    "update or delete on table \"{}\" violates foreign key constraint \"{}\" \
                     on table \"{child}\"",
                    target.name, fk.name
                ),
            )
            .with_detail(format!(
                "Key ({})=({key}) is still referenced from table \"{child}\".",
                fk.parent_columns.join(", ")
            )));
        }
        // The action on a table that references itself would start over on
        // the rows it acts on, before they are gone.
        if schema == target.schema && child == target.name {
            return Err(Error::not_supported(format!(
                "deleting rows of \"{child}\" that rows of the same table reference \
                 through ON DELETE CASCADE / SET NULL / SET DEFAULT (\"{}\")",
                fk.name
            )));
        }
        let action = match fk.on_delete_set {
            None => format!("DELETE FROM {child_name} AS __child WHERE {referencing}"),
            Some(set) => {
                // (column, value) for SET NULL / SET DEFAULT
                let mut list = Vec::new();
                for c in &fk.columns {
                    let value = match set {
                        SetOnDelete::Default => child_def.column(c).and_then(|d| d.default.clone()),
                        SetOnDelete::Null => None,
                    };
                    if value.is_none() && child_def.column(c).is_some_and(|d| d.not_null) {
                        return Err(Error::new(
                            ErrorKind::NotNullViolation,
                            format!(
                                "null value in column \"{c}\" of relation \"{child}\" violates \
                                 not-null constraint"
                            ),
                        ));
                    }
                    list.push(format!(
                        "{} = {}",
                        ident(c),
                        value.as_deref().unwrap_or("NULL")
                    ));
                }
                format!(
                    "UPDATE {child_name} AS __child SET {} WHERE {referencing}",
                    list.join(", ")
                )
            }
        };
        actions.push(action);
    }
    // The actions: statements on the children, with the children's own
    // rules, each its own commit before the parent's.
    for sql in actions {
        let mut stmts = session.parse(&sql)?;
        match stmts.pop() {
            Some(crate::frontend::Stmt::Sql(stmt)) => match *stmt {
                Statement::Delete(d) => Box::pin(delete(session, d)).await?,
                Statement::Update(u) => Box::pin(update(session, u)).await?,
                _ => return Err(Error::internal("ON DELETE action did not plan")),
            },
            _ => return Err(Error::internal("ON DELETE action did not plan")),
        };
    }
    Ok(())
}

async fn count(session: &Session, sql: &str) -> Result<usize> {
    let batches = session.ctx.sql(sql).await?.collect().await?;
    let b = batches
        .first()
        .ok_or_else(|| Error::internal("count returned nothing"))?;
    match ScalarValue::try_from_array(b.column(0), 0)? {
        ScalarValue::Int64(Some(n)) => Ok(n as usize),
        other => Err(Error::internal(format!("count returned {other}"))),
    }
}

pub async fn delete(session: &mut Session, del: Delete) -> Result<Output> {
    if del.using.is_some() {
        return Err(Error::not_supported("DELETE ... USING"));
    }
    let from = match &del.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    if from.len() != 1 {
        return Err(Error::not_supported("DELETE from several tables"));
    }
    let (name, alias) = target(&from[0])?;
    let target = Target::open(session, &name, alias).await?;
    let pred = del.selection.as_ref();
    let gone = target.select_sql(&target.columns_sql(), pred);
    Box::pin(delete_references(session, &target, &gone, true)).await?;
    // RETURNING: the deleted rows, read from the snapshot the delete reads.
    let gone = match &del.returning {
        Some(_) => Some(
            session
                .ctx
                .sql(&target.select_sql("*", pred))
                .await?
                .collect()
                .await?,
        ),
        None => None,
    };
    let n = if pred.is_some_and(has_subquery) {
        // delta-rs cannot evaluate subqueries: keep every row the predicate
        // does not select, in one overwrite.
        let n = count(session, &target.select_sql("count(*)", pred)).await?;
        let all = target.columns_sql();
        let keep = format!(
            "SELECT {all} FROM {from} EXCEPT ALL {}",
            target.select_sql(&all, pred),
            from = target.snapshot_sql()
        );
        target.overwrite_with(session, &keep, None).await?;
        n
    } else {
        let (_, pred) = plan_exprs(session, &target, &[], pred).await?;
        let mut builder = target
            .table
            .clone()
            .delete()
            .with_session_state(Arc::new(session.ctx.state()))
            .with_commit_properties(commit_properties());
        if let Some(p) = pred.clone() {
            builder = builder.with_predicate(p);
        }
        let (written, metrics) = builder.await?;
        session.engine.lake().remember(&written);
        match metrics.num_deleted_rows {
            Some(n) => n,
            None => {
                // Whole files were dropped from metadata alone: count them
                // on the snapshot the delete read.
                let mut df = session
                    .ctx
                    .read_table(crate::lake::provider(&target.table).await?)?;
                if let Some(p) = pred {
                    df = df.filter(p)?;
                }
                df.count().await?
            }
        }
    };
    match (gone, &del.returning) {
        (Some(rows), Some(items)) => returning(session, rows, &target, items, "DELETE").await,
        _ => Ok(Output::Command {
            tag: "DELETE".into(),
            rows: Some(n),
        }),
    }
}
