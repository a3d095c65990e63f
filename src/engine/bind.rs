//! The binder: every name a statement uses, resolved one way.
//!
//! PostgreSQL looks an unqualified relation name up in `pg_catalog` (first,
//! unless `search_path` places it), then in each schema of `search_path`;
//! the name of a WITH query hides a table of the same name. [`Resolver`]
//! is that rule, and the only place Sluice applies it: queries, DML targets
//! and the subqueries inside them, MERGE sources, view definitions, table
//! versions and DDL all resolve through it.
//!
//! Binding a statement rewrites each relation it reads to its qualified
//! name (`orders` becomes `raw.orders`) and opens what the name denotes,
//! once per statement: the newest snapshot of a Delta table (every read of
//! a table within a statement sees one version), a past version, a view's
//! plan, an external table's files, a system table. The planner
//! ([`super::planner`]) answers DataFusion's questions from the result.
//!
//! ```text
//!  Statement ──bind──▶ Statement (qualified names) + Bound { tables, versions, snapshots, depends_on }
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::TableSource;
use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, ObjectNamePart, Query, SetExpr, Statement, TableFactor, TableVersion, Value,
    VisitMut, VisitorMut,
};
use deltalake::DeltaTable;

use super::Session;
use crate::catalog::{
    DATABASE, Def, ExternalDef, Kind, Object, RelName, SYSTEM_SCHEMAS, Snapshot, ViewDef,
};
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::names::{name_parts, quoted};
use crate::lake::TimeTravel;

/// What a relation name denotes.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A table, view or external table of the catalog.
    Object(Object),
    /// A table of `pg_catalog`, `information_schema` or `sluice`.
    System(RelName),
    /// `online.<name>`: the latest rows of an online feature view, or a
    /// feature service (read by its entity keys only).
    Online(Object),
}

impl Resolved {
    pub fn rel_name(&self) -> RelName {
        match self {
            Resolved::Object(o) => o.rel_name(),
            Resolved::System(r) => r.clone(),
            Resolved::Online(o) => RelName::new(crate::features::lookup::SCHEMA, &o.name),
        }
    }
}

/// Which tables the system schemas have.
pub trait SystemLookup {
    fn has(&self, schema: &str, table: &str) -> bool;
}

/// Name lookup with PostgreSQL's rules, over one catalog snapshot.
pub struct Resolver<'a> {
    snapshot: &'a Snapshot,
    /// `search_path`, with `pg_catalog` first unless it is listed.
    path: Vec<String>,
    system: &'a dyn SystemLookup,
}

impl crate::features::training::FeatureCatalog for Resolver<'_> {
    fn service(&self, name: &str) -> Result<(String, Arc<crate::catalog::FeatureServiceDef>)> {
        let (schema, bare) = match name.split_once('.') {
            Some((s, n)) => (Some(s.to_ascii_lowercase()), n.to_ascii_lowercase()),
            None => (None, name.to_ascii_lowercase()),
        };
        let found = self.snapshot.of_kind(Kind::FeatureService).find(|o| {
            o.name == bare
                && match &schema {
                    Some(s) => &o.schema == s,
                    None => self.path.contains(&o.schema),
                }
        });
        match found.map(|o| (o.schema.clone(), &o.def)) {
            Some((schema, Def::FeatureService(def))) => Ok((schema, def.clone())),
            _ => Err(Error::new(
                ErrorKind::UndefinedObject,
                format!("feature service \"{name}\" does not exist"),
            )),
        }
    }

    fn feature_view(&self, schema: &str, name: &str) -> Result<Object> {
        match self.snapshot.relation(schema, name) {
            Some(o) if o.feature().is_some() => Ok(o.clone()),
            _ => Err(Error::new(
                ErrorKind::UndefinedTable,
                format!("feature view \"{schema}.{name}\" does not exist"),
            )),
        }
    }
}

fn undefined(name: &str) -> Error {
    Error::new(
        ErrorKind::UndefinedTable,
        format!("relation \"{name}\" does not exist"),
    )
}

impl<'a> Resolver<'a> {
    pub fn new(
        snapshot: &'a Snapshot,
        search_path: Vec<String>,
        system: &'a dyn SystemLookup,
    ) -> Resolver<'a> {
        let mut path = search_path;
        if !path.iter().any(|s| s == "pg_catalog") {
            path.insert(0, "pg_catalog".to_string());
        }
        Resolver {
            snapshot,
            path,
            system,
        }
    }

    /// `(schema, name)` of a possibly qualified name, with the schema the
    /// name says (checked: a database other than ours is 0A000).
    fn split(parts: &[String], display: &str) -> Result<(Option<String>, String)> {
        match parts {
            [t] => Ok((None, t.clone())),
            [s, t] => Ok((Some(s.clone()), t.clone())),
            [db, s, t] if db == DATABASE || db == "postgres" => Ok((Some(s.clone()), t.clone())),
            [db, _, _] => Err(Error::not_supported(format!(
                "cross-database references are not implemented: \"{display}\" (database \"{db}\")"
            ))),
            _ => Err(Error::syntax(format!(
                "improper qualified name (too many dotted names): {display}"
            ))),
        }
    }

    fn in_schema(&self, schema: &str, name: &str) -> Option<Resolved> {
        if SYSTEM_SCHEMAS.contains(&schema) {
            return self
                .system
                .has(schema, name)
                .then(|| Resolved::System(RelName::new(schema, name)));
        }
        self.snapshot
            .relation(schema, name)
            .map(|o| Resolved::Object(o.clone()))
    }

    /// The online feature view or feature service `parts` names (after
    /// `online.`), by `search_path` when unqualified.
    pub fn online(&self, parts: &[String]) -> Option<Object> {
        let schemas: Vec<&String> = match parts {
            [_] => self.path.iter().collect(),
            [s, _] => vec![s],
            _ => return None,
        };
        let name = parts.last()?;
        schemas.into_iter().find_map(|s| {
            if let Some(o) = self.snapshot.relation(s, name)
                && o.feature().is_some()
            {
                return Some(o.clone());
            }
            self.snapshot
                .of_kind(Kind::FeatureService)
                .find(|o| &o.schema == s && &o.name == name)
                .cloned()
        })
    }

    /// What `name` denotes, or None.
    pub fn lookup(&self, name: &ObjectName) -> Result<Option<Resolved>> {
        let parts = name_parts(name);
        if let [schema, rest @ ..] = parts.as_slice()
            && schema == crate::features::lookup::SCHEMA
            && !rest.is_empty()
            && !self.snapshot.schema_exists(schema)
        {
            return Ok(self.online(rest).map(Resolved::Online));
        }
        match Self::split(&parts, &parts.join("."))? {
            (Some(s), t) => Ok(self.in_schema(&s, &t)),
            (None, t) => Ok(self.path.iter().find_map(|s| self.in_schema(s, &t))),
        }
    }

    /// What `name` denotes; 42P01 naming it when nothing.
    pub fn resolve(&self, name: &ObjectName) -> Result<Resolved> {
        self.lookup(name)?
            .ok_or_else(|| undefined(&name_parts(name).join(".")))
    }

    /// A relation of the catalog (not a system table) named `name`, which
    /// must be of `kind` (42809 otherwise).
    pub fn object(&self, name: &ObjectName, kind: Kind) -> Result<Object> {
        match self.resolve(name)? {
            Resolved::Object(o) if o.kind() == kind => Ok(o),
            Resolved::Object(o) => Err(Error::new(
                ErrorKind::WrongObjectType,
                format!("\"{}\" is not a {}", o.name, kind.noun()),
            )),
            Resolved::System(r) => Err(Error::new(
                ErrorKind::WrongObjectType,
                format!("\"{}\" is a system table", r.name),
            )),
            Resolved::Online(o) => Err(Error::new(
                ErrorKind::WrongObjectType,
                format!(
                    "\"online.{}\" is an online lookup, not a {}",
                    o.name,
                    kind.noun()
                ),
            )),
        }
    }

    /// Where a new object named `name` goes: its schema, or the first
    /// schema of `search_path` that exists (3F000 when none does).
    pub fn for_create(&self, name: &ObjectName) -> Result<RelName> {
        let parts = name_parts(name);
        match Self::split(&parts, &parts.join("."))? {
            (Some(s), t) => Ok(RelName::new(&s, &t)),
            (None, t) => self
                .path
                .iter()
                .filter(|s| !SYSTEM_SCHEMAS.contains(&s.as_str()))
                .find(|s| self.snapshot.schema_exists(s))
                .map(|s| RelName::new(s, &t))
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidSchemaName,
                        "no schema has been selected to create in",
                    )
                }),
        }
    }
}

/// The statement-local key of a table read at a version.
pub fn versioned_reference(name: &ObjectName, version: &TableVersion) -> Result<TableReference> {
    let parts = name_parts(name);
    let [schema, table] = parts.as_slice() else {
        return Err(Error::internal(format!("unbound table version of {name}")));
    };
    let at = time_travel(version)?;
    let tag = match at {
        TimeTravel::Version(v) => format!("@v{v}"),
        TimeTravel::Timestamp(t) => format!("@t{t}"),
    };
    Ok(TableReference::full(tag, schema.clone(), table.clone()))
}

/// `VERSION AS OF n` / `TIMESTAMP AS OF 'ts'`.
pub fn time_travel(v: &TableVersion) -> Result<TimeTravel> {
    let literal = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(n.clone()),
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    let bad = |what: &str| {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("{what} AS OF takes a literal"),
        )
    };
    match v {
        TableVersion::VersionAsOf(e) => {
            let text = literal(e).ok_or_else(|| bad("VERSION"))?;
            Ok(match text.trim().parse::<i64>() {
                Ok(n) => TimeTravel::Version(n),
                Err(_) => TimeTravel::Timestamp(text),
            })
        }
        TableVersion::TimestampAsOf(e) | TableVersion::ForSystemTimeAsOf(e) => Ok(
            TimeTravel::Timestamp(literal(e).ok_or_else(|| bad("TIMESTAMP"))?),
        ),
        other => Err(Error::not_supported(format!("table version {other}"))),
    }
}

/// What a bound statement reads, opened.
#[derive(Default)]
pub struct Bound {
    /// Relations by the qualified reference the statement now uses.
    pub tables: HashMap<TableReference, Arc<dyn TableSource>>,
    /// Tables read at a version, by [`versioned_reference`].
    pub versions: HashMap<TableReference, Arc<dyn TableSource>>,
    /// The relations the statement reads (for views: what they depend on).
    pub depends_on: BTreeSet<RelName>,
}

impl Bound {
    /// The column names of a table the statement reads, as bound (a
    /// table or a table at a version; `None` for anything else).
    pub fn columns(&self, f: &TableFactor) -> Option<Vec<String>> {
        let TableFactor::Table {
            name,
            args: None,
            version,
            ..
        } = f
        else {
            return None;
        };
        let source = match version {
            Some(v) => self.versions.get(&versioned_reference(name, v).ok()?)?,
            None => {
                let [schema, table] = name.0.as_slice() else {
                    return None;
                };
                let key = TableReference::partial(
                    schema.as_ident()?.value.clone(),
                    table.as_ident()?.value.clone(),
                );
                self.tables.get(&key)?
            }
        };
        Some(
            source
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        )
    }
}

/// One reference the walk found.
struct Reference {
    resolved: Resolved,
    version: Option<TableVersion>,
}

/// Qualify every relation name `node` reads (WITH names excepted).
pub fn qualify_node<T: VisitMut>(resolver: &Resolver, node: &mut T) -> Result<()> {
    qualify(resolver, node).map(|_| ())
}

/// [`qualify_node`], returning the relations read.
pub fn qualify_reads<T: VisitMut>(resolver: &Resolver, node: &mut T) -> Result<BTreeSet<RelName>> {
    Ok(qualify(resolver, node)?
        .into_iter()
        .map(|r| r.resolved.rel_name())
        .collect())
}

/// `t.*` of a table read without an alias, once its name is qualified
/// (`"public"."t"`): the wildcard names it the same way, as a column
/// reference `t.a` still finds it.
fn wildcards_of_qualified_tables(body: &mut SetExpr) {
    use datafusion::sql::sqlparser::ast::{SelectItem, SelectItemQualifiedWildcardKind};
    let select = match body {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { left, right, .. } => {
            wildcards_of_qualified_tables(left);
            wildcards_of_qualified_tables(right);
            return;
        }
        _ => return,
    };
    let tables: Vec<ObjectName> = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .filter_map(|f| match f {
            TableFactor::Table {
                name,
                alias: None,
                args: None,
                ..
            } => Some(name.clone()),
            _ => None,
        })
        .collect();
    for item in select.projection.iter_mut() {
        if let SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _) =
            item
            && let [one] = name_parts(n).as_slice()
            && let Some(full) = tables
                .iter()
                .find(|t| name_parts(t).last().is_some_and(|last| last == one))
        {
            *n = full.clone();
        }
    }
}

/// Qualify every relation name `stmt` reads (WITH names excepted) and
/// collect what they denote. Table functions are left alone.
fn qualify<T: VisitMut>(resolver: &Resolver, stmt: &mut T) -> Result<Vec<Reference>> {
    struct V<'r, 'a> {
        resolver: &'r Resolver<'a>,
        scopes: Vec<HashSet<String>>,
        found: Vec<Reference>,
        error: Option<Error>,
    }
    impl VisitorMut for V<'_, '_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            let names = q
                .with
                .as_ref()
                .map(|w| {
                    w.cte_tables
                        .iter()
                        .map(|c| crate::frontend::names::normalize_ident(&c.alias.name))
                        .collect()
                })
                .unwrap_or_default();
            self.scopes.push(names);
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            self.scopes.pop();
            wildcards_of_qualified_tables(&mut q.body);
            ControlFlow::Continue(())
        }
        fn pre_visit_statement(&mut self, s: &mut Statement) -> ControlFlow<()> {
            // The table an INSERT writes is a relation too (DataFusion
            // plans INSERT against it, to type `$n` parameters).
            if let Statement::Insert(ins) = s
                && let datafusion::sql::sqlparser::ast::TableObject::TableName(name) =
                    &mut ins.table
            {
                return self.reference(name, None);
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
            // A training set is the query it stands for: expanded here, so
            // what it reads is qualified by this walk like anything else.
            if let TableFactor::Table {
                name,
                args: Some(args),
                alias,
                ..
            } = f
                && name_parts(name).as_slice() == [crate::features::training::NAME]
            {
                match crate::features::training::expand(self.resolver, &args.args, alias.clone()) {
                    Ok(expanded) => *f = expanded,
                    Err(e) => {
                        self.error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
                return ControlFlow::Continue(());
            }
            let TableFactor::Table {
                name,
                args: None,
                version,
                ..
            } = f
            else {
                return ControlFlow::Continue(());
            };
            let parts = name_parts(name);
            if let [one] = parts.as_slice()
                && version.is_none()
                && self.scopes.iter().any(|s| s.contains(one))
            {
                return ControlFlow::Continue(());
            }
            let version = version.clone();
            self.reference(name, version)
        }
    }
    impl V<'_, '_> {
        fn reference(
            &mut self,
            name: &mut ObjectName,
            version: Option<TableVersion>,
        ) -> ControlFlow<()> {
            match self.resolver.resolve(name) {
                Ok(resolved) => {
                    let r = resolved.rel_name();
                    name.0 = vec![
                        ObjectNamePart::Identifier(quoted(&r.schema)),
                        ObjectNamePart::Identifier(quoted(&r.name)),
                    ];
                    self.found.push(Reference { resolved, version });
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    self.error = Some(e);
                    ControlFlow::Break(())
                }
            }
        }
    }
    let mut v = V {
        resolver,
        scopes: Vec::new(),
        found: Vec::new(),
        error: None,
    };
    let _ = crate::visit::walk_mut(stmt, &mut v);
    match v.error {
        Some(e) => Err(e),
        None => Ok(v.found),
    }
}

/// How deep views may nest in one another.
const MAX_VIEW_DEPTH: usize = 32;

/// Binds the statements of one session statement; views bound inside it
/// share its table snapshots.
pub struct Binder<'s> {
    session: &'s Session,
    /// The snapshot of each Delta table this statement reads, opened once.
    snapshots: HashMap<RelName, DeltaTable>,
    depth: usize,
}

impl<'s> Binder<'s> {
    pub fn new(session: &'s Session) -> Binder<'s> {
        Binder {
            session,
            snapshots: HashMap::new(),
            depth: 0,
        }
    }

    /// The newest snapshot of each Delta table read so far.
    pub fn snapshots(&self) -> &HashMap<RelName, DeltaTable> {
        &self.snapshots
    }

    /// Bind `stmt`: qualify its names and open what they denote.
    pub async fn bind(&mut self, stmt: &mut Statement) -> Result<Bound> {
        let snapshot = self.session.engine.catalog().snapshot();
        let system = self.session.system_tables();
        let references = {
            let resolver = self.session.resolver(&snapshot, &system);
            qualify(&resolver, stmt)?
        };
        let mut bound = Bound::default();
        for r in references {
            let rel = r.resolved.rel_name();
            bound.depends_on.insert(rel.clone());
            let key = TableReference::partial(rel.schema.clone(), rel.name.clone());
            match r.version {
                Some(version) => {
                    let name = ObjectName::from(vec![quoted(&rel.schema), quoted(&rel.name)]);
                    let vkey = versioned_reference(&name, &version)?;
                    if bound.versions.contains_key(&vkey) {
                        continue;
                    }
                    let source = self.versioned(&r.resolved, &version).await?;
                    bound.versions.insert(vkey, source);
                }
                None => {
                    if bound.tables.contains_key(&key) {
                        continue;
                    }
                    let source = self.open(&r.resolved).await?;
                    bound.tables.insert(key, source);
                }
            }
        }
        Ok(bound)
    }

    async fn versioned(
        &mut self,
        resolved: &Resolved,
        version: &TableVersion,
    ) -> Result<Arc<dyn TableSource>> {
        let Resolved::Object(o) = resolved else {
            return Err(only_tables(&resolved.rel_name()));
        };
        let Some(def) = o.stored() else {
            return Err(only_tables(&o.rel_name()));
        };
        let at = time_travel(version)?;
        let lake = self.session.engine.lake();
        let url = lake.url_for(&def.location)?;
        let latest = self.snapshot(&o.rel_name(), &url).await?;
        let table = match at {
            TimeTravel::Version(v) if latest.version() == Some(v as u64) => latest,
            _ => lake.table_at(&url, &at).await?,
        };
        // The keys only choose how a scan decodes, never what it returns,
        // so today's keys serve an older version too.
        Ok(provider_as_source(
            crate::lake::keyed_provider(&table, def.key_columns()).await?,
        ))
    }

    /// The newest snapshot of the table at `url`, once per statement.
    pub async fn snapshot(&mut self, rel: &RelName, url: &url::Url) -> Result<DeltaTable> {
        if let Some(t) = self.snapshots.get(rel) {
            return Ok(t.clone());
        }
        let t = self.session.engine.lake().table_for_read(url).await?;
        self.snapshots.insert(rel.clone(), t.clone());
        Ok(t)
    }

    async fn open(&mut self, resolved: &Resolved) -> Result<Arc<dyn TableSource>> {
        let provider: Arc<dyn TableProvider> = match resolved {
            Resolved::System(r) => self
                .session
                .system_table(r)
                .await?
                .ok_or_else(|| undefined(&r.to_string()))?,
            Resolved::Object(o) => match &o.def {
                Def::Table(_) | Def::MaterializedView(_) => {
                    let def = o.stored().expect("a stored relation");
                    let url = self.session.engine.lake().url_for(&def.location)?;
                    let table = self.snapshot(&o.rel_name(), &url).await?;
                    crate::lake::keyed_provider(&table, def.key_columns()).await?
                }
                Def::View(v) => Box::pin(self.view(o, v)).await?,
                Def::External(x) => self.external(x)?,
                Def::Sequence(d) => crate::engine::sequences::as_relation(self.session, d).await?,
                Def::Schema | Def::FeatureService(_) => {
                    return Err(Error::internal(format!("{} is not a relation", o.name)));
                }
            },
            Resolved::Online(o) => self.online(o).await?,
        };
        Ok(provider_as_source(provider))
    }

    /// A view: its stored (resolved) query, bound and planned here.
    async fn view(&mut self, o: &Object, v: &ViewDef) -> Result<Arc<dyn TableProvider>> {
        let sql = v.sql.as_str();
        if self.depth >= MAX_VIEW_DEPTH {
            return Err(Error::new(
                ErrorKind::InvalidTableDefinition,
                format!(
                    "views nest deeper than {MAX_VIEW_DEPTH} levels at \"{}\"",
                    o.name
                ),
            ));
        }
        let cannot_read = |e: Error| {
            Error::new(
                ErrorKind::DependentObjects,
                format!(
                    "view \"{}.{}\" cannot be read: {}",
                    o.schema, o.name, e.message
                ),
            )
        };
        let mut stmt = match crate::frontend::parse(sql).map_err(cannot_read)?.pop() {
            Some(crate::frontend::Stmt::Sql(s)) => *s,
            _ => return Err(cannot_read(Error::internal("not a query"))),
        };
        // As for a query (the view keeps its query as written).
        crate::engine::names::alias_repeated_names(&mut stmt);
        self.depth += 1;
        let bound = self.bind(&mut stmt).await;
        self.depth -= 1;
        let bound = bound.map_err(cannot_read)?;
        let plan = self.session.plan_bound(stmt, &bound).map_err(cannot_read)?;
        let plan =
            crate::catalog::provider::view_columns(plan, v).map_err(|e| cannot_read(e.into()))?;
        Ok(Arc::new(datafusion::catalog::view::ViewTable::new(
            plan,
            Some(sql.to_string()),
        )))
    }

    /// `online.<view>` read as a relation: the online index's live rows.
    /// A service has no rows of its own to scan.
    async fn online(&self, o: &Object) -> Result<Arc<dyn TableProvider>> {
        if o.kind() == Kind::FeatureService {
            return Err(Error::not_supported(format!(
                "online.{0} answers lookups by all its entity keys only \
                 (SELECT ... FROM online.{0} WHERE key = value AND ...); \
                 read its feature views for other queries",
                o.name
            )));
        }
        let online = self.session.engine.online();
        let index = online.index(o).await?;
        let rows = index.live_rows(crate::features::online::now_micros())?;
        Ok(Arc::new(datafusion::datasource::MemTable::try_new(
            rows.schema(),
            vec![vec![rows]],
        )?))
    }

    /// An external table: its files, read by the table function of its format.
    fn external(&self, x: &ExternalDef) -> Result<Arc<dyn TableProvider>> {
        let state = self.session.context().state();
        crate::ingest::files::external_table(x, self.session.engine.lake(), &state)
    }
}

fn only_tables(r: &RelName) -> Error {
    Error::new(
        ErrorKind::WrongObjectType,
        format!("\"{r}\" is not a table; only tables have versions"),
    )
}
