//! PostgreSQL's COPY text and CSV formats, decoded from a byte stream that
//! arrives in arbitrary pieces into columns of text, one batch at a time.
//!
//! ```text
//!  bytes ─▶ rows (text: backslash escapes, \N; csv: quotes, "" and NULL '')
//!        ─▶ RawRows { one StringArray per column, the line of each row }
//! ```
//!
//! Values stay text here; [`super::convert`] turns them into the column
//! types, so a bad value is reported with its line and column.

use datafusion::arrow::array::{StringArray, StringBuilder};

use crate::error::{Error, ErrorKind, Result};
use crate::frontend::copy::{CopyFormat, CopyOptions, Header};

/// Rows decoded but not yet converted: text values per column.
pub struct RawRows {
    pub columns: Vec<StringArray>,
    /// The input line each row starts on (1-based).
    pub lines: Vec<u64>,
}

impl RawRows {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// One field of a row: its byte span in the buffer and how to read it.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// Text: holds a backslash. CSV: holds quotes to strip.
    escaped: bool,
    /// CSV: some part of it was quoted (so it is never NULL).
    quoted: bool,
}

/// Bytes gathered before a decoding pass.
const DECODE_CHUNK: usize = 256 * 1024;

pub struct TextDecoder {
    csv: bool,
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: Vec<u8>,
    header: Header,
    force_not_null: Vec<bool>,
    force_null: Vec<bool>,
    /// Names of the columns being loaded, for messages and HEADER MATCH.
    names: Vec<String>,
    /// `COPY <table>` for error context.
    label: String,
    buf: Vec<u8>,
    /// Line the next row starts on.
    line: u64,
    header_seen: bool,
    /// The `\.` end-of-data line was seen; the rest is ignored.
    ended: bool,
    batch_rows: usize,
    builders: Vec<StringBuilder>,
    lines: Vec<u64>,
    spans: Vec<Span>,
    scratch: Vec<u8>,
    /// `buf[..valid_utf8]` is known to be UTF-8 in this decoding pass.
    valid_utf8: usize,
}

fn column_flags(names: &[String], chosen: &[String]) -> Result<Vec<bool>> {
    for c in chosen {
        if !names.contains(c) {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("FORCE_NOT_NULL/FORCE_NULL column \"{c}\" is not referenced by COPY"),
            ));
        }
    }
    Ok(names.iter().map(|n| chosen.contains(n)).collect())
}

/// Show a line in an error context the way PostgreSQL does: lossy UTF-8,
/// cut after 100 characters.
pub fn excerpt(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out: String = s.chars().take(100).collect();
    if s.chars().count() > 100 {
        out.push_str("...");
    }
    out
}

impl TextDecoder {
    pub fn new(
        options: &CopyOptions,
        names: Vec<String>,
        table: &str,
        batch_rows: usize,
    ) -> Result<TextDecoder> {
        let csv = options.format == CopyFormat::Csv;
        Ok(TextDecoder {
            csv,
            delimiter: options.delimiter() as u8,
            quote: options.quote() as u8,
            escape: options.escape() as u8,
            null: options.null_string().as_bytes().to_vec(),
            header: options.header,
            force_not_null: column_flags(&names, &options.force_not_null)?,
            force_null: column_flags(&names, &options.force_null)?,
            builders: names.iter().map(|_| StringBuilder::new()).collect(),
            names,
            label: format!("COPY {table}"),
            buf: Vec::new(),
            line: 1,
            header_seen: false,
            ended: false,
            batch_rows,
            lines: Vec::new(),
            spans: Vec::new(),
            scratch: Vec::new(),
            valid_utf8: 0,
        })
    }

    /// Decode the complete rows in `data` (and what was left over from the
    /// previous piece); returns the batches that filled up.
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<RawRows>> {
        if self.ended {
            return Ok(vec![]);
        }
        self.buf.extend_from_slice(data);
        // Clients send a message per line (psql) or per few KB; decoding in
        // larger pieces keeps the per-call work off the per-row cost.
        if self.buf.len() < DECODE_CHUNK {
            return Ok(vec![]);
        }
        let mut out = Vec::new();
        let consumed = self.decode_rows(&mut out, false)?;
        self.buf.drain(..consumed);
        Ok(out)
    }

    /// The input ended: decode a last row without a newline and return what
    /// is left.
    pub fn finish(&mut self) -> Result<Vec<RawRows>> {
        let mut out = Vec::new();
        if !self.ended && !self.buf.is_empty() {
            if self.buf.last() != Some(&b'\n') {
                self.buf.push(b'\n');
            }
            let consumed = self.decode_rows(&mut out, true)?;
            self.buf.drain(..consumed);
        }
        if !self.lines.is_empty() {
            out.push(self.take_batch());
        }
        Ok(out)
    }

    /// Where decoding stands, for the context of an error from outside.
    pub fn position(&self) -> String {
        format!("{}, line {}", self.label, self.line)
    }

    /// The next input is a new file: its own header and line numbers,
    /// named in error context as `label` (`COPY t, file 'x.csv'`).
    pub fn start_file(&mut self, label: String) {
        self.label = label;
        self.line = 1;
        self.header_seen = false;
        self.ended = false;
        self.buf.clear();
    }

    fn take_batch(&mut self) -> RawRows {
        RawRows {
            columns: self.builders.iter_mut().map(|b| b.finish()).collect(),
            lines: std::mem::take(&mut self.lines),
        }
    }

    fn context(&self, row: &[u8]) -> String {
        format!("{}, line {}: \"{}\"", self.label, self.line, excerpt(row))
    }

    fn decode_rows(&mut self, out: &mut Vec<RawRows>, at_end: bool) -> Result<usize> {
        // One validation pass for the whole piece; a field past the first
        // bad byte (or NUL) is checked on its own, which names the bad row.
        self.valid_utf8 = match std::str::from_utf8(&self.buf) {
            Ok(_) => self.buf.len(),
            Err(e) => e.valid_up_to(),
        };
        if let Some(nul) = memchr::memchr(0, &self.buf[..self.valid_utf8]) {
            self.valid_utf8 = nul;
        }
        let mut pos = 0;
        loop {
            let scanned = if self.csv {
                self.scan_csv_row(pos)
            } else {
                self.scan_text_row(pos)
            };
            let Some((next, newlines)) = scanned else {
                if at_end && pos < self.buf.len() {
                    // PostgreSQL names the line where the data ran out.
                    self.line += memchr::memchr_iter(b'\n', &self.buf[pos..]).count() as u64;
                    return Err(Error::new(
                        ErrorKind::BadCopyFormat,
                        "unterminated CSV quoted field",
                    )
                    .with_context(self.context(&self.buf[pos..])));
                }
                return Ok(pos);
            };
            let row_end = next - 1;
            let row = &self.buf[pos..row_end];
            let row = row.strip_suffix(b"\r").unwrap_or(row);
            if row == b"\\." {
                self.ended = true;
                return Ok(self.buf.len());
            }
            if self.header != Header::None && !self.header_seen {
                self.header_seen = true;
                if self.header == Header::Match {
                    self.match_header(pos)?;
                }
            } else {
                self.add_row(pos, row_end)?;
                if self.lines.len() >= self.batch_rows {
                    out.push(self.take_batch());
                }
            }
            self.line += newlines;
            pos = next;
        }
    }

    /// Split the text-format row at `pos` into spans; `None` when the row
    /// is not complete yet. Returns the position after its newline.
    fn scan_text_row(&mut self, pos: usize) -> Option<(usize, u64)> {
        self.spans.clear();
        let buf = &self.buf;
        let (delim, len) = (self.delimiter, buf.len());
        let mut start = pos;
        let mut escaped = false;
        let mut i = pos;
        loop {
            let hit = memchr::memchr3(b'\\', delim, b'\n', &buf[i..])?;
            i += hit;
            match buf[i] {
                b'\\' => {
                    escaped = true;
                    if i + 1 >= len {
                        return None;
                    }
                    i += 2;
                }
                b'\n' => {
                    let end = if i > start && buf[i - 1] == b'\r' && !escaped_cr(buf, start, i) {
                        i - 1
                    } else {
                        i
                    };
                    self.spans.push(Span {
                        start,
                        end,
                        escaped,
                        quoted: false,
                    });
                    return Some((i + 1, 1));
                }
                _ => {
                    self.spans.push(Span {
                        start,
                        end: i,
                        escaped,
                        quoted: false,
                    });
                    escaped = false;
                    i += 1;
                    start = i;
                }
            }
        }
    }

    /// Split the CSV row at `pos` into spans; quoted fields may hold
    /// delimiters and newlines.
    fn scan_csv_row(&mut self, pos: usize) -> Option<(usize, u64)> {
        self.spans.clear();
        let buf = &self.buf;
        let (delim, quote, escape, len) = (self.delimiter, self.quote, self.escape, buf.len());
        let mut start = pos;
        let mut in_quote = false;
        let mut quoted = false;
        let mut newlines = 1;
        let mut i = pos;
        loop {
            if in_quote {
                let hit = if escape != quote {
                    memchr::memchr2(quote, escape, &buf[i..])?
                } else {
                    memchr::memchr(quote, &buf[i..])?
                };
                newlines += memchr::memchr_iter(b'\n', &buf[i..i + hit]).count() as u64;
                i += hit;
                if buf[i] == escape && escape != quote {
                    if i + 1 >= len {
                        return None;
                    }
                    if buf[i + 1] == quote || buf[i + 1] == escape {
                        i += 2;
                        continue;
                    }
                    if escape != quote {
                        i += 1;
                        continue;
                    }
                }
                // A quote: doubled (when it is its own escape) or closing.
                if escape == quote {
                    if i + 1 >= len {
                        return None;
                    }
                    if buf[i + 1] == quote {
                        i += 2;
                        continue;
                    }
                }
                in_quote = false;
                i += 1;
                continue;
            }
            let hit = memchr::memchr3(delim, quote, b'\n', &buf[i..])?;
            i += hit;
            let b = buf[i];
            if b == quote {
                in_quote = true;
                quoted = true;
                i += 1;
                continue;
            }
            let end = if b == b'\n' && i > start && buf[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            self.spans.push(Span {
                start,
                end,
                escaped: quoted,
                quoted,
            });
            if b == b'\n' {
                return Some((i + 1, newlines));
            }
            i += 1;
            start = i;
            quoted = false;
        }
    }

    fn field_error(&self, kind: ErrorKind, message: String, row: &[u8]) -> Error {
        Error::new(kind, message).with_context(self.context(row))
    }

    fn add_row(&mut self, pos: usize, row_end: usize) -> Result<()> {
        let row = &self.buf[pos..row_end];
        let n = self.names.len();
        if self.spans.len() > n {
            return Err(self.field_error(
                ErrorKind::BadCopyFormat,
                "extra data after last expected column".into(),
                row,
            ));
        }
        if self.spans.len() < n {
            // A single empty field on an empty line is no field at all.
            let missing = &self.names[self.spans.len()];
            return Err(self.field_error(
                ErrorKind::BadCopyFormat,
                format!("missing data for column \"{missing}\""),
                row,
            ));
        }
        for c in 0..n {
            let span = self.spans[c];
            let raw = &self.buf[span.start..span.end];
            let is_null = if self.csv {
                (!span.quoted && raw == self.null.as_slice() && !self.force_not_null[c])
                    || (self.force_null[c] && self.csv_value(raw) == self.null)
            } else {
                raw == self.null.as_slice()
            };
            if is_null {
                self.builders[c].append_null();
                continue;
            }
            let value: &[u8] = if !span.escaped {
                raw
            } else if self.csv {
                self.scratch = self.csv_value(raw);
                &self.scratch
            } else {
                self.scratch.clear();
                unescape_text(raw, &mut self.scratch);
                &self.scratch
            };
            if span.end > self.valid_utf8 || span.escaped {
                // PostgreSQL text cannot hold a NUL byte.
                if memchr::memchr(0, value).is_some() {
                    return Err(self.field_error(
                        ErrorKind::CharacterNotInRepertoire,
                        "invalid byte sequence for encoding \"UTF8\": 0x00".into(),
                        row,
                    ));
                }
            }
            let checked = if !span.escaped && span.end <= self.valid_utf8 {
                // SAFETY: buf[..valid_utf8] passed UTF-8 validation in this
                // pass and a field never splits a character (its bounds are
                // ASCII delimiters).
                Ok(unsafe { std::str::from_utf8_unchecked(value) })
            } else {
                std::str::from_utf8(value)
            };
            match checked {
                Ok(s) => self.builders[c].append_value(s),
                Err(e) => {
                    let bad = &value[e.valid_up_to()..];
                    let bytes: Vec<String> = bad
                        .iter()
                        .take(e.error_len().unwrap_or(1))
                        .map(|b| format!("0x{b:02x}"))
                        .collect();
                    return Err(self.field_error(
                        ErrorKind::CharacterNotInRepertoire,
                        format!(
                            "invalid byte sequence for encoding \"UTF8\": {}",
                            bytes.join(" ")
                        ),
                        row,
                    ));
                }
            }
        }
        self.lines.push(self.line);
        Ok(())
    }

    /// A CSV field without its quoting.
    fn csv_value(&self, raw: &[u8]) -> Vec<u8> {
        let (quote, escape) = (self.quote, self.escape);
        let mut out = Vec::with_capacity(raw.len());
        let mut in_quote = false;
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            let next = raw.get(i + 1).copied();
            if in_quote
                && ((escape != quote
                    && b == escape
                    && (next == Some(quote) || next == Some(escape)))
                    || (escape == quote && b == quote && next == Some(quote)))
            {
                out.push(next.unwrap_or(b));
                i += 2;
                continue;
            }
            if b == quote {
                in_quote = !in_quote;
            } else {
                out.push(b);
            }
            i += 1;
        }
        out
    }

    fn match_header(&mut self, pos: usize) -> Result<()> {
        let row_end = self.spans.last().map(|s| s.end).unwrap_or(pos);
        let row = self.buf[pos..row_end].to_vec();
        if self.spans.len() != self.names.len() {
            return Err(self.field_error(
                ErrorKind::BadCopyFormat,
                format!(
                    "wrong number of fields in header line: got {}, expected {}",
                    self.spans.len(),
                    self.names.len()
                ),
                &row,
            ));
        }
        for (i, span) in self.spans.clone().iter().enumerate() {
            let raw = &self.buf[span.start..span.end];
            let got = if self.csv {
                self.csv_value(raw)
            } else {
                let mut v = Vec::new();
                unescape_text(raw, &mut v);
                v
            };
            if got != self.names[i].as_bytes() {
                return Err(self.field_error(
                    ErrorKind::BadCopyFormat,
                    format!(
                        "column name mismatch in header line field {}: got \"{}\", expected \"{}\"",
                        i + 1,
                        String::from_utf8_lossy(&got),
                        self.names[i]
                    ),
                    &row,
                ));
            }
        }
        Ok(())
    }
}

/// A `\r` right before the newline that is itself escaped (`\` `\r`) is data.
fn escaped_cr(buf: &[u8], start: usize, newline: usize) -> bool {
    let mut n = 0;
    let mut j = newline - 1;
    while j > start && buf[j - 1] == b'\\' {
        n += 1;
        j -= 1;
    }
    n % 2 == 1
}

/// Undo the text format's backslash escapes.
fn unescape_text(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 >= raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                let mut k = 0;
                while k < 2 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + (raw[i] - b'0') as u32;
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut v = hex(raw[i]);
                i += 1;
                if i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + hex(raw[i]);
                    i += 1;
                }
                out.push(v);
            }
            other => out.push(other),
        }
    }
}

fn hex(b: u8) -> u8 {
    (b as char).to_digit(16).unwrap_or(0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Array;

    fn decode(opts: &str, cols: &[&str], pieces: &[&[u8]]) -> Result<Vec<Vec<Option<String>>>> {
        let sql = format!("COPY t FROM STDIN {opts}");
        let mut p = datafusion::sql::sqlparser::parser::Parser::new(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
        )
        .try_with_sql(&sql)
        .unwrap();
        let stmt = crate::frontend::copy::parse_copy(&mut p).unwrap();
        let names = cols.iter().map(|s| s.to_string()).collect();
        let mut d = TextDecoder::new(&stmt.options, names, "t", 2)?;
        let mut batches = Vec::new();
        for piece in pieces {
            batches.extend(d.feed(piece)?);
        }
        batches.extend(d.finish()?);
        let mut rows = Vec::new();
        for b in batches {
            for r in 0..b.len() {
                rows.push(
                    b.columns
                        .iter()
                        .map(|c| (!c.is_null(r)).then(|| c.value(r).to_string()))
                        .collect(),
                );
            }
        }
        Ok(rows)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_format_escapes_and_nulls() {
        let rows = decode(
            "",
            &["a", "b"],
            &[b"1\tx\\ty\n2\t\\N\n3\t\\\\N\n4\ta\\nb\\101\\x41\n"],
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("x\ty")],
                vec![s("2"), None],
                vec![s("3"), s("\\N")],
                vec![s("4"), s("a\nbAA")],
            ]
        );
    }

    #[test]
    fn rows_split_across_pieces_and_end_marker() {
        let rows = decode("", &["a"], &[b"hel", b"lo\r\nwor", b"ld\n\\.\nignored\n"]).unwrap();
        assert_eq!(rows, vec![vec![s("hello")], vec![s("world")]]);
        // A last line without a newline is a row.
        let rows = decode("", &["a"], &[b"x\ny"]).unwrap();
        assert_eq!(rows, vec![vec![s("x")], vec![s("y")]]);
    }

    #[test]
    fn csv_quoting_nulls_and_header() {
        let rows = decode(
            "(FORMAT csv, HEADER)",
            &["a", "b"],
            &[b"a,b\n1,\"x,\"\"y\"\"\"\n2,\n3,\"\"\n4,\"multi\nline\"\n"],
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("x,\"y\"")],
                vec![s("2"), None],
                vec![s("3"), s("")],
                vec![s("4"), s("multi\nline")],
            ]
        );
    }

    #[test]
    fn csv_force_not_null_and_escape() {
        let rows = decode(
            "(FORMAT csv, FORCE_NOT_NULL (b), ESCAPE '\\')",
            &["a", "b"],
            &[b",\n\"q\\\"x\",\"\"\n"],
        )
        .unwrap();
        assert_eq!(rows, vec![vec![None, s("")], vec![s("q\"x"), s("")]]);
    }

    #[test]
    fn bad_rows_name_line_and_reason() {
        let e = decode("", &["a", "b"], &[b"1\t2\n3\n"]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadCopyFormat);
        assert_eq!(e.message, "missing data for column \"b\"");
        assert_eq!(e.context.as_deref(), Some("COPY t, line 2: \"3\""));
        let e = decode("", &["a"], &[b"1\t2\n"]).unwrap_err();
        assert_eq!(e.message, "extra data after last expected column");
        let e = decode("(FORMAT csv)", &["a"], &[b"\"open\n"]).unwrap_err();
        assert_eq!(e.message, "unterminated CSV quoted field");
        let e = decode("", &["a"], &[b"ok\n\xff\xfe\n"]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::CharacterNotInRepertoire);
        assert!(e.context.unwrap().contains("line 2"));
    }

    #[test]
    fn header_match_checks_names() {
        assert!(decode("(FORMAT csv, HEADER MATCH)", &["a", "b"], &[b"a,b\n1,2\n"]).is_ok());
        let e = decode("(FORMAT csv, HEADER MATCH)", &["a", "b"], &[b"a,c\n1,2\n"]).unwrap_err();
        assert!(
            e.message.contains("got \"c\", expected \"b\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn large_input_in_small_pieces() {
        let mut data = Vec::new();
        for i in 0..30_000 {
            data.extend(format!("{i},\"v,{i}\nx\"\n").as_bytes());
        }
        data.extend(b"bad\n");
        let pieces: Vec<&[u8]> = data.chunks(997).collect();
        let e = decode("(FORMAT csv)", &["a", "b"], &pieces).unwrap_err();
        // Every row before it spans two lines.
        assert_eq!(e.context.as_deref(), Some("COPY t, line 60001: \"bad\""));
        data.truncate(data.len() - 4);
        let pieces: Vec<&[u8]> = data.chunks(997).collect();
        let rows = decode("(FORMAT csv)", &["a", "b"], &pieces).unwrap();
        assert_eq!(rows.len(), 30_000);
        assert_eq!(rows[29_999], vec![s("29999"), s("v,29999\nx")]);
    }

    #[test]
    fn csv_line_numbers_count_quoted_newlines() {
        let e = decode("(FORMAT csv)", &["a", "b"], &[b"1,\"a\nb\"\n2\n"]).unwrap_err();
        assert_eq!(e.context.as_deref(), Some("COPY t, line 3: \"2\""));
    }
}
