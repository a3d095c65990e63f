//! Bound statements to DataFusion plans.
//!
//! DataFusion's SQL planner asks a [`ContextProvider`] for every table and
//! function a statement names. Ours answers from what the binder resolved
//! and opened (see [`super::bind`]), so the planner never looks a name up
//! on its own; a [`RelationPlanner`] plans what DataFusion's own planner
//! does not: table versions (`t VERSION AS OF 3`) and Sluice's table
//! functions with named arguments (`read_csv('x', header => false)`).
//!
//! ```text
//!  Statement (names resolved) ──▶ SqlToRel ──get_table_source──▶ Bound
//!                                     └──plan_relation──▶ Relations (versions, table functions)
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableFunctionArgs;
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DFSchema, TableReference, plan_datafusion_err};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use datafusion::logical_expr::planner::{
    ContextProvider, ExprPlanner, PlannedRelation, RelationPlanner, RelationPlannerContext,
    RelationPlanning, TypePlanner,
};
use datafusion::logical_expr::{
    AggregateUDF, HigherOrderUDF, LogicalPlan, LogicalPlanBuilder, ScalarUDF, TableSource,
    WindowUDF,
};
use datafusion::sql::planner::{ParserOptions, SqlToRel};
use datafusion::sql::sqlparser::ast::{Statement, TableFactor};

use super::bind::Bound;
use crate::error::{Error, Result};
use crate::ingest::NamedTableFunction;

/// The table functions that take named arguments, by name.
pub type TableFunctions = HashMap<String, Arc<dyn NamedTableFunction>>;

/// Plans one bound statement.
pub struct Planner<'a> {
    state: &'a SessionState,
    bound: &'a Bound,
    relations: Vec<Arc<dyn RelationPlanner>>,
}

impl<'a> Planner<'a> {
    pub fn new(state: &'a SessionState, bound: &'a Bound, functions: &Arc<TableFunctions>) -> Self {
        let relations: Vec<Arc<dyn RelationPlanner>> = vec![Arc::new(Relations {
            versions: bound.versions.clone(),
            functions: functions.clone(),
            state: Arc::new(state.clone()),
        })];
        Planner {
            state,
            bound,
            relations,
        }
    }

    fn sql(&self) -> SqlToRel<'_, Self> {
        SqlToRel::new_with_options(self, parser_options(self.state.config_options()))
    }

    /// The logical plan of a statement DataFusion plans (queries, EXPLAIN).
    pub fn plan(&self, stmt: Statement) -> Result<LogicalPlan> {
        let plan = self.sql().sql_statement_to_plan(stmt)?;
        // Changes result types, so it cannot be an analyzer rule (those
        // keep the plan's schema): applied to the plan as planned.
        // Dates first: `date_part` becomes a double before an aggregate
        // of it is typed.
        let plan = crate::types::datetime::rewrite_plan(plan)?;
        Ok(crate::types::integers::rewrite_plan(plan)?)
    }
}

/// The SQL planner's options, from the session's configuration.
pub fn parser_options(o: &ConfigOptions) -> ParserOptions {
    let p = &o.sql_parser;
    ParserOptions {
        parse_float_as_decimal: p.parse_float_as_decimal,
        enable_ident_normalization: p.enable_ident_normalization,
        enable_options_value_normalization: p.enable_options_value_normalization,
        support_varchar_with_length: p.support_varchar_with_length,
        map_string_types_to_utf8view: p.map_string_types_to_utf8view,
        collect_spans: p.collect_spans,
        default_null_ordering: p.default_null_ordering.as_str().into(),
    }
}

impl ContextProvider for Planner<'_> {
    fn get_table_source(&self, name: TableReference) -> DfResult<Arc<dyn TableSource>> {
        self.bound
            .tables
            .get(&name)
            .cloned()
            .ok_or_else(|| plan_datafusion_err!("table '{name}' not found"))
    }

    fn get_table_function_source(
        &self,
        name: &str,
        args: Vec<datafusion::prelude::Expr>,
    ) -> DfResult<Arc<dyn TableSource>> {
        let f = self
            .state
            .table_functions()
            .get(name)
            .cloned()
            .ok_or_else(|| plan_datafusion_err!("table function '{name}' not found"))?;
        // Before simplification, which folds `1::bigint` into a literal.
        let integers = name.eq_ignore_ascii_case("generate_series") && args.iter().all(is_int4);
        let args = simplify_args(self.state, args)?;
        let provider =
            f.create_table_provider_with_args(TableFunctionArgs::new(&args, self.state))?;
        if integers {
            return Ok(provider_as_source(integer_series(provider)?));
        }
        Ok(provider_as_source(provider))
    }

    fn create_cte_work_table(
        &self,
        name: &str,
        schema: SchemaRef,
    ) -> DfResult<Arc<dyn TableSource>> {
        Ok(provider_as_source(Arc::new(
            datafusion::datasource::cte_worktable::CteWorkTable::new(name, schema),
        )))
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        self.state.expr_planners()
    }

    fn get_relation_planners(&self) -> &[Arc<dyn RelationPlanner>] {
        &self.relations
    }

    fn get_type_planner(&self) -> Option<Arc<dyn TypePlanner>> {
        // PostgreSQL's OID alias types (`::regclass`, `::oid`, ...).
        Some(Arc::new(
            datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner,
        ))
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.state.scalar_functions().get(name).cloned()
    }

    fn get_higher_order_meta(&self, name: &str) -> Option<Arc<HigherOrderUDF>> {
        self.state.higher_order_functions().get(name).cloned()
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.state.aggregate_functions().get(name).cloned()
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        self.state.window_functions().get(name).cloned()
    }

    fn get_variable_type(&self, _: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        self.state.config_options()
    }

    fn udf_names(&self) -> Vec<String> {
        self.state.scalar_functions().keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        self.state
            .higher_order_functions()
            .keys()
            .cloned()
            .collect()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.state.aggregate_functions().keys().cloned().collect()
    }

    fn udwf_names(&self) -> Vec<String> {
        self.state.window_functions().keys().cloned().collect()
    }
}

/// Table function arguments are constants: fold them as DataFusion does.
fn simplify_args(
    state: &SessionState,
    args: Vec<datafusion::prelude::Expr>,
) -> DfResult<Vec<datafusion::prelude::Expr>> {
    use datafusion::optimizer::simplify_expressions::{ExprSimplifier, SimplifyContext};
    let context = SimplifyContext::builder()
        .with_config_options(Arc::clone(state.config_options()))
        .with_query_execution_start_time(state.execution_props().query_execution_start_time)
        .build();
    let simplifier = ExprSimplifier::new(context);
    let schema = DFSchema::empty();
    args.into_iter()
        .map(|a| {
            simplifier
                .coerce(a, &schema)
                .and_then(|e| simplifier.simplify(e))
        })
        .collect()
}

/// Plans table versions and Sluice's table functions.
struct Relations {
    versions: HashMap<TableReference, Arc<dyn TableSource>>,
    functions: Arc<TableFunctions>,
    state: Arc<SessionState>,
}

impl std::fmt::Debug for Relations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Relations")
    }
}

fn ours(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl RelationPlanner for Relations {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> DfResult<RelationPlanning> {
        let TableFactor::Table {
            name,
            alias,
            args,
            version,
            ..
        } = &relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        if let Some(v) = version {
            let reference = super::bind::versioned_reference(name, v).map_err(ours)?;
            let source =
                self.versions.get(&reference).cloned().ok_or_else(|| {
                    plan_datafusion_err!("table version {reference} was not bound")
                })?;
            // Named like the table, so `t.a` resolves as without a version.
            let plan = LogicalPlanBuilder::scan(name_of(context, name)?, source, None)?.build()?;
            return Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
                plan,
                alias.clone(),
            ))));
        }
        let Some(args) = args else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let function = name.to_string().to_ascii_lowercase();
        let Some(f) = self.functions.get(&function) else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let empty = DFSchema::empty();
        let mut positional = Vec::new();
        let mut named = Vec::new();
        for a in &args.args {
            match crate::frontend::names::function_argument(a) {
                Some((None, e)) => positional.push(context.sql_to_expr(e.clone(), &empty)?),
                Some((Some(name), e)) => {
                    named.push((name, context.sql_to_expr(e.clone(), &empty)?))
                }
                None => {
                    return Err(ours(Error::syntax(format!(
                        "unsupported argument {a} of {function}"
                    ))));
                }
            }
        }
        let provider = f.call_named(self.state.as_ref(), &positional, &named)?;
        let plan = LogicalPlanBuilder::scan(
            TableReference::bare(format!("{function}()")),
            provider_as_source(provider),
            None,
        )?
        .build()?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}

fn name_of(
    context: &mut dyn RelationPlannerContext,
    name: &datafusion::sql::sqlparser::ast::ObjectName,
) -> DfResult<TableReference> {
    context.object_name_to_table_reference(name.clone())
}

/// Whether `e` is an integer literal PostgreSQL types `integer`.
fn is_int4(e: &datafusion::prelude::Expr) -> bool {
    use datafusion::common::ScalarValue;
    // The SQL planner makes every integer literal an Int64.
    matches!(e, datafusion::prelude::Expr::Literal(ScalarValue::Int64(Some(v)), _) if i32::try_from(*v).is_ok())
}

/// `generate_series` of integers answers integers, as PostgreSQL's does
/// (DataFusion's answers bigints): its column cast, as a view of it.
fn integer_series(
    provider: Arc<dyn datafusion::catalog::TableProvider>,
) -> DfResult<Arc<dyn datafusion::catalog::TableProvider>> {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{LogicalPlanBuilder, cast, col};
    let columns: Vec<datafusion::prelude::Expr> = provider
        .schema()
        .fields()
        .iter()
        .map(|f| cast(col(f.name()), DataType::Int32).alias(f.name()))
        .collect();
    let plan = LogicalPlanBuilder::scan("generate_series()", provider_as_source(provider), None)?
        .project(columns)?
        .build()?;
    Ok(Arc::new(datafusion::catalog::view::ViewTable::new(
        plan, None,
    )))
}
