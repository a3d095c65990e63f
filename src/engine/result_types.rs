//! The PostgreSQL type of result columns whose Arrow type does not say it:
//! a `varchar(20)`, `numeric(12,2)`, `uuid` or `jsonb` column of a table
//! is stored as Arrow text or decimal, yet clients read the declared type
//! and its modifier from RowDescription (psycopg returns a `UUID` or a
//! `dict`, JDBC reports the precision). A column that passes a table
//! column, a typed cast or a parameter through unchanged is traced back
//! through the logical plan; the answer rides on the result schema's field
//! metadata, which the wire layer reads.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan, TableScan};

use crate::catalog::{Def, Snapshot};
use crate::lake::Lake;
use crate::types::PgType;
use crate::types::typed::{JsonOp, TextType};

/// Field metadata: `oid,typmod` of the column's PostgreSQL type.
pub const PG_TYPE_KEY: &str = "sluice.pg_type";
/// Field metadata: the column is parameter `$n` passed through, typed as
/// the client declared it.
pub const PARAM_KEY: &str = "sluice.param";

#[derive(Debug, Clone, PartialEq)]
enum Source {
    Type(PgType),
    Param(usize),
}

/// `schema` (the result columns of `plan`) with the PostgreSQL types that
/// can be traced attached as metadata.
pub fn annotate(
    plan: &LogicalPlan,
    schema: SchemaRef,
    snapshot: &Snapshot,
    lake: &Lake,
) -> SchemaRef {
    let mut tables = Tables {
        snapshot,
        lake,
        by_url: None,
    };
    let sources = walk(plan, &mut tables);
    if sources.iter().all(Option::is_none) || sources.len() != schema.fields().len() {
        return schema;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(sources)
        .map(|(f, s)| {
            let mut meta = f.metadata().clone();
            match s {
                Some(Source::Type(t)) if fits(&t, f) => {
                    meta.insert(PG_TYPE_KEY.into(), format!("{},{}", t.oid(), t.typmod()));
                }
                Some(Source::Param(n)) => {
                    meta.insert(PARAM_KEY.into(), n.to_string());
                }
                _ => {}
            }
            f.as_ref().clone().with_metadata(meta)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Whether `t` describes a column of `f`'s Arrow type and says more than
/// that type does (arrays keep Arrow's mapping).
fn fits(t: &PgType, f: &Field) -> bool {
    t.known_oid().is_some()
        && !t.name.ends_with("[]")
        && same_storage(&t.arrow_type(), f.data_type())
        && (t.typmod() != -1
            || matches!(t.name.as_str(), "character varying" | "character")
            || TextType::of(&t.name).is_some())
}

/// Whether a column stored as `stored` reads as `read` (text may be read
/// as a string view).
fn same_storage(stored: &DataType, read: &DataType) -> bool {
    let text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8);
    stored == read || (text(stored) && text(read))
}

/// The catalog's tables by location, built when a plan first reads one.
struct Tables<'a> {
    snapshot: &'a Snapshot,
    lake: &'a Lake,
    by_url: Option<HashMap<String, Arc<crate::catalog::TableDef>>>,
}

impl Tables<'_> {
    fn at(&mut self, url: &url::Url) -> Option<Arc<crate::catalog::TableDef>> {
        let (snapshot, lake) = (self.snapshot, self.lake);
        let map = self.by_url.get_or_insert_with(|| {
            snapshot
                .objects()
                .iter()
                .filter_map(|o| {
                    let def = match &o.def {
                        Def::Table(t) => t.clone(),
                        Def::MaterializedView(m) => Arc::new(m.table.clone()),
                        _ => return None,
                    };
                    let url = lake.url_for(&def.location).ok()?;
                    Some((url.as_str().trim_end_matches('/').to_string(), def))
                })
                .collect()
        });
        map.get(url.as_str().trim_end_matches('/')).cloned()
    }
}

fn none(plan: &LogicalPlan) -> Vec<Option<Source>> {
    vec![None; plan.schema().fields().len()]
}

fn walk(plan: &LogicalPlan, tables: &mut Tables) -> Vec<Option<Source>> {
    match plan {
        LogicalPlan::Projection(p) => {
            let input = walk(&p.input, tables);
            p.expr
                .iter()
                .map(|e| expr_source(e, &p.input, &input))
                .collect()
        }
        LogicalPlan::Filter(f) => walk(&f.input, tables),
        LogicalPlan::Sort(s) => walk(&s.input, tables),
        LogicalPlan::Limit(l) => walk(&l.input, tables),
        LogicalPlan::SubqueryAlias(a) => walk(&a.input, tables),
        LogicalPlan::Repartition(r) => walk(&r.input, tables),
        LogicalPlan::Distinct(Distinct::All(input)) => walk(input, tables),
        LogicalPlan::TableScan(scan) => scan_sources(scan, tables),
        LogicalPlan::Join(j) => {
            let (left, right) = (walk(&j.left, tables), walk(&j.right, tables));
            let out = match j.join_type {
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                    left.into_iter().chain(right).collect()
                }
                JoinType::LeftSemi | JoinType::LeftAnti => left,
                JoinType::RightSemi | JoinType::RightAnti => right,
                _ => return none(plan),
            };
            if out.len() == plan.schema().fields().len() {
                out
            } else {
                none(plan)
            }
        }
        LogicalPlan::Union(u) => {
            let mut inputs = u.inputs.iter().map(|i| walk(i, tables));
            let Some(first) = inputs.next() else {
                return none(plan);
            };
            inputs.fold(first, |acc, next| {
                acc.into_iter()
                    .zip(next)
                    .map(|(a, b)| if a == b { a } else { None })
                    .collect()
            })
        }
        LogicalPlan::Aggregate(a) => {
            let input = walk(&a.input, tables);
            let mut out: Vec<Option<Source>> = a
                .group_expr
                .iter()
                .map(|e| expr_source(e, &a.input, &input))
                .collect();
            out.resize(plan.schema().fields().len(), None);
            out
        }
        LogicalPlan::Window(w) => {
            let mut out = walk(&w.input, tables);
            out.resize(plan.schema().fields().len(), None);
            out
        }
        _ => none(plan),
    }
}

fn scan_sources(scan: &TableScan, tables: &mut Tables) -> Vec<Option<Source>> {
    let Ok(provider) = source_as_provider(&scan.source) else {
        return vec![None; scan.projected_schema.fields().len()];
    };
    let all: Vec<Option<Source>> =
        if let Some(url) = crate::lake::provider_location(provider.as_ref()) {
            let def = tables.at(url);
            provider
                .schema()
                .fields()
                .iter()
                .map(|f| {
                    def.as_ref()
                        .and_then(|d| d.column(f.name()))
                        .map(|c| Source::Type(c.ty.clone()))
                })
                .collect()
        } else if let Some(view) = provider.get_logical_plan() {
            walk(&view, tables)
        } else {
            vec![None; provider.schema().fields().len()]
        };
    match &scan.projection {
        Some(p) => p.iter().map(|&i| all.get(i).cloned().flatten()).collect(),
        None => all,
    }
}

fn expr_source(e: &Expr, input: &LogicalPlan, sources: &[Option<Source>]) -> Option<Source> {
    match e {
        Expr::Alias(a) => expr_source(&a.expr, input, sources),
        Expr::Column(c) => {
            let i = input.schema().index_of_column(c).ok()?;
            sources.get(i).cloned().flatten()
        }
        Expr::Placeholder(p) => {
            p.id.strip_prefix('$')
                .and_then(|n| n.parse().ok())
                .map(Source::Param)
        }
        Expr::ScalarFunction(f) => {
            let name = f.func.name();
            if let Some(t) = TextType::of_function(name) {
                return Some(Source::Type(PgType::simple(t.name())));
            }
            if name == "uuid" {
                return Some(Source::Type(PgType::simple("uuid")));
            }
            if name == JsonOp::Get.function() || name == JsonOp::Path.function() {
                let jsonb = matches!(
                    f.args.first().and_then(|a| expr_source(a, input, sources)),
                    Some(Source::Type(t)) if t.name == "jsonb"
                );
                return Some(Source::Type(PgType::simple(if jsonb {
                    "jsonb"
                } else {
                    "json"
                })));
            }
            None
        }
        _ => None,
    }
}
