//! Incremental refresh: from a view's logical plan and the rows its
//! sources gained, the plan of what changes in the view.
//!
//! ```text
//!  Δ(scan of a changed source)  = the files added since the last refresh
//!  Δ(π q), Δ(σ q), Δ(sort q)    = π Δq, σ Δq, Δq
//!  Δ(q1 ∪all q2)                = Δq1 ∪all Δq2
//!  Δ(l ⋈ r)                     = Δl ⋈ r_new  ∪all  l_old ⋈ Δr
//!  γ over q with Δq             = the groups Δq touches, recomputed over q
//!  window over q with Δq        = the partitions Δq touches, recomputed over q
//! ```
//!
//! Sources only appended to (Delta commits with added files and no
//! removed rows): a linear plan's delta is appended to the view; a grouped
//! aggregate over a linear plan recomputes the groups the new rows touch
//! and merges them in; so do window functions partitioned by columns of
//! the view (a feature view's windows per entity): every row of a touched
//! partition is recomputed. Anything else is recomputed in full, with the
//! reason said by `EXPLAIN REFRESH`.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::Column;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::{
    Aggregate, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Projection, SubqueryAlias,
    TableScan, Union, Window,
};
use url::Url;

/// A source the view reads that gained rows: a scan of only them, and (for
/// a join whose both sides changed) the source as the view last saw it.
pub struct Changed {
    pub version: u64,
    pub delta: Arc<dyn TableProvider>,
    pub old: Option<Arc<dyn TableProvider>>,
}

/// What changes in the view.
pub enum Delta {
    /// Rows to append: the plan of the view's query over the new rows.
    Append(LogicalPlan),
    /// Groups to replace. `rows` is the view's query over only the groups
    /// `touched` holds (columns `__sluice_key_<k>`), whose key `k` is the
    /// view's column `key_columns[k]`.
    Groups {
        rows: LogicalPlan,
        touched: LogicalPlan,
        key_columns: Vec<usize>,
        /// Window partitions: a key has any number of rows (else one).
        partitions: bool,
    },
    /// Groups to combine: `rows` is the view's query over only the new
    /// rows (one row per group they touch); each view column is a key or
    /// an aggregate whose new value follows from its stored one and the
    /// new rows' (`combine`, one per view column).
    Combine {
        rows: LogicalPlan,
        key_columns: Vec<usize>,
        combine: Vec<Combine>,
    },
}

/// How a view column's stored value and the new rows' value make its new
/// value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Combine {
    Key,
    /// count: stored + new
    Count,
    /// sum: stored + new, a NULL side ignored
    Sum,
    Min,
    Max,
}

/// How an aggregate's value over more rows follows from its values over
/// two parts of them, if it does.
fn combine_of(e: &Expr) -> Option<Combine> {
    let Expr::AggregateFunction(f) = without_aliases(e) else {
        return None;
    };
    let p = &f.params;
    if p.distinct || p.filter.is_some() || !p.order_by.is_empty() {
        return None;
    }
    match f.func.name() {
        "count" => Some(Combine::Count),
        "sum" => Some(Combine::Sum),
        "min" => Some(Combine::Min),
        "max" => Some(Combine::Max),
        _ => None,
    }
}

/// Why a plan is recomputed in full.
pub type Reason = String;

/// The name of touched key `k`.
pub fn key_name(k: usize) -> String {
    format!("__sluice_key_{k}")
}

const TOUCHED: &str = "__sluice_touched";

/// Views read inside the query replaced by their plans, so that the scans
/// of their tables are seen.
pub fn inline_views(plan: LogicalPlan) -> Result<LogicalPlan, Reason> {
    crate::tree::transform_down_with_subqueries(plan, |node| {
        let LogicalPlan::TableScan(scan) = &node else {
            return Ok(Transformed::no(node));
        };
        let provider = source_as_provider(&scan.source)?;
        let Some(inner) = provider.get_logical_plan() else {
            return Ok(Transformed::no(node));
        };
        if scan.projection.is_some() || !scan.filters.is_empty() || scan.fetch.is_some() {
            return Ok(Transformed::no(node));
        }
        let inner = inner.into_owned();
        let alias = SubqueryAlias::try_new(Arc::new(inner), scan.table_name.clone())?;
        Ok(Transformed::yes(LogicalPlan::SubqueryAlias(alias)))
    })
    .map(|t| t.data)
    .map_err(|e| format!("the query's views could not be inlined: {e}"))
}

/// The Delta table (location, version) a scan reads, if it reads one.
fn delta_scan(scan: &TableScan) -> Option<(Url, Option<u64>)> {
    let provider = source_as_provider(&scan.source).ok()?;
    crate::lake::snapshot_of(provider.as_ref())
}

/// The first relation the plan reads whose changes cannot be followed
/// (files outside the lake, system tables, table functions): such a view
/// is recomputed on every refresh.
pub fn untracked(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    let _ = crate::tree::apply_with_subqueries(plan, |node| {
        if let LogicalPlan::TableScan(scan) = node {
            let is_view = source_as_provider(&scan.source)
                .map(|p| p.get_logical_plan().is_some())
                .unwrap_or(false);
            if !is_view && delta_scan(scan).is_none() {
                found = Some(scan.table_name.to_string());
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Computes deltas of plans over `changed` (by table location).
pub struct Deriver<'a> {
    pub changed: &'a HashMap<Url, Changed>,
    /// A changed scan reads a change data feed (rows removed as well as
    /// added): only the groups method applies, which recomputes every
    /// group a changed row was or is in.
    pub feed: bool,
}

/// A delta could not be derived: why, or that the old state of a source
/// is needed first.
#[derive(Debug)]
pub enum Refused {
    Reason(Reason),
    NeedsOld,
}

impl From<String> for Refused {
    fn from(s: String) -> Self {
        Refused::Reason(s)
    }
}

fn df_err(e: datafusion::error::DataFusionError) -> Refused {
    Refused::Reason(format!("the incremental plan failed: {e}"))
}

fn node_name(node: &LogicalPlan) -> String {
    match node {
        LogicalPlan::Aggregate(_) => "an aggregate".into(),
        LogicalPlan::Window(_) => "a window function".into(),
        LogicalPlan::Limit(_) => "LIMIT/OFFSET".into(),
        LogicalPlan::Distinct(_) => "DISTINCT".into(),
        LogicalPlan::Sort(_) => "ORDER BY with LIMIT".into(),
        LogicalPlan::Join(j) => format!("a {} join", j.join_type),
        LogicalPlan::Union(_) => "UNION (without ALL)".into(),
        other => format!("a {} step", other.display().to_string().to_lowercase()),
    }
}

impl Deriver<'_> {
    /// The changed source a scan reads at its newest version.
    fn changing(&self, scan: &TableScan) -> Option<&Changed> {
        let (url, version) = delta_scan(scan)?;
        let c = self.changed.get(&url)?;
        (version == Some(c.version)).then_some(c)
    }

    fn reads_changed(&self, plan: &LogicalPlan) -> bool {
        let mut found = false;
        let _ = crate::tree::apply_with_subqueries(plan, |node| {
            if let LogicalPlan::TableScan(scan) = node
                && self.changing(scan).is_some()
            {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found
    }

    /// Subqueries in a node's expressions must not read a changed source
    /// (their result would change for old rows too); volatile functions
    /// would give the new rows other values than a full run.
    fn check_expressions(&self, node: &LogicalPlan) -> Result<(), Refused> {
        let mut refused = None;
        let _ = crate::tree::apply_subqueries(node, |sub| {
            if self.reads_changed(sub) {
                refused = Some("a subquery reads a changed source".to_string());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if let Some(r) = refused {
            return Err(r.into());
        }
        if node.expressions().iter().any(|e| e.is_volatile()) {
            return Err("the query calls a volatile function".to_string().into());
        }
        Ok(())
    }

    /// `plan` with each changed source read as the view last saw it.
    fn old(&self, plan: &LogicalPlan) -> Result<LogicalPlan, Refused> {
        let mut missing = false;
        let out = crate::tree::transform_up_with_subqueries(plan.clone(), |node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node));
            };
            let Some(c) = self.changing(scan) else {
                return Ok(Transformed::no(node));
            };
            let Some(old) = &c.old else {
                missing = true;
                return Ok(Transformed::no(node));
            };
            Ok(Transformed::yes(LogicalPlan::TableScan(TableScan {
                source: provider_as_source(old.clone()),
                ..scan.clone()
            })))
        })
        .map_err(df_err)?
        .data;
        if missing {
            return Err(Refused::NeedsOld);
        }
        Ok(out)
    }

    /// The rows `plan` gains from the sources' new rows, as a sum of
    /// terms with `plan`'s schema (a UNION ALL of them; kept apart because
    /// a join's columns need not have unique names); `None` when it reads
    /// no changed source.
    pub fn delta(&self, plan: &LogicalPlan) -> Result<Option<Vec<LogicalPlan>>, Refused> {
        if let LogicalPlan::TableScan(scan) = plan {
            return Ok(self.changing(scan).map(|c| {
                vec![LogicalPlan::TableScan(TableScan {
                    source: provider_as_source(c.delta.clone()),
                    ..scan.clone()
                })]
            }));
        }
        let inputs = plan.inputs();
        let mut deltas = Vec::with_capacity(inputs.len());
        for input in &inputs {
            deltas.push(self.delta(input)?);
        }
        if deltas.iter().all(Option::is_none) {
            if self.reads_changed(plan) {
                return Err(
                    format!("{} reads a changed source in a subquery", node_name(plan)).into(),
                );
            }
            return Ok(None);
        }
        self.check_expressions(plan)?;
        let over = |inputs: Vec<LogicalPlan>| {
            plan.with_new_exprs(plan.expressions(), inputs)
                .map_err(df_err)
        };
        match plan {
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
                let terms = deltas.pop().flatten().expect("one input, changed");
                Ok(Some(
                    terms
                        .into_iter()
                        .map(|t| over(vec![t]))
                        .collect::<Result<_, _>>()?,
                ))
            }
            LogicalPlan::Sort(s) if s.fetch.is_none() => {
                // Order means nothing to the rows a table gains.
                Ok(deltas.pop().flatten())
            }
            LogicalPlan::Union(u) => {
                let mut terms = Vec::new();
                for t in deltas.into_iter().flatten().flatten() {
                    terms.push(renamed_as(t, u)?);
                }
                Ok(Some(terms))
            }
            LogicalPlan::Join(j) => {
                let mut it = deltas.into_iter();
                let (dl, dr) = (it.next().flatten(), it.next().flatten());
                let (l, r) = (j.left.as_ref(), j.right.as_ref());
                use JoinType::*;
                let left_ok = matches!(j.join_type, Inner | Left | LeftSemi | LeftAnti);
                let right_ok = matches!(j.join_type, Inner | Right | RightSemi | RightAnti);
                if (dl.is_some() && !left_ok) || (dr.is_some() && !right_ok) {
                    let t = j.join_type.to_string().to_lowercase();
                    return Err(format!(
                        "a {t} join whose {} side changed can change rows already in the view",
                        if dl.is_some() && !left_ok {
                            "left"
                        } else {
                            "right"
                        }
                    )
                    .into());
                }
                let mut terms = Vec::new();
                for t in dl.into_iter().flatten() {
                    terms.push(over(vec![t, r.clone()])?);
                }
                if let Some(dr) = dr {
                    // The left side as it was, unless it did not change.
                    let l_old = if self.reads_changed(l) {
                        self.old(l)?
                    } else {
                        l.clone()
                    };
                    for t in dr {
                        terms.push(over(vec![l_old.clone(), t])?);
                    }
                }
                Ok(Some(terms))
            }
            other => Err(format!("{} over a changed source", node_name(other)).into()),
        }
    }

    /// Replace the groups of a grouped aggregate the new rows touch: the
    /// plan must be a grouped aggregate over a plan with a delta, under
    /// projections, filters (HAVING) and sorts that keep every group key
    /// as a column.
    pub fn groups(&self, plan: &LogicalPlan) -> Result<Delta, Refused> {
        // The nodes above the aggregate, top first.
        let mut chain: Vec<&LogicalPlan> = Vec::new();
        let mut node = plan;
        let agg = loop {
            match node {
                LogicalPlan::Aggregate(a) => break a,
                LogicalPlan::Window(_) => {
                    for n in &chain {
                        self.check_expressions(n)?;
                    }
                    return self.partitions(plan, &chain, node);
                }
                LogicalPlan::Projection(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::SubqueryAlias(_) => {}
                LogicalPlan::Sort(s) if s.fetch.is_none() => {}
                other => {
                    return Err(format!("{} over a changed source", node_name(other)).into());
                }
            }
            chain.push(node);
            node = node.inputs()[0];
        };
        for n in &chain {
            self.check_expressions(n)?;
        }
        if agg.group_expr.is_empty() {
            return Err(
                "an aggregate without GROUP BY is one group: it is recomputed whole"
                    .to_string()
                    .into(),
            );
        }
        if agg
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
        {
            return Err("GROUPING SETS, ROLLUP and CUBE are recomputed whole"
                .to_string()
                .into());
        }
        if agg.aggr_expr.iter().any(|e| e.is_volatile())
            || agg.group_expr.iter().any(|e| e.is_volatile())
        {
            return Err("the query calls a volatile function".to_string().into());
        }
        let Some(terms) = self.delta(&agg.input)? else {
            return Err("the aggregate reads no changed source".to_string().into());
        };
        // Where each group key lands in the view's columns.
        let mut positions: Vec<Option<usize>> = (0..agg.schema.fields().len()).map(Some).collect();
        map_through(&chain, &mut positions);
        let mut key_columns = Vec::new();
        for (k, g) in agg.group_expr.iter().enumerate() {
            match positions[k] {
                Some(p) => key_columns.push(p),
                None => {
                    return Err(format!(
                        "the group key {g} is not a column of the view, so its rows cannot be found"
                    )
                    .into());
                }
            }
        }
        // Every column a key or a combinable aggregate, no HAVING, one
        // term: the new rows' groups combine with the stored ones.
        if !self.feed
            && terms.len() == 1
            && !chain.iter().any(|n| matches!(n, LogicalPlan::Filter(_)))
        {
            let width = plan.schema().fields().len();
            let groups = agg.group_expr.len();
            let combine: Option<Vec<Combine>> = (0..width)
                .map(|j| {
                    let m = positions.iter().position(|p| *p == Some(j))?;
                    if m < groups {
                        Some(Combine::Key)
                    } else {
                        combine_of(agg.aggr_expr.get(m - groups)?)
                    }
                })
                .collect();
            if let Some(combine) = combine {
                let mut rows = LogicalPlan::Aggregate(
                    Aggregate::try_new(
                        Arc::new(terms[0].clone()),
                        agg.group_expr.clone(),
                        agg.aggr_expr.clone(),
                    )
                    .map_err(df_err)?,
                );
                for n in chain.iter().rev() {
                    rows = n
                        .with_new_exprs(n.expressions(), vec![rows])
                        .map_err(df_err)?;
                }
                return Ok(Delta::Combine {
                    rows,
                    key_columns,
                    combine,
                });
            }
        }
        // The keys the new rows have, once each.
        let group_keys: Vec<Expr> = agg.group_expr.iter().map(without_aliases).collect();
        let touched = touched_keys(terms, &group_keys)?;
        // The aggregate over only the rows of those groups.
        let on: Vec<Expr> = agg
            .group_expr
            .iter()
            .enumerate()
            .map(|(k, g)| {
                not_distinct(
                    without_aliases(g),
                    Expr::Column(Column::new(Some(TOUCHED), key_name(k))),
                )
            })
            .collect();
        let input = LogicalPlanBuilder::from(agg.input.as_ref().clone())
            .join_on(touched.clone(), JoinType::LeftSemi, on)
            .and_then(|b| b.build())
            .map_err(df_err)?;
        let regrouped = LogicalPlan::Aggregate(
            Aggregate::try_new(
                Arc::new(input),
                agg.group_expr.clone(),
                agg.aggr_expr.clone(),
            )
            .map_err(df_err)?,
        );
        let mut rows = regrouped;
        for n in chain.iter().rev() {
            rows = n
                .with_new_exprs(n.expressions(), vec![rows])
                .map_err(df_err)?;
        }
        Ok(Delta::Groups {
            rows,
            touched,
            key_columns,
            partitions: false,
        })
    }

    /// Replace the window partitions the new rows touch: `windows` is a
    /// stack of window nodes under `chain` (projections, filters, sorts),
    /// every function of them partitioned by (at least) the same columns,
    /// which are columns of the view. Every row of a touched partition is
    /// computed again over the rows of that partition.
    fn partitions(
        &self,
        plan: &LogicalPlan,
        chain: &[&LogicalPlan],
        windows: &LogicalPlan,
    ) -> Result<Delta, Refused> {
        let mut stack: Vec<&Window> = Vec::new();
        let mut node = windows;
        while let LogicalPlan::Window(w) = node {
            stack.push(w);
            node = w.input.as_ref();
        }
        let bottom = node;
        // The columns every window function is partitioned by.
        let mut keys: Option<Vec<Column>> = None;
        for w in &stack {
            if w.window_expr.iter().any(|e| e.is_volatile()) {
                return Err("the query calls a volatile function".to_string().into());
            }
            for e in &w.window_expr {
                let Expr::WindowFunction(f) = without_aliases(e) else {
                    return Err(format!("the window expression {e} is not a function").into());
                };
                let cols: Vec<Column> = f
                    .params
                    .partition_by
                    .iter()
                    .filter_map(|p| match p {
                        Expr::Column(c) => Some(c.clone()),
                        _ => None,
                    })
                    .collect();
                keys = Some(match keys {
                    None => cols,
                    Some(k) => k.into_iter().filter(|c| cols.contains(c)).collect(),
                });
            }
        }
        let keys = keys.unwrap_or_default();
        if keys.is_empty() {
            return Err(
                "a window function not partitioned by a column (PARTITION BY) is recomputed whole"
                    .to_string()
                    .into(),
            );
        }
        let Some(terms) = self.delta(bottom)? else {
            return Err("the window functions read no changed source"
                .to_string()
                .into());
        };
        let top = stack[0];
        let mut positions: Vec<Option<usize>> = (0..top.schema.fields().len()).map(Some).collect();
        map_through(chain, &mut positions);
        let mut key_columns = Vec::new();
        for k in &keys {
            let at = top.schema.index_of_column(k).ok();
            match at.and_then(|i| positions[i]) {
                Some(p) => key_columns.push(p),
                None => {
                    return Err(format!(
                        "the partition key {k} is not a column of the view, so its rows cannot be found"
                    )
                    .into());
                }
            }
        }
        let key_exprs: Vec<Expr> = keys.iter().cloned().map(Expr::Column).collect();
        let touched = touched_keys(terms, &key_exprs)?;
        let on: Vec<Expr> = key_exprs
            .iter()
            .enumerate()
            .map(|(k, e)| {
                not_distinct(
                    e.clone(),
                    Expr::Column(Column::new(Some(TOUCHED), key_name(k))),
                )
            })
            .collect();
        let mut rows = LogicalPlanBuilder::from(bottom.clone())
            .join_on(touched.clone(), JoinType::LeftSemi, on)
            .and_then(|b| b.build())
            .map_err(df_err)?;
        for w in stack.iter().rev() {
            rows = LogicalPlan::Window(
                Window::try_new(w.window_expr.clone(), Arc::new(rows)).map_err(df_err)?,
            );
        }
        for n in chain.iter().rev() {
            rows = n
                .with_new_exprs(n.expressions(), vec![rows])
                .map_err(df_err)?;
        }
        if rows.schema().fields().len() != plan.schema().fields().len() {
            return Err("the recomputed partitions do not have the view's columns"
                .to_string()
                .into());
        }
        Ok(Delta::Groups {
            rows,
            touched,
            key_columns,
            partitions: true,
        })
    }

    /// The incremental form of the whole view query.
    pub fn derive(&self, plan: &LogicalPlan) -> Result<Delta, Refused> {
        if self.feed {
            if !plan_has_aggregate(plan) {
                return Err(
                    "rows were changed or removed, and only a grouped aggregate or a \
                     partitioned window (its touched groups recomputed) follows those"
                        .to_string()
                        .into(),
                );
            }
            return match self.groups(plan) {
                Err(Refused::Reason(why)) => Err(format!(
                    "rows were changed or removed, which only a grouped aggregate follows \
                     (its touched groups recomputed): {why}"
                )
                .into()),
                other => other,
            };
        }
        match self.delta(plan) {
            Ok(Some(terms)) => {
                let mut all: Option<LogicalPlanBuilder> = None;
                for t in terms {
                    all = Some(match all {
                        None => LogicalPlanBuilder::from(t),
                        Some(b) => b.union(t).map_err(df_err)?,
                    });
                }
                let plan = all
                    .expect("a changed plan has a term")
                    .build()
                    .map_err(df_err)?;
                Ok(Delta::Append(plan))
            }
            Ok(None) => Err("the query reads no changed source".to_string().into()),
            Err(Refused::NeedsOld) => Err(Refused::NeedsOld),
            Err(Refused::Reason(linear)) => match self.groups(plan) {
                Ok(d) => Ok(d),
                Err(Refused::NeedsOld) => Err(Refused::NeedsOld),
                Err(Refused::Reason(grouped)) => {
                    // The reason of the form the query is closest to.
                    let aggregated = plan_has_aggregate(plan);
                    Err(Refused::Reason(if aggregated { grouped } else { linear }))
                }
            },
        }
    }
}

/// Follow column positions up through `chain` (top first): where each
/// lands in the top's columns, `None` where a projection drops it.
fn map_through(chain: &[&LogicalPlan], positions: &mut Vec<Option<usize>>) {
    for n in chain.iter().rev() {
        if let LogicalPlan::Projection(p) = n {
            let input = p.input.schema();
            *positions = positions
                .iter()
                .map(|pos| {
                    let pos = (*pos)?;
                    p.expr.iter().position(|e| match without_aliases(e) {
                        Expr::Column(c) => input.index_of_column(&c).ok() == Some(pos),
                        _ => false,
                    })
                })
                .collect();
        }
    }
}

/// The distinct values of `keys` in the delta `terms`, as columns
/// `key_name(k)` of a relation named [`TOUCHED`].
fn touched_keys(terms: Vec<LogicalPlan>, keys: &[Expr]) -> Result<LogicalPlan, Refused> {
    let named: Vec<Expr> = keys
        .iter()
        .enumerate()
        .map(|(k, e)| e.clone().alias(key_name(k)))
        .collect();
    let mut touched: Option<LogicalPlanBuilder> = None;
    for t in terms {
        let term = LogicalPlanBuilder::from(t)
            .project(named.clone())
            .and_then(|b| b.build())
            .map_err(df_err)?;
        touched = Some(match touched {
            None => LogicalPlanBuilder::from(term),
            Some(b) => b.union(term).map_err(df_err)?,
        });
    }
    let columns: Vec<Expr> = (0..keys.len())
        .map(|k| Expr::Column(Column::new_unqualified(key_name(k))))
        .collect();
    touched
        .ok_or_else(|| Refused::Reason("no changed input".to_string()))?
        .aggregate(columns, Vec::<Expr>::new())
        .and_then(|b| b.alias(TOUCHED))
        .and_then(|b| b.build())
        .map_err(df_err)
}

fn plan_has_aggregate(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = crate::tree::apply(plan, |n| {
        if matches!(n, LogicalPlan::Aggregate(_) | LogicalPlan::Window(_)) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// A term of a UNION ALL's input, with the union's column names.
fn renamed_as(term: LogicalPlan, u: &Union) -> Result<LogicalPlan, Refused> {
    let exprs: Vec<Expr> = term
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    Ok(LogicalPlan::Projection(
        Projection::try_new_with_schema(exprs, Arc::new(term), u.schema.clone()).map_err(df_err)?,
    ))
}

/// `e` without the aliases around it (a projection under ORDER BY names
/// a column twice).
fn without_aliases(e: &Expr) -> Expr {
    let mut e = e;
    while let Expr::Alias(a) = e {
        e = &a.expr;
    }
    e.clone()
}

/// `l IS NOT DISTINCT FROM r`: keys equal, nulls included.
pub fn not_distinct(l: Expr, r: Expr) -> Expr {
    datafusion::logical_expr::binary_expr(
        l,
        datafusion::logical_expr::Operator::IsNotDistinctFrom,
        r,
    )
}
