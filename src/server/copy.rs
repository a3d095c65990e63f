//! The COPY sub-protocol: CopyData in for `COPY ... FROM STDIN`, CopyData
//! out for `COPY ... TO STDOUT` in text, CSV and binary formats.
//!
//! Copy-in data is handed to the statement's [`CopyIn`] as it arrives; the
//! engine decodes and writes it. Copy-out rows are encoded here, one
//! CopyData message per row as PostgreSQL sends them.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, BytesMut};
use datafusion::arrow::record_batch::RecordBatch;
use futures::{Sink, SinkExt, Stream, StreamExt, stream};
use pgwire::api::ClientInfo;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyEncoder, CopyResponse, FieldInfo, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::response::NoticeResponse;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql};
use tokio::sync::Mutex;

use super::sqlstate::to_pgwire;
use crate::engine::Session;
use crate::engine::copy::{CopyIn, CopyOut};
use crate::error::{Error, ErrorKind};
use crate::frontend::copy::{CopyFormat, CopyOptions, ForceQuote, Header};

/// The COPY FROM a connection is in the middle of, if any.
pub type CopySlot = Arc<Mutex<Option<Box<CopyIn>>>>;

pub struct CopyReceiver {
    pub slot: CopySlot,
    pub session: Arc<Mutex<Session>>,
}

impl CopyReceiver {
    async fn fail(&self, e: &Error) -> PgWireError {
        self.session.lock().await.mark_failed();
        to_pgwire(e)
    }
}

#[async_trait]
impl CopyHandler for CopyReceiver {
    async fn on_copy_data<C>(&self, _client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut slot = self.slot.lock().await;
        let Some(copy) = slot.as_mut() else {
            return Ok(());
        };
        let fed = match copy.deadline {
            Some(d) => tokio::time::timeout_at(d, copy.feed(&data.data))
                .await
                .unwrap_or_else(|_| Err(crate::interrupt::timeout_error())),
            None => copy.feed(&data.data).await,
        };
        if let Err(e) = fed {
            // Dropping the copy abandons its write: nothing is committed.
            slot.take();
            drop(slot);
            return Err(self.fail(&e).await);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(copy) = self.slot.lock().await.take() else {
            return Err(to_pgwire(&Error::new(
                ErrorKind::Internal,
                "COPY data ended with no COPY in progress",
            )));
        };
        // Past the deadline nothing is committed. Once the commit has
        // begun it runs to its end: a commit reported as canceled must
        // not land.
        if copy
            .deadline
            .is_some_and(|d| d <= tokio::time::Instant::now())
        {
            return Err(self.fail(&crate::interrupt::timeout_error()).await);
        }
        match copy.finish().await {
            Ok((rows, skipped)) => {
                if skipped > 0 {
                    let info = ErrorInfo::new(
                        "NOTICE".into(),
                        "00000".into(),
                        crate::engine::copy::skipped_notice(skipped),
                    );
                    client
                        .send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
                            info,
                        )))
                        .await?;
                }
                let tag = Tag::new("COPY").with_rows(rows);
                client
                    .send(PgWireBackendMessage::CommandComplete(tag.into()))
                    .await?;
                Ok(())
            }
            Err(e) => Err(self.fail(&e).await),
        }
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let copy = self.slot.lock().await.take();
        let mut e = Error::new(
            ErrorKind::QueryCanceled,
            format!("COPY from stdin failed: {}", fail.message),
        );
        if let Some(c) = copy {
            e = e.with_context(c.position());
        }
        self.fail(&e).await
    }
}

/// PostgreSQL's text and CSV COPY row formats.
struct TextRows {
    csv: bool,
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: Vec<u8>,
    force_quote: Vec<bool>,
    col: usize,
    buf: BytesMut,
    value: BytesMut,
}

impl TextRows {
    fn new(o: &CopyOptions, names: &[String]) -> TextRows {
        TextRows {
            csv: o.format == CopyFormat::Csv,
            delimiter: o.delimiter() as u8,
            quote: o.quote() as u8,
            escape: o.escape() as u8,
            null: o.null_string().as_bytes().to_vec(),
            force_quote: names
                .iter()
                .map(|n| match &o.force_quote {
                    ForceQuote::None => false,
                    ForceQuote::All => true,
                    ForceQuote::Columns(c) => c.contains(n),
                })
                .collect(),
            col: 0,
            buf: BytesMut::new(),
            value: BytesMut::new(),
        }
    }

    fn put_value(&mut self, v: &[u8], force_quote: bool) {
        if self.csv {
            let needs_quote = force_quote
                || v == self.null.as_slice()
                || v == b"\\."
                || v.iter()
                    .any(|&b| b == self.delimiter || b == self.quote || b == b'\n' || b == b'\r');
            if !needs_quote {
                self.buf.put_slice(v);
                return;
            }
            self.buf.put_u8(self.quote);
            for &b in v {
                if b == self.quote || b == self.escape {
                    self.buf.put_u8(self.escape);
                }
                self.buf.put_u8(b);
            }
            self.buf.put_u8(self.quote);
        } else {
            let d = self.delimiter;
            if !v
                .iter()
                .any(|&b| b == b'\\' || b == d || (8..=13).contains(&b))
            {
                self.buf.put_slice(v);
                return;
            }
            for &b in v {
                let esc = match b {
                    8 => Some(b'b'),
                    12 => Some(b'f'),
                    b'\n' => Some(b'n'),
                    b'\r' => Some(b'r'),
                    b'\t' => Some(b't'),
                    11 => Some(b'v'),
                    b'\\' => Some(b'\\'),
                    _ if b == self.delimiter => Some(b),
                    _ => None,
                };
                match esc {
                    Some(e) => {
                        self.buf.put_u8(b'\\');
                        self.buf.put_u8(e);
                    }
                    None => self.buf.put_u8(b),
                }
            }
        }
    }

    /// One value already in text form (`None` is NULL) as column `i`.
    fn put_cell(&mut self, i: usize, v: Option<&[u8]>) {
        if i > 0 {
            self.buf.put_u8(self.delimiter);
        }
        match v {
            None => self.buf.put_slice(&self.null),
            Some(v) => {
                let force = self.force_quote.get(i).copied().unwrap_or(false);
                self.put_value(v, force);
            }
        }
        self.col = i + 1;
    }

    fn header(&mut self, names: &[String]) {
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                self.buf.put_u8(self.delimiter);
            }
            self.put_value(n.as_bytes(), false);
        }
        self.buf.put_u8(b'\n');
    }
}

impl arrow_pg::encoder::Encoder for TextRows {
    type Item = CopyData;

    fn encode_field<T>(&mut self, value: &T, pg_field: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        if self.col > 0 {
            self.buf.put_u8(self.delimiter);
        }
        let mut v = std::mem::take(&mut self.value);
        v.clear();
        let null = value.to_sql_text(pg_field.datatype(), &mut v, pg_field.format_options())?;
        match null {
            IsNull::Yes => {
                let n = self.null.clone();
                self.buf.put_slice(&n);
            }
            IsNull::No => {
                let force = self.force_quote.get(self.col).copied().unwrap_or(false);
                self.put_value(&v, force);
            }
        }
        self.value = v;
        self.col += 1;
        Ok(())
    }

    fn take_row(&mut self) -> CopyData {
        self.buf.put_u8(b'\n');
        self.col = 0;
        CopyData::new(self.buf.split().freeze())
    }
}

enum RowEncoder {
    Text(TextRows),
    Binary(CopyEncoder),
}

/// A column's values as text, made for the whole batch at once for the
/// common types (the generic encoder formats one value at a time).
enum Cells<'a> {
    Str(&'a datafusion::arrow::array::StringArray),
    View(&'a datafusion::arrow::array::StringViewArray),
    Built(datafusion::arrow::array::StringArray),
    /// Formatted value by value by the generic encoder.
    Generic,
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (proleptic Gregorian,
/// years 1..=9999; others go to the generic encoder).
fn date_text(days: i32, out: &mut String) -> bool {
    // Days to civil date (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if !(1..=9999).contains(&y) {
        return false;
    }
    use std::fmt::Write;
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    true
}

fn cells(col: &datafusion::arrow::array::ArrayRef) -> Cells<'_> {
    use datafusion::arrow::array::{Array, AsArray, StringBuilder};
    use datafusion::arrow::datatypes::*;
    let n = col.len();
    let mut b = StringBuilder::with_capacity(n, n * 8);
    let mut s = String::new();
    macro_rules! ints {
        ($t:ty) => {{
            let a = col.as_primitive::<$t>();
            let mut f = itoa::Buffer::new();
            for i in 0..n {
                if a.is_null(i) {
                    b.append_null();
                } else {
                    b.append_value(f.format(a.value(i)));
                }
            }
        }};
    }
    match col.data_type() {
        DataType::Utf8 => return Cells::Str(col.as_string::<i32>()),
        DataType::Utf8View => return Cells::View(col.as_string_view()),
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Boolean => {
            let a = col.as_boolean();
            for i in 0..n {
                if a.is_null(i) {
                    b.append_null();
                } else {
                    b.append_value(if a.value(i) { "t" } else { "f" });
                }
            }
        }
        DataType::Decimal128(_, scale) => {
            let a = col.as_primitive::<Decimal128Type>();
            for i in 0..n {
                if a.is_null(i) {
                    b.append_null();
                } else {
                    s.clear();
                    crate::types::output::decimal_text(a.value(i), *scale, &mut s);
                    b.append_value(&s);
                }
            }
        }
        DataType::Date32 => {
            let a = col.as_primitive::<Date32Type>();
            for i in 0..n {
                if a.is_null(i) {
                    b.append_null();
                } else {
                    s.clear();
                    if !date_text(a.value(i), &mut s) {
                        return Cells::Generic;
                    }
                    b.append_value(&s);
                }
            }
        }
        _ => return Cells::Generic,
    }
    Cells::Built(b.finish())
}

fn cell<'a>(c: &'a Cells<'a>, row: usize) -> Option<Option<&'a [u8]>> {
    use datafusion::arrow::array::Array;
    Some(match c {
        Cells::Str(a) => (!a.is_null(row)).then(|| a.value(row).as_bytes()),
        Cells::View(a) => (!a.is_null(row)).then(|| a.value(row).as_bytes()),
        Cells::Built(a) => (!a.is_null(row)).then(|| a.value(row).as_bytes()),
        Cells::Generic => return None,
    })
}

/// The messages of `batch`'s rows, and whether the encoder wrote them
/// (its first row starts with the binary signature).
fn encode_batch(
    enc: &mut RowEncoder,
    fields: &Arc<Vec<FieldInfo>>,
    batch: RecordBatch,
) -> PgWireResult<(Vec<CopyData>, bool)> {
    let mut out = Vec::with_capacity(batch.num_rows());
    match enc {
        RowEncoder::Binary(b) => {
            if let Some(rows) = super::binary_rows::binary_rows(&batch) {
                return Ok((rows.into_iter().map(CopyData::new).collect(), false));
            }
            let batch = numeric_columns(batch)?;
            let schema = batch.schema();
            for r in 0..batch.num_rows() {
                for (i, col) in batch.columns().iter().enumerate() {
                    arrow_pg::encoder::encode_value(b, col, r, schema.field(i), &fields[i])?;
                }
                out.push(b.take_copy());
            }
        }
        RowEncoder::Text(t) => {
            let batch = super::text::pg_text(batch, fields);
            let schema = batch.schema();
            let cols: Vec<Cells> = batch.columns().iter().map(cells).collect();
            for r in 0..batch.num_rows() {
                for (i, col) in batch.columns().iter().enumerate() {
                    match cell(&cols[i], r) {
                        Some(v) => t.put_cell(i, v),
                        None => {
                            t.col = i;
                            arrow_pg::encoder::encode_value(t, col, r, schema.field(i), &fields[i])?
                        }
                    }
                }
                out.push(arrow_pg::encoder::Encoder::take_row(t));
            }
        }
    }
    Ok((out, true))
}

/// One CopyData message of a COPY TO and the data rows it holds.
pub struct CopyChunk {
    pub data: bytes::Bytes,
    pub rows: usize,
}

/// Length of the binary format's header: signature, flags, extension length.
const BINARY_HEADER_LEN: usize = 19;

fn binary_header() -> bytes::Bytes {
    let mut b = BytesMut::with_capacity(BINARY_HEADER_LEN);
    b.put_slice(b"PGCOPY\n\xff\r\n\0");
    b.put_i32(0);
    b.put_i32(0);
    b.freeze()
}

/// `batch` with its values in the binary forms of their declared types,
/// as binary results have them: `character(n)` padded, a `uuid` in 16
/// bytes, a `jsonb` after its version byte. Numerics are left to the
/// encoders (see [`numeric_columns`]).
fn binary_values(batch: RecordBatch, fields: &[FieldInfo]) -> RecordBatch {
    let mut cols = batch.columns().to_vec();
    let mut changed = false;
    for (col, f) in cols.iter_mut().zip(fields) {
        if *f.datatype() == pgwire::api::Type::NUMERIC {
            continue;
        }
        if let Some(v) = crate::types::bpchar::width(f.datatype(), f.type_modifier())
            .and_then(|w| crate::types::bpchar::pad(col, w))
            .or_else(|| super::wire_types::binary_value(col, f))
        {
            *col = v;
            changed = true;
        }
    }
    if changed {
        super::text::with_columns(batch, cols)
    } else {
        batch
    }
}

/// `batch` with a numeric the encoder cannot send as PostgreSQL would
/// (beyond its 96 bits, or a zero that keeps its display scale) in
/// PostgreSQL's bytes.
fn numeric_columns(batch: RecordBatch) -> PgWireResult<RecordBatch> {
    let mut cols = batch.columns().to_vec();
    let mut changed = false;
    for col in cols.iter_mut() {
        if let Some(bytes) = crate::types::output::numeric_binary(col) {
            *col = bytes;
            changed = true;
        }
    }
    if !changed {
        return Ok(batch);
    }
    with_binary_columns(batch, cols)
}

/// `batch` with its columns replaced by `cols`, of which the binary ones
/// are new.
fn with_binary_columns(
    batch: RecordBatch,
    cols: Vec<datafusion::arrow::array::ArrayRef>,
) -> PgWireResult<RecordBatch> {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let schema = batch.schema();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(&cols)
        .map(|(f, c)| match c.data_type() {
            DataType::Binary => Field::new(f.name(), DataType::Binary, true),
            _ => f.as_ref().clone(),
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .map_err(|e| to_pgwire(&Error::from(e)))
}

/// The messages of a COPY TO: header (text HEADER or the binary
/// signature), one per row, and the binary trailer.
pub fn copy_out_stream(
    out: CopyOut,
    options: Arc<FormatOptions>,
) -> PgWireResult<(
    i8,
    usize,
    impl Stream<Item = PgWireResult<CopyChunk>> + Send + 'static,
)> {
    let binary = out.options.format == CopyFormat::Binary;
    let names: Vec<String> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let ncols = names.len();
    let mut first: Vec<PgWireResult<CopyChunk>> = Vec::new();
    let mut last: Vec<PgWireResult<CopyChunk>> = Vec::new();
    let (mut enc, fields) = if binary {
        last.push(Ok(CopyChunk {
            data: bytes::Bytes::from_static(&[0xff, 0xff]),
            rows: 0,
        }));
        // The declared types (uuid, jsonb, character(n)), as results have.
        let fields = Arc::new(super::wire_types::fields(
            &out.schema,
            &Format::UnifiedBinary,
            Some(options.clone()),
            &[],
        )?);
        (
            RowEncoder::Binary(CopyEncoder::new_binary(fields.clone())),
            fields,
        )
    } else {
        // The declared types: `character(n)` is padded where the rows
        // become text (`pg_text`).
        let fields = Arc::new(super::wire_types::fields(
            &out.schema,
            &Format::UnifiedText,
            Some(options.clone()),
            &[],
        )?);
        let mut t = TextRows::new(&out.options, &names);
        if out.options.header != Header::None {
            t.header(&names);
            first.push(Ok(CopyChunk {
                data: t.buf.split().freeze(),
                rows: 0,
            }));
        }
        (RowEncoder::Text(t), fields)
    };
    // The encoder writes the signature before its first row; ours goes
    // with the first message instead (below), which may be the trailer.
    let mut encoder_signature = binary;
    let rows = out
        .stream
        .map(move |b| {
            let msgs = b
                .map_err(|e| to_pgwire(&Error::from(e)))
                .map(|b| if binary { binary_values(b, &fields) } else { b })
                .and_then(|b| encode_batch(&mut enc, &fields, b));
            match msgs {
                Ok((m, encoded)) => stream::iter(
                    m.into_iter()
                        .map(|d| {
                            let data = if encoded && std::mem::take(&mut encoder_signature) {
                                d.data.slice(BINARY_HEADER_LEN..)
                            } else {
                                d.data
                            };
                            Ok(CopyChunk { data, rows: 1 })
                        })
                        .collect::<Vec<_>>(),
                ),
                Err(e) => stream::iter(vec![Err(e)]),
            }
        })
        .flatten();
    // The binary header travels in the same message as the first row (or
    // the trailer), where drivers such as tokio-postgres look for it.
    let mut header = binary.then(binary_header);
    let all = stream::iter(first)
        .chain(rows)
        .chain(stream::iter(last))
        .map(move |c| match (c, header.take()) {
            (Ok(c), Some(h)) => {
                let mut b = BytesMut::with_capacity(h.len() + c.data.len());
                b.put_slice(&h);
                b.put_slice(&c.data);
                Ok(CopyChunk {
                    data: b.freeze(),
                    rows: c.rows,
                })
            }
            (c, _) => c,
        });
    Ok((i8::from(binary), ncols, all))
}

/// Run a COPY TO STDOUT on the connection, as PostgreSQL does: an error
/// while rows are produced ends it with an ErrorResponse (never a
/// CopyFail, which only clients send). Returns the `COPY n` completion.
pub async fn send_copy_out<C>(
    client: &mut C,
    out: CopyOut,
    options: Arc<FormatOptions>,
) -> PgWireResult<pgwire::api::results::Response>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    use pgwire::messages::copy::CopyOutResponse;
    let (format, ncols, chunks) = copy_out_stream(out, options)?;
    let mut chunks = std::pin::pin!(chunks);
    client
        .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            format,
            ncols as i16,
            vec![format as i16; ncols],
        )))
        .await?;
    let mut rows = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        rows += chunk.rows;
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(chunk.data)))
            .await?;
    }
    client
        .send(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    Ok(pgwire::api::results::Response::Execution(
        Tag::new("COPY").with_rows(rows),
    ))
}

/// The response that starts a COPY FROM STDIN; the copy waits in `slot`.
pub async fn copy_in_response(
    copy: Box<CopyIn>,
    slot: &CopySlot,
) -> pgwire::api::results::Response {
    let (format, columns) = (copy.wire_format, copy.columns);
    *slot.lock().await = Some(copy);
    pgwire::api::results::Response::CopyIn(CopyResponse::new(format, columns, stream::empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_decimals_print_like_postgres() {
        let mut s = String::new();
        assert!(date_text(0, &mut s));
        assert_eq!(s, "1970-01-01");
        s.clear();
        assert!(date_text(19_782, &mut s));
        assert_eq!(s, "2024-02-29");
        s.clear();
        assert!(date_text(-719_162, &mut s));
        assert_eq!(s, "0001-01-01");
        assert!(!date_text(-719_163, &mut String::new()));
        for (v, scale, text) in [
            (150i128, 2i8, "1.50"),
            (-5, 2, "-0.05"),
            (0, 3, "0.000"),
            (12345, 0, "12345"),
            (-1234567, 3, "-1234.567"),
        ] {
            let mut s = String::new();
            crate::types::output::decimal_text(v, scale, &mut s);
            assert_eq!(s, text);
        }
    }
}
