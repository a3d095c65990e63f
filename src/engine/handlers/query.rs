//! Queries and EXPLAIN, planned by DataFusion; `DESCRIBE t`.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::{ObjectName, Statement};

use super::{Described, Handler, first_words};
use crate::catalog::{self, Kind};
use crate::engine::access::Role;
use crate::engine::{Output, Session, names, params};
use crate::error::{Error, ErrorKind, Result, ResultFuture};
use crate::features::lookup;

/// `SELECT`, `VALUES`, `WITH`, `EXPLAIN [ANALYZE]`; with the online lookup
/// it is, recognized once.
pub struct Query(pub Statement, Option<lookup::Lookup>);

impl Query {
    /// `s`, with the online lookup it was recognized as, if any.
    pub fn new(s: Statement, l: Option<lookup::Lookup>) -> Query {
        Query(s, l)
    }
}

/// The parameter types a plan infers for `$1`, `$2`, ...
pub fn parameter_types(plan: &datafusion::logical_expr::LogicalPlan) -> Vec<Option<DataType>> {
    let Ok(map) = plan.get_parameter_types() else {
        return vec![];
    };
    let mut entries: Vec<_> = map
        .into_iter()
        .filter_map(|(k, v)| {
            k.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|i| (i, v))
        })
        .collect();
    entries.sort_by_key(|(i, _)| *i);
    let n = entries.last().map(|(i, _)| *i).unwrap_or(0);
    let mut types = vec![None; n];
    for (i, t) in entries {
        types[i - 1] = t;
    }
    // `$1::bigint`: as in PostgreSQL, a parameter cast directly takes the
    // type it is cast to when nothing else decides it.
    if types.iter().any(Option::is_none) {
        for (id, t) in cast_placeholders(plan) {
            if let Some(i) = id.trim_start_matches('$').parse::<usize>().ok()
                && let Some(slot @ None) = types.get_mut(i.wrapping_sub(1))
            {
                *slot = Some(t);
            }
        }
    }
    types
}

/// `(placeholder, type)` of every `CAST($n AS type)` in `plan`, and of
/// every array a value is compared with (`x = ANY($n)`, planned as
/// `array_has($n, x)` or a comparison of `x` with `array_min($n)` /
/// `array_max($n)`): an array of `x`'s type, as PostgreSQL infers it.
fn cast_placeholders(plan: &datafusion::logical_expr::LogicalPlan) -> Vec<(String, DataType)> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::{BinaryExpr, Cast, Expr, ExprSchemable, Operator, TryCast};
    /// The placeholder `e` reads as an array (`array_min($n)`), if any.
    fn array_placeholder(e: &Expr) -> Option<&str> {
        match e {
            Expr::ScalarFunction(f)
                if matches!(f.name(), "array_min" | "array_max")
                    && let [Expr::Placeholder(p)] = f.args.as_slice() =>
            {
                Some(&p.id)
            }
            _ => None,
        }
    }
    let mut found = Vec::new();
    let _ = crate::tree::apply_with_subqueries(plan, |node| {
        let inputs = node.inputs();
        let type_of = |e: &Expr| {
            inputs
                .iter()
                .find_map(|i| e.get_type(i.schema()).ok())
                .filter(|t| !t.is_null())
        };
        let list = |t: DataType| DataType::new_list(t, true);
        crate::tree::apply_expressions(node, |e| {
            crate::tree::apply(e, |x| {
                match x {
                    Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
                        if let Expr::Placeholder(p) = expr.as_ref() {
                            found.push((p.id.clone(), field.data_type().clone()));
                        }
                    }
                    Expr::ScalarFunction(f) if f.name() == "array_has" => {
                        if let [Expr::Placeholder(p), value] = f.args.as_slice()
                            && let Some(t) = type_of(value)
                        {
                            found.push((p.id.clone(), list(t)));
                        }
                    }
                    Expr::BinaryExpr(BinaryExpr {
                        left,
                        op:
                            Operator::Eq
                            | Operator::NotEq
                            | Operator::Lt
                            | Operator::LtEq
                            | Operator::Gt
                            | Operator::GtEq,
                        right,
                    }) => {
                        for (array, value) in [(left, right), (right, left)] {
                            if let Some(p) = array_placeholder(array)
                                && let Some(t) = type_of(value)
                            {
                                found.push((p.to_string(), list(t)));
                            }
                        }
                    }
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    found
}

impl Handler for Query {
    fn name(&self) -> String {
        first_words(&self.0.to_string(), 1)
    }

    fn role(&self) -> Role {
        match &self.0 {
            // EXPLAIN ANALYZE runs what it explains.
            Statement::Explain { statement, .. } => {
                super::sql_handler(statement.as_ref().clone()).role()
            }
            _ => Role::Reader,
        }
    }

    fn fresh_catalog(&self) -> bool {
        self.1.is_none()
    }

    fn describe<'a>(&'a self, session: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move {
            if let Some(l) = &self.1
                && let Some(t) = online_target(session, l).await?
                && l.fits(&t)
            {
                return Ok(Described {
                    params: l.param_types(&t),
                    columns: Some(l.schema(&t)?),
                });
            }
            match session.plan_cached(&self.0).await {
                Ok(plan) => {
                    let planned = plan.schema().as_arrow();
                    Ok(Described {
                        params: parameter_types(&plan),
                        columns: Some(
                            session.result_types(
                                &plan,
                                names::pg_result_names(&self.0, planned)
                                    .unwrap_or_else(|| Arc::new(planned.clone())),
                            ),
                        ),
                    })
                }
                // A statement canceled or out of time while it was planned
                // (reading a remote file's schema) fails now.
                Err(e) if e.kind == crate::error::ErrorKind::QueryCanceled => Err(e),
                // Describe of a statement that will fail to plan: its error
                // comes when it runs.
                Err(_) => Ok(Described {
                    params: vec![None; params::count_placeholders(&self.0)],
                    columns: None,
                }),
            }
        })
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        params: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            if let Some(l) = &self.1 {
                if let Some(t) = online_target(session, l).await?
                    && l.fits(&t)
                {
                    let batch = l.answer(&t, params, crate::features::online::now_micros())?;
                    let schema = batch.schema();
                    let stream = datafusion::physical_plan::memory::MemoryStream::try_new(
                        vec![batch],
                        schema.clone(),
                        None,
                    )?;
                    return Ok(Output::Rows {
                        schema,
                        stream: Box::pin(stream),
                        tag: "SELECT",
                    });
                }
                // Planned as a query: on the newest catalog, like any other.
                session.engine().catalog().refresh().await?;
            }
            let has_params = matches!(params, ParamValues::List(v) if !v.is_empty());
            if has_params && matches!(self.0, Statement::Query(_)) {
                // A prepared query: its plan, kept while nothing it reads
                // changed, with the parameters' values put in.
                let typing = session.plan_cached(&self.0).await?;
                let plan = typing.clone().with_param_values(params.clone())?;
                return session
                    .run_plan_typed(&self.0, plan, "SELECT", &typing)
                    .await;
            }
            let stmt = match params::bind(crate::frontend::Stmt::Sql(Box::new(self.0)), params)? {
                crate::frontend::Stmt::Sql(s) => *s,
                _ => unreachable!("bound as it came"),
            };
            session.query(stmt).await
        })
    }
}

/// What an online lookup reads: the indexes of the feature view or service
/// it names, or `None` when it names neither (then it is planned as a
/// query, which reports what is wrong).
async fn online_target(session: &Session, l: &lookup::Lookup) -> Result<Option<lookup::Target>> {
    let snapshot = session.engine().catalog().snapshot();
    if snapshot.schema_exists(lookup::SCHEMA) {
        return Ok(None);
    }
    let system = session.system_tables();
    let Some(o) = session.resolver(&snapshot, &system).online(&l.target) else {
        return Ok(None);
    };
    let store = session.engine().online();
    let catalog::Def::FeatureService(def) = &o.def else {
        return Ok(Some(lookup::Target::view(store.index(&o).await?)));
    };
    let mut views = Vec::with_capacity(def.views.len());
    for v in &def.views {
        let view = snapshot
            .relation(&v.view.schema, &v.view.name)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedTable,
                    format!(
                        "feature view \"{}\" of feature service \"{}\" does not exist",
                        v.view, o.name
                    ),
                )
            })?;
        views.push((store.index(view).await?, v.features.clone()));
    }
    Ok(Some(lookup::Target::service(views)))
}

/// `DESCRIBE t` / `EXPLAIN t`: the columns with their PostgreSQL types.
pub struct DescribeTable(pub ObjectName);

pub fn describe_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("column_name", DataType::Utf8, false),
        Field::new("data_type", DataType::Utf8, false),
        Field::new("is_nullable", DataType::Utf8, false),
        Field::new("column_default", DataType::Utf8, true),
    ]))
}

impl Handler for DescribeTable {
    fn name(&self) -> String {
        "DESCRIBE".into()
    }

    fn role(&self) -> Role {
        Role::Reader
    }

    fn describe<'a>(&'a self, _: &'a Session) -> ResultFuture<'a, Described> {
        Box::pin(async move {
            Ok(Described {
                params: vec![],
                columns: Some(describe_schema()),
            })
        })
    }

    fn execute<'a>(
        self: Box<Self>,
        session: &'a mut Session,
        _: &'a ParamValues,
    ) -> ResultFuture<'a, Output> {
        Box::pin(async move {
            let (schema, rel) = session.qualify(&self.0)?;
            let columns: Vec<catalog::ColumnDef> = match session.catalog_entry(&schema, &rel) {
                Some(e) if e.kind() == Kind::Table => e.table_def()?.columns.clone(),
                Some(e) if matches!(e.kind(), Kind::View | Kind::External) => {
                    let plan = session
                        .plan(Statement::Query(crate::engine::select_all(&e.rel_name())?))
                        .await?;
                    plan.schema()
                        .fields()
                        .iter()
                        .map(|f| {
                            catalog::ColumnDef::plain(
                                f.name(),
                                catalog::PgType::from_arrow(f.data_type()),
                            )
                        })
                        .collect()
                }
                _ => {
                    return Err(Error::new(
                        ErrorKind::UndefinedTable,
                        format!(
                            "relation \"{}\" does not exist",
                            crate::engine::display_name(&self.0)
                        ),
                    ));
                }
            };
            let out = describe_schema();
            let batch = RecordBatch::try_new(
                out.clone(),
                vec![
                    Arc::new(StringArray::from_iter_values(
                        columns.iter().map(|c| c.name.clone()),
                    )),
                    Arc::new(StringArray::from_iter_values(
                        columns.iter().map(|c| c.ty.display()),
                    )),
                    Arc::new(StringArray::from_iter_values(
                        columns
                            .iter()
                            .map(|c| if c.not_null { "NO" } else { "YES" }),
                    )),
                    Arc::new(StringArray::from(
                        columns
                            .iter()
                            .map(|c| c.shown_default())
                            .collect::<Vec<_>>(),
                    )),
                ],
            )?;
            Output::batches(out, vec![batch], "SELECT")
        })
    }
}
