//! `information_schema` built from the catalog, with PostgreSQL type names
//! (DataFusion's own reports Arrow names, which clients such as dbt misread).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;

use super::provider::ContextFactory;
use super::{Catalog, ColumnDef, DATABASE, Def, Kind, PgType, SYSTEM_SCHEMAS};

const TABLES: &[&str] = &[
    "schemata",
    "tables",
    "columns",
    "sequences",
    "views",
    "table_constraints",
    "check_constraints",
    "key_column_usage",
    "constraint_column_usage",
    "referential_constraints",
];

#[derive(Clone)]
pub struct InformationSchema {
    catalog: Arc<Catalog>,
    factory: ContextFactory,
    prepare: super::provider::ViewPreparer,
}

impl std::fmt::Debug for InformationSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InformationSchema")
    }
}

impl InformationSchema {
    pub fn new(
        catalog: Arc<Catalog>,
        factory: ContextFactory,
        prepare: super::provider::ViewPreparer,
    ) -> Self {
        InformationSchema {
            catalog,
            factory,
            prepare,
        }
    }
}

/// A schema and a name in it.
type SchemaName = (String, String);

/// The name and columns of the key (primary or unique) of its parent
/// table that a foreign key references.
fn referenced_key(
    snap: &super::Snapshot,
    fk: &super::rules::ForeignKeyDef,
) -> Option<(String, Vec<String>)> {
    let parent = snap.relation(&fk.parent_schema, &fk.parent_table)?;
    let def = parent.table_def().ok()?;
    let mut wanted = fk.parent_columns.clone();
    wanted.sort();
    def.keys.iter().find_map(|k| {
        let mut cols = k.columns.clone();
        cols.sort();
        (cols == wanted).then(|| (k.name.clone(), k.columns.clone()))
    })
}

fn text(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn int(values: Vec<Option<i32>>) -> ArrayRef {
    Arc::new(Int32Array::from(values))
}

fn mem(fields: Vec<(&str, DataType)>, cols: Vec<ArrayRef>) -> DfResult<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(
        fields
            .into_iter()
            .map(|(n, t)| Field::new(n, t, true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), cols)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

impl InformationSchema {
    /// Columns of every table and view: (schema, relation, columns).
    async fn all_columns(&self) -> Vec<(String, String, Vec<ColumnDef>)> {
        let snap = self.catalog.snapshot();
        let mut out = Vec::new();
        for e in snap.objects().iter() {
            let sql = match &e.def {
                Def::Table(def) => {
                    out.push((e.schema.clone(), e.name.clone(), def.columns.clone()));
                    continue;
                }
                Def::View(v) if !v.columns.is_empty() => {
                    out.push((e.schema.clone(), e.name.clone(), v.columns.clone()));
                    continue;
                }
                Def::View(v) => v.sql.clone(),
                Def::FeatureService(_) => continue,
                Def::MaterializedView(m) => {
                    out.push((e.schema.clone(), e.name.clone(), m.table.columns.clone()));
                    continue;
                }
                Def::External(x) => {
                    out.push((e.schema.clone(), e.name.clone(), x.schema.clone()));
                    continue;
                }
                Def::Schema | Def::Sequence(_) => continue,
            };
            {
                {
                    let ctx = (self.factory)(&e.schema);
                    if let Ok(plan) =
                        super::provider::plan_view(&ctx.state(), &sql, self.prepare).await
                    {
                        let cols = plan
                            .schema()
                            .fields()
                            .iter()
                            .map(|f| ColumnDef {
                                name: f.name().clone(),
                                ty: PgType::from_arrow(f.data_type()),
                                not_null: false,
                                default: None,
                                identity: None,
                                generated: None,
                            })
                            .collect();
                        out.push((e.schema.clone(), e.name.clone(), cols));
                    }
                }
            }
        }
        out
    }
}

impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|s| s.to_string()).collect()
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
    crate::send_sync::schema_table_by!(Self::table_boxed);
}

impl InformationSchema {
    /// `SchemaProvider::table` (see `crate::send_sync::schema_table_by`).
    fn table_boxed<'a>(
        &'a self,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, DfResult<Option<Arc<dyn TableProvider>>>> {
        Box::pin(async move {
            let snap = self.catalog.snapshot();
            let db = || Some(DATABASE.to_string());
            let s = DataType::Utf8;
            let provider = match name {
                "schemata" => {
                    let mut names: Vec<String> = snap.schemas();
                    names.extend(SYSTEM_SCHEMAS.iter().map(|s| s.to_string()));
                    mem(
                        vec![
                            ("catalog_name", s.clone()),
                            ("schema_name", s.clone()),
                            ("schema_owner", s.clone()),
                        ],
                        vec![
                            text(names.iter().map(|_| db()).collect()),
                            text(names.iter().map(|n| Some(n.clone())).collect()),
                            text(names.iter().map(|_| Some("sluice".to_string())).collect()),
                        ],
                    )?
                }
                "sequences" => {
                    let seqs: Vec<(&super::Object, &super::SequenceDef)> = snap
                        .objects()
                        .iter()
                        .filter_map(|o| match &o.def {
                            Def::Sequence(d) => Some((o, d.as_ref())),
                            _ => None,
                        })
                        .collect();
                    let num = |f: &dyn Fn(&super::SequenceDef) -> i64| {
                        text(seqs.iter().map(|(_, d)| Some(f(d).to_string())).collect())
                    };
                    let bits = |d: &super::SequenceDef| match d.ty.name.as_str() {
                        "smallint" => 16,
                        "integer" => 32,
                        _ => 64,
                    };
                    mem(
                        vec![
                            ("sequence_catalog", s.clone()),
                            ("sequence_schema", s.clone()),
                            ("sequence_name", s.clone()),
                            ("data_type", s.clone()),
                            ("numeric_precision", DataType::Int32),
                            ("numeric_precision_radix", DataType::Int32),
                            ("numeric_scale", DataType::Int32),
                            ("start_value", s.clone()),
                            ("minimum_value", s.clone()),
                            ("maximum_value", s.clone()),
                            ("increment", s.clone()),
                            ("cycle_option", s.clone()),
                        ],
                        vec![
                            text(seqs.iter().map(|_| db()).collect()),
                            text(seqs.iter().map(|(o, _)| Some(o.schema.clone())).collect()),
                            text(seqs.iter().map(|(o, _)| Some(o.name.clone())).collect()),
                            text(seqs.iter().map(|(_, d)| Some(d.ty.name.clone())).collect()),
                            int(seqs.iter().map(|(_, d)| Some(bits(d))).collect()),
                            int(seqs.iter().map(|_| Some(2)).collect()),
                            int(seqs.iter().map(|_| Some(0)).collect()),
                            num(&|d| d.start),
                            num(&|d| d.min),
                            num(&|d| d.max),
                            num(&|d| d.increment),
                            text(
                                seqs.iter()
                                    .map(|(_, d)| {
                                        Some(if d.cycle { "YES" } else { "NO" }.to_string())
                                    })
                                    .collect(),
                            ),
                        ],
                    )?
                }
                "tables" => {
                    let rels: Vec<_> = snap
                        .objects()
                        .iter()
                        .filter(|e| {
                            !matches!(
                                e.kind(),
                                Kind::Schema | Kind::Sequence | Kind::FeatureService
                            )
                        })
                        .collect();
                    mem(
                        vec![
                            ("table_catalog", s.clone()),
                            ("table_schema", s.clone()),
                            ("table_name", s.clone()),
                            ("table_type", s.clone()),
                        ],
                        vec![
                            text(rels.iter().map(|_| db()).collect()),
                            text(rels.iter().map(|e| Some(e.schema.clone())).collect()),
                            text(rels.iter().map(|e| Some(e.name.clone())).collect()),
                            text(
                                rels.iter()
                                    .map(|e| {
                                        Some(
                                            match e.kind() {
                                                Kind::View => "VIEW",
                                                Kind::External => "FOREIGN",
                                                Kind::MaterializedView => "MATERIALIZED VIEW",
                                                _ => "BASE TABLE",
                                            }
                                            .to_string(),
                                        )
                                    })
                                    .collect(),
                            ),
                        ],
                    )?
                }
                "views" => {
                    let views: Vec<_> = snap
                        .objects()
                        .iter()
                        .filter(|e| e.kind() == Kind::View)
                        .collect();
                    mem(
                        vec![
                            ("table_catalog", s.clone()),
                            ("table_schema", s.clone()),
                            ("table_name", s.clone()),
                            ("view_definition", s.clone()),
                        ],
                        vec![
                            text(views.iter().map(|_| db()).collect()),
                            text(views.iter().map(|e| Some(e.schema.clone())).collect()),
                            text(views.iter().map(|e| Some(e.name.clone())).collect()),
                            text(
                                views
                                    .iter()
                                    .map(|e| match &e.def {
                                        Def::View(v) => Some(v.sql.clone()),
                                        _ => None,
                                    })
                                    .collect(),
                            ),
                        ],
                    )?
                }
                "columns" => {
                    let mut rows: Vec<(String, String, i32, ColumnDef)> = Vec::new();
                    for (schema, rel, cols) in self.all_columns().await {
                        for (i, c) in cols.into_iter().enumerate() {
                            rows.push((schema.clone(), rel.clone(), i as i32 + 1, c));
                        }
                    }
                    let base = |c: &ColumnDef| {
                        if c.ty.name.ends_with("[]") {
                            "ARRAY".to_string()
                        } else {
                            c.ty.name.clone()
                        }
                    };
                    let is_char = |c: &ColumnDef| {
                        matches!(c.ty.name.as_str(), "character varying" | "character")
                    };
                    let numeric_precision = |c: &ColumnDef| match c.ty.name.as_str() {
                        "smallint" => Some(16),
                        "integer" => Some(32),
                        "bigint" => Some(64),
                        "real" => Some(24),
                        "double precision" => Some(53),
                        "numeric" => c.ty.length.map(|p| p as i32),
                        _ => None,
                    };
                    let numeric_scale = |c: &ColumnDef| match c.ty.name.as_str() {
                        "smallint" | "integer" | "bigint" => Some(0),
                        "numeric" => c.ty.scale,
                        _ => None,
                    };
                    let udt = |c: &ColumnDef| {
                        let n = match c.ty.name.trim_end_matches("[]") {
                            "smallint" => "int2",
                            "integer" => "int4",
                            "bigint" => "int8",
                            "real" => "float4",
                            "double precision" => "float8",
                            "character varying" => "varchar",
                            "character" => "bpchar",
                            "boolean" => "bool",
                            "timestamp without time zone" => "timestamp",
                            "timestamp with time zone" => "timestamptz",
                            other => other,
                        };
                        if c.ty.name.ends_with("[]") {
                            format!("_{n}")
                        } else {
                            n.to_string()
                        }
                    };
                    mem(
                        vec![
                            ("table_catalog", s.clone()),
                            ("table_schema", s.clone()),
                            ("table_name", s.clone()),
                            ("column_name", s.clone()),
                            ("ordinal_position", DataType::Int32),
                            ("column_default", s.clone()),
                            ("is_nullable", s.clone()),
                            ("data_type", s.clone()),
                            ("character_maximum_length", DataType::Int32),
                            ("numeric_precision", DataType::Int32),
                            ("numeric_scale", DataType::Int32),
                            ("udt_name", s.clone()),
                            ("is_identity", s.clone()),
                            ("identity_generation", s.clone()),
                            ("is_generated", s.clone()),
                            ("generation_expression", s.clone()),
                        ],
                        vec![
                            text(rows.iter().map(|_| db()).collect()),
                            text(rows.iter().map(|r| Some(r.0.clone())).collect()),
                            text(rows.iter().map(|r| Some(r.1.clone())).collect()),
                            text(rows.iter().map(|r| Some(r.3.name.clone())).collect()),
                            int(rows.iter().map(|r| Some(r.2)).collect()),
                            text(rows.iter().map(|r| r.3.shown_default()).collect()),
                            text(
                                rows.iter()
                                    .map(|r| {
                                        Some(if r.3.not_null { "NO" } else { "YES" }.to_string())
                                    })
                                    .collect(),
                            ),
                            text(rows.iter().map(|r| Some(base(&r.3))).collect()),
                            int(rows
                                .iter()
                                .map(|r| {
                                    if is_char(&r.3) {
                                        r.3.ty.length.map(|l| l as i32)
                                    } else {
                                        None
                                    }
                                })
                                .collect()),
                            int(rows.iter().map(|r| numeric_precision(&r.3)).collect()),
                            int(rows.iter().map(|r| numeric_scale(&r.3)).collect()),
                            text(rows.iter().map(|r| Some(udt(&r.3))).collect()),
                            text(
                                rows.iter()
                                    .map(|r| {
                                        Some(
                                            if r.3.identity.is_some() { "YES" } else { "NO" }
                                                .into(),
                                        )
                                    })
                                    .collect(),
                            ),
                            text(
                                rows.iter()
                                    .map(|r| {
                                        r.3.identity.map(|i| {
                                            match i {
                                                crate::catalog::Identity::Always => "ALWAYS",
                                                crate::catalog::Identity::ByDefault => "BY DEFAULT",
                                            }
                                            .to_string()
                                        })
                                    })
                                    .collect(),
                            ),
                            text(
                                rows.iter()
                                    .map(|r| {
                                        Some(
                                            if r.3.generated.is_some() {
                                                "ALWAYS"
                                            } else {
                                                "NEVER"
                                            }
                                            .into(),
                                        )
                                    })
                                    .collect(),
                            ),
                            text(
                                rows.iter()
                                    .map(|r| r.3.generated.as_ref().map(|e| format!("({e})")))
                                    .collect(),
                            ),
                        ],
                    )?
                }
                "table_constraints" | "check_constraints" => {
                    // (schema, table, constraint name, type, check clause)
                    let mut rows: Vec<(String, String, String, &str, Option<String>)> = Vec::new();
                    for e in snap.objects().iter().filter(|e| e.kind() == Kind::Table) {
                        let Ok(def) = e.table_def() else { continue };
                        for k in def.constraint_keys() {
                            let kind = if k.primary { "PRIMARY KEY" } else { "UNIQUE" };
                            rows.push((
                                e.schema.clone(),
                                e.name.clone(),
                                k.name.clone(),
                                kind,
                                None,
                            ));
                        }
                        for f in &def.foreign_keys {
                            let kind = "FOREIGN KEY";
                            rows.push((
                                e.schema.clone(),
                                e.name.clone(),
                                f.name.clone(),
                                kind,
                                None,
                            ));
                        }
                        for c in &def.checks {
                            // pg_get_constraintdef's text without `CHECK `:
                            // `((x > 0))`.
                            let plain = super::deparse::check_texts(&c.expr, &def.columns)
                                .map_or_else(|| c.expr.clone(), |(plain, _)| plain);
                            let clause = Some(format!("({plain})"));
                            rows.push((
                                e.schema.clone(),
                                e.name.clone(),
                                c.name.clone(),
                                "CHECK",
                                clause,
                            ));
                        }
                    }
                    if name == "check_constraints" {
                        rows.retain(|r| r.3 == "CHECK");
                        mem(
                            vec![
                                ("constraint_catalog", s.clone()),
                                ("constraint_schema", s.clone()),
                                ("constraint_name", s.clone()),
                                ("check_clause", s.clone()),
                            ],
                            vec![
                                text(rows.iter().map(|_| db()).collect()),
                                text(rows.iter().map(|r| Some(r.0.clone())).collect()),
                                text(rows.iter().map(|r| Some(r.2.clone())).collect()),
                                text(rows.iter().map(|r| r.4.clone()).collect()),
                            ],
                        )?
                    } else {
                        let no = || Some("NO".to_string());
                        mem(
                            vec![
                                ("constraint_catalog", s.clone()),
                                ("constraint_schema", s.clone()),
                                ("constraint_name", s.clone()),
                                ("table_catalog", s.clone()),
                                ("table_schema", s.clone()),
                                ("table_name", s.clone()),
                                ("constraint_type", s.clone()),
                                ("is_deferrable", s.clone()),
                                ("initially_deferred", s.clone()),
                                ("enforced", s.clone()),
                            ],
                            vec![
                                text(rows.iter().map(|_| db()).collect()),
                                text(rows.iter().map(|r| Some(r.0.clone())).collect()),
                                text(rows.iter().map(|r| Some(r.2.clone())).collect()),
                                text(rows.iter().map(|_| db()).collect()),
                                text(rows.iter().map(|r| Some(r.0.clone())).collect()),
                                text(rows.iter().map(|r| Some(r.1.clone())).collect()),
                                text(rows.iter().map(|r| Some(r.3.to_string())).collect()),
                                text(rows.iter().map(|_| no()).collect()),
                                text(rows.iter().map(|_| no()).collect()),
                                text(rows.iter().map(|_| Some("YES".to_string())).collect()),
                            ],
                        )?
                    }
                }
                "key_column_usage" => {
                    // (schema, table, constraint, column, position,
                    // position in the referenced key)
                    let mut rows: Vec<(String, String, String, String, i32, Option<i32>)> =
                        Vec::new();
                    for e in snap.objects().iter().filter(|e| e.kind() == Kind::Table) {
                        let Ok(def) = e.table_def() else { continue };
                        for k in def.constraint_keys() {
                            for (i, c) in k.columns.iter().enumerate() {
                                rows.push((
                                    e.schema.clone(),
                                    e.name.clone(),
                                    k.name.clone(),
                                    c.clone(),
                                    i as i32 + 1,
                                    None,
                                ));
                            }
                        }
                        for fk in &def.foreign_keys {
                            let key = referenced_key(&snap, fk);
                            for (i, c) in fk.columns.iter().enumerate() {
                                let at = key
                                    .as_ref()
                                    .and_then(|(_, cols)| {
                                        cols.iter()
                                            .position(|k| Some(k) == fk.parent_columns.get(i))
                                    })
                                    .unwrap_or(i);
                                rows.push((
                                    e.schema.clone(),
                                    e.name.clone(),
                                    fk.name.clone(),
                                    c.clone(),
                                    i as i32 + 1,
                                    Some(at as i32 + 1),
                                ));
                            }
                        }
                    }
                    mem(
                        vec![
                            ("constraint_catalog", s.clone()),
                            ("constraint_schema", s.clone()),
                            ("constraint_name", s.clone()),
                            ("table_catalog", s.clone()),
                            ("table_schema", s.clone()),
                            ("table_name", s.clone()),
                            ("column_name", s.clone()),
                            ("ordinal_position", DataType::Int32),
                            ("position_in_unique_constraint", DataType::Int32),
                        ],
                        vec![
                            text(rows.iter().map(|_| db()).collect()),
                            text(rows.iter().map(|r| Some(r.0.clone())).collect()),
                            text(rows.iter().map(|r| Some(r.2.clone())).collect()),
                            text(rows.iter().map(|_| db()).collect()),
                            text(rows.iter().map(|r| Some(r.0.clone())).collect()),
                            text(rows.iter().map(|r| Some(r.1.clone())).collect()),
                            text(rows.iter().map(|r| Some(r.3.clone())).collect()),
                            int(rows.iter().map(|r| Some(r.4)).collect()),
                            int(rows.iter().map(|r| r.5).collect()),
                        ],
                    )?
                }
                "constraint_column_usage" => {
                    // (table schema, table, column, constraint schema,
                    // constraint): a key's own columns, and the columns a
                    // foreign key references.
                    let mut rows: Vec<(String, String, String, String, String)> = Vec::new();
                    for e in snap.objects().iter().filter(|e| e.kind() == Kind::Table) {
                        let Ok(def) = e.table_def() else { continue };
                        for k in def.constraint_keys() {
                            for c in &k.columns {
                                rows.push((
                                    e.schema.clone(),
                                    e.name.clone(),
                                    c.clone(),
                                    e.schema.clone(),
                                    k.name.clone(),
                                ));
                            }
                        }
                        for fk in &def.foreign_keys {
                            for c in &fk.parent_columns {
                                rows.push((
                                    fk.parent_schema.clone(),
                                    fk.parent_table.clone(),
                                    c.clone(),
                                    e.schema.clone(),
                                    fk.name.clone(),
                                ));
                            }
                        }
                    }
                    mem(
                        vec![
                            ("table_catalog", s.clone()),
                            ("table_schema", s.clone()),
                            ("table_name", s.clone()),
                            ("column_name", s.clone()),
                            ("constraint_catalog", s.clone()),
                            ("constraint_schema", s.clone()),
                            ("constraint_name", s.clone()),
                        ],
                        vec![
                            text(rows.iter().map(|_| db()).collect()),
                            text(rows.iter().map(|r| Some(r.0.clone())).collect()),
                            text(rows.iter().map(|r| Some(r.1.clone())).collect()),
                            text(rows.iter().map(|r| Some(r.2.clone())).collect()),
                            text(rows.iter().map(|_| db()).collect()),
                            text(rows.iter().map(|r| Some(r.3.clone())).collect()),
                            text(rows.iter().map(|r| Some(r.4.clone())).collect()),
                        ],
                    )?
                }
                "referential_constraints" => {
                    // (schema, constraint, referenced key's schema and name,
                    // delete rule)
                    let mut rows: Vec<(String, String, Option<SchemaName>, &str)> = Vec::new();
                    for e in snap.objects().iter().filter(|e| e.kind() == Kind::Table) {
                        let Ok(def) = e.table_def() else { continue };
                        for fk in &def.foreign_keys {
                            let rule = match (fk.cascade, fk.on_delete_set) {
                                (true, _) => "CASCADE",
                                (_, Some(super::rules::SetOnDelete::Null)) => "SET NULL",
                                (_, Some(super::rules::SetOnDelete::Default)) => "SET DEFAULT",
                                _ => "NO ACTION",
                            };
                            let key = referenced_key(&snap, fk)
                                .map(|(name, _)| (fk.parent_schema.clone(), name));
                            rows.push((e.schema.clone(), fk.name.clone(), key, rule));
                        }
                    }
                    let fixed = |v: &str| text(rows.iter().map(|_| Some(v.to_string())).collect());
                    mem(
                        vec![
                            ("constraint_catalog", s.clone()),
                            ("constraint_schema", s.clone()),
                            ("constraint_name", s.clone()),
                            ("unique_constraint_catalog", s.clone()),
                            ("unique_constraint_schema", s.clone()),
                            ("unique_constraint_name", s.clone()),
                            ("match_option", s.clone()),
                            ("update_rule", s.clone()),
                            ("delete_rule", s.clone()),
                        ],
                        vec![
                            text(rows.iter().map(|_| db()).collect()),
                            text(rows.iter().map(|r| Some(r.0.clone())).collect()),
                            text(rows.iter().map(|r| Some(r.1.clone())).collect()),
                            text(rows.iter().map(|r| r.2.as_ref().and(db())).collect()),
                            text(
                                rows.iter()
                                    .map(|r| r.2.as_ref().map(|k| k.0.clone()))
                                    .collect(),
                            ),
                            text(
                                rows.iter()
                                    .map(|r| r.2.as_ref().map(|k| k.1.clone()))
                                    .collect(),
                            ),
                            fixed("NONE"),
                            fixed("NO ACTION"),
                            text(rows.iter().map(|r| Some(r.3.to_string())).collect()),
                        ],
                    )?
                }
                _ => return Ok(None),
            };
            Ok(Some(provider))
        })
    }
}
