//! PostgreSQL's binary COPY format decoded straight into typed Arrow
//! columns.
//!
//! ```text
//!  "PGCOPY\n\xff\r\n\0"  flags:i32  ext_len:i32 ext
//!  per row:  n:i16 (-1 ends the data)  n × (len:i32 (-1 NULL), bytes)
//! ```
//!
//! Values use the types' send formats: big-endian integers and floats,
//! dates and timestamps counted from 2000-01-01, numeric in base-10000
//! digits, arrays with a dimension header.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;

use crate::error::{Error, ErrorKind, Result};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Days and microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

enum Column {
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    /// Text; `jsonb` values carry a leading version byte.
    Str(StringBuilder, bool),
    Bin(BinaryBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Dec(Decimal128Builder, u8, i8),
    /// Arrays, gathered as values (rare enough not to need a builder).
    List(Vec<ScalarValue>, DataType),
}

fn column_for(ty: &DataType, jsonb: bool) -> Result<Column> {
    Ok(match ty {
        DataType::Int16 => Column::I16(Int16Builder::new()),
        DataType::Int32 => Column::I32(Int32Builder::new()),
        DataType::Int64 => Column::I64(Int64Builder::new()),
        DataType::Float32 => Column::F32(Float32Builder::new()),
        DataType::Float64 => Column::F64(Float64Builder::new()),
        DataType::Boolean => Column::Bool(BooleanBuilder::new()),
        DataType::Utf8 => Column::Str(StringBuilder::new(), jsonb),
        DataType::Binary => Column::Bin(BinaryBuilder::new()),
        DataType::Date32 => Column::Date(Date32Builder::new()),
        DataType::Timestamp(_, tz) => {
            Column::Ts(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
        }
        DataType::Decimal128(p, s) => Column::Dec(
            Decimal128Builder::new().with_precision_and_scale(*p, *s)?,
            *p,
            *s,
        ),
        DataType::List(_) => Column::List(Vec::new(), ty.clone()),
        other => return Err(Error::not_supported(format!("binary COPY into {other}"))),
    })
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidBinaryRepresentation, message)
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N]> {
    v.try_into()
        .map_err(|_| bad("incorrect binary data format"))
}

/// A base-10000 numeric as an integer scaled to `scale` digits, rounded
/// half away from zero; `None` for NaN.
fn numeric(v: &[u8], precision: u8, scale: i8) -> Result<Option<i128>> {
    if v.len() < 8 {
        return Err(bad("incorrect binary data format"));
    }
    let ndigits = i16::from_be_bytes([v[0], v[1]]) as i64;
    let weight = i16::from_be_bytes([v[2], v[3]]) as i64;
    let sign = u16::from_be_bytes([v[4], v[5]]);
    if sign == 0xC000 {
        return Ok(None);
    }
    if ndigits < 0 || v.len() != 8 + 2 * ndigits as usize {
        return Err(bad("incorrect binary data format"));
    }
    let overflow = || {
        Error::new(ErrorKind::NumericOutOfRange, "numeric field overflow").with_detail(format!(
            "A field with precision {precision}, scale {scale} must round to an absolute value \
             less than 10^{}.",
            precision as i64 - scale as i64
        ))
    };
    // value = Σ digit_i · 10000^(weight - i); scaled = value · 10^scale
    let mut mant: i128 = 0;
    for i in 0..ndigits as usize {
        let d = u16::from_be_bytes([v[8 + 2 * i], v[9 + 2 * i]]) as i128;
        mant = mant
            .checked_mul(10_000)
            .and_then(|m| m.checked_add(d))
            .ok_or_else(overflow)?;
    }
    if mant == 0 {
        return Ok(Some(0));
    }
    let exp = 4 * (weight - ndigits + 1) + scale as i64;
    let mut scaled = if exp >= 0 {
        10i128
            .checked_pow(exp as u32)
            .and_then(|p| mant.checked_mul(p))
            .ok_or_else(overflow)?
    } else {
        let div = 10i128.checked_pow((-exp) as u32);
        match div {
            Some(div) => {
                let q = mant / div;
                if (mant % div) * 2 >= div { q + 1 } else { q }
            }
            None => 0,
        }
    };
    if scaled >= 10i128.pow(precision as u32) {
        return Err(overflow());
    }
    if sign == 0x4000 {
        scaled = -scaled;
    }
    Ok(Some(scaled))
}

/// One element value of an array, decoded by the element's Arrow type.
fn scalar(v: Option<&[u8]>, ty: &DataType) -> Result<ScalarValue> {
    let Some(v) = v else {
        return Ok(ScalarValue::try_from(ty)?);
    };
    Ok(match ty {
        DataType::Int16 => ScalarValue::Int16(Some(i16::from_be_bytes(fixed(v)?))),
        DataType::Int32 => ScalarValue::Int32(Some(i32::from_be_bytes(fixed(v)?))),
        DataType::Int64 => ScalarValue::Int64(Some(i64::from_be_bytes(fixed(v)?))),
        DataType::Float32 => ScalarValue::Float32(Some(f32::from_be_bytes(fixed(v)?))),
        DataType::Float64 => ScalarValue::Float64(Some(f64::from_be_bytes(fixed(v)?))),
        DataType::Boolean => ScalarValue::Boolean(Some(fixed::<1>(v)?[0] != 0)),
        DataType::Utf8 => ScalarValue::Utf8(Some(utf8(v)?.to_string())),
        DataType::Binary => ScalarValue::Binary(Some(v.to_vec())),
        DataType::Date32 => {
            ScalarValue::Date32(Some(i32::from_be_bytes(fixed(v)?) + PG_EPOCH_DAYS))
        }
        DataType::Timestamp(_, tz) => ScalarValue::TimestampMicrosecond(
            Some(i64::from_be_bytes(fixed(v)?) + PG_EPOCH_MICROS),
            tz.clone(),
        ),
        DataType::Decimal128(p, s) => ScalarValue::Decimal128(numeric(v, *p, *s)?, *p, *s),
        other => {
            return Err(Error::not_supported(format!(
                "binary COPY of {other} arrays"
            )));
        }
    })
}

fn utf8(v: &[u8]) -> Result<&str> {
    std::str::from_utf8(v).map_err(|e| {
        Error::new(
            ErrorKind::CharacterNotInRepertoire,
            format!(
                "invalid byte sequence for encoding \"UTF8\": 0x{:02x}",
                v[e.valid_up_to()]
            ),
        )
    })
}

fn be_i32(v: &[u8], at: usize) -> Result<i32> {
    v.get(at..at + 4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| bad("insufficient data left in message"))
}

/// A one-dimensional array in the send format, as a value of `list`.
fn array(v: &[u8], list: &DataType) -> Result<ScalarValue> {
    let DataType::List(field) = list else {
        unreachable!("list column")
    };
    let elem = field.data_type();
    let ndim = be_i32(v, 0)?;
    let mut values = Vec::new();
    if ndim > 1 {
        return Err(Error::not_supported("multidimensional arrays"));
    }
    if ndim == 1 {
        let n = be_i32(v, 12)?;
        let mut at = 20;
        for _ in 0..n {
            let len = be_i32(v, at)?;
            at += 4;
            if len < -1 {
                return Err(bad("invalid array element size"));
            }
            if len == -1 {
                values.push(scalar(None, elem)?);
            } else {
                let end = at + len as usize;
                let bytes = v
                    .get(at..end)
                    .ok_or_else(|| bad("insufficient data left in message"))?;
                values.push(scalar(Some(bytes), elem)?);
                at = end;
            }
        }
    }
    let arr: ArrayRef = ScalarValue::new_list_nullable(&values, elem);
    let arr = datafusion::arrow::compute::cast(&arr, list)?;
    Ok(ScalarValue::try_from_array(&arr, 0)?)
}

impl Column {
    fn push(&mut self, v: Option<&[u8]>) -> Result<()> {
        let Some(v) = v else {
            match self {
                Column::I16(b) => b.append_null(),
                Column::I32(b) => b.append_null(),
                Column::I64(b) => b.append_null(),
                Column::F32(b) => b.append_null(),
                Column::F64(b) => b.append_null(),
                Column::Bool(b) => b.append_null(),
                Column::Str(b, _) => b.append_null(),
                Column::Bin(b) => b.append_null(),
                Column::Date(b) => b.append_null(),
                Column::Ts(b) => b.append_null(),
                Column::Dec(b, ..) => b.append_null(),
                Column::List(vals, ty) => vals.push(ScalarValue::try_from(&*ty)?),
            }
            return Ok(());
        };
        match self {
            Column::I16(b) => b.append_value(i16::from_be_bytes(fixed(v)?)),
            Column::I32(b) => b.append_value(i32::from_be_bytes(fixed(v)?)),
            Column::I64(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Column::F32(b) => b.append_value(f32::from_be_bytes(fixed(v)?)),
            Column::F64(b) => b.append_value(f64::from_be_bytes(fixed(v)?)),
            Column::Bool(b) => b.append_value(fixed::<1>(v)?[0] != 0),
            Column::Str(b, jsonb) => {
                let text = if *jsonb && v.first() == Some(&1) {
                    &v[1..]
                } else {
                    v
                };
                b.append_value(utf8(text)?)
            }
            Column::Bin(b) => b.append_value(v),
            Column::Date(b) => b.append_value(i32::from_be_bytes(fixed(v)?) + PG_EPOCH_DAYS),
            Column::Ts(b) => b.append_value(i64::from_be_bytes(fixed(v)?) + PG_EPOCH_MICROS),
            Column::Dec(b, p, s) => match numeric(v, *p, *s)? {
                Some(n) => b.append_value(n),
                None => {
                    return Err(Error::new(
                        ErrorKind::InvalidText,
                        "cannot store NaN in a numeric column with a declared precision",
                    ));
                }
            },
            Column::List(vals, ty) => vals.push(array(v, ty)?),
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        Ok(match self {
            Column::I16(b) => Arc::new(b.finish()),
            Column::I32(b) => Arc::new(b.finish()),
            Column::I64(b) => Arc::new(b.finish()),
            Column::F32(b) => Arc::new(b.finish()),
            Column::F64(b) => Arc::new(b.finish()),
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Str(b, _) => Arc::new(b.finish()),
            Column::Bin(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Ts(b) => Arc::new(b.finish()),
            Column::Dec(b, ..) => Arc::new(b.finish()),
            Column::List(vals, ty) => {
                if vals.is_empty() {
                    datafusion::arrow::array::new_empty_array(ty)
                } else {
                    ScalarValue::iter_to_array(std::mem::take(vals))?
                }
            }
        })
    }

    fn len(&self) -> usize {
        match self {
            Column::I16(b) => b.len(),
            Column::I32(b) => b.len(),
            Column::I64(b) => b.len(),
            Column::F32(b) => b.len(),
            Column::F64(b) => b.len(),
            Column::Bool(b) => b.len(),
            Column::Str(b, _) => b.len(),
            Column::Bin(b) => b.len(),
            Column::Date(b) => b.len(),
            Column::Ts(b) => b.len(),
            Column::Dec(b, ..) => b.len(),
            Column::List(v, _) => v.len(),
        }
    }
}

/// Builders for a batch of columns fed with values in PostgreSQL's binary
/// send format (COPY binary, or rows a PostgreSQL server returns).
pub struct BinaryColumns {
    schema: SchemaRef,
    columns: Vec<Column>,
}

impl BinaryColumns {
    /// `jsonb[i]` marks the columns whose values are jsonb (a version byte
    /// before the text).
    pub fn new(schema: SchemaRef, jsonb: &[bool]) -> Result<BinaryColumns> {
        let columns = schema
            .fields()
            .iter()
            .zip(jsonb)
            .map(|(f, j)| column_for(f.data_type(), *j))
            .collect::<Result<Vec<_>>>()?;
        Ok(BinaryColumns { schema, columns })
    }

    /// Append one value (`None` is NULL) to column `c`.
    pub fn push(&mut self, c: usize, v: Option<&[u8]>) -> Result<()> {
        self.columns[c].push(v)
    }

    /// Rows gathered since the last batch.
    pub fn len(&self) -> usize {
        self.columns.first().map(|c| c.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn batch(&mut self) -> Result<RecordBatch> {
        let arrays = self
            .columns
            .iter_mut()
            .map(|c| c.finish())
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }
}

pub struct BinaryDecoder {
    names: Vec<String>,
    label: String,
    columns: BinaryColumns,
    buf: Vec<u8>,
    header_done: bool,
    ended: bool,
    /// Rows seen so far; PostgreSQL calls the n-th row "line n".
    row: u64,
    batch_rows: usize,
}

impl BinaryDecoder {
    /// `jsonb[i]` marks the columns declared jsonb (text with a version byte).
    pub fn new(
        schema: SchemaRef,
        jsonb: &[bool],
        table: &str,
        batch_rows: usize,
    ) -> Result<BinaryDecoder> {
        Ok(BinaryDecoder {
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            columns: BinaryColumns::new(schema, jsonb)?,
            label: format!("COPY {table}"),
            buf: Vec::new(),
            header_done: false,
            ended: false,
            row: 0,
            batch_rows,
        })
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<RecordBatch>> {
        if self.ended {
            return Ok(vec![]);
        }
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut pos = 0;
        if !self.header_done {
            if self.buf.len() < SIGNATURE.len() + 8 {
                return Ok(out);
            }
            if &self.buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(Error::new(
                    ErrorKind::BadCopyFormat,
                    "COPY file signature not recognized",
                )
                .with_context(self.label.clone()));
            }
            let ext = be_i32(&self.buf, SIGNATURE.len() + 4)? as usize;
            if self.buf.len() < SIGNATURE.len() + 8 + ext {
                return Ok(out);
            }
            pos = SIGNATURE.len() + 8 + ext;
            self.header_done = true;
        }
        let n = self.names.len();
        loop {
            if self.buf.len() < pos + 2 {
                break;
            }
            let count = i16::from_be_bytes([self.buf[pos], self.buf[pos + 1]]);
            if count == -1 {
                self.ended = true;
                pos = self.buf.len();
                break;
            }
            let line = self.row + 1;
            if count as usize != n {
                return Err(Error::new(
                    ErrorKind::BadCopyFormat,
                    format!("row field count is {count}, expected {n}"),
                )
                .with_context(format!("{}, line {line}", self.label)));
            }
            // Only decode a row once all of it is here.
            let mut at = pos + 2;
            let mut spans = Vec::with_capacity(n);
            let mut complete = true;
            for _ in 0..n {
                if self.buf.len() < at + 4 {
                    complete = false;
                    break;
                }
                let len = be_i32(&self.buf, at)?;
                at += 4;
                if len < -1 {
                    return Err(bad("invalid field size")
                        .with_context(format!("{}, line {line}", self.label)));
                }
                if len == -1 {
                    spans.push(None);
                } else {
                    let end = at + len as usize;
                    if self.buf.len() < end {
                        complete = false;
                        break;
                    }
                    spans.push(Some((at, end)));
                    at = end;
                }
            }
            if !complete {
                break;
            }
            for (c, span) in spans.into_iter().enumerate() {
                let v = span.map(|(s, e)| &self.buf[s..e]);
                if let Err(e) = self.columns.push(c, v) {
                    return Err(e.with_context(format!(
                        "{}, line {line}, column {}",
                        self.label, self.names[c]
                    )));
                }
            }
            self.row += 1;
            pos = at;
            if self.columns.len() >= self.batch_rows {
                out.push(self.columns.batch()?);
            }
        }
        self.buf.drain(..pos);
        Ok(out)
    }

    /// Where decoding stands, for the context of an error from outside.
    pub fn position(&self) -> String {
        format!("{}, line {}", self.label, self.row + 1)
    }

    /// The next input is a new file with its own header.
    pub fn start_file(&mut self, label: String) {
        self.label = label;
        self.header_done = false;
        self.ended = false;
        self.row = 0;
        self.buf.clear();
    }

    pub fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        if !self.buf.is_empty() || !self.header_done {
            return Err(Error::new(
                ErrorKind::BadCopyFormat,
                if self.header_done {
                    "unexpected EOF in COPY data"
                } else {
                    "COPY file signature not recognized"
                },
            )
            .with_context(self.label.clone()));
        }
        Ok(if !self.columns.is_empty() {
            vec![self.columns.batch()?]
        } else {
            vec![]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_digits_scale_and_round() {
        // 12345.678 = [1, 2345, 6780] weight 1, dscale 3
        let mut v = vec![0, 3, 0, 1, 0, 0, 0, 3];
        for d in [1u16, 2345, 6780] {
            v.extend(d.to_be_bytes());
        }
        assert_eq!(numeric(&v, 12, 2).unwrap(), Some(1_234_568));
        assert_eq!(numeric(&v, 12, 4).unwrap(), Some(123_456_780));
        assert!(numeric(&v, 5, 2).is_err());
        v[4] = 0x40;
        assert_eq!(numeric(&v, 12, 0).unwrap(), Some(-12_346));
        // 0.05 = [500] weight -1
        let mut w = vec![0, 1, 0xff, 0xff, 0, 0, 0, 2];
        w.extend(500u16.to_be_bytes());
        assert_eq!(numeric(&w, 5, 2).unwrap(), Some(5));
        // Malformed headers are errors, not panics.
        assert!(numeric(&[0xff, 0xff, 0, 0, 0, 0, 0, 0], 5, 2).is_err());
        assert!(numeric(&[0x7f, 0xff, 0x7f, 0xff, 0, 0, 0, 0], 5, 2).is_err());
        assert!(numeric(&[0, 0, 0x7f, 0xff, 0, 0, 0, 0], 5, 2).is_ok());
    }
}
