//! PostgreSQL's ordered-set aggregates DataFusion does not have:
//! `percentile_disc(f) WITHIN GROUP (ORDER BY x)`, the first value whose
//! position in the order reaches the fraction `f` of the rows, and
//! `mode() WITHIN GROUP (ORDER BY x)`, the most frequent value (the first
//! in the order among equally frequent ones). NULL values are skipped; no
//! value gives NULL. Each group's values are kept and sorted once, as
//! PostgreSQL does.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::{SortOptions, concat, filter, is_not_null, sort_to_indices};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

use crate::error::{Error, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    PercentileDisc,
    Mode,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct OrderedSet {
    kind: Kind,
    signature: Signature,
}

impl AggregateUDFImpl for OrderedSet {
    fn name(&self) -> &str {
        match self.kind {
            Kind::PercentileDisc => "percentile_disc",
            Kind::Mode => "mode",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }
    fn supports_within_group_clause(&self) -> bool {
        true
    }
    /// The values are sorted by the accumulator itself.
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let t = args.input_fields[0].data_type().clone();
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "values"),
            DataType::List(Arc::new(Field::new_list_field(t, true))),
            true,
        ))])
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let descending = args.order_bys.first().is_some_and(|s| s.options.descending);
        let fraction = match self.kind {
            Kind::Mode => None,
            Kind::PercentileDisc => Some(fraction(&args)?),
        };
        Ok(Box::new(Values {
            kind: self.kind,
            fraction,
            descending,
            data_type: args.expr_fields[0].data_type().clone(),
            values: Vec::new(),
        }))
    }
}

/// The constant fraction of `percentile_disc`, between 0 and 1.
fn fraction(args: &AccumulatorArgs) -> Result<f64> {
    // A constant evaluates without rows.
    let empty = datafusion::arrow::record_batch::RecordBatch::new_empty(Arc::new(
        datafusion::arrow::datatypes::Schema::empty(),
    ));
    let value = match args.exprs.get(1).map(|e| e.evaluate(&empty)) {
        Some(Ok(datafusion::logical_expr::ColumnarValue::Scalar(v))) => Some(v),
        _ => None,
    };
    let f = match value.map(|v| v.cast_to(&DataType::Float64)) {
        Some(Ok(ScalarValue::Float64(Some(f)))) => f,
        _ => {
            return Err(Error::not_supported(
                "percentile_disc with a fraction that is not a constant",
            )
            .into());
        }
    };
    if !(0.0..=1.0).contains(&f) {
        return Err(Error::new(
            ErrorKind::NumericOutOfRange,
            format!("percentile value {f} is not between 0 and 1"),
        )
        .into());
    }
    Ok(f)
}

#[derive(Debug)]
struct Values {
    kind: Kind,
    fraction: Option<f64>,
    descending: bool,
    data_type: DataType,
    /// The group's non-NULL values, in the batches they came in.
    values: Vec<ArrayRef>,
}

impl Values {
    fn all(&self) -> Result<Option<ArrayRef>> {
        if self.values.is_empty() {
            return Ok(None);
        }
        let parts: Vec<&dyn Array> = self.values.iter().map(|a| a.as_ref()).collect();
        Ok(Some(concat(&parts)?))
    }
}

impl Accumulator for Values {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = &values[0];
        let kept = if v.null_count() > 0 {
            filter(v, &is_not_null(v)?)?
        } else {
            v.clone()
        };
        if !kept.is_empty() {
            self.values.push(kept);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for list in lists.iter().flatten() {
            self.update_batch(&[list])?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let all = match self.all()? {
            Some(a) => a,
            None => datafusion::arrow::array::new_empty_array(&self.data_type),
        };
        Ok(vec![ScalarValue::List(Arc::new(
            datafusion::arrow::array::ListArray::new(
                Arc::new(Field::new_list_field(self.data_type.clone(), true)),
                datafusion::arrow::buffer::OffsetBuffer::from_lengths([all.len()]),
                all,
                None,
            ),
        ))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some(all) = self.all()? else {
            return ScalarValue::try_from(&self.data_type);
        };
        let order = sort_to_indices(
            &all,
            Some(SortOptions {
                descending: self.descending,
                nulls_first: false,
            }),
            None,
        )?;
        let n = order.len();
        let at = |i: usize| ScalarValue::try_from_array(&all, order.value(i) as usize);
        match self.kind {
            Kind::PercentileDisc => {
                let f = self.fraction.unwrap_or(0.0);
                // The first position whose cumulative share reaches f.
                let i = ((f * n as f64).ceil() as usize).clamp(1, n) - 1;
                at(i)
            }
            Kind::Mode => {
                // Runs of equal values in sort order; the longest first
                // run wins.
                let (mut best, mut best_len) = (0, 0);
                let mut start = 0;
                for i in 1..=n {
                    if i == n || at(i)? != at(start)? {
                        if i - start > best_len {
                            best = start;
                            best_len = i - start;
                        }
                        start = i;
                    }
                }
                at(best)
            }
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .values
                .iter()
                .map(|a| a.get_array_memory_size())
                .sum::<usize>()
    }
}

/// `percentile_disc` and `mode`, for registration.
pub fn udafs() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(OrderedSet {
            kind: Kind::PercentileDisc,
            signature: Signature::any(2, Volatility::Immutable),
        }),
        AggregateUDF::new_from_impl(OrderedSet {
            kind: Kind::Mode,
            signature: Signature::any(1, Volatility::Immutable),
        }),
    ]
}
