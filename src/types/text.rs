//! PostgreSQL's text input for the types Arrow cannot cast text to: arrays
//! (`'{1,2,NULL}'`, `'{a,"b c",""}'`) and bytea (`'\x00ff'`, escapes).
//!
//! An analyzer rule turns every `CAST(<text> AS <type>[])` into
//! `sluice_text_to_array(<text>, '<type>')` and `CAST(<text> AS bytea)` into
//! `sluice_text_to_bytea(<text>)`; INSERT, UPDATE and MERGE cast their values
//! to the column types, so literals work there too.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, ListArray, StringArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue, exec_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility, cast, lit,
};
use datafusion::optimizer::AnalyzerRule;

/// Split PostgreSQL array text into its elements; `None` is a NULL element.
pub fn parse_array_text(text: &str) -> Result<Vec<Option<String>>, String> {
    let t = text.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("malformed array literal: \"{text}\""))?;
    let mut out = Vec::new();
    if inner.trim().is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("malformed array literal: \"{text}\"")),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("malformed array literal: \"{text}\"")),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' || c == '}' || c == '"' {
                    return Err(format!(
                        "malformed array literal: \"{text}\" (nested arrays are not supported)"
                    ));
                }
                if c == '\\' {
                    chars.next();
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                    continue;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim_end().to_string();
            if value.is_empty() {
                return Err(format!("malformed array literal: \"{text}\""));
            }
        }
        let is_null = !quoted && value.eq_ignore_ascii_case("null");
        out.push(if is_null { None } else { Some(value) });
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(c) => {
                return Err(format!(
                    "malformed array literal: \"{text}\" (unexpected {c:?})"
                ));
            }
        }
    }
    Ok(out)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TextToArray {
    signature: Signature,
}

const NAME: &str = "sluice_text_to_array";

/// The element type is passed as the second argument, the name Arrow
/// prints for it (`Int32`), so the return type follows from the call.
fn element_type(args: &[Option<&ScalarValue>]) -> DfResult<DataType> {
    match args.get(1) {
        Some(Some(ScalarValue::Utf8(Some(t)))) => t
            .parse::<DataType>()
            .map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string())),
        _ => datafusion::common::plan_err!("{NAME} needs the element type as a literal"),
    }
}

impl ScalarUDFImpl for TextToArray {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        datafusion::common::internal_err!("{NAME}: return_field_from_args is used")
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let elem = element_type(args.scalar_arguments)?;
        Ok(Arc::new(Field::new(
            NAME,
            DataType::List(Arc::new(Field::new_list_field(elem, true))),
            true,
        )))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let DataType::List(elem) = args.return_field.data_type().clone() else {
            return exec_err!("{NAME}: unexpected return type");
        };
        let input = args.args[0].to_array(args.number_rows)?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        Ok(ColumnarValue::Array(strings_to_list(
            input.as_string::<i32>(),
            elem,
        )?))
    }
}

/// Parse every value of `strings` as PostgreSQL array text with elements
/// of `elem`'s type.
pub fn strings_to_list(strings: &StringArray, elem: FieldRef) -> DfResult<ArrayRef> {
    let mut values: Vec<Option<String>> = Vec::new();
    let mut offsets = vec![0i32];
    let mut valid = Vec::with_capacity(strings.len());
    for i in 0..strings.len() {
        if strings.is_null(i) {
            valid.push(false);
        } else {
            values.extend(parse_array_text(strings.value(i)).map_err(invalid_text)?);
            valid.push(true);
        }
        offsets.push(values.len() as i32);
    }
    let text: ArrayRef = Arc::new(StringArray::from(values));
    let typed = datafusion::arrow::compute::cast_with_options(
        &text,
        elem.data_type(),
        &datafusion::arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        },
    )?;
    let list = ListArray::try_new(
        elem,
        OffsetBuffer::new(offsets.into()),
        typed,
        Some(NullBuffer::from(valid)),
    )?;
    Ok(Arc::new(list))
}

/// Parse every value of `strings` as PostgreSQL bytea text.
pub fn strings_to_bytea(strings: &StringArray) -> DfResult<ArrayRef> {
    let mut out = Vec::with_capacity(strings.len());
    for i in 0..strings.len() {
        out.push(if strings.is_null(i) {
            None
        } else {
            Some(parse_bytea_text(strings.value(i)).map_err(invalid_text)?)
        });
    }
    Ok(Arc::new(BinaryArray::from_iter(out)))
}

pub fn text_to_array_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(TextToArray {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// Whether `t` is one of Arrow's string types.
pub(crate) fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Decode PostgreSQL bytea text: `\x` hex, or the escape format.
pub fn parse_bytea_text(text: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("invalid input syntax for type bytea: \"{text}\"");
    if let Some(hex) = text.strip_prefix("\\x") {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err(bad());
        }
        return digits
            .chunks(2)
            .map(|p| {
                std::str::from_utf8(p)
                    .ok()
                    .and_then(|s| u8::from_str_radix(s, 16).ok())
                    .ok_or_else(bad)
            })
            .collect();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let oct = bytes.get(i + 1..i + 4).ok_or_else(bad)?;
            let s = std::str::from_utf8(oct).map_err(|_| bad())?;
            out.push(u8::from_str_radix(s, 8).map_err(|_| bad())?);
            i += 4;
        }
    }
    Ok(out)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TextToBytea {
    signature: Signature,
}

impl ScalarUDFImpl for TextToBytea {
    fn name(&self) -> &str {
        "sluice_text_to_bytea"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        Ok(ColumnarValue::Array(strings_to_bytea(
            input.as_string::<i32>(),
        )?))
    }
}

/// `text` with `:00` seconds added to a time of day written without them
/// (`2024-01-01 10:00`, `2024-01-01T10:00+02`) and a zero before a
/// one-digit hour (`2024-01-01 7:05:09`), which PostgreSQL reads and
/// Arrow's timestamp parser refuses; `None` when nothing needs adding.
pub fn with_seconds(text: &str) -> Option<String> {
    let t = text.trim_start();
    let b = t.as_bytes();
    // The date: digits, '-', digits, '-', digits.
    let mut i = 0;
    for part in 0..3 {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        if part < 2 {
            if b.get(i) != Some(&b'-') {
                return None;
            }
            i += 1;
        }
    }
    if !matches!(b.get(i), Some(b' ' | b'T' | b't')) {
        return None;
    }
    i += 1;
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == start || b.get(i) != Some(&b':') {
        return None;
    }
    // A one-digit hour (`7:05`) gets its leading zero.
    let hour = (start, i);
    i += 1;
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i - start != 2 {
        return None;
    }
    let short_hour = hour.1 - hour.0 == 1;
    let seconds = b.get(i) == Some(&b':');
    if seconds && !short_hour {
        return None;
    }
    let hour_text = if short_hour { "0" } else { "" };
    let added = if seconds { "" } else { ":00" };
    Some(format!(
        "{}{hour_text}{}{added}{}",
        &t[..hour.0],
        &t[hour.0..i],
        &t[i..]
    ))
}

/// PostgreSQL's special date and time input words (`'epoch'`, `'now'`,
/// `'today'`, `'tomorrow'`, `'yesterday'`) as the text Arrow reads: a
/// timestamp, or a date when `date`. `now` is the moment the statement is
/// planned, as a constant of PostgreSQL's is; the day is UTC's, the
/// session's time zone.
fn special_time(text: &str, date: bool) -> Option<String> {
    let t = text.trim();
    // Most text is a date or time: no copy made of it.
    if t.len() > 9 || !t.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let now = chrono::Utc::now().naive_utc();
    let day = |offset: i64| now.date() + chrono::Duration::days(offset);
    let at = match t.to_ascii_lowercase().as_str() {
        "epoch" => chrono::DateTime::UNIX_EPOCH.naive_utc(),
        "now" => now,
        "today" => day(0).and_time(chrono::NaiveTime::MIN),
        "tomorrow" => day(1).and_time(chrono::NaiveTime::MIN),
        "yesterday" => day(-1).and_time(chrono::NaiveTime::MIN),
        _ => return None,
    };
    Some(if date {
        at.format("%Y-%m-%d").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    })
}

/// Text as Arrow's parser takes it for a timestamp (or a date): a time of
/// day without seconds gets them, a special word its value.
fn time_input(text: &str, date: bool) -> Option<String> {
    special_time(text, date).or_else(|| if date { None } else { with_seconds(text) })
}

/// Text read as a timestamp: a time of day without seconds gets them, a
/// special word (`'epoch'`, `'today'`) its value; read as a date, the
/// special words only.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampText {
    signature: Signature,
    date: bool,
}

impl ScalarUDFImpl for TimestampText {
    fn name(&self) -> &str {
        if self.date {
            "sluice_date_text"
        } else {
            "sluice_timestamp_text"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if let ColumnarValue::Scalar(v) = &args.args[0] {
            let text = v.try_as_str().flatten();
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(text.map(|t| {
                time_input(t, self.date).unwrap_or_else(|| t.to_string())
            }))));
        }
        let input = args.args[0].to_array(args.number_rows)?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        let strings = input.as_string::<i32>();
        // Copied only when some value needs changing.
        if !strings
            .iter()
            .any(|v| v.is_some_and(|t| time_input(t, self.date).is_some()))
        {
            return Ok(ColumnarValue::Array(input));
        }
        let out: StringArray = strings
            .iter()
            .map(|v| v.map(|t| time_input(t, self.date).unwrap_or_else(|| t.to_string())))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// PostgreSQL's text for floats and timestamps (`CAST(x AS text)`), where
/// Arrow's differs (`1.0`, `2024-02-29T13:45:00`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextOut {
    signature: Signature,
    /// The output function's text rather than the cast's.
    output: bool,
}

impl ScalarUDFImpl for TextOut {
    fn name(&self) -> &str {
        if self.output {
            OUTPUT_TEXT
        } else {
            "sluice_text_out"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    /// Text keeps its string type (no copy of a `Utf8View` column).
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        Ok(match args.first() {
            Some(t @ (DataType::LargeUtf8 | DataType::Utf8View)) if self.output => t.clone(),
            _ => DataType::Utf8,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if self.output && args.arg_fields[0].data_type().is_string() {
            return Ok(args.args[0].clone());
        }
        let input = args.args[0].to_array(args.number_rows)?;
        // A cast of a boolean to text spells the word (`true`); the output
        // function (`format`, `concat`) prints `t`.
        Ok(ColumnarValue::Array(
            if !self.output && *input.data_type() == DataType::Boolean {
                datafusion::arrow::compute::cast(&input, &DataType::Utf8)?
            } else {
                crate::types::output::output_utf8(&input)?
            },
        ))
    }
}

/// The name of the function that gives a value's text as PostgreSQL's
/// output function prints it (`t` for true); the parser wraps the
/// arguments of `format`, `concat` and `concat_ws` in it.
pub const OUTPUT_TEXT: &str = "sluice_output_text";

/// [`OUTPUT_TEXT`], for registration.
pub fn output_text_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(TextOut {
        signature: Signature::any(1, Volatility::Immutable),
        output: true,
    })
}

/// `array_to_string(array, sep [, null_text])`, PostgreSQL's: every
/// element of every dimension as its output function prints it (`t`,
/// `1e+100`, `2024-02-29 13:45:00`), joined by `sep`; a NULL element is
/// skipped, or shown as `null_text` when given. DataFusion's prints
/// Arrow's text (`true`, `2024-02-29T13:45:00`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayToString {
    signature: Signature,
    aliases: Vec<String>,
}

impl ScalarUDFImpl for ArrayToString {
    fn name(&self) -> &str {
        "array_to_string"
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if !(2..=3).contains(&args.args.len()) {
            return exec_err!("array_to_string needs an array and a separator");
        }
        datafusion::functions::utils::make_scalar_function(joined, vec![])(&args.args)
    }
}

/// [`ArrayToString`] of argument columns.
fn joined(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let (array, rest) = (&args[0], &args[1..]);
    let rows = array.len();
    let texts = rest
        .iter()
        .map(|a| datafusion::arrow::compute::cast(a, &DataType::Utf8))
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    let sep = texts[0].as_string::<i32>();
    let null_text = texts.get(1).map(|a| a.as_string::<i32>());
    let out: StringArray = match leaves(array)? {
        None => (0..rows).map(|_| None::<String>).collect(),
        Some((values, offsets)) => {
            let values = crate::types::output::output_utf8(&values)?;
            let values = values.as_string::<i32>();
            (0..rows)
                .map(|row| {
                    if array.is_null(row) || sep.is_null(row) {
                        return None;
                    }
                    let null = null_text.filter(|n| !n.is_null(row)).map(|n| n.value(row));
                    let mut out = String::new();
                    let mut first = true;
                    for i in offsets[row]..offsets[row + 1] {
                        let item = if values.is_null(i) {
                            match null {
                                Some(n) => n,
                                None => continue,
                            }
                        } else {
                            values.value(i)
                        };
                        if !first {
                            out.push_str(sep.value(row));
                        }
                        first = false;
                        out.push_str(item);
                    }
                    Some(out)
                })
                .collect()
        }
    };
    Ok(Arc::new(out))
}

/// The innermost values of a (nested) list column and, per row, where its
/// values start and end among them; `None` for a column that is not a list
/// (an untyped NULL).
fn leaves(array: &ArrayRef) -> DfResult<Option<(ArrayRef, Vec<usize>)>> {
    let list = match array.data_type() {
        DataType::List(_) => array.clone(),
        DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            datafusion::arrow::compute::cast(array, &DataType::List(f.clone()))?
        }
        DataType::Null => return Ok(None),
        // Array text, as the static catalogs keep their ACL columns
        // (`pg_proc.proacl` is `{postgres=X/postgres}`).
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let texts = datafusion::arrow::compute::cast(array, &DataType::Utf8)?;
            let mut builder = datafusion::arrow::array::ListBuilder::new(
                datafusion::arrow::array::StringBuilder::new(),
            );
            for text in texts.as_string::<i32>().iter() {
                match text {
                    None => builder.append_null(),
                    Some(t) => {
                        let items = parse_array_text(t).map_err(|e| {
                            datafusion::error::DataFusionError::Execution(format!(
                                "array_to_string of text that is no array: {e}"
                            ))
                        })?;
                        builder.values().extend(items);
                        builder.append(true);
                    }
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }
        other => return exec_err!("array_to_string of a {other}, not an array"),
    };
    let list = list.as_list::<i32>();
    let offsets: Vec<usize> = list.value_offsets().iter().map(|o| *o as usize).collect();
    let values = list.values();
    if matches!(
        values.data_type(),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
    ) {
        let Some((leaf, inner)) = leaves(values)? else {
            return Ok(None);
        };
        return Ok(Some((leaf, offsets.iter().map(|o| inner[*o]).collect())));
    }
    Ok(Some((values.clone(), offsets)))
}

/// [`ArrayToString`], for registration in place of DataFusion's.
pub fn array_to_string_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ArrayToString {
        signature: Signature::variadic_any(Volatility::Immutable),
        aliases: vec!["array_join".to_string(), "list_to_string".to_string()],
    })
}

fn invalid_text(message: String) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(crate::error::Error::new(
        crate::error::ErrorKind::InvalidText,
        message,
    )))
}

/// A decimal with digits after the point (not already rounded).
fn is_fractional_decimal(e: &Expr, schema: &DFSchema) -> bool {
    // Rounded to a whole number already; `round(x, 20)` (a quotient, see
    // `numeric::NumericScales`) is not: CAST(-3.75 / 1 AS bigint) was -3.
    let rounded = matches!(e, Expr::ScalarFunction(f) if f.name() == "round"
    && match f.args.as_slice() {
        [_] => true,
        [_, Expr::Literal(places, _)] => {
            matches!(places, ScalarValue::Int64(Some(0)) | ScalarValue::Int32(Some(0)))
        }
        _ => false,
    });
    !rounded
        && e.get_type(schema).is_ok_and(
            |t| matches!(t, DataType::Decimal128(_, s) | DataType::Decimal256(_, s) if s > 0),
        )
}

/// `x` rounded to the nearest integer, halves to even, as C's `rint`
/// (PostgreSQL's `round(float)` and float-to-integer casts), in
/// `double precision`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Rint {
    signature: Signature,
}

impl ScalarUDFImpl for Rint {
    fn name(&self) -> &str {
        "sluice_rint"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use datafusion::arrow::datatypes::Float64Type;
        Ok(match &args.args[0] {
            ColumnarValue::Scalar(v) => {
                ColumnarValue::Scalar(match v.cast_to(&DataType::Float64)? {
                    ScalarValue::Float64(f) => ScalarValue::Float64(f.map(f64::round_ties_even)),
                    other => other,
                })
            }
            ColumnarValue::Array(a) => {
                let f = datafusion::arrow::compute::cast(a, &DataType::Float64)?;
                ColumnarValue::Array(Arc::new(
                    f.as_primitive::<Float64Type>()
                        .unary::<_, Float64Type>(f64::round_ties_even),
                ))
            }
        })
    }
}

pub(crate) fn rint(x: Expr) -> Expr {
    ScalarUDF::new_from_impl(Rint {
        signature: Signature::any(1, Volatility::Immutable),
    })
    .call(vec![x])
}

/// Rewrites text casts Arrow cannot do into the parsers above, and makes
/// numeric-to-integer casts round as PostgreSQL does.
#[derive(Debug, Default)]
pub struct TextInputCasts;

impl AnalyzerRule for TextInputCasts {
    fn name(&self) -> &str {
        "sluice_text_input_casts"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        let udf = Arc::new(text_to_array_udf());
        let bytea = Arc::new(ScalarUDF::new_from_impl(TextToBytea {
            signature: Signature::any(1, Volatility::Immutable),
        }));
        let text_out = Arc::new(ScalarUDF::new_from_impl(TextOut {
            signature: Signature::any(1, Volatility::Immutable),
            output: false,
        }));
        let timestamp_text = Arc::new(ScalarUDF::new_from_impl(TimestampText {
            signature: Signature::any(1, Volatility::Immutable),
            date: false,
        }));
        let date_text = Arc::new(ScalarUDF::new_from_impl(TimestampText {
            signature: Signature::any(1, Volatility::Immutable),
            date: true,
        }));
        let interval_in = Arc::new(super::interval::udf());
        let to_float = Arc::new(super::numeric::to_float_udf());
        let from_float = Arc::new(super::numeric::from_float_udf());
        let from_text = Arc::new(super::numeric::from_text_udf());
        let float_in = Arc::new(super::float_input::udf());
        crate::tree::transform_up_with_subqueries(plan, |node| {
            let schema: DFSchema = match node.inputs().as_slice() {
                [one] => one.schema().as_ref().clone(),
                _ => node.schema().as_ref().clone(),
            };
            let names = NamePreserver::new(&node);
            crate::tree::map_expressions(node, |e| {
                let saved = crate::types::save_name(&names, &e);
                let rewritten = crate::tree::transform_up(e, |x| match &x {
                    Expr::Cast(c) => match c.field.data_type() {
                        DataType::List(elem)
                            if c.expr.get_type(&schema).is_ok_and(|t| is_text(&t)) =>
                        {
                            let call = udf
                                .call(vec![(*c.expr).clone(), lit(elem.data_type().to_string())]);
                            // The parser's list names its element `item`;
                            // a Delta column's is `element`.
                            let call = match call.get_type(&schema) {
                                Ok(t) if &t == c.field.data_type() => call,
                                _ => cast(call, c.field.data_type().clone()),
                            };
                            Ok(Transformed::yes(call))
                        }
                        // numeric -> integer rounds half away from zero in
                        // PostgreSQL; Arrow truncates.
                        t if t.is_integer() && is_fractional_decimal(&c.expr, &schema) => {
                            let rounded = datafusion::functions::math::expr_fn::round(vec![
                                (*c.expr).clone(),
                            ]);
                            Ok(Transformed::yes(cast(rounded, t.clone())))
                        }
                        // numeric -> float is the float nearest the
                        // value; Arrow's division rounds twice.
                        t @ (DataType::Float64 | DataType::Float32)
                            if c.expr.get_type(&schema).is_ok_and(|from| {
                                matches!(from, DataType::Decimal128(..) | DataType::Decimal256(..))
                            }) =>
                        {
                            let like = if *t == DataType::Float32 {
                                ScalarValue::Float32(None)
                            } else {
                                ScalarValue::Float64(None)
                            };
                            Ok(Transformed::yes(
                                to_float.call(vec![(*c.expr).clone(), lit(like)]),
                            ))
                        }
                        // float -> numeric keeps the float's 15 (real: 6)
                        // significant digits; Arrow's product shows the
                        // binary noise beyond them.
                        t @ DataType::Decimal128(..)
                            if c.expr.get_type(&schema).is_ok_and(|from| {
                                matches!(from, DataType::Float64 | DataType::Float32)
                            }) =>
                        {
                            let like = ScalarValue::try_from(t)?;
                            Ok(Transformed::yes(
                                from_float.call(vec![(*c.expr).clone(), lit(like)]),
                            ))
                        }
                        // text -> numeric reads an exponent (`4.2e9`), as
                        // PostgreSQL's numeric input does; Arrow's does not.
                        t @ DataType::Decimal128(..)
                            if c.expr.get_type(&schema).is_ok_and(|from| is_text(&from)) =>
                        {
                            let like = ScalarValue::try_from(t)?;
                            Ok(Transformed::yes(
                                from_text.call(vec![(*c.expr).clone(), lit(like)]),
                            ))
                        }
                        // text -> float: a number beyond the type's range
                        // is 22003 (Arrow's cast gave an infinity or zero).
                        t @ (DataType::Float64 | DataType::Float32)
                            if c.expr.get_type(&schema).is_ok_and(|from| is_text(&from)) =>
                        {
                            let like = if *t == DataType::Float32 {
                                ScalarValue::Float32(None)
                            } else {
                                ScalarValue::Float64(None)
                            };
                            Ok(Transformed::yes(
                                float_in.call(vec![(*c.expr).clone(), lit(like)]),
                            ))
                        }
                        // float -> integer rounds half to even (rint) in
                        // PostgreSQL; Arrow truncates.
                        t if t.is_integer()
                            && c.expr.get_type(&schema).is_ok_and(|t| t.is_floating()) =>
                        {
                            Ok(Transformed::yes(cast(rint((*c.expr).clone()), t.clone())))
                        }
                        t if is_text(t)
                            && c.expr.get_type(&schema).is_ok_and(|from| {
                                crate::types::output::renders(&from)
                                    || matches!(
                                        from,
                                        DataType::List(_)
                                            | DataType::Binary
                                            | DataType::LargeBinary
                                            | DataType::BinaryView
                                    )
                            }) =>
                        {
                            let text = text_out.call(vec![(*c.expr).clone()]);
                            Ok(Transformed::yes(if *t == DataType::Utf8 {
                                text
                            } else {
                                cast(text, t.clone())
                            }))
                        }
                        // PostgreSQL has no cast from a number to a
                        // timestamp; Arrow's would count in the target's
                        // unit.
                        t @ DataType::Timestamp(..)
                            if c.expr.get_type(&schema).is_ok_and(|from| from.is_numeric()) =>
                        {
                            let from = c.expr.get_type(&schema)?;
                            Err(crate::error::Error::new(
                                crate::error::ErrorKind::CannotCoerce,
                                format!(
                                    "cannot cast type {} to {}",
                                    crate::types::PgType::from_arrow(&from).name,
                                    crate::types::PgType::from_arrow(t).name
                                ),
                            )
                            .into())
                        }
                        // `'now'` written in the statement is `now()`: the
                        // same moment as every other `now()` of it.
                        t @ DataType::Timestamp(..)
                            if matches!(c.expr.as_ref(), Expr::Literal(v, _)
                                if v.try_as_str().flatten().is_some_and(|s| s.trim().eq_ignore_ascii_case("now"))) =>
                        {
                            Ok(Transformed::yes(cast(
                                datafusion::functions::datetime::expr_fn::now(),
                                t.clone(),
                            )))
                        }
                        DataType::Timestamp(..)
                            if c.expr.get_type(&schema).is_ok_and(|t| is_text(&t)) =>
                        {
                            let text = timestamp_text.call(vec![(*c.expr).clone()]);
                            Ok(Transformed::yes(cast(text, c.field.data_type().clone())))
                        }
                        DataType::Date32
                            if c.expr.get_type(&schema).is_ok_and(|t| is_text(&t)) =>
                        {
                            let text = date_text.call(vec![(*c.expr).clone()]);
                            Ok(Transformed::yes(cast(text, DataType::Date32)))
                        }
                        DataType::Interval(unit)
                            if c.expr.get_type(&schema).is_ok_and(|t| is_text(&t)) =>
                        {
                            let read = interval_in.call(vec![(*c.expr).clone()]);
                            Ok(Transformed::yes(
                                if *unit == datafusion::arrow::datatypes::IntervalUnit::MonthDayNano
                                {
                                    read
                                } else {
                                    cast(read, c.field.data_type().clone())
                                },
                            ))
                        }
                        DataType::Binary if c.expr.get_type(&schema).is_ok_and(|t| is_text(&t)) => {
                            Ok(Transformed::yes(bytea.call(vec![(*c.expr).clone()])))
                        }
                        _ => Ok(Transformed::no(x)),
                    },
                    _ => Ok(Transformed::no(x)),
                })?;
                // Keep the column names the plan above expects.
                Ok(rewritten.update_data(|x| crate::types::keep_name(saved, x)))
            })
        })
        .map(|t| t.data)
    }
}

/// A text literal compared with an array takes the array's type, as an
/// untyped literal does in PostgreSQL (`polroles = '{0}'`), and so does one
/// that `= ANY(...)` searches. Runs before
/// DataFusion's type coercion, which would refuse the comparison.
#[derive(Debug, Default)]
pub struct TextLiteralComparisons;

impl AnalyzerRule for TextLiteralComparisons {
    fn name(&self) -> &str {
        "sluice_text_literal_comparisons"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        use datafusion::logical_expr::BinaryExpr;
        let udf = Arc::new(text_to_array_udf());
        crate::tree::transform_up_with_subqueries(plan, |node| {
            let schema: DFSchema = match node.inputs().as_slice() {
                [one] => one.schema().as_ref().clone(),
                _ => node.schema().as_ref().clone(),
            };
            let names = NamePreserver::new(&node);
            crate::tree::map_expressions(node, |e| {
                let saved = crate::types::save_name(&names, &e);
                let rewritten = crate::tree::transform_up(e, |x| {
                    // `x = ANY('{a,b}')` (node-postgres sends an array
                    // parameter as text): the text is an array of x's type.
                    if let Expr::ScalarFunction(f) = &x
                        && f.func.name() == "array_has"
                        && let [text @ Expr::Literal(ScalarValue::Utf8(Some(_)), _), element] =
                            f.args.as_slice()
                        && let Ok(t) = element.get_type(&schema)
                    {
                        let t = if is_text(&t) { DataType::Utf8 } else { t };
                        let array = udf.call(vec![text.clone(), lit(t.to_string())]);
                        let mut f = f.clone();
                        f.args[0] = array;
                        return Ok(Transformed::yes(Expr::ScalarFunction(f)));
                    }
                    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &x else {
                        return Ok(Transformed::no(x));
                    };
                    if !super::is_comparison(op) {
                        return Ok(Transformed::no(x));
                    }
                    let as_array = |text: &Expr, other: &Expr| -> Option<Expr> {
                        let Expr::Literal(ScalarValue::Utf8(Some(_)), _) = text else {
                            return None;
                        };
                        match other.get_type(&schema).ok()? {
                            DataType::List(elem) => Some(
                                udf.call(vec![text.clone(), lit(elem.data_type().to_string())]),
                            ),
                            _ => None,
                        }
                    };
                    if let Some(r) = as_array(right, left) {
                        return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                            left.clone(),
                            *op,
                            Box::new(r),
                        ))));
                    }
                    if let Some(l) = as_array(left, right) {
                        return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                            Box::new(l),
                            *op,
                            right.clone(),
                        ))));
                    }
                    Ok(Transformed::no(x))
                })?;
                Ok(rewritten.update_data(|x| crate::types::keep_name(saved, x)))
            })
        })
        .map(|t| t.data)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn times_of_day_without_seconds_get_them() {
        assert_eq!(
            with_seconds("2024-01-01 10:00").as_deref(),
            Some("2024-01-01 10:00:00")
        );
        assert_eq!(
            with_seconds("2024-3-5T10:07+02").as_deref(),
            Some("2024-3-5T10:07:00+02")
        );
        assert_eq!(with_seconds("2024-01-01 10:00:05"), None);
        assert_eq!(
            with_seconds("2024-01-01 7:05").as_deref(),
            Some("2024-01-01 07:05:00")
        );
        assert_eq!(
            with_seconds("2024-01-01 7:05:09.5").as_deref(),
            Some("2024-01-01 07:05:09.5")
        );
        assert_eq!(with_seconds("2024-01-01"), None);
        assert_eq!(with_seconds("10:00"), None);
    }

    use super::*;

    #[test]
    fn special_words_are_dates_and_times() {
        assert_eq!(
            special_time(" Epoch", false).as_deref(),
            Some("1970-01-01 00:00:00.000000")
        );
        assert_eq!(special_time("epoch", true).as_deref(), Some("1970-01-01"));
        let today = chrono::Utc::now().date_naive();
        assert_eq!(
            special_time("TOMORROW", true),
            Some(
                (today + chrono::Duration::days(1))
                    .format("%Y-%m-%d")
                    .to_string()
            )
        );
        for other in ["2024-01-01", "infinity", "nowhere", ""] {
            assert_eq!(special_time(other, false), None, "{other}");
        }
    }

    #[test]
    fn array_text_parses_like_postgres() {
        let s = |v: &[Option<&str>]| v.iter().map(|x| x.map(String::from)).collect::<Vec<_>>();
        assert_eq!(
            parse_array_text("{1,2,3}").unwrap(),
            s(&[Some("1"), Some("2"), Some("3")])
        );
        assert_eq!(parse_array_text("{}").unwrap(), s(&[]));
        assert_eq!(
            parse_array_text(r#"{a,"b c","",NULL,"NULL"}"#).unwrap(),
            s(&[Some("a"), Some("b c"), Some(""), None, Some("NULL")])
        );
        assert_eq!(parse_array_text(r#"{"q\"x"}"#).unwrap(), s(&[Some("q\"x")]));
        assert!(parse_array_text("1,2").is_err());
        assert!(parse_array_text("{1,,2}").is_err());
        assert!(parse_array_text("{{1},{2}}").is_err());
    }

    #[test]
    fn bytea_text_parses_like_postgres() {
        assert_eq!(parse_bytea_text("\\x00ff10").unwrap(), vec![0, 255, 16]);
        assert_eq!(parse_bytea_text("\\x").unwrap(), Vec::<u8>::new());
        assert_eq!(
            parse_bytea_text("ab\\\\c\\001").unwrap(),
            b"ab\\c\x01".to_vec()
        );
        assert!(parse_bytea_text("\\x0").is_err());
        assert!(parse_bytea_text("\\xzz").is_err());
    }
}
