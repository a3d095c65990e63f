//! Records whose fields arrive as JSON values or as text (API responses,
//! JSON lines, regex captures) into typed Arrow columns.
//!
//! ```text
//!  sample of records ──infer──▶ schema (bigint, double, boolean, date, timestamp[tz], text)
//!  records ──Columns::push──▶ text per column ──typed──▶ RecordBatch
//!                                             └─ values that do not fit: per-row errors
//! ```
//!
//! Nested objects and arrays become text holding their JSON. A value that
//! does not read as its column's type is an error naming the record and
//! field (API sources), or the row's `_error` (logs).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde_json::Value;

/// What a column's values look like, from a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Date,
    Timestamp,
    Timestamptz,
    Text,
}

impl Kind {
    fn merge(self, other: Kind) -> Kind {
        use Kind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Null, x) | (x, Null) => x,
            (Int, Float) | (Float, Int) => Float,
            _ => Text,
        }
    }

    pub fn data_type(self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Timestamptz => timestamptz(),
            Kind::Null | Kind::Text => DataType::Utf8,
        }
    }

    /// The kind of a JSON value: strings are text unless they are dates or
    /// timestamps (`"00123"` stays text).
    pub fn of_value(v: &Value) -> Kind {
        match v {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_i64() => Kind::Int,
            Value::Number(n) if n.is_u64() => Kind::Float,
            Value::Number(_) => Kind::Float,
            Value::String(s) => Kind::of_date_text(s),
            Value::Array(_) | Value::Object(_) => Kind::Text,
        }
    }

    /// The kind of a text value (a regex capture): numbers too.
    pub fn of_text(s: &str) -> Kind {
        if s.is_empty() {
            return Kind::Null;
        }
        if s.parse::<i64>().is_ok() {
            return Kind::Int;
        }
        if s.parse::<f64>().is_ok_and(f64::is_finite)
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        {
            return Kind::Float;
        }
        Kind::of_date_text(s)
    }

    fn of_date_text(s: &str) -> Kind {
        let b = s.as_bytes();
        if b.len() < 10 || b.len() > 40 || !b[0].is_ascii_digit() {
            return Kind::Text;
        }
        if b.len() == 10 {
            return if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
                Kind::Date
            } else {
                Kind::Text
            };
        }
        if parse_clf_time(b).is_some() {
            return Kind::Timestamptz;
        }
        if b[4] != b'-' || !matches!(b[10], b'T' | b' ' | b't') {
            return Kind::Text;
        }
        if has_offset(s) {
            if parse_timestamptz(s).is_some() {
                return Kind::Timestamptz;
            }
        } else if datafusion::arrow::compute::kernels::cast_utils::string_to_datetime(
            &chrono::Utc,
            s,
        )
        .is_ok()
        {
            return Kind::Timestamp;
        }
        Kind::Text
    }
}

pub fn timestamptz() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Does an ISO timestamp name its offset (`Z`, `+02:00`, `-0500`)?
fn has_offset(s: &str) -> bool {
    let tail = &s[10..];
    tail.ends_with(['Z', 'z']) || tail.contains('+') || tail[1..].contains('-')
}

/// An ISO 8601 / RFC 3339 timestamp with an offset, or an access log's
/// `10/Oct/2000:13:55:36 -0700`, as microseconds since the epoch (UTC).
pub fn parse_timestamptz(s: &str) -> Option<i64> {
    if let Some(t) = parse_clf_time(s.as_bytes()) {
        return Some(t);
    }
    if s.len() < 10 {
        return None;
    }
    datafusion::arrow::compute::kernels::cast_utils::string_to_datetime(&chrono::Utc, s)
        .ok()
        .map(|d| d.timestamp_micros())
}

fn two(b: &[u8], i: usize) -> Option<u32> {
    let (x, y) = (*b.get(i)?, *b.get(i + 1)?);
    (x.is_ascii_digit() && y.is_ascii_digit())
        .then(|| u32::from(x - b'0') * 10 + u32::from(y - b'0'))
}

/// `10/Oct/2000:13:55:36 -0700` (Apache's `%t` without brackets).
pub fn parse_clf_time(b: &[u8]) -> Option<i64> {
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let day = two(b, 0)?;
    let month = match &b[3..6] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let year = two(b, 7)? * 100 + two(b, 9)?;
    let (h, m, sec) = (two(b, 12)?, two(b, 15)?, two(b, 18)?);
    if b[14] != b':' || b[17] != b':' || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let sign = match b[21] {
        b'+' => 1i64,
        b'-' => -1,
        _ => return None,
    };
    let offset = sign * (i64::from(two(b, 22)?) * 3600 + i64::from(two(b, 24)?) * 60);
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let days = date.signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?);
    let local = days.num_seconds() + i64::from(h * 3600 + m * 60 + sec);
    Some((local - offset) * 1_000_000)
}

/// Column kinds seen so far, in order of first appearance.
#[derive(Debug, Default)]
pub struct Inference {
    fields: Vec<(String, Kind)>,
    index: HashMap<String, usize>,
}

impl Inference {
    fn see(&mut self, name: &str, kind: Kind) {
        match self.index.get(name) {
            Some(&i) => self.fields[i].1 = self.fields[i].1.merge(kind),
            None => {
                self.index.insert(name.to_string(), self.fields.len());
                self.fields.push((name.to_string(), kind));
            }
        }
    }

    /// A JSON record (non-objects are skipped: they fail when read).
    pub fn add_record(&mut self, record: &Value) {
        if let Value::Object(o) = record {
            for (k, v) in o {
                self.see(k, Kind::of_value(v));
            }
        }
    }

    /// Named text values (regex captures); `None` is a missing group.
    pub fn add_texts<'a>(&mut self, values: impl Iterator<Item = (&'a str, Option<&'a str>)>) {
        for (name, v) in values {
            self.see(name, v.map_or(Kind::Null, Kind::of_text));
        }
    }

    /// Declare a column with no sample value yet (a regex group).
    pub fn declare(&mut self, name: &str) {
        self.see(name, Kind::Null);
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.fields
                .iter()
                .map(|(n, k)| Field::new(n, k.data_type(), true))
                .collect::<Vec<_>>(),
        ))
    }
}

/// A value that did not read as its column's type.
#[derive(Debug, Clone, PartialEq)]
pub struct BadValue {
    pub row: usize,
    pub column: String,
    pub value: String,
    pub type_name: String,
}

impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut v = self.value.clone();
        if v.len() > 80 {
            let mut cut = 80;
            while !v.is_char_boundary(cut) {
                cut -= 1;
            }
            v.truncate(cut);
            v.push('…');
        }
        write!(
            f,
            "field \"{}\": invalid input syntax for type {}: \"{v}\"",
            self.column, self.type_name
        )
    }
}

/// The PostgreSQL name of an Arrow type, for messages.
fn pg_name(t: &DataType) -> String {
    crate::types::PgType::from_arrow(t).name.clone()
}

/// Rows being collected as text per column, then typed together.
pub struct Columns {
    schema: SchemaRef,
    index: HashMap<String, usize>,
    builders: Vec<StringBuilder>,
    /// Which columns the current row has set.
    set: Vec<bool>,
    rows: usize,
    scratch: String,
}

impl Columns {
    pub fn new(schema: SchemaRef) -> Columns {
        let index = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().clone(), i))
            .collect();
        let n = schema.fields().len();
        Columns {
            schema,
            index,
            builders: (0..n).map(|_| StringBuilder::new()).collect(),
            set: vec![false; n],
            rows: 0,
            scratch: String::new(),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Set a column of the current row by name (unknown names are ignored:
    /// an explicit column list picks what it wants).
    pub fn set_text(&mut self, name: &str, value: Option<&str>) {
        if let Some(&i) = self.index.get(name)
            && !self.set[i]
        {
            self.set[i] = true;
            match value {
                Some(v) => self.builders[i].append_value(v),
                None => self.builders[i].append_null(),
            }
        }
    }

    /// Set a column of the current row from a JSON value.
    pub fn set_value(&mut self, name: &str, value: &Value) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if self.set[i] {
            return;
        }
        self.set[i] = true;
        let b = &mut self.builders[i];
        match value {
            Value::Null => b.append_null(),
            Value::String(s) => b.append_value(s),
            Value::Bool(x) => b.append_value(if *x { "true" } else { "false" }),
            Value::Number(n) => {
                self.scratch.clear();
                let _ = write!(self.scratch, "{n}");
                b.append_value(&self.scratch);
            }
            nested => {
                self.scratch.clear();
                self.scratch.push_str(&nested.to_string());
                b.append_value(&self.scratch);
            }
        }
    }

    /// Every field of a JSON object.
    pub fn set_record(&mut self, record: &serde_json::Map<String, Value>) {
        for (k, v) in record {
            self.set_value(k, v);
        }
    }

    /// The current row is complete: columns not set are NULL.
    pub fn end_row(&mut self) {
        for (i, set) in self.set.iter_mut().enumerate() {
            if !*set {
                self.builders[i].append_null();
            }
            *set = false;
        }
        self.rows += 1;
    }

    /// The typed columns of the rows so far, and the values that did not
    /// fit (their cells are NULL). Starts over empty.
    pub fn finish(&mut self) -> (Vec<ArrayRef>, Vec<BadValue>) {
        let mut bad = Vec::new();
        let mut out = Vec::with_capacity(self.builders.len());
        for (field, b) in self.schema.fields().iter().zip(&mut self.builders) {
            let text = b.finish();
            out.push(typed(field.name(), &text, field.data_type(), &mut bad));
        }
        self.rows = 0;
        bad.sort_by_key(|b| b.row);
        (out, bad)
    }
}

/// Text to `ty`; values that do not read become NULL and a [`BadValue`].
pub fn typed(name: &str, text: &StringArray, ty: &DataType, bad: &mut Vec<BadValue>) -> ArrayRef {
    let mut record = |row: usize| {
        bad.push(BadValue {
            row,
            column: name.to_string(),
            value: text.value(row).to_string(),
            type_name: pg_name(ty),
        })
    };
    match ty {
        DataType::Utf8 => Arc::new(text.clone()),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => {
            let values: TimestampMicrosecondArray = (0..text.len())
                .map(|i| {
                    if text.is_null(i) {
                        return None;
                    }
                    let v = parse_timestamptz(text.value(i).trim());
                    if v.is_none() {
                        record(i);
                    }
                    v
                })
                .collect();
            Arc::new(values.with_timezone(tz.clone()))
        }
        _ => {
            let options = datafusion::arrow::compute::CastOptions {
                safe: true,
                ..Default::default()
            };
            match datafusion::arrow::compute::cast_with_options(text, ty, &options) {
                Ok(a) => {
                    if a.null_count() != text.null_count() {
                        for i in 0..text.len() {
                            if a.is_null(i) && !text.is_null(i) {
                                record(i);
                            }
                        }
                    }
                    a
                }
                Err(_) => {
                    for i in 0..text.len() {
                        if !text.is_null(i) {
                            record(i);
                        }
                    }
                    datafusion::arrow::array::new_null_array(ty, text.len())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, cast::AsArray};
    use datafusion::arrow::datatypes::TimestampMicrosecondType;
    use serde_json::json;

    #[test]
    fn kinds_are_inferred_from_a_sample() {
        let mut inf = Inference::default();
        for r in [
            json!({"id": 1, "price": 2, "ok": true, "at": "2026-01-02T03:04:05Z", "tags": ["a"], "zip": "00123"}),
            json!({"id": 2, "price": 2.5, "ok": null, "at": "2026-01-03T00:00:00+02:00", "day": "2026-01-03", "naive": "2026-01-03 04:05:06"}),
        ] {
            inf.add_record(&r);
        }
        let s = inf.schema();
        let ty = |n: &str| s.field_with_name(n).unwrap().data_type().clone();
        assert_eq!(ty("id"), DataType::Int64);
        assert_eq!(ty("price"), DataType::Float64);
        assert_eq!(ty("ok"), DataType::Boolean);
        assert_eq!(ty("at"), timestamptz());
        assert_eq!(ty("tags"), DataType::Utf8);
        assert_eq!(ty("zip"), DataType::Utf8);
        assert_eq!(ty("day"), DataType::Date32);
        assert_eq!(
            ty("naive"),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        // JSON objects arrive with their keys in name order.
        assert_eq!(s.field(0).name(), "at");

        let mut inf = Inference::default();
        inf.add_texts([("n", Some("42")), ("f", Some("1.5")), ("t", Some("x"))].into_iter());
        inf.add_texts([("n", Some("-7")), ("f", Some("3")), ("t", None)].into_iter());
        inf.add_texts([("ts", Some("10/Oct/2000:13:55:36 -0700")), ("n", None)].into_iter());
        let s = inf.schema();
        let kinds: Vec<_> = s.fields().iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(
            kinds,
            [
                DataType::Int64,
                DataType::Float64,
                DataType::Utf8,
                timestamptz()
            ]
        );
    }

    #[test]
    fn access_log_times_read_as_utc() {
        // 2000-10-10 13:55:36 -07:00 is 20:55:36 UTC.
        let t = parse_clf_time(b"10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(t, 971_211_336_000_000);
        assert_eq!(parse_clf_time(b"10/Oct/2000:20:55:36 +0000"), Some(t));
        assert_eq!(parse_timestamptz("2000-10-10T20:55:36Z"), Some(t));
        assert!(parse_clf_time(b"10/Foo/2000:13:55:36 -0700").is_none());
        assert!(parse_clf_time(b"31/Feb/2000:13:55:36 -0700").is_none());
        assert!(parse_clf_time(b"10/Oct/2000:13:55:36").is_none());
    }

    #[test]
    fn values_are_typed_and_misfits_reported() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("at", timestamptz(), true),
            Field::new("meta", DataType::Utf8, true),
        ]));
        let mut c = Columns::new(schema);
        for r in [
            json!({"id": 1, "at": "2026-01-02T03:04:05Z", "meta": {"a": [1, 2]}}),
            json!({"id": "2", "extra": 1}),
            json!({"id": 1.5, "at": "yesterday"}),
        ] {
            c.set_record(r.as_object().unwrap());
            c.end_row();
        }
        let (cols, bad) = c.finish();
        let ids = cols[0].as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ids.value(0), 1);
        assert_eq!(ids.value(1), 2);
        assert!(ids.is_null(2));
        let at = cols[1].as_primitive::<TimestampMicrosecondType>();
        assert_eq!(at.value(0), 1_767_323_045_000_000);
        assert!(at.is_null(1) && at.is_null(2));
        assert_eq!(cols[2].as_string::<i32>().value(0), r#"{"a":[1,2]}"#);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].row, 2);
        assert_eq!(
            bad.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
            [
                "field \"id\": invalid input syntax for type bigint: \"1.5\"",
                "field \"at\": invalid input syntax for type timestamp with time zone: \"yesterday\""
            ]
        );
        assert_eq!(c.rows(), 0);
    }
}
