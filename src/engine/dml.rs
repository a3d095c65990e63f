//! INSERT, UPDATE, DELETE and MERGE on Delta tables.
//!
//! Rows are never collected (except for RETURNING): the source plan streams
//! into delta-rs' writer and one statement is one Delta commit. UPDATE and
//! DELETE go through delta-rs' builders, which rewrite only the files that
//! hold matching rows. A predicate with a subquery (`IN (SELECT ...)`,
//! `EXISTS`) is not something those builders can evaluate, so it is planned
//! by DataFusion as a full rewrite of the table in one overwrite commit.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::{
    ColumnarValue, Expr as DfExpr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility, cast, lit,
};
use datafusion::sql::sqlparser::ast::{
    Delete, Expr, FromTable, Insert, Merge, SelectItem, Statement, TableFactor, TableObject,
    TableWithJoins, Update, visit_expressions,
};
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use url::Url;

use super::{Output, Session, normalize_ident};
use crate::catalog::TableDef;
use crate::error::{Error, ErrorKind, Result};

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

fn assert_not_null(e: DfExpr, column: &str, table: &str) -> DfExpr {
    let udf = ScalarUDF::new_from_impl(AssertNotNull {
        signature: Signature::any(3, Volatility::Volatile),
    });
    udf.call(vec![e, lit(column), lit(table)])
}

/// The expression that stores `e` into column `c` of `def`: cast to the
/// column type, with the NOT NULL check when declared.
fn store_expr(e: DfExpr, def: &TableDef, column: &str, table: &str) -> DfExpr {
    let c = def.column(column).expect("column exists");
    let e = cast(e, c.ty.arrow_type());
    if c.not_null {
        assert_not_null(e, column, table)
    } else {
        e
    }
}

/// Reshape `df` into the table's columns: `targets[i]` names the table
/// column the i-th input column fills; the others get their DEFAULT or NULL.
fn conform(
    session: &Session,
    df: DataFrame,
    def: &TableDef,
    targets: &[String],
    table: &str,
) -> Result<DataFrame> {
    let input: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let qualified: Vec<DfExpr> = df
        .schema()
        .columns()
        .into_iter()
        .map(DfExpr::Column)
        .collect();
    let mut exprs = Vec::with_capacity(def.columns.len());
    for c in &def.columns {
        let source = match targets.iter().position(|t| t == &c.name) {
            Some(i) => qualified[i].clone(),
            None => match &c.default {
                Some(sql) => session
                    .ctx
                    .parse_sql_expr(sql, df.schema())
                    .map_err(Error::from)?,
                None => lit(ScalarValue::Null),
            },
        };
        exprs.push(store_expr(source, def, &c.name, table).alias(&c.name));
    }
    let _ = input;
    Ok(df.select(exprs)?)
}

/// Open the newest snapshot of a catalog table.
async fn open(session: &Session, def: &TableDef) -> Result<(Url, DeltaTable)> {
    let lake = session.engine.lake();
    let url = lake.url_for(&def.location)?;
    let table = lake.table(&url).await?;
    Ok((url, table))
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

/// Stream `plan` into the table at `url` (created by this write when
/// `table` has no state yet). Returns the new table and the rows written.
pub(crate) async fn write_plan(
    session: &Session,
    table: DeltaTable,
    plan: LogicalPlan,
    mode: SaveMode,
    partition_by: &[String],
) -> Result<(DeltaTable, usize)> {
    let state = Arc::new(session.ctx.state());
    let mut builder = table
        .write(vec![])
        .with_input_plan(plan)
        .with_save_mode(mode)
        .with_session_state(state);
    if !partition_by.is_empty() {
        builder = builder.with_partition_columns(partition_by.to_vec());
    }
    if mode == SaveMode::Overwrite {
        builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
    }
    let written = builder.await?;
    session.engine.lake().remember(&written);
    let n = added_rows(&written).await;
    Ok((written, n))
}

fn table_name(t: &TableObject) -> Result<&datafusion::sql::sqlparser::ast::ObjectName> {
    match t {
        TableObject::TableName(n) => Ok(n),
        _ => Err(Error::not_supported("INSERT into a table function")),
    }
}

pub async fn insert(session: &mut Session, ins: Insert) -> Result<Output> {
    if ins.on.is_some() {
        return Err(Error::not_supported("INSERT ... ON CONFLICT"));
    }
    let name = table_name(&ins.table)?;
    let (schema, tname, def) = session.resolve_table(name)?;
    let targets: Vec<String> = if ins.columns.is_empty() {
        def.columns.iter().map(|c| c.name.clone()).collect()
    } else {
        let mut t = Vec::new();
        for c in &ins.columns {
            let n =
                c.0.last()
                    .and_then(|p| p.as_ident())
                    .map(normalize_ident)
                    .unwrap_or_default();
            if def.column(&n).is_none() {
                return Err(Error::new(
                    ErrorKind::UndefinedColumn,
                    format!("column \"{n}\" of relation \"{tname}\" does not exist"),
                ));
            }
            if t.contains(&n) {
                return Err(Error::new(
                    ErrorKind::DuplicateColumn,
                    format!("column \"{n}\" specified more than once"),
                ));
            }
            t.push(n);
        }
        t
    };
    let source = match ins.source {
        Some(q) => q,
        None => return Err(Error::not_supported("INSERT without VALUES or SELECT")),
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
    let targets = &targets[..n_in];
    let df = session.ctx.execute_logical_plan(plan).await?;
    let df = conform(session, df, &def, targets, &tname)?;
    let (_url, table) = open(session, &def).await?;
    match ins.returning {
        None => {
            let plan = df.into_unoptimized_plan();
            let (_t, n) = write_plan(session, table, plan, SaveMode::Append, &[]).await?;
            Ok(Output::Command {
                tag: "INSERT".into(),
                rows: Some(n),
            })
        }
        Some(items) => {
            // RETURNING needs the rows after the write; they are the
            // statement's own rows, so holding them is bounded by its size.
            let batches = df.collect().await?;
            let n: usize = batches.iter().map(|b| b.num_rows()).sum();
            let written = table
                .write(batches.clone())
                .with_save_mode(SaveMode::Append)
                .with_session_state(Arc::new(session.ctx.state()))
                .await?;
            session.engine.lake().remember(&written);
            let _ = (schema, n);
            returning(session, batches, &def, &tname, &items, "INSERT 0").await
        }
    }
}

async fn returning(
    session: &Session,
    mut batches: Vec<datafusion::arrow::array::RecordBatch>,
    def: &TableDef,
    table: &str,
    items: &[SelectItem],
    tag: &'static str,
) -> Result<Output> {
    if batches.is_empty() {
        batches.push(datafusion::arrow::array::RecordBatch::new_empty(
            def.arrow_schema(),
        ));
    }
    let df = session.ctx.read_batches(batches)?.alias(table)?;
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
    let out = df.select(exprs)?;
    let schema: SchemaRef = Arc::new(out.schema().as_arrow().clone());
    let rows = out.collect().await?;
    Output::batches(schema, rows, tag)
}

/// Result columns of a DML statement's RETURNING clause, for Describe.
pub async fn returning_schema(session: &Session, s: &Statement) -> Result<Option<SchemaRef>> {
    let (name, items) = match s {
        Statement::Insert(i) => (table_name(&i.table)?.clone(), i.returning.clone()),
        _ => return Ok(None),
    };
    let Some(items) = items else { return Ok(None) };
    let (_, tname, def) = session.resolve_table(&name)?;
    let schema = def.arrow_schema();
    let df = session
        .ctx
        .read_batch(datafusion::arrow::array::RecordBatch::new_empty(schema))?
        .alias(&tname)?;
    let mut fields: Vec<Field> = Vec::new();
    for item in &items {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                fields.extend(df.schema().fields().iter().map(|f| f.as_ref().clone()));
            }
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                let x = session.ctx.parse_sql_expr(&e.to_string(), df.schema())?;
                let dt = x.to_field(df.schema())?.1.data_type().clone();
                let name = match item {
                    SelectItem::ExprWithAlias { alias, .. } => normalize_ident(alias),
                    _ => e.to_string().to_lowercase(),
                };
                fields.push(Field::new(name, dt, true));
            }
            _ => {}
        }
    }
    Ok(Some(Arc::new(Schema::new(fields))))
}

/// The single table a DML statement targets, with its alias.
fn target(
    t: &TableWithJoins,
) -> Result<(datafusion::sql::sqlparser::ast::ObjectName, Option<String>)> {
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

fn quoted(schema: &str, table: &str) -> String {
    format!(
        "\"{}\".\"{}\"",
        schema.replace('"', "\"\""),
        table.replace('"', "\"\"")
    )
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

/// Plan `SELECT exprs FROM table [alias] WHERE pred` and pull out the
/// DataFusion expressions, unqualified, for delta-rs' builders.
async fn plan_exprs(
    session: &Session,
    schema: &str,
    table: &str,
    alias: &Option<String>,
    exprs: &[String],
    pred: Option<&Expr>,
) -> Result<(Vec<DfExpr>, Option<DfExpr>)> {
    let select = if exprs.is_empty() {
        "1".to_string()
    } else {
        exprs.join(", ")
    };
    let alias_sql = alias
        .as_ref()
        .map(|a| format!(" AS \"{a}\""))
        .unwrap_or_default();
    let where_sql = pred.map(|p| format!(" WHERE {p}")).unwrap_or_default();
    let sql = format!(
        "SELECT {select} FROM {}{alias_sql}{where_sql}",
        quoted(schema, table)
    );
    let plan = session.ctx.state().create_logical_plan(&sql).await?;
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
    let projections = projections
        .into_iter()
        .map(unqualify)
        .collect::<Result<Vec<_>>>()?;
    let filter = filter.map(unqualify).transpose()?;
    Ok((
        if exprs.is_empty() {
            vec![]
        } else {
            projections
        },
        filter,
    ))
}

pub async fn update(session: &mut Session, up: Update) -> Result<Output> {
    if up.from.is_some() {
        return Err(Error::not_supported("UPDATE ... FROM"));
    }
    let (name, alias) = target(&up.table)?;
    let (schema, tname, def) = session.resolve_table(&name)?;
    let returning_items = up.returning.clone();
    let mut sets: Vec<(String, Expr)> = Vec::new();
    for a in &up.assignments {
        let col = match &a.target {
            datafusion::sql::sqlparser::ast::AssignmentTarget::ColumnName(n) => {
                n.0.last()
                    .and_then(|p| p.as_ident())
                    .map(normalize_ident)
                    .unwrap_or_default()
            }
            _ => return Err(Error::not_supported("UPDATE of a column tuple")),
        };
        if def.column(&col).is_none() {
            return Err(Error::new(
                ErrorKind::UndefinedColumn,
                format!("column \"{col}\" of relation \"{tname}\" does not exist"),
            ));
        }
        if def.partition_by.contains(&col) {
            // delta-rs rewrites files in place; moving rows between
            // partitions goes through the rewrite path below.
        }
        sets.push((col, a.value.clone()));
    }
    // RETURNING: the new rows, computed on the snapshot the update reads.
    let returned = match &returning_items {
        Some(_) => {
            let set_map: HashMap<&str, &Expr> = sets.iter().map(|(c, e)| (c.as_str(), e)).collect();
            let cols: Vec<String> = def
                .columns
                .iter()
                .map(|c| {
                    let q = format!("\"{}\"", c.name.replace('"', "\"\""));
                    match set_map.get(c.name.as_str()) {
                        Some(e) => format!("CAST({e} AS {}) AS {q}", c.ty.display()),
                        None => q,
                    }
                })
                .collect();
            let alias_sql = alias
                .as_ref()
                .map(|a| format!(" AS \"{a}\""))
                .unwrap_or_default();
            let where_sql = up
                .selection
                .as_ref()
                .map(|p| format!(" WHERE {p}"))
                .unwrap_or_default();
            let sql = format!(
                "SELECT {} FROM {}{alias_sql}{where_sql}",
                cols.join(", "),
                quoted(&schema, &tname)
            );
            Some(session.ctx.sql(&sql).await?.collect().await?)
        }
        None => None,
    };
    let out = update_rows(session, &schema, &tname, &alias, &def, &sets, &up).await?;
    match (returned, returning_items) {
        (Some(batches), Some(items)) => {
            returning(session, batches, &def, &tname, &items, "UPDATE").await
        }
        _ => Ok(out),
    }
}

async fn update_rows(
    session: &mut Session,
    schema: &str,
    tname: &str,
    alias: &Option<String>,
    def: &TableDef,
    sets: &[(String, Expr)],
    up: &Update,
) -> Result<Output> {
    let (schema, tname, alias, def) = (
        schema.to_string(),
        tname.to_string(),
        alias.clone(),
        def.clone(),
    );
    let needs_rewrite = up.selection.as_ref().is_some_and(has_subquery)
        || sets
            .iter()
            .any(|(c, e)| has_subquery(e) || def.partition_by.contains(c));
    if needs_rewrite {
        return rewrite_update(
            session,
            &schema,
            &tname,
            &alias,
            &def,
            sets,
            up.selection.as_ref(),
        )
        .await;
    }
    let texts: Vec<String> = sets.iter().map(|(_, e)| e.to_string()).collect();
    let (values, pred) = plan_exprs(
        session,
        &schema,
        &tname,
        &alias,
        &texts,
        up.selection.as_ref(),
    )
    .await?;
    let (_url, table) = open(session, &def).await?;
    let mut builder = table
        .update()
        .with_session_state(Arc::new(session.ctx.state()));
    if let Some(p) = pred {
        builder = builder.with_predicate(p);
    }
    for ((c, _), v) in sets.iter().zip(values) {
        builder = builder.with_update(c.as_str(), store_expr(v, &def, c, &tname));
    }
    let (written, metrics) = builder.await?;
    session.engine.lake().remember(&written);
    Ok(Output::Command {
        tag: "UPDATE".into(),
        rows: Some(metrics.num_updated_rows),
    })
}

/// UPDATE as one overwrite: every row passes through a CASE that applies
/// the SET list where the predicate holds.
async fn rewrite_update(
    session: &mut Session,
    schema: &str,
    table: &str,
    alias: &Option<String>,
    def: &TableDef,
    sets: &[(String, Expr)],
    pred: Option<&Expr>,
) -> Result<Output> {
    let cond = pred
        .map(|p| format!("{p}"))
        .unwrap_or_else(|| "TRUE".into());
    let set_map: HashMap<&str, &Expr> = sets.iter().map(|(c, e)| (c.as_str(), e)).collect();
    let cols: Vec<String> = def
        .columns
        .iter()
        .map(|c| {
            let q = format!("\"{}\"", c.name.replace('"', "\"\""));
            match set_map.get(c.name.as_str()) {
                Some(e) => format!("CAST({e} AS {}) AS {q}", c.ty.display()),
                None => q,
            }
        })
        .collect();
    let alias_sql = alias
        .as_ref()
        .map(|a| format!(" AS \"{a}\""))
        .unwrap_or_default();
    let from = format!("{}{alias_sql}", quoted(schema, table));
    let count_sql = format!("SELECT count(*) FROM {from} WHERE {cond}");
    let n = count(session, &count_sql).await?;
    // Changed rows, plus every row the predicate does not select (EXCEPT ALL
    // keeps duplicates and treats NULLs as equal, so rows where the
    // predicate is NULL stay as they were). DataFusion turns the subqueries
    // into joins in both branches.
    let star = def
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.name.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {} FROM {from} WHERE {cond} UNION ALL \
         (SELECT {star} FROM {from} EXCEPT ALL SELECT {star} FROM {from} WHERE {cond})",
        cols.join(", ")
    );
    let df = session.ctx.sql(&sql).await?;
    let targets: Vec<String> = def.columns.iter().map(|c| c.name.clone()).collect();
    let df = conform(session, df, def, &targets, table)?;
    let (_url, t) = open(session, def).await?;
    write_plan(
        session,
        t,
        df.into_unoptimized_plan(),
        SaveMode::Overwrite,
        &def.partition_by,
    )
    .await?;
    Ok(Output::Command {
        tag: "UPDATE".into(),
        rows: Some(n),
    })
}

async fn count(session: &Session, sql: &str) -> Result<usize> {
    let batches = session.ctx.sql(sql).await?.collect().await?;
    let b = batches
        .first()
        .ok_or_else(|| Error::internal("count returned nothing"))?;
    let v = ScalarValue::try_from_array(b.column(0), 0)?;
    Ok(match v {
        ScalarValue::Int64(Some(n)) => n as usize,
        other => other.to_string().parse().unwrap_or(0),
    })
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
    let (schema, tname, def) = session.resolve_table(&name)?;
    let alias_sql = alias
        .as_ref()
        .map(|a| format!(" AS \"{a}\""))
        .unwrap_or_default();
    let from_sql = format!("{}{alias_sql}", quoted(&schema, &tname));
    if let Some(items) = &del.returning {
        // The deleted rows, read from the snapshot the delete reads.
        let where_sql = del
            .selection
            .as_ref()
            .map(|p| format!(" WHERE {p}"))
            .unwrap_or_default();
        let gone = session
            .ctx
            .sql(&format!("SELECT * FROM {from_sql}{where_sql}"))
            .await?
            .collect()
            .await?;
        let mut plain = del.clone();
        plain.returning = None;
        Box::pin(delete(session, plain)).await?;
        return returning(session, gone, &def, &tname, items, "DELETE").await;
    }
    if del.selection.as_ref().is_some_and(has_subquery) {
        let pred = del.selection.as_ref().unwrap();
        let n = count(
            session,
            &format!("SELECT count(*) FROM {from_sql} WHERE {pred}"),
        )
        .await?;
        let star = def
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(", ");
        let keep = session
            .ctx
            .sql(&format!(
                "SELECT {star} FROM {from_sql} EXCEPT ALL SELECT {star} FROM {from_sql} WHERE {pred}"
            ))
            .await?;
        let targets: Vec<String> = def.columns.iter().map(|c| c.name.clone()).collect();
        let keep = conform(session, keep, &def, &targets, &tname)?;
        let (_url, t) = open(session, &def).await?;
        write_plan(
            session,
            t,
            keep.into_unoptimized_plan(),
            SaveMode::Overwrite,
            &def.partition_by,
        )
        .await?;
        return Ok(Output::Command {
            tag: "DELETE".into(),
            rows: Some(n),
        });
    }
    let (_, pred) = plan_exprs(
        session,
        &schema,
        &tname,
        &alias,
        &[],
        del.selection.as_ref(),
    )
    .await?;
    let (_url, table) = open(session, &def).await?;
    let before = table.clone();
    let mut builder = table
        .delete()
        .with_session_state(Arc::new(session.ctx.state()));
    if let Some(p) = pred.clone() {
        builder = builder.with_predicate(p);
    }
    let (written, metrics) = builder.await?;
    session.engine.lake().remember(&written);
    let n = match metrics.num_deleted_rows {
        Some(n) => n,
        None => {
            // Whole files were dropped from metadata alone: count them on
            // the snapshot the delete read.
            let provider = before.table_provider().await?;
            let mut df = session.ctx.read_table(provider)?;
            if let Some(p) = pred {
                df = df.filter(p)?;
            }
            df.count().await?
        }
    };
    Ok(Output::Command {
        tag: "DELETE".into(),
        rows: Some(n),
    })
}

pub async fn merge(_session: &mut Session, _m: Merge) -> Result<Output> {
    Err(Error::not_supported("MERGE"))
}
