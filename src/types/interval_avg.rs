//! `avg(interval)`, which DataFusion's `avg` refuses: the months, days and
//! microseconds of the input are summed apart, and the average is their
//! sums divided by the count as PostgreSQL's `interval_div` divides (a
//! month's fraction carried to days of 30, a day's to seconds), so
//! `avg(ts - start)` is `25 days 13:26:15` as there. Every other argument
//! type is DataFusion's `avg` unchanged.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Int64Type, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Coercion, GroupsAccumulator, ReversedUDAF,
    Signature, TypeSignature, TypeSignatureClass,
};

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);

/// DataFusion's `avg`, which also averages intervals.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Avg {
    inner: AggregateUDF,
    signature: Signature,
}

/// `avg` for every type DataFusion averages, and intervals.
pub fn udaf() -> AggregateUDF {
    let inner = datafusion::functions_aggregate::average::avg_udaf()
        .as_ref()
        .clone();
    let interval =
        TypeSignature::Coercible(vec![Coercion::new_exact(TypeSignatureClass::Interval)]);
    let signature = match &inner.signature().type_signature {
        TypeSignature::OneOf(kinds) => {
            let mut kinds = kinds.clone();
            kinds.push(interval);
            Signature::one_of(kinds, inner.signature().volatility)
        }
        other => Signature::one_of(vec![other.clone(), interval], inner.signature().volatility),
    };
    AggregateUDF::new_from_impl(Avg { inner, signature })
}

fn of_intervals(args: &AccumulatorArgs) -> bool {
    args.expr_fields
        .first()
        .is_some_and(|f| matches!(f.data_type(), DataType::Interval(_)))
}

impl AggregateUDFImpl for Avg {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::Interval(_)] => Ok(INTERVAL),
            _ => self.inner.return_type(args),
        }
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if of_intervals(&args) {
            return Ok(Box::new(Sums::default()));
        }
        self.inner.accumulator(args)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        if matches!(
            args.input_fields.first().map(|f| f.data_type()),
            Some(DataType::Interval(_))
        ) {
            return Ok(["months", "days", "micros", "count"]
                .iter()
                .map(|n| {
                    let t = if *n == "micros" {
                        DataType::Decimal128(38, 0)
                    } else {
                        DataType::Int64
                    };
                    Arc::new(Field::new(format!("{}[{n}]", args.name), t, true))
                })
                .collect());
        }
        self.inner.state_fields(args)
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !of_intervals(&args) && self.inner.groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if of_intervals(&args) {
            return Ok(Box::new(Sums::default()));
        }
        self.inner.create_sliding_accumulator(args)
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.default_value(data_type)
    }
}

/// The parts of the intervals seen, summed apart, and how many there were.
#[derive(Debug, Default)]
struct Sums {
    months: i64,
    days: i64,
    micros: i128,
    count: i64,
}

impl Sums {
    fn add(&mut self, values: &ArrayRef, sign: i64) {
        let v = values.as_primitive::<IntervalMonthDayNanoType>();
        for x in v.iter().flatten() {
            self.months += sign * i64::from(x.months);
            self.days += sign * i64::from(x.days);
            self.micros += i128::from(sign) * i128::from(x.nanoseconds / 1000);
            self.count += sign;
        }
    }
}

impl Accumulator for Sums {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], 1);
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], -1);
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count == 0 {
            return Ok(ScalarValue::IntervalMonthDayNano(None));
        }
        let n = self.count as f64;
        let avg = super::datetime::interval_scaled(
            self.months as f64,
            self.days as f64,
            self.micros as f64,
            |x| x / n,
        )?;
        Ok(ScalarValue::IntervalMonthDayNano(Some(avg)))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.months)),
            ScalarValue::Int64(Some(self.days)),
            ScalarValue::Decimal128(Some(self.micros), 38, 0),
            ScalarValue::Int64(Some(self.count)),
        ])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let months = states[0].as_primitive::<Int64Type>();
        let days = states[1].as_primitive::<Int64Type>();
        let micros = states[2].as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
        let count = states[3].as_primitive::<Int64Type>();
        for i in 0..months.len() {
            if months.is_null(i) {
                continue;
            }
            self.months += months.value(i);
            self.days += days.value(i);
            self.micros += micros.value(i);
            self.count += count.value(i);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::IntervalMonthDayNanoArray;
    use datafusion::arrow::datatypes::IntervalMonthDayNano;

    fn intervals(v: &[(i32, i32, i64)]) -> Vec<ArrayRef> {
        let a: IntervalMonthDayNanoArray = v
            .iter()
            .map(|&(m, d, us)| Some(IntervalMonthDayNano::new(m, d, us * 1000)))
            .collect();
        vec![Arc::new(a) as ArrayRef]
    }

    #[test]
    fn averages_carry_fractions_down_as_postgres_does() {
        // PostgreSQL 15: avg of '1 day', '20 hours', '20 hours' is 21:20:00;
        // of '1 month' and '0' it is 15 days.
        let hour = 3_600_000_000;
        let mut s = Sums::default();
        s.update_batch(&intervals(&[
            (0, 1, 0),
            (0, 0, 20 * hour),
            (0, 0, 20 * hour),
        ]))
        .unwrap();
        assert_eq!(
            s.evaluate().unwrap(),
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(
                0,
                0,
                (21 * hour + hour / 3) * 1000
            )))
        );
        let mut s = Sums::default();
        s.update_batch(&intervals(&[(1, 0, 0), (0, 0, 0)])).unwrap();
        assert_eq!(
            s.evaluate().unwrap(),
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, 15, 0)))
        );
        s.retract_batch(&intervals(&[(0, 0, 0)])).unwrap();
        assert_eq!(
            s.evaluate().unwrap(),
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(1, 0, 0)))
        );
    }
}
