//! Text values into column types, PostgreSQL's input rules, one whole
//! column at a time. When a column fails, the rows are tried one by one to
//! name the first bad value (or, with `ON_ERROR ignore`, to drop every bad
//! row), so the fast path pays nothing for error reporting.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options, filter};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use super::text::{RawRows, excerpt};
use crate::error::{Error, ErrorKind, Result};
use crate::types::PgType;
use crate::types::text::{strings_to_bytea, strings_to_list};

/// Converts decoded rows into batches of the target columns.
pub struct Converter {
    label: String,
    columns: Vec<(String, PgType)>,
    schema: SchemaRef,
    skip_bad_rows: bool,
    pub skipped: u64,
}

/// Why a decimal text did not parse on the fast path.
#[derive(Debug, PartialEq)]
enum DecimalText {
    Invalid,
    Overflow,
    /// Exponent notation and such: left to Arrow's parser.
    Unusual,
}

/// `[+-]digits[.digits]` with surrounding spaces as an integer scaled to
/// `scale` digits, rounded half away from zero, fitting `precision`.
fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, DecimalText> {
    let b = text.trim_matches(' ').as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let scale = scale.max(0) as usize;
    let mut mant: i128 = 0;
    let mut seen = 0usize;
    let mut frac = 0usize;
    let mut in_frac = false;
    let mut round_up = false;
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                seen += 1;
                if in_frac {
                    frac += 1;
                    if frac > scale {
                        // The first dropped digit decides the rounding.
                        if frac == scale + 1 {
                            round_up = c >= b'5';
                        }
                        continue;
                    }
                }
                mant = mant
                    .checked_mul(10)
                    .and_then(|m| m.checked_add((c - b'0') as i128))
                    .ok_or(DecimalText::Overflow)?;
            }
            b'.' if !in_frac => in_frac = true,
            b'e' | b'E' => return Err(DecimalText::Unusual),
            _ => return Err(DecimalText::Invalid),
        }
    }
    if seen == 0 {
        return Err(DecimalText::Invalid);
    }
    let kept = frac.min(scale);
    for _ in kept..scale {
        mant = mant.checked_mul(10).ok_or(DecimalText::Overflow)?;
    }
    if round_up {
        mant += 1;
    }
    if mant >= 10i128.pow(precision as u32) {
        return Err(DecimalText::Overflow);
    }
    Ok(if neg { -mant } else { mant })
}

/// `1.5e3` as `1500`, `25e-3` as `0.025`: exponent notation written out.
fn expand_exponent(text: &str) -> Option<String> {
    let t = text.trim_matches(' ');
    let (mantissa, exp) = t.split_once(['e', 'E'])?;
    let exp: i64 = exp.parse().ok()?;
    let (sign, m) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    let digits = format!("{int}{frac}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || exp.abs() > 100 {
        return None;
    }
    let point = int.len() as i64 + exp;
    Some(if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{sign}{a}.{b}")
    })
}

fn decimal_column(
    strings: &StringArray,
    p: u8,
    s: i8,
) -> datafusion::error::Result<Option<ArrayRef>> {
    use datafusion::arrow::array::Decimal128Builder;
    use datafusion::arrow::error::ArrowError;
    let mut b = Decimal128Builder::with_capacity(strings.len()).with_precision_and_scale(p, s)?;
    for v in strings.iter() {
        match v {
            None => b.append_null(),
            Some(t) => match parse_decimal(t, p, s).or_else(|e| match e {
                DecimalText::Unusual => match expand_exponent(t) {
                    Some(plain) => parse_decimal(&plain, p, s),
                    None => Err(DecimalText::Invalid),
                },
                other => Err(other),
            }) {
                Ok(n) => b.append_value(n),
                Err(DecimalText::Unusual) => return Ok(None),
                Err(DecimalText::Invalid) => {
                    return Err(ArrowError::CastError(format!(
                        "Cannot cast string '{t}' to decimal"
                    ))
                    .into());
                }
                Err(DecimalText::Overflow) => {
                    return Err(ArrowError::CastError(format!(
                        "value '{t}' out of range for Decimal128({p}, {s})"
                    ))
                    .into());
                }
            },
        }
    }
    Ok(Some(Arc::new(b.finish())))
}

/// A date or timestamp in a form Arrow's parser does not take but
/// PostgreSQL does: surrounding spaces, or minutes without seconds.
fn lenient_datetime(text: &str) -> Option<String> {
    let t = text.trim_matches(' ');
    for f in ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, f) {
            return Some(dt.format("%Y-%m-%d %H:%M:%S").to_string());
        }
    }
    Some(t.to_string())
}

/// Dates and timestamps: Arrow's parser, then the lenient forms value by
/// value when it refuses some.
fn datetime_column(strings: &StringArray, ty: &DataType) -> datafusion::error::Result<ArrayRef> {
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    match cast_with_options(strings, ty, &strict) {
        Ok(a) => Ok(a),
        Err(first) => {
            let fixed: StringArray = strings
                .iter()
                .map(|v| v.and_then(lenient_datetime))
                .collect();
            cast_with_options(&fixed, ty, &strict).map_err(|_| first.into())
        }
    }
}

/// Checks beyond the Arrow type: a float that overflows is out of range
/// rather than infinite.
fn check_column(strings: &StringArray, array: &ArrayRef) -> datafusion::error::Result<()> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Float32Type, Float64Type};
    use datafusion::arrow::error::ArrowError;
    let infinite: Vec<usize> = match array.data_type() {
        DataType::Float64 => (0..array.len())
            .filter(|&i| {
                array.is_valid(i) && array.as_primitive::<Float64Type>().value(i).is_infinite()
            })
            .collect(),
        DataType::Float32 => (0..array.len())
            .filter(|&i| {
                array.is_valid(i) && array.as_primitive::<Float32Type>().value(i).is_infinite()
            })
            .collect(),
        _ => vec![],
    };
    for i in infinite {
        let t = strings
            .value(i)
            .trim()
            .trim_start_matches(['+', '-'])
            .to_ascii_lowercase();
        if t != "inf" && t != "infinity" {
            return Err(ArrowError::CastError(format!(
                "value '{}' out of range",
                strings.value(i)
            ))
            .into());
        }
    }
    Ok(())
}

/// One column of text as `ty`, or the Arrow error of the first failure.
fn convert_column(strings: &StringArray, ty: &DataType) -> datafusion::error::Result<ArrayRef> {
    if matches!(ty, DataType::Date32 | DataType::Timestamp(..)) {
        return datetime_column(strings, ty);
    }
    if let DataType::Decimal128(p, s) = ty
        && let Some(a) = decimal_column(strings, *p, *s)?
    {
        return Ok(a);
    }
    Ok(match ty {
        DataType::Utf8 => Arc::new(strings.clone()),
        DataType::Binary => strings_to_bytea(strings)?,
        DataType::List(elem) => strings_to_list(strings, elem.clone())?,
        other => cast_with_options(
            strings,
            other,
            &CastOptions {
                safe: false,
                ..Default::default()
            },
        )?,
    })
}

/// PostgreSQL's message for a value that does not read as `ty`.
pub fn input_error(value: &str, ty: &PgType) -> Error {
    let base = ty.name.as_str();
    let numeric_like = value.trim().parse::<f64>().is_ok();
    match base {
        "smallint" | "integer" | "bigint" if numeric_like && !value.contains(['.', 'e', 'E']) => {
            Error::new(
                ErrorKind::NumericOutOfRange,
                format!("value \"{value}\" is out of range for type {base}"),
            )
        }
        "real" | "double precision" if numeric_like => Error::new(
            ErrorKind::NumericOutOfRange,
            format!("\"{value}\" is out of range for type {base}"),
        ),
        "json" | "jsonb" | "uuid" => crate::types::typed::TextType::of(base)
            .and_then(|t| t.input(value).err())
            .unwrap_or_else(|| Error::new(ErrorKind::InvalidText, "invalid input")),
        "numeric" if numeric_like => Error::new(
            ErrorKind::NumericOutOfRange,
            "numeric field overflow",
        )
        .with_detail(format!(
            "A field with precision {}, scale {} must round to an absolute value less than 10^{}.",
            ty.length.unwrap_or(38),
            ty.scale.unwrap_or(0),
            ty.length.unwrap_or(38) as i64 - ty.scale.unwrap_or(0) as i64
        )),
        "date" | "timestamp without time zone" | "timestamp with time zone" => Error::new(
            ErrorKind::InvalidDatetime,
            format!("invalid input syntax for type {base}: \"{value}\""),
        ),
        "bytea" => match value.strip_prefix("\\x").and_then(|h| {
            h.chars()
                .find(|c| !c.is_ascii_hexdigit() && !c.is_whitespace())
        }) {
            Some(c) => Error::new(
                ErrorKind::InvalidParameter,
                format!("invalid hexadecimal digit: \"{c}\""),
            ),
            None => Error::new(
                ErrorKind::InvalidText,
                format!("invalid input syntax for type bytea: \"{value}\""),
            ),
        },
        b if b.ends_with("[]") => {
            let elem = b.trim_end_matches("[]");
            let elem_type = PgType {
                name: elem.to_string(),
                length: ty.length,
                scale: ty.scale,
            };
            // Name the element that does not read, as PostgreSQL does.
            let bad = crate::types::text::parse_array_text(value)
                .ok()
                .and_then(|items| {
                    items.into_iter().flatten().find(|item| {
                        convert_column(
                            &StringArray::from(vec![item.as_str()]),
                            &elem_type.arrow_type(),
                        )
                        .is_err()
                    })
                });
            match bad {
                Some(item) => input_error(&item, &elem_type),
                None => Error::new(
                    ErrorKind::InvalidText,
                    format!("malformed array literal: \"{value}\""),
                ),
            }
        }
        _ => Error::new(
            ErrorKind::InvalidText,
            format!("invalid input syntax for type {base}: \"{value}\""),
        ),
    }
}

impl Converter {
    pub fn new(
        table: &str,
        columns: Vec<(String, PgType)>,
        schema: SchemaRef,
        skip_bad_rows: bool,
    ) -> Converter {
        Converter {
            label: format!("COPY {table}"),
            columns,
            schema,
            skip_bad_rows,
            skipped: 0,
        }
    }

    pub fn set_label(&mut self, label: String) {
        self.label = label;
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The rows of `raw` as a batch of the target types.
    pub fn convert(&mut self, raw: RawRows) -> Result<RecordBatch> {
        let mut raw = raw;
        loop {
            match self.try_convert(&raw) {
                Ok(b) => return Ok(b),
                Err((col, err)) if !self.skip_bad_rows => return Err(self.locate(&raw, col, err)),
                Err((col, _)) => {
                    // Drop every row whose value in this column does not
                    // convert, then try again (other columns may fail too).
                    let strings = &raw.columns[col];
                    let keep: BooleanArray = (0..raw.len())
                        .map(|r| Some(self.column(col, &strings.slice(r, 1)).is_ok()))
                        .collect();
                    let dropped = keep.false_count() as u64;
                    self.skipped += dropped;
                    raw = filter_rows(&raw, &keep)?;
                }
            }
        }
    }

    /// Column `i` of the target from its text values.
    fn column(&self, i: usize, strings: &StringArray) -> datafusion::error::Result<ArrayRef> {
        if let Some(t) = crate::types::typed::TextType::of(&self.columns[i].1.name) {
            return t.input_array(&(Arc::new(strings.clone()) as ArrayRef));
        }
        let a = convert_column(strings, self.schema.field(i).data_type())?;
        check_column(strings, &a)?;
        Ok(a)
    }

    fn try_convert(&self, raw: &RawRows) -> std::result::Result<RecordBatch, (usize, String)> {
        let mut arrays = Vec::with_capacity(raw.columns.len());
        for (i, strings) in raw.columns.iter().enumerate() {
            arrays.push(self.column(i, strings).map_err(|e| (i, e.to_string()))?);
        }
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| (0, e.to_string()))
    }

    /// The error for the first row of column `col` that does not convert.
    fn locate(&self, raw: &RawRows, col: usize, err: String) -> Error {
        let strings = &raw.columns[col];
        let (name, pg) = &self.columns[col];
        for r in 0..raw.len() {
            if self.column(col, &strings.slice(r, 1)).is_err() {
                let value = strings.value(r);
                return input_error(value, pg).with_context(format!(
                    "{}, line {}, column {name}: \"{}\"",
                    self.label,
                    raw.lines[r],
                    excerpt(value.as_bytes())
                ));
            }
        }
        Error::new(ErrorKind::InvalidText, err).with_context(self.label.clone())
    }
}

fn filter_rows(raw: &RawRows, keep: &BooleanArray) -> Result<RawRows> {
    let mut columns = Vec::with_capacity(raw.columns.len());
    for c in &raw.columns {
        let f = filter(c, keep)?;
        columns.push(
            f.as_any()
                .downcast_ref::<StringArray>()
                .expect("filter keeps the type")
                .clone(),
        );
    }
    let lines = raw
        .lines
        .iter()
        .zip(keep.iter())
        .filter(|(_, k)| k.unwrap_or(false))
        .map(|(l, _)| *l)
        .collect();
    Ok(RawRows { columns, lines })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};

    fn pg(name: &str) -> PgType {
        let sql = format!("CREATE TABLE t (c {name})");
        let stmts = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            &sql,
        )
        .unwrap();
        let datafusion::sql::sqlparser::ast::Statement::CreateTable(ct) = &stmts[0] else {
            panic!()
        };
        PgType::from_sql(&ct.columns[0].data_type).unwrap()
    }

    fn converter(types: &[&str], skip: bool) -> Converter {
        let cols: Vec<(String, PgType)> = types
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("c{i}"), pg(t)))
            .collect();
        let schema = Arc::new(Schema::new(
            cols.iter()
                .map(|(n, t)| Field::new(n, t.arrow_type(), true))
                .collect::<Vec<_>>(),
        ));
        Converter::new("t", cols, schema, skip)
    }

    fn raw(cols: &[&[Option<&str>]]) -> RawRows {
        RawRows {
            columns: cols.iter().map(|c| StringArray::from(c.to_vec())).collect(),
            lines: (1..=cols[0].len() as u64).collect(),
        }
    }

    #[test]
    fn converts_postgres_text() {
        let mut c = converter(
            &[
                "integer",
                "numeric(8,2)",
                "boolean",
                "date",
                "int[]",
                "bytea",
            ],
            false,
        );
        let b = c
            .convert(raw(&[
                &[Some("1"), None],
                &[Some("12.50"), Some("-3")],
                &[Some("t"), Some("off")],
                &[Some("2024-02-29"), None],
                &[Some("{1,NULL,3}"), Some("{}")],
                &[Some("\\x00ff"), None],
            ]))
            .unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.column(0).null_count(), 1);
    }

    #[test]
    fn first_bad_value_is_named_with_line_and_column() {
        let mut c = converter(&["text", "integer"], false);
        let e = c
            .convert(raw(&[
                &[Some("a"), Some("b"), Some("c")],
                &[Some("1"), Some("x2"), Some("3")],
            ]))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidText);
        assert_eq!(e.message, "invalid input syntax for type integer: \"x2\"");
        assert_eq!(
            e.context.as_deref(),
            Some("COPY t, line 2, column c1: \"x2\"")
        );
        let e = c
            .convert(raw(&[&[Some("a")], &[Some("99999999999")]]))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NumericOutOfRange);
        let mut d = converter(&["date"], false);
        let e = d.convert(raw(&[&[Some("2024-13-01")]])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidDatetime);
    }

    #[test]
    fn decimals_parse_and_round_like_postgres() {
        assert_eq!(parse_decimal("12.345", 10, 2), Ok(1235));
        assert_eq!(parse_decimal("-12.345", 10, 2), Ok(-1235));
        assert_eq!(parse_decimal(" 7 ", 10, 2), Ok(700));
        assert_eq!(parse_decimal("0.5", 3, 0), Ok(1));
        assert_eq!(parse_decimal(".25", 5, 2), Ok(25));
        assert_eq!(parse_decimal("12.3449", 10, 2), Ok(1234));
        assert_eq!(parse_decimal("999.995", 5, 2), Err(DecimalText::Overflow));
        assert_eq!(parse_decimal("1000", 5, 2), Err(DecimalText::Overflow));
        assert_eq!(parse_decimal("1e3", 5, 2), Err(DecimalText::Unusual));
        assert_eq!(expand_exponent("1e3").as_deref(), Some("1000"));
        assert_eq!(expand_exponent("-1.5E-3").as_deref(), Some("-0.0015"));
        assert_eq!(expand_exponent("12.5e1").as_deref(), Some("125"));
        assert_eq!(expand_exponent("x1e3"), None);
        assert_eq!(parse_decimal("1.2.3", 5, 2), Err(DecimalText::Invalid));
        assert_eq!(parse_decimal("-", 5, 2), Err(DecimalText::Invalid));
        assert_eq!(parse_decimal("", 5, 2), Err(DecimalText::Invalid));
    }

    #[test]
    fn dates_and_timestamps_in_postgres_spellings() {
        let mut c = converter(&["date", "timestamp"], false);
        let b = c
            .convert(raw(&[
                &[Some(" 2024-01-02 "), Some("2024-01-03")],
                &[Some("2024-01-02 03:04"), Some("2024-01-02T03:04:05.5")],
            ]))
            .unwrap();
        assert_eq!(b.num_rows(), 2);
        assert!(c.convert(raw(&[&[Some("2024-01-32")], &[None]])).is_err());
    }

    #[test]
    fn ignore_drops_bad_rows_and_counts_them() {
        let mut c = converter(&["integer", "date"], true);
        let b = c
            .convert(raw(&[
                &[Some("1"), Some("x"), Some("3"), Some("4")],
                &[Some("2024-01-01"), Some("2024-01-02"), Some("bad"), None],
            ]))
            .unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(c.skipped, 2);
    }
}
