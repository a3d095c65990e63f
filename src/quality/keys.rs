//! PRIMARY KEY and UNIQUE: no two rows share a key.
//!
//! Delta has no indexes, so a write checks its keys when its input ends,
//! before the writer may commit: the rows stream through to the writer as
//! usual while their key columns go to a spill file on local disk; at the
//! end of the input two queries run over that file, one for keys repeated
//! within the statement and one (a join) for keys the table already holds.
//! A hit ends the input with 23505 instead, so nothing is committed. Both
//! queries run with a memory limit and sort-merge joins, spilling to disk,
//! so a key check stays bounded on tables larger than memory.

use std::path::PathBuf;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::execution::options::ArrowReadOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::DeltaTable;

use super::guard::InputHook;
use crate::catalog::TableDef;
pub use crate::catalog::rules::{ForeignKeyDef, KeyDef, SetOnDelete};
use crate::error::{Error, ErrorKind, Result, ResultFuture};
use crate::frontend::names::{quote_ident as ident, quote_list as ident_list};

/// SQL for the checks of a PRIMARY KEY or UNIQUE constraint.
pub trait KeyChecks {
    fn columns_sql(&self) -> (Vec<String>, String);
    fn repeated_sql(&self, rows: &str) -> String;
    fn present_sql(&self, incoming: &str, existing: &str) -> String;
}

impl KeyChecks for KeyDef {
    /// The key columns, quoted, and `c IS NOT NULL AND ...` over them.
    fn columns_sql(&self) -> (Vec<String>, String) {
        let cols: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
        let not_null = cols
            .iter()
            .map(|c| format!("{c} IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" AND ");
        (cols, not_null)
    }

    /// A query for the first key that `rows` (a relation, as SQL text)
    /// holds more than once; NULL keys never repeat.
    fn repeated_sql(&self, rows: &str) -> String {
        let (cols, not_null) = self.columns_sql();
        let list = cols.join(", ");
        format!(
            "SELECT {list} FROM {rows} AS __rows WHERE {not_null} \
             GROUP BY {list} HAVING count(*) > 1 LIMIT 1"
        )
    }

    /// A query for the first key of `incoming` also in `existing` (both
    /// relations as SQL text).
    fn present_sql(&self, incoming: &str, existing: &str) -> String {
        let (cols, _) = self.columns_sql();
        let on = cols
            .iter()
            .map(|c| format!("__i.{c} = __e.{c}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let select = cols
            .iter()
            .map(|c| format!("__i.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("SELECT {select} FROM {incoming} AS __i JOIN {existing} AS __e ON {on} LIMIT 1")
    }
}

/// The first key of `sqls`' results, if any, as a 23505 error of `key`.
pub async fn first_violation(key: &KeyDef, ctx: &SessionContext, sqls: &[String]) -> Result<()> {
    for sql in sqls {
        if let Some(k) = first_row(ctx, sql).await? {
            return Err(violation(key, &k));
        }
    }
    Ok(())
}

/// Memory the key-check queries may use before they spill.
const CHECK_MEMORY: usize = 256 * 1024 * 1024;

/// SQL for the checks of a FOREIGN KEY.
pub trait ForeignKeyChecks {
    fn join_on(&self, parent: &str, child: &str) -> String;
    fn missing_sql(&self, child: &str, parent: &str) -> String;
    fn missing(&self, table: &str, values: &str) -> Error;
}

impl ForeignKeyChecks for ForeignKeyDef {
    /// `p.parent_col = c.col AND ...` for the given aliases of parent and child.
    fn join_on(&self, parent: &str, child: &str) -> String {
        self.columns
            .iter()
            .zip(&self.parent_columns)
            .map(|(c, p)| format!("{parent}.{} = {child}.{}", ident(p), ident(c)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// A query for the first row of `child` whose reference is not NULL
    /// and names no row of `parent` (both relations as SQL text).
    fn missing_sql(&self, child: &str, parent: &str) -> String {
        let cols = self
            .columns
            .iter()
            .map(|c| format!("c.{}", ident(c)))
            .collect::<Vec<_>>();
        let not_null = cols
            .iter()
            .map(|c| format!("{c} IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!(
            "SELECT {} FROM {child} AS c WHERE {not_null} \
             AND NOT EXISTS (SELECT 1 FROM {parent} AS p WHERE {}) LIMIT 1",
            cols.join(", "),
            self.join_on("p", "c")
        )
    }

    /// 23503 for a row of `table` whose reference `values` names no parent row.
    fn missing(&self, table: &str, values: &str) -> Error {
        Error::new(
            ErrorKind::ForeignKeyViolation,
            format!(
                "insert or update on table \"{table}\" violates foreign key constraint \"{}\"",
                self.name
            ),
        )
        .with_detail(format!(
            "Key ({})=({values}) is not present in table \"{}\".",
            self.columns.join(", "),
            self.parent_table
        ))
        .with_table(table, None)
        .with_constraint(&self.name)
    }
}

/// The key and reference checks of a write: `existing` is the table state
/// an appending write adds to (`None` for a rewrite of the whole table);
/// `parents` the current state of each foreign key's parent, in
/// `def.foreign_keys` order. Nothing when the table has neither.
pub fn hook(
    def: &TableDef,
    table: &str,
    existing: Option<DeltaTable>,
    parents: Vec<Parent>,
) -> Option<Box<dyn InputHook>> {
    if def.keys.is_empty() && def.foreign_keys.is_empty() {
        return None;
    }
    Some(Box::new(KeyHook {
        keys: def.keys.clone(),
        refs: def.foreign_keys.iter().cloned().zip(parents).collect(),
        table: table.to_string(),
        existing,
        spill: None,
    }))
}

/// The parent of one foreign key, opened for [`hook`].
pub struct Parent {
    table: DeltaTable,
    /// The key refers to the table being written.
    own: bool,
}

/// Open the parent of each of `def`'s foreign keys, for [`hook`].
pub async fn parents(catalog: &crate::catalog::Catalog, def: &TableDef) -> Result<Vec<Parent>> {
    let snap = catalog.snapshot();
    let lake = catalog.lake();
    let mut out = Vec::new();
    for fk in &def.foreign_keys {
        let entry = snap
            .relation(&fk.parent_schema, &fk.parent_table)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedTable,
                    format!("relation \"{}\" does not exist", fk.parent_table),
                )
            })?;
        let pdef = entry.table_def()?;
        out.push(Parent {
            table: lake.table(&lake.url_for(&pdef.location)?).await?,
            own: pdef.location == def.location,
        });
    }
    Ok(out)
}

struct KeyHook {
    keys: Vec<KeyDef>,
    refs: Vec<(ForeignKeyDef, Parent)>,
    table: String,
    existing: Option<DeltaTable>,
    spill: Option<Spill>,
}

impl InputHook for KeyHook {
    fn batch(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.spill.is_none() {
            let mut columns: Vec<&str> = Vec::new();
            for c in self
                .keys
                .iter()
                .flat_map(|k| &k.columns)
                .chain(self.refs.iter().flat_map(|(f, _)| &f.columns))
            {
                if !columns.contains(&c.as_str()) {
                    columns.push(c);
                }
            }
            self.spill = Some(Spill::new(&columns, batch.schema())?);
        }
        self.spill.as_mut().expect("just made").add(batch)
    }

    fn end<'a>(&'a mut self) -> ResultFuture<'a, ()> {
        Box::pin(async move {
            match self.spill.as_mut() {
                Some(spill) => {
                    let check = spill.context().await?;
                    check_keys(&check, &self.keys, self.existing.as_ref()).await?;
                    let spilled = spill.names();
                    check_references(
                        &check,
                        &self.table,
                        &self.refs,
                        self.existing.is_some(),
                        &spilled,
                    )
                    .await
                }
                None => Ok(()),
            }
        })
    }
}

/// The key columns of every row written, in an Arrow IPC file that is
/// removed when the check is done.
struct Spill {
    path: PathBuf,
    columns: Vec<usize>,
    names: Vec<String>,
    writer: Option<FileWriter<std::io::BufWriter<std::fs::File>>>,
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Spill {
    fn new(names: &[&str], schema: SchemaRef) -> Result<Spill> {
        let mut columns: Vec<usize> = Vec::new();
        for c in names {
            let i = schema.index_of(c).map_err(|_| {
                Error::internal(format!("key column {c} is not among the written columns"))
            })?;
            columns.push(i);
        }
        let projected = schema.project(&columns)?;
        let path = std::env::temp_dir().join(format!("sluice-keys-{}.arrow", uuid::Uuid::new_v4()));
        let file = std::fs::File::create(&path)?;
        let writer = FileWriter::try_new(std::io::BufWriter::new(file), &projected)?;
        Ok(Spill {
            path,
            columns,
            names: names.iter().map(|n| n.to_string()).collect(),
            writer: Some(writer),
        })
    }

    /// The names of the spilled columns.
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = batch.project(&self.columns)?;
        if let Some(w) = self.writer.as_mut() {
            w.write(&keys)?;
        }
        Ok(())
    }

    /// A bounded context with the spilled keys as `incoming`.
    async fn context(&mut self) -> Result<SessionContext> {
        if let Some(mut w) = self.writer.take() {
            w.finish()?;
        }
        let check = bounded_context();
        let path = self.path.to_string_lossy().into_owned();
        check
            .register_arrow("incoming", &path, ArrowReadOptions::default())
            .await?;
        Ok(check)
    }
}

/// No key repeated within `incoming`, nor (with `existing`) present there.
async fn check_keys(
    check: &SessionContext,
    keys: &[KeyDef],
    existing: Option<&DeltaTable>,
) -> Result<()> {
    if let Some(t) = existing
        && !keys.is_empty()
    {
        check.register_table("existing", crate::lake::provider(t).await?)?;
    }
    for key in keys {
        let mut sqls = vec![key.repeated_sql("incoming")];
        if existing.is_some() {
            sqls.push(key.present_sql("incoming", "existing"));
        }
        first_violation(key, check, &sqls).await?;
    }
    Ok(())
}

/// Every non-NULL reference in `incoming` names a row of its parent.
///
/// A table that references itself is its own parent, as it will be once
/// the statement commits (PostgreSQL checks at the end of the statement):
/// an append may refer to the rows it adds as well as the table's, and a
/// rewrite (`appending` false) only to the new rows, which are the whole
/// table.
async fn check_references(
    check: &SessionContext,
    table: &str,
    refs: &[(ForeignKeyDef, Parent)],
    appending: bool,
    spilled: &[String],
) -> Result<()> {
    for (n, (fk, parent)) in refs.iter().enumerate() {
        let alias = format!("parent_{n}");
        check.register_table(alias.as_str(), crate::lake::provider(&parent.table).await?)?;
        let own = parent.own && fk.parent_columns.iter().all(|c| spilled.contains(c));
        let parents = if !own {
            alias
        } else {
            let cols = ident_list(&fk.parent_columns);
            if appending {
                format!("(SELECT {cols} FROM {alias} UNION ALL SELECT {cols} FROM incoming)")
            } else {
                "incoming".to_string()
            }
        };
        if let Some(values) = first_row(check, &fk.missing_sql("incoming", &parents)).await? {
            return Err(fk.missing(table, &values));
        }
    }
    Ok(())
}

/// The first row of `sql` as PostgreSQL shows a key: `1, a@b`.
pub async fn first_row(ctx: &SessionContext, sql: &str) -> Result<Option<String>> {
    let batches = crate::frontend::generated::query(ctx, sql)
        .await?
        .collect()
        .await?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let options = FormatOptions::default().with_null("null");
    let mut values = Vec::new();
    for c in b.columns() {
        values.push(
            ArrayFormatter::try_new(c.as_ref(), &options)?
                .value(0)
                .to_string(),
        );
    }
    Ok(Some(values.join(", ")))
}

fn violation(key: &KeyDef, values: &str) -> Error {
    Error::new(
        ErrorKind::UniqueViolation,
        format!(
            "duplicate key value violates unique constraint \"{}\"",
            key.name
        ),
    )
    .with_detail(format!(
        "Key ({})=({values}) already exists.",
        key.columns.join(", ")
    ))
    .with_constraint(&key.name)
}

/// ALTER TABLE ADD PRIMARY KEY / UNIQUE: the rows already in `table` must
/// not repeat the key (nor, for a primary key, leave it NULL).
pub async fn validate_existing(table: DeltaTable, name: &str, key: &KeyDef) -> Result<()> {
    let check = bounded_context();
    check.register_table("existing", crate::lake::provider(&table).await?)?;
    let cols: Vec<String> = key.columns.iter().map(|c| ident(c)).collect();
    let list = cols.join(", ");
    if key.primary {
        for c in &key.columns {
            let sql = format!("SELECT 1 FROM existing WHERE {} IS NULL LIMIT 1", ident(c));
            if first_row(&check, &sql).await?.is_some() {
                return Err(Error::new(
                    ErrorKind::NotNullViolation,
                    format!("column \"{c}\" of relation \"{name}\" contains null values"),
                ));
            }
        }
    }
    let not_null = cols
        .iter()
        .map(|c| format!("{c} IS NOT NULL"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let sql = format!(
        "SELECT {list} FROM existing WHERE {not_null} GROUP BY {list} HAVING count(*) > 1 LIMIT 1"
    );
    if let Some(values) = first_row(&check, &sql).await? {
        return Err(Error::new(
            ErrorKind::UniqueViolation,
            format!("could not create unique index \"{}\"", key.name),
        )
        .with_detail(format!(
            "Key ({})=({values}) is duplicated.",
            key.columns.join(", ")
        )));
    }
    Ok(())
}

/// A context for key checks: limited memory, sort-merge joins, spilling.
fn bounded_context() -> SessionContext {
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_limit(CHECK_MEMORY, 1.0)
        .build_arc()
        .expect("a runtime with a memory limit builds");
    let mut config = SessionConfig::new().with_target_partitions(2);
    config.options_mut().optimizer.prefer_hash_join = false;
    SessionContext::new_with_config_rt(config, runtime)
}
