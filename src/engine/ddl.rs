//! CREATE / DROP / ALTER of schemas, tables and views.
//!
//! The catalog row is the source of truth: a table is created in the lake
//! first and registered second (a failed registration removes the new
//! files); a dropped table is unregistered first and its files removed after.

use datafusion::arrow::datatypes::Schema;
use datafusion::sql::sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableOperation, ColumnOption, CreateTable, CreateView,
    HiveDistributionStyle, Ident, ObjectName, ObjectType, RenameTableNameKind, SchemaName,
    Statement, TableConstraint,
};
use deltalake::DeltaTableBuilder;
use deltalake::protocol::SaveMode;

use super::{Output, Session, last_ident, normalize_ident};
use crate::catalog::{
    ColumnDef, Def, ExternalDef, Kind, Object, PgType, SYSTEM_SCHEMAS, TableDef, ViewDef,
};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::Expectation;
use crate::quality::expect::{Action as ExpectAction, ExpectDef};
use crate::quality::keys::ForeignKeyChecks;
use crate::quality::keys::{ForeignKeyDef, KeyDef};
use crate::quality::{self, CheckDef};

pub(super) fn duplicate_relation(name: &str) -> Error {
    Error::new(
        ErrorKind::DuplicateTable,
        format!("relation \"{name}\" already exists"),
    )
}

pub(super) fn duplicate_column(name: &str) -> Error {
    Error::new(
        ErrorKind::DuplicateColumn,
        format!("column \"{name}\" specified more than once"),
    )
}

/// 42701 for the first name `names` repeat (a relation's columns).
pub(super) fn unique_columns<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    match names.into_iter().find(|n| !seen.insert(*n)) {
        Some(n) => Err(duplicate_column(n)),
        None => Ok(()),
    }
}

pub(super) fn missing_schema(name: &str) -> Error {
    Error::new(
        ErrorKind::UndefinedSchema,
        format!("schema \"{name}\" does not exist"),
    )
}

pub async fn create_schema(
    session: &mut Session,
    name: &SchemaName,
    if_not_exists: bool,
) -> Result<Output> {
    let name = match name {
        SchemaName::Simple(n) | SchemaName::NamedAuthorization(n, _) => last_ident(n),
        SchemaName::UnnamedAuthorization(i) => normalize_ident(i),
    };
    if name.starts_with("pg_") || name.starts_with("__") {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("unacceptable schema name \"{name}\""),
        )
        .with_detail("The prefixes \"pg_\" and \"__\" are reserved for system schemas."));
    }
    let snap = session.engine.catalog.snapshot();
    if snap.schema_exists(&name) {
        if if_not_exists {
            session.notice(format!("schema \"{name}\" already exists, skipping"));
            return Ok(Output::command("CREATE SCHEMA"));
        }
        return Err(Error::new(
            ErrorKind::DuplicateSchema,
            format!("schema \"{name}\" already exists"),
        ));
    }
    let n = name.clone();
    let created = session
        .engine
        .catalog
        .mutate(move |entries| {
            if entries
                .iter()
                .any(|e| e.kind() == Kind::Schema && e.name == n)
            {
                return Err(Error::new(
                    ErrorKind::DuplicateSchema,
                    format!("schema \"{n}\" already exists"),
                ));
            }
            entries.push(Object::schema(&n));
            Ok(())
        })
        .await;
    match created {
        // Created by a concurrent statement since this one looked.
        Err(e) if if_not_exists && e.kind == ErrorKind::DuplicateSchema => {
            session.notice(format!("schema \"{name}\" already exists, skipping"));
        }
        other => {
            other?;
        }
    }
    Ok(Output::command("CREATE SCHEMA"))
}

/// The columns and constraints a CREATE TABLE declares (location and
/// partitioning are the caller's).
/// Refuse, before anything is stored, a column default that could never
/// be computed: one that reads a column (0A000, as in PostgreSQL), names
/// a function that does not exist (42883), or is a constant the column's
/// type cannot hold (`DEFAULT 'abc'` of an integer, 22P02). The default is
/// planned as `CAST((default) AS type)` and simplified, never run: a
/// `nextval` stays unspent.
async fn check_defaults(session: &Session, columns: &[ColumnDef]) -> Result<()> {
    for c in columns {
        let Some(text) = &c.default else { continue };
        let expr = datafusion::sql::sqlparser::parser::Parser::new(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
        )
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| Error::syntax(format!("the default of column \"{}\": {e}", c.name)))?;
        let reads_column = crate::visit::visit_expressions(&expr, |x| {
            if matches!(
                x,
                datafusion::sql::sqlparser::ast::Expr::Identifier(_)
                    | datafusion::sql::sqlparser::ast::Expr::CompoundIdentifier(_)
            ) {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .is_break();
        if reads_column {
            return Err(Error::new(
                ErrorKind::FeatureNotSupported,
                "cannot use column reference in DEFAULT expression",
            ));
        }
        // Through the frontend's rewrites, as an INSERT plans its defaults
        // (`'{}'::jsonb`, `nextval('s')`).
        let sql = format!("SELECT CAST(({text}) AS {})", c.ty.display());
        if let Some(crate::frontend::Stmt::Sql(stmt)) = session.parse(&sql)?.pop() {
            let plan = session.plan(*stmt).await?;
            session.context().state().optimize(&plan)?;
        }
    }
    Ok(())
}

/// The columns `CREATE TABLE t (LIKE s)` takes from `s`: names, types
/// and NOT NULL, and defaults with `INCLUDING DEFAULTS` (as PostgreSQL;
/// keys, checks, identity and indexes are not taken).
fn like_columns(
    session: &Session,
    like: &datafusion::sql::sqlparser::ast::CreateTableLikeKind,
) -> Result<Vec<ColumnDef>> {
    use datafusion::sql::sqlparser::ast::{CreateTableLikeDefaults, CreateTableLikeKind};
    let (CreateTableLikeKind::Parenthesized(like) | CreateTableLikeKind::Plain(like)) = like;
    let (schema, name) = session.qualify(&like.name)?;
    let snap = session.engine.catalog.snapshot();
    let Some(source) = snap.relation(&schema, &name) else {
        return Err(Error::new(
            ErrorKind::UndefinedTable,
            format!("relation \"{}\" does not exist", like.name),
        ));
    };
    let Ok(def) = source.table_def() else {
        return Err(Error::not_supported(format!(
            "CREATE TABLE (LIKE {}) of a relation that is not a table",
            like.name
        )));
    };
    let defaults = like.defaults == Some(CreateTableLikeDefaults::Including);
    Ok(def
        .columns
        .iter()
        .map(|c| ColumnDef {
            name: c.name.clone(),
            ty: c.ty.clone(),
            not_null: c.not_null,
            default: if defaults && c.identity.is_none() {
                c.default.clone()
            } else {
                None
            },
            identity: None,
            generated: None,
        })
        .collect())
}

fn columns_from_sql(
    session: &Session,
    ct: &CreateTable,
    expectations: &[Expectation],
    table: &str,
) -> Result<(TableDef, Vec<Object>)> {
    use super::sequences::ColumnSequence;
    // Serial and identity columns, whose sequences are created with the table.
    let mut sequences: Vec<ColumnSequence> = Vec::new();
    // (explicit name, columns, primary) in declaration order.
    let mut keys: Vec<(Option<String>, Vec<String>, bool)> = Vec::new();
    let mut references: Vec<(
        datafusion::sql::sqlparser::ast::ForeignKeyConstraint,
        Vec<String>,
    )> = Vec::new();
    let mut cols: Vec<ColumnDef> = Vec::new();
    // (explicit name, condition) in declaration order; named at the end,
    // when every column is known.
    let mut checks: Vec<(Option<String>, String, Option<String>)> = Vec::new();
    if let Some(like) = &ct.like {
        cols = like_columns(session, like)?;
    }
    for c in &ct.columns {
        let name = normalize_ident(&c.name);
        if cols.iter().any(|x| x.name == name) {
            return Err(duplicate_column(&name));
        }
        let serial = super::sequences::serial_type(&c.data_type);
        let mut def = ColumnDef {
            name,
            ty: match &serial {
                Some(t) => t.clone(),
                None => PgType::from_sql(&c.data_type)?,
            },
            not_null: serial.is_some(),
            default: None,
            identity: None,
            generated: None,
        };
        if let Some(ty) = serial {
            sequences.push(ColumnSequence {
                column: def.name.clone(),
                ty,
                options: vec![],
            });
        }
        for opt in &c.options {
            match &opt.option {
                ColumnOption::NotNull => def.not_null = true,
                ColumnOption::Null => def.not_null = false,
                ColumnOption::Default(e) => {
                    def.default = Some(stored_default(session, e.clone())?);
                }
                ColumnOption::Generated {
                    generated_as: datafusion::sql::sqlparser::ast::GeneratedAs::ExpStored,
                    generation_expr: Some(e),
                    generation_expr_mode:
                        Some(datafusion::sql::sqlparser::ast::GeneratedExpressionMode::Stored),
                    ..
                } => {
                    def.generated = Some(super::generated_columns::stored(session, e)?);
                }
                ColumnOption::Generated {
                    generation_expr: Some(_),
                    ..
                } => {
                    return Err(Error::syntax(format!(
                        "column \"{}\": a generated column is written GENERATED ALWAYS AS \
                         (expression) STORED",
                        def.name
                    )));
                }
                ColumnOption::Generated {
                    generated_as,
                    sequence_options,
                    generation_expr: None,
                    ..
                } => {
                    let identity = super::sequences::identity(generated_as)?;
                    if def.identity.is_some() || sequences.iter().any(|s| s.column == def.name) {
                        return Err(Error::syntax(format!(
                            "multiple identity specifications for column \"{}\" of table \"{table}\"",
                            def.name
                        )));
                    }
                    let ty = super::sequences::sequence_type(&def.ty).map_err(|_| {
                        Error::new(
                            ErrorKind::InvalidParameter,
                            "identity column type must be smallint, integer, or bigint",
                        )
                    })?;
                    def.identity = Some(identity);
                    def.not_null = true;
                    sequences.push(ColumnSequence {
                        column: def.name.clone(),
                        ty,
                        options: sequence_options.clone().unwrap_or_default(),
                    });
                }
                ColumnOption::Check(check) => {
                    let name = opt.name.as_ref().or(check.name.as_ref());
                    checks.push((
                        name.map(normalize_ident),
                        check.expr.to_string(),
                        Some(def.name.clone()),
                    ));
                }
                ColumnOption::PrimaryKey(pk) => {
                    let name = opt.name.as_ref().or(pk.name.as_ref());
                    keys.push((name.map(normalize_ident), vec![def.name.clone()], true));
                }
                ColumnOption::Unique(u) => {
                    let name = opt.name.as_ref().or(u.name.as_ref());
                    keys.push((name.map(normalize_ident), vec![def.name.clone()], false));
                }
                ColumnOption::ForeignKey(fk) => {
                    let mut fk = fk.clone();
                    if fk.name.is_none() {
                        fk.name = opt.name.clone();
                    }
                    references.push((fk, vec![def.name.clone()]));
                }
                other => {
                    return Err(Error::not_supported(format!("column constraint {other}")));
                }
            }
        }
        if def.generated.is_some() {
            let both = if def.default.is_some() {
                Some("default")
            } else if def.identity.is_some() || sequences.iter().any(|s| s.column == def.name) {
                Some("identity")
            } else {
                None
            };
            if let Some(both) = both {
                return Err(Error::syntax(format!(
                    "both {both} and generation expression specified for column \"{}\" of table \"{table}\"",
                    def.name
                )));
            }
        }
        cols.push(def);
    }
    for constraint in &ct.constraints {
        match constraint {
            TableConstraint::Check(check) => {
                checks.push((
                    check.name.as_ref().map(normalize_ident),
                    check.expr.to_string(),
                    None,
                ));
            }
            TableConstraint::PrimaryKey(pk) => {
                let cols = index_columns(&pk.columns)?;
                keys.push((pk.name.as_ref().map(normalize_ident), cols, true));
            }
            TableConstraint::Unique(u) => {
                let cols = index_columns(&u.columns)?;
                keys.push((u.name.as_ref().map(normalize_ident), cols, false));
            }
            TableConstraint::ForeignKey(fk) => {
                let cols = fk.columns.iter().map(normalize_ident).collect();
                references.push((fk.clone(), cols));
            }
            other => {
                return Err(Error::not_supported(format!(
                    "table constraint \"{other}\""
                )));
            }
        }
    }
    let mut def = TableDef {
        columns: cols,
        partition_by: vec![],
        location: String::new(),
        checks: vec![],
        keys: vec![],
        foreign_keys: vec![],
        expectations: vec![],
        indexes: vec![],
    };
    super::generated_columns::check(session, &def)?;
    for (name, columns, primary) in keys {
        let key = new_key(&def, table, name, columns, primary)?;
        add_key(&mut def, key);
    }
    for (name, expr, column) in checks {
        let check = new_check(session, &def, table, name, expr, column)?;
        def.checks.push(check);
    }
    for x in expectations {
        let e = new_expectation(
            session,
            &def,
            table,
            Some(x.name.clone()),
            x.condition.to_string(),
            x.action,
        )?;
        def.expectations.push(e);
    }
    let schema = session.qualify(&ct.name)?.0;
    for (fk, columns) in references {
        let f = new_foreign_key(session, &def, (&schema, table), &fk, columns)?;
        def.foreign_keys.push(f);
    }
    if let Some(c) = def
        .columns
        .iter()
        .find(|c| c.default.is_some() && sequences.iter().any(|s| s.column == c.name))
    {
        return Err(Error::syntax(format!(
            "multiple default values specified for column \"{}\" of table \"{table}\"",
            c.name
        )));
    }
    let sequences =
        super::sequences::column_sequences(session, &schema, table, &mut def.columns, sequences)?;
    Ok((def, sequences))
}

/// A PRIMARY KEY or UNIQUE constraint for `def`: its columns exist, at
/// most one primary key, PostgreSQL's name when none is given.
pub(super) fn new_key(
    def: &TableDef,
    table: &str,
    name: Option<String>,
    columns: Vec<String>,
    primary: bool,
) -> Result<KeyDef> {
    if let Some(c) = columns.iter().find(|c| def.column(c).is_none()) {
        return Err(Error::new(
            ErrorKind::UndefinedColumn,
            format!("column \"{c}\" named in key does not exist"),
        ));
    }
    if primary && def.keys.iter().any(|k| k.primary) {
        return Err(Error::new(
            ErrorKind::InvalidTableDefinition,
            format!("multiple primary keys for table \"{table}\" are not allowed"),
        ));
    }
    let taken = def.constraint_names();
    let name = match name {
        Some(n) if taken.contains(&n) => {
            return Err(Error::new(
                ErrorKind::DuplicateTable,
                format!("relation \"{n}\" already exists"),
            ));
        }
        Some(n) => n,
        None if primary => quality::default_name(table, None, "pkey", &taken),
        None => quality::default_name(table, Some(&columns.join("_")), "key", &taken),
    };
    Ok(KeyDef {
        name,
        columns,
        primary,
    })
}

/// Add `key` to `def`; a primary key's columns become NOT NULL.
pub(super) fn add_key(def: &mut TableDef, key: KeyDef) {
    if key.primary {
        for c in def
            .columns
            .iter_mut()
            .filter(|c| key.columns.contains(&c.name))
        {
            c.not_null = true;
        }
    }
    def.keys.push(key);
}

/// A FOREIGN KEY of `table` (whose own keys are `own_keys`, for a
/// reference to itself): the parent must exist and the referenced
/// columns (its primary key when not listed) must be one of its keys.
fn new_foreign_key(
    session: &Session,
    def: &TableDef,
    table: (&str, &str),
    fk: &datafusion::sql::sqlparser::ast::ForeignKeyConstraint,
    columns: Vec<String>,
) -> Result<ForeignKeyDef> {
    use datafusion::sql::sqlparser::ast::ReferentialAction;
    if let Some(c) = columns.iter().find(|c| def.column(c).is_none()) {
        return Err(Error::new(
            ErrorKind::UndefinedColumn,
            format!("column \"{c}\" referenced in foreign key constraint does not exist"),
        ));
    }
    let taken = def.constraint_names();
    let (parent_schema, parent_table) = session.qualify(&fk.foreign_table)?;
    let parent_keys: Vec<KeyDef> = if (parent_schema.as_str(), parent_table.as_str()) == table {
        def.keys.clone()
    } else {
        let entry = session
            .catalog_entry(&parent_schema, &parent_table)
            .filter(|e| e.kind() == Kind::Table)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedTable,
                    format!("relation \"{parent_table}\" does not exist"),
                )
            })?;
        entry.table_def()?.keys.clone()
    };
    let mut parent_columns: Vec<String> = fk.referred_columns.iter().map(normalize_ident).collect();
    if parent_columns.is_empty() {
        parent_columns = parent_keys
            .iter()
            .find(|k| k.primary)
            .map(|k| k.columns.clone())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidForeignKey,
                    format!("there is no primary key for referenced table \"{parent_table}\""),
                )
            })?;
    }
    if parent_columns.len() != columns.len() {
        return Err(Error::new(
            ErrorKind::InvalidForeignKey,
            "number of referencing and referenced columns for foreign key disagree",
        ));
    }
    if !parent_keys.iter().any(|k| k.is_on(&parent_columns)) {
        return Err(Error::new(
            ErrorKind::InvalidForeignKey,
            format!(
                "there is no unique constraint matching given keys for referenced table \"{parent_table}\""
            ),
        ));
    }
    use quality::keys::SetOnDelete;
    let (cascade, on_delete_set) = match fk.on_delete {
        None | Some(ReferentialAction::NoAction) | Some(ReferentialAction::Restrict) => {
            (false, None)
        }
        Some(ReferentialAction::Cascade) => (true, None),
        Some(ReferentialAction::SetNull) => (false, Some(SetOnDelete::Null)),
        Some(ReferentialAction::SetDefault) => (false, Some(SetOnDelete::Default)),
    };
    if fk
        .on_update
        .is_some_and(|a| !matches!(a, ReferentialAction::NoAction | ReferentialAction::Restrict))
    {
        return Err(Error::not_supported(
            "ON UPDATE actions other than NO ACTION",
        ));
    }
    let name = match fk.name.as_ref().map(normalize_ident) {
        Some(n) if taken.contains(&n) => {
            return Err(Error::new(
                ErrorKind::DuplicateObject,
                format!(
                    "constraint \"{n}\" for relation \"{}\" already exists",
                    table.1
                ),
            ));
        }
        Some(n) => n,
        None => quality::default_name(table.1, Some(&columns.join("_")), "fkey", &taken),
    };
    Ok(ForeignKeyDef {
        name,
        columns,
        parent_schema,
        parent_table,
        parent_columns,
        cascade,
        on_delete_set,
    })
}

/// Does a CREATE TABLE give column types or constraints (not just names)?
fn declares_columns(ct: &CreateTable) -> bool {
    !ct.constraints.is_empty()
        || ct.columns.iter().any(|c| {
            !matches!(
                c.data_type,
                datafusion::sql::sqlparser::ast::DataType::Unspecified
            ) || !c.options.is_empty()
        })
}

/// `CREATE TABLE t (column type [rules], ...) AS query`: the table is
/// created with its columns and rules, then the query's rows go in through
/// INSERT, which enforces every rule. When they break one, the table is
/// dropped again and the error returned: the statement leaves nothing.
async fn create_table_with_rules_as(
    session: &mut Session,
    mut ct: CreateTable,
    expectations: Vec<Expectation>,
) -> Result<Output> {
    let query = ct.query.take().expect("checked by the caller");
    let name = ct.name.clone();
    Box::pin(create_table(session, ct, expectations)).await?;
    // The query's rows go in through the write path, with every rule.
    let filled = async {
        let (schema, table, def) = session.resolve_table(&name)?;
        let plan = session.plan(Statement::Query(query)).await?;
        let width = plan.schema().fields().len();
        if width > def.columns.len() {
            return Err(Error::syntax(
                "INSERT has more expressions than target columns",
            ));
        }
        let columns = def.column_names()[..width].to_vec();
        let wc = session.write_context();
        let target = crate::write::Target::open(&wc, &schema, &table, def, None).await?;
        let df = session.context().execute_logical_plan(plan).await?;
        crate::write::Append::new(&wc, &target)
            .columns(columns)
            .run(df)
            .await
    };
    match filled.await {
        Ok(outcome) => Ok(Output::count("SELECT", outcome.rows)),
        Err(e) => {
            // The quarantine table came with it (if any rule quarantines).
            let (schema, table) = session.qualify(&name)?;
            let quarantine = ObjectName::from(vec![
                Ident::new(schema),
                Ident::new(crate::quality::expect::quarantine_table(&table)),
            ]);
            let _ = Box::pin(drop(
                session,
                ObjectType::Table,
                true,
                vec![name, quarantine],
                false,
            ))
            .await;
            session.notices.clear();
            Err(e)
        }
    }
}

/// An expectation for `def`, its condition planned over the columns.
pub(super) fn new_expectation(
    session: &Session,
    def: &TableDef,
    table: &str,
    name: Option<String>,
    expr: String,
    action: ExpectAction,
) -> Result<ExpectDef> {
    let Some(name) = name else {
        return Err(Error::syntax(
            "an expectation needs a name: CONSTRAINT name EXPECT (...)",
        ));
    };
    if def.constraint_names().contains(&name) {
        return Err(Error::new(
            ErrorKind::DuplicateObject,
            format!("constraint \"{name}\" for relation \"{table}\" already exists"),
        ));
    }
    let schema = datafusion::common::DFSchema::try_from(def.arrow_schema().as_ref().clone())?;
    let probe = CheckDef {
        name: name.clone(),
        expr: expr.clone(),
    };
    quality::plan_check(&session.ctx, &probe, &schema)?;
    Ok(ExpectDef { name, expr, action })
}

/// Create `<table>__quarantine` when `def` quarantines rows and it does
/// not exist yet: the table's columns (nullable, no rules) plus the rules
/// a row broke and when.
/// A column of a table as its quarantine table has it: the type alone,
/// nullable, without default or identity (it keeps the rows a rule refused).
pub(super) fn quarantine_column(c: &ColumnDef) -> ColumnDef {
    ColumnDef {
        not_null: false,
        default: None,
        identity: None,
        generated: None,
        ..c.clone()
    }
}

pub(crate) async fn ensure_quarantine(
    session: &Session,
    schema: &str,
    table: &str,
    def: &TableDef,
) -> Result<()> {
    use crate::quality::expect::{BROKEN_RULES, QUARANTINED_AT, quarantine_table, quarantines};
    if !quarantines(def) {
        return Ok(());
    }
    let name = quarantine_table(table);
    if session.catalog_entry(schema, &name).is_some() {
        return Ok(());
    }
    let mut columns: Vec<ColumnDef> = def.columns.iter().map(quarantine_column).collect();
    columns.push(ColumnDef {
        name: BROKEN_RULES.into(),
        ty: PgType::from_sql(&datafusion::sql::sqlparser::ast::DataType::Array(
            datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(
                Box::new(datafusion::sql::sqlparser::ast::DataType::Text),
                None,
            ),
        ))?,
        not_null: false,
        default: None,
        identity: None,
        generated: None,
    });
    columns.push(ColumnDef {
        name: QUARANTINED_AT.into(),
        ty: PgType::from_sql(&datafusion::sql::sqlparser::ast::DataType::Timestamp(
            None,
            datafusion::sql::sqlparser::ast::TimezoneInfo::WithTimeZone,
        ))?,
        not_null: false,
        default: None,
        identity: None,
        generated: None,
    });
    let qdef = TableDef {
        columns,
        partition_by: vec![],
        location: free_location(session, schema, &name),
        checks: vec![],
        keys: vec![],
        foreign_keys: vec![],
        expectations: vec![],
        indexes: vec![],
    };
    let lake = session.engine.lake().clone();
    let url = lake.url_for(&qdef.location)?;
    if !lake.exists(&url).await? {
        let arrow: Schema = qdef.arrow_schema().as_ref().clone();
        if let Err(e) = lake.create(&url, &arrow, &[], &name).await
            && !created_elsewhere(&lake, &url).await
        {
            return Err(e);
        }
    }
    let entry = Object::table(schema, &name, qdef.clone());
    session
        .engine
        .catalog
        .mutate(move |entries| {
            if !entries.iter().any(|e| {
                e.kind() != Kind::Schema && e.schema == entry.schema && e.name == entry.name
            }) {
                entries.push(entry.clone());
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// The plain column names of a key's column list.
pub(super) fn index_columns(
    columns: &[datafusion::sql::sqlparser::ast::IndexColumn],
) -> Result<Vec<String>> {
    columns
        .iter()
        .map(|c| match &c.column.expr {
            datafusion::sql::sqlparser::ast::Expr::Identifier(id) => Ok(normalize_ident(id)),
            other => Err(Error::not_supported(format!(
                "a key on the expression {other}"
            ))),
        })
        .collect()
}

/// A CHECK constraint for `def`: the condition planned over its columns
/// (an unknown column fails here, not at the first write), named as
/// PostgreSQL would when no name is given: after `column` for a column
/// constraint, else after the one column the condition names, if one.
fn new_check(
    session: &Session,
    def: &TableDef,
    table: &str,
    name: Option<String>,
    expr: String,
    column: Option<String>,
) -> Result<CheckDef> {
    let taken = def.constraint_names();
    let schema = datafusion::common::DFSchema::try_from(def.arrow_schema().as_ref().clone())?;
    let probe = CheckDef {
        name: name.clone().unwrap_or_else(|| "check".into()),
        expr,
    };
    let planned = quality::plan_check(&session.ctx, &probe, &schema)?;
    let name = match name {
        Some(n) if taken.contains(&n) => {
            return Err(Error::new(
                ErrorKind::DuplicateObject,
                format!("constraint \"{n}\" for relation \"{table}\" already exists"),
            ));
        }
        Some(n) => n,
        None => {
            let column = column.or_else(|| quality::only_column(&planned));
            quality::default_name(table, column.as_deref(), "check", &taken)
        }
    };
    Ok(CheckDef {
        name,
        expr: probe.expr,
    })
}

fn partition_columns(ct: &CreateTable, cols: &[ColumnDef]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if let HiveDistributionStyle::PARTITIONED { columns } = &ct.hive_distribution {
        for c in columns {
            let n = normalize_ident(&c.name);
            if !cols.iter().any(|x| x.name == n) {
                return Err(Error::new(
                    ErrorKind::UndefinedColumn,
                    format!("partition column \"{n}\" is not a column of the table"),
                ));
            }
            out.push(n);
        }
    }
    if ct.partition_by.is_some() {
        return Err(Error::not_supported(
            "PARTITION BY (use PARTITIONED BY (column, ...))",
        ));
    }
    Ok(out)
}

/// After a failed create: did a concurrent CREATE (on this or another
/// server) make the Delta table at `url` after this one checked the
/// catalog? Its first commit may still be on its way, so look twice.
async fn created_elsewhere(lake: &crate::lake::Lake, url: &url::Url) -> bool {
    for wait in [0, 200] {
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        if lake.exists(url).await.unwrap_or(false) {
            return true;
        }
    }
    false
}

pub async fn create_table(
    session: &mut Session,
    ct: CreateTable,
    expectations: Vec<Expectation>,
) -> Result<Output> {
    if ct.external {
        return Err(Error::not_supported("CREATE EXTERNAL TABLE"));
    }
    let (schema, table) = session.qualify(&ct.name)?;
    let snap = session.engine.catalog.snapshot();
    if !snap.schema_exists(&schema) || SYSTEM_SCHEMAS.contains(&schema.as_str()) {
        return Err(missing_schema(&schema));
    }
    if let Some(existing) = snap.relation(&schema, &table) {
        if ct.or_replace {
            let existing = existing.clone();
            return replace_table_as(session, ct, existing).await;
        }
        if ct.if_not_exists {
            session.notice(format!("relation \"{table}\" already exists, skipping"));
            return Ok(Output::command(if ct.query.is_some() {
                "CREATE TABLE AS"
            } else {
                "CREATE TABLE"
            }));
        }
        return Err(duplicate_relation(&table));
    }
    let location = free_location(session, &schema, &table);
    let lake = session.engine.lake().clone();
    let url = lake.url_for(&location)?;
    if lake.exists(&url).await? {
        // Left behind by a DROP that did not finish: the catalog says the
        // name is free, so the files belong to no table.
        lake.remove_all(&url).await?;
    }

    if ct.query.is_some() && (declares_columns(&ct) || !expectations.is_empty()) {
        return create_table_with_rules_as(session, ct, expectations).await;
    }
    // Training sets it reads, and the table versions its query read.
    let mut training = (vec![], None);
    // The sequences of its serial and identity columns.
    let mut owned = Vec::new();
    let (def, rows) = if let Some(query) = &ct.query {
        let (def, df) = table_as(session, &ct, query, &location).await?;
        let calls = crate::features::training::calls(query);
        if !calls.is_empty() {
            training = (calls, super::pinned_snapshots(df.logical_plan()));
        }
        let df = cast_to_columns(df, &def)?;
        let written = write_new_table(session, &url, df, &def).await;
        match written {
            Ok(outcome) => (def, Some(outcome.rows)),
            Err(e) => {
                // Another server created it first: its files are not ours.
                if created_elsewhere(&lake, &url).await {
                    return Err(duplicate_relation(&table));
                }
                // A query that failed half-way may have written data files
                // that no commit references; they belong to no table.
                let _ = lake.remove_all(&url).await;
                return Err(e);
            }
        }
    } else {
        let (mut def, sequences) = columns_from_sql(session, &ct, &expectations, &table)?;
        check_defaults(session, &def.columns).await?;
        owned = sequences;
        def.partition_by = partition_columns(&ct, &def.columns)?;
        def.location = location.clone();
        let arrow: Schema = def.arrow_schema().as_ref().clone();
        let mut checks: Vec<(String, String)> = Vec::new();
        for c in &def.checks {
            if let Some(sql) = delta_constraint(c, &arrow).await {
                checks.push((c.name.clone(), sql));
            }
        }
        if let Err(e) = lake
            .create_with_checks(&url, &arrow, &def.partition_by, &table, &checks)
            .await
        {
            if created_elsewhere(&lake, &url).await {
                return Err(duplicate_relation(&table));
            }
            return Err(e);
        }
        (def, None)
    };

    let mut objects = vec![Object::table(&schema, &table, def.clone())];
    objects.extend(owned);
    let registered = register_all(session, objects).await;
    if let Err(e) = registered {
        let _ = lake.remove_all(&url).await;
        return Err(e);
    }
    ensure_quarantine(session, &schema, &table, &def).await?;
    if !training.0.is_empty() {
        record_training_sets(session, &schema, &table, training.0, training.1).await?;
    }
    Ok(match rows {
        Some(n) => Output::count("SELECT", n),
        None => Output::command("CREATE TABLE"),
    })
}

/// A row of `sluice.training_sets` per `training_set` call of a table
/// just created: the feature views it read, at the versions read.
async fn record_training_sets(
    session: &Session,
    schema: &str,
    table: &str,
    calls: Vec<crate::features::training::Call>,
    read: Option<Vec<(url::Url, Option<u64>)>>,
) -> Result<()> {
    use datafusion::arrow::array::{StringArray, TimestampMicrosecondArray};
    let lake = session.engine.lake();
    let snapshot = session.engine.catalog().snapshot();
    let read = read.unwrap_or_default();
    let mut versions = Vec::new();
    for o in snapshot.objects() {
        if let (Some(_), Some(stored)) = (o.feature(), o.stored())
            && let Ok(url) = lake.url_for(&stored.location)
            && let Some((_, Some(v))) = read.iter().find(|(u, _)| {
                u.as_str().trim_end_matches('/') == url.as_str().trim_end_matches('/')
            })
        {
            versions.push(format!("{}.{}@{v}", o.schema, o.name));
        }
    }
    let versions = versions.join(", ");
    let n = calls.len();
    let now = chrono::Utc::now().timestamp_micros();
    let batch = datafusion::arrow::array::RecordBatch::try_new(
        crate::catalog::system::training_sets_schema(),
        vec![
            std::sync::Arc::new(StringArray::from(vec![schema; n])),
            std::sync::Arc::new(StringArray::from(vec![table; n])),
            std::sync::Arc::new(StringArray::from_iter_values(
                calls.iter().map(|c| c.service.as_str()),
            )),
            std::sync::Arc::new(StringArray::from_iter_values(
                calls.iter().map(|c| c.labels.as_str()),
            )),
            std::sync::Arc::new(StringArray::from_iter(
                calls.iter().map(|c| c.as_of.as_deref()),
            )),
            std::sync::Arc::new(StringArray::from(vec![versions.as_str(); n])),
            std::sync::Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
        ],
    )?;
    crate::write::write_system_table(lake, &crate::catalog::system::TRAINING_SETS, batch, false)
        .await
}

/// The definition of the table `CREATE TABLE … AS query` makes at
/// `location` (columns named and typed by the query), and the query.
async fn table_as(
    session: &Session,
    ct: &CreateTable,
    query: &datafusion::sql::sqlparser::ast::Query,
    location: &str,
) -> Result<(TableDef, datafusion::dataframe::DataFrame)> {
    let plan = session
        .plan(Statement::Query(Box::new(query.clone())))
        .await?;
    let output = session.output_schema(&plan)?;
    let declared = session.declared_types(&plan, output.as_arrow());
    let df = session.ctx.execute_logical_plan(plan).await?;
    // Columns named as PostgreSQL names them (`count(*)` is `count`).
    let named = crate::engine::names::pg_result_names(
        &Statement::Query(Box::new(query.clone())),
        output.as_arrow(),
    );
    let output = named.unwrap_or_else(|| std::sync::Arc::new(output.as_arrow().clone()));
    if ct.columns.len() > output.fields().len() {
        return Err(Error::syntax(
            "CREATE TABLE AS specifies too many column names",
        ));
    }
    let mut cols: Vec<ColumnDef> = Vec::new();
    for (i, f) in output.fields().iter().enumerate() {
        let name = match ct.columns.get(i) {
            Some(c) => normalize_ident(&c.name),
            None => f.name().clone(),
        };
        if cols.iter().any(|c| c.name == name) {
            return Err(duplicate_column(&name));
        }
        cols.push(ColumnDef {
            name,
            ty: declared[i]
                .clone()
                .unwrap_or_else(|| PgType::from_arrow(f.data_type())),
            not_null: false,
            default: None,
            identity: None,
            generated: None,
        });
    }
    let def = TableDef {
        partition_by: partition_columns(ct, &cols)?,
        columns: cols,
        location: location.to_string(),
        checks: vec![],
        keys: vec![],
        foreign_keys: vec![],
        expectations: vec![],
        indexes: vec![],
    };
    Ok((def, df))
}

/// The rows of `df` as a new Delta table at `url` (one commit).
async fn write_new_table(
    session: &Session,
    url: &url::Url,
    df: datafusion::dataframe::DataFrame,
    def: &TableDef,
) -> Result<crate::write::Outcome> {
    let fresh = DeltaTableBuilder::from_url(url.clone())?.build()?;
    crate::write::write_plan(
        session.context().state(),
        session.engine.lake().clone(),
        fresh,
        df.into_unoptimized_plan(),
        SaveMode::ErrorIfExists,
        crate::write::WriteOptions {
            partition_by: def.partition_by.clone(),
            unique_columns: def.unique_columns(),
            ..Default::default()
        },
    )
    .await
}

/// `CREATE OR REPLACE TABLE t AS query` on an existing table: its rows
/// and columns become the query's, atomically for readers. When the
/// columns stay the same and the table has no rules, the rows are
/// overwritten in one Delta commit (history and time travel are kept);
/// otherwise the new table is written beside the old one and the catalog
/// switches to it in one commit.
async fn replace_table_as(
    session: &mut Session,
    ct: CreateTable,
    existing: Object,
) -> Result<Output> {
    let (schema, table) = (existing.schema.clone(), existing.name.clone());
    let Some(query) = ct.query.clone() else {
        return Err(Error::not_supported(
            "CREATE OR REPLACE TABLE with a column list (use CREATE OR REPLACE TABLE … AS query)",
        ));
    };
    let old = match &existing.def {
        crate::catalog::Def::Table(def) => def.clone(),
        _ => {
            return Err(Error::new(
                ErrorKind::WrongObjectType,
                format!("\"{table}\" is not a table"),
            ));
        }
    };
    let snap = session.engine.catalog.snapshot();
    if let Some((child, _)) = snap
        .referencing(&schema, &table)
        .iter()
        .find(|(child, _)| !(child.schema == schema && child.name == table))
    {
        return Err(Error::new(
            ErrorKind::DependentObjects,
            format!(
                "cannot replace table \"{table}\": a foreign key of table \"{}\" references it",
                child.name
            ),
        ));
    }
    let lake = session.engine.lake().clone();
    let (def, df) = table_as(session, &ct, &query, &old.location).await?;
    let df = cast_to_columns(df, &def)?;
    let same_shape = old.columns.len() == def.columns.len()
        && old
            .columns
            .iter()
            .zip(&def.columns)
            .all(|(a, b)| a.name == b.name && a.ty == b.ty)
        && old.partition_by == def.partition_by
        && old.checks.is_empty()
        && old.keys.is_empty()
        && old.foreign_keys.is_empty()
        && old.expectations.is_empty()
        && old
            .columns
            .iter()
            .all(|c| !c.not_null && c.default.is_none());
    if same_shape {
        let url = lake.url_for(&old.location)?;
        let current = lake.table(&url).await?;
        let outcome = crate::write::write_plan(
            session.context().state(),
            lake.clone(),
            current,
            df.into_unoptimized_plan(),
            SaveMode::Overwrite,
            Default::default(),
        )
        .await?;
        return Ok(Output::count("SELECT", outcome.rows));
    }
    // A new folder, then one catalog commit points the name at it.
    let location = free_location(session, &schema, &table);
    let url = lake.url_for(&location)?;
    if lake.exists(&url).await? {
        lake.remove_all(&url).await?;
    }
    let def = TableDef {
        location: location.clone(),
        ..def
    };
    let written = write_new_table(session, &url, df, &def).await;
    let rows = match written {
        Ok(outcome) => outcome.rows,
        Err(e) => {
            let _ = lake.remove_all(&url).await;
            return Err(e);
        }
    };
    let entry = Object::table(&schema, &table, def);
    let old_location = old.location.clone();
    let swapped = session
        .engine
        .catalog
        .mutate(move |entries| {
            let Some(e) = entries.iter_mut().find(|e| {
                e.kind() == Kind::Table
                    && e.schema == entry.schema
                    && e.name == entry.name
                    && e.stored().map(|d| d.location.as_str()) == Some(old_location.as_str())
            }) else {
                return Err(Error::new(
                    ErrorKind::SerializationFailure,
                    format!(
                        "table \"{}\" was changed by another statement while it was being replaced",
                        entry.name
                    ),
                ));
            };
            *e = entry.clone();
            Ok(())
        })
        .await;
    if let Err(e) = swapped {
        let _ = lake.remove_all(&url).await;
        return Err(e);
    }
    remove_table_files(session, std::slice::from_ref(&existing)).await;
    Ok(Output::count("SELECT", rows))
}

/// The query of `CREATE [MATERIALIZED] VIEW v (names) AS query`: the
/// names given after the view name rename the query's columns.
pub(super) fn query_with_column_names(
    cv: &CreateView,
) -> Result<Box<datafusion::sql::sqlparser::ast::Query>> {
    let mut query = cv.query.clone();
    if !cv.columns.is_empty() {
        // Column names given after the view name rename the query's
        // columns: `SELECT * FROM (query) AS v (names)`.
        let mut outer = crate::frontend::template::query("SELECT * FROM v", &[])?;
        if let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = outer.body.as_mut()
            && let Some(from) = select.from.first_mut()
        {
            from.relation = datafusion::sql::sqlparser::ast::TableFactor::Derived {
                lateral: false,
                subquery: query,
                alias: Some(datafusion::sql::sqlparser::ast::TableAlias {
                    explicit: true,
                    name: Ident::new("v"),
                    columns: cv
                        .columns
                        .iter()
                        .map(|c| datafusion::sql::sqlparser::ast::TableAliasColumnDef {
                            name: c.name.clone(),
                            data_type: None,
                        })
                        .collect(),
                    at: None,
                }),
                sample: None,
            };
        }
        query = outer;
    }
    Ok(query)
}

pub async fn create_view(session: &mut Session, cv: CreateView) -> Result<Output> {
    if cv.materialized {
        return super::matview::create(session, cv, vec![], vec![], None, None).await;
    }
    let (schema, name) = session.qualify(&cv.name)?;
    let snap = session.engine.catalog.snapshot();
    if !snap.schema_exists(&schema) || SYSTEM_SCHEMAS.contains(&schema.as_str()) {
        return Err(missing_schema(&schema));
    }
    match snap.relation(&schema, &name) {
        Some(e) if e.kind() == Kind::View && cv.or_replace => {}
        Some(e) if e.kind() == Kind::View && cv.if_not_exists => {
            session.notice(format!("relation \"{name}\" already exists, skipping"));
            return Ok(Output::command("CREATE VIEW"));
        }
        Some(e) if e.kind() == Kind::Table && cv.or_replace => {
            return Err(Error::new(
                ErrorKind::WrongObjectType,
                format!("\"{name}\" is not a view"),
            ));
        }
        Some(_) => return Err(duplicate_relation(&name)),
        None => {}
    }
    let query = query_with_column_names(&cv)?;
    // The view keeps its query with every name resolved now, as
    // PostgreSQL does: a later search_path does not change what it reads.
    let mut stmt = Statement::Query(query);
    let depends_on = session.qualify_query(&mut stmt)?;
    // Plan it now so a view over a missing table fails at CREATE.
    let plan = session.plan(stmt.clone()).await?;
    let output = session.output_schema(&plan)?;
    let declared = session.declared_types(&plan, output.as_arrow());
    // Its columns are named as PostgreSQL names them, in the kept query too.
    let Statement::Query(mut query) = stmt else {
        unreachable!("built as a query")
    };
    let named =
        crate::engine::names::pg_result_names(&Statement::Query(query.clone()), output.as_arrow());
    crate::engine::names::alias_pg_names(&mut query, output.as_arrow());
    let columns = named
        .as_deref()
        .unwrap_or(output.as_arrow())
        .fields()
        .iter()
        .zip(output.fields())
        .zip(declared)
        .map(|((n, f), d)| {
            // A computed numeric is `numeric` without a modifier, as
            // PostgreSQL derives it (a column passed through keeps its own).
            let computed = || {
                let mut t = PgType::from_arrow(f.data_type());
                if t.name == "numeric" {
                    (t.length, t.scale) = (None, None);
                }
                t
            };
            ColumnDef::plain(n.name(), d.unwrap_or_else(computed))
        })
        .collect::<Vec<_>>();
    unique_columns(columns.iter().map(|c| c.name.as_str()))?;
    let entry = Object::view(
        &schema,
        &name,
        ViewDef {
            sql: query.to_string(),
            columns,
            depends_on: depends_on.into_iter().collect(),
        },
    );
    let replace = cv.or_replace;
    session
        .engine
        .catalog
        .mutate(move |entries| {
            if let Some(pos) = entries.iter().position(|e| {
                e.kind() != Kind::Schema && e.schema == entry.schema && e.name == entry.name
            }) {
                if !(replace && entries[pos].kind() == Kind::View) {
                    return Err(duplicate_relation(&entry.name));
                }
                entries.remove(pos);
            }
            entries.push(entry.clone());
            Ok(())
        })
        .await?;
    Ok(Output::command("CREATE VIEW"))
}

/// `CREATE EXTERNAL TABLE`: schema on read over files, read through
/// `read_csv` / `read_json` / `read_parquet` at every statement (new files
/// included); the table never owns the files.
pub async fn create_external_table(
    session: &mut Session,
    ext: crate::frontend::ExternalTable,
) -> Result<Output> {
    let crate::frontend::ExternalTable {
        name,
        if_not_exists,
        columns,
        format,
        location,
        options,
    } = ext;
    let (schema, table) = session.qualify(&name)?;
    let snap = session.engine.catalog.snapshot();
    if !snap.schema_exists(&schema) || SYSTEM_SCHEMAS.contains(&schema.as_str()) {
        return Err(missing_schema(&schema));
    }
    if snap.relation(&schema, &table).is_some() {
        if if_not_exists {
            session.notice(format!("relation \"{table}\" already exists, skipping"));
            return Ok(Output::command("CREATE EXTERNAL TABLE"));
        }
        return Err(duplicate_relation(&table));
    }
    if !matches!(format.as_str(), "csv" | "json" | "ndjson" | "parquet") {
        return Err(Error::not_supported(format!(
            "STORED AS {format} (csv, json or parquet)"
        )));
    }
    let mut normalized = Vec::new();
    for (k, v) in &options {
        let key = k.to_ascii_lowercase();
        let key = key.strip_prefix("format.").unwrap_or(&key);
        let key = match key {
            "has_header" => "header",
            k => k,
        };
        let value = match key {
            "header" => v.to_ascii_lowercase(),
            _ => v.clone(),
        };
        if key == "header" && !matches!(value.as_str(), "true" | "false") {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("option header must be true or false, not '{v}'"),
            ));
        }
        normalized.push((key.to_string(), value));
    }
    if columns.is_some() && format == "parquet" {
        return Err(Error::not_supported(
            "a column list for Parquet (the files carry their schema)",
        ));
    }
    let mut def = ExternalDef {
        format,
        location,
        options: normalized,
        columns,
        schema: vec![],
    };
    // Read it now: no files, a bad option or a bad column list fail here.
    let state = session.context().state();
    let provider = crate::ingest::files::external_table(&def, session.engine.lake(), &state)?;
    def.schema = provider
        .schema()
        .fields()
        .iter()
        .map(|f| ColumnDef::plain(f.name(), PgType::from_arrow(f.data_type())))
        .collect();
    register(session, Object::external(&schema, &table, def)).await?;
    Ok(Output::command("CREATE EXTERNAL TABLE"))
}

pub async fn drop(
    session: &mut Session,
    object_type: ObjectType,
    if_exists: bool,
    names: Vec<ObjectName>,
    cascade: bool,
) -> Result<Output> {
    match object_type {
        ObjectType::Schema => drop_schemas(session, if_exists, names, cascade).await,
        ObjectType::Index => super::indexes::drop_indexes(session, if_exists, names).await,
        ObjectType::Table
        | ObjectType::View
        | ObjectType::MaterializedView
        | ObjectType::Sequence => {
            let (want, tag) = match object_type {
                ObjectType::Table => (Kind::Table, "DROP TABLE"),
                ObjectType::View => (Kind::View, "DROP VIEW"),
                ObjectType::Sequence => (Kind::Sequence, "DROP SEQUENCE"),
                _ => (Kind::MaterializedView, "DROP MATERIALIZED VIEW"),
            };
            let mut victims = Vec::new();
            for n in &names {
                let (schema, name) = session.qualify(n)?;
                match session.catalog_entry(&schema, &name) {
                    Some(e) if e.kind() == want => victims.push(e),
                    // DROP TABLE drops an external table too.
                    Some(e) if want == Kind::Table && e.kind() == Kind::External => victims.push(e),
                    Some(_) => {
                        return Err(Error::new(
                            ErrorKind::WrongObjectType,
                            format!("\"{name}\" is not a {}", want.noun()),
                        ));
                    }
                    None if if_exists => session.notice(format!(
                        "{} \"{name}\" does not exist, skipping",
                        want.noun()
                    )),
                    None => {
                        return Err(Error::new(
                            ErrorKind::UndefinedTable,
                            format!("{} \"{name}\" does not exist", want.noun()),
                        ));
                    }
                }
            }
            if victims.is_empty() {
                return Ok(Output::command(tag));
            }
            let snap = session.engine.catalog.snapshot();
            // A table's quarantine table goes with it, as an index would,
            // whether a rule still quarantines or not: `<name>__quarantine`
            // with the quarantine's own columns.
            use crate::quality::expect::{BROKEN_RULES, QUARANTINED_AT, quarantine_table};
            let companions: Vec<Object> = victims
                .iter()
                .filter(|v| matches!(v.kind(), Kind::Table | Kind::MaterializedView))
                .filter_map(|v| snap.relation(&v.schema, &quarantine_table(&v.name)))
                .filter(|q| {
                    q.kind() == Kind::Table
                        && q.stored().is_some_and(|d| {
                            d.column(BROKEN_RULES).is_some() && d.column(QUARANTINED_AT).is_some()
                        })
                        && !victims.iter().any(|v| v.is_relation(&q.schema, &q.name))
                })
                .cloned()
                .collect();
            victims.extend(companions);
            // A table's serial and identity sequences go with it.
            let owned: Vec<Object> = victims
                .iter()
                .filter(|v| v.kind() == Kind::Table)
                .flat_map(|v| snap.owned_sequences(&v.schema, &v.name))
                .map(|(o, _, _)| o)
                .filter(|o| !victims.iter().any(|v| v.is_relation(&o.schema, &o.name)))
                .cloned()
                .collect();
            victims.extend(owned);
            // A column default that takes values from a sequence that goes:
            // refused, or the default goes too (CASCADE). An identity
            // column needs its sequence.
            let mut defaults_dropped: Vec<(String, String, String)> = Vec::new();
            for table in snap.of_kind(Kind::Table) {
                if victims
                    .iter()
                    .any(|v| v.is_relation(&table.schema, &table.name))
                {
                    continue;
                }
                for c in table.declared_columns() {
                    let Some((_, sequence)) =
                        c.default_sequences(&table.schema)
                            .into_iter()
                            .find(|(s, n)| {
                                victims
                                    .iter()
                                    .any(|v| v.kind() == Kind::Sequence && v.is_relation(s, n))
                            })
                    else {
                        continue;
                    };
                    let (schema, column, table) = (&table.schema, &c.name, &table.name);
                    if c.identity.is_some() {
                        return Err(Error::new(
                            ErrorKind::DependentObjects,
                            format!(
                                "cannot drop sequence {sequence} because column {column} of table {table} requires it"
                            ),
                        )
                        .with_hint(format!("You can drop column {column} of table {table} instead.")));
                    }
                    if !cascade {
                        return Err(Error::new(
                            ErrorKind::DependentObjects,
                            format!(
                                "cannot drop sequence {sequence} because other objects depend on it"
                            ),
                        )
                        .with_detail(format!(
                            "default value for column {column} of table {table} depends on sequence {sequence}"
                        ))
                        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
                    }
                    session.notice(format!(
                        "drop cascades to default value for column {column} of table {table}"
                    ));
                    defaults_dropped.push((schema.clone(), table.clone(), column.clone()));
                }
            }
            // Views that read what goes: refused, or dropped too (CASCADE).
            let mut i = 0;
            while i < victims.len() {
                let v = victims[i].clone();
                for d in snap.dependents(&v.schema, &v.name) {
                    if d.kind() == Kind::Table
                        || victims.iter().any(|x| x.is_relation(&d.schema, &d.name))
                    {
                        continue;
                    }
                    if !cascade {
                        return Err(Error::new(
                            ErrorKind::DependentObjects,
                            format!(
                                "cannot drop {} {} because other objects depend on it",
                                v.kind().noun(),
                                v.name
                            ),
                        )
                        .with_detail(format!(
                            "{} {} depends on {} {}",
                            d.kind().noun(),
                            d.name,
                            v.kind().noun(),
                            v.name
                        ))
                        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
                    }
                    session.notice(format!("drop cascades to {} {}", d.kind().noun(), d.name));
                    victims.push(d.clone());
                }
                i += 1;
            }
            let gone = victims.clone();
            session
                .engine
                .catalog
                .mutate(move |entries| {
                    entries.retain(|e| {
                        !gone.iter().any(|g| {
                            g.kind() == e.kind() && g.schema == e.schema && g.name == e.name
                        })
                    });
                    let dropped: Vec<(String, String)> = gone
                        .iter()
                        .filter(|g| g.kind() == Kind::Table)
                        .map(|g| (g.schema.clone(), g.name.clone()))
                        .collect();
                    for (schema, table, column) in &defaults_dropped {
                        if let Some(e) = entries.iter_mut().find(|e| {
                            e.kind() == Kind::Table && &e.schema == schema && &e.name == table
                        }) && let Some(c) = e
                            .table_def_mut()?
                            .columns
                            .iter_mut()
                            .find(|c| &c.name == column)
                        {
                            c.default = None;
                        }
                    }
                    drop_references(entries, &dropped, cascade)
                })
                .await?;
            remove_table_files(session, &victims).await;
            Ok(Output::command(tag))
        }
        other => Err(Error::not_supported(format!("DROP {other}"))),
    }
}

/// The foreign keys of the tables that remain in `entries` that point at
/// a `dropped` table: with CASCADE they go (as in PostgreSQL, the
/// referencing table stays), otherwise the drop fails with 2BP01.
fn drop_references(
    entries: &mut [Object],
    dropped: &[(String, String)],
    cascade: bool,
) -> Result<()> {
    for e in entries.iter_mut().filter(|e| e.kind() == Kind::Table) {
        let mut def = e.table_def()?.as_ref().clone();
        let points_at_dropped = |fk: &ForeignKeyDef| {
            dropped
                .iter()
                .any(|(s, t)| &fk.parent_schema == s && &fk.parent_table == t)
        };
        let Some(fk) = def.foreign_keys.iter().find(|fk| points_at_dropped(fk)) else {
            continue;
        };
        if !cascade {
            return Err(Error::new(
                ErrorKind::DependentObjects,
                format!(
                    "cannot drop table {} because other objects depend on it",
                    fk.parent_table
                ),
            )
            .with_detail(format!(
                "constraint {} on table {} depends on table {}",
                fk.name, e.name, fk.parent_table
            ))
            .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
        }
        def.foreign_keys.retain(|fk| !points_at_dropped(fk));
        *e.table_def_mut()? = def;
    }
    Ok(())
}

async fn remove_table_files(session: &Session, entries: &[Object]) {
    for e in entries.iter() {
        if let Some(def) = e.stored()
            && let Ok(url) = session.engine.lake().url_for(&def.location)
            && let Err(err) = session.engine.lake().remove_all(&url).await
        {
            tracing::warn!(
                "dropped table {}.{} but could not remove its files: {err}",
                e.schema,
                e.name
            );
        }
    }
}

/// A column default as it is stored: sequence names bound as PostgreSQL
/// binds a `regclass`, and a signed power parenthesized so that the text
/// reads back with its meaning.
pub(super) fn stored_default(
    session: &Session,
    mut e: datafusion::sql::sqlparser::ast::Expr,
) -> Result<String> {
    crate::frontend::compat::sequence_arguments(&mut e);
    crate::frontend::compat::signed_powers(&mut e);
    super::sequences::bind_default(session, &mut e)?;
    Ok(e.to_string())
}

async fn drop_schemas(
    session: &mut Session,
    if_exists: bool,
    names: Vec<ObjectName>,
    cascade: bool,
) -> Result<Output> {
    let snap = session.engine.catalog.snapshot();
    let mut schemas = Vec::new();
    for n in &names {
        let name = last_ident(n);
        if SYSTEM_SCHEMAS.contains(&name.as_str()) {
            return Err(Error::new(
                ErrorKind::DependentObjects,
                format!("cannot drop schema {name} because it is required by the database system"),
            ));
        }
        if !snap.schema_exists(&name) {
            if if_exists {
                session.notice(format!("schema \"{name}\" does not exist, skipping"));
                continue;
            }
            return Err(missing_schema(&name));
        }
        // A sequence a column owns goes with its table and is not named.
        let objects: Vec<&Object> = snap
            .relations_in(&name)
            .filter(|o| !matches!(&o.def, Def::Sequence(d) if d.owned_by.is_some()))
            .collect();
        if !objects.is_empty() && !cascade {
            return Err(Error::new(
                ErrorKind::DependentObjects,
                format!("cannot drop schema {name} because other objects depend on it"),
            )
            .with_detail(
                objects
                    .iter()
                    .map(|o| {
                        format!(
                            "{} {name}.{} depends on schema {name}",
                            o.kind().noun(),
                            o.name
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
            .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
        }
        if !objects.is_empty() {
            session.notice(format!("drop cascades to {} other objects", objects.len()));
        }
        schemas.push(name);
    }
    if schemas.is_empty() {
        return Ok(Output::command("DROP SCHEMA"));
    }
    let victims: Vec<Object> = snap
        .objects()
        .iter()
        .filter(|e| e.kind() != Kind::Schema && schemas.contains(&e.schema))
        .cloned()
        .collect();
    let gone = schemas.clone();
    session
        .engine
        .catalog
        .mutate(move |entries| {
            let dropped: Vec<(String, String)> = entries
                .iter()
                .filter(|e| e.kind() == Kind::Table && gone.contains(&e.schema))
                .map(|e| (e.schema.clone(), e.name.clone()))
                .collect();
            entries.retain(|e| {
                !(gone.contains(&e.schema) && e.kind() != Kind::Schema
                    || e.kind() == Kind::Schema && gone.contains(&e.name))
            });
            drop_references(entries, &dropped, cascade)
        })
        .await?;
    remove_table_files(session, &victims).await;
    Ok(Output::command("DROP SCHEMA"))
}

pub async fn alter_table(session: &mut Session, at: AlterTable) -> Result<Output> {
    // Its shape, for the ALTER of the quarantine table that follows a rename.
    let at_template = at.clone();
    let (schema, name) = session.qualify(&at.name)?;
    let Some(entry) = session.catalog_entry(&schema, &name) else {
        if at.if_exists {
            session.notice(format!("relation \"{name}\" does not exist, skipping"));
            return Ok(Output::command("ALTER TABLE"));
        }
        return Err(Error::new(
            ErrorKind::UndefinedTable,
            format!("relation \"{name}\" does not exist"),
        ));
    };
    // ALTER TABLE ... RENAME works on a view too, as in PostgreSQL (dbt
    // renames the views it builds this way).
    if matches!(entry.kind(), Kind::View | Kind::MaterializedView)
        && let [AlterTableOperation::RenameTable { table_name }] = at.operations.as_slice()
    {
        let (RenameTableNameKind::To(n) | RenameTableNameKind::As(n)) = table_name;
        rename_relation(session, entry.kind(), &schema, &name, &last_ident(n), None).await?;
        return Ok(Output::command("ALTER TABLE"));
    }
    if entry.kind() != Kind::Table {
        return Err(Error::new(
            ErrorKind::WrongObjectType,
            format!("\"{name}\" is not a table"),
        ));
    }
    if at.operations.len() != 1 {
        return Err(Error::not_supported(
            "several ALTER TABLE actions in one statement",
        ));
    }
    let mut def = entry.table_def()?.as_ref().clone();
    match at.operations.into_iter().next().unwrap() {
        AlterTableOperation::RenameTable { table_name } => {
            let new = match table_name {
                RenameTableNameKind::To(n) | RenameTableNameKind::As(n) => n,
            };
            let new_name = last_ident(&new);
            // The quarantine table follows the table's name.
            let quarantine = quality::expect::quarantines(&def).then(|| {
                (
                    quality::expect::quarantine_table(&name),
                    quality::expect::quarantine_table(&new_name),
                )
            });
            rename_relation(session, Kind::Table, &schema, &name, &new_name, quarantine).await?;
        }
        AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            ..
        } => {
            let col = normalize_ident(&column_def.name);
            if def.column(&col).is_some() {
                if if_not_exists {
                    session.notice(format!(
                        "column \"{col}\" of relation \"{name}\" already exists, skipping"
                    ));
                    return Ok(Output::command("ALTER TABLE"));
                }
                return Err(Error::new(
                    ErrorKind::DuplicateColumn,
                    format!("column \"{col}\" of relation \"{name}\" already exists"),
                ));
            }
            let ty = PgType::from_sql(&column_def.data_type)?;
            if !column_def.options.is_empty() {
                // Existing rows take the DEFAULT (or NULL, which NOT NULL
                // refuses when there are rows): the table is rewritten
                // with the column in one commit.
                let mut column = ColumnDef {
                    name: col.clone(),
                    ty,
                    not_null: false,
                    default: None,
                    identity: None,
                    generated: None,
                };
                for option in &column_def.options {
                    use datafusion::sql::sqlparser::ast::ColumnOption;
                    match &option.option {
                        ColumnOption::NotNull => column.not_null = true,
                        ColumnOption::Null => column.not_null = false,
                        ColumnOption::Default(e) => {
                            let mut e = e.clone();
                            crate::frontend::compat::signed_powers(&mut e);
                            column.default = Some(e.to_string());
                        }
                        ColumnOption::Generated {
                            generated_as: datafusion::sql::sqlparser::ast::GeneratedAs::ExpStored,
                            generation_expr: Some(e),
                            ..
                        } => {
                            column.generated = Some(super::generated_columns::stored(session, e)?);
                        }
                        other => {
                            return Err(Error::not_supported(format!("{other} on ADD COLUMN")));
                        }
                    }
                }
                if column.generated.is_some() && column.default.is_some() {
                    return Err(Error::syntax(format!(
                        "both default and generation expression specified for column \"{col}\" of table \"{name}\""
                    )));
                }
                check_defaults(session, std::slice::from_ref(&column)).await?;
                def.columns.push(column);
                super::generated_columns::check(session, &def)?;
                let wc = session.write_context();
                let current = entry.table_def()?;
                let target = crate::write::Target::open(&wc, &schema, &name, current, None).await?;
                let column = def.columns.last().expect("just added");
                if column.not_null && column.default.is_none() && column.generated.is_none() {
                    let any =
                        crate::frontend::generated::query(&wc.ctx, &target.select_sql("1", None))
                            .await?
                            .limit(0, Some(1))?
                            .count()
                            .await?;
                    if any > 0 {
                        return Err(Error::new(
                            ErrorKind::NotNullViolation,
                            format!("column \"{col}\" of relation \"{name}\" contains null values"),
                        ));
                    }
                }
                let written = target.widen(&wc, std::sync::Arc::new(def.clone())).await?;
                session.engine.lake().committed(&written).await;
                save_def(session, &schema, &name, def.clone(), None).await?;
                super::alter_columns::sync_quarantine(session, &schema, &name, &def).await?;
                return Ok(Output::command("ALTER TABLE"));
            }
            let field = datafusion::arrow::datatypes::Field::new(&col, ty.arrow_type(), true);
            let kernel: deltalake::kernel::StructType = {
                use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
                (&Schema::new(vec![field]))
                    .try_into_kernel()
                    .map_err(|e| Error::new(ErrorKind::DatatypeMismatch, e.to_string()))?
            };
            let lake = session.engine.lake().clone();
            let url = lake.url_for(&def.location)?;
            let table = lake.table(&url).await?;
            let written = table
                .add_columns()
                .with_fields(kernel.fields().cloned().collect::<Vec<_>>())
                .await?;
            lake.committed(&written).await;
            def.columns.push(ColumnDef {
                name: col,
                ty,
                not_null: false,
                default: None,
                identity: None,
                generated: None,
            });
            save_def(session, &schema, &name, def.clone(), None).await?;
            super::alter_columns::sync_quarantine(session, &schema, &name, &def).await?;
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let old = normalize_ident(&old_column_name);
            let new = normalize_ident(&new_column_name);
            if def.column(&old).is_none() {
                return Err(Error::new(
                    ErrorKind::UndefinedColumn,
                    format!("column \"{old}\" does not exist"),
                ));
            }
            if def.column(&new).is_some() {
                return Err(Error::new(
                    ErrorKind::DuplicateColumn,
                    format!("column \"{new}\" of relation \"{name}\" already exists"),
                ));
            }
            // The quarantine table has the table's columns and two more:
            // checked before anything changes, so the rename is whole.
            let quarantine_columns = [
                quality::expect::BROKEN_RULES,
                quality::expect::QUARANTINED_AT,
            ];
            if quality::expect::quarantines(&def) && quarantine_columns.contains(&new.as_str()) {
                return Err(Error::new(
                    ErrorKind::DuplicateColumn,
                    format!(
                        "column \"{new}\" of relation \"{}\" already exists",
                        quality::expect::quarantine_table(&name)
                    ),
                ));
            }
            // Another table's foreign key names the column: it would have
            // to change with it.
            if let Some((_, child, fk)) =
                crate::write::referencing(&session.write_context(), &schema, &name)
                    .into_iter()
                    .find(|(s, t, fk)| {
                        !(s == &schema && t == &name) && fk.parent_columns.contains(&old)
                    })
            {
                return Err(Error::not_supported(format!(
                    "RENAME COLUMN of \"{old}\", which foreign key \"{}\" of table \"{child}\" \
                     references",
                    fk.name
                )));
            }
            // A view that reads the column keeps its query as written,
            // which would no longer plan: refused before anything changes.
            if let Some(view) =
                super::alter_columns::views_reading(session, &schema, &name, &old).first()
            {
                return Err(Error::not_supported(format!(
                    "RENAME COLUMN of \"{old}\", which view \"{view}\" reads"
                ))
                .with_hint("Drop the view, rename the column and create the view again."));
            }
            // Delta without column mapping stores names in the files, so a
            // rename rewrites the table in one overwrite commit.
            let lake = session.engine.lake().clone();
            let url = lake.url_for(&def.location)?;
            let table = lake.table(&url).await?;
            let provider = crate::lake::provider(&table).await?;
            let df = session.ctx.read_table(provider)?;
            let exprs: Vec<_> = df
                .schema()
                .columns()
                .into_iter()
                .map(|c| {
                    let n = if c.name == old {
                        new.clone()
                    } else {
                        c.name.clone()
                    };
                    datafusion::logical_expr::Expr::Column(c).alias(n)
                })
                .collect();
            let df = df.select(exprs)?;
            for c in def.columns.iter_mut() {
                if c.name == old {
                    c.name = new.clone();
                }
            }
            super::generated_columns::rename_column(&mut def, &old, &new)?;
            for p in def.partition_by.iter_mut() {
                if *p == old {
                    *p = new.clone();
                }
            }
            // Delta's copies of the checks that name the column go before
            // the rewrite (they would not hold over the new schema) and come
            // back renamed after it.
            let rename = |cols: &mut Vec<String>| {
                for c in cols.iter_mut().filter(|c| **c == old) {
                    *c = new.clone();
                }
            };
            for k in def.keys.iter_mut() {
                rename(&mut k.columns);
            }
            for ix in def.indexes.iter_mut() {
                rename(&mut ix.columns);
                if let Some(p) = ix.predicate.as_mut() {
                    *p = quality::rename_column(p, &old, &new)?;
                }
                for e in ix.expressions.iter_mut() {
                    *e = quality::rename_column(e, &old, &new)?;
                }
            }
            for fk in def.foreign_keys.iter_mut() {
                rename(&mut fk.columns);
                if fk.parent_schema == schema && fk.parent_table == name {
                    rename(&mut fk.parent_columns);
                }
            }
            for e in def.expectations.iter_mut() {
                e.expr = quality::rename_column(&e.expr, &old, &new)?;
            }
            let mut renamed = Vec::new();
            for check in def.checks.iter_mut() {
                let expr = quality::rename_column(&check.expr, &old, &new)?;
                if expr != check.expr {
                    renamed.push(check.name.clone());
                }
                check.expr = expr;
            }
            let table = if renamed.is_empty() {
                table
            } else {
                unstore_checks(session, &def, &renamed).await?;
                lake.table(&url).await?
            };
            crate::write::write_plan(
                session.context().state(),
                lake.clone(),
                table,
                df.into_unoptimized_plan(),
                SaveMode::Overwrite,
                crate::write::WriteOptions {
                    partition_by: def.partition_by.clone(),
                    unique_columns: def.unique_columns(),
                    new_schema: true,
                    ..Default::default()
                },
            )
            .await?;
            let moved: Vec<&quality::CheckDef> = def
                .checks
                .iter()
                .filter(|c| renamed.contains(&c.name))
                .collect();
            store_checks(session, &def, &moved).await?;
            let quarantined = quality::expect::quarantines(&def);
            save_def(session, &schema, &name, def, Some((&old, &new))).await?;
            // The quarantine table keeps the table's column names.
            if quarantined {
                let mut at = at_template.clone();
                at.name = ObjectName::from(vec![
                    crate::frontend::names::quoted(&schema),
                    crate::frontend::names::quoted(&quality::expect::quarantine_table(&name)),
                ]);
                at.operations = vec![AlterTableOperation::RenameColumn {
                    old_column_name: crate::frontend::names::quoted(&old),
                    new_column_name: crate::frontend::names::quoted(&new),
                }];
                Box::pin(alter_table(session, at)).await?;
            }
        }
        AlterTableOperation::AddConstraint {
            constraint: TableConstraint::Check(check),
            not_valid: false,
        } => {
            let name_given = check.name.as_ref().map(normalize_ident);
            let check = new_check(
                session,
                &def,
                &name,
                name_given,
                check.expr.to_string(),
                None,
            )?;
            // Existing rows first: a violating one stops the ALTER, named.
            let lake = session.engine.lake().clone();
            let table = lake.table(&lake.url_for(&def.location)?).await?;
            let violating = quality::violating_row(&session.ctx, table, &def, &check).await?;
            if let Some(row) = violating {
                return Err(Error::new(
                    ErrorKind::CheckViolation,
                    format!(
                        "check constraint \"{}\" of relation \"{name}\" is violated by some row",
                        check.name
                    ),
                )
                .with_detail(format!("Failing row contains ({row}).")));
            }
            store_checks(session, &def, &[&check]).await?;
            def.checks.push(check);
            save_def(session, &schema, &name, def, None).await?;
        }
        AlterTableOperation::AddConstraint {
            constraint: constraint @ (TableConstraint::PrimaryKey(_) | TableConstraint::Unique(_)),
            not_valid: false,
        } => {
            let (given, columns, primary) = match &constraint {
                TableConstraint::PrimaryKey(pk) => (&pk.name, index_columns(&pk.columns)?, true),
                TableConstraint::Unique(u) => (&u.name, index_columns(&u.columns)?, false),
                _ => unreachable!("matched above"),
            };
            let key = new_key(
                &def,
                &name,
                given.as_ref().map(normalize_ident),
                columns,
                primary,
            )?;
            // The rows already there must obey it.
            let lake = session.engine.lake().clone();
            let table = lake.table(&lake.url_for(&def.location)?).await?;
            quality::keys::validate_existing(table, &name, &key).await?;
            add_key(&mut def, key);
            save_def(session, &schema, &name, def, None).await?;
        }
        AlterTableOperation::AddConstraint {
            constraint: TableConstraint::ForeignKey(fk),
            not_valid: false,
        } => {
            let columns: Vec<String> = fk.columns.iter().map(normalize_ident).collect();
            let new = new_foreign_key(session, &def, (&schema, &name), &fk, columns)?;
            // The rows already there must reference existing rows.
            let child = format!(
                "{}.{}",
                crate::frontend::names::quote_ident(&schema),
                crate::frontend::names::quote_ident(&name)
            );
            let parent = format!(
                "{}.{}",
                crate::frontend::names::quote_ident(&new.parent_schema),
                crate::frontend::names::quote_ident(&new.parent_table)
            );
            let sql = new.missing_sql(&child, &parent);
            if let Some(values) = quality::keys::first_row(&session.ctx, &sql).await? {
                return Err(new.missing(&name, &values));
            }
            def.foreign_keys.push(new);
            save_def(session, &schema, &name, def, None).await?;
        }
        AlterTableOperation::DropConstraint {
            if_exists,
            name: constraint,
            ..
        } => {
            let constraint = normalize_ident(&constraint);
            // A key another table's foreign key relies on stays.
            if let Some(key) = def.keys.iter().find(|k| k.name == constraint)
                && let Some((_, child, fk)) =
                    crate::write::referencing(&session.write_context(), &schema, &name)
                        .into_iter()
                        .find(|(_, _, fk)| key.is_on(&fk.parent_columns))
            {
                return Err(Error::new(
                    ErrorKind::DependentObjects,
                    format!(
                        "cannot drop constraint {constraint} on table {name} because other \
                             objects depend on it"
                    ),
                )
                .with_detail(format!(
                    "constraint {} on table {child} depends on index {constraint}",
                    fk.name
                ))
                .with_hint("Drop the foreign key first."));
            }
            let count = |d: &TableDef| {
                d.checks.len() + d.keys.len() + d.expectations.len() + d.foreign_keys.len()
            };
            let before = count(&def);
            if def.checks.iter().any(|c| c.name == constraint) {
                unstore_checks(session, &def, std::slice::from_ref(&constraint)).await?;
            }
            def.checks.retain(|c| c.name != constraint);
            def.keys.retain(|k| k.name != constraint);
            def.expectations.retain(|e| e.name != constraint);
            def.foreign_keys.retain(|f| f.name != constraint);
            if count(&def) == before {
                if if_exists {
                    session.notice(format!(
                        "constraint \"{constraint}\" of relation \"{name}\" does not exist, skipping"
                    ));
                    return Ok(Output::command("ALTER TABLE"));
                }
                return Err(Error::new(
                    ErrorKind::UndefinedObject,
                    format!("constraint \"{constraint}\" of relation \"{name}\" does not exist"),
                ));
            }
            save_def(session, &schema, &name, def, None).await?;
        }
        AlterTableOperation::DropColumn {
            column_names,
            if_exists,
            drop_behavior,
            ..
        } => {
            let cascade = matches!(
                drop_behavior,
                Some(datafusion::sql::sqlparser::ast::DropBehavior::Cascade)
            );
            return super::alter_columns::drop_columns(
                session,
                (&schema, &name),
                entry.table_def()?,
                &column_names,
                if_exists,
                cascade,
            )
            .await;
        }
        AlterTableOperation::AlterColumn {
            column_name,
            op:
                AlterColumnOperation::SetDataType {
                    data_type, using, ..
                },
        } => {
            let col = normalize_ident(&column_name);
            if let Some(g) = super::generated_columns::reading(&def, &col).first() {
                return Err(Error::not_supported(
                    "cannot alter type of a column used by a generated column",
                )
                .with_detail(format!(
                    "Column \"{col}\" is used by generated column \"{g}\"."
                )));
            }
            return super::alter_columns::set_type(
                session,
                (&schema, &name),
                entry.table_def()?,
                &col,
                &data_type,
                using.as_ref(),
            )
            .await;
        }
        AlterTableOperation::AlterColumn {
            column_name,
            op: op @ (AlterColumnOperation::SetNotNull | AlterColumnOperation::DropNotNull),
        } => {
            return super::alter_columns::set_not_null(
                session,
                (&schema, &name),
                entry.table_def()?,
                &normalize_ident(&column_name),
                matches!(op, AlterColumnOperation::SetNotNull),
            )
            .await;
        }
        AlterTableOperation::AlterColumn {
            column_name,
            op: op @ (AlterColumnOperation::SetDefault { .. } | AlterColumnOperation::DropDefault),
        } => {
            let col = normalize_ident(&column_name);
            let Some(column) = def.columns.iter_mut().find(|c| c.name == col) else {
                return Err(Error::new(
                    ErrorKind::UndefinedColumn,
                    format!("column \"{col}\" of relation \"{name}\" does not exist"),
                ));
            };
            if column.generated.is_some() {
                let e = Error::new(
                    ErrorKind::Syntax,
                    format!("column \"{col}\" of relation \"{name}\" is a generated column"),
                );
                return Err(match op {
                    AlterColumnOperation::DropDefault => {
                        e.with_hint("Use ALTER TABLE ... ALTER COLUMN ... DROP EXPRESSION instead.")
                    }
                    _ => e,
                });
            }
            // The default of an identity column is its sequence.
            if column.identity.is_some() {
                return Err(Error::new(
                    ErrorKind::Syntax,
                    format!("column \"{col}\" of relation \"{name}\" is an identity column"),
                )
                .with_hint("Use ALTER TABLE ... ALTER COLUMN ... DROP IDENTITY instead."));
            }
            // A default applies to rows written from now on: the files
            // stay as they are.
            column.default = match op {
                AlterColumnOperation::SetDefault { value } => Some(stored_default(session, value)?),
                _ => None,
            };
            let column = column.clone();
            check_defaults(session, std::slice::from_ref(&column)).await?;
            save_def(session, &schema, &name, def, None).await?;
        }
        other => return Err(Error::not_supported(format!("ALTER TABLE {other}"))),
    }
    Ok(Output::command("ALTER TABLE"))
}

/// A CHECK as Delta stores it, in `delta.constraints.<name>`: Delta
/// engines fail a row whose condition is NULL, where PostgreSQL passes it.
/// `None` when a Delta engine could not evaluate it: delta-rs enforces the
/// stored constraints with plain DataFusion, which knows none of the
/// operators and functions Sluice adds (`j ->> 'k'`), and refused every
/// write to the table. Sluice checks every CHECK itself; such a one is
/// not shown to other Delta writers.
async fn delta_constraint(
    check: &quality::CheckDef,
    schema: &datafusion::arrow::datatypes::Schema,
) -> Option<String> {
    let sql = format!("({}) IS NOT FALSE", check.expr);
    let plain = datafusion::prelude::SessionContext::new();
    let empty =
        datafusion::arrow::array::RecordBatch::new_empty(std::sync::Arc::new(schema.clone()));
    plain.register_batch("rows", empty).ok()?;
    let probe = format!("SELECT count(*) FROM rows WHERE NOT ({sql})");
    plain.sql(&probe).await.ok()?.collect().await.ok()?;
    Some(sql)
}

/// Add `checks` to the Delta table of `def` as Delta constraints, in one
/// commit that also raises the writer version to 3 as they need. The
/// rows already there were checked by the caller.
pub(super) async fn store_checks(
    session: &Session,
    def: &TableDef,
    checks: &[&quality::CheckDef],
) -> Result<()> {
    if checks.is_empty() {
        return Ok(());
    }
    let lake = session.engine.lake().clone();
    let table = lake.table(&lake.url_for(&def.location)?).await?;
    let mut properties = std::collections::HashMap::new();
    let arrow = def.arrow_schema();
    for c in checks {
        if let Some(sql) = delta_constraint(c, &arrow).await {
            properties.insert(format!("delta.constraints.{}", c.name), sql);
        }
    }
    if properties.is_empty() {
        return Ok(());
    }
    properties.insert("delta.minWriterVersion".to_string(), "3".to_string());
    let written = table
        .set_tbl_properties()
        .with_properties(properties)
        .with_raise_if_not_exists(false)
        .with_commit_properties(crate::write::commit_properties())
        .await?;
    lake.committed(&written).await;
    Ok(())
}

/// Remove the Delta constraints `names` from the table of `def`.
pub(super) async fn unstore_checks(
    session: &Session,
    def: &TableDef,
    names: &[String],
) -> Result<()> {
    let lake = session.engine.lake().clone();
    let mut table = lake.table(&lake.url_for(&def.location)?).await?;
    for n in names {
        table = table
            .drop_constraints()
            .with_constraint(n.clone())
            .with_raise_if_not_exists(false)
            .with_commit_properties(crate::write::commit_properties())
            .await?;
    }
    lake.remember(&table);
    Ok(())
}

/// `ALTER TABLE t ADD CONSTRAINT c EXPECT (...) [ON VIOLATION ...]`.
pub async fn add_expectation(
    session: &mut Session,
    table: &ObjectName,
    x: Expectation,
) -> Result<Output> {
    let (schema, name, def) = session.resolve_table(table)?;
    let mut def = def.as_ref().clone();
    let e = new_expectation(
        session,
        &def,
        &name,
        Some(x.name),
        x.condition.to_string(),
        x.action,
    )?;
    def.expectations.push(e);
    ensure_quarantine(session, &schema, &name, &def).await?;
    save_def(session, &schema, &name, def, None).await?;
    Ok(Output::command("ALTER TABLE"))
}

/// `COMMENT ON {TABLE | VIEW | MATERIALIZED VIEW | SEQUENCE | COLUMN | SCHEMA} name IS
/// 'text' | NULL`: kept with the object in the catalog (an empty text
/// removes the comment, as in PostgreSQL), shown by `pg_description`,
/// `obj_description` and `col_description`.
pub async fn comment(
    session: &mut Session,
    object_type: datafusion::sql::sqlparser::ast::CommentObject,
    object_name: ObjectName,
    text: Option<String>,
    if_exists: bool,
) -> Result<Output> {
    use datafusion::sql::sqlparser::ast::CommentObject as C;
    let text = text.filter(|t| !t.is_empty());
    let snap = session.engine.catalog.snapshot();
    // (kind, schema, name, column) of the commented object.
    let (kind, schema, name, column) = match object_type {
        C::Schema => {
            let name = crate::frontend::names::last_ident(&object_name);
            if SYSTEM_SCHEMAS.contains(&name.as_str()) && name != crate::catalog::DEFAULT_SCHEMA {
                return Err(Error::not_supported(format!(
                    "COMMENT ON SCHEMA {name} (a system schema)"
                )));
            }
            if !snap.schema_exists(&name) {
                if if_exists {
                    return Ok(Output::command("COMMENT"));
                }
                return Err(missing_schema(&name));
            }
            (Kind::Schema, String::new(), name, None)
        }
        C::Table | C::View | C::MaterializedView | C::Sequence | C::Column => {
            let (relation, column) = if object_type == C::Column {
                let mut parts = object_name.0.clone();
                let column = parts.pop().and_then(|p| p.as_ident().cloned());
                let (Some(column), false) = (column, parts.is_empty()) else {
                    return Err(Error::new(
                        ErrorKind::Syntax,
                        format!("column name must be qualified: {object_name}"),
                    ));
                };
                (
                    ObjectName(parts),
                    Some(crate::frontend::names::normalize_ident(&column)),
                )
            } else {
                (object_name.clone(), None)
            };
            let (schema, name) = session.qualify(&relation)?;
            let Some(entry) = snap.relation(&schema, &name) else {
                if if_exists {
                    return Ok(Output::command("COMMENT"));
                }
                return Err(Error::new(
                    ErrorKind::UndefinedTable,
                    format!("relation \"{name}\" does not exist"),
                ));
            };
            let wanted = match object_type {
                C::Table => Some(Kind::Table),
                C::View => Some(Kind::View),
                C::MaterializedView => Some(Kind::MaterializedView),
                C::Sequence => Some(Kind::Sequence),
                _ => None,
            };
            let fits =
                |k: Kind| k == entry.kind() || (k == Kind::Table && entry.kind() == Kind::External);
            if let Some(k) = wanted
                && !fits(k)
            {
                return Err(Error::new(
                    ErrorKind::WrongObjectType,
                    format!("\"{name}\" is not a {}", k.noun()),
                ));
            }
            if let Some(c) = &column
                && !entry.declared_columns().iter().any(|d| &d.name == c)
            {
                return Err(Error::new(
                    ErrorKind::UndefinedColumn,
                    format!("column \"{c}\" of relation \"{name}\" does not exist"),
                ));
            }
            (entry.kind(), schema, name, column)
        }
        other => {
            return Err(Error::not_supported(format!("COMMENT ON {other}")));
        }
    };
    session
        .engine
        .catalog
        .mutate(move |entries| {
            let Some(e) = entries
                .iter_mut()
                .find(|e| e.kind() == kind && e.schema == schema && e.name == name)
            else {
                return Err(Error::new(
                    ErrorKind::UndefinedTable,
                    format!("relation \"{name}\" does not exist"),
                ));
            };
            let key = column.clone().unwrap_or_default();
            match &text {
                Some(t) => {
                    e.comments.insert(key, t.clone());
                }
                None => {
                    e.comments.remove(&key);
                }
            }
            Ok(())
        })
        .await?;
    Ok(Output::command("COMMENT"))
}

/// Store `def` as the definition of table `schema.name`. Its comments stay,
/// except those of columns it no longer has; `renamed` moves a column's
/// comment to its new name.
pub(super) async fn save_def(
    session: &Session,
    schema: &str,
    name: &str,
    def: TableDef,
    renamed: Option<(&str, &str)>,
) -> Result<()> {
    let (schema, name) = (schema.to_string(), name.to_string());
    let renamed = renamed.map(|(a, b)| (a.to_string(), b.to_string()));
    let def = std::sync::Arc::new(def);
    session
        .engine
        .catalog
        .mutate(move |entries| {
            if let Some(e) = entries
                .iter_mut()
                .find(|e| e.kind() == Kind::Table && e.schema == schema && e.name == name)
            {
                e.def = Def::Table(def.clone());
                if let Some((old, new)) = &renamed
                    && let Some(text) = e.comments.remove(old)
                {
                    e.comments.insert(new.clone(), text);
                }
                e.comments
                    .retain(|column, _| column.is_empty() || def.column(column).is_some());
            }
            // A sequence the renamed column owns follows it.
            if let Some((old, new)) = &renamed {
                rename_owners(entries, &schema, |t, c| {
                    (t == name && c == old).then(|| (name.clone(), new.clone()))
                });
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// The sequences of `schema` whose owner (table, column) `rename` gives a
/// new name to are owned by it under that name.
fn rename_owners(
    entries: &mut [Object],
    schema: &str,
    rename: impl Fn(&str, &str) -> Option<(String, String)>,
) {
    for e in entries.iter_mut().filter(|e| e.schema == schema) {
        if let Def::Sequence(d) = &mut e.def
            && let Some(owner) = d.owned_by.as_ref().and_then(|(t, c)| rename(t, c))
        {
            std::sync::Arc::make_mut(d).owned_by = Some(owner);
        }
    }
}

/// Rename the table or view `schema.name` to `new_name` (and a table's
/// quarantine table with it), keeping foreign keys and the views that name
/// it pointing at it, as PostgreSQL's follow the object itself.
pub(super) async fn rename_relation(
    session: &Session,
    kind: Kind,
    schema: &str,
    name: &str,
    new_name: &str,
    quarantine: Option<(String, String)>,
) -> Result<()> {
    let (s, old, n2) = (schema.to_string(), name.to_string(), new_name.to_string());
    session
        .engine
        .catalog
        .mutate(move |entries| {
            let taken = |entries: &[Object], n: &str| {
                entries
                    .iter()
                    .any(|e| e.kind() != Kind::Schema && e.schema == s && e.name == n)
            };
            if taken(entries, &n2) {
                return Err(duplicate_relation(&n2));
            }
            if let Some((_, q2)) = &quarantine
                && taken(entries, q2)
            {
                return Err(duplicate_relation(q2));
            }
            let e = entries
                .iter_mut()
                .find(|e| e.kind() == kind && e.schema == s && e.name == old)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::UndefinedTable,
                        format!("relation \"{old}\" does not exist"),
                    )
                })?;
            e.name = n2.clone();
            // The table's serial and identity sequences follow it.
            if kind == Kind::Table {
                rename_owners(entries, &s, |t, c| {
                    (t == old).then(|| (n2.clone(), c.to_string()))
                });
            }
            if let Some((q, q2)) = &quarantine
                && let Some(e) = entries
                    .iter_mut()
                    .find(|e| e.kind() == Kind::Table && e.schema == s && &e.name == q)
            {
                e.name = q2.clone();
            }
            // Foreign keys name their parent: every one that
            // referred to the old name (the table's own included)
            // now names the new one, as PostgreSQL's follow the
            // table itself.
            for e in entries.iter_mut().filter(|e| e.kind() == Kind::Table) {
                let mut child = e.table_def()?.as_ref().clone();
                let mut changed = false;
                for fk in child.foreign_keys.iter_mut() {
                    if fk.parent_schema == s && fk.parent_table == old {
                        fk.parent_table = n2.clone();
                        changed = true;
                    }
                }
                if changed {
                    *e.table_def_mut()? = child;
                }
            }
            // Views name the table in their SQL: rewritten to the
            // new name, as PostgreSQL's views follow the table.
            for e in entries.iter_mut() {
                let schema = e.schema.clone();
                let v = match &mut e.def {
                    Def::View(v) => std::sync::Arc::make_mut(v),
                    Def::MaterializedView(m) => &mut std::sync::Arc::make_mut(m).query,
                    _ => continue,
                };
                if let Some(sql) = renamed_in_view(&v.sql, &schema, &s, &old, &n2) {
                    v.sql = sql;
                    for d in v.depends_on.iter_mut() {
                        if d.schema == s && d.name == old {
                            d.name = n2.clone();
                        }
                    }
                }
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// The folder for a new table `schema.name`: `schema/name`, unless a table
/// renamed since keeps its files there (a table's folder stays when it is
/// renamed: dbt creates `t__dbt_tmp`, renames it to `t`, and creates
/// `t__dbt_tmp` again on its next run), then `schema/name-2`, `-3`, ...
/// `df`'s columns, by position, cast to the types of `def`'s columns and
/// named after them (a query's result stored as a new table).
pub(super) fn cast_to_columns(
    df: datafusion::dataframe::DataFrame,
    def: &TableDef,
) -> Result<datafusion::dataframe::DataFrame> {
    let exprs: Vec<_> = df
        .schema()
        .columns()
        .into_iter()
        .zip(&def.columns)
        .map(|(c, d)| {
            let e = datafusion::logical_expr::cast(
                datafusion::logical_expr::Expr::Column(c),
                d.ty.arrow_type(),
            );
            let e = if d.not_null {
                e
            } else {
                crate::types::typed::nullable(e)
            };
            e.alias(&d.name)
        })
        .collect();
    Ok(df.select(exprs)?)
}

/// Add a new relation to the catalog: 42P07 when its name is taken and
/// 3F000 when its schema is gone, both checked against the newest state.
pub(super) async fn register(session: &Session, entry: Object) -> Result<()> {
    register_all(session, vec![entry]).await
}

/// Add `new` to the catalog in one commit (a table with its sequences).
pub(super) async fn register_all(session: &Session, new: Vec<Object>) -> Result<()> {
    session
        .engine
        .catalog
        .mutate(move |entries| {
            for entry in &new {
                if entries
                    .iter()
                    .any(|e| e.is_relation(&entry.schema, &entry.name))
                {
                    return Err(duplicate_relation(&entry.name));
                }
                if !entries
                    .iter()
                    .any(|e| e.kind() == Kind::Schema && e.name == entry.schema)
                {
                    return Err(missing_schema(&entry.schema));
                }
                entries.push(entry.clone());
            }
            Ok(())
        })
        .await?;
    Ok(())
}

pub(super) fn free_location(session: &Session, schema: &str, name: &str) -> String {
    let snapshot = session.engine.catalog().snapshot();
    let used: std::collections::HashSet<String> = snapshot
        .objects()
        .iter()
        .filter_map(|o| o.stored().map(|d| d.location.clone()))
        .collect();
    let base = format!("{schema}/{name}");
    if !used.contains(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|c| !used.contains(c))
        .expect("a free folder name")
}

/// A view's SQL with each reference to `schema.old` renamed to `new`, or
/// `None` when it has none (or does not parse). Unqualified names in a
/// view resolve in the view's own schema; a WITH query of that name hides
/// the table.
fn renamed_in_view(
    sql: &str,
    view_schema: &str,
    schema: &str,
    old: &str,
    new: &str,
) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{ObjectNamePart, TableAlias, TableFactor, VisitorMut};
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use std::ops::ControlFlow;
    struct Rename<'a> {
        view_schema: &'a str,
        schema: &'a str,
        old: &'a str,
        new: &'a str,
        withs: std::collections::HashSet<String>,
        changed: bool,
    }
    impl VisitorMut for Rename<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table { name, alias, .. } = factor else {
                return ControlFlow::Continue(());
            };
            let parts: Vec<String> = name
                .0
                .iter()
                .map(|p| p.as_ident().map(normalize_ident).unwrap_or_default())
                .collect();
            let hit = match parts.as_slice() {
                [t] => self.view_schema == self.schema && t == self.old && !self.withs.contains(t),
                [s, t] | [_, s, t] => s == self.schema && t == self.old,
                _ => false,
            };
            if hit && let Some(last) = name.0.last_mut() {
                let was = last.as_ident().cloned();
                *last = ObjectNamePart::Identifier(Ident::with_quote('"', self.new));
                // Columns written `old.col` keep naming the table.
                if alias.is_none()
                    && let Some(was) = was
                {
                    *alias = Some(TableAlias {
                        explicit: true,
                        name: was,
                        columns: vec![],
                        at: None,
                    });
                }
                self.changed = true;
            }
            ControlFlow::Continue(())
        }
    }
    let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let [stmt] = stmts.as_mut_slice() else {
        return None;
    };
    let mut rename = Rename {
        view_schema,
        schema,
        old,
        new,
        withs: super::names::with_query_names(stmt),
        changed: false,
    };
    let _ = crate::visit::walk_mut(stmt, &mut rename);
    let changed = rename.changed;
    changed.then(|| stmt.to_string())
}

#[cfg(test)]
mod tests {
    use super::renamed_in_view;

    #[test]
    fn a_view_follows_a_renamed_table() {
        let r = |sql: &str, view_schema: &str| renamed_in_view(sql, view_schema, "s", "t", "u");
        assert_eq!(
            r("SELECT t.a FROM s.t", "x").as_deref(),
            Some("SELECT t.a FROM s.\"u\" AS t")
        );
        // Unqualified: the view's own schema; an alias stays.
        assert_eq!(
            r("SELECT x.a FROM t AS x", "s").as_deref(),
            Some("SELECT x.a FROM \"u\" AS x")
        );
        assert_eq!(r("SELECT a FROM t", "x"), None);
        // Another schema's t, and a WITH query named t, stay.
        assert_eq!(r("SELECT a FROM x.t", "s"), None);
        assert_eq!(r("WITH t AS (SELECT 1 AS a) SELECT a FROM t", "s"), None);
        assert_eq!(
            r("SELECT * FROM \"S\".t", "x"),
            None,
            "a quoted schema keeps its case"
        );
    }
}
