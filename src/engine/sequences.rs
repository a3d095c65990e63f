//! CREATE SEQUENCE, serial and identity columns, and a sequence read as a
//! relation (`SELECT * FROM s`). The values themselves come from
//! [`crate::write::sequences`].

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{DataType, Expr, ObjectName, SequenceOptions};

use super::{Output, Session};
use crate::catalog::{Identity, Object, PgType, SYSTEM_SCHEMAS, SequenceDef};
use crate::error::{Error, ErrorKind, Result};
use crate::write::sequences::type_bounds;

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidParameter, message)
}

/// The integer an option gives (`5`, `-1`, `+3`).
fn option_value(e: &Expr) -> Result<i64> {
    let text = e.to_string().replace(' ', "");
    text.trim_start_matches('+')
        .parse::<i64>()
        .map_err(|_| Error::syntax(format!("syntax error at or near \"{e}\"")))
}

/// The type of a sequence (`AS type`, or an identity column's type).
pub fn sequence_type(ty: &PgType) -> Result<PgType> {
    match ty.name.as_str() {
        "smallint" | "integer" | "bigint" => Ok(ty.clone()),
        _ => Err(invalid(
            "sequence type must be smallint, integer, or bigint".into(),
        )),
    }
}

/// What a statement's sequence options give; `min` / `max` are
/// `Some(None)` for `NO MINVALUE` / `NO MAXVALUE`.
#[derive(Default)]
struct Given {
    increment: Option<i64>,
    min: Option<Option<i64>>,
    max: Option<Option<i64>>,
    start: Option<i64>,
    cache: Option<i64>,
    cycle: Option<bool>,
}

fn given(options: &[SequenceOptions]) -> Result<Given> {
    let mut g = Given::default();
    for o in options {
        match o {
            SequenceOptions::IncrementBy(e, _) => g.increment = Some(option_value(e)?),
            SequenceOptions::MinValue(e) => g.min = Some(e.as_ref().map(option_value).transpose()?),
            SequenceOptions::MaxValue(e) => g.max = Some(e.as_ref().map(option_value).transpose()?),
            SequenceOptions::StartWith(e, _) => g.start = Some(option_value(e)?),
            SequenceOptions::Cache(e) => g.cache = Some(option_value(e)?),
            SequenceOptions::Cycle(no) => g.cycle = Some(!*no),
        }
    }
    Ok(g)
}

/// A sequence of `ty` with `options`, checked as PostgreSQL checks them.
pub fn sequence_def(
    ty: PgType,
    options: &[SequenceOptions],
    owned_by: Option<(String, String)>,
) -> Result<SequenceDef> {
    let g = given(options)?;
    checked(
        SequenceDef {
            id: uuid::Uuid::new_v4().to_string(),
            ty,
            start: 0,
            increment: g.increment.unwrap_or(1),
            min: 0,
            max: 0,
            cycle: g.cycle.unwrap_or(false),
            cache: g.cache.unwrap_or(1),
            owned_by,
        },
        g.min.flatten(),
        g.max.flatten(),
        g.start,
    )
}

/// `def` after `ALTER SEQUENCE ... [AS ty] options`, as PostgreSQL's
/// `init_params` does it: what is not given stays, `NO MINVALUE` / `NO
/// MAXVALUE` take the default for the increment's direction, and a new
/// type moves a bound that was the old type's limit to the new type's
/// (whatever the direction).
pub fn altered_def(
    def: &SequenceDef,
    ty: Option<PgType>,
    options: &[SequenceOptions],
) -> Result<SequenceDef> {
    let g = given(options)?;
    let ty = ty.unwrap_or_else(|| def.ty.clone());
    let (old_min, old_max) = type_bounds(&def.ty.name);
    let retyped = ty.name != def.ty.name;
    let (new_min, new_max) = type_bounds(&ty.name);
    let min = match g.min {
        Some(given) => given,
        None if retyped && def.min == old_min => Some(new_min),
        None => Some(def.min),
    };
    let max = match g.max {
        Some(given) => given,
        None if retyped && def.max == old_max => Some(new_max),
        None => Some(def.max),
    };
    checked(
        SequenceDef {
            id: def.id.clone(),
            ty,
            start: 0,
            increment: g.increment.unwrap_or(def.increment),
            min: 0,
            max: 0,
            cycle: g.cycle.unwrap_or(def.cycle),
            cache: g.cache.unwrap_or(def.cache),
            owned_by: def.owned_by.clone(),
        },
        min,
        max,
        Some(g.start.unwrap_or(def.start)),
    )
}

/// `def` with its bounds and start (their defaults where not given),
/// checked as PostgreSQL checks them.
fn checked(
    mut def: SequenceDef,
    min: Option<i64>,
    max: Option<i64>,
    start: Option<i64>,
) -> Result<SequenceDef> {
    let (tmin, tmax) = type_bounds(&def.ty.name);
    let increment = def.increment;
    if increment == 0 {
        return Err(invalid("INCREMENT must not be zero".into()));
    }
    let min = min.unwrap_or(if increment > 0 { 1 } else { tmin });
    let max = max.unwrap_or(if increment > 0 { tmax } else { -1 });
    let name = &def.ty.name;
    if min < tmin || min > tmax {
        return Err(invalid(format!(
            "MINVALUE ({min}) is out of range for sequence data type {name}"
        )));
    }
    if max < tmin || max > tmax {
        return Err(invalid(format!(
            "MAXVALUE ({max}) is out of range for sequence data type {name}"
        )));
    }
    if min >= max {
        return Err(invalid(format!(
            "MINVALUE ({min}) must be less than MAXVALUE ({max})"
        )));
    }
    let start = start.unwrap_or(if increment > 0 { min } else { max });
    if start < min {
        return Err(invalid(format!(
            "START value ({start}) cannot be less than MINVALUE ({min})"
        )));
    }
    if start > max {
        return Err(invalid(format!(
            "START value ({start}) cannot be greater than MAXVALUE ({max})"
        )));
    }
    if def.cache <= 0 {
        return Err(invalid(format!(
            "CACHE ({}) must be greater than zero",
            def.cache
        )));
    }
    (def.min, def.max, def.start) = (min, max, start);
    Ok(def)
}

/// `value`, where a sequence would stand after `RESTART` (or stands now),
/// checked against `def`'s bounds as PostgreSQL checks it.
fn check_restart(def: &SequenceDef, value: i64) -> Result<()> {
    if value < def.min {
        return Err(invalid(format!(
            "RESTART value ({value}) cannot be less than MINVALUE ({})",
            def.min
        )));
    }
    if value > def.max {
        return Err(invalid(format!(
            "RESTART value ({value}) cannot be greater than MAXVALUE ({})",
            def.max
        )));
    }
    Ok(())
}

/// The type a `serial` column stands for, if `ty` is one.
pub fn serial_type(ty: &DataType) -> Option<PgType> {
    let DataType::Custom(name, args) = ty else {
        return None;
    };
    if !args.is_empty() {
        return None;
    }
    let n = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    Some(PgType::simple(match n.as_str() {
        "smallserial" | "serial2" => "smallint",
        "serial" | "serial4" => "integer",
        "bigserial" | "serial8" => "bigint",
        _ => return None,
    }))
}

/// A column's sequence, to be created with its table.
pub struct ColumnSequence {
    pub column: String,
    pub ty: PgType,
    pub options: Vec<SequenceOptions>,
}

/// The default that takes a column's values from sequence `name` of
/// `schema`.
pub fn nextval_default(schema: &str, name: &str) -> String {
    format!("nextval('{}')", qualified(schema, name).replace('\'', "''"))
}

/// `schema.name` as the text a sequence function reads as a name.
fn qualified(schema: &str, name: &str) -> String {
    let quote = crate::frontend::names::quote_ident_if_needed;
    format!("{}.{}", quote(schema), quote(name))
}

/// PostgreSQL's name for a column's sequence: `<table>_<column>_seq`,
/// with a number added when that is taken.
fn free_name(
    session: &Session,
    schema: &str,
    table: &str,
    column: &str,
    taken: &[String],
) -> String {
    let snap = session.engine.catalog().snapshot();
    let base = format!("{table}_{column}_seq");
    (0..)
        .map(|i| {
            if i == 0 {
                base.clone()
            } else {
                format!("{base}{i}")
            }
        })
        .find(|n| snap.relation(schema, n).is_none() && !taken.contains(n))
        .expect("a free name")
}

/// The `nextval('s')` calls of a column default name their sequence by
/// schema, as PostgreSQL binds them when the default is created (42P01
/// when there is none; another kind of relation fails when used): a later
/// `search_path` does not move them, and DROP SEQUENCE sees what depends
/// on the sequence.
pub fn bind_default(session: &Session, e: &mut Expr) -> Result<()> {
    let snapshot = session.engine.catalog().snapshot();
    let system = session.system_tables();
    let resolver = session.resolver(&snapshot, &system);
    let mut failed = None;
    crate::visit::sequence_names_mut(e, |text| {
        if failed.is_some() {
            return;
        }
        let found = crate::types::ident::parse_ident(text, true)
            .and_then(|parts| resolver.resolve(&crate::frontend::names::quoted_name(&parts)));
        match found.map(|r| r.rel_name()) {
            Ok(r) => *text = qualified(&r.schema, &r.name),
            Err(x) => failed = Some(x),
        }
    });
    failed.map_or(Ok(()), Err)
}

/// The sequences of a new table's serial and identity columns, each owned
/// by its column, and the columns' defaults set to take from them.
pub fn column_sequences(
    session: &Session,
    schema: &str,
    table: &str,
    columns: &mut [crate::catalog::ColumnDef],
    wanted: Vec<ColumnSequence>,
) -> Result<Vec<Object>> {
    let mut out: Vec<Object> = Vec::new();
    for w in wanted {
        let taken: Vec<String> = out.iter().map(|o| o.name.clone()).collect();
        let name = free_name(session, schema, table, &w.column, &taken);
        let def = sequence_def(
            w.ty,
            &w.options,
            Some((table.to_string(), w.column.clone())),
        )?;
        if let Some(c) = columns.iter_mut().find(|c| c.name == w.column) {
            c.default = Some(nextval_default(schema, &name));
        }
        out.push(Object::sequence(schema, &name, def));
    }
    Ok(out)
}

/// `CREATE SEQUENCE [IF NOT EXISTS] name [AS type] [options] [OWNED BY t.c | NONE]`.
pub async fn create_sequence(
    session: &mut Session,
    if_not_exists: bool,
    name: &ObjectName,
    data_type: Option<&DataType>,
    options: &[SequenceOptions],
    owned_by: Option<&ObjectName>,
) -> Result<Output> {
    let (schema, seq) = session.qualify(name)?;
    let snap = session.engine.catalog().snapshot();
    if !snap.schema_exists(&schema) || SYSTEM_SCHEMAS.contains(&schema.as_str()) {
        return Err(super::ddl::missing_schema(&schema));
    }
    if snap.relation(&schema, &seq).is_some() {
        if if_not_exists {
            session.notice(format!("relation \"{seq}\" already exists, skipping"));
            return Ok(Output::command("CREATE SEQUENCE"));
        }
        return Err(super::ddl::duplicate_relation(&seq));
    }
    let ty = match data_type {
        Some(t) => sequence_type(&PgType::from_sql(t)?)?,
        None => PgType::simple("bigint"),
    };
    let owner = match owned_by {
        None => None,
        Some(o) => owner(session, &schema, o)?,
    };
    let def = sequence_def(ty, options, owner)?;
    let created = super::ddl::register(session, Object::sequence(&schema, &seq, def)).await;
    match created {
        Err(e) if if_not_exists && e.kind == ErrorKind::DuplicateTable => {
            session.notice(format!("relation \"{seq}\" already exists, skipping"));
        }
        other => other?,
    }
    Ok(Output::command("CREATE SEQUENCE"))
}

/// The column `OWNED BY table.column` names (`None` for `OWNED BY NONE`),
/// which must be in the sequence's schema.
fn owner(session: &Session, schema: &str, o: &ObjectName) -> Result<Option<(String, String)>> {
    if o.to_string().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let parts: Vec<String> =
        o.0.iter()
            .filter_map(|p| p.as_ident())
            .map(crate::frontend::names::normalize_ident)
            .collect();
    let Some((column, table)) = parts.split_last() else {
        return Err(Error::syntax("OWNED BY needs a table and a column"));
    };
    if table.is_empty() {
        return Err(invalid("invalid OWNED BY option".into())
            .with_hint("Specify OWNED BY table.column or OWNED BY NONE."));
    }
    let (tschema, tname, def) =
        session.resolve_table(&crate::frontend::names::quoted_name(table))?;
    if tschema != schema {
        return Err(Error::new(
            ErrorKind::ObjectNotInPrerequisiteState,
            "sequence must be in same schema as table it is linked to",
        ));
    }
    if def.column(column).is_none() {
        return Err(Error::new(
            ErrorKind::UndefinedColumn,
            format!("column \"{column}\" of relation \"{tname}\" does not exist"),
        ));
    }
    Ok(Some((tname, column.clone())))
}

/// `ALTER SEQUENCE [IF EXISTS] name {RENAME TO n | SET SCHEMA s | options}`.
/// Options change the definition in the catalog; `RESTART` then moves the
/// sequence (one more commit, in the sequences' own table), and without it
/// the values this server had reserved are dropped, so the next value
/// follows the new options. A rename or a move rewrites the column
/// defaults that take from the sequence.
pub async fn alter_sequence(
    session: &mut Session,
    stmt: &crate::frontend::sequence_options::AlterSequence,
) -> Result<Output> {
    use crate::frontend::sequence_options::AlterSequenceAction as A;
    let done = Ok(Output::command("ALTER SEQUENCE"));
    let (schema, name) = session.qualify(&stmt.name)?;
    let snap = session.engine.catalog().snapshot();
    let Some(object) = snap.relation(&schema, &name) else {
        if stmt.if_exists {
            session.notice(format!("relation \"{name}\" does not exist, skipping"));
            return done;
        }
        return Err(Error::new(
            ErrorKind::UndefinedTable,
            format!("relation \"{name}\" does not exist"),
        ));
    };
    let crate::catalog::Def::Sequence(def) = &object.def else {
        return Err(Error::new(
            ErrorKind::WrongObjectType,
            format!("\"{name}\" is not a sequence"),
        ));
    };
    let def = def.clone();
    match &stmt.action {
        A::Rename(new) => {
            let new = crate::frontend::names::normalize_ident(new);
            move_sequence(session, (&schema, &name), (&schema, &new)).await?;
        }
        A::SetSchema(target) => {
            let target = crate::frontend::names::normalize_ident(target);
            if let Some((table, _)) = &def.owned_by {
                return Err(Error::new(
                    ErrorKind::FeatureNotSupported,
                    "cannot move an owned sequence into another schema",
                )
                .with_detail(format!(
                    "Sequence \"{name}\" is linked to table \"{table}\"."
                )));
            }
            if !snap.schema_exists(&target) || SYSTEM_SCHEMAS.contains(&target.as_str()) {
                return Err(super::ddl::missing_schema(&target));
            }
            if target != schema {
                move_sequence(session, (&schema, &name), (&target, &name)).await?;
            }
        }
        A::Options(o) => {
            let crate::frontend::sequence_options::AlterOptions {
                data_type,
                options,
                restart,
                owned_by,
            } = o.as_ref();
            let ty = data_type
                .as_ref()
                .map(|t| sequence_type(&PgType::from_sql(t)?))
                .transpose()?;
            let owner_change = owned_by
                .as_ref()
                .map(|o| {
                    refuse_identity_owner(&snap, &schema, &name, &def)?;
                    owner(session, &schema, o)
                })
                .transpose()?;
            let restart_given = restart
                .as_ref()
                .map(|r| r.as_ref().map(option_value).transpose())
                .transpose()?;
            let sequences = session.engine.sequences();
            let now = sequences.position(&def).await?;
            // Worked out inside the catalog change, on the definition as it
            // stands then (another server may have changed it meanwhile).
            let outcome: std::sync::Mutex<Option<Altered>> = Default::default();
            let (s, n, id) = (schema.clone(), name.clone(), def.id.clone());
            session
                .engine
                .catalog
                .mutate(|entries| {
                    let e = entries
                        .iter_mut()
                        .find(|e| {
                            e.schema == s
                                && e.name == n
                                && matches!(&e.def, crate::catalog::Def::Sequence(d) if d.id == id)
                        })
                        .ok_or_else(|| {
                            Error::new(
                                ErrorKind::UndefinedTable,
                                format!("relation \"{n}\" does not exist"),
                            )
                        })?;
                    let crate::catalog::Def::Sequence(current) = &e.def else {
                        unreachable!("matched a sequence")
                    };
                    let mut new = altered_def(current, ty.clone(), options)?;
                    if let Some(o) = &owner_change {
                        new.owned_by = o.clone();
                    }
                    let restart_at = restart_given.map(|v| v.unwrap_or(new.start));
                    check_restart(
                        &new,
                        restart_at.unwrap_or(now.last.unwrap_or(current.start)),
                    )?;
                    let new = Arc::new(new);
                    *outcome.lock().expect("not poisoned") =
                        Some((new.clone(), restart_at, current.start));
                    e.def = crate::catalog::Def::Sequence(new);
                    Ok(())
                })
                .await?;
            let Some((new, restart_at, old_start)) = outcome.into_inner().expect("not poisoned")
            else {
                return done;
            };
            match restart_at {
                Some(v) => sequences.set(&name, &new, v, false).await?,
                // A sequence never used stays at its old start, as
                // PostgreSQL's last_value does; START changes only where
                // RESTART goes.
                None if now.last.is_none() && new.start != old_start => {
                    sequences.set(&name, &new, old_start, false).await?
                }
                None => sequences.forget(&new).await?,
            }
        }
    }
    done
}

/// What an ALTER SEQUENCE with options made: the new definition, where
/// it restarts (if it does) and the start it had before.
type Altered = (Arc<SequenceDef>, Option<i64>, i64);

/// PostgreSQL does not let `OWNED BY` change an identity column's
/// sequence.
fn refuse_identity_owner(
    snap: &crate::catalog::Snapshot,
    schema: &str,
    name: &str,
    def: &SequenceDef,
) -> Result<()> {
    let Some((table, column)) = &def.owned_by else {
        return Ok(());
    };
    let identity = snap
        .relation(schema, table)
        .and_then(|t| t.table_def().ok())
        .is_some_and(|t| t.column(column).is_some_and(|c| c.identity.is_some()));
    if identity {
        return Err(Error::new(
            ErrorKind::FeatureNotSupported,
            "cannot change ownership of identity sequence",
        )
        .with_detail(format!(
            "Sequence \"{name}\" is linked to table \"{table}\"."
        )));
    }
    Ok(())
}

/// Rename or move sequence `from` to `to`, and the column defaults that
/// take from it with it.
async fn move_sequence(session: &Session, from: (&str, &str), to: (&str, &str)) -> Result<()> {
    let from = (from.0.to_string(), from.1.to_string());
    let to = (to.0.to_string(), to.1.to_string());
    let text = qualified(&to.0, &to.1);
    session
        .engine
        .catalog
        .mutate(move |entries| {
            if entries.iter().any(|e| e.schema == to.0 && e.name == to.1) {
                return Err(super::ddl::duplicate_relation(&to.1));
            }
            let Some(e) = entries.iter_mut().find(|e| {
                e.kind() == crate::catalog::Kind::Sequence && e.schema == from.0 && e.name == from.1
            }) else {
                return Err(Error::new(
                    ErrorKind::UndefinedTable,
                    format!("relation \"{}\" does not exist", from.1),
                ));
            };
            e.schema = to.0.clone();
            e.name = to.1.clone();
            for e in entries.iter_mut() {
                let table_schema = e.schema.clone();
                if let crate::catalog::Def::Table(t) = &mut e.def
                    && t.columns
                        .iter()
                        .any(|c| c.default_sequences(&table_schema).contains(&from))
                {
                    let t = Arc::make_mut(t);
                    for c in &mut t.columns {
                        c.rename_sequence(&table_schema, &from, &text);
                    }
                }
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// The columns of an identity column's sequence options, for a column
/// declared `GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY [(options)]`.
pub fn identity(generated_as: &datafusion::sql::sqlparser::ast::GeneratedAs) -> Result<Identity> {
    use datafusion::sql::sqlparser::ast::GeneratedAs;
    match generated_as {
        GeneratedAs::Always => Ok(Identity::Always),
        GeneratedAs::ByDefault => Ok(Identity::ByDefault),
        GeneratedAs::ExpStored => Err(Error::not_supported("generated columns")),
    }
}

/// A sequence read as a relation: one row, `last_value`, `log_cnt`,
/// `is_called`, as PostgreSQL shows it.
pub async fn as_relation(
    session: &Session,
    def: &SequenceDef,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    use datafusion::arrow::array::{BooleanArray, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType as A, Field, Schema};
    let position = session.engine.sequences().position(def).await?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("last_value", A::Int64, false),
        Field::new("log_cnt", A::Int64, false),
        Field::new("is_called", A::Boolean, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![position.last.unwrap_or(def.start)])),
            Arc::new(Int64Array::from(vec![0])),
            Arc::new(BooleanArray::from(vec![
                position.last.is_some() && position.called,
            ])),
        ],
    )?;
    Ok(Arc::new(datafusion::datasource::MemTable::try_new(
        schema,
        vec![vec![batch]],
    )?))
}

/// `pg_catalog.pg_sequences`: every sequence with its options and where
/// it stands (`last_value` NULL before the first `nextval`), as of the
/// scan.
#[derive(Debug)]
pub struct PgSequences {
    catalog: Arc<crate::catalog::Catalog>,
    sequences: Arc<crate::write::sequences::Sequences>,
}

impl PgSequences {
    pub fn new(
        catalog: Arc<crate::catalog::Catalog>,
        sequences: Arc<crate::write::sequences::Sequences>,
    ) -> Self {
        PgSequences { catalog, sequences }
    }

    fn columns() -> datafusion::arrow::datatypes::SchemaRef {
        use datafusion::arrow::datatypes::{DataType as A, Field, Schema};
        let int = |n: &str| Field::new(n, A::Int64, false);
        Arc::new(Schema::new(vec![
            Field::new("schemaname", A::Utf8, false),
            Field::new("sequencename", A::Utf8, false),
            Field::new("sequenceowner", A::Utf8, false),
            Field::new("data_type", A::Utf8, false),
            int("start_value"),
            int("min_value"),
            int("max_value"),
            int("increment_by"),
            Field::new("cycle", A::Boolean, false),
            int("cache_size"),
            Field::new("last_value", A::Int64, true),
        ]))
    }
}

#[async_trait::async_trait]
impl datafusion::catalog::TableProvider for PgSequences {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        Self::columns()
    }
    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }
    async fn scan(
        &self,
        _state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        _filters: &[datafusion::logical_expr::Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        use datafusion::arrow::array::{
            ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray,
        };
        let snapshot = self.catalog.snapshot();
        let mut found: Vec<(&Object, &SequenceDef)> = snapshot
            .objects()
            .iter()
            .filter_map(|o| match &o.def {
                crate::catalog::Def::Sequence(d) => Some((o, d.as_ref())),
                _ => None,
            })
            .collect();
        found.sort_by(|a, b| (&a.0.schema, &a.0.name).cmp(&(&b.0.schema, &b.0.name)));
        let mut last = Vec::with_capacity(found.len());
        for (_, def) in &found {
            let p = self.sequences.position(def).await?;
            last.push(p.last.filter(|_| p.called));
        }
        let text = |f: &dyn Fn(&(&Object, &SequenceDef)) -> String| -> ArrayRef {
            Arc::new(found.iter().map(|x| Some(f(x))).collect::<StringArray>())
        };
        let int = |f: &dyn Fn(&SequenceDef) -> i64| -> ArrayRef {
            Arc::new(found.iter().map(|x| Some(f(x.1))).collect::<Int64Array>())
        };
        let columns: Vec<ArrayRef> = vec![
            text(&|x| x.0.schema.clone()),
            text(&|x| x.0.name.clone()),
            text(&|_| "postgres".to_string()),
            text(&|x| x.1.ty.name.clone()),
            int(&|d| d.start),
            int(&|d| d.min),
            int(&|d| d.max),
            int(&|d| d.increment),
            Arc::new(
                found
                    .iter()
                    .map(|x| Some(x.1.cycle))
                    .collect::<BooleanArray>(),
            ),
            int(&|d| d.cache),
            Arc::new(Int64Array::from(last)),
        ];
        let schema = Self::columns();
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let exec = datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema,
            projection.cloned(),
        )?;
        Ok(exec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::ast::{Expr, Value};

    fn n(v: i64) -> Expr {
        Expr::value(Value::Number(v.to_string(), false))
    }

    #[test]
    fn defaults_and_checks_follow_postgres() {
        let up = sequence_def(PgType::simple("integer"), &[], None).unwrap();
        assert_eq!(
            (up.start, up.min, up.max, up.increment),
            (1, 1, i64::from(i32::MAX), 1)
        );
        let down = sequence_def(
            PgType::simple("bigint"),
            &[SequenceOptions::IncrementBy(n(-2), true)],
            None,
        )
        .unwrap();
        assert_eq!((down.start, down.min, down.max), (-1, i64::MIN, -1));
        let refused = |options: &[SequenceOptions]| {
            sequence_def(PgType::simple("smallint"), options, None)
                .unwrap_err()
                .message
        };
        assert_eq!(
            refused(&[SequenceOptions::IncrementBy(n(0), false)]),
            "INCREMENT must not be zero"
        );
        assert_eq!(
            refused(&[SequenceOptions::MaxValue(Some(n(40000)))]),
            "MAXVALUE (40000) is out of range for sequence data type smallint"
        );
        assert_eq!(
            refused(&[
                SequenceOptions::MinValue(Some(n(5))),
                SequenceOptions::StartWith(n(1), false)
            ]),
            "START value (1) cannot be less than MINVALUE (5)"
        );
        assert!(sequence_type(&PgType::simple("text")).is_err());
    }

    #[test]
    fn altering_keeps_what_is_not_given_and_follows_a_new_type() {
        let small = sequence_def(
            PgType::simple("smallint"),
            &[SequenceOptions::StartWith(n(7), true)],
            None,
        )
        .unwrap();
        let wider = altered_def(&small, Some(PgType::simple("bigint")), &[]).unwrap();
        // The old type's limit moves to the new one's; other settings stay.
        assert_eq!((wider.min, wider.max, wider.start), (1, i64::MAX, 7));
        assert_eq!(wider.id, small.id);
        let capped = altered_def(&small, None, &[SequenceOptions::MaxValue(Some(n(100)))]).unwrap();
        let kept = altered_def(&capped, Some(PgType::simple("integer")), &[]).unwrap();
        assert_eq!(kept.max, 100);
        let down = altered_def(
            &small,
            None,
            &[
                SequenceOptions::IncrementBy(n(-1), true),
                SequenceOptions::MinValue(None),
                SequenceOptions::MaxValue(None),
                SequenceOptions::StartWith(n(-5), true),
            ],
        )
        .unwrap();
        assert_eq!((down.min, down.max), (i64::from(i16::MIN), -1));
        assert_eq!(
            altered_def(&small, None, &[SequenceOptions::MinValue(Some(n(8)))])
                .unwrap_err()
                .message,
            "START value (7) cannot be less than MINVALUE (8)"
        );
        assert!(check_restart(&small, 32767).is_ok());
        assert_eq!(
            check_restart(&small, 0).unwrap_err().message,
            "RESTART value (0) cannot be less than MINVALUE (1)"
        );
    }

    #[test]
    fn serial_types_stand_for_integers() {
        let custom = |n: &str| {
            DataType::Custom(
                ObjectName::from(vec![datafusion::sql::sqlparser::ast::Ident::new(n)]),
                vec![],
            )
        };
        assert_eq!(serial_type(&custom("BIGSERIAL")).unwrap().name, "bigint");
        assert_eq!(serial_type(&custom("serial4")).unwrap().name, "integer");
        assert_eq!(
            serial_type(&custom("smallserial")).unwrap().name,
            "smallint"
        );
        assert!(serial_type(&custom("serialx")).is_none());
        assert_eq!(
            nextval_default("Mart", "t_id_seq"),
            "nextval('\"Mart\".t_id_seq')"
        );
    }
}
