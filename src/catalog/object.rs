//! The kinds of object the catalog holds, each with its definition parsed
//! once when the catalog version is read.
//!
//! ```text
//!  Object { kind, schema, name, def }
//!            │
//!            ├─ Schema
//!            ├─ Table(TableDef)        columns, partitioning, location, rules
//!            ├─ View(ViewDef)          resolved SQL, output columns, dependencies
//!            ├─ MaterializedView(MatViewDef)  a view's query, stored as a table
//!            └─ External(ExternalDef)  format, location, options (schema on read)
//! ```
//!
//! Each object is stored as one row of the catalog table: its kind, schema,
//! name and definition (JSON). Comments (`COMMENT ON`) on an object and on
//! its columns are kept beside its definition, under `comments`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::rules::{CheckDef, ExpectDef, ForeignKeyDef, KeyDef};
use crate::error::{Error, ErrorKind, Result};
use crate::types::PgType;

/// What an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Schema,
    Table,
    View,
    /// Files read in place (`CREATE EXTERNAL TABLE`), never written.
    External,
    /// A query whose result is kept as a Delta table and refreshed.
    MaterializedView,
    /// A named bundle of feature view columns (not a relation).
    FeatureService,
}

impl Kind {
    /// How the catalog table spells the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Schema => "schema",
            Kind::Table => "table",
            Kind::View => "view",
            Kind::External => "external",
            Kind::MaterializedView => "matview",
            Kind::FeatureService => "feature_service",
        }
    }

    pub fn parse(s: &str) -> Result<Kind> {
        Ok(match s {
            "schema" => Kind::Schema,
            "table" => Kind::Table,
            "view" => Kind::View,
            "external" => Kind::External,
            "matview" => Kind::MaterializedView,
            "feature_service" => Kind::FeatureService,
            other => return Err(Error::internal(format!("unknown catalog kind {other}"))),
        })
    }

    /// As PostgreSQL names it in messages (`"x" is not a view`).
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Schema => "schema",
            Kind::Table | Kind::External => "table",
            Kind::View => "view",
            Kind::MaterializedView => "materialized view",
            Kind::FeatureService => "feature service",
        }
    }
}

/// One column of a table as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: PgType,
    #[serde(default)]
    pub not_null: bool,
    /// Default expression, as SQL text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl ColumnDef {
    /// A nullable column without default.
    pub fn plain(name: &str, ty: PgType) -> ColumnDef {
        ColumnDef {
            name: name.to_string(),
            ty,
            not_null: false,
            default: None,
        }
    }
}

/// What the catalog records for a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub columns: Vec<ColumnDef>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Location relative to the lake root.
    pub location: String,
    /// CHECK constraints, in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDef>,
    /// PRIMARY KEY and UNIQUE constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyDef>,
    /// FOREIGN KEY constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKeyDef>,
    /// Expectations (`CONSTRAINT name EXPECT ...`), in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<ExpectDef>,
}

impl TableDef {
    /// A table of these columns at `location`, without rules.
    pub fn new(columns: Vec<ColumnDef>, location: String) -> TableDef {
        TableDef {
            columns,
            partition_by: vec![],
            location,
            checks: vec![],
            keys: vec![],
            foreign_keys: vec![],
            expectations: vec![],
        }
    }

    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.arrow_type(), !c.not_null))
                .collect::<Vec<_>>(),
        ))
    }

    /// Names of every constraint and expectation: one namespace per table.
    pub fn constraint_names(&self) -> Vec<String> {
        let keys = self.keys.iter().map(|k| &k.name);
        let fks = self.foreign_keys.iter().map(|f| &f.name);
        let checks = self.checks.iter().map(|c| &c.name);
        let expectations = self.expectations.iter().map(|e| &e.name);
        keys.chain(fks)
            .chain(checks)
            .chain(expectations)
            .cloned()
            .collect()
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }
}

/// A relation named by schema and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RelName {
    pub schema: String,
    pub name: String,
}

impl RelName {
    pub fn new(schema: &str, name: &str) -> RelName {
        RelName {
            schema: schema.to_string(),
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for RelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// A view: its query with every name resolved when it was created (as
/// PostgreSQL keeps a view's parsed tree, not its text), the columns it
/// returns, and the relations it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    pub sql: String,
    #[serde(default)]
    pub columns: Vec<ColumnDef>,
    #[serde(default)]
    pub depends_on: Vec<RelName>,
}

/// A materialized view: the query it keeps (names resolved at creation,
/// as for a view) and the Delta table its result is stored in. What each
/// refresh consumed is recorded in that table's own commits (Delta
/// application transactions), not here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatViewDef {
    pub query: ViewDef,
    pub table: TableDef,
    /// Set for a feature view: what its columns mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<FeatureDef>,
    /// When it refreshes by itself; `None`: only when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<super::schedule::RefreshPolicy>,
}

/// A feature view's semantics: the rows are the history of each entity's
/// feature values, each valid from its event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDef {
    /// The entity key columns.
    pub entity: Vec<String>,
    /// The event time column: when the values became true.
    pub timestamp: String,
    /// When the values became known, if not at the event time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// How long a value stays valid after its event time, in microseconds,
    /// and as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_micros: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(default)]
    pub online: bool,
}

impl FeatureDef {
    /// The feature columns of a view with these `columns`: all but the
    /// entity keys and times.
    pub fn features<'a>(&'a self, columns: &'a [ColumnDef]) -> impl Iterator<Item = &'a ColumnDef> {
        columns.iter().filter(move |c| {
            !self.entity.contains(&c.name)
                && c.name != self.timestamp
                && self.created_at.as_deref() != Some(c.name.as_str())
        })
    }
}

/// A feature service: feature views, each with the features it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureServiceDef {
    pub views: Vec<ServiceView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    pub view: RelName,
    pub features: Vec<String>,
}

/// Files read in place: `CREATE EXTERNAL TABLE ... STORED AS <format>
/// LOCATION '<path>' [OPTIONS (...)]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalDef {
    /// csv, json, ndjson or parquet.
    pub format: String,
    pub location: String,
    #[serde(default)]
    pub options: Vec<(String, String)>,
    /// Declared columns as SQL (`a integer, b text`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<String>,
    /// The columns the files had when the table was created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema: Vec<ColumnDef>,
}

/// The parsed definition of an object, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Def {
    Schema,
    Table(Arc<TableDef>),
    View(Arc<ViewDef>),
    External(Arc<ExternalDef>),
    MaterializedView(Arc<MatViewDef>),
    FeatureService(Arc<FeatureServiceDef>),
}

/// One object of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Empty for schemas.
    pub schema: String,
    pub name: String,
    pub def: Def,
    /// `COMMENT ON` texts: the object's under "", its columns' under
    /// their names.
    pub comments: Comments,
}

/// Comments of an object and its columns (see [`Object::comments`]).
pub type Comments = std::collections::BTreeMap<String, String>;

/// The key of the comments in a stored definition.
const COMMENTS_KEY: &str = "comments";

/// How views and external tables were stored before definitions were JSON.
const LEGACY_EXTERNAL_MARKER: &str = "/* external table */ ";

impl Object {
    pub fn schema(name: &str) -> Object {
        Object {
            schema: String::new(),
            name: name.to_string(),
            def: Def::Schema,
            comments: Comments::new(),
        }
    }

    pub fn table(schema: &str, name: &str, def: TableDef) -> Object {
        Object {
            schema: schema.to_string(),
            name: name.to_string(),
            def: Def::Table(Arc::new(def)),
            comments: Comments::new(),
        }
    }

    pub fn view(schema: &str, name: &str, def: ViewDef) -> Object {
        Object {
            schema: schema.to_string(),
            name: name.to_string(),
            def: Def::View(Arc::new(def)),
            comments: Comments::new(),
        }
    }

    pub fn external(schema: &str, name: &str, def: ExternalDef) -> Object {
        Object {
            schema: schema.to_string(),
            name: name.to_string(),
            def: Def::External(Arc::new(def)),
            comments: Comments::new(),
        }
    }

    pub fn materialized_view(schema: &str, name: &str, def: MatViewDef) -> Object {
        Object {
            schema: schema.to_string(),
            name: name.to_string(),
            def: Def::MaterializedView(Arc::new(def)),
            comments: Comments::new(),
        }
    }

    pub fn feature_service(schema: &str, name: &str, def: FeatureServiceDef) -> Object {
        Object {
            schema: schema.to_string(),
            name: name.to_string(),
            def: Def::FeatureService(Arc::new(def)),
            comments: Comments::new(),
        }
    }

    /// The feature semantics of a feature view.
    pub fn feature(&self) -> Option<&FeatureDef> {
        match &self.def {
            Def::MaterializedView(m) => m.feature.as_ref(),
            _ => None,
        }
    }

    pub fn kind(&self) -> Kind {
        match self.def {
            Def::Schema => Kind::Schema,
            Def::Table(_) => Kind::Table,
            Def::View(_) => Kind::View,
            Def::External(_) => Kind::External,
            Def::MaterializedView(_) => Kind::MaterializedView,
            Def::FeatureService(_) => Kind::FeatureService,
        }
    }

    /// The Delta table holding this object's rows: a table's own, or the
    /// one a materialized view keeps its result in.
    pub fn stored(&self) -> Option<&TableDef> {
        match &self.def {
            Def::Table(t) => Some(t),
            Def::MaterializedView(m) => Some(&m.table),
            _ => None,
        }
    }

    /// The columns of a relation as its definition declares them (empty
    /// for a schema, a feature service, or an external table created
    /// before its columns were recorded).
    pub fn declared_columns(&self) -> &[ColumnDef] {
        match &self.def {
            Def::Table(t) => &t.columns,
            Def::MaterializedView(m) => &m.table.columns,
            Def::View(v) => &v.columns,
            Def::External(e) => &e.schema,
            Def::Schema | Def::FeatureService(_) => &[],
        }
    }

    pub fn rel_name(&self) -> RelName {
        RelName::new(&self.schema, &self.name)
    }

    /// Is this a relation (anything but a schema) named `schema.name`?
    pub fn is_relation(&self, schema: &str, name: &str) -> bool {
        !matches!(self.kind(), Kind::Schema | Kind::FeatureService)
            && self.schema == schema
            && self.name == name
    }

    /// The table definition, or 42809 naming the object.
    pub fn table_def(&self) -> Result<Arc<TableDef>> {
        match &self.def {
            Def::Table(t) => Ok(t.clone()),
            Def::MaterializedView(_) => Err(Error::new(
                ErrorKind::WrongObjectType,
                format!("cannot change materialized view \"{}\"", self.name),
            )),
            _ => Err(Error::new(
                ErrorKind::WrongObjectType,
                format!("\"{}\" is not a table", self.name),
            )),
        }
    }

    /// The table definition to change in place (copied if shared).
    pub fn table_def_mut(&mut self) -> Result<&mut TableDef> {
        let name = self.name.clone();
        match &mut self.def {
            Def::Table(t) => Ok(Arc::make_mut(t)),
            _ => Err(Error::new(
                ErrorKind::WrongObjectType,
                format!("\"{name}\" is not a table"),
            )),
        }
    }

    /// The relations this object reads or refers to.
    pub fn depends_on(&self) -> Vec<RelName> {
        match &self.def {
            Def::Schema | Def::External(_) => vec![],
            Def::Table(t) => {
                let mut out: Vec<RelName> = t
                    .foreign_keys
                    .iter()
                    .map(|fk| RelName::new(&fk.parent_schema, &fk.parent_table))
                    .filter(|r| r.schema != self.schema || r.name != self.name)
                    .collect();
                out.dedup();
                out
            }
            Def::View(v) => v.depends_on.clone(),
            Def::MaterializedView(m) => m.query.depends_on.clone(),
            Def::FeatureService(s) => s.views.iter().map(|v| v.view.clone()).collect(),
        }
    }

    /// The definition as stored in the catalog table.
    pub fn definition_text(&self) -> String {
        let json = match &self.def {
            Def::Schema if self.comments.is_empty() => return String::new(),
            Def::Schema => Ok(serde_json::Value::Object(Default::default())),
            Def::Table(t) => serde_json::to_value(t.as_ref()),
            Def::View(v) => serde_json::to_value(v.as_ref()),
            Def::External(e) => serde_json::to_value(e.as_ref()),
            Def::MaterializedView(m) => serde_json::to_value(m.as_ref()),
            Def::FeatureService(s) => serde_json::to_value(s.as_ref()),
        };
        let mut json = json.expect("catalog definitions serialize");
        if !self.comments.is_empty()
            && let serde_json::Value::Object(map) = &mut json
        {
            map.insert(
                COMMENTS_KEY.into(),
                serde_json::to_value(&self.comments).expect("comments serialize"),
            );
        }
        json.to_string()
    }

    /// The comment on the object (`column` None) or on one of its columns.
    pub fn comment(&self, column: Option<&str>) -> Option<&str> {
        self.comments.get(column.unwrap_or("")).map(String::as_str)
    }

    /// Read one catalog row.
    pub fn from_row(kind: &str, schema: &str, name: &str, definition: &str) -> Result<Object> {
        let unreadable = |e: serde_json::Error| {
            Error::internal(format!(
                "catalog entry for {kind} {schema}.{name} is unreadable: {e}"
            ))
        };
        let comments: Comments = if definition.trim_start().starts_with('{') {
            serde_json::from_str::<serde_json::Value>(definition)
                .ok()
                .and_then(|mut v| v.get_mut(COMMENTS_KEY).map(serde_json::Value::take))
                .map(|c| serde_json::from_value(c).map_err(unreadable))
                .transpose()?
                .unwrap_or_default()
        } else {
            Comments::new()
        };
        let def = match Kind::parse(kind)? {
            Kind::Schema => Def::Schema,
            Kind::Table => Def::Table(Arc::new(
                serde_json::from_str(definition).map_err(unreadable)?,
            )),
            Kind::View if definition.starts_with(LEGACY_EXTERNAL_MARKER) => {
                Def::External(Arc::new(legacy_external(
                    &definition[LEGACY_EXTERNAL_MARKER.len()..],
                )?))
            }
            // Views were once stored as bare SQL text.
            Kind::View if !definition.trim_start().starts_with('{') => {
                Def::View(Arc::new(ViewDef {
                    sql: definition.to_string(),
                    columns: vec![],
                    depends_on: vec![],
                }))
            }
            Kind::View => Def::View(Arc::new(
                serde_json::from_str(definition).map_err(unreadable)?,
            )),
            Kind::External => Def::External(Arc::new(
                serde_json::from_str(definition).map_err(unreadable)?,
            )),
            Kind::MaterializedView => Def::MaterializedView(Arc::new(
                serde_json::from_str(definition).map_err(unreadable)?,
            )),
            Kind::FeatureService => Def::FeatureService(Arc::new(
                serde_json::from_str(definition).map_err(unreadable)?,
            )),
        };
        Ok(Object {
            schema: schema.to_string(),
            name: name.to_string(),
            def,
            comments,
        })
    }
}

/// An external table stored the old way: a `SELECT * FROM read_<fmt>(...)`
/// whose named arguments were `'key =>', value` pairs.
fn legacy_external(select: &str) -> Result<ExternalDef> {
    use datafusion::sql::sqlparser::ast::{
        Expr, FunctionArg, FunctionArgExpr, SetExpr, Statement, TableFactor, Value,
    };
    let bad = || Error::internal(format!("unreadable external table definition: {select}"));
    let stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
        select,
    )
    .map_err(|_| bad())?
    .pop()
    .ok_or_else(bad)?;
    let Statement::Query(q) = stmt else {
        return Err(bad());
    };
    let SetExpr::Select(s) = q.body.as_ref() else {
        return Err(bad());
    };
    let Some(TableFactor::Table {
        name,
        args: Some(args),
        ..
    }) = s.from.first().map(|f| &f.relation)
    else {
        return Err(bad());
    };
    let format = match name.to_string().as_str() {
        "read_csv" => "csv",
        "read_json" => "json",
        "read_parquet" => "parquet",
        _ => return Err(bad()),
    };
    let text = |a: &FunctionArg| match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            Value::Boolean(b) => Some(b.to_string()),
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        _ => None,
    };
    let mut items = args.args.iter();
    let location = items.next().and_then(text).ok_or_else(bad)?;
    let mut options = Vec::new();
    let mut columns = None;
    let mut format = format.to_string();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        let key = text(k).ok_or_else(bad)?;
        let key = key.trim_end_matches(" =>").to_string();
        let value = text(v).ok_or_else(bad)?;
        match key.as_str() {
            "columns" => columns = Some(value),
            "format" if value == "newline_delimited" => format = "ndjson".into(),
            _ => options.push((key, value)),
        }
    }
    Ok(ExternalDef {
        format,
        location,
        options,
        columns,
        schema: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_rows_read_as_typed_objects() {
        let v = Object::from_row("view", "raw", "v", "SELECT 1").unwrap();
        assert_eq!(v.kind(), Kind::View);
        let e = Object::from_row(
            "view",
            "raw",
            "e",
            "/* external table */ SELECT * FROM read_csv('landing/*.csv', 'header =>', true, \
             'columns =>', 'a int')",
        )
        .unwrap();
        let Def::External(x) = &e.def else { panic!() };
        assert_eq!(x.format, "csv");
        assert_eq!(x.location, "landing/*.csv");
        assert_eq!(x.options, vec![("header".to_string(), "true".to_string())]);
        assert_eq!(x.columns.as_deref(), Some("a int"));
    }

    #[test]
    fn definitions_round_trip() {
        let t = Object::table(
            "raw",
            "t",
            TableDef::new(
                vec![ColumnDef::plain("a", PgType::simple("bigint"))],
                "raw/t".into(),
            ),
        );
        let back = Object::from_row("table", "raw", "t", &t.definition_text()).unwrap();
        assert_eq!(back, t);
    }
}
