//! Appending rows: INSERT, COPY, CREATE TABLE AS, refreshes.

use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::LogicalPlan;
use deltalake::protocol::SaveMode;

use super::expectations::Run;
use super::{AppTransaction, Outcome, Target, WriteContext, WriteOptions, conform, write_plan};
use crate::error::Result;

/// Rows into a table, with its rules: missing columns get their defaults,
/// values their column types, NOT NULL and CHECK hold, keys stay unique,
/// references find their parents, expectations count, drop or quarantine.
/// One commit.
pub struct Append<'a> {
    wc: &'a WriteContext,
    target: &'a Target,
    columns: Vec<String>,
    txns: Vec<AppTransaction>,
    /// What the rows are called in errors (`COPY` uses the file).
    label: String,
    mode: SaveMode,
    metadata: Vec<(String, serde_json::Value)>,
}

/// An append planned: the plan the writer runs, and the expectations to
/// record once it committed.
pub struct Planned {
    pub plan: LogicalPlan,
    pub run: Option<Run>,
}

impl Planned {
    /// Record the expectation counts against the version `outcome` made.
    pub async fn committed(self, outcome: &Outcome) {
        if let Some(run) = self.run {
            run.record(outcome.version).await;
        }
    }
}

impl<'a> Append<'a> {
    pub fn new(wc: &'a WriteContext, target: &'a Target) -> Append<'a> {
        Append {
            wc,
            target,
            columns: target.def.column_names(),
            txns: Vec::new(),
            label: target.name.clone(),
            mode: SaveMode::Append,
            metadata: Vec::new(),
        }
    }

    /// The table columns the input's columns fill, in order (the others
    /// get their defaults).
    pub fn columns(mut self, columns: Vec<String>) -> Self {
        self.columns = columns;
        self
    }

    /// Commit recording `txns` (exactly once per writer and version).
    pub fn app_transactions(mut self, txns: Vec<AppTransaction>) -> Self {
        self.txns = txns;
        self
    }

    pub fn label(mut self, label: String) -> Self {
        self.label = label;
        self
    }

    /// The rows replace every row of the table (one overwrite commit)
    /// instead of being added. Only for tables without keys or references
    /// pointing at them: their checks read the rows being replaced.
    pub fn replacing_all(mut self) -> Self {
        self.mode = SaveMode::Overwrite;
        self
    }

    /// Recorded in the commit's `commitInfo`.
    pub fn metadata(mut self, metadata: Vec<(String, serde_json::Value)>) -> Self {
        self.metadata = metadata;
        self
    }

    /// The write plan of `df` with the table's rules on it.
    pub async fn plan(&self, df: DataFrame) -> Result<(DataFrame, Option<Run>)> {
        let def = &self.target.def;
        // The table's checks and expectations are volatile predicates that
        // the optimizers would push below (and merge with) the input's own
        // filters, joins or aggregates, judging rows the input drops: such
        // an input runs on its own first.
        let df = if (!def.checks.is_empty() || !def.expectations.is_empty())
            && !row_wise(df.logical_plan())
        {
            crate::quality::guard::barrier(&self.wc.ctx, df)?
        } else {
            df
        };
        let df = conform(self.wc, df, def, &self.columns, &self.label)?;
        self.target.prepare_append(self.wc, df).await
    }

    fn options(&self) -> WriteOptions {
        WriteOptions {
            txns: self.txns.clone(),
            metadata: self.metadata.clone(),
            unique_columns: self.target.def.unique_columns(),
            ..Default::default()
        }
    }

    /// Append the rows of `df` in one commit.
    pub async fn run(self, df: DataFrame) -> Result<Outcome> {
        let (df, run) = self.plan(df).await?;
        let planned = Planned {
            plan: df.into_unoptimized_plan(),
            run,
        };
        let outcome = write_plan(
            self.wc.ctx.state(),
            self.wc.lake.clone(),
            self.target.table.clone(),
            planned.plan.clone(),
            self.mode,
            self.options(),
        )
        .await?;
        planned.committed(&outcome).await;
        Ok(outcome)
    }

    /// [`Append::run`], and the rows as written (for RETURNING: they are
    /// the statement's own rows, so holding them is bounded by its size).
    pub async fn run_returning(self, df: DataFrame) -> Result<(Outcome, Vec<RecordBatch>)> {
        let (df, run) = self.plan(df).await?;
        let batches = df.collect().await?;
        let written = self
            .target
            .table
            .clone()
            .write(batches.clone())
            .with_save_mode(SaveMode::Append)
            .with_writer_properties(super::data_file_properties(
                &self.target.def.unique_columns(),
            ))
            .with_session_state(std::sync::Arc::new(self.wc.ctx.state()))
            .with_commit_properties(super::commit_properties_with(&self.txns))
            .await?;
        self.wc.lake.committed(&written).await;
        let outcome = Outcome::of(written, None).await;
        if let Some(run) = run {
            run.record(outcome.version).await;
        }
        Ok((outcome, batches))
    }
}

/// Whether `plan` maps each input row to at most one row on its own
/// (scans, values, projections, unions), so a predicate above it may be
/// evaluated below it without judging rows it drops.
fn row_wise(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut only = true;
    let _ = crate::tree::apply(plan, |n| {
        if !matches!(
            n,
            LogicalPlan::Projection(_)
                | LogicalPlan::TableScan(_)
                | LogicalPlan::Values(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Union(_)
                | LogicalPlan::EmptyRelation(_)
        ) {
            only = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    only
}
