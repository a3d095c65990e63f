//! `x::numeric` without precision and scale. PostgreSQL's unconstrained
//! numeric keeps each value's own digits (`3::numeric` is `3`,
//! `1.50::numeric` is `1.50`); an Arrow decimal has one scale per column,
//! and DataFusion casts to `numeric(38,10)`, which prints `3.0000000000`.
//! The cast is rewritten to [`FUNCTION`], whose type follows its argument:
//! an integer becomes a decimal of scale 0 wide enough for it, a decimal
//! stays as it is, anything else (text, floats) becomes `numeric(38,10)`
//! as before. Simplification turns the call back into a plain cast to that
//! type, so the optimizer sees a cast.
//!
//! [`NumericScales`] gives the arithmetic on numerics PostgreSQL's scales
//! where DataFusion's differ: a quotient is PostgreSQL's, rounded at the
//! places it chooses per value and stored at scale 20 (see `quotient`;
//! DataFusion keeps the dividend's scale plus 4, truncated: `1::numeric /
//! 3` was `0.3333`), `round(x, d)` / `trunc(x, d)` have scale `d`
//! (DataFusion keeps the scale of `x` when it is smaller, or larger for
//! `trunc`), and `floor`, `ceil`, `round` and `trunc` of a numeric are
//! whole numbers of scale 0 with room for a carry.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::DEFAULT_NUMERIC;

/// The function a cast to `numeric` without a type modifier calls.
pub const FUNCTION: &str = "sluice_numeric";

/// The decimal a value of type `arg` becomes when cast to an unconstrained
/// `numeric`.
pub fn unconstrained(arg: &DataType) -> DataType {
    let digits = match arg {
        DataType::Int8 | DataType::UInt8 => 3,
        DataType::Int16 | DataType::UInt16 => 5,
        DataType::Int32 | DataType::UInt32 => 10,
        DataType::Int64 => 19,
        DataType::UInt64 => 20,
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => return arg.clone(),
        _ => return DataType::Decimal128(DEFAULT_NUMERIC.0, DEFAULT_NUMERIC.1),
    };
    DataType::Decimal128(digits, 0)
}

/// The precision and scale of a numeric literal written as text
/// (`'1.50'` is (3, 2)), when it is a plain decimal that fits 38 digits.
pub fn literal_digits(text: &str) -> Option<(u8, i8)> {
    let t = text.trim();
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let precision = (int.len() + frac.len()).max(1);
    (precision <= 38).then_some((precision as u8, frac.len() as i8))
}

/// The places PostgreSQL's numeric input gives a value written as `text`
/// (`'1.50'` 2, `'1.5e1'` 0, `'2e-3'` 3), or a float as its 15 significant
/// digits write it (`0.1` 1): each value's own, where the unconstrained
/// `numeric` it is cast to stores 10. `None` for what is not a number.
fn input_places(text: &str) -> Option<i32> {
    let t = text.trim();
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(at) => (&t[..at], t[at + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((frac.len() as i32).saturating_sub(exponent).max(0))
}

/// `sluice_numeric_input_places(x)`: the places of each value of `x` (text
/// or a float) cast to an unconstrained `numeric`, at most the 10 it is
/// stored with (see [`input_places`]).
pub const INPUT_PLACES: &str = "sluice_numeric_input_places";

#[derive(Debug, PartialEq, Eq, Hash)]
struct InputPlaces {
    signature: Signature,
}

/// [`INPUT_PLACES`] as a UDF.
pub fn input_places_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(InputPlaces {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl ScalarUDFImpl for InputPlaces {
    fn name(&self) -> &str {
        INPUT_PLACES
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, Int32Array};
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let stored = DEFAULT_NUMERIC.1 as i32;
        let out: Int32Array = if input.data_type().is_floating() {
            let floats = datafusion::arrow::compute::cast(&input, &DataType::Float64)?;
            floats
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .iter()
                .map(|v| {
                    v.filter(|v| v.is_finite())
                        .map(|v| float_places(v).min(stored))
                })
                .collect()
        } else {
            let text = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
            text.as_string::<i32>()
                .iter()
                .map(|v| v.and_then(input_places).map(|p| p.min(stored)))
                .collect()
        };
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(std::sync::Arc::new(out))
        })
    }
}

/// The places of a float written with 15 significant digits, its
/// mantissa's trailing zeros dropped (`1.50000000000000e0` is 1.5).
fn float_places(v: f64) -> i32 {
    let written = format!("{v:.14e}");
    let (mantissa, exponent) = written.split_once('e').unwrap_or((&written, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    input_places(&format!("{mantissa}e{exponent}")).unwrap_or(0)
}

/// [`FUNCTION`] as a UDF.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Unconstrained {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Unconstrained {
    signature: Signature,
}

impl ScalarUDFImpl for Unconstrained {
    fn name(&self) -> &str {
        FUNCTION
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(unconstrained(&types[0]))
    }
    fn simplify(&self, mut args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let arg = args.remove(0);
        match info.get_data_type(&arg) {
            // A float keeps its own digits, as in a cast with a precision.
            Ok(t @ (DataType::Float64 | DataType::Float32)) => {
                let like = ScalarValue::try_from(&unconstrained(&t))?;
                Ok(ExprSimplifyResult::Simplified(
                    from_float_udf().call(vec![arg, Expr::Literal(like, None)]),
                ))
            }
            // Text is read by PostgreSQL's numeric input (`'1e3'`).
            Ok(t @ (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)) => {
                let like = ScalarValue::try_from(&unconstrained(&t))?;
                Ok(ExprSimplifyResult::Simplified(
                    from_text_udf().call(vec![arg, Expr::Literal(like, None)]),
                ))
            }
            Ok(t) => Ok(ExprSimplifyResult::Simplified(Expr::Cast(Cast::new(
                Box::new(arg),
                unconstrained(&t),
            )))),
            Err(_) => Ok(ExprSimplifyResult::Original(vec![arg])),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let target = unconstrained(&args.args[0].data_type());
        let text = matches!(
            args.args[0].data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        if let DataType::Decimal128(precision, scale) = target
            && text
        {
            return from_text_udf().invoke_with_args(ScalarFunctionArgs {
                args: vec![
                    args.args[0].clone(),
                    ColumnarValue::Scalar(ScalarValue::Decimal128(None, precision, scale)),
                ],
                ..args
            });
        }
        if let DataType::Decimal128(precision, scale) = target
            && matches!(
                args.args[0].data_type(),
                DataType::Float64 | DataType::Float32
            )
        {
            return from_float_udf().invoke_with_args(ScalarFunctionArgs {
                args: vec![
                    args.args[0].clone(),
                    ColumnarValue::Scalar(ScalarValue::Decimal128(None, precision, scale)),
                ],
                ..args
            });
        }
        let options = datafusion::arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        };
        args.args[0].cast_to(&target, Some(&options))
    }
}

/// The fractional digits a quotient of numerics is stored with: the most
/// PostgreSQL gives a quotient between 0.0001 and 1 (it chooses per value,
/// at least 16 significant digits).
const QUOTIENT_SCALE: i8 = 20;

/// The places a product is rounded at when all of its own do not fit.
const PRODUCT_SCALE: i8 = 20;

/// The operands' precisions and scales when their product needs more than
/// 38 digits for its places and integer digits, with more places than
/// [`PRODUCT_SCALE`]: a product to compute in 256 bits.
type Operands = ((u8, i8), (u8, i8));

fn wide_product(a: Option<(u8, i8)>, b: Option<(u8, i8)>) -> Option<Operands> {
    let ((p1, s1), (p2, s2)) = (a?, b?);
    let places = i16::from(s1) + i16::from(s2);
    let integer = i16::from(p1) - i16::from(s1) + i16::from(p2) - i16::from(s2);
    (places > i16::from(PRODUCT_SCALE) && places + integer > 38).then_some(((p1, s1), (p2, s2)))
}

/// Numeric quotients, `round` and `trunc` at PostgreSQL's scales (see the
/// module docs). Runs before type coercion, which recomputes the schemas.
#[derive(Debug)]
pub struct NumericScales;

impl AnalyzerRule for NumericScales {
    fn name(&self) -> &str {
        "sluice_numeric_scales"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        super::rewrite_expressions(plan, scaled)
    }
}

/// The type of `e` once type coercion has run: this rule runs before it,
/// when a `CASE`, `coalesce` or `nullif` still has the type of its first
/// branch (`round(CASE ... THEN 12.5 ELSE n END)` was computed at
/// `numeric(4,1)` and failed with `22003` for `n = 1234.56`).
/// An expression that coercion cannot type has no type here: its type
/// before coercion may be narrower than its values (the first branch's).
pub(crate) fn coerced_type(e: &Expr, schema: &DFSchema) -> Result<DataType> {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;
    let plain = matches!(
        e,
        Expr::Column(_) | Expr::Literal(..) | Expr::Cast(_) | Expr::TryCast(_)
    );
    if !plain {
        let mut coercion = TypeCoercionRewriter::new(schema);
        // One instantiation, with DataFusion's own rewriter.
        #[allow(clippy::disallowed_methods)]
        let coerced = e.clone().rewrite(&mut coercion)?;
        return coerced.data.get_type(schema);
    }
    e.get_type(schema)
}

/// Precision and scale of `e` as a numeric operand: a decimal's own, an
/// integer's as [`unconstrained`] widens it.
fn decimal_of(e: &Expr, schema: &DFSchema) -> Option<(u8, i8)> {
    match coerced_type(e, schema).ok()? {
        DataType::Decimal128(p, s) if (0..=p as i8).contains(&s) => Some((p, s)),
        t @ (DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64) => match unconstrained(&t) {
            DataType::Decimal128(p, s) => Some((p, s)),
            _ => None,
        },
        _ => None,
    }
}

/// The value of a numeric or integer constant, as a decimal of its scale.
fn constant(e: &Expr) -> Option<(i128, i8)> {
    match e {
        Expr::Negative(inner) => constant(inner).map(|(v, s)| (-v, s)),
        // `10::numeric`
        Expr::ScalarFunction(f) if f.func.name() == FUNCTION && f.args.len() == 1 => {
            constant(&f.args[0])
        }
        Expr::Literal(v, _) => match v {
            ScalarValue::Decimal128(Some(v), _, s) => Some((*v, *s)),
            ScalarValue::Int64(Some(v)) => Some((*v as i128, 0)),
            ScalarValue::Int32(Some(v)) => Some((*v as i128, 0)),
            ScalarValue::Int16(Some(v)) => Some((*v as i128, 0)),
            _ => None,
        },
        _ => None,
    }
}

fn decimal(e: Expr, (p, s): (u8, i8)) -> Expr {
    Expr::Cast(Cast::new(Box::new(e), DataType::Decimal128(p, s)))
}

fn places(e: &Expr) -> Option<i8> {
    let Expr::Literal(v, _) = e else { return None };
    let d = match v {
        ScalarValue::Int64(Some(d)) => *d,
        ScalarValue::Int32(Some(d)) => *d as i64,
        _ => return None,
    };
    (0..=38).contains(&d).then_some(d as i8)
}

fn scaled(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match e {
        // A numeric logarithm, planned at fewer places, stored at
        // PostgreSQL's (see `numeric_log`).
        Expr::ScalarFunction(f)
            if matches!(f.func.name(), "ln" | "log" | "log10")
                && matches!(
                    coerced_type(&Expr::ScalarFunction(f.clone()), schema),
                    Ok(DataType::Decimal128(_, s)) if s != super::numeric_log::SCALE
                ) =>
        {
            match super::logarithms::wide_udf(f.func.name()) {
                Some(wide) => Ok(Transformed::yes(Expr::ScalarFunction(
                    datafusion::logical_expr::expr::ScalarFunction::new_udf(
                        std::sync::Arc::new(wide),
                        f.args,
                    ),
                ))),
                None => Ok(Transformed::no(Expr::ScalarFunction(f))),
            }
        }
        // A product of numerics whose places and integer digits together
        // need more than a decimal's 38 digits (`avg(x) * avg(y)`, each of
        // 16 places): DataFusion kept every place and overflowed at 10^6.
        // Computed exactly in 256 bits and rounded at 20 places.
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Multiply,
            right,
        }) => {
            let Some(((p1, s1), (p2, s2))) =
                wide_product(decimal_of(&left, schema), decimal_of(&right, schema))
            else {
                return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr::new(
                    left,
                    Operator::Multiply,
                    right,
                ))));
            };
            let wide = |e: Expr, p: u8, s: i8| {
                Expr::Cast(Cast::new(Box::new(e), DataType::Decimal256(p, s)))
            };
            let product = Expr::BinaryExpr(BinaryExpr::new(
                Box::new(wide(*left, p1, s1)),
                Operator::Multiply,
                Box::new(wide(*right, p2, s2)),
            ));
            Ok(Transformed::yes(decimal(product, (38, PRODUCT_SCALE))))
        }
        // A comparison of numerics whose integer digits and places
        // together need more than 38 digits (`avg(i) >= avg(big)`, 20 and
        // 17 places): DataFusion compares them as a decimal of 38 digits
        // that the larger value overflows (22003). Compared in 256 bits.
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if super::is_comparison(&op) => {
            let is_decimal =
                |e: &Expr| matches!(coerced_type(e, schema), Ok(DataType::Decimal128(..)));
            let wide = match (decimal_of(&left, schema), decimal_of(&right, schema)) {
                (Some((p1, s1)), Some((p2, s2))) if is_decimal(&left) || is_decimal(&right) => {
                    let scale = s1.max(s2);
                    let integer = (p1 as i16 - s1 as i16).max(p2 as i16 - s2 as i16);
                    (integer + scale as i16 > 38).then_some(((integer + scale as i16) as u8, scale))
                }
                _ => None,
            };
            let Some((p, s)) = wide else {
                return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr::new(
                    left, op, right,
                ))));
            };
            let wide = |e: Expr| Expr::Cast(Cast::new(Box::new(e), DataType::Decimal256(p, s)));
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(wide(*left)),
                op,
                Box::new(wide(*right)),
            ))))
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Divide,
            right,
        }) if matches!(coerced_type(&left, schema), Ok(DataType::Decimal128(..)))
            || matches!(coerced_type(&right, schema), Ok(DataType::Decimal128(..))) =>
        {
            let (Some((p1, s1)), Some((p2, s2))) =
                (decimal_of(&left, schema), decimal_of(&right, schema))
            else {
                return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr::new(
                    left,
                    Operator::Divide,
                    right,
                ))));
            };
            // Room for the quotient's integer digits: as many as a
            // divisor of the smallest value its scale allows leaves, but
            // never fewer places than PostgreSQL's for a quotient below 1
            // (a quotient of more than 18 integer digits is then 22003:
            // `sum(x) / avg(y)` was rounded at 10 places, a wrong value).
            let integer = ((p1 - s1 as u8) as i16 + s2 as i16).min(38 - QUOTIENT_SCALE as i16);
            let scale = (QUOTIENT_SCALE.max(s1).max(s2) as i16).min(38 - integer);
            if scale < s1 as i16 {
                return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr::new(
                    left,
                    Operator::Divide,
                    right,
                ))));
            }
            // Of two constants: stored at its own places, which the
            // constant it is folded into keeps.
            let scale = match (constant(&left), constant(&right)) {
                (Some((a, _)), Some((b, _))) if b != 0 => {
                    (super::quotient::places(a, s1, b, s2) as i16).min(scale)
                }
                _ => scale,
            };
            // Each value at PostgreSQL's places (see `quotient`).
            Ok(Transformed::yes(super::quotient::divide(
                decimal(*left, (p1, s1)),
                decimal(*right, (p2, s2)),
                38,
                scale as i8,
            )))
        }
        // floor / ceil / round / trunc of a numeric: a whole number, at
        // scale 0 as PostgreSQL gives it, with room for the digit a carry
        // adds (`ceil(9999.99)` is 10000; DataFusion kept `numeric(6,2)`
        // and overflowed, and printed `1.00` for 1).
        Expr::ScalarFunction(mut f)
            if matches!(f.func.name(), "floor" | "ceil" | "round" | "trunc")
                && f.args.len() == 1 =>
        {
            let Ok(DataType::Decimal128(p, s)) = coerced_type(&f.args[0], schema) else {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            };
            if s <= 0 || p >= 38 {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            }
            let integer = p - s as u8;
            let carry = u8::from(f.func.name() != "trunc");
            let arg = std::mem::replace(&mut f.args[0], Expr::Literal(ScalarValue::Null, None));
            f.args[0] = decimal(arg, (p + 1, s));
            Ok(Transformed::yes(decimal(
                Expr::ScalarFunction(f),
                ((integer + carry).max(1), 0),
            )))
        }
        Expr::ScalarFunction(mut f)
            if matches!(f.func.name(), "round" | "trunc") && f.args.len() == 2 =>
        {
            let (Some((p, s)), Some(d)) = (decimal_of(&f.args[0], schema), places(&f.args[1]))
            else {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            };
            // A value of more integer digits than the scale leaves room
            // for is 22003 (`round(sum(bigint), 2)` was shown without
            // its places).
            let integer = (p - s as u8).min(38 - d as u8);
            match coerced_type(&f.args[0], schema) {
                Ok(DataType::Decimal128(..)) => {}
                // An integer is a numeric here, as PostgreSQL casts it
                // (there is no `round(integer, integer)`): DataFusion's
                // answered in floating point (`trunc(i8, 1)` of a large
                // bigint lost digits).
                Ok(t) if t.is_integer() => {
                    let arg =
                        std::mem::replace(&mut f.args[0], Expr::Literal(ScalarValue::Null, None));
                    f.args[0] = decimal(arg, (p, s));
                    if d == s {
                        return Ok(Transformed::yes(Expr::ScalarFunction(f)));
                    }
                }
                _ => return Ok(Transformed::no(Expr::ScalarFunction(f))),
            }
            if d == s {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            }
            let target = ((integer + d as u8).max(1), d);
            if d > s {
                // Both keep the scale of their argument: the result is
                // widened. Not the argument: a column of a derived table
                // has, before coercion, the type of its CASE's first
                // branch, which may have fewer digits than its values
                // (the argument was rounded to them before `trunc`).
                Ok(Transformed::yes(decimal(Expr::ScalarFunction(f), target)))
            } else if f.func.name() == "trunc" {
                // `round` already answers at scale `d`; `trunc` keeps `s`.
                Ok(Transformed::yes(decimal(Expr::ScalarFunction(f), target)))
            } else {
                Ok(Transformed::no(Expr::ScalarFunction(f)))
            }
        }
        e => Ok(Transformed::no(e)),
    }
}

/// The result field of a function standing in for a cast: its return type,
/// nullable as its first argument is (as the cast it replaces).
fn cast_field(
    f: &dyn ScalarUDFImpl,
    name: &str,
    args: &datafusion::logical_expr::ReturnFieldArgs,
) -> Result<datafusion::arrow::datatypes::FieldRef> {
    let types: Vec<DataType> = args
        .arg_fields
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    Ok(std::sync::Arc::new(
        datafusion::arrow::datatypes::Field::new(
            name,
            f.return_type(&types)?,
            args.arg_fields[0].is_nullable(),
        ),
    ))
}

/// The function a cast from `numeric` to `float8` or `real` calls.
pub const TO_FLOAT: &str = "sluice_numeric_to_float";

/// `v × 10^-scale` as the nearest `f64`, as PostgreSQL's cast (which reads
/// the numeric's text) gives it. Arrow's cast divides by `10^scale` in
/// floating point, which rounds twice: `1e15::float8` was
/// `999999999999999.9`.
pub fn decimal_to_f64(mut v: i128, mut scale: i8) -> f64 {
    const EXACT: u128 = 1 << 53;
    // A column's scale is often wider than its values' digits
    // (`numeric(38,16)`): trailing zeros cost the fast path nothing.
    while scale > 0 && v != 0 && v % 10 == 0 {
        v /= 10;
        scale -= 1;
    }
    const POWERS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    // Both operands exact, one correctly rounded operation.
    if v.unsigned_abs() <= EXACT && scale.unsigned_abs() <= 22 {
        let power = POWERS[scale.unsigned_abs() as usize];
        return if scale >= 0 {
            v as f64 / power
        } else {
            v as f64 * power
        };
    }
    scientific(v, scale).parse().unwrap_or(f64::NAN)
}

/// `v × 10^-scale` as text a float parser reads exactly (`15e-1`).
fn scientific(v: impl std::fmt::Display, scale: i8) -> String {
    format!("{v}e{}", -i32::from(scale))
}

/// A numeric column as `float8` ([`decimal_to_f64`]) or `real` (read from
/// the text, so rounded once; 22003 beyond real's range either way, as in
/// PostgreSQL).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToFloat {
    signature: Signature,
}

impl ScalarUDFImpl for ToFloat {
    fn name(&self) -> &str {
        TO_FLOAT
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args.get(1) {
            Some(DataType::Float32) => DataType::Float32,
            _ => DataType::Float64,
        })
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        cast_field(self, TO_FLOAT, &args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, Float32Array, Float64Array};
        use datafusion::arrow::datatypes::{Decimal128Type, Decimal256Type};
        let real = *args.return_field.data_type() == DataType::Float32;
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(args.number_rows)?;
        let text = |i: usize| -> Option<String> {
            match input.data_type() {
                DataType::Decimal128(_, s) => Some(scientific(
                    input.as_primitive::<Decimal128Type>().value(i),
                    *s,
                )),
                DataType::Decimal256(_, s) => Some(scientific(
                    input.as_primitive::<Decimal256Type>().value(i),
                    *s,
                )),
                _ => None,
            }
        };
        let out: datafusion::arrow::array::ArrayRef = if real {
            let mut values = Vec::with_capacity(input.len());
            for i in 0..input.len() {
                if input.is_null(i) {
                    values.push(None);
                    continue;
                }
                let Some(t) = text(i) else {
                    return datafusion::common::exec_err!("{TO_FLOAT} of a non-numeric");
                };
                let f: f32 = t.parse().unwrap_or(f32::NAN);
                // Beyond real's range either way: too large, or a nonzero
                // value that reads as 0.
                let zero = t.trim_start_matches('-').starts_with("0e");
                if f.is_infinite() || (f == 0.0 && !zero) {
                    let mut shown = String::new();
                    if let DataType::Decimal128(_, s) = input.data_type() {
                        super::output::decimal_text(
                            input.as_primitive::<Decimal128Type>().value(i),
                            *s,
                            &mut shown,
                        );
                    } else {
                        shown = t;
                    }
                    return Err(crate::error::Error::new(
                        crate::error::ErrorKind::NumericOutOfRange,
                        format!("\"{shown}\" is out of range for type real"),
                    )
                    .into());
                }
                values.push(Some(f));
            }
            std::sync::Arc::new(Float32Array::from(values))
        } else {
            match input.data_type() {
                DataType::Decimal128(_, s) => {
                    let s = *s;
                    let a = input.as_primitive::<Decimal128Type>();
                    std::sync::Arc::new(a.unary::<_, datafusion::arrow::datatypes::Float64Type>(
                        |v| decimal_to_f64(v, s),
                    ))
                }
                _ => {
                    let values: Float64Array = (0..input.len())
                        .map(|i| {
                            if input.is_null(i) {
                                return Ok(None);
                            }
                            match text(i) {
                                Some(t) => Ok(Some(t.parse().unwrap_or(f64::NAN))),
                                None => {
                                    datafusion::common::exec_err!("{TO_FLOAT} of a non-numeric")
                                }
                            }
                        })
                        .collect::<Result<_>>()?;
                    std::sync::Arc::new(values)
                }
            }
        };
        super::columnar(out, scalar)
    }
}

/// [`TO_FLOAT`]: `sluice_numeric_to_float(x, <a value of the float type>)`.
pub fn to_float_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToFloat {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// The function a cast from `float8` or `real` to `numeric(p,s)` calls.
pub const FROM_FLOAT: &str = "sluice_float_to_numeric";

/// `v` as `numeric(precision, scale)` the way PostgreSQL casts it: the
/// float's shortest faithful decimal of `digits` significant digits (15 for
/// `float8`, 6 for `real`, as `float8_numeric` prints with `DBL_DIG`), then
/// rounded half away from zero to `scale`. Arrow multiplies by `10^scale` in
/// floating point, which shows the binary noise: `1e20::float8::numeric(38,15)`
/// was `99999999999999996863.366107917975552`.
pub fn float_to_decimal(v: f64, digits: usize, precision: u8, scale: i8) -> Result<i128> {
    let overflow = |detail: String| -> datafusion::error::DataFusionError {
        crate::error::Error::new(
            crate::error::ErrorKind::NumericOutOfRange,
            "numeric field overflow",
        )
        .with_detail(detail)
        .into()
    };
    if v.is_infinite() {
        return Err(overflow(format!(
            "A field with precision {precision}, scale {scale} cannot hold an infinite value."
        )));
    }
    if v.is_nan() {
        return Err(overflow(format!(
            "A field with precision {precision}, scale {scale} cannot hold NaN here (numeric \
             values are decimals without NaN)."
        )));
    }
    // d.ddddde±x with `digits` significant digits.
    let text = format!("{:.*e}", digits - 1, v);
    let (mantissa, exponent) = text.split_once('e').expect("exponent form");
    let negative = mantissa.starts_with('-');
    let whole: i128 = mantissa
        .chars()
        .filter(char::is_ascii_digit)
        .fold(0, |n, c| n * 10 + i128::from(c as u8 - b'0'));
    let exponent: i32 = exponent.parse().expect("an exponent");
    // value = whole × 10^(exponent - (digits - 1)); unscaled = value × 10^scale.
    let shift = exponent - (digits as i32 - 1) + i32::from(scale);
    scaled_decimal(negative, whole, shift, precision, scale)
}

/// `±whole × 10^shift` rounded half away from zero to a whole number, the
/// unscaled value of a `numeric(precision, scale)`; `22003 numeric field
/// overflow` when it does not fit.
fn scaled_decimal(
    negative: bool,
    whole: i128,
    shift: i32,
    precision: u8,
    scale: i8,
) -> Result<i128> {
    let too_big = || -> datafusion::error::DataFusionError {
        let digits = i32::from(precision) - i32::from(scale);
        let bound = if digits > 0 {
            format!("10^{digits}")
        } else {
            "1".to_string()
        };
        crate::error::Error::new(
            crate::error::ErrorKind::NumericOutOfRange,
            "numeric field overflow",
        )
        .with_detail(format!(
            "A field with precision {precision}, scale {scale} must round to an absolute value \
             less than {bound}."
        ))
        .into()
    };
    let magnitude = if whole == 0 {
        0
    } else if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|p| whole.checked_mul(p))
            .ok_or_else(too_big)?
    } else if -shift > 38 {
        0
    } else {
        let p = 10i128.pow((-shift) as u32);
        let (q, r) = (whole / p, whole % p);
        // Half away from zero, as numeric rounds.
        if r >= p - r { q + 1 } else { q }
    };
    if precision < 39 && magnitude >= 10i128.pow(u32::from(precision)) {
        return Err(too_big());
    }
    Ok(if negative { -magnitude } else { magnitude })
}

/// Text in PostgreSQL's numeric input form (`-1.5`, `.5`, `12.`, `4.2e9`,
/// `1.2E-5`, spaces around) as the unscaled value of a
/// `numeric(precision, scale)`, rounded half away from zero; `None` for
/// text that is not a number. Digits past the 38th significant one are
/// dropped.
pub fn text_to_decimal(text: &str, precision: u8, scale: i8) -> Option<Result<i128>> {
    let t = text.trim();
    let (negative, t) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(at) => (&t[..at], t[at + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // The significant digits, at most 38 of them, read without copying
    // the text (a COPY of a numeric column reads every value here).
    let (mut whole, mut kept, mut dropped) = (0i128, 0usize, 0i32);
    for b in int.bytes().chain(frac.bytes()) {
        if kept == 0 && b == b'0' {
            continue;
        }
        if kept == 38 {
            dropped += 1;
            continue;
        }
        whole = whole * 10 + i128::from(b - b'0');
        kept += 1;
    }
    let shift = exponent
        .checked_sub(frac.len() as i32)?
        .checked_add(dropped)?
        .checked_add(i32::from(scale))?;
    Some(scaled_decimal(negative, whole, shift, precision, scale))
}

/// The function a cast from text to `numeric(p,s)` calls: Arrow's reads no
/// exponent (`'4.2e9'::numeric` was `22P02`).
pub const FROM_TEXT: &str = "sluice_text_to_numeric";

/// What a cast to `numeric(p,s)` reads.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Source {
    /// A float ([`float_to_decimal`]).
    Float,
    /// Text ([`text_to_decimal`]).
    Text,
}

/// A float or text column as `numeric(p,s)`: `f(x, <a NULL numeric(p,s)>)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToNumeric {
    from: Source,
    signature: Signature,
}

impl ScalarUDFImpl for ToNumeric {
    fn name(&self) -> &str {
        match self.from {
            Source::Float => FROM_FLOAT,
            Source::Text => FROM_TEXT,
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    /// The type of the second argument, a NULL of the target type.
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.get(1) {
            Some(t @ DataType::Decimal128(..)) => Ok(t.clone()),
            _ => datafusion::common::plan_err!("{} needs a numeric(p,s) target", self.name()),
        }
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        cast_field(self, self.name(), &args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, Decimal128Array};
        use datafusion::arrow::datatypes::{Float32Type, Float64Type};
        let DataType::Decimal128(precision, scale) = *args.return_field.data_type() else {
            return datafusion::common::exec_err!("{} needs a numeric(p,s) target", self.name());
        };
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let mut input = args.args[0].to_array(args.number_rows)?;
        if self.from == Source::Text {
            input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        }
        let convert = |i: usize| -> Result<i128> {
            match (self.from, input.data_type()) {
                (Source::Float, DataType::Float64) => float_to_decimal(
                    input.as_primitive::<Float64Type>().value(i),
                    15,
                    precision,
                    scale,
                ),
                // A real's own 6 digits, not those of its double.
                (Source::Float, DataType::Float32) => {
                    let f = input.as_primitive::<Float32Type>().value(i);
                    let v = format!("{:.5e}", f).parse().unwrap_or(f64::NAN);
                    float_to_decimal(v, 6, precision, scale)
                }
                (Source::Text, _) => {
                    let text = input.as_string::<i32>().value(i);
                    text_to_decimal(text, precision, scale)
                        .unwrap_or_else(|| Err(not_a_number(text).into()))
                }
                _ => datafusion::common::exec_err!("{FROM_FLOAT} of a non-float"),
            }
        };
        let out: Decimal128Array = (0..input.len())
            .map(|i| (!input.is_null(i)).then(|| convert(i)).transpose())
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(precision, scale)?;
        let out: datafusion::arrow::array::ArrayRef = std::sync::Arc::new(out);
        super::columnar(out, scalar)
    }
}

/// The error of text that is not a decimal number: NaN and infinity,
/// which Sluice's numeric cannot hold, are 22003; anything else 22P02.
fn not_a_number(text: &str) -> crate::error::Error {
    let word = text.trim().trim_start_matches(['+', '-']).to_lowercase();
    if ["nan", "inf", "infinity"].contains(&word.as_str()) {
        crate::error::Error::new(
            crate::error::ErrorKind::NumericOutOfRange,
            format!("numeric field overflow: {text} is not a decimal number"),
        )
    } else {
        crate::error::Error::new(
            crate::error::ErrorKind::InvalidText,
            format!("invalid input syntax for type numeric: \"{text}\""),
        )
    }
}

/// [`FROM_TEXT`]: `sluice_text_to_numeric(text, <a NULL numeric(p,s)>)`.
pub fn from_text_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToNumeric {
        from: Source::Text,
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// [`FROM_FLOAT`]: `sluice_float_to_numeric(x, <a NULL numeric(p,s)>)`.
pub fn from_float_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToNumeric {
        from: Source::Float,
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn float_to_numeric_keeps_the_floats_digits() {
        // PostgreSQL: 15 significant digits of a float8, then the scale.
        assert_eq!(
            float_to_decimal(1e20, 15, 38, 15).unwrap(),
            100_000_000_000_000_000_000_000_000_000_000_000
        );
        assert_eq!(float_to_decimal(0.1, 15, 10, 5).unwrap(), 10_000);
        assert_eq!(float_to_decimal(2.675, 15, 10, 2).unwrap(), 268);
        assert_eq!(float_to_decimal(-2.5, 15, 10, 0).unwrap(), -3);
        assert_eq!(
            float_to_decimal(1.0 / 3.0, 15, 38, 20).unwrap(),
            33_333_333_333_333_300_000
        );
        assert_eq!(float_to_decimal(1e-30, 15, 10, 5).unwrap(), 0);
        assert_eq!(float_to_decimal(0.0, 15, 10, 5).unwrap(), 0);
        // A real keeps its own 6 digits.
        let third: f64 = format!("{:.5e}", 1.0f32 / 3.0).parse().unwrap();
        assert_eq!(float_to_decimal(third, 6, 10, 8).unwrap(), 33_333_300);
        let e = float_to_decimal(1234.5, 15, 5, 2).unwrap_err().to_string();
        assert!(e.contains("numeric field overflow"), "{e}");
        let e = crate::error::Error::from(float_to_decimal(1.5, 15, 3, 3).unwrap_err());
        assert!(
            e.detail
                .as_deref()
                .is_some_and(|d| d.ends_with("less than 1.")),
            "{e:?}"
        );
        assert!(float_to_decimal(0.5, 15, 3, 3).is_ok());
        assert!(float_to_decimal(f64::INFINITY, 15, 10, 2).is_err());
        assert!(float_to_decimal(f64::NAN, 15, 10, 2).is_err());
        assert!(float_to_decimal(1e300, 15, 38, 0).is_err());
    }

    #[test]
    fn text_to_numeric_reads_exponents_and_rounds_half_away() {
        let d = |t: &str, p: u8, s: i8| text_to_decimal(t, p, s).map(|r| r.unwrap());
        assert_eq!(d("4.2e9", 38, 10), Some(42_000_000_000_000_000_000));
        assert_eq!(d("1.2E-5", 38, 10), Some(120_000));
        assert_eq!(d(" -1.25 ", 10, 1), Some(-13));
        assert_eq!(d(".5", 10, 2), Some(50));
        assert_eq!(d("12.", 10, 0), Some(12));
        assert_eq!(d("+7e0", 10, 0), Some(7));
        assert_eq!(d("1e-400", 10, 2), Some(0));
        assert_eq!(d("0.000", 10, 2), Some(0));
        for bad in ["", ".", "e5", "1e", "1.2.3", "abc", "1e5x", "--1", "NaN"] {
            assert!(text_to_decimal(bad, 10, 2).is_none(), "{bad}");
        }
        assert!(text_to_decimal("1e9", 10, 2).unwrap().is_err());
    }

    #[test]
    fn numeric_to_float_rounds_once() {
        assert_eq!(decimal_to_f64(1, -15), 1e15);
        assert_eq!(decimal_to_f64(1, -100), 1e100);
        assert_eq!(
            decimal_to_f64(-71_234_567_890_123_456_789, 20),
            -0.712_345_678_901_234_6
        );
        assert_eq!(
            decimal_to_f64(-712_345_678_901_234_567_890, 20),
            -7.123_456_789_012_345
        );
        assert_eq!(decimal_to_f64(15, 1), 1.5);
        assert_eq!(decimal_to_f64(0, 10), 0.0);
        assert_eq!(decimal_to_f64(i128::MAX, 0), 1.7014118346046923e38);
    }

    use super::*;

    #[test]
    fn input_places_are_postgres_display_scales() {
        assert_eq!(input_places("1.50"), Some(2));
        assert_eq!(input_places(" -3 "), Some(0));
        assert_eq!(input_places("1.5e1"), Some(0));
        assert_eq!(input_places("2e-3"), Some(3));
        assert_eq!(input_places(".25"), Some(2));
        assert_eq!(input_places("abc"), None);
        assert_eq!(float_places(0.1), 1);
        assert_eq!(float_places(2.5), 1);
        assert_eq!(float_places(100.0), 0);
        assert_eq!(float_places(1.0 / 3.0), 15);
        assert_eq!(float_places(1e-5), 5);
    }

    #[test]
    fn literal_digits_are_the_written_ones() {
        assert_eq!(literal_digits("1.50"), Some((3, 2)));
        assert_eq!(literal_digits(" -007 "), Some((1, 0)));
        assert_eq!(literal_digits("0.001"), Some((3, 3)));
        assert_eq!(literal_digits(".5"), Some((1, 1)));
        assert_eq!(literal_digits("12."), Some((2, 0)));
        assert_eq!(literal_digits("0"), Some((1, 0)));
        assert_eq!(literal_digits("1e3"), None);
        assert_eq!(literal_digits("."), None);
        assert_eq!(literal_digits(""), None);
        assert_eq!(literal_digits("NaN"), None);
        assert_eq!(literal_digits(&"9".repeat(39)), None);
    }

    #[test]
    fn integers_keep_their_digits_and_decimals_their_scale() {
        assert_eq!(unconstrained(&DataType::Int32), DataType::Decimal128(10, 0));
        assert_eq!(unconstrained(&DataType::Int64), DataType::Decimal128(19, 0));
        assert_eq!(
            unconstrained(&DataType::Decimal128(12, 2)),
            DataType::Decimal128(12, 2)
        );
        assert_eq!(
            unconstrained(&DataType::Float64),
            DataType::Decimal128(38, 10)
        );
    }
}
