//! PostgreSQL's text output for the types whose rendering by the generic
//! encoder differs from PostgreSQL's (see [`crate::types::output`]).
//!
//! Applied to text-format columns only; binary results are untouched.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::results::{FieldFormat, FieldInfo};

/// Replace text-format timestamp and float columns (and arrays of them) by
/// their PostgreSQL text, and pad `character(n)` columns to `n`.
pub fn pg_text(batch: RecordBatch, fields: &[FieldInfo]) -> RecordBatch {
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let mut changed = false;
    for (i, col) in columns.iter_mut().enumerate() {
        // character(n): padded to n in either format (its binary form is
        // its text).
        if let Some(padded) = fields
            .get(i)
            .and_then(|f| crate::types::bpchar::width(f.datatype(), f.type_modifier()))
            .and_then(|w| crate::types::bpchar::pad(col, w))
        {
            *col = padded;
            changed = true;
            continue;
        }
        if let Some(binary) = fields
            .get(i)
            .and_then(|f| super::wire_types::binary_value(col, f))
        {
            *col = binary;
            changed = true;
            continue;
        }
        if let Some(f) = fields.get(i)
            && f.format() == FieldFormat::Text
            && matches!(
                *f.datatype(),
                pgwire::api::Type::INT2_VECTOR | pgwire::api::Type::OID_VECTOR
            )
            && let Some(text) = crate::types::output::vector_text(col)
        {
            *col = text;
            changed = true;
            continue;
        }
        if fields
            .get(i)
            .is_some_and(|f| f.format() == FieldFormat::Text)
            && let Some(text) = crate::types::output::render(col)
        {
            *col = text;
            changed = true;
            continue;
        }
        // An array of such values: its elements as PostgreSQL prints them
        // (`{1.5,2}`, not `{1.5,2.0}`), a list of their texts, which the
        // encoder quotes as array elements where needed.
        if fields
            .get(i)
            .is_some_and(|f| f.format() == FieldFormat::Text)
            && let Some(text) = rendered_elements(col)
        {
            *col = text;
            changed = true;
        }
    }
    if !changed {
        return batch;
    }
    with_columns(batch, columns)
}

/// `batch` with `columns` in place of its own, each field retyped to its
/// new column's type.
pub fn with_columns(batch: RecordBatch, columns: Vec<ArrayRef>) -> RecordBatch {
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
        batch
            .schema()
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, columns).unwrap_or(batch)
}

/// A list column whose elements [`crate::types::output::render`] prints,
/// as a list of those texts.
fn rendered_elements(col: &ArrayRef) -> Option<ArrayRef> {
    use datafusion::arrow::array::{Array, AsArray, ListArray};
    use datafusion::arrow::datatypes::{DataType, Field};
    let DataType::List(item) = col.data_type() else {
        return None;
    };
    if !crate::types::output::renders(item.data_type()) {
        return None;
    }
    let list = col.as_list::<i32>();
    let texts = crate::types::output::render(list.values())?;
    let texts = datafusion::arrow::compute::cast(&texts, &DataType::Utf8).ok()?;
    let field = Arc::new(Field::new(item.name(), DataType::Utf8, true));
    ListArray::try_new(field, list.offsets().clone(), texts, list.nulls().cloned())
        .ok()
        .map(|l| Arc::new(l) as ArrayRef)
}
