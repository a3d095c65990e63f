//! The places each numeric value of a result is shown with.
//!
//! PostgreSQL keeps a display scale per numeric value, not per column: a
//! `CASE`, `COALESCE`, `greatest`, `UNION` or `lag(x, 1, default)` whose
//! branches have different scales gives each row the scale of the branch
//! it took (`coalesce(NULL, 1.5, 2.25)` is `1.5` beside a `2.25` of the
//! same column), an integer that meets a numeric keeps no places, and a
//! quotient has the places `select_div_scale` chose for its operands. An
//! Arrow decimal has one scale per column, so the value is stored at the
//! column's scale and shown here at its own: [`display_scales`] follows
//! each numeric result column down the plan, works out an expression for
//! each row's places next to the expression of its value, and writes the
//! value as text with them in a last projection.
//!
//! A cast the analyzer adds to reconcile types keeps the value's places;
//! a cast the query wrote (`x::numeric(10,2)`) sets them. The two look the
//! same once the analyzer ran, so [`mark_explicit_casts`] marks each
//! written cast to a decimal before it: a `TRY_CAST` of the cast to the
//! same type, which neither coercion nor Sluice's rules make.
//!
//! Places are followed through projections, filters, sorts, limits,
//! aliases, joins, unions, `DISTINCT`, aggregates (`sum`, `min`, `max`,
//! and the variances and standard deviations, whose places are their
//! own) and windows (`lag`, `lead`, `first_value`, `last_value`,
//! `nth_value`, `sum`, the variances); anything else shows its column's
//! scale, as before.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, DFSchemaRef, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::{
    AggregateFunction, Alias, Case, Cast, ScalarFunction, TryCast, WindowFunction,
    WindowFunctionParams,
};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::grouping_set_to_exprlist;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Distinct, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder,
    Operator, Projection, Union, Window, WindowFunctionDefinition,
};

use super::floats::is_decimal;
use super::quotient::{DIVIDE, places_udf, text_udf};
use super::text::is_text;

/// The metadata key of a literal that was converted to a decimal of
/// another scale (a default of `lag`): its places as written.
pub const LITERAL_PLACES: &str = "sluice.places";

/// The places of one column's values.
#[derive(Clone, Debug, PartialEq)]
enum Places {
    /// The same for every row.
    Fixed(i32),
    /// In the column of this position of the (widened) plan's output.
    At(usize),
}

/// The places of an expression's values.
#[derive(Clone, Debug)]
enum Of {
    Fixed(i32),
    /// An `Int32` expression over the same input as the value's.
    Per(Expr),
}

impl Of {
    fn expr(self) -> Expr {
        match self {
            Of::Fixed(k) => lit(k),
            Of::Per(e) => e,
        }
    }
}

fn lit(k: i32) -> Expr {
    Expr::Literal(ScalarValue::Int32(Some(k)), None)
}

fn scale_of(t: &DataType) -> i32 {
    match t {
        DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => (*s).max(0) as i32,
        _ => 0,
    }
}

/// The places of several values when they meet (a sum, the larger).
fn larger(parts: Vec<Of>) -> Of {
    let fixed: Option<i32> = parts
        .iter()
        .map(|p| match p {
            Of::Fixed(k) => Some(*k),
            Of::Per(_) => None,
        })
        .collect::<Option<Vec<i32>>>()
        .map(|ks| ks.into_iter().max().unwrap_or(0));
    match fixed {
        Some(k) => Of::Fixed(k),
        None => Of::Per(datafusion::functions::core::expr_fn::greatest(
            parts.into_iter().map(Of::expr).collect(),
        )),
    }
}

/// A `CASE` choosing among `choices` by the conditions of `case`.
fn chosen(case: &Case, thens: Vec<Of>, otherwise: Of) -> Of {
    let all: Vec<&Of> = thens.iter().chain([&otherwise]).collect();
    if let Some(Of::Fixed(k)) = all.first()
        && all.iter().all(|p| matches!(p, Of::Fixed(j) if j == k))
    {
        return Of::Fixed(*k);
    }
    Of::Per(Expr::Case(Case {
        expr: case.expr.clone(),
        when_then_expr: case
            .when_then_expr
            .iter()
            .zip(thens)
            .map(|((w, _), p)| (w.clone(), Box::new(p.expr())))
            .collect(),
        else_expr: Some(Box::new(otherwise.expr())),
    }))
}

/// Whether `e` may be evaluated a second time for its places: no subquery
/// (planned apart) and nothing volatile.
fn repeatable(e: &Expr) -> bool {
    !e.is_volatile()
        && !crate::tree::exists(e, |e| {
            Ok(matches!(
                e,
                Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
            ))
        })
        .unwrap_or(true)
}

/// Follows the places of expressions over one input.
struct Exprs<'a> {
    schema: &'a DFSchema,
    /// The places of the input's column at a position.
    input: &'a mut dyn FnMut(usize) -> Places,
    /// The columns of the widened input (to refer to places columns).
    widened: Option<&'a DFSchema>,
}

impl Exprs<'_> {
    fn column(&mut self, at: usize) -> Of {
        match (self.input)(at) {
            Places::Fixed(k) => Of::Fixed(k),
            Places::At(k) => match self.widened {
                Some(w) => Of::Per(Expr::Column(Column::from(w.qualified_field(k)))),
                // Only asking which columns are needed.
                None => Of::Fixed(0),
            },
        }
    }

    fn of(&mut self, e: &Expr) -> Of {
        let schema = self.schema;
        let own = || e.get_type(schema).map(|t| scale_of(&t)).unwrap_or_default();
        match e {
            Expr::Alias(Alias { expr, .. }) => self.of(expr),
            Expr::Column(c) => match self.schema.index_of_column(c) {
                Ok(i) => self.column(i),
                Err(_) => Of::Fixed(own()),
            },
            Expr::Literal(v, meta) => Of::Fixed(
                meta.as_ref()
                    .and_then(|m| m.inner().get(LITERAL_PLACES))
                    .and_then(|k| k.parse().ok())
                    .unwrap_or_else(|| scale_of(&v.data_type())),
            ),
            Expr::Cast(Cast { expr, field }) if is_decimal(field.data_type()) => {
                let data_type = field.data_type();
                // One the analyzer added: the value keeps its places.
                match expr.get_type(self.schema).ok() {
                    Some(t) if is_decimal(&t) => self.of(expr),
                    Some(t) if t.is_integer() => Of::Fixed(0),
                    _ => Of::Fixed(scale_of(data_type)),
                }
            }
            // A cast written in the query (see `mark_explicit_casts`).
            Expr::TryCast(TryCast { expr, field })
                if is_decimal(field.data_type())
                    && matches!(expr.as_ref(), Expr::Cast(inner) if inner.field.data_type() == field.data_type()) =>
            {
                Of::Fixed(scale_of(field.data_type()))
            }
            Expr::Negative(x) => self.of(x),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::Plus | Operator::Minus | Operator::Modulo => {
                    let parts = vec![self.of(left), self.of(right)];
                    larger(parts)
                }
                Operator::Multiply => match (self.of(left), self.of(right)) {
                    (Of::Fixed(a), Of::Fixed(b)) => Of::Fixed(a + b),
                    (a, b) => Of::Per(a.expr() + b.expr()),
                },
                _ => Of::Fixed(own()),
            },
            Expr::Case(case)
                if case.expr.as_deref().is_none_or(repeatable)
                    && case.when_then_expr.iter().all(|(w, _)| repeatable(w)) =>
            {
                let thens: Vec<Of> = case
                    .when_then_expr
                    .iter()
                    .map(|(_, t)| self.of(t))
                    .collect();
                let otherwise = match &case.else_expr {
                    Some(e) => self.of(e),
                    None => Of::Fixed(own()),
                };
                chosen(case, thens, otherwise)
            }
            Expr::ScalarFunction(f) => self.function(f, own),
            _ => Of::Fixed(own()),
        }
    }

    fn function(&mut self, f: &ScalarFunction, own: impl Fn() -> i32) -> Of {
        let args = &f.args;
        match f.func.name() {
            DIVIDE => Of::Per(Expr::ScalarFunction(ScalarFunction::new_udf(
                Arc::new(places_udf()),
                args.clone(),
            ))),
            "abs" | "nullif" | super::numeric::FUNCTION if !args.is_empty() => {
                match args[0].get_type(self.schema) {
                    Ok(t) if is_decimal(&t) => self.of(&args[0]),
                    Ok(t) if t.is_integer() => Of::Fixed(0),
                    // Text or a float read as an unconstrained numeric:
                    // each value's own places (`'1.5'::numeric` is 1.5).
                    Ok(t)
                        if f.func.name() == super::numeric::FUNCTION
                            && (is_text(&t) || t.is_floating())
                            && repeatable(&args[0]) =>
                    {
                        Of::Per(Expr::ScalarFunction(ScalarFunction::new_udf(
                            Arc::new(super::numeric::input_places_udf()),
                            vec![args[0].clone()],
                        )))
                    }
                    _ => Of::Fixed(own()),
                }
            }
            // A numeric logarithm: the places PostgreSQL chose for it.
            "ln" | "log" | "log10"
                if matches!(
                    Expr::ScalarFunction(f.clone()).get_type(self.schema),
                    Ok(DataType::Decimal128(_, _))
                ) =>
            {
                let scale = match Expr::ScalarFunction(f.clone()).get_type(self.schema) {
                    Ok(DataType::Decimal128(_, s)) => s,
                    _ => super::numeric_log::SCALE,
                };
                match super::logarithms::places_udf(f.func.name(), scale) {
                    Some(udf) => Of::Per(Expr::ScalarFunction(ScalarFunction::new_udf(
                        Arc::new(udf),
                        args.clone(),
                    ))),
                    None => Of::Fixed(own()),
                }
            }
            "trim_scale" if args.len() == 1 => Of::Per(Expr::ScalarFunction(ScalarFunction {
                func: Arc::new(super::functions::min_scale_udf()),
                args: args.clone(),
            })),
            // Whole numbers, or `d` places (none for a negative `d`),
            // whatever scale the argument had.
            "floor" | "ceil" | "round" | "trunc" if args.len() == 1 => Of::Fixed(0),
            "round" | "trunc" if args.len() == 2 => match peeled(&args[1]) {
                Expr::Literal(v, _) => match v.cast_to(&DataType::Int64) {
                    Ok(ScalarValue::Int64(Some(d))) => Of::Fixed(d.clamp(0, 38) as i32),
                    _ => Of::Fixed(own()),
                },
                _ => Of::Fixed(own()),
            },
            "mod" if args.len() == 2 => {
                let parts = vec![self.of(&args[0]), self.of(&args[1])];
                larger(parts)
            }
            "coalesce" if args.iter().all(repeatable) && !args.is_empty() => {
                let mut thens = vec![];
                for a in &args[..args.len() - 1] {
                    thens.push(self.of(a));
                }
                let otherwise = self.of(&args[args.len() - 1]);
                let case = Case {
                    expr: None,
                    when_then_expr: args[..args.len() - 1]
                        .iter()
                        .map(|a| {
                            (
                                Box::new(a.clone().is_not_null()),
                                Box::new(Expr::Literal(ScalarValue::Null, None)),
                            )
                        })
                        .collect(),
                    else_expr: None,
                };
                chosen(&case, thens, otherwise)
            }
            "greatest" | "least" if args.iter().all(repeatable) && !args.is_empty() => {
                // The first argument equal to the result.
                let result = Expr::ScalarFunction(f.clone());
                let thens: Vec<Of> = args.iter().map(|a| self.of(a)).collect();
                let case = Case {
                    expr: None,
                    when_then_expr: args
                        .iter()
                        .map(|a| {
                            (
                                Box::new(a.clone().eq(result.clone())),
                                Box::new(Expr::Literal(ScalarValue::Null, None)),
                            )
                        })
                        .collect(),
                    else_expr: None,
                };
                chosen(&case, thens, Of::Fixed(own()))
            }
            _ => Of::Fixed(own()),
        }
    }
}

/// The places of `exprs` over `input`: which of the input's columns they
/// need, then the places with those columns added to the input.
fn over_input(
    w: &mut Widen,
    input: LogicalPlan,
    exprs: &[&Expr],
) -> Result<(LogicalPlan, Vec<Of>)> {
    let schema = input.schema().clone();
    let mut needed = BTreeSet::new();
    {
        let mut ask = |i: usize| {
            needed.insert(i);
            Places::Fixed(0)
        };
        let mut probe = Exprs {
            schema: &schema,
            input: &mut ask,
            widened: None,
        };
        for e in exprs {
            probe.of(e);
        }
    }
    let (widened, below) = w.widen(input, &needed)?;
    let widened_schema = widened.schema().clone();
    let mut look = |i: usize| {
        below
            .get(&i)
            .cloned()
            .unwrap_or_else(|| Places::Fixed(scale_of(schema.field(i).data_type())))
    };
    let mut exprs_of = Exprs {
        schema: &schema,
        input: &mut look,
        widened: Some(&widened_schema),
    };
    let found = exprs.iter().map(|e| exprs_of.of(e)).collect();
    Ok((widened, found))
}

/// A plan widened with columns of places, and where each wanted column's
/// places are.
type Widened = (LogicalPlan, HashMap<usize, Places>);

struct Widen {
    next: usize,
}

impl Widen {
    fn name(&mut self) -> String {
        self.next += 1;
        format!("__sluice_places_{}", self.next)
    }

    /// `plan` with columns added after its own for the places of the
    /// `wanted` output columns that vary by row; the places of each.
    fn widen(&mut self, plan: LogicalPlan, wanted: &BTreeSet<usize>) -> Result<Widened> {
        if wanted.is_empty() {
            return Ok((plan, HashMap::new()));
        }
        let own = |plan: &LogicalPlan| -> HashMap<usize, Places> {
            wanted
                .iter()
                .filter(|i| **i < plan.schema().fields().len())
                .map(|i| {
                    (
                        *i,
                        Places::Fixed(scale_of(plan.schema().field(*i).data_type())),
                    )
                })
                .collect()
        };
        match plan {
            LogicalPlan::Projection(p) => {
                let exprs: Vec<&Expr> = wanted.iter().filter_map(|i| p.expr.get(*i)).collect();
                let (input, found) =
                    over_input(self, Arc::unwrap_or_clone(p.input.clone()), &exprs)?;
                let n = p.expr.len();
                let mut all = p.expr.clone();
                let mut places = HashMap::new();
                for (i, of) in wanted.iter().zip(found) {
                    match of {
                        Of::Fixed(k) => {
                            places.insert(*i, Places::Fixed(k));
                        }
                        Of::Per(e) => {
                            places.insert(*i, Places::At(all.len()));
                            all.push(e.alias(self.name()));
                        }
                    }
                }
                if all.len() == n {
                    return Ok((LogicalPlan::Projection(p), places));
                }
                let plan = LogicalPlan::Projection(Projection::try_new(all, Arc::new(input))?);
                Ok((plan, places))
            }
            LogicalPlan::Filter(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::SubqueryAlias(_) => {
                let input = plan.inputs()[0].clone();
                let (widened, places) = self.widen(input, wanted)?;
                if places.values().all(|p| matches!(p, Places::Fixed(_))) {
                    return Ok((plan, places));
                }
                let plan = plan.with_new_exprs(plan.expressions(), vec![widened])?;
                Ok((plan, places))
            }
            LogicalPlan::Join(ref j) => {
                let nl = j.left.schema().fields().len();
                let both = !matches!(
                    j.join_type,
                    datafusion::common::JoinType::LeftSemi
                        | datafusion::common::JoinType::LeftAnti
                        | datafusion::common::JoinType::RightSemi
                        | datafusion::common::JoinType::RightAnti
                        | datafusion::common::JoinType::LeftMark
                        | datafusion::common::JoinType::RightMark
                );
                if !both {
                    // One side's columns only, as they are.
                    let left = matches!(
                        j.join_type,
                        datafusion::common::JoinType::LeftSemi
                            | datafusion::common::JoinType::LeftAnti
                    );
                    if !left
                        && !matches!(
                            j.join_type,
                            datafusion::common::JoinType::RightSemi
                                | datafusion::common::JoinType::RightAnti
                        )
                    {
                        return Ok((plan.clone(), own(&plan)));
                    }
                    let side = if left { &j.left } else { &j.right };
                    let (widened, places) =
                        self.widen(Arc::unwrap_or_clone(side.clone()), wanted)?;
                    if places.values().all(|p| matches!(p, Places::Fixed(_))) {
                        return Ok((plan, places));
                    }
                    let other = if left { &j.right } else { &j.left };
                    let inputs = if left {
                        vec![widened, Arc::unwrap_or_clone(other.clone())]
                    } else {
                        vec![Arc::unwrap_or_clone(other.clone()), widened]
                    };
                    let plan = plan.with_new_exprs(plan.expressions(), inputs)?;
                    return Ok((plan, places));
                }
                let wl: BTreeSet<usize> = wanted.iter().copied().filter(|i| *i < nl).collect();
                let wr: BTreeSet<usize> = wanted
                    .iter()
                    .filter(|i| **i >= nl)
                    .map(|i| i - nl)
                    .collect();
                let (left, pl) = self.widen(Arc::unwrap_or_clone(j.left.clone()), &wl)?;
                let (right, pr) = self.widen(Arc::unwrap_or_clone(j.right.clone()), &wr)?;
                let (el, nr) = (
                    left.schema().fields().len() - nl,
                    j.right.schema().fields().len(),
                );
                let er = right.schema().fields().len() - nr;
                let mut places = HashMap::new();
                // Output after reordering: the join's own columns, then the
                // left's places, then the right's.
                let left_at = |k: usize| if k < nl { k } else { nl + nr + (k - nl) };
                let right_at = |k: usize| {
                    if k < nr {
                        nl + k
                    } else {
                        nl + nr + el + (k - nr)
                    }
                };
                for (i, p) in pl {
                    places.insert(
                        i,
                        match p {
                            Places::At(k) => Places::At(left_at(k)),
                            f => f,
                        },
                    );
                }
                for (i, p) in pr {
                    places.insert(
                        i + nl,
                        match p {
                            Places::At(k) => Places::At(right_at(k)),
                            f => f,
                        },
                    );
                }
                if el == 0 && er == 0 {
                    return Ok((plan, places));
                }
                let joined = plan.with_new_exprs(plan.expressions(), vec![left, right])?;
                let order: Vec<usize> = (0..nl)
                    .chain(nl + el..nl + el + nr)
                    .chain(nl..nl + el)
                    .chain(nl + el + nr..nl + el + nr + er)
                    .collect();
                Ok((reordered(joined, &order)?, places))
            }
            LogicalPlan::Union(u) => {
                let n = u.schema.fields().len();
                let mut inputs = vec![];
                let mut each: Vec<HashMap<usize, Places>> = vec![];
                for input in &u.inputs {
                    let (widened, places) =
                        self.widen(Arc::unwrap_or_clone(input.clone()), wanted)?;
                    inputs.push(widened);
                    each.push(places);
                }
                let varying: Vec<usize> = wanted
                    .iter()
                    .copied()
                    .filter(|i| {
                        let first = each[0].get(i);
                        !matches!(first, Some(Places::Fixed(_)))
                            || each.iter().any(|p| p.get(i) != first)
                    })
                    .collect();
                let mut places: HashMap<usize, Places> = wanted
                    .iter()
                    .filter(|i| !varying.contains(i))
                    .filter_map(|i| each[0].get(i).map(|p| (*i, p.clone())))
                    .collect();
                if varying.is_empty() {
                    return Ok((LogicalPlan::Union(u), places));
                }
                let names: Vec<String> = varying.iter().map(|_| self.name()).collect();
                let mut projected = vec![];
                for (input, p) in inputs.into_iter().zip(each) {
                    let schema = input.schema().clone();
                    let mut exprs: Vec<Expr> = (0..n)
                        .map(|k| Expr::Column(Column::from(schema.qualified_field(k))))
                        .collect();
                    for (i, name) in varying.iter().zip(&names) {
                        let e = match p.get(i) {
                            Some(Places::At(k)) => {
                                Expr::Column(Column::from(schema.qualified_field(*k)))
                            }
                            Some(Places::Fixed(k)) => lit(*k),
                            None => lit(scale_of(schema.field(*i).data_type())),
                        };
                        exprs.push(e.alias(name));
                    }
                    projected.push(Arc::new(LogicalPlan::Projection(Projection::try_new(
                        exprs,
                        Arc::new(input),
                    )?)));
                }
                for (k, i) in varying.iter().enumerate() {
                    places.insert(*i, Places::At(n + k));
                }
                Ok((LogicalPlan::Union(Union::try_new(projected)?), places))
            }
            LogicalPlan::Distinct(Distinct::All(input)) => {
                let n = input.schema().fields().len();
                let (widened, below) = self.widen(Arc::unwrap_or_clone(input.clone()), wanted)?;
                if below.values().all(|p| matches!(p, Places::Fixed(_))) {
                    return Ok((LogicalPlan::Distinct(Distinct::All(input)), below));
                }
                // Rows equal but for their places are one row.
                let schema = widened.schema().clone();
                let group: Vec<Expr> = (0..n)
                    .map(|k| Expr::Column(Column::from(schema.qualified_field(k))))
                    .collect();
                let mut aggregates = vec![];
                let mut places = HashMap::new();
                for (i, p) in below {
                    match p {
                        Places::At(k) => {
                            places.insert(i, Places::At(n + aggregates.len()));
                            let column = Expr::Column(Column::from(schema.qualified_field(k)));
                            aggregates.push(largest(column, None).alias(self.name()));
                        }
                        f => {
                            places.insert(i, f);
                        }
                    }
                }
                let plan = LogicalPlan::Aggregate(Aggregate::try_new(
                    Arc::new(widened),
                    group,
                    aggregates,
                )?);
                Ok((plan, places))
            }
            LogicalPlan::Aggregate(a) => self.aggregate(a, wanted),
            LogicalPlan::Window(w) => self.window(w, wanted),
            LogicalPlan::Values(ref v) => {
                let n = v.schema.fields().len();
                let mut places = HashMap::new();
                let mut added: Vec<Vec<Expr>> = vec![vec![]; v.values.len()];
                let mut fields = vec![];
                for i in wanted.iter().copied().filter(|i| *i < n) {
                    let empty = DFSchema::empty();
                    let mut none = |_: usize| Places::Fixed(0);
                    let mut exprs = Exprs {
                        schema: &empty,
                        input: &mut none,
                        widened: None,
                    };
                    let each: Vec<Of> = v.values.iter().map(|row| exprs.of(&row[i])).collect();
                    let ks: Option<Vec<i32>> = each
                        .iter()
                        .map(|p| match p {
                            Of::Fixed(k) => Some(*k),
                            Of::Per(_) => None,
                        })
                        .collect();
                    if let Some(ks) = &ks
                        && ks.iter().all(|k| *k == ks[0])
                    {
                        places.insert(i, Places::Fixed(ks[0]));
                        continue;
                    }
                    places.insert(i, Places::At(n + fields.len()));
                    for (row, p) in added.iter_mut().zip(each) {
                        row.push(p.expr());
                    }
                    fields.push(self.name());
                }
                if fields.is_empty() {
                    return Ok((plan, places));
                }
                let mut qualified: Vec<(
                    Option<datafusion::common::TableReference>,
                    Arc<datafusion::arrow::datatypes::Field>,
                )> = v
                    .schema
                    .iter()
                    .map(|(q, f)| (q.cloned(), f.clone()))
                    .collect();
                for name in fields {
                    qualified.push((
                        None,
                        Arc::new(datafusion::arrow::datatypes::Field::new(
                            name,
                            DataType::Int32,
                            true,
                        )),
                    ));
                }
                let schema = Arc::new(DFSchema::new_with_metadata(
                    qualified,
                    v.schema.metadata().clone(),
                )?);
                let rows: Vec<Vec<Expr>> = v
                    .values
                    .iter()
                    .zip(added)
                    .map(|(row, more)| row.iter().cloned().chain(more).collect())
                    .collect();
                let plan = LogicalPlanBuilder::values_with_schema(rows, &schema)?.build()?;
                Ok((plan, places))
            }
            other => {
                let places = own(&other);
                Ok((other, places))
            }
        }
    }

    fn aggregate(&mut self, a: Aggregate, wanted: &BTreeSet<usize>) -> Result<Widened> {
        let groups: Vec<Expr> = grouping_set_to_exprlist(&a.group_expr)?
            .into_iter()
            .cloned()
            .collect();
        let group_len = a.group_expr_len()?;
        // For each wanted column: the expression whose places it has, and
        // how an aggregate (None for a group's value) takes them.
        let mut asked: Vec<(usize, Expr, Option<Taken>)> = vec![];
        // Aggregates whose places their twins compute.
        let mut twins: Vec<(usize, Expr)> = vec![];
        let mut places = HashMap::new();
        for i in wanted.iter().copied() {
            let scale = scale_of(a.schema.field(i).data_type());
            if i < groups.len() {
                asked.push((i, groups[i].clone(), None));
            } else if i >= group_len {
                let Some(e) = a.aggr_expr.get(i - group_len) else {
                    continue;
                };
                if let Expr::AggregateFunction(f) = unaliased(e)
                    && let Some(twin) = super::variance::places_twin(f.func.name())
                {
                    let mut f = f.clone();
                    f.func = twin;
                    twins.push((i, Expr::AggregateFunction(f)));
                    continue;
                }
                match aggregated(e) {
                    Some((kind, arg, filter)) => asked.push((i, arg, Some((kind, filter)))),
                    None => {
                        places.insert(i, Places::Fixed(scale));
                    }
                }
            }
        }
        let exprs: Vec<&Expr> = asked.iter().map(|(_, e, _)| e).collect();
        let (input, found) = over_input(self, Arc::unwrap_or_clone(a.input.clone()), &exprs)?;
        let n = a.schema.fields().len();
        let mut more = vec![];
        for ((i, value, how), of) in asked.into_iter().zip(found) {
            match of {
                Of::Fixed(k) => {
                    places.insert(i, Places::Fixed(k));
                }
                Of::Per(e) => {
                    places.insert(i, Places::At(n + more.len()));
                    let taken = match how {
                        // A group's value: its rows are equal.
                        None => largest(e, None),
                        // Of the rows it adds: not those that are NULL.
                        Some((Aggregated::Sum, filter)) => largest(when_not_null(value, e), filter),
                        Some((Aggregated::Picked(ascending), filter)) => {
                            of_picked(e, value, ascending, filter)
                        }
                    };
                    more.push(taken.alias(self.name()));
                }
            }
        }
        for (i, twin) in twins {
            places.insert(i, Places::At(n + more.len()));
            more.push(twin.alias(self.name()));
        }
        if more.is_empty() {
            return Ok((LogicalPlan::Aggregate(a), places));
        }
        let mut aggr = a.aggr_expr.clone();
        aggr.extend(more);
        let plan = LogicalPlan::Aggregate(Aggregate::try_new(
            Arc::new(input),
            a.group_expr.clone(),
            aggr,
        )?);
        Ok((plan, places))
    }

    fn window(&mut self, w: Window, wanted: &BTreeSet<usize>) -> Result<Widened> {
        let n_in = w.input.schema().fields().len();
        let below: BTreeSet<usize> = wanted.iter().copied().filter(|i| *i < n_in).collect();
        let mut asked: Vec<(usize, WindowFunction, Vec<Expr>)> = vec![];
        let mut places = HashMap::new();
        for i in wanted.iter().copied().filter(|i| *i >= n_in) {
            let scale = scale_of(w.schema.field(i).data_type());
            let Some(Expr::WindowFunction(f)) = w.window_expr.get(i - n_in).map(unaliased) else {
                places.insert(i, Places::Fixed(scale));
                continue;
            };
            let name = f.fun.name().to_ascii_lowercase();
            let args = &f.params.args;
            let values: Vec<Expr> = match name.as_str() {
                // Its twin computes its places (see below).
                n if super::variance::places_twin(n).is_some() => vec![],
                "lag" | "lead" if args.len() == 3 => vec![args[0].clone(), args[2].clone()],
                "lag" | "lead" | "first_value" | "last_value" | "nth_value" | "sum"
                    if !args.is_empty() =>
                {
                    vec![args[0].clone()]
                }
                _ => {
                    places.insert(i, Places::Fixed(scale));
                    continue;
                }
            };
            asked.push((i, f.as_ref().clone(), values));
        }
        // The input's own wanted columns and those the functions read.
        let mut exprs: Vec<Expr> = below
            .iter()
            .map(|i| Expr::Column(Column::from(w.input.schema().qualified_field(*i))))
            .collect();
        for (_, _, values) in &asked {
            exprs.extend(values.iter().cloned());
        }
        let refs: Vec<&Expr> = exprs.iter().collect();
        let (input, found) = over_input(self, Arc::unwrap_or_clone(w.input.clone()), &refs)?;
        let mut found = found.into_iter();
        let mut passed = vec![];
        for i in &below {
            let of = found.next().unwrap_or(Of::Fixed(0));
            passed.push((*i, of));
        }
        let mut more = vec![];
        let n_win = w.window_expr.len();
        for (i, f, values) in &asked {
            let ofs: Vec<Of> = values
                .iter()
                .map(|_| found.next().unwrap_or(Of::Fixed(0)))
                .collect();
            if let Some(Of::Fixed(k)) = ofs.first()
                && ofs.iter().all(|o| matches!(o, Of::Fixed(j) if j == k))
            {
                places.insert(*i, Places::Fixed(*k));
                continue;
            }
            let name = f.fun.name().to_ascii_lowercase();
            let mut params: WindowFunctionParams = f.params.clone();
            let mut ofs = ofs.into_iter();
            let fun = if let Some(twin) = super::variance::places_twin(&name) {
                WindowFunctionDefinition::AggregateUDF(twin)
            } else if name == "sum" {
                let of = ofs.next().unwrap_or(Of::Fixed(0)).expr();
                params.args = vec![when_not_null(values[0].clone(), of)];
                params.distinct = false;
                WindowFunctionDefinition::AggregateUDF(
                    datafusion::functions_aggregate::min_max::max_udaf(),
                )
            } else {
                params.args[0] = ofs.next().unwrap_or(Of::Fixed(0)).expr();
                if params.args.len() == 3 {
                    params.args[2] = ofs.next().unwrap_or(Of::Fixed(0)).expr();
                }
                f.fun.clone()
            };
            places.insert(*i, Places::At(n_in + n_win + more.len()));
            more.push(
                Expr::WindowFunction(Box::new(WindowFunction { fun, params })).alias(self.name()),
            );
        }
        let e_in = input.schema().fields().len() - n_in;
        // Places of the input's columns, after reordering.
        let mut extra_in = 0;
        for (i, of) in passed {
            match of {
                Of::Fixed(k) => {
                    places.insert(i, Places::Fixed(k));
                }
                Of::Per(Expr::Column(c)) => {
                    let k = input.schema().index_of_column(&c)?;
                    places.insert(i, Places::At(n_in + n_win + more.len() + (k - n_in)));
                    extra_in += 1;
                }
                Of::Per(_) => {
                    places.insert(
                        i,
                        Places::Fixed(scale_of(w.input.schema().field(i).data_type())),
                    );
                }
            }
        }
        if more.is_empty() && extra_in == 0 {
            return Ok((LogicalPlan::Window(w), places));
        }
        let m = more.len();
        let mut window_expr = w.window_expr.clone();
        window_expr.extend(more);
        let plan = LogicalPlan::Window(Window::try_new(window_expr, Arc::new(input))?);
        // Window output: input (n_in + e_in), functions (n_win + m).
        let order: Vec<usize> = (0..n_in)
            .chain(n_in + e_in..n_in + e_in + n_win + m)
            .chain(n_in..n_in + e_in)
            .collect();
        Ok((reordered(plan, &order)?, places))
    }
}

/// `e` without the casts coercion put around it.
fn peeled(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => peeled(&c.expr),
        Expr::TryCast(c) => peeled(&c.expr),
        e => e,
    }
}

fn unaliased(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unaliased(&a.expr),
        e => e,
    }
}

/// How an aggregate takes its places, and its filter.
type Taken = (Aggregated, Option<Box<Expr>>);

/// How the places of an aggregate's result follow from its argument's.
enum Aggregated {
    /// `sum`: the most places of the rows it adds.
    Sum,
    /// `min` (`true`: ascending) and `max`: those of the row it picks.
    Picked(bool),
}

/// The kind, argument and filter of a `sum`, `min` or `max` aggregate.
fn aggregated(e: &Expr) -> Option<(Aggregated, Expr, Option<Box<Expr>>)> {
    let Expr::AggregateFunction(f) = unaliased(e) else {
        return None;
    };
    let kind = match f.func.name().to_ascii_lowercase().as_str() {
        "sum" => Aggregated::Sum,
        "min" => Aggregated::Picked(true),
        "max" => Aggregated::Picked(false),
        _ => return None,
    };
    (f.params.args.len() == 1).then(|| (kind, f.params.args[0].clone(), f.params.filter.clone()))
}

/// `places` where `value` is not NULL (what an aggregate adds up).
fn when_not_null(value: Expr, places: Expr) -> Expr {
    Expr::Case(Case {
        expr: None,
        when_then_expr: vec![(Box::new(value.is_not_null()), Box::new(places))],
        else_expr: None,
    })
}

/// `max(e)` over the rows an aggregate with `filter` reads.
fn largest(e: Expr, filter: Option<Box<Expr>>) -> Expr {
    Expr::AggregateFunction(AggregateFunction::new_udf(
        datafusion::functions_aggregate::min_max::max_udaf(),
        vec![e],
        false,
        filter,
        vec![],
        None,
    ))
}

/// The places `e` of the row whose `value` is the least (`ascending`) or
/// the greatest, of the rows an aggregate with `filter` reads.
fn of_picked(e: Expr, value: Expr, ascending: bool, filter: Option<Box<Expr>>) -> Expr {
    Expr::AggregateFunction(AggregateFunction::new_udf(
        datafusion::functions_aggregate::first_last::first_value_udaf(),
        vec![e],
        false,
        filter,
        vec![datafusion::logical_expr::SortExpr::new(
            value, ascending, false,
        )],
        None,
    ))
}

/// `plan`'s columns in `order` (positions of its output).
fn reordered(plan: LogicalPlan, order: &[usize]) -> Result<LogicalPlan> {
    let schema = plan.schema().clone();
    let exprs: Vec<Expr> = order
        .iter()
        .map(|k| Expr::Column(Column::from(schema.qualified_field(*k))))
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(plan),
    )?))
}

/// `plan` with each cast to a decimal the query wrote marked (a `TRY_CAST`
/// of the cast to the same type, a no-op), so that [`display_scales`] can
/// tell it from the casts the analyzer adds. Run before the analyzer.
pub fn mark_explicit_casts(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mark = |e: Expr, inputs: &[DFSchemaRef]| {
        crate::tree::transform_up(e, |e| match e {
            // `types::integers` gives `nullif` its first argument's type
            // with a cast before this runs: not one the query wrote. A
            // cast to another type is (`CAST(NULLIF(i, 0) AS
            // numeric(20,4))`).
            Expr::Cast(c) if typing_cast_of_nullif(&c, inputs) => {
                Ok(Transformed::no(Expr::Cast(c)))
            }
            Expr::Cast(c) if is_decimal(c.field.data_type()) => {
                let t = c.field.data_type().clone();
                Ok(Transformed::yes(Expr::TryCast(TryCast::new(
                    Box::new(Expr::Cast(c)),
                    t,
                ))))
            }
            e => Ok(Transformed::no(e)),
        })
    };
    crate::tree::transform_up_with_subqueries(plan, |node| {
        // The planner already cast each VALUES cell to its column's type.
        let values = matches!(node, LogicalPlan::Values(_));
        let inputs: Vec<DFSchemaRef> = node
            .inputs()
            .iter()
            .map(|i| Arc::clone(i.schema()))
            .collect();
        let names = NamePreserver::new(&node);
        crate::tree::map_expressions(node, |e| {
            let saved = names.save(&e);
            let marked = match e {
                Expr::Cast(Cast { expr, field }) if values => mark(*expr, &inputs)?
                    .update_data(|e| Expr::Cast(Cast::new_from_field(Box::new(e), field))),
                e => mark(e, &inputs)?,
            };
            Ok(marked.update_data(|e| saved.restore(e)))
        })
    })
    .map(|t| t.data)
}

/// Whether `c` casts a `nullif` to the type its first argument has once
/// coerced, as `types::integers` does (and so, when the type is not
/// known, assumed to be). `inputs` are the schemas of the node's inputs,
/// merged only for such a cast.
fn typing_cast_of_nullif(c: &Cast, inputs: &[DFSchemaRef]) -> bool {
    let Expr::ScalarFunction(f) = c.expr.as_ref() else {
        return false;
    };
    if f.func.name() != "nullif" {
        return false;
    }
    let Some(first) = f.args.first() else {
        return true;
    };
    let typed = |schema: &DFSchema| {
        super::numeric::coerced_type(first, schema)
            .map(|t| &t == c.field.data_type())
            .unwrap_or(true)
    };
    match inputs {
        [one] => typed(one),
        many => {
            let mut merged = DFSchema::empty();
            for s in many {
                merged.merge(s);
            }
            typed(&merged)
        }
    }
}

/// The places of `e`'s values over an input whose columns show their
/// type's scale, when they differ from `e`'s type's scale.
fn local(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    let scale = scale_of(&e.get_type(schema).ok()?);
    let mut own = |i: usize| Places::Fixed(scale_of(schema.field(i).data_type()));
    let mut exprs = Exprs {
        schema,
        input: &mut own,
        widened: None,
    };
    match exprs.of(e) {
        Of::Fixed(k) if k == scale => None,
        of => Some(of.expr()),
    }
}

/// `e` where a numeric is turned to text (a cast, `sluice_output_text`,
/// an argument of `concat`) or its `scale` is read, with the text written
/// or the scale read at the places `places` gives for that numeric (`None`:
/// its type's scale is right). `places` is called once for each such
/// numeric, in the order of a walk from the leaves up.
fn own_places(
    e: Expr,
    schema: &DFSchema,
    places: &mut dyn FnMut(&Expr) -> Option<Expr>,
) -> Result<Transformed<Expr>> {
    let numeric = |x: &Expr| x.get_type(schema).is_ok_and(|t| is_decimal(&t));
    let text = |x: Expr, places: Expr| {
        Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(text_udf()),
            vec![x, places],
        ))
    };
    crate::tree::transform_up(e, |e| match e {
        Expr::Cast(Cast { expr, field }) if is_text(field.data_type()) && numeric(&expr) => {
            Ok(match places(&expr) {
                // Of the cast's own string type, which what reads it
                // (`||`) was planned for.
                Some(p) if field.data_type() == &DataType::Utf8 => Transformed::yes(text(*expr, p)),
                Some(p) => Transformed::yes(Expr::Cast(Cast {
                    expr: Box::new(text(*expr, p)),
                    field,
                })),
                None => Transformed::no(Expr::Cast(Cast { expr, field })),
            })
        }
        Expr::ScalarFunction(f)
            if f.func.name() == super::text::OUTPUT_TEXT
                && f.args.len() == 1
                && numeric(&f.args[0]) =>
        {
            Ok(match places(&f.args[0]) {
                Some(p) => Transformed::yes(text(f.args[0].clone(), p)),
                None => Transformed::no(Expr::ScalarFunction(f)),
            })
        }
        // `scale(x)`: the places of each value.
        Expr::ScalarFunction(f)
            if f.func.name() == "scale" && f.args.len() == 1 && numeric(&f.args[0]) =>
        {
            Ok(match places(&f.args[0]) {
                Some(p) => Transformed::yes(p),
                None => Transformed::no(Expr::ScalarFunction(f)),
            })
        }
        Expr::ScalarFunction(mut f) if matches!(f.func.name(), "concat" | "concat_ws") => {
            let mut changed = false;
            for a in f.args.iter_mut() {
                if numeric(a)
                    && let Some(p) = places(a)
                {
                    let x = std::mem::replace(a, lit(0));
                    *a = text(x, p);
                    changed = true;
                }
            }
            let e = Expr::ScalarFunction(f);
            Ok(if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            })
        }
        e => Ok(Transformed::no(e)),
    })
}

/// `plan` with each numeric turned to text written at its values' own
/// places (see [`own_places`]): in a projection, from the places of its
/// input's columns (the input widened as for a result column: `'avg ' ||
/// avg(x)` reads the average's places below); elsewhere from the
/// expression alone.
fn text_casts(w: &mut Widen, plan: LogicalPlan) -> Result<LogicalPlan> {
    with_places(w, plan, own_places)
}

/// Rewrites each expression of `plan` with `rewrite`, given the places of
/// the numerics it asks about: in a projection, from the places of its
/// input's columns (the input widened as for a result column); elsewhere
/// from the expression alone.
fn with_places(w: &mut Widen, plan: LogicalPlan, rewrite: Rewrite) -> Result<LogicalPlan> {
    let own_places = rewrite;
    crate::tree::transform_up_with_subqueries(plan, |node| {
        let names = NamePreserver::new(&node);
        if let LogicalPlan::Projection(p) = &node {
            let schema = p.input.schema().clone();
            let mut numerics: Vec<Expr> = vec![];
            for e in &p.expr {
                own_places(e.clone(), &schema, &mut |x| {
                    numerics.push(x.clone());
                    None
                })?;
            }
            if numerics.is_empty() {
                return Ok(Transformed::no(node));
            }
            let refs: Vec<&Expr> = numerics.iter().collect();
            // An input this cannot widen: the places of the expression alone.
            if let Ok((input, found)) = over_input(w, p.input.as_ref().clone(), &refs) {
                let LogicalPlan::Projection(p) = node else {
                    unreachable!("matched above")
                };
                let mut found = found.into_iter().zip(numerics.iter().map(|x| {
                    x.get_type(&schema)
                        .map(|t| scale_of(&t))
                        .unwrap_or_default()
                }));
                let mut next = |_: &Expr| match found.next() {
                    Some((Of::Fixed(k), scale)) if k == scale => None,
                    Some((of, _)) => Some(of.expr()),
                    None => None,
                };
                let exprs = p
                    .expr
                    .into_iter()
                    .map(|e| {
                        let saved = names.save(&e);
                        Ok(saved.restore(own_places(e, &schema, &mut next)?.data))
                    })
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Transformed::yes(LogicalPlan::Projection(
                    Projection::try_new(exprs, Arc::new(input))?,
                )));
            }
        }
        let inputs = node.inputs();
        let schema = if inputs.len() == 1 {
            inputs[0].schema().clone()
        } else {
            node.schema().clone()
        };
        crate::tree::map_expressions(node, |e| {
            let saved = names.save(&e);
            let rewritten = own_places(e, &schema, &mut |x| local(x, &schema))?;
            Ok(rewritten.update_data(|e| saved.restore(e)))
        })
    })
    .map(|t| t.data)
}

/// An expression rewritten given the places of the numerics it asks
/// about (`None`: its type's scale), asked once each, leaves first.
type Rewrite =
    fn(Expr, &DFSchema, &mut dyn FnMut(&Expr) -> Option<Expr>) -> Result<Transformed<Expr>>;

/// `e` with each numeric quotient given the places of its operands where
/// they vary by row (an average below 1 has 20, from 1 up 16, at the one
/// scale of its column): PostgreSQL's quotient has at least its operands'
/// places.
fn divide_operands(
    e: Expr,
    schema: &DFSchema,
    places: &mut dyn FnMut(&Expr) -> Option<Expr>,
) -> Result<Transformed<Expr>> {
    crate::tree::transform_up(e, |e| match e {
        Expr::ScalarFunction(mut f) if f.func.name() == DIVIDE && f.args.len() == 3 => {
            let scale =
                |x: &Expr| lit(x.get_type(schema).map(|t| scale_of(&t)).unwrap_or_default());
            let (p1, p2) = (places(&f.args[0]), places(&f.args[1]));
            if p1.is_none() && p2.is_none() {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            }
            let p1 = p1.unwrap_or_else(|| scale(&f.args[0]));
            let p2 = p2.unwrap_or_else(|| scale(&f.args[1]));
            f.args.extend([p1, p2]);
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        e => Ok(Transformed::no(e)),
    })
}

/// `plan`, a query whose rows go to a client, with each numeric result
/// column whose places vary by row written as text at each value's own
/// places (see the module docs); unchanged when there is none. The text
/// columns are listed by position: their declared type is `numeric`.
pub fn display_scales(plan: LogicalPlan) -> Result<(LogicalPlan, Vec<usize>)> {
    let schema = plan.schema().clone();
    let wanted: BTreeSet<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.data_type(), DataType::Decimal128(..)))
        .map(|(i, _)| i)
        .collect();
    if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
        return Ok((plan, vec![]));
    }
    let mut widen = Widen { next: 0 };
    let plan = with_places(&mut widen, plan, divide_operands)?;
    let plan = text_casts(&mut widen, plan)?;
    if wanted.is_empty() {
        return Ok((plan, vec![]));
    }
    let original = plan.clone();
    let (widened, places) = match widen.widen(plan, &wanted) {
        Ok(w) => w,
        // A plan this does not know how to widen keeps its columns' scales.
        Err(_) => return Ok((original, vec![])),
    };
    let shown: Vec<(usize, Expr)> = wanted
        .iter()
        .filter_map(|i| {
            let scale = scale_of(schema.field(*i).data_type());
            match places.get(i)? {
                Places::Fixed(k) if *k == scale => None,
                Places::Fixed(k) => Some((*i, lit(*k))),
                Places::At(k) => Some((
                    *i,
                    Expr::Column(Column::from(widened.schema().qualified_field(*k))),
                )),
            }
        })
        .collect();
    if shown.is_empty() {
        return Ok((original, vec![]));
    }
    let at: Vec<usize> = shown.iter().map(|(i, _)| *i).collect();
    let mut shown: HashMap<usize, Expr> = shown.into_iter().collect();
    let exprs: Vec<Expr> = schema
        .iter()
        .enumerate()
        .map(|(i, (q, f))| {
            let column = Expr::Column(Column::new(q.cloned(), f.name()));
            match shown.remove(&i) {
                Some(places) => Expr::ScalarFunction(ScalarFunction::new_udf(
                    Arc::new(text_udf()),
                    vec![column, places],
                ))
                .alias_qualified(q.cloned(), f.name()),
                None => column,
            }
        })
        .collect();
    let plan = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(widened))?);
    Ok((plan, at))
}
