//! The catalog: schemas, tables and views, persisted in the lake.
//!
//! ```text
//!   <lake>/_sluice/catalog  (Delta table, one row per object)
//!     kind | schema_name | name | definition
//!     ------+-------------+------+------------------------------------------
//!     schema|             | raw  |
//!     table | raw         | t    | {"columns":[...],"location":"raw/t",...}
//!     view  | raw         | v    | SELECT ...
//! ```
//!
//! Every change rewrites the (small) catalog table in one Delta commit, so a
//! change is atomic and a concurrent change by another process is detected by
//! Delta's conflict checker and retried against the newer state.

pub mod info_schema;
pub mod pg_constraints;
pub mod provider;
pub mod rules;

use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::SessionContext;
use deltalake::protocol::SaveMode;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::lake::Lake;
pub use crate::types::PgType;

/// Database name clients connect to and the DataFusion catalog name.
pub const DATABASE: &str = "sluice";
pub const DEFAULT_SCHEMA: &str = "public";
/// Schemas that exist without being in the catalog table.
pub const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", SLUICE_SCHEMA];

/// Sluice's own system tables (`sluice.expectation_results`).
pub const SLUICE_SCHEMA: &str = "sluice";
const CATALOG_LOCATION: &str = "_sluice/catalog";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Schema,
    Table,
    View,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Schema => "schema",
            Kind::Table => "table",
            Kind::View => "view",
        }
    }
    fn parse(s: &str) -> Result<Kind> {
        Ok(match s {
            "schema" => Kind::Schema,
            "table" => Kind::Table,
            "view" => Kind::View,
            other => return Err(Error::internal(format!("unknown catalog kind {other}"))),
        })
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
    pub checks: Vec<rules::CheckDef>,
    /// PRIMARY KEY and UNIQUE constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<rules::KeyDef>,
    /// FOREIGN KEY constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<rules::ForeignKeyDef>,
    /// Expectations (`CONSTRAINT name EXPECT ...`), in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<rules::ExpectDef>,
}

impl TableDef {
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
}

/// One catalog row.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: Kind,
    /// Empty for schemas.
    pub schema: String,
    pub name: String,
    /// JSON [`TableDef`] for tables, the SELECT text for views.
    pub definition: String,
}

impl Entry {
    pub fn schema(name: &str) -> Entry {
        Entry {
            kind: Kind::Schema,
            schema: String::new(),
            name: name.to_string(),
            definition: String::new(),
        }
    }

    pub fn table(schema: &str, name: &str, def: &TableDef) -> Entry {
        Entry {
            kind: Kind::Table,
            schema: schema.to_string(),
            name: name.to_string(),
            definition: serde_json::to_string(def).expect("table definitions serialize"),
        }
    }

    pub fn view(schema: &str, name: &str, sql: &str) -> Entry {
        Entry {
            kind: Kind::View,
            schema: schema.to_string(),
            name: name.to_string(),
            definition: sql.to_string(),
        }
    }

    pub fn table_def(&self) -> Result<TableDef> {
        serde_json::from_str(&self.definition).map_err(|e| {
            Error::internal(format!(
                "catalog entry for table {}.{} is unreadable: {e}",
                self.schema, self.name
            ))
        })
    }
}

/// The catalog as of one Delta version.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub version: Option<u64>,
    pub entries: Vec<Entry>,
}

impl Snapshot {
    pub fn schema_exists(&self, name: &str) -> bool {
        SYSTEM_SCHEMAS.contains(&name)
            || self
                .entries
                .iter()
                .any(|e| e.kind == Kind::Schema && e.name == name)
    }

    pub fn schemas(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.kind == Kind::Schema)
            .map(|e| e.name.clone())
            .collect()
    }

    /// A table or view in a schema.
    pub fn relation(&self, schema: &str, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.kind != Kind::Schema && e.schema == schema && e.name == name)
    }

    pub fn relations_in(&self, schema: &str) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(move |e| e.kind != Kind::Schema && e.schema == schema)
    }
}

pub struct Catalog {
    lake: Arc<Lake>,
    url: Url,
    current: RwLock<Arc<Snapshot>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("url", &self.url.as_str())
            .finish()
    }
}

fn catalog_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("schema_name", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("definition", DataType::Utf8, false),
    ]))
}

impl Catalog {
    /// Open the lake's catalog, creating it (with schema `public`) on first use.
    pub async fn open(lake: Arc<Lake>) -> Result<Arc<Catalog>> {
        let url = lake.url_for(CATALOG_LOCATION)?;
        if !lake.exists(&url).await? {
            let created = lake
                .create(&url, &catalog_schema(), &[], "sluice_catalog")
                .await;
            if let Err(e) = created
                && !lake.exists(&url).await?
            {
                // Another process creating it at the same time is fine.
                return Err(e);
            }
            let catalog = Catalog {
                lake: lake.clone(),
                url: url.clone(),
                current: RwLock::new(Arc::new(Snapshot::default())),
            };
            catalog
                .mutate(|entries| {
                    if !entries
                        .iter()
                        .any(|e| e.kind == Kind::Schema && e.name == DEFAULT_SCHEMA)
                    {
                        entries.push(Entry::schema(DEFAULT_SCHEMA));
                    }
                    Ok(())
                })
                .await?;
        }
        let catalog = Arc::new(Catalog {
            lake,
            url,
            current: RwLock::new(Arc::new(Snapshot::default())),
        });
        catalog.refresh().await?;
        Ok(catalog)
    }

    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    /// The last snapshot read, without touching storage.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap().clone()
    }

    /// Bring the catalog to the newest committed version.
    pub async fn refresh(&self) -> Result<Arc<Snapshot>> {
        let table = self.lake.table(&self.url).await?;
        let version = table.version();
        let held = self.snapshot();
        if held.version == version && version.is_some() {
            return Ok(held);
        }
        let entries = read_entries(&table).await?;
        let snap = Arc::new(Snapshot { version, entries });
        let mut cur = self.current.write().unwrap();
        if cur.version.is_none_or(|v| version.is_some_and(|n| n >= v)) {
            *cur = snap.clone();
        }
        Ok(snap)
    }

    /// Apply a change to the catalog as one atomic commit. `change` sees the
    /// newest entries and may refuse (duplicate names, missing objects); on a
    /// concurrent commit it runs again on the newer state.
    pub async fn mutate<F>(&self, change: F) -> Result<Arc<Snapshot>>
    where
        F: Fn(&mut Vec<Entry>) -> Result<()>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let table = self.lake.table(&self.url).await?;
            let mut entries = read_entries(&table).await?;
            change(&mut entries)?;
            let batch = entries_to_batch(&entries)?;
            let result = table
                .clone()
                .write(vec![batch])
                .with_save_mode(SaveMode::Overwrite)
                .await;
            match result {
                Ok(written) => {
                    self.lake.remember(&written);
                    return self.refresh().await;
                }
                Err(e) => {
                    let err = Error::from(e);
                    if err.kind == ErrorKind::SerializationFailure && attempt < 10 {
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }
}

async fn read_entries(table: &deltalake::DeltaTable) -> Result<Vec<Entry>> {
    let provider = crate::lake::provider(table).await?;
    let ctx = SessionContext::new();
    let batches = ctx.read_table(provider)?.collect().await?;
    let mut out = Vec::new();
    for b in batches {
        let col = |i: usize| -> Result<StringArray> {
            let arr = datafusion::arrow::compute::cast(b.column(i), &DataType::Utf8)?;
            arr.as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .ok_or_else(|| Error::internal("catalog column is not text"))
        };
        let (k, s, n, d) = (col(0)?, col(1)?, col(2)?, col(3)?);
        for i in 0..b.num_rows() {
            if k.is_null(i) {
                continue;
            }
            out.push(Entry {
                kind: Kind::parse(k.value(i))?,
                schema: s.value(i).to_string(),
                name: n.value(i).to_string(),
                definition: d.value(i).to_string(),
            });
        }
    }
    // Stable order regardless of file layout.
    out.sort_by(|a, b| {
        (a.kind.as_str(), &a.schema, &a.name).cmp(&(b.kind.as_str(), &b.schema, &b.name))
    });
    Ok(out)
}

fn entries_to_batch(entries: &[Entry]) -> Result<RecordBatch> {
    let kinds: StringArray = entries.iter().map(|e| Some(e.kind.as_str())).collect();
    let schemas: StringArray = entries.iter().map(|e| Some(e.schema.as_str())).collect();
    let names: StringArray = entries.iter().map(|e| Some(e.name.as_str())).collect();
    let defs: StringArray = entries
        .iter()
        .map(|e| Some(e.definition.as_str()))
        .collect();
    Ok(RecordBatch::try_new(
        catalog_schema(),
        vec![
            Arc::new(kinds),
            Arc::new(schemas),
            Arc::new(names),
            Arc::new(defs),
        ],
    )?)
}
