//! PostgreSQL's date and time arithmetic where DataFusion's differs:
//! `date ± interval` is a timestamp (DataFusion kept a date and dropped the
//! hours), and `date_part` / `EXTRACT` give a fractional number (DataFusion
//! an integer: `EXTRACT(SECOND FROM '00:00:00.5')` was 0, `date_part('day',
//! ts) / 6` an integer division).

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, cast, lit};

fn is_interval(e: &Expr, schema: &DFSchema) -> bool {
    e.get_type(schema)
        .is_ok_and(|t| matches!(t, DataType::Interval(_)))
}

fn is_number(e: &Expr, schema: &DFSchema) -> bool {
    e.get_type(schema).is_ok_and(|t| t.is_numeric())
}

fn is_date(e: &Expr, schema: &DFSchema) -> bool {
    e.get_type(schema)
        .is_ok_and(|t| matches!(t, DataType::Date32 | DataType::Date64))
}

/// A date plus or minus an interval: a timestamp in PostgreSQL (made one
/// by [`rewrite`] once it reaches the expression).
fn is_date_shifted(e: &Expr, schema: &DFSchema) -> bool {
    matches!(e, Expr::BinaryExpr(BinaryExpr { left, op: Operator::Plus | Operator::Minus, right })
        if is_interval(left, schema) || is_interval(right, schema))
}

fn timestamp(e: Expr) -> Expr {
    cast(e, DataType::Timestamp(TimeUnit::Microsecond, None))
}

/// The zone of `x AT TIME ZONE 'zone'`, which DataFusion plans as a cast
/// to a nanosecond timestamp in that zone (no statement casts to one).
fn at_time_zone(x: &Expr) -> Option<(&Expr, &str)> {
    match x {
        Expr::Cast(c) => match c.field.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, Some(zone)) => Some((&c.expr, zone)),
            _ => None,
        },
        _ => None,
    }
}

/// A zone `AT TIME ZONE` takes: a name of the zone database (or UTC). An
/// offset (`'+05'`) PostgreSQL reads the POSIX way, west of Greenwich;
/// refused rather than read the other way.
fn zone_of(name: &str) -> DfResult<datafusion::arrow::array::timezone::Tz> {
    let offset =
        name.starts_with(['+', '-']) || name.chars().next().is_some_and(|c| c.is_ascii_digit());
    match name.parse::<datafusion::arrow::array::timezone::Tz>() {
        Ok(tz) if !offset => Ok(tz),
        Ok(_) => Err(
            crate::error::Error::not_supported(format!("AT TIME ZONE '{name}'"))
                .with_hint("Name the zone (AT TIME ZONE 'America/New_York', 'UTC').")
                .into(),
        ),
        Err(_) => Err(crate::error::Error::new(
            crate::error::ErrorKind::InvalidParameter,
            format!("time zone \"{name}\" not recognized"),
        )
        .into()),
    }
}

fn rewrite(x: Expr, schema: &DFSchema) -> DfResult<Transformed<Expr>> {
    if let Some((value, zone)) = at_time_zone(&x) {
        zone_of(zone)?;
        // An AT TIME ZONE inside first: its type says which way this one goes.
        let value = crate::tree::transform_down(value.clone(), |x| rewrite(x, schema))?.data;
        let zone = zone.to_string();
        let aware = matches!(value.get_type(schema), Ok(DataType::Timestamp(_, Some(_))));
        return Ok(Transformed::yes(if aware {
            // An instant, as the wall-clock time in the zone: a timestamp.
            datafusion::logical_expr::ScalarUDF::new_from_impl(LocalTime::new()).call(vec![
                cast(
                    value,
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                ),
                lit(zone),
            ])
        } else {
            // A wall-clock time in the zone, as the instant: a timestamptz.
            cast(
                cast(
                    timestamp(value),
                    DataType::Timestamp(TimeUnit::Microsecond, Some(zone.into())),
                ),
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            )
        }));
    }
    match x {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::Plus | Operator::Minus)
                && ((is_date(&left, schema) && is_interval(&right, schema))
                    || (op == Operator::Plus
                        && is_interval(&left, schema)
                        && is_date(&right, schema))) =>
        {
            let (left, right) = if is_date(&left, schema) {
                (timestamp(*left), *right)
            } else {
                (*left, timestamp(*right))
            };
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(left),
                op,
                Box::new(right),
            ))))
        }
        // `date_trunc(field, date)` truncates the date as a timestamptz
        // (PostgreSQL's only candidate for a date).
        Expr::ScalarFunction(mut f)
            if f.name() == "date_trunc"
                && f.args.len() == 2
                && is_date(&f.args[1], schema)
                && !is_date_shifted(&f.args[1], schema) =>
        {
            let d = std::mem::replace(&mut f.args[1], lit(0));
            f.args[1] = cast(
                d,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            );
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        Expr::ScalarFunction(f) if f.name() == "date_part" && f.args.len() == 2 => {
            let part = match &f.args[0] {
                Expr::Literal(v, _) => v.try_as_str().flatten().map(str::to_ascii_lowercase),
                _ => None,
            };
            let value = match part.as_deref() {
                // Seconds with their fraction, as PostgreSQL gives them.
                Some("second" | "seconds" | "s" | "sec" | "secs") => {
                    let mut micros = f.clone();
                    micros.args[0] = lit("microsecond");
                    cast(Expr::ScalarFunction(micros), DataType::Float64) / lit(1_000_000f64)
                }
                // Parts DataFusion lacks, from EXTRACT's.
                Some(
                    "century" | "centuries" | "millennium" | "millennia" | "decade" | "decades",
                ) => cast(
                    datafusion::logical_expr::ScalarUDF::new_from_impl(Extract::new())
                        .call(f.args.clone()),
                    DataType::Float64,
                ),
                // An interval's epoch counts a year as 365.25 days.
                Some("epoch") if is_interval(&f.args[1], schema) => cast(
                    datafusion::logical_expr::ScalarUDF::new_from_impl(Extract::new())
                        .call(f.args.clone()),
                    DataType::Float64,
                ),
                Some("epoch") | None => return Ok(Transformed::no(Expr::ScalarFunction(f))),
                Some(_) => cast(Expr::ScalarFunction(f), DataType::Float64),
            };
            // Its parts are done: not visited again.
            Ok(Transformed::new(value, true, TreeNodeRecursion::Jump))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// `plan` (as the SQL planner gave it, before analysis: the types it
/// changes are then the plan's own) with PostgreSQL's date and time rules.
pub fn rewrite_plan(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    crate::tree::transform_up_with_subqueries(plan, |node| {
        let schema: DFSchema = match node.inputs().as_slice() {
            [one] => one.schema().as_ref().clone(),
            _ => node.schema().as_ref().clone(),
        };
        let names = NamePreserver::new(&node);
        let node = crate::tree::map_expressions(node, |e| {
            let saved = crate::types::save_name(&names, &e);
            // Top down; a date_part already wrapped in a float8 cast is
            // left as it is.
            let rewritten = crate::tree::transform_down(e, |x| match &x {
                Expr::Cast(c)
                    if *c.field.data_type() == DataType::Float64
                        && matches!(c.expr.as_ref(), Expr::ScalarFunction(f) if f.name() == "date_part") =>
                {
                    Ok(Transformed::new(x, false, TreeNodeRecursion::Jump))
                }
                _ => rewrite(x, &schema),
            })?;
            Ok(rewritten.update_data(|x| crate::types::keep_name(saved, x)))
        })?;
        // A changed type changes the schema of this node and those above.
        node.map_data(|n| n.recompute_schema())
    })
    .map(|t| t.data)
}

/// How `EXTRACT` reads a field: from DataFusion's `date_part` of the same
/// field, or (seconds with their fraction) from its microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    /// Seconds, milliseconds or microseconds, with the given scale: the
    /// field's microseconds divided by `10^scale`.
    Fraction(i8),
    /// Seconds since the epoch: six decimals, none for a date.
    Epoch,
    /// A whole number.
    Whole,
}

fn extract_field(part: &str) -> Field {
    match part.trim().to_ascii_lowercase().as_str() {
        "second" | "seconds" | "s" | "sec" | "secs" => Field::Fraction(6),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "msecond" | "mseconds" => {
            Field::Fraction(3)
        }
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "usecond" | "useconds" => {
            Field::Fraction(0)
        }
        "epoch" => Field::Epoch,
        _ => Field::Whole,
    }
}

/// The scale of `EXTRACT(part FROM <t>)`'s numeric, as PostgreSQL gives it.
/// The integer digits of an extracted value: an epoch of any timestamp or
/// interval has at most 16 (and a float holds the value whole only that
/// far). Typed so narrowly, `avg(EXTRACT(...))` keeps PostgreSQL's 16
/// fractional digits (from `numeric(38, 0)` it kept 4).
const EXTRACT_DIGITS: u8 = 20;

/// The type of an extracted value of `scale` fractional digits.
fn extract_type(scale: i8) -> DataType {
    DataType::Decimal128(EXTRACT_DIGITS + scale.max(0) as u8, scale)
}

fn extract_scale(field: Field, t: &DataType) -> i8 {
    match field {
        Field::Fraction(s) => s,
        Field::Epoch if matches!(t, DataType::Date32 | DataType::Date64) => 0,
        Field::Epoch => 6,
        Field::Whole => 0,
    }
}

/// Planned ahead of DataFusion's own planners: `EXTRACT(field FROM value)`
/// is a `numeric`, as in PostgreSQL (DataFusion makes it `date_part`, which
/// stays a `double precision`); `interval * n`, `n * interval` and
/// `interval / n`, which DataFusion has no operator for (it fails while
/// the select list is typed, before any plan rewrite could see it).
#[derive(Debug)]
pub struct DateTimePlanner;

impl datafusion::logical_expr::planner::ExprPlanner for DateTimePlanner {
    fn plan_binary_op(
        &self,
        expr: datafusion::logical_expr::planner::RawBinaryExpr,
        schema: &DFSchema,
    ) -> DfResult<
        datafusion::logical_expr::planner::PlannerResult<
            datafusion::logical_expr::planner::RawBinaryExpr,
        >,
    > {
        use datafusion::logical_expr::planner::PlannerResult;
        use datafusion::sql::sqlparser::ast::BinaryOperator;
        let mut expr = expr;
        // A quoted literal beside a date, time or interval takes the type
        // PostgreSQL resolves it to: the other side's for an interval and
        // for `timestamp - '...'` / `date - '...'`, an interval added to a
        // timestamp (`ts + '1 day'`, `interval '1 day' + '1 hour'`).
        if matches!(expr.op, BinaryOperator::Plus | BinaryOperator::Minus) {
            let text =
                |e: &Expr| matches!(e, Expr::Literal(v, _) if v.try_as_str().flatten().is_some());
            let interval =
                DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano);
            let minus = expr.op == BinaryOperator::Minus;
            let lt = expr.left.get_type(schema).ok();
            let rt = expr.right.get_type(schema).ok();
            if text(&expr.right) {
                match &lt {
                    Some(DataType::Interval(_)) => expr.right = cast(expr.right, interval),
                    Some(t @ DataType::Timestamp(..)) if minus => {
                        expr.right = cast(expr.right, t.clone())
                    }
                    Some(DataType::Timestamp(..)) => expr.right = cast(expr.right, interval),
                    Some(DataType::Date32) if minus => {
                        expr.right = cast(expr.right, DataType::Date32)
                    }
                    _ => {}
                }
            } else if text(&expr.left)
                && !minus
                && matches!(&rt, Some(DataType::Interval(_) | DataType::Timestamp(..)))
            {
                expr.left = cast(expr.left, interval)
            }
        }
        if expr.op == BinaryOperator::Minus {
            let stamp = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Timestamp(..)));
            let (l, r) = (&expr.left, &expr.right);
            if (stamp(l) && (stamp(r) || is_date(r, schema))) || (is_date(l, schema) && stamp(r)) {
                return Ok(PlannerResult::Planned(
                    datafusion::logical_expr::ScalarUDF::new_from_impl(TimestampDifference::new())
                        .call(vec![timestamp(expr.left), timestamp(expr.right)]),
                ));
            }
        }
        let divide = match expr.op {
            BinaryOperator::Multiply => false,
            BinaryOperator::Divide => true,
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let (l, r) = (&expr.left, &expr.right);
        if is_interval(l, schema) && is_number(r, schema) {
            return Ok(PlannerResult::Planned(interval_times_expr(
                expr.left, expr.right, divide,
            )));
        }
        if !divide && is_number(l, schema) && is_interval(r, schema) {
            return Ok(PlannerResult::Planned(interval_times_expr(
                expr.right, expr.left, false,
            )));
        }
        Ok(PlannerResult::Original(expr))
    }

    fn plan_extract(
        &self,
        args: Vec<Expr>,
    ) -> DfResult<datafusion::logical_expr::planner::PlannerResult<Vec<Expr>>> {
        Ok(datafusion::logical_expr::planner::PlannerResult::Planned(
            datafusion::logical_expr::ScalarUDF::new_from_impl(Extract::new()).call(args),
        ))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Extract {
    signature: datafusion::logical_expr::Signature,
}

impl Extract {
    fn new() -> Self {
        Extract {
            signature: datafusion::logical_expr::Signature::any(
                2,
                datafusion::logical_expr::Volatility::Immutable,
            ),
        }
    }
}

fn extract_part(v: Option<&datafusion::common::ScalarValue>) -> DfResult<String> {
    match v.and_then(|v| v.try_as_str().flatten()) {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => datafusion::common::plan_err!("EXTRACT needs a field name"),
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for Extract {
    fn name(&self) -> &str {
        "extract"
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        datafusion::common::internal_err!("extract's type comes from its arguments")
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> DfResult<datafusion::arrow::datatypes::FieldRef> {
        let part = extract_part(args.scalar_arguments[0])?;
        let scale = extract_scale(extract_field(&part), args.arg_fields[1].data_type());
        Ok(std::sync::Arc::new(
            datafusion::arrow::datatypes::Field::new(
                self.name(),
                extract_type(scale),
                args.arg_fields[1].is_nullable(),
            ),
        ))
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<datafusion::logical_expr::ColumnarValue> {
        use datafusion::common::ScalarValue;
        use datafusion::logical_expr::ColumnarValue;
        let part = match &args.args[0] {
            ColumnarValue::Scalar(v) => extract_part(Some(v))?,
            ColumnarValue::Array(_) => extract_part(None)?,
        };
        let field = extract_field(&part);
        let scale = extract_scale(field, args.arg_fields[1].data_type());
        if field == Field::Epoch && matches!(args.arg_fields[1].data_type(), DataType::Interval(_))
        {
            return interval_epoch(&args.args[1], args.number_rows, scale);
        }
        // Counted from the year (DataFusion has no such parts).
        let of_year: Option<fn(f64) -> f64> = match part.trim().to_ascii_lowercase().as_str() {
            "century" | "centuries" => Some(|y| {
                if y > 0.0 {
                    ((y + 99.0) / 100.0).floor()
                } else {
                    -((99.0 - (y - 1.0)) / 100.0).floor()
                }
            }),
            "millennium" | "millennia" => Some(|y| {
                if y > 0.0 {
                    ((y + 999.0) / 1000.0).floor()
                } else {
                    -((999.0 - (y - 1.0)) / 1000.0).floor()
                }
            }),
            "decade" | "decades" => Some(|y| (y / 10.0).floor()),
            _ => None,
        };
        let source = match field {
            Field::Fraction(_) => "microsecond".to_string(),
            _ if of_year.is_some() => "year".to_string(),
            _ => part,
        };
        let date_part = datafusion::functions::datetime::date_part();
        let source = ScalarValue::Utf8(Some(source));
        let arg_fields = vec![
            std::sync::Arc::new(datafusion::arrow::datatypes::Field::new(
                "part",
                DataType::Utf8,
                false,
            )),
            std::sync::Arc::clone(&args.arg_fields[1]),
        ];
        let return_field =
            date_part.return_field_from_args(datafusion::logical_expr::ReturnFieldArgs {
                arg_fields: &arg_fields,
                scalar_arguments: &[Some(&source), None],
            })?;
        let value = date_part.invoke_with_args(datafusion::logical_expr::ScalarFunctionArgs {
            args: vec![ColumnarValue::Scalar(source), args.args[1].clone()],
            arg_fields,
            number_rows: args.number_rows,
            return_field,
            config_options: args.config_options,
        })?;
        // A float of the value (microseconds for a fraction), then the
        // decimal of its digits: `(v * 10^scale).round()`, exact for the
        // microseconds of any timestamp a float holds whole (2^53 µs).
        let value = value.cast_to(&DataType::Float64, None)?;
        let value = match field {
            Field::Fraction(s) => {
                let divisor = 10f64.powi(i32::from(s));
                map_floats(value, |x: f64| x / divisor)
            }
            _ => match of_year {
                Some(f) => map_floats(value, f),
                None => value,
            },
        };
        value.cast_to(&extract_type(scale), None)
    }
}

/// `f` of each float of `value`.
fn map_floats(
    value: datafusion::logical_expr::ColumnarValue,
    f: impl Fn(f64) -> f64,
) -> datafusion::logical_expr::ColumnarValue {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::ColumnarValue;
    match value {
        ColumnarValue::Scalar(ScalarValue::Float64(v)) => {
            ColumnarValue::Scalar(ScalarValue::Float64(v.map(f)))
        }
        ColumnarValue::Array(a) => {
            use datafusion::arrow::array::AsArray;
            let a = a.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            ColumnarValue::Array(std::sync::Arc::new(
                a.unary::<_, datafusion::arrow::datatypes::Float64Type>(f),
            ))
        }
        other => other,
    }
}

/// The seconds of an interval as PostgreSQL counts them for its epoch: a
/// year of months is 365.25 days, the other months 30 days each, a day
/// 86400 seconds (DataFusion counted every month as 30 days, a year 360).
fn interval_epoch_micros(v: datafusion::arrow::datatypes::IntervalMonthDayNano) -> i128 {
    const DAY: i128 = 86_400_000_000;
    let months = i128::from(v.months);
    // 365.25 days, in microseconds: whole.
    months / 12 * (DAY * 1461 / 4)
        + months % 12 * 30 * DAY
        + i128::from(v.days) * DAY
        + i128::from(v.nanoseconds) / 1000
}

/// `EXTRACT(EPOCH FROM interval)` of `value`, at `scale` (6).
fn interval_epoch(
    value: &datafusion::logical_expr::ColumnarValue,
    rows: usize,
    scale: i8,
) -> DfResult<datafusion::logical_expr::ColumnarValue> {
    use datafusion::arrow::array::{Array, AsArray, Decimal128Array};
    use datafusion::arrow::datatypes::IntervalMonthDayNanoType;
    let array = value.to_array(rows)?;
    let array = datafusion::arrow::compute::cast(
        &array,
        &DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
    )?;
    let intervals = array.as_primitive::<IntervalMonthDayNanoType>();
    let down = 10i128.pow(u32::from(6u8.saturating_sub(scale.max(0) as u8)));
    let out: Decimal128Array = intervals
        .iter()
        .map(|v| v.map(|v| interval_epoch_micros(v) / down))
        .collect();
    let out = out.with_precision_and_scale(EXTRACT_DIGITS + scale.max(0) as u8, scale)?;
    let out: std::sync::Arc<dyn Array> = std::sync::Arc::new(out);
    super::columnar(
        out,
        matches!(value, datafusion::logical_expr::ColumnarValue::Scalar(_)),
    )
}

/// PostgreSQL's `interval * float8` (and `interval / float8`, the product
/// by its inverse): the months' fraction carried to days (30 a month), the
/// days' fraction to time, each rounded to microseconds as PostgreSQL's
/// `interval_mul` does.
fn interval_times(
    v: datafusion::arrow::datatypes::IntervalMonthDayNano,
    factor: f64,
) -> DfResult<datafusion::arrow::datatypes::IntervalMonthDayNano> {
    interval_scaled(
        f64::from(v.months),
        f64::from(v.days),
        (v.nanoseconds / 1000) as f64,
        |x| x * factor,
    )
}

/// An interval of `months`, `days` and `micros` with each part scaled by
/// `scale` and the fractions carried down as PostgreSQL's `interval_mul`
/// and `interval_div` carry them (a month's fraction to days of 30, a
/// day's to seconds), rounded to microseconds.
pub(crate) fn interval_scaled(
    months: f64,
    days: f64,
    micros: f64,
    scale: impl Fn(f64) -> f64,
) -> DfResult<datafusion::arrow::datatypes::IntervalMonthDayNano> {
    let round = |x: f64| (x * 1e6).round_ties_even() / 1e6;
    let out_of_range =
        || datafusion::common::DataFusionError::Execution("interval out of range".to_string());
    let whole = |x: f64| -> DfResult<i32> {
        if x.is_finite() && x.abs() < 2_147_483_648.0 {
            Ok(x.trunc() as i32)
        } else {
            Err(out_of_range())
        }
    };
    let months_scaled = scale(months);
    let days_scaled = scale(days);
    let months = whole(months_scaled)?;
    let mut days = whole(days_scaled)?;
    let month_days = round((months_scaled - f64::from(months)) * 30.0);
    let mut secs =
        round((days_scaled - f64::from(days) + month_days - month_days.trunc()) * 86_400.0);
    if secs.abs() >= 86_400.0 {
        let carried = (secs / 86_400.0).trunc();
        days += carried as i32;
        secs -= carried * 86_400.0;
    }
    days += month_days.trunc() as i32;
    let micros = (scale(micros) + secs * 1e6).round_ties_even();
    if !micros.is_finite() || micros.abs() >= 9.2e18 {
        return Err(out_of_range());
    }
    Ok(datafusion::arrow::datatypes::IntervalMonthDayNano::new(
        months,
        days,
        (micros as i64) * 1000,
    ))
}

/// `timestamptz AT TIME ZONE 'zone'`: the wall-clock time in the zone of
/// each instant, a `timestamp` (DataFusion kept the instant, shown in
/// UTC).
#[derive(Debug, PartialEq, Eq, Hash)]
struct LocalTime {
    signature: datafusion::logical_expr::Signature,
}

impl LocalTime {
    fn new() -> Self {
        LocalTime {
            signature: datafusion::logical_expr::Signature::any(
                2,
                datafusion::logical_expr::Volatility::Immutable,
            ),
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for LocalTime {
    fn name(&self) -> &str {
        "timezone"
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Microsecond, None))
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<datafusion::logical_expr::ColumnarValue> {
        use chrono::{Offset, TimeZone};
        use datafusion::arrow::array::{AsArray, TimestampMicrosecondArray};
        use datafusion::arrow::datatypes::TimestampMicrosecondType;
        let zone = match &args.args[1] {
            datafusion::logical_expr::ColumnarValue::Scalar(v) => {
                v.try_as_str().flatten().unwrap_or("UTC").to_string()
            }
            datafusion::logical_expr::ColumnarValue::Array(_) => {
                return datafusion::common::not_impl_err!("AT TIME ZONE of a zone per row");
            }
        };
        let tz = zone_of(&zone)?;
        let scalar = matches!(
            args.args[0],
            datafusion::logical_expr::ColumnarValue::Scalar(_)
        );
        let input = args.args[0].to_array(args.number_rows)?;
        let instants = input.as_primitive::<TimestampMicrosecondType>();
        let out: TimestampMicrosecondArray = instants
            .iter()
            .map(|v| {
                v.and_then(|us| {
                    let at = chrono::DateTime::from_timestamp_micros(us)?.naive_utc();
                    let offset = tz.offset_from_utc_datetime(&at).fix().local_minus_utc();
                    us.checked_add(i64::from(offset) * 1_000_000)
                })
            })
            .collect();
        let out: datafusion::arrow::array::ArrayRef = std::sync::Arc::new(out);
        super::columnar(out, scalar)
    }
}

/// `timestamp - timestamp` (either may be a `timestamptz` or a `date`): an
/// `interval` of days and time, as PostgreSQL's `timestamp_mi` gives it
/// (whole days of 24 hours counted as days, `59 days 14:00:00`).
/// DataFusion's difference is a duration, which clients were sent as
/// text (`1430:00:00`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampDifference {
    signature: datafusion::logical_expr::Signature,
}

impl TimestampDifference {
    fn new() -> Self {
        TimestampDifference {
            signature: datafusion::logical_expr::Signature::exact(
                vec![
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                ],
                datafusion::logical_expr::Volatility::Immutable,
            ),
        }
    }
}

/// The interval between two instants `micros` apart, as PostgreSQL's
/// `interval_justify_hours` leaves it: days and time of the same sign.
pub(crate) fn justified_micros(micros: i64) -> datafusion::arrow::datatypes::IntervalMonthDayNano {
    const DAY: i64 = 86_400_000_000;
    datafusion::arrow::datatypes::IntervalMonthDayNano::new(
        0,
        (micros / DAY) as i32,
        (micros % DAY) * 1000,
    )
}

impl datafusion::logical_expr::ScalarUDFImpl for TimestampDifference {
    fn name(&self) -> &str {
        "timestamp_mi"
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Interval(
            datafusion::arrow::datatypes::IntervalUnit::MonthDayNano,
        ))
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<datafusion::logical_expr::ColumnarValue> {
        datafusion::functions::utils::make_scalar_function(
            |a| {
                use datafusion::arrow::array::{AsArray, IntervalMonthDayNanoArray};
                use datafusion::arrow::datatypes::TimestampMicrosecondType;
                let (l, r) = (
                    a[0].as_primitive::<TimestampMicrosecondType>(),
                    a[1].as_primitive::<TimestampMicrosecondType>(),
                );
                let out: IntervalMonthDayNanoArray = l
                    .iter()
                    .zip(r.iter())
                    .map(|(l, r)| match (l, r) {
                        (Some(l), Some(r)) => l
                            .checked_sub(r)
                            .map(|d| Some(justified_micros(d)))
                            .ok_or_else(|| {
                                datafusion::common::DataFusionError::Execution(
                                    "interval out of range".to_string(),
                                )
                            }),
                        _ => Ok(None),
                    })
                    .collect::<DfResult<_>>()?;
                Ok(std::sync::Arc::new(out) as datafusion::arrow::array::ArrayRef)
            },
            vec![],
        )(&args.args)
    }
}

/// `interval * number`, `number * interval` and `interval / number`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalTimes {
    signature: datafusion::logical_expr::Signature,
    divide: bool,
}

impl datafusion::logical_expr::ScalarUDFImpl for IntervalTimes {
    fn name(&self) -> &str {
        if self.divide {
            "interval_div"
        } else {
            "interval_mul"
        }
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Interval(
            datafusion::arrow::datatypes::IntervalUnit::MonthDayNano,
        ))
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<datafusion::logical_expr::ColumnarValue> {
        datafusion::functions::utils::make_scalar_function(|a| self.apply(a), vec![])(&args.args)
    }
}

impl IntervalTimes {
    fn apply(
        &self,
        arrays: &[datafusion::arrow::array::ArrayRef],
    ) -> DfResult<datafusion::arrow::array::ArrayRef> {
        use datafusion::arrow::array::{Array, AsArray, IntervalMonthDayNanoBuilder};
        use datafusion::arrow::datatypes::{Float64Type, IntervalMonthDayNanoType};
        let n = arrays[0].len();
        let spans = arrays[0].as_primitive::<IntervalMonthDayNanoType>();
        let factors = arrays[1].as_primitive::<Float64Type>();
        let mut out = IntervalMonthDayNanoBuilder::with_capacity(n);
        for i in 0..spans.len() {
            if spans.is_null(i) || factors.is_null(i) {
                out.append_null();
                continue;
            }
            let mut factor = factors.value(i);
            if self.divide {
                if factor == 0.0 {
                    return Err(datafusion::common::DataFusionError::Execution(
                        "division by zero".to_string(),
                    ));
                }
                factor = 1.0 / factor;
            }
            out.append_value(interval_times(spans.value(i), factor)?);
        }
        Ok(std::sync::Arc::new(out.finish()))
    }
}

/// `span * factor` (or `span / factor`) as PostgreSQL computes it.
fn interval_times_expr(span: Expr, factor: Expr, divide: bool) -> Expr {
    datafusion::logical_expr::ScalarUDF::new_from_impl(IntervalTimes {
        signature: datafusion::logical_expr::Signature::any(
            2,
            datafusion::logical_expr::Volatility::Immutable,
        ),
        divide,
    })
    .call(vec![
        cast(
            span,
            DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
        ),
        cast(factor, DataType::Float64),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::IntervalMonthDayNano;

    #[test]
    fn an_interval_epoch_counts_years_as_postgres_does() {
        // PostgreSQL 15: EXTRACT(EPOCH FROM interval ...)
        for (months, days, nanos, micros) in [
            (12, 0, 0, 31_557_600_000_000i128),
            (13, 2, 10_801_500_000_000, 34_333_201_500_000),
            (-13, 0, 0, -34_149_600_000_000),
            (0, -1, -1_000, -86_400_000_001),
        ] {
            let v = IntervalMonthDayNano::new(months, days, nanos);
            assert_eq!(interval_epoch_micros(v), micros, "{months} {days} {nanos}");
        }
    }
}
