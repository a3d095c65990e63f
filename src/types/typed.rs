//! Types Sluice keeps as text with a rule on the text: `uuid`, `json`,
//! `jsonb`. A cast to one (`x::uuid`) and every value stored into such a
//! column passes through its input function, which checks the text (22P02
//! when it does not read) and normalises it; the JSON operators read it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use super::jsonb;
use crate::error::{Error, ErrorKind};

/// `text` as a JSON document, or PostgreSQL's error (which names `json`
/// for jsonb too).
fn parse_json(text: &str) -> std::result::Result<jsonb::Value, Error> {
    jsonb::parse(text).ok_or_else(|| {
        Error::new(ErrorKind::InvalidText, "invalid input syntax for type json")
            .with_detail(format!("The input \"{text}\" is not valid JSON."))
    })
}

/// A type kept as checked text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextType {
    Uuid,
    Json,
    Jsonb,
}

impl TextType {
    /// The type a PostgreSQL type name (as `PgType` spells it) is, if any.
    pub fn of(name: &str) -> Option<TextType> {
        Some(match name {
            "uuid" => TextType::Uuid,
            "json" => TextType::Json,
            "jsonb" => TextType::Jsonb,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TextType::Uuid => "uuid",
            TextType::Json => "json",
            TextType::Jsonb => "jsonb",
        }
    }

    /// The name of the input function a cast to this type calls.
    pub fn function(self) -> &'static str {
        match self {
            TextType::Uuid => "sluice_uuid_in",
            TextType::Json => "sluice_json_in",
            TextType::Jsonb => "sluice_jsonb_in",
        }
    }

    /// The type whose input function `name` is.
    pub fn of_function(name: &str) -> Option<TextType> {
        [TextType::Uuid, TextType::Json, TextType::Jsonb]
            .into_iter()
            .find(|t| t.function() == name)
    }

    /// `text` read as a value of this type: its stored text.
    pub fn input(self, text: &str) -> std::result::Result<String, Error> {
        match self {
            TextType::Uuid => super::uuid::canonical(text.trim()).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidText,
                    format!("invalid input syntax for type uuid: \"{text}\""),
                )
            }),
            TextType::Json => parse_json(text).map(|_| text.to_string()),
            TextType::Jsonb => parse_json(text).map(|v| jsonb::jsonb_text(&v)),
        }
    }

    /// A whole column read as this type.
    pub fn input_array(self, input: &ArrayRef) -> Result<ArrayRef> {
        let strings = cast(input, &DataType::Utf8)?;
        let strings = strings.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(strings.len(), strings.value_data().len());
        for v in strings.iter() {
            match v {
                None => out.append_null(),
                Some(s) => out.append_value(self.input(s)?),
            }
        }
        Ok(Arc::new(out.finish()))
    }

    /// The input function as a UDF.
    pub fn udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(Input {
            ty: self,
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Input {
    ty: TextType,
    signature: Signature,
}

impl ScalarUDFImpl for Input {
    fn name(&self) -> &str {
        self.ty.function()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match &args.args[0] {
            ColumnarValue::Scalar(s) => {
                let s = s.cast_to(&DataType::Utf8)?;
                Ok(ColumnarValue::Scalar(match s {
                    ScalarValue::Utf8(Some(t)) => ScalarValue::Utf8(Some(self.ty.input(&t)?)),
                    _ => ScalarValue::Utf8(None),
                }))
            }
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(self.ty.input_array(a)?)),
        }
    }
}

/// Which JSON operator a function implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonOp {
    /// `->`: the element, as JSON.
    Get,
    /// `->>`: the element, as text.
    GetText,
    /// `#>`: the element at a path, as JSON.
    Path,
    /// `#>>`: the element at a path, as text.
    PathText,
}

impl JsonOp {
    pub const ALL: [JsonOp; 4] = [JsonOp::Get, JsonOp::GetText, JsonOp::Path, JsonOp::PathText];

    pub fn function(self) -> &'static str {
        match self {
            JsonOp::Get => "json_get",
            JsonOp::GetText => "json_get_text",
            JsonOp::Path => "json_get_path",
            JsonOp::PathText => "json_get_path_text",
        }
    }

    fn text(self) -> bool {
        matches!(self, JsonOp::GetText | JsonOp::PathText)
    }

    pub fn udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(JsonGet {
            op: self,
            signature: Signature::any(2, Volatility::Immutable),
        })
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonGet {
    op: JsonOp,
    signature: Signature,
}

/// A `#>` path given as text: `'{a,0,"b c"}'`.
fn path_of_text(t: &str) -> Vec<String> {
    let inner = t.trim().trim_start_matches('{').trim_end_matches('}');
    if inner.trim().is_empty() {
        return vec![];
    }
    inner
        .split(',')
        .map(|p| p.trim().trim_matches('"').to_string())
        .collect()
}

impl ScalarUDFImpl for JsonGet {
    fn name(&self) -> &str {
        self.op.function()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        make_scalar_function(|arrays: &[ArrayRef]| self.get(arrays), vec![])(&args.args)
    }
}

impl JsonGet {
    /// The value of each document's key or path.
    fn get(&self, arrays: &[ArrayRef]) -> Result<ArrayRef> {
        let n = arrays[0].len();
        let docs = cast(&arrays[0], &DataType::Utf8)?;
        let docs = docs.as_string::<i32>();
        let key = &arrays[1];
        // The key column read once: a list of path steps, integer indexes
        // or text keys.
        let list = matches!(key.data_type(), DataType::List(_));
        let ints = key
            .data_type()
            .is_integer()
            .then(|| cast(&key, &DataType::Int64))
            .transpose()?;
        let texts = (!list && ints.is_none())
            .then(|| cast(&key, &DataType::Utf8))
            .transpose()?;
        let mut out = StringBuilder::new();
        for row in 0..n {
            if docs.is_null(row) || key.is_null(row) {
                out.append_null();
                continue;
            }
            let src = docs.value(row);
            // Keys, or the one array index of `->` / `->>` with an integer.
            let (keys, index): (Vec<String>, Option<i64>) = if list {
                let items = cast(&key.as_list::<i32>().value(row), &DataType::Utf8)?;
                let items = items.as_string::<i32>();
                let steps = items.iter().map(|s| s.unwrap_or("").to_string());
                (steps.collect(), None)
            } else if let Some(ints) = &ints {
                (vec![], Some(ints.as_primitive::<Int64Type>().value(row)))
            } else {
                let s = texts
                    .as_ref()
                    .expect("text keys")
                    .as_string::<i32>()
                    .value(row);
                match self.op {
                    JsonOp::Path | JsonOp::PathText => (path_of_text(s), None),
                    _ => (vec![s.to_string()], None),
                }
            };
            let path = matches!(self.op, JsonOp::Path | JsonOp::PathText);
            let mut steps: Vec<jsonb::Step> = keys
                .iter()
                .map(|k| {
                    if path {
                        jsonb::Step::Part(k)
                    } else {
                        jsonb::Step::Key(k)
                    }
                })
                .collect();
            steps.extend(index.map(jsonb::Step::Index));
            // Stored documents were checked when written: most lookups
            // skip through the text without building the document.
            if let Some(found) = quick_lookup(src, &steps, self.op.text()) {
                match found {
                    Some(v) => out.append_value(v),
                    None => out.append_null(),
                }
                continue;
            }
            let doc = parse_json(src)?;
            let mut at = Some(&doc);
            for step in &steps {
                at = at.and_then(|v| jsonb::get(v, step));
            }
            let value = at.and_then(|v| {
                if self.op.text() {
                    jsonb::as_text(v, src, false)
                } else {
                    Some(jsonb::as_json(v, src, false))
                }
            });
            match value {
                Some(v) => out.append_value(v),
                None => out.append_null(),
            }
        }
        Ok(Arc::new(out.finish()))
    }
}

/// The value `steps` select in `src` by the quick scan (as JSON or as
/// `->>` text); `None` when the full parser must answer.
fn quick_lookup<'s>(src: &'s str, steps: &[jsonb::Step], text: bool) -> Option<Option<&'s str>> {
    let mut at = src.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    for step in steps {
        match jsonb::find(at, step)? {
            Some(v) => at = v,
            None => return Some(None),
        }
    }
    if text {
        jsonb::raw_as_text(at)
    } else {
        Some(Some(at))
    }
}

/// Plans `->`, `->>`, `#>`, `#>>` as the JSON functions.
#[derive(Debug)]
pub struct JsonOperators;

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let op = match expr.op {
            BinaryOperator::Arrow => JsonOp::Get,
            BinaryOperator::LongArrow => JsonOp::GetText,
            BinaryOperator::HashArrow => JsonOp::Path,
            BinaryOperator::HashLongArrow => JsonOp::PathText,
            BinaryOperator::HashMinus => {
                return Ok(PlannerResult::Planned(Expr::ScalarFunction(
                    ScalarFunction::new_udf(
                        Arc::new(super::jsonb_edit::udf(super::jsonb_edit::DELETE_PATH)),
                        vec![expr.left, expr.right],
                    ),
                )));
            }
            BinaryOperator::Minus if jsonb_minus(&expr, schema) => {
                return Ok(PlannerResult::Planned(Expr::ScalarFunction(
                    ScalarFunction::new_udf(
                        Arc::new(super::jsonb_edit::udf(super::jsonb_edit::DELETE)),
                        vec![expr.left, expr.right],
                    ),
                )));
            }
            BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo => {
                return Ok(match literal_arithmetic(&expr, schema) {
                    Some(e) => PlannerResult::Planned(e),
                    None => PlannerResult::Original(expr),
                });
            }
            _ => return Ok(self.plan_test(expr, schema)),
        };
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(op.udf()), vec![expr.left, expr.right]),
        )))
    }
}

/// Whether `a - b` can only mean jsonb's `-`: text on the left that is not
/// a bare literal (`'5' - 1` is integer arithmetic), and a key, an index or
/// a list of keys on the right. PostgreSQL has no `-` on text or json; the
/// analyzer that knows declared types refuses those.
fn jsonb_minus(expr: &RawBinaryExpr, schema: &DFSchema) -> bool {
    use datafusion::logical_expr::ExprSchemable;
    let text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8);
    if matches!(expr.left, Expr::Literal(..)) {
        return false;
    }
    let (Ok(left), Ok(right)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
        return false;
    };
    text(&left)
        && (text(&right)
            || right.is_integer()
            || matches!(&right, DataType::List(f) if text(f.data_type())))
}

/// `'5' - 1`, `2 * '3'`: an untyped literal in arithmetic with a number
/// is a number of the same type, as in PostgreSQL (where `'1.5' + 1` is
/// 22P02 too).
fn literal_arithmetic(expr: &RawBinaryExpr, schema: &DFSchema) -> Option<Expr> {
    use datafusion::logical_expr::{ExprSchemable, Operator};
    let op = match expr.op {
        BinaryOperator::Plus => Operator::Plus,
        BinaryOperator::Minus => Operator::Minus,
        BinaryOperator::Multiply => Operator::Multiply,
        BinaryOperator::Divide => Operator::Divide,
        BinaryOperator::Modulo => Operator::Modulo,
        _ => return None,
    };
    let typed = |text: &Expr, other: &Expr| -> Option<Expr> {
        let Expr::Literal(ScalarValue::Utf8(Some(s)), _) = text else {
            return None;
        };
        let t = match other.get_type(schema).ok()? {
            // A numeric literal keeps its own digits (`1.5 * '2'` is 3.0).
            DataType::Decimal128(p, sc) => super::numeric::literal_digits(s)
                .map_or(DataType::Decimal128(p, sc), |(p, sc)| {
                    DataType::Decimal128(p, sc)
                }),
            // An integer literal that fits in 32 bits is an `integer`
            // (made Int32 later): so is the text beside it (`'5' - 1`).
            _ if matches!(other, Expr::Literal(ScalarValue::Int64(Some(v)), _)
                if i32::try_from(*v).is_ok()) =>
            {
                DataType::Int32
            }
            t => t,
        };
        t.is_numeric().then(|| {
            Expr::Cast(datafusion::logical_expr::Cast::new(
                Box::new(text.clone()),
                t,
            ))
        })
    };
    let (left, right) = if let Some(l) = typed(&expr.left, &expr.right) {
        (l, expr.right.clone())
    } else {
        (expr.left.clone(), typed(&expr.right, &expr.left)?)
    };
    Some(Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
        Box::new(left),
        op,
        Box::new(right),
    )))
}

impl JsonOperators {
    /// `@>`, `<@`, `?`, `?|`, `?&` on documents (arrays keep DataFusion's
    /// meaning of `@>` and `<@`).
    fn plan_test(&self, expr: RawBinaryExpr, schema: &DFSchema) -> PlannerResult<RawBinaryExpr> {
        let function = match expr.op {
            BinaryOperator::AtArrow => "jsonb_contains",
            BinaryOperator::ArrowAt => "jsonb_contained",
            BinaryOperator::Question => "jsonb_exists",
            BinaryOperator::QuestionPipe => "jsonb_exists_any",
            BinaryOperator::QuestionAnd => "jsonb_exists_all",
            _ => return PlannerResult::Original(expr),
        };
        use datafusion::logical_expr::ExprSchemable;
        let text = matches!(
            expr.left.get_type(schema),
            Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null)
        );
        if !text {
            return PlannerResult::Original(expr);
        }
        PlannerResult::Planned(Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(super::json_fns::udf(function)),
            vec![expr.left, expr.right],
        )))
    }
}

/// `pg_typeof(x)`: the PostgreSQL name of the argument's type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TypeOf {
    signature: Signature,
}

impl ScalarUDFImpl for TypeOf {
    fn name(&self) -> &str {
        "pg_typeof"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let t = args.arg_fields[0].data_type();
        let name = match t {
            DataType::Null => "unknown".to_string(),
            DataType::Interval(_) => "interval".to_string(),
            DataType::Time32(_) | DataType::Time64(_) => "time without time zone".to_string(),
            // A type, not a column's declaration: no modifiers (`numeric`,
            // not `numeric(38,16)`), as regtype prints it.
            // An array type has no dimensions: `integer[]` for `{{1},{2}}`.
            other => {
                let name = super::PgType::from_arrow(other).name;
                match name.find("[]") {
                    Some(at) => format!("{}[]", &name[..at]),
                    None => name,
                }
            }
        };
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}

/// The name of [`Same`].
pub const SAME: &str = "same_value";

/// `same_value(x)` is `x`. DataFusion names a cast after what it casts, so
/// `sum(k::numeric)` and `sum(k)` are two aggregates of one name, which
/// it refuses; the planner wraps one of them in this to tell them apart,
/// and simplification takes it away again.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Same {
    signature: Signature,
    /// `sluice_nullable`: the value in a column that may hold NULL, not
    /// simplified away (see [`nullable`]).
    nullable: bool,
}

impl ScalarUDFImpl for Same {
    fn name(&self) -> &str {
        if self.nullable {
            "sluice_nullable"
        } else {
            SAME
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(types[0].clone())
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let field = Arc::clone(&args.arg_fields[0]);
        Ok(if self.nullable {
            Arc::new(field.as_ref().clone().with_nullable(true))
        } else {
            field
        })
    }
    fn simplify(
        &self,
        mut args: Vec<Expr>,
        _: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        use datafusion::logical_expr::simplify::ExprSimplifyResult;
        Ok(if self.nullable {
            ExprSimplifyResult::Original(args)
        } else {
            ExprSimplifyResult::Simplified(args.remove(0))
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}

/// `x` in a column that may hold NULL: a table created from a query
/// takes no NOT NULL from it (as in PostgreSQL), and a Delta column's
/// nullability is its data's. [`Same`] that says so, and stays.
pub fn nullable(x: Expr) -> Expr {
    Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(Same {
            signature: Signature::any(1, Volatility::Immutable),
            nullable: true,
        })),
        vec![x],
    ))
}

/// Register the input functions, JSON functions and operators,
/// `gen_random_uuid()`, `pg_typeof()` and `same_value()`.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    for t in [TextType::Uuid, TextType::Json, TextType::Jsonb] {
        ctx.register_udf(t.udf());
    }
    for op in JsonOp::ALL {
        ctx.register_udf(op.udf());
    }
    super::json_fns::register(ctx);
    super::jsonb_edit::register(ctx);
    ctx.register_udf(super::numeric::udf());
    // PostgreSQL spells ceil both ways.
    let ceil = datafusion::functions::math::ceil();
    ctx.register_udf(ceil.as_ref().clone().with_aliases(["ceiling"]));
    let uuid = datafusion::functions::string::uuid();
    ctx.register_udf(uuid.as_ref().clone().with_aliases(["gen_random_uuid"]));
    ctx.register_udf(ScalarUDF::new_from_impl(TypeOf {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(Same {
        signature: Signature::any(1, Volatility::Immutable),
        nullable: false,
    }));
    use datafusion::execution::FunctionRegistry;
    let _ = ctx
        .state_ref()
        .write()
        .register_expr_planner(Arc::new(JsonOperators));
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn one(ctx: &SessionContext, sql: &str) -> Result<Option<String>> {
        let batches = ctx.sql(sql).await?.collect().await?;
        let col = cast(batches[0].column(0), &DataType::Utf8)?;
        let s = col.as_string::<i32>();
        Ok((!s.is_null(0)).then(|| s.value(0).to_string()))
    }

    #[tokio::test]
    async fn operators_and_inputs_answer_as_postgres() {
        let ctx = SessionContext::new();
        register(&ctx);
        let doc = r#"'{"a": {"b": [10, "x"]}, "n": null}'"#;
        for (sql, want) in [
            (format!("SELECT {doc} -> 'a'"), Some(r#"{"b": [10, "x"]}"#)),
            (format!("SELECT {doc} -> 'a' -> 'b' ->> 1"), Some("x")),
            (format!("SELECT {doc} ->> 'n'"), None),
            (format!("SELECT {doc} ->> 'missing'"), None),
            (format!("SELECT {doc} #> '{{a,b,0}}'"), Some("10")),
            (format!("SELECT {doc} #>> '{{a,b,1}}'"), Some("x")),
            (
                "SELECT sluice_uuid_in('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')".into(),
                Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            ),
            (
                r#"SELECT sluice_jsonb_in('{"b":1,"a":2}')"#.into(),
                Some(r#"{"a": 2, "b": 1}"#),
            ),
            (
                "SELECT pg_typeof(1.5::double precision)".into(),
                Some("double precision"),
            ),
        ] {
            assert_eq!(one(&ctx, &sql).await.unwrap().as_deref(), want, "{sql}");
        }
        let err = one(&ctx, "SELECT sluice_uuid_in('abc')").await.unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid input syntax for type uuid: \"abc\""),
            "{err}"
        );
        let err = one(&ctx, "SELECT sluice_json_in('{')").await.unwrap_err();
        assert!(err.to_string().contains("type json"), "{err}");
        assert_eq!(
            one(&ctx, "SELECT length(gen_random_uuid())")
                .await
                .unwrap()
                .as_deref(),
            Some("36")
        );
    }
}
