//! PostgreSQL's `interval` input, which Arrow's parser only partly reads:
//! a time field (`1 day 03:04:05`, `-01:30`), units and their
//! abbreviations (`2 h 3 m`, `1 mon`, `100 ms`), fractions that carry down
//! (`1.5 years` is 1 year 6 mons, `1.5 days` 1 day 12:00:00), `ago`, the
//! `@` of the verbose style, a year-month field (`1-2`), a bare number of
//! seconds, and ISO 8601 (`P1Y2M3DT4H5M6.5S`). Values keep microseconds,
//! as PostgreSQL does.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, IntervalMonthDayNanoBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalUnit};
use datafusion::error::Result as DfResult;
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use datafusion::common::Column;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::functions_aggregate::first_last::first_value_udaf;
use datafusion::logical_expr::{
    Aggregate, Distinct, Expr, ExprSchemable, LogicalPlan, Projection, WindowFrameBound,
    WindowFrameUnits, when,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::{Error, ErrorKind};

const MICROS_PER_SECOND: f64 = 1e6;
const MICROS_PER_DAY: f64 = 86_400.0 * MICROS_PER_SECOND;

/// An interval being read: months, days and microseconds, each with
/// fractions carried down as PostgreSQL does (a month is 30 days, a day 24
/// hours).
#[derive(Default)]
struct Parts {
    months: f64,
    days: f64,
    micros: f64,
}

impl Parts {
    fn add_months(&mut self, m: f64) {
        let whole = m.trunc();
        self.months += whole;
        self.add_days((m - whole) * 30.0);
    }
    fn add_days(&mut self, d: f64) {
        let whole = d.trunc();
        self.days += whole;
        self.micros += (d - whole) * MICROS_PER_DAY;
    }
    fn add(&mut self, unit: Unit, n: f64) {
        match unit {
            Unit::Micros(per) => self.micros += n * per,
            Unit::Days(per) => self.add_days(n * per),
            Unit::Months(per) => self.add_months(n * per),
        }
    }
    fn finish(self, negate: bool) -> Option<IntervalMonthDayNano> {
        let sign = if negate { -1.0 } else { 1.0 };
        let months = (self.months * sign).round();
        let days = (self.days * sign).round();
        let micros = (self.micros * sign).round();
        let fits32 = |v: f64| (i32::MIN as f64..=i32::MAX as f64).contains(&v);
        // Nanoseconds in an i64: at most i64::MAX / 1000 microseconds (a
        // bound f64 holds exactly; NaN, from inf - inf, is out of range too).
        if !fits32(months)
            || !fits32(days)
            || micros.is_nan()
            || micros.abs() >= 9_223_372_036_854_775.0
        {
            return None;
        }
        Some(IntervalMonthDayNano::new(
            months as i32,
            days as i32,
            (micros as i64).checked_mul(1000)?,
        ))
    }
}

/// What one of a unit counts.
#[derive(Clone, Copy)]
enum Unit {
    Micros(f64),
    Days(f64),
    Months(f64),
}

fn unit(word: &str) -> Option<Unit> {
    Some(match word {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => Unit::Micros(1.0),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => {
            Unit::Micros(1000.0)
        }
        "second" | "seconds" | "s" | "sec" | "secs" => Unit::Micros(MICROS_PER_SECOND),
        "minute" | "minutes" | "m" | "min" | "mins" => Unit::Micros(60.0 * MICROS_PER_SECOND),
        "hour" | "hours" | "h" | "hr" | "hrs" => Unit::Micros(3600.0 * MICROS_PER_SECOND),
        "day" | "days" | "d" => Unit::Days(1.0),
        "week" | "weeks" | "w" => Unit::Days(7.0),
        "month" | "months" | "mon" | "mons" => Unit::Months(1.0),
        "year" | "years" | "y" | "yr" | "yrs" => Unit::Months(12.0),
        "decade" | "decades" => Unit::Months(120.0),
        "century" | "centuries" | "c" => Unit::Months(1200.0),
        "millennium" | "millennia" | "millenniums" => Unit::Months(12000.0),
        _ => return None,
    })
}

/// `[+-]h:m[:s[.f]]` as signed microseconds.
fn time_field(t: &str) -> Option<f64> {
    let (sign, body) = match t.as_bytes().first()? {
        b'-' => (-1.0, &t[1..]),
        b'+' => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    let parts: Vec<&str> = body.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    // `m:s.f`: two fields with a fraction are minutes and seconds.
    if parts.len() == 2 && parts[1].contains('.') {
        let minutes: f64 = number(parts[0]).filter(|_| !parts[0].contains(['.', '+', '-']))?;
        let seconds: f64 = number(parts[1]).filter(|_| !parts[1].contains(['+', '-']))?;
        return Some(sign * (minutes * 60.0 + seconds) * MICROS_PER_SECOND);
    }
    let whole = |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(());
    whole(parts[0])?;
    whole(parts[1])?;
    let hours: f64 = parts[0].parse().ok()?;
    let minutes: f64 = parts[1].parse().ok()?;
    let seconds: f64 = match parts.get(2) {
        Some(s) => {
            let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
            whole(int)?;
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()?
        }
        None => 0.0,
    };
    Some(sign * ((hours * 60.0 + minutes) * 60.0 + seconds) * MICROS_PER_SECOND)
}

/// A signed decimal number.
fn number(t: &str) -> Option<f64> {
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let ok = !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && body.bytes().filter(|b| *b == b'.').count() <= 1
        && body != ".";
    ok.then(|| t.parse().ok()).flatten()
}

/// Split `1day` into `1` and `day`; other tokens stay whole.
fn tokens(text: &str) -> Vec<String> {
    let mut out = vec![];
    for word in text.split_whitespace() {
        let digits = word
            .find(|c: char| c.is_ascii_alphabetic())
            .filter(|&i| i > 0 && number(&word[..i]).is_some());
        match digits {
            Some(i) => {
                out.push(word[..i].to_string());
                out.push(word[i..].to_string());
            }
            None => out.push(word.to_string()),
        }
    }
    out
}

/// ISO 8601's `P[nY][nM][nW][nD][T[nH][nM][nS]]`.
fn iso(text: &str) -> Option<Parts> {
    let body = text.strip_prefix('p')?;
    let mut parts = Parts::default();
    let mut in_time = false;
    let mut num = String::new();
    let mut any = false;
    for c in body.chars() {
        match c {
            't' if !in_time && num.is_empty() => in_time = true,
            '0'..='9' | '.' | '-' | '+' => num.push(c),
            _ => {
                let n = number(&num)?;
                num.clear();
                let u = match (c, in_time) {
                    ('y', false) => Unit::Months(12.0),
                    ('m', false) => Unit::Months(1.0),
                    ('w', false) => Unit::Days(7.0),
                    ('d', false) => Unit::Days(1.0),
                    ('h', true) => Unit::Micros(3600.0 * MICROS_PER_SECOND),
                    ('m', true) => Unit::Micros(60.0 * MICROS_PER_SECOND),
                    ('s', true) => Unit::Micros(MICROS_PER_SECOND),
                    _ => return None,
                };
                parts.add(u, n);
                any = true;
            }
        }
    }
    (num.is_empty() && any).then_some(parts)
}

/// `text` read as PostgreSQL reads an interval (IntervalStyle `postgres`).
pub fn parse(text: &str) -> Result<IntervalMonthDayNano, Error> {
    let bad = || {
        Error::new(
            ErrorKind::InvalidDatetime,
            format!("invalid input syntax for type interval: \"{text}\""),
        )
    };
    let lower = text.trim().to_ascii_lowercase();
    if lower.starts_with('p') {
        let parts = iso(&lower).ok_or_else(bad)?;
        return parts.finish(false).ok_or_else(|| out_of_range(text));
    }
    let lower = lower.strip_prefix('@').unwrap_or(&lower);
    // A sign written apart from its number is its number's: `1 month - 1
    // day` is a month less a day.
    let mut toks: Vec<String> = vec![];
    let mut sign: Option<String> = None;
    for t in tokens(lower) {
        match sign.take() {
            Some(s) => toks.push(s + &t),
            None if t == "-" || t == "+" => sign = Some(t),
            None => toks.push(t),
        }
    }
    toks.extend(sign);
    let mut parts = Parts::default();
    let mut negate = false;
    let mut any = false;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i].as_str();
        if t == "ago" && i + 1 == toks.len() && any {
            negate = true;
            i += 1;
            continue;
        }
        if let Some(micros) = time_field(t) {
            parts.micros += micros;
            any = true;
            i += 1;
            continue;
        }
        // `[-]y-m`: the sign applies to both fields.
        let (ym_sign, ym) = match t.strip_prefix('-') {
            Some(rest) => (-1.0, rest),
            None => (1.0, t),
        };
        if let Some((y, m)) = ym
            .split_once('-')
            .filter(|(y, _)| !y.is_empty() && !y.starts_with('+'))
            && let (Some(y), Some(m)) = (number(y), number(m))
        {
            parts.add_months(ym_sign * (y * 12.0 + m));
            any = true;
            i += 1;
            continue;
        }
        let n = number(t).ok_or_else(bad)?;
        let next = toks.get(i + 1).map(String::as_str);
        match next.and_then(unit) {
            Some(u) => {
                parts.add(u, n);
                i += 2;
            }
            // A number before a time field counts days (`1 02:03:04`).
            None if next.is_some_and(|n| time_field(n).is_some()) => {
                parts.add_days(n);
                i += 1;
            }
            // A bare number counts seconds.
            None if next.is_none() => {
                parts.add(Unit::Micros(MICROS_PER_SECOND), n);
                i += 1;
            }
            None => return Err(bad()),
        }
        any = true;
    }
    if !any {
        return Err(bad());
    }
    parts.finish(negate).ok_or_else(|| out_of_range(text))
}

fn out_of_range(text: &str) -> Error {
    Error::new(
        ErrorKind::DatetimeOverflow,
        format!("interval out of range: \"{text}\""),
    )
}

/// `'...'::interval` of text that is not a literal: each value read by
/// [`parse`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IntervalIn {
    signature: Signature,
}

/// The function casts of text to `interval` become.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalIn {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl ScalarUDFImpl for IntervalIn {
    fn name(&self) -> &str {
        "sluice_interval_in"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        make_scalar_function(
            |arrays: &[ArrayRef]| {
                let input = cast(&arrays[0], &DataType::Utf8)?;
                let texts = input.as_string::<i32>();
                let mut out = IntervalMonthDayNanoBuilder::with_capacity(texts.len());
                for v in texts.iter() {
                    match v {
                        Some(t) => out.append_value(parse(t)?),
                        None => out.append_null(),
                    }
                }
                Ok(Arc::new(out.finish()) as ArrayRef)
            },
            vec![],
        )(&args.args)
    }
}

/// An interval's place in PostgreSQL's order: its length in nanoseconds
/// with 30 days to a month and 24 hours to a day, so that `'1 day' =
/// '24 hours'`, `'1 month' = '30 days'` and `'36 hours' > '1 day'`.
/// Arrow compares months, days and nanoseconds one after another.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalKey {
    signature: Signature,
}

const NANOS_PER_DAY: i128 = 86_400 * 1_000_000_000;

fn key_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalKey {
        signature: Signature::exact(
            vec![DataType::Interval(IntervalUnit::MonthDayNano)],
            Volatility::Immutable,
        ),
    })
}

impl ScalarUDFImpl for IntervalKey {
    fn name(&self) -> &str {
        "sluice_interval_key"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Decimal128(38, 0))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        make_scalar_function(
            |arrays: &[ArrayRef]| {
                use datafusion::arrow::array::Decimal128Array;
                use datafusion::arrow::datatypes::IntervalMonthDayNanoType;
                let spans = arrays[0].as_primitive::<IntervalMonthDayNanoType>();
                let keys: Decimal128Array = spans.iter().map(|v| v.map(span_length)).collect();
                Ok(Arc::new(keys.with_precision_and_scale(38, 0)?) as ArrayRef)
            },
            vec![],
        )(&args.args)
    }
}

/// Comparisons and sorts of intervals in PostgreSQL's order (see
/// [`IntervalKey`]): each side of `=`, `<>`, `<`, `<=`, `>`, `>=`,
/// `IS [NOT] DISTINCT FROM`, `BETWEEN` and `IN (...)` and each ORDER BY key
/// of type interval (of a query or an aggregate) is compared by its
/// length, and `max` / `min` of an
/// interval is the longest / shortest. Runs after type coercion, when both
/// sides of a comparison have one type.
#[derive(Debug, Default)]
pub struct IntervalComparisons;

fn is_interval(e: &Expr, schema: &DFSchema) -> bool {
    matches!(
        e.get_type(schema),
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    )
}

fn by_length(e: Expr) -> Expr {
    key_udf().call(vec![e])
}

/// Replace `e` by its length, in place.
fn to_length(e: &mut Expr) {
    let taken = std::mem::replace(e, Expr::Literal(ScalarValue::Null, None));
    *e = by_length(taken);
}

/// The interval keys of `order` sorted by length; whether there was one.
fn sort_by_length(order: &mut [datafusion::logical_expr::SortExpr], schema: &DFSchema) -> bool {
    let mut changed = false;
    for o in order.iter_mut().filter(|o| is_interval(&o.expr, schema)) {
        to_length(&mut o.expr);
        changed = true;
    }
    changed
}

impl AnalyzerRule for IntervalComparisons {
    fn name(&self) -> &str {
        "sluice_interval_comparisons"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        let plan = super::rewrite_expressions(plan, |x, schema| {
            use datafusion::logical_expr::{Between, BinaryExpr, expr::InList};
            Ok(match x {
                Expr::BinaryExpr(BinaryExpr { left, op, right })
                    if super::is_comparison(&op)
                        && is_interval(&left, schema)
                        && is_interval(&right, schema) =>
                {
                    Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                        left: Box::new(by_length(*left)),
                        op,
                        right: Box::new(by_length(*right)),
                    }))
                }
                Expr::Between(Between {
                    expr,
                    negated,
                    low,
                    high,
                }) if is_interval(&expr, schema) => Transformed::yes(Expr::Between(Between {
                    expr: Box::new(by_length(*expr)),
                    negated,
                    low: Box::new(by_length(*low)),
                    high: Box::new(by_length(*high)),
                })),
                Expr::InList(InList {
                    expr,
                    list,
                    negated,
                }) if is_interval(&expr, schema) => Transformed::yes(Expr::InList(InList {
                    expr: Box::new(by_length(*expr)),
                    list: list.into_iter().map(by_length).collect(),
                    negated,
                })),
                // x IN (SELECT ...) of intervals: both sides by length.
                Expr::InSubquery(mut q) if is_interval(&q.expr, schema) => {
                    let plan = q.subquery.subquery.clone();
                    let (qualifier, field) = plan.schema().qualified_field(0);
                    let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
                    let name = field.name().clone();
                    q.subquery.subquery = Arc::new(LogicalPlan::Projection(Projection::try_new(
                        vec![by_length(column).alias(name)],
                        plan,
                    )?));
                    to_length(&mut q.expr);
                    Transformed::yes(Expr::InSubquery(q))
                }
                // max and min by length: the first value in that order.
                Expr::AggregateFunction(mut f)
                    if matches!(f.func.name(), "max" | "min")
                        && f.params.order_by.is_empty()
                        && !f.params.distinct
                        && f.params.args.len() == 1
                        && is_interval(&f.params.args[0], schema) =>
                {
                    let asc = f.func.name() == "min";
                    let arg = f.params.args[0].clone();
                    f.func = first_value_udaf();
                    f.params.order_by = vec![by_length(arg).sort(asc, false)];
                    Transformed::yes(Expr::AggregateFunction(f))
                }
                // count(DISTINCT iv) counts lengths: '1 day' and '24 hours'
                // are one value.
                Expr::AggregateFunction(mut f)
                    if f.func.name() == "count"
                        && f.params.distinct
                        && f.params.args.iter().any(|a| is_interval(a, schema)) =>
                {
                    for a in f.params.args.iter_mut().filter(|a| is_interval(a, schema)) {
                        to_length(a);
                    }
                    Transformed::yes(Expr::AggregateFunction(f))
                }
                // An aggregate's ORDER BY (string_agg(..., ORDER BY x)).
                Expr::AggregateFunction(mut f)
                    if f.params
                        .order_by
                        .iter()
                        .any(|o| is_interval(&o.expr, schema)) =>
                {
                    sort_by_length(&mut f.params.order_by, schema);
                    Transformed::yes(Expr::AggregateFunction(f))
                }
                other => Transformed::no(other),
            })
        })?;
        plans_by_length(plan, false).map(|t| t.data)
    }
}

/// The plan nodes of `node` (and of its subqueries) that compare intervals
/// by length. The GROUP BY and DISTINCT of a correlated subquery (and of
/// what it holds) are left as they are: the aggregate and projection the
/// rewrite adds would keep the planner from decorrelating it, or from
/// seeing that a HAVING there is aggregated.
fn plans_by_length(node: LogicalPlan, correlated: bool) -> DfResult<Transformed<LogicalPlan>> {
    let correlated =
        correlated || matches!(&node, LogicalPlan::Subquery(q) if !q.outer_ref_columns.is_empty());
    crate::tree::map_subqueries(node, |c| plans_by_length(c, correlated))?
        .transform_sibling(|n| crate::tree::map_children(n, |c| plans_by_length(c, correlated)))?
        .transform_parent(|n| node_by_length(n, correlated))
}

fn node_by_length(node: LogicalPlan, correlated: bool) -> DfResult<Transformed<LogicalPlan>> {
    match node {
        LogicalPlan::Sort(mut sort) => {
            let schema = sort.input.schema().clone();
            let changed = sort_by_length(&mut sort.expr, &schema);
            Ok(Transformed::new_transformed(
                LogicalPlan::Sort(sort),
                changed,
            ))
        }
        LogicalPlan::Aggregate(agg) if !correlated => group_by_length(agg),
        // Equality keys of a join (INTERSECT and EXCEPT are joins).
        LogicalPlan::Join(mut join) => {
            let (left, right) = (join.left.schema().clone(), join.right.schema().clone());
            let mut changed = false;
            for (l, r) in join.on.iter_mut() {
                if is_interval(l, &left) && is_interval(r, &right) {
                    to_length(l);
                    to_length(r);
                    changed = true;
                }
            }
            Ok(Transformed::new_transformed(
                LogicalPlan::Join(join),
                changed,
            ))
        }
        // DISTINCT ON (iv) keeps one row per length.
        LogicalPlan::Distinct(Distinct::On(mut on)) => {
            let schema = on.input.schema().clone();
            let mut changed = false;
            for e in on.on_expr.iter_mut() {
                if is_interval(e, &schema) {
                    to_length(e);
                    changed = true;
                }
            }
            if let Some(order) = on.sort_expr.as_mut() {
                changed |= sort_by_length(order, &schema);
            }
            Ok(Transformed::new_transformed(
                LogicalPlan::Distinct(Distinct::On(on)),
                changed,
            ))
        }
        LogicalPlan::Distinct(Distinct::All(input)) if !correlated => {
            let keys = input
                .schema()
                .iter()
                .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())))
                .collect();
            let agg = Aggregate::try_new(input, keys, vec![])?;
            let grouped = group_by_length(agg)?;
            Ok(match grouped.data {
                LogicalPlan::Aggregate(agg) if !grouped.transformed => {
                    // No interval: leave the DISTINCT as it was.
                    Transformed::no(LogicalPlan::Distinct(Distinct::All(agg.input)))
                }
                plan => Transformed::yes(plan),
            })
        }
        other => Ok(Transformed::no(other)),
    }
}

/// Windows over intervals in PostgreSQL's order: a PARTITION BY or ORDER
/// BY key of type interval becomes its length (a partition key is not
/// shown, and the order is the same), and a RANGE frame's offsets become
/// lengths too, so `RANGE BETWEEN interval '1 day' PRECEDING AND CURRENT
/// ROW` measures what PostgreSQL measures. Runs before type coercion,
/// which refuses a RANGE frame over an interval key.
#[derive(Debug, Default)]
pub struct IntervalWindows;

impl AnalyzerRule for IntervalWindows {
    fn name(&self) -> &str {
        "sluice_interval_windows"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        super::rewrite_expressions(plan, |x, schema| {
            let Expr::WindowFunction(mut w) = x else {
                return Ok(Transformed::no(x));
            };
            let mut changed = false;
            for p in w.params.partition_by.iter_mut() {
                if is_interval(p, schema) {
                    to_length(p);
                    changed = true;
                }
            }
            if sort_by_length(&mut w.params.order_by, schema) {
                changed = true;
                let frame = &mut w.params.window_frame;
                if frame.units == WindowFrameUnits::Range {
                    for b in [&mut frame.start_bound, &mut frame.end_bound] {
                        if let WindowFrameBound::Preceding(v) | WindowFrameBound::Following(v) = b {
                            *v = length_of(v)?;
                        }
                    }
                }
            }
            Ok(Transformed::new_transformed(
                Expr::WindowFunction(w),
                changed,
            ))
        })
    }
}

/// A RANGE frame offset given as an interval, as a length (what
/// [`IntervalKey`] computes); an unbounded end stays unbounded.
fn length_of(v: &ScalarValue) -> DfResult<ScalarValue> {
    let span = match v {
        v if v.is_null() => return Ok(ScalarValue::Null),
        ScalarValue::IntervalMonthDayNano(Some(span)) => *span,
        // PostgreSQL's spellings first (`'1 day 02:00'`), then Arrow's
        // (the form interval literals are given to the planner in).
        ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text))
            if parse(text).is_ok() =>
        {
            parse(text)?
        }
        other => match other.cast_to(&DataType::Interval(IntervalUnit::MonthDayNano))? {
            ScalarValue::IntervalMonthDayNano(Some(span)) => span,
            _ => return Ok(ScalarValue::Null),
        },
    };
    let length = span_length(span);
    if length < 0 {
        return Err(Error::new(
            ErrorKind::InvalidWindowOffset,
            "invalid preceding or following size in window function",
        )
        .into());
    }
    Ok(ScalarValue::Decimal128(Some(length), 38, 0))
}

fn span_length(v: IntervalMonthDayNano) -> i128 {
    (i128::from(v.months) * 30 + i128::from(v.days)) * NANOS_PER_DAY + i128::from(v.nanoseconds)
}

/// GROUP BY (and DISTINCT) of intervals by length, as PostgreSQL groups
/// them: `'1 day'` and `'24 hours'` are one group. Each interval key is
/// replaced by its length, the group shows one of its values (as
/// PostgreSQL shows the first it met), and a projection gives the
/// aggregate's columns their old names.
fn group_by_length(agg: Aggregate) -> DfResult<Transformed<LogicalPlan>> {
    use datafusion::logical_expr::utils::grouping_set_to_exprlist;
    let input_schema = agg.input.schema().clone();
    // The grouping columns the aggregate shows, in order (each distinct
    // expression of its grouping sets once).
    let shown_groups: Vec<Expr> = grouping_set_to_exprlist(&agg.group_expr)?
        .into_iter()
        .cloned()
        .collect();
    let keyed: Vec<bool> = shown_groups
        .iter()
        .map(|e| is_interval(e, &input_schema))
        .collect();
    // A correlated subquery's DISTINCT or GROUP BY is left as it is: the
    // aggregate this adds would keep the planner from decorrelating it.
    let correlated = crate::tree::exists(agg.input.as_ref(), |n| Ok(n.contains_outer_reference()))
        .unwrap_or(true);
    if !keyed.contains(&true) || correlated {
        return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
    }
    let sets = agg
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)));
    let value_name = |i: usize| format!("__sluice_interval_value_{i}");
    let group = if sets {
        // Inside grouping sets an expression keeps no alias; the key's own
        // name is the column's.
        let mut group = agg.group_expr.clone();
        for e in &mut group {
            if let Expr::GroupingSet(set) = e {
                for x in super::grouping_exprs_mut(set) {
                    if is_interval(x, &input_schema) {
                        to_length(x);
                    }
                }
            } else if is_interval(e, &input_schema) {
                to_length(e);
            }
        }
        group
    } else {
        agg.group_expr
            .iter()
            .zip(&keyed)
            .enumerate()
            .map(|(i, (e, keyed))| match keyed {
                true => by_length(e.clone()).alias(format!("__sluice_interval_group_{i}")),
                false => e.clone(),
            })
            .collect()
    };
    let mut aggr = agg.aggr_expr.clone();
    for (i, e) in shown_groups.iter().enumerate().filter(|(i, _)| keyed[*i]) {
        aggr.push(
            first_value_udaf()
                .call(vec![e.clone()])
                .alias(value_name(i)),
        );
    }
    let old_schema = agg.schema.clone();
    let grouped = Aggregate::try_new(agg.input, group, aggr)?;
    let shown = super::shown_as(&old_schema, grouped, |i, column, _| {
        if i >= keyed.len() || !keyed[i] {
            return Ok(column);
        }
        let value = Expr::Column(Column::new_unqualified(value_name(i)));
        // A grouping set without this column shows NULL: its length is
        // NULL there (and only there, or for a NULL interval).
        if sets {
            when(
                column.is_null(),
                Expr::Literal(ScalarValue::IntervalMonthDayNano(None), None),
            )
            .otherwise(value)
        } else {
            Ok(value)
        }
    })?;
    Ok(Transformed::yes(shown))
}

/// The text of an `INTERVAL '...'` literal in a form Arrow's parser reads
/// exactly (`M months D days N nanoseconds`); `None` when PostgreSQL
/// would not read it either, so that the planner reports it.
pub fn canonical(text: &str) -> Option<String> {
    let v = parse(text).ok()?;
    Some(format!(
        "{} months {} days {} nanoseconds",
        v.months, v.days, v.nanoseconds
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> (i32, i32, i64) {
        let v = parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        (v.months, v.days, v.nanoseconds / 1000)
    }

    const H: i64 = 3_600_000_000;

    #[test]
    fn reads_what_postgresql_reads() {
        assert_eq!(
            p("1 day 03:04:05"),
            (0, 1, 3 * H + 4 * 60_000_000 + 5_000_000)
        );
        assert_eq!(p("1day"), (0, 1, 0));
        assert_eq!(p("5"), (0, 0, 5_000_000));
        assert_eq!(p("1:2"), (0, 0, H + 2 * 60_000_000));
        assert_eq!(p("1.5 years"), (18, 0, 0));
        assert_eq!(p("1.5 months"), (1, 15, 0));
        assert_eq!(p("1.5 weeks"), (0, 10, 12 * H));
        assert_eq!(p("1.5 days"), (0, 1, 12 * H));
        assert_eq!(p("-1 day 02:00"), (0, -1, 2 * H));
        assert_eq!(p("-1 day -02:00"), (0, -1, -2 * H));
        assert_eq!(p("1 day ago"), (0, -1, 0));
        assert_eq!(p("@ 1 hour"), (0, 0, H));
        assert_eq!(
            p("P1Y2M3DT4H5M6.5S"),
            (14, 3, 4 * H + 5 * 60_000_000 + 6_500_000)
        );
        assert_eq!(p("PT1.5H"), (0, 0, H + H / 2));
        assert_eq!(p("1-2"), (14, 0, 0));
        assert_eq!(p("-1-2"), (-14, 0, 0));
        assert_eq!(p("1:2.5"), (0, 0, 62_500_000));
        assert_eq!(p("1 02:03:04"), (0, 1, 2 * H + 3 * 60_000_000 + 4_000_000));
        assert_eq!(p("10:00:00.123456789"), (0, 0, 10 * H + 123_457));
        assert_eq!(p("2 h 3 m 4 s"), (0, 0, 2 * H + 3 * 60_000_000 + 4_000_000));
        assert_eq!(p("1 mon"), (1, 0, 0));
        assert_eq!(p("100 ms"), (0, 0, 100_000));
        assert_eq!(p("3 millennia"), (36000, 0, 0));
        assert_eq!(p("-01:30"), (0, 0, -(H + H / 2)));
        assert_eq!(p("+3 days"), (0, 3, 0));
        assert_eq!(p("1 year -2 months"), (10, 0, 0));
        assert_eq!(p("1 month - 1 day"), (1, -1, 0));
        assert_eq!(p("1 year - 2 mons + 3 days"), (10, 3, 0));
        assert_eq!(p("- 1 day"), (0, -1, 0));
        assert_eq!(
            p("1 year 2 mons 3 days 04:05:06.5"),
            (14, 3, 4 * H + 5 * 60_000_000 + 6_500_000)
        );
    }

    #[test]
    fn out_of_range_is_an_error_not_a_wrap() {
        for t in [
            "9223372036854776 us",
            "99999999999 years",
            "3000000000 days",
            &format!("{} us -{} us", "9".repeat(320), "9".repeat(320)),
        ] {
            let e = parse(t).expect_err(t);
            assert_eq!(e.kind, ErrorKind::DatetimeOverflow, "{t}");
        }
        assert_eq!(p("9000000000000000 us").2, 9_000_000_000_000_000);
    }

    #[test]
    fn refuses_what_postgresql_refuses() {
        for t in [
            "abc",
            "",
            "1 fortnight",
            "5 ago",
            "P",
            "Pxyz",
            "1:2:3:4",
            "ago",
            "1 day -",
        ] {
            let e = parse(t).expect_err(t);
            assert_eq!(e.kind, ErrorKind::InvalidDatetime, "{t}");
        }
    }
}
