//! The catalog: typed objects (schemas, tables, views, external tables),
//! persisted in the lake.
//!
//! ```text
//!   <lake>/_sluice/catalog  (Delta table, one row per object)
//!     kind    | schema_name | name | definition
//!     --------+-------------+------+----------------------------------------
//!     schema  |             | raw  |
//!     table   | raw         | t    | {"columns":[...],"location":"raw/t",...}
//!     view    | raw         | v    | {"sql":"SELECT ...","depends_on":[...]}
//!     external| raw         | e    | {"format":"csv","location":"landing/"}
//! ```
//!
//! A [`Snapshot`] is one catalog version, parsed once into [`Object`]s and
//! indexed; every statement reading that version shares it.
//!
//! Every change rewrites the (small) catalog table in one Delta commit, so a
//! change is atomic and a concurrent change by another process is detected by
//! Delta's conflict checker and retried against the newer state.

mod deparse;
pub mod info_schema;
mod object;
pub mod pg_constraints;
pub mod pg_proc;
pub mod pg_setup;
pub mod provider;
pub mod rules;
pub mod schedule;
pub mod system;

pub use object::{
    ColumnDef, Def, ExternalDef, FeatureDef, FeatureServiceDef, Identity, Kind, MatViewDef, Object,
    RelName, SequenceDef, ServiceView, TableDef, ViewDef,
};
use rules::ForeignKeyDef;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::SessionContext;
use deltalake::protocol::SaveMode;
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

/// The catalog as of one Delta version: every object parsed once,
/// indexed by name, shared by every statement that reads this version.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub version: Option<u64>,
    objects: Vec<Object>,
    /// (schema, name) of each relation to its position in `objects`.
    relations: HashMap<(String, String), usize>,
    schemas: BTreeSet<String>,
    /// For each table, the foreign keys (of any table) that point at it:
    /// (child, the foreign key).
    referencing: HashMap<(String, String), Vec<(RelName, ForeignKeyDef)>>,
    /// Each relation's OID (see [`pg_constraints::relation_oids`]), worked
    /// out when first asked for.
    oids: std::sync::OnceLock<HashMap<(String, String), i64>>,
    /// Whether a table or materialized view has a `character(n)` column.
    character_columns: bool,
}

impl Snapshot {
    fn new(version: Option<u64>, mut objects: Vec<Object>) -> Snapshot {
        // Stable order regardless of file layout.
        objects.sort_by(|a, b| {
            (a.kind().as_str(), &a.schema, &a.name).cmp(&(b.kind().as_str(), &b.schema, &b.name))
        });
        let mut relations = HashMap::new();
        let mut schemas = BTreeSet::new();
        let mut referencing: HashMap<(String, String), Vec<(RelName, ForeignKeyDef)>> =
            HashMap::new();
        for (i, o) in objects.iter().enumerate() {
            match &o.def {
                Def::Schema => {
                    schemas.insert(o.name.clone());
                }
                Def::FeatureService(_) => {}
                def => {
                    relations.insert((o.schema.clone(), o.name.clone()), i);
                    if let Def::Table(t) = def {
                        for fk in &t.foreign_keys {
                            referencing
                                .entry((fk.parent_schema.clone(), fk.parent_table.clone()))
                                .or_default()
                                .push((o.rel_name(), fk.clone()));
                        }
                    }
                }
            }
        }
        let character_columns = objects.iter().any(|o| {
            o.stored()
                .is_some_and(|t| t.columns.iter().any(|c| c.ty.name == "character"))
        });
        Snapshot {
            version,
            objects,
            relations,
            schemas,
            referencing,
            oids: Default::default(),
            character_columns,
        }
    }

    /// Whether a table or materialized view has a `character(n)` column
    /// (whose values the planner compares as such).
    pub fn has_character_columns(&self) -> bool {
        self.character_columns
    }

    /// The OID `pg_class` gives relation `schema.name`, the same in every
    /// session and on every server of the lake.
    pub fn relation_oid(&self, schema: &str, name: &str) -> Option<i64> {
        self.oids
            .get_or_init(|| pg_constraints::relation_oids(self))
            .get(&(schema.to_string(), name.to_string()))
            .copied()
    }

    /// Every object, schemas first, in name order.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// Every relation of the given kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        self.objects.iter().filter(move |o| o.kind() == kind)
    }

    pub fn schema_exists(&self, name: &str) -> bool {
        SYSTEM_SCHEMAS.contains(&name) || self.schemas.contains(name)
    }

    /// The schemas users created, in name order.
    pub fn schemas(&self) -> Vec<String> {
        self.schemas.iter().cloned().collect()
    }

    /// A relation (table, view, external table) in a schema.
    pub fn relation(&self, schema: &str, name: &str) -> Option<&Object> {
        self.relations
            .get(&(schema.to_string(), name.to_string()))
            .map(|&i| &self.objects[i])
    }

    pub fn relations_in(&self, schema: &str) -> impl Iterator<Item = &Object> {
        self.objects
            .iter()
            .filter(move |o| o.kind() != Kind::Schema && o.schema == schema)
    }

    /// The foreign keys of all tables (the table itself included) that
    /// point at `schema.table`.
    pub fn referencing(&self, schema: &str, table: &str) -> &[(RelName, ForeignKeyDef)] {
        self.referencing
            .get(&(schema.to_string(), table.to_string()))
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }

    /// The sequences a column of `schema.table` owns (serial and identity
    /// columns, `OWNED BY`), with the column.
    pub fn owned_sequences<'a>(
        &'a self,
        schema: &'a str,
        table: &'a str,
    ) -> impl Iterator<Item = (&'a Object, &'a Arc<SequenceDef>, &'a str)> {
        self.of_kind(Kind::Sequence)
            .filter_map(move |o| match &o.def {
                Def::Sequence(d) if o.schema == schema => match &d.owned_by {
                    Some((t, c)) if t == table => Some((o, d, c.as_str())),
                    _ => None,
                },
                _ => None,
            })
    }

    /// The objects whose definitions read or refer to `schema.name`.
    pub fn dependents(&self, schema: &str, name: &str) -> Vec<&Object> {
        let target = RelName::new(schema, name);
        self.objects
            .iter()
            .filter(|o| o.depends_on().contains(&target))
            .collect()
    }
}

pub struct Catalog {
    lake: Arc<Lake>,
    url: Url,
    current: RwLock<Arc<Snapshot>>,
}

crate::send_sync::send_sync_by_fields!(Catalog { lake, url, current });

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
                .mutate(|objects| {
                    if !objects
                        .iter()
                        .any(|o| o.kind() == Kind::Schema && o.name == DEFAULT_SCHEMA)
                    {
                        objects.push(Object::schema(DEFAULT_SCHEMA));
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

    /// Bring the catalog to the newest committed version (within the
    /// lake's freshness window; see [`Lake::table`]).
    pub async fn refresh(&self) -> Result<Arc<Snapshot>> {
        let table = self.lake.table_for_read(&self.url).await?;
        self.snapshot_of(&table).await
    }

    /// The parsed snapshot of the catalog table state `table`.
    async fn snapshot_of(&self, table: &deltalake::DeltaTable) -> Result<Arc<Snapshot>> {
        let version = table.version();
        let held = self.snapshot();
        if held.version == version && version.is_some() {
            return Ok(held);
        }
        let snap = Arc::new(Snapshot::new(version, read_objects(table).await?));
        let mut cur = self.current.write().unwrap();
        if cur.version.is_none_or(|v| version.is_some_and(|n| n >= v)) {
            *cur = snap.clone();
        }
        Ok(snap)
    }

    /// Apply a change to the catalog as one atomic commit. `change` sees the
    /// newest objects and may refuse (duplicate names, missing objects); on
    /// a concurrent commit it runs again on the newer state.
    pub async fn mutate<F>(&self, change: F) -> Result<Arc<Snapshot>>
    where
        F: Fn(&mut Vec<Object>) -> Result<()>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The newest state, not the freshness window's: the commit
            // below is conditional on it anyway.
            let table = self.lake.table_now(&self.url).await?;
            let mut objects = self.snapshot_of(&table).await?.objects().to_vec();
            change(&mut objects)?;
            let batch = objects_to_batch(&objects)?;
            let result = table
                .clone()
                .write(vec![batch])
                .with_save_mode(SaveMode::Overwrite)
                // Log cleanup runs with checkpoints (`Lake::committed`).
                .with_commit_properties(
                    deltalake::kernel::transaction::CommitProperties::default()
                        .with_cleanup_expired_logs(Some(false)),
                )
                .await;
            match result {
                Ok(written) => {
                    self.lake.committed(&written).await;
                    return self.snapshot_of(&written).await;
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

async fn read_objects(table: &deltalake::DeltaTable) -> Result<Vec<Object>> {
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
            out.push(Object::from_row(
                k.value(i),
                s.value(i),
                n.value(i),
                d.value(i),
            )?);
        }
    }
    Ok(out)
}

fn objects_to_batch(objects: &[Object]) -> Result<RecordBatch> {
    let kinds: StringArray = objects.iter().map(|o| Some(o.kind().as_str())).collect();
    let schemas: StringArray = objects.iter().map(|o| Some(o.schema.as_str())).collect();
    let names: StringArray = objects.iter().map(|o| Some(o.name.as_str())).collect();
    let defs: StringArray = objects.iter().map(|o| Some(o.definition_text())).collect();
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
