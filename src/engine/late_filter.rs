//! Late materialization for scans that a hash join narrows to a few keys.
//!
//! A hash join hands its probe-side scan a dynamic filter built from the
//! build side: bounds of the join key and, when the build side holds few
//! distinct keys, the keys themselves as an `IN` list. DataFusion uses that
//! filter to prune Parquet row groups. Applying it row by row while
//! decoding ("pushdown filters", late materialization) pays off only when
//! it removes nearly every row: it then skips decoding the other columns.
//! For a filter that keeps a few percent of the rows, evaluating it during
//! the decode costs more than it saves (TPC-H q3, q5 and q9 ran 1.5x slower
//! with it on), so it is off by default.
//!
//! [`SelectiveRowFilter`] decides per file, when the scan opens it, which is
//! after the build side is complete: if a dynamic filter has become an
//! `IN` list (at most `hash_join_inlist_pushdown_max_distinct_values` keys),
//! the file is read with the filter applied while decoding; otherwise as
//! before. TPC-H q17 and q18 (a few hundred parts, 57 orders) are of the
//! first kind.
//!
//! Correctness does not depend on the choice: the scan was planned without
//! row-level filtering, so every operator above it still applies its own
//! filters and the join still matches keys.

use std::fmt::{self, Formatter};
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::datasource::physical_plan::{
    FileOpener, FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{DynamicFilterPhysicalExpr, InListExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::projection::ProjectionExprs;
use datafusion::physical_plan::{DisplayFormatType, ExecutionPlan};
use datafusion_datasource::PartitionedFile;
use datafusion_datasource::morsel::{MorselPlanner, Morselizer};
use object_store::ObjectStore;

/// Wraps the Parquet scans that receive a dynamic filter. Runs after
/// DataFusion's own rules, once the filters are in place.
#[derive(Debug, Default)]
pub struct SelectiveRowFilter;

impl PhysicalOptimizerRule for SelectiveRowFilter {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        crate::tree::transform_up(plan, |node| {
            let Some(scan) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            let Some(parquet) = config.file_source.downcast_ref::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            // Already filtering while decoding; or reading row positions
            // (Delta deletion vectors), which delta-rs itself never
            // combines with a row filter.
            if parquet.table_parquet_options().global.pushdown_filters
                || !parquet.table_schema().virtual_columns().is_empty()
            {
                return Ok(Transformed::no(node));
            }
            let dynamic = parquet
                .filter()
                .map(|p| dynamic_filters(&p))
                .unwrap_or_default();
            if dynamic.is_empty() {
                return Ok(Transformed::no(node));
            }
            let source = Selective::new(parquet.clone(), dynamic);
            let config = FileScanConfigBuilder::from(config.clone())
                .with_source(Arc::new(source))
                .build();
            Ok(Transformed::yes(
                DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "selective_row_filter"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The dynamic filters inside a scan predicate.
fn dynamic_filters(predicate: &Arc<dyn PhysicalExpr>) -> Vec<Arc<dyn PhysicalExpr>> {
    let mut found = Vec::new();
    let _ = crate::tree::apply(predicate, |node| {
        if node.downcast_ref::<DynamicFilterPhysicalExpr>().is_some() {
            found.push(node.clone());
            return Ok(TreeNodeRecursion::Jump);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Whether any dynamic filter now lists its keys.
fn narrowed_to_keys(dynamic: &[Arc<dyn PhysicalExpr>]) -> bool {
    dynamic.iter().any(|filter| {
        let Some(filter) = filter.downcast_ref::<DynamicFilterPhysicalExpr>() else {
            return false;
        };
        let Ok(current) = filter.current() else {
            return false;
        };
        let mut listed = false;
        let _ = crate::tree::apply(&current, |node: &Arc<dyn PhysicalExpr>| {
            if node.downcast_ref::<InListExpr>().is_some() {
                listed = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        listed
    })
}

/// A Parquet source read either as planned (`plain`) or with its predicate
/// applied while decoding (`pushed`), chosen per file.
#[derive(Clone)]
struct Selective {
    plain: ParquetSource,
    pushed: ParquetSource,
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
}

impl Selective {
    fn new(plain: ParquetSource, dynamic: Vec<Arc<dyn PhysicalExpr>>) -> Self {
        let pushed = plain
            .clone()
            .with_pushdown_filters(true)
            .with_reorder_filters(true);
        Selective {
            plain,
            pushed,
            dynamic,
        }
    }

    /// The same choice over a changed source; anything but Parquet is
    /// returned as it is.
    fn rewrap(&self, changed: Arc<dyn FileSource>) -> Arc<dyn FileSource> {
        match changed.downcast_ref::<ParquetSource>() {
            Some(parquet) if !parquet.table_parquet_options().global.pushdown_filters => {
                Arc::new(Selective::new(parquet.clone(), self.dynamic.clone()))
            }
            _ => changed,
        }
    }
}

impl FileSource for Selective {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        self.plain
            .create_file_opener(object_store, base_config, partition)
    }

    fn create_morselizer(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Box<dyn Morselizer>> {
        Ok(Box::new(PerFile {
            plain: self
                .plain
                .create_morselizer(object_store.clone(), base_config, partition)?,
            pushed: self
                .pushed
                .create_morselizer(object_store, base_config, partition)?,
            dynamic: self.dynamic.clone(),
        }))
    }

    fn reorder_files(&self, files: Vec<PartitionedFile>) -> Vec<PartitionedFile> {
        self.plain.reorder_files(files)
    }

    fn table_schema(&self) -> &TableSchema {
        self.plain.table_schema()
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        self.rewrap(self.plain.with_batch_size(batch_size))
    }

    fn filter(&self) -> Option<Arc<dyn PhysicalExpr>> {
        self.plain.filter()
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        self.plain.projection()
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        self.plain.metrics()
    }

    fn file_type(&self) -> &str {
        self.plain.file_type()
    }

    fn fmt_extra(&self, t: DisplayFormatType, f: &mut Formatter) -> fmt::Result {
        self.plain.fmt_extra(t, f)?;
        if matches!(t, DisplayFormatType::Verbose) {
            write!(f, ", row_filter=when_keys_listed")?;
        }
        Ok(())
    }

    fn supports_repartitioning(&self) -> bool {
        self.plain.supports_repartitioning()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.plain.apply_expressions(f)
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        Ok(self
            .plain
            .try_pushdown_projection(projection)?
            .map(|changed| self.rewrap(changed)))
    }
}

/// Chooses, for each file, between the two readers.
struct PerFile {
    plain: Box<dyn Morselizer>,
    pushed: Box<dyn Morselizer>,
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
}

impl fmt::Debug for PerFile {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerFile").finish_non_exhaustive()
    }
}

impl Morselizer for PerFile {
    fn plan_file(&self, file: PartitionedFile) -> Result<Box<dyn MorselPlanner>> {
        if narrowed_to_keys(&self.dynamic) {
            self.pushed.plan_file(file)
        } else {
            self.plain.plan_file(file)
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{Column, binary, in_list, lit};

    use super::*;

    #[test]
    fn only_a_dynamic_filter_that_lists_keys_reads_with_the_row_filter() {
        let schema = Schema::new(vec![Field::new("k", DataType::Int64, false)]);
        let k: Arc<dyn PhysicalExpr> = Arc::new(Column::new("k", 0));
        let dynamic = Arc::new(DynamicFilterPhysicalExpr::new(vec![k.clone()], lit(true)));
        // A static IN list next to the dynamic filter does not count.
        let fixed = in_list(k.clone(), vec![lit(1i64), lit(2i64)], &false, &schema).unwrap();
        let predicate = binary(
            fixed,
            Operator::And,
            dynamic.clone() as Arc<dyn PhysicalExpr>,
            &schema,
        )
        .unwrap();
        let found = dynamic_filters(&predicate);
        assert_eq!(found.len(), 1);

        // Before the build side is complete: read as planned.
        assert!(!narrowed_to_keys(&found));
        // Bounds only (a large build side): read as planned.
        let bounds = binary(
            binary(k.clone(), Operator::GtEq, lit(1i64), &schema).unwrap(),
            Operator::And,
            binary(k.clone(), Operator::LtEq, lit(9i64), &schema).unwrap(),
            &schema,
        )
        .unwrap();
        dynamic.update(bounds.clone()).unwrap();
        assert!(!narrowed_to_keys(&found));
        // The keys themselves: filter while decoding.
        let keys = in_list(k.clone(), vec![lit(3i64), lit(7i64)], &false, &schema).unwrap();
        dynamic
            .update(binary(bounds, Operator::And, keys, &schema).unwrap())
            .unwrap();
        assert!(narrowed_to_keys(&found));
    }
}
