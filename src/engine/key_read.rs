//! Lookups by key answered without optimizing or physically planning the
//! query: `SELECT cols FROM t WHERE k = value`, where `k` alone is `t`'s
//! primary key or a UNIQUE column, reads the pages that may hold the value
//! ([`crate::lake::point`]) and nothing else.
//!
//! The statement is bound as any query is (names, `search_path`, types,
//! parameters put in); only the plan's shape is recognized here:
//!
//! ```text
//!  Projection: columns of t (aliases allowed)
//!    Filter: t.k = literal
//!      [SubqueryAlias]
//!        TableScan: t            (a Delta table whose key is k)
//! ```
//!
//! Everything else, and anything the reader declines (see
//! [`crate::lake::point`]), runs as a planned query; both give the same
//! rows, in the plan's column types.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator, TableScan};
use url::Url;

use crate::catalog::{self, Def};
use crate::error::Result;

/// A recognized lookup by key.
#[derive(Debug)]
pub struct KeyRead {
    url: Url,
    version: Option<u64>,
    key: String,
    /// In the type the reader compares: the column's integer type, or
    /// `Utf8` for text.
    value: ScalarValue,
    /// Table columns, one per output column.
    columns: Vec<String>,
    /// The plan's output.
    schema: SchemaRef,
}

/// The lookup by key `plan` is, if it has that shape (see the module).
pub fn recognize(plan: &LogicalPlan, snapshot: &catalog::Snapshot) -> Option<KeyRead> {
    let LogicalPlan::Projection(p) = plan else {
        return None;
    };
    let LogicalPlan::Filter(f) = p.input.as_ref() else {
        return None;
    };
    let scan = match f.input.as_ref() {
        LogicalPlan::TableScan(s) => s,
        LogicalPlan::SubqueryAlias(a) => match a.input.as_ref() {
            LogicalPlan::TableScan(s) => s,
            _ => return None,
        },
        _ => return None,
    };
    let TableScan {
        table_name,
        source,
        projection: None,
        filters,
        fetch: None,
        ..
    } = scan
    else {
        return None;
    };
    if !filters.is_empty() {
        return None;
    }
    let provider = source_as_provider(source).ok()?;
    let (url, version) = crate::lake::snapshot_of(provider.as_ref())?;
    let keys = crate::lake::keys_of(provider.as_ref())?;
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = &f.predicate
    else {
        return None;
    };
    let (key, literal) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
            (c.name.clone(), v)
        }
        _ => return None,
    };
    if !keys.iter().any(|k| k.len() == 1 && k[0] == key) {
        return None;
    }
    let table_schema = scan.source.schema();
    let key_type = table_schema.field_with_name(&key).ok()?.data_type().clone();
    let value = match key_type {
        DataType::Int16 | DataType::Int32 | DataType::Int64 => integer(literal, &key_type)?,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
            // Text and varchar compare as their bytes; char(n) does not.
            let Def::Table(def) = &snapshot
                .relation(table_name.schema()?, table_name.table())?
                .def
            else {
                return None;
            };
            let declared = def.columns.iter().find(|c| c.name == key)?;
            if !matches!(declared.ty.name.as_str(), "text" | "character varying") {
                return None;
            }
            text(literal)?
        }
        _ => return None,
    };
    let mut columns = Vec::with_capacity(p.expr.len());
    for e in &p.expr {
        let e = match e {
            Expr::Alias(a) => a.expr.as_ref(),
            e => e,
        };
        let Expr::Column(c) = e else {
            return None;
        };
        table_schema.field_with_name(&c.name).ok()?;
        columns.push(c.name.clone());
    }
    Some(KeyRead {
        url,
        version,
        key,
        value,
        columns,
        schema: Arc::new(plan.schema().as_arrow().clone()),
    })
}

/// An integer literal as the key column's type; `None` (planned as a
/// query) for another type or a value the column cannot hold. NULL stays
/// NULL: it equals no row.
fn integer(v: &ScalarValue, to: &DataType) -> Option<ScalarValue> {
    match v {
        ScalarValue::Null => ScalarValue::try_from(to).ok(),
        v if v.data_type().is_integer() => v.cast_to(to).ok(),
        _ => None,
    }
}

/// A text literal as `Utf8`.
fn text(v: &ScalarValue) -> Option<ScalarValue> {
    match v {
        ScalarValue::Null => Some(ScalarValue::Utf8(None)),
        ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => {
            Some(ScalarValue::Utf8(s.clone()))
        }
        _ => None,
    }
}

impl KeyRead {
    /// The rows, in the plan's output schema; `None` when the reader
    /// declines (then the query is planned).
    pub async fn rows(&self, lake: &crate::lake::Lake) -> Result<Option<Vec<RecordBatch>>> {
        let table = lake.table_for_read(&self.url).await?;
        if table.version() != self.version {
            return Ok(None);
        }
        if self.value.is_null() {
            return Ok(Some(Vec::new()));
        }
        let Some(found) =
            crate::lake::point::rows_by_key(&table, &self.key, &self.value, &self.columns).await?
        else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(found.len());
        for batch in found {
            let columns = batch
                .columns()
                .iter()
                .zip(self.schema.fields())
                .map(|(c, f)| Ok(cast(c, f.data_type())?))
                .collect::<Result<Vec<ArrayRef>>>()?;
            out.push(RecordBatch::try_new(self.schema.clone(), columns)?);
        }
        Ok(Some(out))
    }

    /// The plan's output schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_take_the_column_type_or_decline() {
        assert_eq!(
            integer(&ScalarValue::Int32(Some(5)), &DataType::Int64),
            Some(ScalarValue::Int64(Some(5)))
        );
        // Out of the column's range: planned as a query, which compares
        // in the wider type.
        assert_eq!(
            integer(&ScalarValue::Int64(Some(1 << 40)), &DataType::Int32),
            None
        );
        assert_eq!(
            integer(&ScalarValue::Null, &DataType::Int32),
            Some(ScalarValue::Int32(None))
        );
        assert_eq!(
            integer(&ScalarValue::Float64(Some(5.0)), &DataType::Int64),
            None
        );
        assert_eq!(
            integer(&ScalarValue::Utf8(Some("5".into())), &DataType::Int64),
            None
        );
        assert_eq!(
            text(&ScalarValue::Utf8View(Some("a".into()))),
            Some(ScalarValue::Utf8(Some("a".into())))
        );
        assert_eq!(text(&ScalarValue::Int32(Some(1))), None);
    }
}
