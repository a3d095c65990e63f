//! `bool_and` (`every`) and `bool_or` over a sliding window frame (`ROWS
//! BETWEEN 1 PRECEDING AND 1 FOLLOWING`, `RANGE` with offsets), which
//! DataFusion refuses (`retract_batch` is not implemented): the frame's
//! true and false values are counted, so a row leaving it is taken out.
//! Everything else (grouped aggregation, frames that only grow) stays
//! DataFusion's own.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, ReversedUDAF, Signature,
};

/// DataFusion's `bool_and` or `bool_or` with a sliding accumulator.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Sliding {
    inner: AggregateUDF,
    /// `bool_and` (else `bool_or`).
    and: bool,
    aliases: Vec<String>,
}

/// `bool_and` (also named `every`, PostgreSQL's standard name) and
/// `bool_or`, each able to slide.
pub fn udafs() -> Vec<AggregateUDF> {
    use datafusion::functions_aggregate::bool_and_or::{bool_and_udaf, bool_or_udaf};
    vec![
        AggregateUDF::new_from_impl(Sliding {
            inner: bool_and_udaf().as_ref().clone(),
            and: true,
            aliases: vec!["every".to_string()],
        }),
        AggregateUDF::new_from_impl(Sliding {
            inner: bool_or_udaf().as_ref().clone(),
            and: false,
            aliases: vec![],
        }),
    ]
}

impl AggregateUDFImpl for Sliding {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(args)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }
    fn create_sliding_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Counts {
            and: self.and,
            trues: 0,
            falses: 0,
        }))
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

/// The true and false values in the frame (NULLs are not counted: they
/// change no answer).
#[derive(Debug)]
struct Counts {
    and: bool,
    trues: i64,
    falses: i64,
}

impl Counts {
    fn count(values: &ArrayRef) -> (i64, i64) {
        let b = values.as_boolean();
        let trues = b.true_count() as i64;
        let valid = (b.len() - b.null_count()) as i64;
        (trues, valid - trues)
    }
}

impl Accumulator for Counts {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (t, f) = Self::count(&values[0]);
        self.trues += t;
        self.falses += f;
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (t, f) = Self::count(&values[0]);
        self.trues -= t;
        self.falses -= f;
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Boolean(match (self.trues, self.falses) {
            (0, 0) => None,
            (_, f) if self.and => Some(f == 0),
            (t, _) => Some(t > 0),
        }))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::BooleanArray;
    use std::sync::Arc;

    fn batch(v: &[Option<bool>]) -> Vec<ArrayRef> {
        vec![Arc::new(BooleanArray::from(v.to_vec())) as ArrayRef]
    }

    #[test]
    fn a_frame_that_slides_forgets_the_rows_that_left() {
        for (and, after_true, after_false, empty) in
            [(true, true, false, None), (false, true, false, None)]
        {
            let mut c = Counts {
                and,
                trues: 0,
                falses: 0,
            };
            assert_eq!(c.evaluate().unwrap(), ScalarValue::Boolean(empty));
            c.update_batch(&batch(&[Some(true), None])).unwrap();
            assert_eq!(
                c.evaluate().unwrap(),
                ScalarValue::Boolean(Some(after_true))
            );
            c.update_batch(&batch(&[Some(false)])).unwrap();
            assert_eq!(c.evaluate().unwrap(), ScalarValue::Boolean(Some(!and)));
            c.retract_batch(&batch(&[Some(true), None])).unwrap();
            assert_eq!(
                c.evaluate().unwrap(),
                ScalarValue::Boolean(Some(after_false))
            );
            c.retract_batch(&batch(&[Some(false)])).unwrap();
            assert_eq!(c.evaluate().unwrap(), ScalarValue::Boolean(None));
        }
    }
}
