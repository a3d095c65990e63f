//! Binary COPY rows of a whole batch, column by column.
//!
//! The generic encoder looks up each cell's type, downcasts its column and
//! allocates a message per row; a 10M-row `COPY ... TO STDOUT (FORMAT
//! binary)`, which ADBC and connectorx use to fill a DataFrame, spent most
//! of its time there. Here each column is downcast once, every row of the
//! batch is written into one buffer, and each row's message is a slice of
//! it. Columns of a type this module does not know leave the batch to the
//! generic encoder (`None`); the bytes are PostgreSQL's binary forms of
//! the types the generic encoder gives them.

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType,
};

/// Days from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from the Unix epoch to PostgreSQL's.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// One column, downcast.
enum Col<'a> {
    I16(&'a datafusion::arrow::array::PrimitiveArray<Int16Type>),
    I32(&'a datafusion::arrow::array::PrimitiveArray<Int32Type>),
    I64(&'a datafusion::arrow::array::PrimitiveArray<Int64Type>),
    F32(&'a datafusion::arrow::array::PrimitiveArray<Float32Type>),
    F64(&'a datafusion::arrow::array::PrimitiveArray<Float64Type>),
    Bool(&'a datafusion::arrow::array::BooleanArray),
    Str(&'a datafusion::arrow::array::StringArray),
    View(&'a datafusion::arrow::array::StringViewArray),
    Bin(&'a datafusion::arrow::array::BinaryArray),
    Date(&'a datafusion::arrow::array::PrimitiveArray<Date32Type>),
    Micros(&'a datafusion::arrow::array::PrimitiveArray<TimestampMicrosecondType>),
    Numeric(
        &'a datafusion::arrow::array::PrimitiveArray<Decimal128Type>,
        u8,
    ),
}

fn column(a: &ArrayRef) -> Option<Col<'_>> {
    Some(match a.data_type() {
        DataType::Int16 => Col::I16(a.as_primitive()),
        DataType::Int32 => Col::I32(a.as_primitive()),
        DataType::Int64 => Col::I64(a.as_primitive()),
        DataType::Float32 => Col::F32(a.as_primitive()),
        DataType::Float64 => Col::F64(a.as_primitive()),
        DataType::Boolean => Col::Bool(a.as_boolean()),
        DataType::Utf8 => Col::Str(a.as_string()),
        DataType::Utf8View => Col::View(a.as_string_view()),
        DataType::Binary => Col::Bin(a.as_binary()),
        DataType::Date32 => Col::Date(a.as_primitive()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Col::Micros(a.as_primitive()),
        DataType::Decimal128(_, s) if (0..=38).contains(s) => {
            Col::Numeric(a.as_primitive(), *s as u8)
        }
        _ => return None,
    })
}

/// The rows of `batch` as binary COPY data, one slice per row (field
/// count, then each field's length and bytes); `None` when a column's
/// type is not one this module writes.
pub fn binary_rows(batch: &RecordBatch) -> Option<Vec<Bytes>> {
    let cols: Vec<Col> = batch.columns().iter().map(column).collect::<Option<_>>()?;
    let n = batch.num_rows();
    let mut buf = BytesMut::with_capacity(n * (2 + 12 * cols.len()));
    let mut ends = Vec::with_capacity(n);
    let mut digits = Vec::new();
    for r in 0..n {
        buf.put_i16(cols.len() as i16);
        for c in &cols {
            write_cell(&mut buf, c, r, &mut digits);
        }
        ends.push(buf.len());
    }
    let all = buf.freeze();
    let mut start = 0;
    Some(
        ends.into_iter()
            .map(|end| {
                let row = all.slice(start..end);
                start = end;
                row
            })
            .collect(),
    )
}

fn write_cell(buf: &mut BytesMut, c: &Col, r: usize, digits: &mut Vec<i16>) {
    macro_rules! fixed {
        ($a:expr, $len:expr, $put:ident, $v:expr) => {{
            if $a.is_null(r) {
                buf.put_i32(-1);
            } else {
                buf.put_i32($len);
                buf.$put($v($a.value(r)));
            }
        }};
    }
    match c {
        Col::I16(a) => fixed!(a, 2, put_i16, |v| v),
        Col::I32(a) => fixed!(a, 4, put_i32, |v| v),
        Col::I64(a) => fixed!(a, 8, put_i64, |v| v),
        Col::F32(a) => fixed!(a, 4, put_f32, |v| v),
        Col::F64(a) => fixed!(a, 8, put_f64, |v| v),
        Col::Bool(a) => fixed!(a, 1, put_u8, u8::from),
        Col::Date(a) => fixed!(a, 4, put_i32, |v: i32| v.wrapping_sub(PG_EPOCH_DAYS)),
        Col::Micros(a) => fixed!(a, 8, put_i64, |v: i64| v.wrapping_sub(PG_EPOCH_MICROS)),
        Col::Str(a) => bytes(buf, (!a.is_null(r)).then(|| a.value(r).as_bytes())),
        Col::View(a) => bytes(buf, (!a.is_null(r)).then(|| a.value(r).as_bytes())),
        Col::Bin(a) => bytes(buf, (!a.is_null(r)).then(|| a.value(r))),
        Col::Numeric(a, scale) => {
            if a.is_null(r) {
                buf.put_i32(-1);
            } else {
                numeric(buf, a.value(r), *scale, digits);
            }
        }
    }
}

fn bytes(buf: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => buf.put_i32(-1),
        Some(v) => {
            buf.put_i32(v.len() as i32);
            buf.put_slice(v);
        }
    }
}

/// PostgreSQL's binary `numeric` of `v` with `scale` fractional digits:
/// base-10000 digits without leading or trailing zero groups, the weight
/// of the first, the sign and the display scale (which a zero keeps).
fn numeric(buf: &mut BytesMut, v: i128, scale: u8, groups: &mut Vec<i16>) {
    // Fraction digits to whole groups of four: multiply by 10^pad.
    let pad = (4 - scale as u32 % 4) % 4;
    let Some(mut m) = v.unsigned_abs().checked_mul(10u128.pow(pad)) else {
        // Beyond 10^35 with padding: the general encoder.
        let b = crate::types::output::numeric_bytes(v, scale as i8);
        buf.put_i32(b.len() as i32);
        buf.put_slice(&b);
        return;
    };
    let frac_groups = (scale as u32).div_ceil(4) as i16;
    groups.clear();
    // Least significant first.
    while m > 0 {
        groups.push((m % 10_000) as i16);
        m /= 10_000;
    }
    // Trailing zero groups (the least significant) go; their count moves
    // nothing: the weight counts from the most significant group.
    let total = groups.len() as i16;
    let weight = total - frac_groups - 1;
    let skip = groups.iter().take_while(|g| **g == 0).count();
    let kept = &groups[skip..];
    let (weight, ndigits) = if kept.is_empty() {
        (0, 0)
    } else {
        (weight, kept.len() as i16)
    };
    buf.put_i32(8 + 2 * ndigits as i32);
    buf.put_i16(ndigits);
    buf.put_i16(weight);
    buf.put_u16(if v < 0 { 0x4000 } else { 0 });
    buf.put_i16(scale as i16);
    for g in kept.iter().rev() {
        buf.put_i16(*g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_of(v: i128, scale: u8) -> Vec<u8> {
        let mut buf = BytesMut::new();
        numeric(&mut buf, v, scale, &mut Vec::new());
        buf[4..].to_vec()
    }

    #[test]
    fn numerics_are_postgresqls_bytes() {
        // Against the general encoder (checked against numeric_send).
        let values: Vec<i128> = vec![
            0,
            1,
            -1,
            125,
            -125,
            9999,
            10_000,
            10_001,
            123_456_789,
            -100_000_000,
            5_000_000_000_000,
            92_233_720_368_547_758_070_000_000_000,
            99_999_999_999_999_999_999_999_999_999_999_999,
            -99_999_999_999_999_999_999_999_999_999_999_999_999,
        ];
        for v in values {
            for scale in [0u8, 1, 2, 3, 4, 5, 8, 10, 16, 20, 38] {
                assert_eq!(
                    numeric_of(v, scale),
                    crate::types::output::numeric_bytes(v, scale as i8),
                    "{v} scale {scale}"
                );
            }
        }
    }

    #[test]
    fn rows_are_slices_of_one_buffer() {
        use datafusion::arrow::array::{Int32Array, StringArray};
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter(vec![
            (
                "a",
                Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(StringArray::from(vec![Some("xy"), Some("")])) as ArrayRef,
            ),
        ])
        .unwrap();
        let rows = binary_rows(&batch).unwrap();
        assert_eq!(
            rows[0].as_ref(),
            [0, 2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, b'x', b'y']
        );
        assert_eq!(rows[1].as_ref(), [0, 2, 255, 255, 255, 255, 0, 0, 0, 0]);
    }
}
