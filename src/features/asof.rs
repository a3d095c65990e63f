//! ASOF joins in plans: the logical node, the rule that makes one of a
//! marked join, and its physical planner.
//!
//! ```text
//!  l ASOF LEFT JOIN r MATCH_CONDITION (l.ts >= r.ts) ON l.k = r.k
//!    ─frontend─▶ Join(Left, filter: sluice_asof_match(l.ts >= r.ts) AND l.k = r.k)
//!    ─AsofJoins (analyzer, after type coercion)─▶ AsofJoin { keys, times, op }
//!    ─AsofPlanner─▶ AsofJoinExec (see [`super::asof_exec`])
//! ```
//!
//! For each left row the join picks the one right row with equal keys whose
//! time is the closest on the side the comparison allows (`l.ts >= r.ts`:
//! the latest right row at or before the left time). NULL keys and times
//! never match. A point-in-time join adds two rules the SQL form has no
//! words for: a right row is usable only once it was created (`cutoff`),
//! and only while it is younger than the TTL (`max_age`).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::catalog::Session;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, not_impl_err};
use datafusion::error::Result as DfResult;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, Extension, JoinType, LogicalPlan, Operator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, UserDefinedLogicalNode,
    UserDefinedLogicalNodeCore, Volatility, build_join_schema,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::future::BoxFuture;

use super::asof_exec::{AsofJoinExec, AsofSpec};
use crate::frontend::asof::MATCH_MARKER;

/// A statement the ASOF join cannot take as written (42601).
macro_rules! syntax_err {
    ($($arg:tt)*) => {
        Err(datafusion::error::DataFusionError::External(Box::new(
            crate::error::Error::syntax(format!($($arg)*)),
        )))
    };
}

/// How the left time relates to the chosen right time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum AsofOp {
    /// `l >= r`: the latest right row at or before.
    AtOrAfter,
    /// `l > r`: the latest right row strictly before.
    After,
    /// `l <= r`: the earliest right row at or after.
    AtOrBefore,
    /// `l < r`: the earliest right row strictly after.
    Before,
}

impl AsofOp {
    fn of(op: Operator) -> Option<Self> {
        match op {
            Operator::GtEq => Some(AsofOp::AtOrAfter),
            Operator::Gt => Some(AsofOp::After),
            Operator::LtEq => Some(AsofOp::AtOrBefore),
            Operator::Lt => Some(AsofOp::Before),
            _ => None,
        }
    }

    /// Whether the match is at or before the left time.
    pub fn backward(self) -> bool {
        matches!(self, AsofOp::AtOrAfter | AsofOp::After)
    }

    fn symbol(self) -> &'static str {
        match self {
            AsofOp::AtOrAfter => ">=",
            AsofOp::After => ">",
            AsofOp::AtOrBefore => "<=",
            AsofOp::Before => "<",
        }
    }
}

/// The ASOF join as a logical plan node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsofJoin {
    pub left: Arc<LogicalPlan>,
    pub right: Arc<LogicalPlan>,
    /// Equal keys: (left side, right side).
    pub keys: Vec<(Expr, Expr)>,
    pub left_time: Expr,
    pub right_time: Expr,
    pub op: AsofOp,
    /// Left rows without a match are kept, with NULL right columns.
    pub keep_unmatched: bool,
    /// A right-side time: the row is usable only when it is at or before
    /// the left time (a feature value created after the label is unknown).
    pub cutoff: Option<Expr>,
    /// The oldest a match may be, in microseconds (a TTL).
    pub max_age_micros: Option<i64>,
    pub schema: DFSchemaRef,
}

impl PartialOrd for AsofJoin {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self == other).then_some(Ordering::Equal)
    }
}

impl AsofJoin {
    /// A node over two inputs, its schema that of a join of them.
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        left: Arc<LogicalPlan>,
        right: Arc<LogicalPlan>,
        keys: Vec<(Expr, Expr)>,
        left_time: Expr,
        right_time: Expr,
        op: AsofOp,
        keep_unmatched: bool,
        cutoff: Option<Expr>,
        max_age_micros: Option<i64>,
    ) -> DfResult<Self> {
        let join_type = if keep_unmatched {
            JoinType::Left
        } else {
            JoinType::Inner
        };
        let schema = Arc::new(build_join_schema(
            left.schema(),
            right.schema(),
            &join_type,
        )?);
        Ok(AsofJoin {
            left,
            right,
            keys,
            left_time,
            right_time,
            op,
            keep_unmatched,
            cutoff,
            max_age_micros,
            schema,
        })
    }
}

impl UserDefinedLogicalNodeCore for AsofJoin {
    fn name(&self) -> &str {
        "AsofJoin"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.left, &self.right]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        let mut out: Vec<Expr> = self.keys.iter().map(|(l, _)| l.clone()).collect();
        out.extend(self.keys.iter().map(|(_, r)| r.clone()));
        out.push(self.left_time.clone());
        out.push(self.right_time.clone());
        out.extend(self.cutoff.clone());
        out
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "AsofJoin: {}{} {} {}",
            if self.keep_unmatched { "left, " } else { "" },
            self.left_time,
            self.op.symbol(),
            self.right_time
        )?;
        for (l, r) in &self.keys {
            write!(f, ", {l} = {r}")?;
        }
        if let Some(c) = &self.cutoff {
            write!(f, ", created {c}")?;
        }
        if let Some(age) = self.max_age_micros {
            write!(f, ", ttl {age}us")?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(&self, exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        let [left, right]: [LogicalPlan; 2] = inputs.try_into().map_err(|_| {
            datafusion::error::DataFusionError::Internal("AsofJoin takes two inputs".into())
        })?;
        let n = self.keys.len();
        if exprs.len() != 2 * n + 2 + usize::from(self.cutoff.is_some()) {
            return Err(datafusion::error::DataFusionError::Internal(
                "AsofJoin: wrong number of expressions".into(),
            ));
        }
        let keys = (0..n)
            .map(|i| (exprs[i].clone(), exprs[n + i].clone()))
            .collect();
        AsofJoin::try_new(
            Arc::new(left),
            Arc::new(right),
            keys,
            exprs[2 * n].clone(),
            exprs[2 * n + 1].clone(),
            self.op,
            self.keep_unmatched,
            self.cutoff.as_ref().map(|_| exprs[2 * n + 2].clone()),
            self.max_age_micros,
        )
    }

    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let n_left = self.left.schema().fields().len();
        let left = output_columns.iter().filter(|&&i| i < n_left).copied();
        let right = output_columns
            .iter()
            .filter(|&&i| i >= n_left)
            .map(|&i| i - n_left);
        Some(vec![left.collect(), right.collect()])
    }
}

/// The marker function: a join whose condition holds it is an ASOF join.
/// It never runs; if it is reached, the join it marks was not planned as one.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AsofMatch {
    signature: Signature,
}

impl AsofMatch {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(AsofMatch {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Nullary,
                    TypeSignature::Any(1),
                    TypeSignature::Any(3),
                ],
                Volatility::Immutable,
            ),
        })
    }
}

impl ScalarUDFImpl for AsofMatch {
    fn name(&self) -> &str {
        MATCH_MARKER
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        not_impl_err!(
            "ASOF JOIN here: its conditions must be equalities and one comparison of times"
        )
    }
}

fn is_marker(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.name() == MATCH_MARKER)
}

/// Turns every marked join into an [`AsofJoin`]. Runs after type coercion,
/// so both sides of every comparison already have one type.
#[derive(Debug)]
pub struct AsofJoins;

impl AnalyzerRule for AsofJoins {
    fn name(&self) -> &str {
        "sluice_asof_joins"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        crate::tree::transform_up_with_subqueries(plan, asof_join).map(|t| t.data)
    }
}

fn asof_join(plan: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    let LogicalPlan::Join(join) = &plan else {
        return Ok(Transformed::no(plan));
    };
    let Some(filter) = &join.filter else {
        return Ok(Transformed::no(plan));
    };
    let conditions = split_conjunction(filter);
    let Some(at) = conditions.iter().position(|e| is_marker(e)) else {
        let nested = crate::tree::exists(filter, |e| Ok(is_marker(e))).unwrap_or(false);
        if nested {
            return not_impl_err!(
                "ASOF JOIN conditions must be equalities joined by AND, with one comparison of times"
            );
        }
        return Ok(Transformed::no(plan));
    };
    let keep_unmatched = match join.join_type {
        JoinType::Inner => false,
        JoinType::Left => true,
        other => return not_impl_err!("ASOF {other} JOIN"),
    };
    let side = |e: &Expr| -> Side {
        let cols = e.column_refs();
        if cols.is_empty() {
            Side::Neither
        } else if cols.iter().all(|c| join.left.schema().has_column(c)) {
            Side::Left
        } else if cols.iter().all(|c| join.right.schema().has_column(c)) {
            Side::Right
        } else {
            Side::Both
        }
    };
    let mut rest: Vec<Expr> = conditions
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, e)| (*e).clone())
        .collect();
    let Expr::ScalarFunction(marker) = conditions[at] else {
        unreachable!("checked by is_marker")
    };
    // A point-in-time join (see `training`) adds the time a row became
    // known and the TTL in microseconds, each NULL when there is none.
    let (mut cutoff, mut max_age_micros) = (None, None);
    let comparison = match marker.args.as_slice() {
        [c] => c.clone(),
        [c, created, ttl] => {
            if !matches!(created, Expr::Literal(v, _) if v.is_null()) {
                cutoff = Some(created.clone());
            }
            match ttl {
                Expr::Literal(v, _) if v.is_null() => {}
                // An integer literal of either width.
                Expr::Literal(v, _)
                    if v.data_type().is_integer()
                        && let Ok(datafusion::common::ScalarValue::Int64(Some(t))) =
                            v.cast_to(&DataType::Int64) =>
                {
                    max_age_micros = Some(t)
                }
                other => {
                    return syntax_err!("ASOF JOIN: the TTL must be microseconds, not {other}");
                }
            }
            c.clone()
        }
        [] => {
            let found: Vec<usize> = rest
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    matches!(e, Expr::BinaryExpr(b) if AsofOp::of(b.op).is_some()
                        && matches!((side(&b.left), side(&b.right)), (Side::Left, Side::Right) | (Side::Right, Side::Left)))
                })
                .map(|(i, _)| i)
                .collect();
            match found.as_slice() {
                [i] => rest.remove(*i),
                [] => {
                    return syntax_err!(
                        "ASOF JOIN needs one comparison of times (>=, >, <=, <) between its two sides"
                    );
                }
                _ => return not_impl_err!("ASOF JOIN with more than one comparison of times"),
            }
        }
        _ => return syntax_err!("ASOF JOIN: MATCH_CONDITION takes one comparison"),
    };
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &comparison else {
        return syntax_err!("ASOF JOIN: MATCH_CONDITION must compare two times, not {comparison}");
    };
    let Some(mut asof_op) = AsofOp::of(*op) else {
        return syntax_err!("ASOF JOIN: MATCH_CONDITION compares with >=, >, <= or <, not {op}");
    };
    let (left_time, right_time) = match (side(left), side(right)) {
        (Side::Left, Side::Right) => ((**left).clone(), (**right).clone()),
        (Side::Right, Side::Left) => {
            asof_op = match asof_op {
                AsofOp::AtOrAfter => AsofOp::AtOrBefore,
                AsofOp::After => AsofOp::Before,
                AsofOp::AtOrBefore => AsofOp::AtOrAfter,
                AsofOp::Before => AsofOp::After,
            };
            ((**right).clone(), (**left).clone())
        }
        _ => {
            return syntax_err!(
                "ASOF JOIN: MATCH_CONDITION must compare a time of each side: {comparison}"
            );
        }
    };
    let mut keys: Vec<(Expr, Expr)> = join
        .on
        .iter()
        .map(|(l, r)| (l.clone(), r.clone()))
        .collect();
    for e in rest {
        let pair = match &e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => match (side(left), side(right)) {
                (Side::Left, Side::Right) => Some(((**left).clone(), (**right).clone())),
                (Side::Right, Side::Left) => Some(((**right).clone(), (**left).clone())),
                _ => None,
            },
            _ => None,
        };
        match pair {
            Some(p) => keys.push(p),
            None => {
                return not_impl_err!(
                    "ASOF JOIN condition {e}: only equalities between the two sides and one comparison of times"
                );
            }
        }
    }
    let node = AsofJoin {
        left: join.left.clone(),
        right: join.right.clone(),
        keys,
        left_time,
        right_time,
        op: asof_op,
        keep_unmatched,
        cutoff,
        max_age_micros,
        schema: join.schema.clone(),
    };
    Ok(Transformed::new(
        LogicalPlan::Extension(Extension {
            node: Arc::new(node),
        }),
        true,
        TreeNodeRecursion::Continue,
    ))
}

enum Side {
    Left,
    Right,
    Both,
    Neither,
}

/// Plans [`AsofJoin`] nodes.
#[derive(Debug)]
pub struct AsofPlanner;

// Written out rather than with `#[async_trait]`: the future is made by a
// function of one lifetime (see `crate::send_sync::scan_by`).
impl ExtensionPlanner for AsofPlanner {
    #[allow(clippy::too_many_arguments)]
    fn plan_extension<
        'life0,
        'life1,
        'life2,
        'life3,
        'life4,
        'life5,
        'life6,
        'life7,
        'async_trait,
    >(
        &'life0 self,
        planner: &'life1 dyn PhysicalPlanner,
        node: &'life2 dyn UserDefinedLogicalNode,
        logical_inputs: &'life3 [&'life4 LogicalPlan],
        physical_inputs: &'life5 [Arc<dyn ExecutionPlan>],
        session: &'life6 dyn Session,
        planning: &'life7 PhysicalPlanningContext,
    ) -> BoxFuture<'async_trait, DfResult<Option<Arc<dyn ExecutionPlan>>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        'life4: 'async_trait,
        'life5: 'async_trait,
        'life6: 'async_trait,
        'life7: 'async_trait,
        Self: 'async_trait,
    {
        ready(plan_asof(
            planner,
            node,
            logical_inputs,
            physical_inputs,
            session,
            planning,
        ))
    }
}

/// A boxed future of `value`, made under no bounds.
fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

/// The physical plan of an [`AsofJoin`] node (`None` for other nodes);
/// planning it awaits nothing.
fn plan_asof(
    planner: &dyn PhysicalPlanner,
    node: &dyn UserDefinedLogicalNode,
    logical_inputs: &[&LogicalPlan],
    physical_inputs: &[Arc<dyn ExecutionPlan>],
    session: &dyn Session,
    planning: &PhysicalPlanningContext,
) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let Some(node) = node.as_any().downcast_ref::<AsofJoin>() else {
        return Ok(None);
    };
    let (ls, rs) = (logical_inputs[0].schema(), logical_inputs[1].schema());
    let on_left = |e: &Expr| planner.create_physical_expr(e, ls, session, planning);
    let on_right = |e: &Expr| planner.create_physical_expr(e, rs, session, planning);
    let time_type = node.right_time.get_type(rs)?;
    let unit_micros = micros_per_unit(&time_type).ok_or_else(|| {
        datafusion::error::DataFusionError::NotImplemented(format!(
            "ASOF JOIN on times of type {time_type}: use a timestamp, date or integer"
        ))
    })?;
    let max_age = match (node.max_age_micros, unit_micros) {
        (None, _) => None,
        (Some(age), TimeScale::Micros(per)) => Some(age / per.max(1)),
        (Some(age), TimeScale::PerMicro(n)) => Some(age.saturating_mul(n)),
        (Some(_), TimeScale::Plain) => {
            return not_impl_err!("a TTL needs a timestamp or date time column");
        }
    };
    let spec = AsofSpec {
        left_keys: node
            .keys
            .iter()
            .map(|(l, _)| on_left(l))
            .collect::<DfResult<_>>()?,
        right_keys: node
            .keys
            .iter()
            .map(|(_, r)| on_right(r))
            .collect::<DfResult<_>>()?,
        left_time: on_left(&node.left_time)?,
        right_time: on_right(&node.right_time)?,
        cutoff: node.cutoff.as_ref().map(on_right).transpose()?,
        op: node.op,
        keep_unmatched: node.keep_unmatched,
        max_age,
    };
    let schema = Arc::new(node.schema.as_arrow().clone());
    Ok(Some(Arc::new(AsofJoinExec::try_new(
        physical_inputs[0].clone(),
        physical_inputs[1].clone(),
        Arc::new(spec),
        schema,
    )?)))
}

enum TimeScale {
    /// One unit is this many microseconds.
    Micros(i64),
    /// One microsecond is this many units.
    PerMicro(i64),
    /// No time scale (integers): no TTL.
    Plain,
}

fn micros_per_unit(t: &DataType) -> Option<TimeScale> {
    Some(match t {
        DataType::Timestamp(TimeUnit::Second, _) => TimeScale::Micros(1_000_000),
        DataType::Timestamp(TimeUnit::Millisecond, _) => TimeScale::Micros(1_000),
        DataType::Timestamp(TimeUnit::Microsecond, _) => TimeScale::Micros(1),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => TimeScale::PerMicro(1_000),
        DataType::Date32 => TimeScale::Micros(86_400_000_000),
        DataType::Date64 => TimeScale::Micros(1_000),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => TimeScale::Plain,
        _ => return None,
    })
}

/// DataFusion's physical planner with delta-rs's write nodes and ours.
#[derive(Debug)]
pub struct SluiceQueryPlanner;

// Written out rather than with `#[async_trait]` (see `plan_extension`).
impl QueryPlanner for SluiceQueryPlanner {
    fn create_physical_plan<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        logical_plan: &'life1 LogicalPlan,
        session: &'life2 dyn Session,
    ) -> BoxFuture<'async_trait, DfResult<Arc<dyn ExecutionPlan>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        physical_plan(logical_plan, session)
    }
}

/// DataFusion's physical plan of `logical_plan` with the extension
/// planners, as a future made under no bounds.
fn physical_plan<'a>(
    logical_plan: &'a LogicalPlan,
    session: &'a dyn Session,
) -> BoxFuture<'a, DfResult<Arc<dyn ExecutionPlan>>> {
    Box::pin(async move {
        let planner = DefaultPhysicalPlanner::with_extension_planners(vec![
            deltalake::delta_datafusion::planner::DeltaExtensionPlanner::new(),
            Arc::new(AsofPlanner),
        ]);
        planner.create_physical_plan(logical_plan, session).await
    })
}
