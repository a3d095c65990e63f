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

pub use crate::types::PG_TYPE_KEY;
/// Field metadata: the column is parameter `$n` passed through, typed as
/// the client declared it.
pub const PARAM_KEY: &str = "sluice.param";

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Source {
    /// A declared type, and the relation column it is (its OID and
    /// attribute number) when it passes one through unchanged.
    Type(PgType, Option<(i64, i16)>),
    Param(usize),
}

/// Field metadata: the column is column `attnum` of relation `oid`
/// (`"oid,attnum"`), for RowDescription.
pub const ORIGIN_KEY: &str = "sluice.origin";

/// `schema` (the result columns of `plan`) with the PostgreSQL types that
/// can be traced attached as metadata.
pub fn annotate(
    plan: &LogicalPlan,
    schema: SchemaRef,
    snapshot: &Snapshot,
    lake: &Lake,
) -> SchemaRef {
    let mut tables = Tables::new(snapshot, lake);
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
            match &s {
                Some(Source::Type(t, _)) if fits(t, f) => {
                    meta.insert(PG_TYPE_KEY.into(), format!("{},{}", t.oid(), t.typmod()));
                }
                Some(Source::Param(n)) => {
                    meta.insert(PARAM_KEY.into(), n.to_string());
                }
                _ => {}
            }
            if let Some(Source::Type(_, Some((oid, attnum)))) = s {
                meta.insert(ORIGIN_KEY.into(), format!("{oid},{attnum}"));
            }
            f.as_ref().clone().with_metadata(meta)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The declared PostgreSQL type of each result column of `plan` (whose
/// columns are `schema`'s) that passes a table column or a typed cast
/// through, e.g. `numeric(12,2)`: what a view or `CREATE TABLE AS` over
/// it declares, as PostgreSQL derives it.
pub fn declared(
    plan: &LogicalPlan,
    schema: &Schema,
    snapshot: &Snapshot,
    lake: &Lake,
) -> Vec<Option<PgType>> {
    let mut tables = Tables::new(snapshot, lake);
    let sources = walk(plan, &mut tables);
    if sources.len() != schema.fields().len() {
        return vec![None; schema.fields().len()];
    }
    sources
        .into_iter()
        .zip(schema.fields())
        .map(|(s, f)| match s {
            Some(Source::Type(t, _)) if fits(&t, f) => Some(t),
            _ => None,
        })
        .collect()
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

/// A table found by its location, and its OID.
type Located = (Arc<crate::catalog::TableDef>, Option<i64>);

/// The catalog's tables by location, built when a plan first reads one.
pub(super) struct Tables<'a> {
    snapshot: &'a Snapshot,
    lake: &'a Lake,
    by_url: Option<HashMap<String, Located>>,
}

impl<'a> Tables<'a> {
    pub(super) fn new(snapshot: &'a Snapshot, lake: &'a Lake) -> Self {
        Tables {
            snapshot,
            lake,
            by_url: None,
        }
    }

    /// The table stored at `url`, and its OID.
    fn at(&mut self, url: &url::Url) -> Option<Located> {
        if self.by_url.is_none() {
            let (snapshot, lake) = (self.snapshot, self.lake);
            self.by_url = Some(
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
                        let oid = snapshot.relation_oid(&o.schema, &o.name);
                        Some((url.as_str().trim_end_matches('/').to_string(), (def, oid)))
                    })
                    .collect(),
            );
        }
        self.by_url
            .as_ref()?
            .get(url.as_str().trim_end_matches('/'))
            .cloned()
    }

    /// The OID of the view a scan reads, when it is one of the catalog's.
    fn view_oid(&self, scan: &TableScan) -> Option<i64> {
        let schema = scan.table_name.schema()?;
        self.snapshot.relation_oid(schema, scan.table_name.table())
    }
}

fn none(plan: &LogicalPlan) -> Vec<Option<Source>> {
    vec![None; plan.schema().fields().len()]
}

pub(super) fn walk(plan: &LogicalPlan, tables: &mut Tables) -> Vec<Option<Source>> {
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
            // A column of the same type in every input keeps the type; it
            // is no one relation's column.
            inputs.fold(first, |acc, next| {
                acc.into_iter()
                    .zip(next)
                    .map(|(a, b)| match (a, b) {
                        (Some(Source::Type(a, _)), Some(Source::Type(b, _))) if a == b => {
                            Some(Source::Type(a, None))
                        }
                        (a, b) if a == b => a,
                        _ => None,
                    })
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
            // min/max of a character(n) column is one of its values, shown
            // at its width.
            if out.len() == a.group_expr.len() {
                out.extend(a.aggr_expr.iter().map(|e| {
                    let Expr::AggregateFunction(f) = e.clone().unalias() else {
                        return None;
                    };
                    if !matches!(f.func.name(), "min" | "max") || f.params.args.len() != 1 {
                        return None;
                    }
                    match expr_source(&f.params.args[0], &a.input, &input) {
                        Some(Source::Type(t, _)) if t.name == "character" => {
                            Some(Source::Type(t, None))
                        }
                        _ => None,
                    }
                }));
            }
            out.resize(plan.schema().fields().len(), None);
            out
        }
        // An unnested list column: its elements' type (the JSON lists of
        // jsonb_array_elements and friends); other columns pass through.
        LogicalPlan::Unnest(u) => {
            let input = walk(&u.input, tables);
            u.dependency_indices
                .iter()
                .map(|&i| {
                    let source = input.get(i).cloned().flatten();
                    let unnested = u.list_type_columns.iter().any(|(c, _)| *c == i);
                    match source {
                        Some(Source::Type(t, _)) if unnested => t
                            .name
                            .strip_suffix("[]")
                            .map(|element| Source::Type(PgType::simple(element), None)),
                        other if !unnested => other,
                        _ => None,
                    }
                })
                .collect()
        }
        LogicalPlan::Window(w) => {
            let mut out = walk(&w.input, tables);
            out.resize(plan.schema().fields().len(), None);
            out
        }
        // A VALUES column of one declared type in every row (`VALUES
        // ('{"a":1}'::json)`): that type; it is no relation's column.
        LogicalPlan::Values(v) => {
            let empty = LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
                produce_one_row: true,
                schema: std::sync::Arc::new(datafusion::common::DFSchema::empty()),
            });
            let width = plan.schema().fields().len();
            (0..width)
                .map(|i| {
                    let mut types = v.values.iter().map(|row| {
                        row.get(i)
                            .and_then(|e| expr_source(e, &empty, &[]))
                            .and_then(|s| match s {
                                Source::Type(t, _) => Some(t),
                                Source::Param(_) => None,
                            })
                    });
                    let first = types.next().flatten()?;
                    types
                        .all(|t| t.as_ref() == Some(&first))
                        .then_some(Source::Type(first, None))
                })
                .collect()
        }
        _ => none(plan),
    }
}

fn scan_sources(scan: &TableScan, tables: &mut Tables) -> Vec<Option<Source>> {
    let Ok(provider) = source_as_provider(&scan.source) else {
        return vec![None; scan.projected_schema.fields().len()];
    };
    // A column is the relation's attribute of its position (PostgreSQL
    // reports a view's own columns, not those of the tables it reads).
    let attnum = |i: usize| i16::try_from(i + 1).ok();
    let all: Vec<Option<Source>> =
        if let Some(url) = crate::lake::provider_location(provider.as_ref()) {
            let found = tables.at(url);
            provider
                .schema()
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let (def, oid) = found.as_ref()?;
                    let c = def.column(f.name())?;
                    let origin = oid.zip(attnum(i));
                    Some(Source::Type(c.ty.clone(), origin))
                })
                .collect()
        } else if let Some(view) = provider.get_logical_plan() {
            let oid = tables.view_oid(scan);
            walk(&view, tables)
                .into_iter()
                .enumerate()
                .map(|(i, s)| match s {
                    Some(Source::Type(t, _)) => Some(Source::Type(t, oid.zip(attnum(i)))),
                    other => other,
                })
                .collect()
        } else {
            vec![None; provider.schema().fields().len()]
        };
    match &scan.projection {
        Some(p) => p.iter().map(|&i| all.get(i).cloned().flatten()).collect(),
        None => all,
    }
}

pub(super) fn expr_source(
    e: &Expr,
    input: &LogicalPlan,
    sources: &[Option<Source>],
) -> Option<Source> {
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
        // `a || b` on jsonb (see `jsonb_operands`).
        Expr::BinaryExpr(b) if b.op == datafusion::logical_expr::Operator::StringConcat => {
            let jsonb = |x: &Expr| matches!(expr_source(x, input, sources), Some(Source::Type(t, _)) if t.name == "jsonb");
            let (l, r) = (&*b.left, &*b.right);
            ((jsonb(l) && (jsonb(r) || untyped_text(r))) || (jsonb(r) && untyped_text(l)))
                .then(|| Source::Type(PgType::simple("jsonb"), None))
        }
        Expr::ScalarFunction(f) => {
            let name = f.func.name();
            if let Some(t) = TextType::of_function(name) {
                return Some(Source::Type(PgType::simple(t.name()), None));
            }
            if name == "uuid" {
                return Some(Source::Type(PgType::simple("uuid"), None));
            }
            if let Some(jsonb) = crate::types::json_fns::json_list_result(name) {
                return Some(Source::Type(
                    PgType::simple(if jsonb { "jsonb[]" } else { "json[]" }),
                    None,
                ));
            }
            if let Some(jsonb) = crate::types::json_fns::json_result(name) {
                return Some(Source::Type(
                    PgType::simple(if jsonb { "jsonb" } else { "json" }),
                    None,
                ));
            }
            if name == JsonOp::Get.function() || name == JsonOp::Path.function() {
                let jsonb = matches!(
                    f.args.first().and_then(|a| expr_source(a, input, sources)),
                    Some(Source::Type(t, _)) if t.name == "jsonb"
                );
                return Some(Source::Type(
                    PgType::simple(if jsonb { "jsonb" } else { "json" }),
                    None,
                ));
            }
            None
        }
        _ => None,
    }
}

/// Marks the arguments of JSON builders (`to_jsonb`, `jsonb_build_object`,
/// `jsonb_agg`, ...) that already are documents — a json/jsonb column, a
/// cast, the result of `->` or of another builder — so that they are
/// embedded, not quoted as strings (see [`crate::types::json_fns`]).
///
/// The same rule, made with [`JsonArguments::operators`], plans the jsonb
/// operators (see [`jsonb_operator`]); it runs before type coercion, which
/// casts a jsonb operand of `||` to text and so hides its type.
#[derive(Debug)]
pub struct JsonArguments {
    catalog: std::sync::Weak<crate::catalog::Catalog>,
    operators: bool,
}

impl JsonArguments {
    pub fn new(catalog: &Arc<crate::catalog::Catalog>) -> Self {
        JsonArguments {
            catalog: Arc::downgrade(catalog),
            operators: false,
        }
    }

    pub fn operators(catalog: &Arc<crate::catalog::Catalog>) -> Self {
        JsonArguments {
            catalog: Arc::downgrade(catalog),
            operators: true,
        }
    }

    /// Whether this stage of the rule rewrites `x`.
    fn wants(&self, x: &Expr) -> bool {
        if self.operators {
            jsonb_operator(x)
        } else {
            json_consumer(x).is_some()
        }
    }
}

/// `a || b` (jsonb when a side is), `a - b` planned as `jsonb_delete`
/// (which needs a jsonb on the left), or `pg_typeof(x)` (which names x's
/// declared type where Arrow's says less: `jsonb`, `uuid`, `character
/// varying`).
fn jsonb_operator(e: &Expr) -> bool {
    use datafusion::logical_expr::Operator;
    match e {
        Expr::BinaryExpr(b) => b.op == Operator::StringConcat,
        Expr::ScalarFunction(f) => matches!(
            f.func.name(),
            crate::types::jsonb_edit::DELETE | "pg_typeof"
        ),
        _ => false,
    }
}

/// Whether `e` is text written without a type (a string literal, maybe
/// cast to text by coercion), which PostgreSQL reads as the other side's type.
pub(super) fn untyped_text(e: &Expr) -> bool {
    use datafusion::common::ScalarValue;
    match e {
        Expr::Literal(
            ScalarValue::Utf8(_) | ScalarValue::Utf8View(_) | ScalarValue::LargeUtf8(_),
            _,
        ) => true,
        Expr::Cast(c) => untyped_text(&c.expr),
        _ => false,
    }
}

/// `a || b` with a jsonb side and the other jsonb or untyped becomes
/// `jsonb_concat(a, b)`; `jsonb_delete` of a value known not to be jsonb
/// is PostgreSQL's 42883 (there is no `-` on text or json).
fn jsonb_operands(
    e: Expr,
    input: &LogicalPlan,
    sources: &[Option<Source>],
) -> datafusion::error::Result<datafusion::common::tree_node::Transformed<Expr>> {
    use datafusion::common::tree_node::Transformed;
    use datafusion::logical_expr::ExprSchemable;
    let type_of = |x: &Expr| match expr_source(x, input, sources) {
        Some(Source::Type(t, _)) => Some(t.name),
        _ => None,
    };
    match e {
        Expr::BinaryExpr(b) => {
            let concat = Expr::BinaryExpr(b.clone());
            if matches!(expr_source(&concat, input, sources), Some(Source::Type(t, _)) if t.name == "jsonb")
            {
                let f = crate::types::jsonb_edit::udf(crate::types::jsonb_edit::CONCAT);
                return Ok(Transformed::yes(Expr::ScalarFunction(
                    datafusion::logical_expr::expr::ScalarFunction::new_udf(
                        Arc::new(f),
                        vec![*b.left, *b.right],
                    ),
                )));
            }
            Ok(Transformed::no(Expr::BinaryExpr(b)))
        }
        Expr::ScalarFunction(f) if f.func.name() == "pg_typeof" => {
            // Only where the declared type says more than the stored one:
            // text-stored types and the character types.
            let declared = f.args.first().and_then(type_of).filter(|t| {
                TextType::of(t).is_some() || t == "character varying" || t == "character"
            });
            Ok(match declared {
                Some(t) => Transformed::yes(Expr::Literal(
                    datafusion::common::ScalarValue::Utf8(Some(t)),
                    None,
                )),
                None => Transformed::no(Expr::ScalarFunction(f)),
            })
        }
        Expr::ScalarFunction(f) => {
            if let Some(left) = f.args.first().and_then(type_of)
                && left != "jsonb"
            {
                let right = f.args.get(1).map_or("unknown".to_string(), |r| {
                    if untyped_text(r) {
                        return "unknown".to_string();
                    }
                    type_of(r).unwrap_or_else(|| {
                        r.get_type(input.schema())
                            .map(|t| PgType::from_arrow(&t).name)
                            .unwrap_or_else(|_| "unknown".into())
                    })
                });
                return Err(crate::error::Error::new(
                    crate::error::ErrorKind::UndefinedFunction,
                    format!("operator does not exist: {left} - {right}"),
                )
                .with_hint(
                    "No operator matches the given name and argument types. \
                     You might need to add explicit type casts.",
                )
                .into());
            }
            Ok(Transformed::no(Expr::ScalarFunction(f)))
        }
        other => Ok(Transformed::no(other)),
    }
}

fn json_consumer(e: &Expr) -> Option<fn(usize) -> bool> {
    match e {
        Expr::ScalarFunction(f) => crate::types::json_fns::json_arguments(f.func.name()),
        _ => None,
    }
}

impl datafusion::optimizer::AnalyzerRule for JsonArguments {
    fn name(&self) -> &str {
        if self.operators {
            "sluice_jsonb_operators"
        } else {
            "sluice_json_arguments"
        }
    }

    fn analyze(
        &self,
        plan: LogicalPlan,
        _: &datafusion::common::config::ConfigOptions,
    ) -> datafusion::error::Result<LogicalPlan> {
        use datafusion::common::tree_node::Transformed;
        use datafusion::logical_expr::expr_rewriter::NamePreserver;
        let Some(catalog) = self.catalog.upgrade() else {
            return Ok(plan);
        };
        let snapshot = catalog.snapshot();
        let mut tables = Tables::new(&snapshot, catalog.lake());
        crate::tree::transform_up_with_subqueries(plan, |node| {
            let wanted = node
                .expressions()
                .iter()
                .any(|e| crate::tree::exists(e, |x| Ok(self.wants(x))).unwrap_or(false));
            let inputs = node.inputs();
            if !wanted || inputs.len() != 1 {
                return Ok(Transformed::no(node));
            }
            let input = inputs[0].clone();
            let sources = walk(&input, &mut tables);
            let names = NamePreserver::new(&node);
            crate::tree::map_expressions(node, |e| {
                let saved = crate::types::save_name(&names, &e);
                let marked = crate::tree::transform_up(e, |x| {
                    if !self.wants(&x) {
                        return Ok(Transformed::no(x));
                    }
                    if self.operators {
                        return jsonb_operands(x, &input, &sources);
                    }
                    let Some(which) = json_consumer(&x) else {
                        return Ok(Transformed::no(x));
                    };
                    let Expr::ScalarFunction(mut f) = x else {
                        unreachable!("a consumer is a function call")
                    };
                    let mut changed = false;
                    for (i, arg) in f.args.iter_mut().enumerate() {
                        let already = matches!(arg, Expr::ScalarFunction(g)
                            if g.func.name() == crate::types::json_fns::MARKED);
                        let json = matches!(expr_source(arg, &input, &sources),
                            Some(Source::Type(t, _)) if t.name == "json" || t.name == "jsonb");
                        if which(i) && json && !already {
                            *arg = Expr::ScalarFunction(
                                datafusion::logical_expr::expr::ScalarFunction::new_udf(
                                    Arc::new(crate::types::json_fns::udf(
                                        crate::types::json_fns::MARKED,
                                    )),
                                    vec![arg.clone()],
                                ),
                            );
                            changed = true;
                        }
                    }
                    Ok(Transformed::new_transformed(
                        Expr::ScalarFunction(f),
                        changed,
                    ))
                })?;
                Ok(marked.update_data(|e| crate::types::keep_name(saved, e)))
            })
        })
        .map(|t| t.data)
    }
}
