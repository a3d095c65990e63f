//! PostgreSQL's functions and operators over `json` / `jsonb` documents
//! kept as text: tests (`@>`, `<@`, `?`, `?|`, `?&`, `jsonb_typeof`,
//! `jsonb_array_length`), builders (`to_jsonb`, `jsonb_build_array`,
//! `jsonb_build_object`), paths (`jsonb_extract_path`, the common
//! JSONPath forms of `jsonb_path_query`), and the lists behind the
//! set-returning functions and aggregates (`jsonb_array_elements`,
//! `jsonb_each`, `jsonb_object_keys`, `jsonb_agg`, `jsonb_object_agg`),
//! which the statement rewriter turns into `unnest` / `array_agg` of these.
//!
//! A value that already is JSON (a jsonb column, a `::jsonb` cast, the
//! result of `->`) reaches a builder wrapped by [`MARKED`] as a one-field
//! struct, so that it is embedded as a document instead of quoted as a
//! string; the analyzer rule that marks them knows the declared types.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, ListBuilder, StringBuilder, StructArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::jsonb::{self, Kind, Value, quote};
use crate::error::{Error, ErrorKind};

/// The function that marks its argument as a JSON document.
pub const MARKED: &str = "sluice_json_marked";
/// The name of the one field of a marked value.
const MARK_FIELD: &str = "sluice.json";

/// What a function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum F {
    TypeOf,
    ArrayLength,
    Contains,
    Contained,
    Exists,
    ExistsAny,
    ExistsAll,
    ExtractPath { text: bool },
    BuildArray,
    BuildObject,
    ToJson,
    PathExists,
    PathFirst,
    PathArray,
    Marked,
    Elements { text: bool },
    Keys,
    EachKeys,
    EachValues { text: bool },
    PathQuery,
    AggArray,
    AggObject,
    Member,
    AggElement,
}

/// `json_agg`'s element: `to_json` of the value, after a newline when it
/// is an array or a record (PostgreSQL writes `[{"a":1}, \n {"a":2}]`).
pub const AGG_ELEMENT: &str = "sluice_json_agg_element";

/// Every function of this module: (name, what, jsonb's normal form).
const FUNCTIONS: &[(&str, F, bool)] = &[
    ("jsonb_typeof", F::TypeOf, true),
    ("json_typeof", F::TypeOf, false),
    ("jsonb_array_length", F::ArrayLength, true),
    ("json_array_length", F::ArrayLength, false),
    ("jsonb_contains", F::Contains, true),
    ("jsonb_contained", F::Contained, true),
    ("jsonb_exists", F::Exists, true),
    ("jsonb_exists_any", F::ExistsAny, true),
    ("jsonb_exists_all", F::ExistsAll, true),
    ("jsonb_extract_path", F::ExtractPath { text: false }, true),
    (
        "jsonb_extract_path_text",
        F::ExtractPath { text: true },
        true,
    ),
    ("json_extract_path", F::ExtractPath { text: false }, false),
    (
        "json_extract_path_text",
        F::ExtractPath { text: true },
        false,
    ),
    ("jsonb_build_array", F::BuildArray, true),
    ("json_build_array", F::BuildArray, false),
    ("jsonb_build_object", F::BuildObject, true),
    ("to_jsonb", F::ToJson, true),
    ("to_json", F::ToJson, false),
    ("jsonb_path_exists", F::PathExists, true),
    ("jsonb_path_query_first", F::PathFirst, true),
    ("jsonb_path_query_array", F::PathArray, true),
    (MARKED, F::Marked, false),
    (
        "sluice_jsonb_array_elements",
        F::Elements { text: false },
        true,
    ),
    (
        "sluice_jsonb_array_elements_text",
        F::Elements { text: true },
        true,
    ),
    (
        "sluice_json_array_elements",
        F::Elements { text: false },
        false,
    ),
    (
        "sluice_json_array_elements_text",
        F::Elements { text: true },
        false,
    ),
    ("sluice_jsonb_object_keys", F::Keys, true),
    ("sluice_json_object_keys", F::Keys, false),
    ("sluice_jsonb_each_keys", F::EachKeys, true),
    ("sluice_json_each_keys", F::EachKeys, false),
    (
        "sluice_jsonb_each_values",
        F::EachValues { text: false },
        true,
    ),
    (
        "sluice_jsonb_each_text_values",
        F::EachValues { text: true },
        true,
    ),
    (
        "sluice_json_each_values",
        F::EachValues { text: false },
        false,
    ),
    (
        "sluice_json_each_text_values",
        F::EachValues { text: true },
        false,
    ),
    ("sluice_jsonb_path_query", F::PathQuery, true),
    ("sluice_jsonb_agg_array", F::AggArray, true),
    ("sluice_json_agg_array", F::AggArray, false),
    ("sluice_jsonb_agg_object", F::AggObject, true),
    ("sluice_json_agg_object", F::AggObject, false),
    ("sluice_json_member", F::Member, false),
    (AGG_ELEMENT, F::AggElement, false),
];

/// The set-returning functions the rewriter turns into `unnest` of a
/// list: (name, list functions, the columns they give in FROM).
pub const SET_FUNCTIONS: &[(&str, &[&str], &[&str])] = &[
    (
        "jsonb_array_elements",
        &["sluice_jsonb_array_elements"],
        &["value"],
    ),
    (
        "jsonb_array_elements_text",
        &["sluice_jsonb_array_elements_text"],
        &["value"],
    ),
    (
        "json_array_elements",
        &["sluice_json_array_elements"],
        &["value"],
    ),
    (
        "json_array_elements_text",
        &["sluice_json_array_elements_text"],
        &["value"],
    ),
    (
        "jsonb_object_keys",
        &["sluice_jsonb_object_keys"],
        &["jsonb_object_keys"],
    ),
    (
        "json_object_keys",
        &["sluice_json_object_keys"],
        &["json_object_keys"],
    ),
    (
        "jsonb_each",
        &["sluice_jsonb_each_keys", "sluice_jsonb_each_values"],
        &["key", "value"],
    ),
    (
        "jsonb_each_text",
        &["sluice_jsonb_each_keys", "sluice_jsonb_each_text_values"],
        &["key", "value"],
    ),
    (
        "json_each",
        &["sluice_json_each_keys", "sluice_json_each_values"],
        &["key", "value"],
    ),
    (
        "json_each_text",
        &["sluice_json_each_keys", "sluice_json_each_text_values"],
        &["key", "value"],
    ),
    (
        "jsonb_path_query",
        &["sluice_jsonb_path_query"],
        &["jsonb_path_query"],
    ),
    // Not JSON, but set-returning functions of one column all the same.
    (
        "regexp_matches",
        &["sluice_regexp_matches"],
        &["regexp_matches"],
    ),
    (
        "string_to_table",
        &["string_to_array"],
        &["string_to_table"],
    ),
    (
        "regexp_split_to_table",
        &["regexp_split_to_array"],
        &["regexp_split_to_table"],
    ),
];

/// The aggregates the rewriter builds on `array_agg`: (name, the function
/// over the collected list, whether it takes a key and a value).
pub const AGGREGATES: &[(&str, &str, bool)] = &[
    ("jsonb_agg", "sluice_jsonb_agg_array", false),
    ("json_agg", "sluice_json_agg_array", false),
    ("jsonb_object_agg", "sluice_jsonb_agg_object", true),
    ("json_object_agg", "sluice_json_agg_object", true),
];

/// Functions whose arguments are converted to JSON (a document passed to
/// them must be marked): name and which arguments (`None`: all).
pub fn json_arguments(name: &str) -> Option<fn(usize) -> bool> {
    match name {
        "to_jsonb" | "to_json" | "jsonb_build_array" | "json_build_array" | AGG_ELEMENT => {
            Some(|_| true)
        }
        "jsonb_build_object" | "json_build_object" => Some(|i| i % 2 == 1),
        "sluice_json_member" => Some(|i| i == 1),
        _ => None,
    }
}

/// Functions whose result is a list of JSON documents (and whether jsonb).
pub fn json_list_result(name: &str) -> Option<bool> {
    match name {
        "sluice_jsonb_array_elements" | "sluice_jsonb_each_values" | "sluice_jsonb_path_query" => {
            Some(true)
        }
        "sluice_json_array_elements" | "sluice_json_each_values" => Some(false),
        _ => None,
    }
}

/// Functions whose result is a JSON document (and whether jsonb).
pub fn json_result(name: &str) -> Option<bool> {
    if super::jsonb_edit::gives_jsonb(name) {
        return Some(true);
    }
    match name {
        "to_jsonb"
        | "jsonb_build_array"
        | "jsonb_build_object"
        | "jsonb_extract_path"
        | "jsonb_path_query_first"
        | "jsonb_path_query_array"
        | "sluice_jsonb_agg_array"
        | "sluice_jsonb_agg_object" => Some(true),
        "to_json"
        | "json_build_array"
        | "json_build_object"
        | "json_extract_path"
        | "sluice_json_agg_array"
        | "sluice_json_agg_object" => Some(false),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonFn {
    name: &'static str,
    f: F,
    jsonb: bool,
    signature: Signature,
}

/// Register every function of this module.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    for &(name, f, jsonb) in FUNCTIONS {
        ctx.register_udf(make(name, f, jsonb));
    }
}

/// The function called `name` (one of this module's).
pub fn udf(name: &str) -> ScalarUDF {
    let &(name, f, jsonb) = FUNCTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .expect("a JSON function of this module");
    make(name, f, jsonb)
}

fn make(name: &'static str, f: F, jsonb: bool) -> ScalarUDF {
    {
        let signature = match f {
            F::BuildArray | F::BuildObject => Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Immutable,
            ),
            F::ExtractPath { .. } => Signature::variadic_any(Volatility::Immutable),
            F::TypeOf
            | F::ArrayLength
            | F::ToJson
            | F::Marked
            | F::Elements { .. }
            | F::Keys
            | F::EachKeys
            | F::EachValues { .. }
            | F::AggArray
            | F::AggObject
            | F::AggElement => Signature::any(1, Volatility::Immutable),
            _ => Signature::any(2, Volatility::Immutable),
        };
        ScalarUDF::new_from_impl(JsonFn {
            name,
            f,
            jsonb,
            signature,
        })
    }
}

fn marked_type() -> DataType {
    DataType::Struct(Fields::from(vec![Field::new(
        MARK_FIELD,
        DataType::Utf8,
        true,
    )]))
}

fn is_marked(t: &DataType) -> bool {
    matches!(t, DataType::Struct(f) if f.len() == 1 && f[0].name() == MARK_FIELD)
}

fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

impl ScalarUDFImpl for JsonFn {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.f {
            F::ArrayLength => DataType::Int32,
            F::Contains
            | F::Contained
            | F::Exists
            | F::ExistsAny
            | F::ExistsAll
            | F::PathExists => DataType::Boolean,
            F::Marked => marked_type(),
            F::Elements { .. } | F::Keys | F::EachKeys | F::EachValues { .. } | F::PathQuery => {
                text_list()
            }
            _ => DataType::Utf8,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // Constant arguments are computed once, as one row.
        make_scalar_function(
            |arrays: &[ArrayRef]| self.compute(arrays, arrays.first().map_or(1, |a| a.len())),
            vec![],
        )(&args.args)
    }
}

/// Each argument row as JSON text (`None` for SQL NULL): a marked value
/// as it is, numbers and booleans as JSON scalars, text quoted, arrays and
/// structs as JSON arrays and objects.
pub fn to_json_texts(a: &ArrayRef) -> Result<Vec<Option<String>>> {
    let n = a.len();
    let t = a.data_type();
    if is_marked(t) {
        let s = a.as_struct();
        let inner = cast(s.column(0), &DataType::Utf8)?;
        let inner = inner.as_string::<i32>();
        return Ok((0..n)
            .map(|i| (!a.is_null(i) && !inner.is_null(i)).then(|| inner.value(i).to_string()))
            .collect());
    }
    match t {
        DataType::Null => Ok(vec![None; n]),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let l = cast(
                a,
                &DataType::List(Arc::new(Field::new_list_field(list_item(t), true))),
            )?;
            let l = l.as_list::<i32>();
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                if l.is_null(i) {
                    out.push(None);
                    continue;
                }
                // `to_json` writes an array without spaces (`[1,2]`).
                let items = to_json_texts(&l.value(i))?;
                let mut text = String::from("[");
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        text.push(',');
                    }
                    text.push_str(item.as_deref().unwrap_or("null"));
                }
                text.push(']');
                out.push(Some(text));
            }
            Ok(out)
        }
        DataType::Struct(fields) => {
            let s = a.as_struct();
            let columns = s
                .columns()
                .iter()
                .map(to_json_texts)
                .collect::<Result<Vec<_>>>()?;
            Ok((0..n)
                .map(|i| {
                    (!s.is_null(i)).then(|| {
                        // A record as `row_to_json` writes it: no spaces.
                        let mut text = String::from("{");
                        for (k, (f, c)) in fields.iter().zip(&columns).enumerate() {
                            if k > 0 {
                                text.push(',');
                            }
                            quote(&mut text, f.name());
                            text.push(':');
                            text.push_str(c[i].as_deref().unwrap_or("null"));
                        }
                        text.push('}');
                        text
                    })
                })
                .collect())
        }
        _ => {
            let texts = cast(a, &DataType::Utf8)?;
            let texts = texts.as_string::<i32>();
            let kind = ScalarKind::of(t);
            Ok((0..n)
                .map(|i| (!texts.is_null(i)).then(|| kind.json(texts.value(i))))
                .collect())
        }
    }
}

fn list_item(t: &DataType) -> DataType {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            f.data_type().clone()
        }
        other => other.clone(),
    }
}

/// How a scalar of an Arrow type is written as JSON.
#[derive(Clone, Copy)]
enum ScalarKind {
    Number,
    Bool,
    Timestamp { tz: bool },
    Text,
}

impl ScalarKind {
    fn of(t: &DataType) -> Self {
        match t {
            DataType::Boolean => ScalarKind::Bool,
            t if t.is_numeric() => ScalarKind::Number,
            DataType::Timestamp(_, tz) => ScalarKind::Timestamp { tz: tz.is_some() },
            _ => ScalarKind::Text,
        }
    }

    fn json(self, text: &str) -> String {
        match self {
            ScalarKind::Bool => text.to_string(),
            ScalarKind::Number if !matches!(text, "NaN" | "inf" | "-inf") => text.to_string(),
            ScalarKind::Timestamp { tz } => {
                // PostgreSQL writes ISO 8601 with the offset: 2026-01-01T10:00:00+00:00.
                let mut t = text.replace(' ', "T");
                if tz && let Some(stripped) = t.strip_suffix('Z') {
                    t = format!("{stripped}+00:00");
                }
                let mut out = String::new();
                quote(&mut out, &t);
                out
            }
            _ => {
                let mut out = String::new();
                quote(&mut out, text);
                out
            }
        }
    }
}

fn join_array(items: impl Iterator<Item = Option<String>>) -> String {
    let mut text = String::from("[");
    for (k, item) in items.enumerate() {
        if k > 0 {
            text.push_str(", ");
        }
        text.push_str(item.as_deref().unwrap_or("null"));
    }
    text.push(']');
    text
}

/// `text` as a JSON document; 22P02 naming it when it is not one.
pub(super) fn parse(text: &str) -> Result<Value> {
    jsonb::parse(text).ok_or_else(|| {
        DataFusionError::from(
            Error::new(ErrorKind::InvalidText, "invalid input syntax for type json")
                .with_detail(format!("The input \"{text}\" is not valid JSON.")),
        )
    })
}

/// jsonb's normal text of `text`, or the text itself for json.
fn normal(text: &str, jsonb: bool) -> Result<String> {
    Ok(if jsonb {
        jsonb::jsonb_text(&parse(text)?)
    } else {
        text.to_string()
    })
}

fn value_text(v: &Value, src: &str, jsonb: bool) -> String {
    jsonb::as_json(v, src, jsonb)
}

fn type_name(v: &Value) -> &'static str {
    match v.kind {
        Kind::Null => "null",
        Kind::Bool(_) => "boolean",
        Kind::Number(_) => "number",
        Kind::String(_) => "string",
        Kind::Array(_) => "array",
        Kind::Object(_) => "object",
    }
}

/// The members of an object as jsonb keeps them (the last of duplicate
/// keys), or all of them in order for json.
fn members(m: &[(String, Value)], jsonb: bool) -> Vec<(&String, &Value)> {
    if jsonb {
        jsonb::jsonb_members(m)
    } else {
        m.iter().map(|(k, v)| (k, v)).collect()
    }
}

fn numbers_equal(a: &str, b: &str) -> bool {
    a == b
        || match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

/// jsonb containment: does `a` contain `b` (`a @> b`)?
pub fn contains(a: &Value, b: &Value, top: bool) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Object(am), Kind::Object(bm)) => members(bm, true).into_iter().all(|(k, bv)| {
            am.iter()
                .rev()
                .find(|(ak, _)| ak == k)
                .is_some_and(|(_, av)| contains(av, bv, false))
        }),
        (Kind::Array(ai), Kind::Array(bi)) => bi.iter().all(|bv| {
            ai.iter().any(|av| match (&av.kind, &bv.kind) {
                (Kind::Array(_) | Kind::Object(_), Kind::Array(_) | Kind::Object(_)) => {
                    contains(av, bv, false)
                }
                (Kind::Array(_) | Kind::Object(_), _) | (_, Kind::Array(_) | Kind::Object(_)) => {
                    false
                }
                _ => contains(av, bv, false),
            })
        }),
        // A top-level array contains a scalar it has as an element.
        (Kind::Array(ai), _) if top => ai.iter().any(|av| contains(av, b, false)),
        (Kind::Null, Kind::Null) => true,
        (Kind::Bool(x), Kind::Bool(y)) => x == y,
        (Kind::Number(x), Kind::Number(y)) => numbers_equal(x, y),
        (Kind::String(x), Kind::String(y)) => x == y,
        _ => false,
    }
}

/// `?`: is `key` a top-level key, a string element, or the string itself?
fn has_key(v: &Value, key: &str) -> bool {
    match &v.kind {
        Kind::Object(m) => m.iter().any(|(k, _)| k == key),
        Kind::Array(items) => items
            .iter()
            .any(|i| matches!(&i.kind, Kind::String(s) if s == key)),
        Kind::String(s) => s == key,
        _ => false,
    }
}

/// The keys of a `?|` / `?&` argument: a text array or its literal text.
fn key_lists(a: &ArrayRef) -> Result<Vec<Option<Vec<String>>>> {
    let n = a.len();
    if let DataType::List(_) | DataType::LargeList(_) = a.data_type() {
        let l = cast(a, &text_list())?;
        let l = l.as_list::<i32>();
        return Ok((0..n)
            .map(|i| {
                (!l.is_null(i)).then(|| {
                    let v = l.value(i);
                    let v = v.as_string::<i32>();
                    v.iter().flatten().map(str::to_string).collect()
                })
            })
            .collect());
    }
    let t = cast(a, &DataType::Utf8)?;
    let t = t.as_string::<i32>();
    (0..n)
        .map(|i| {
            if t.is_null(i) {
                return Ok(None);
            }
            let items = super::text::parse_array_text(t.value(i))
                .map_err(|m| DataFusionError::from(Error::new(ErrorKind::InvalidText, m)))?;
            Ok(Some(items.into_iter().flatten().collect()))
        })
        .collect()
}

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Key(String),
    AnyKey,
    Index(i64),
    Last,
    AnyIndex,
}

fn path_error(path: &str) -> DataFusionError {
    Error::new(
        ErrorKind::Syntax,
        format!("syntax error at or near \"{path}\" of jsonpath input"),
    )
    .into()
}

/// The common JSONPath forms: `$`, `.key`, `."key"`, `.*`, `[n]`,
/// `[last]`, `[*]`, in lax mode (the default).
fn parse_path(path: &str) -> Result<Vec<PathStep>> {
    let mut p = path.trim();
    if let Some(rest) = p.strip_prefix("lax ") {
        p = rest.trim_start();
    } else if p.starts_with("strict ") {
        return Err(Error::new(
            ErrorKind::FeatureNotSupported,
            "strict mode of jsonpath is not supported",
        )
        .into());
    }
    let Some(mut rest) = p.strip_prefix('$') else {
        return Err(path_error(path));
    };
    let mut steps = vec![];
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(steps);
        }
        if let Some(r) = rest.strip_prefix(".*") {
            steps.push(PathStep::AnyKey);
            rest = r;
        } else if let Some(r) = rest.strip_prefix(".\"") {
            let end = r.find('"').ok_or_else(|| path_error(path))?;
            steps.push(PathStep::Key(r[..end].to_string()));
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(r.len());
            if end == 0 {
                return Err(path_error(path));
            }
            steps.push(PathStep::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| path_error(path))?;
            let inner = r[..end].trim();
            steps.push(match inner {
                "*" => PathStep::AnyIndex,
                "last" => PathStep::Last,
                i => PathStep::Index(i.parse().map_err(|_| {
                    DataFusionError::from(Error::new(
                        ErrorKind::FeatureNotSupported,
                        format!("jsonpath subscript \"{i}\" is not supported"),
                    ))
                })?),
            });
            rest = &r[end + 1..];
        } else if rest.starts_with('?') {
            return Err(Error::new(
                ErrorKind::FeatureNotSupported,
                "jsonpath filter expressions are not supported",
            )
            .into());
        } else {
            return Err(path_error(path));
        }
    }
}

/// The values a path selects, in lax mode: a key step on an array looks
/// into its elements; an array step on a non-array treats it as `[it]`.
fn path_values<'v>(v: &'v Value, steps: &[PathStep]) -> Vec<&'v Value> {
    let mut current = vec![v];
    for step in steps {
        let mut next = vec![];
        for v in current {
            select(v, step, &mut next, true);
        }
        current = next;
    }
    current
}

fn select<'v>(v: &'v Value, step: &PathStep, out: &mut Vec<&'v Value>, unwrap: bool) {
    match (&v.kind, step) {
        (Kind::Array(items), PathStep::Key(_) | PathStep::AnyKey) if unwrap => {
            for i in items {
                select(i, step, out, false);
            }
        }
        (Kind::Object(m), PathStep::Key(k)) => {
            if let Some((_, v)) = m.iter().rev().find(|(key, _)| key == k) {
                out.push(v);
            }
        }
        (Kind::Object(m), PathStep::AnyKey) => {
            out.extend(members(m, true).into_iter().map(|(_, v)| v))
        }
        (Kind::Array(items), PathStep::AnyIndex) => out.extend(items.iter()),
        (Kind::Array(items), PathStep::Index(i)) => {
            if let Some(v) = usize::try_from(*i).ok().and_then(|i| items.get(i)) {
                out.push(v);
            }
        }
        (Kind::Array(items), PathStep::Last) => out.extend(items.last()),
        (_, PathStep::AnyIndex | PathStep::Last | PathStep::Index(0)) => out.push(v),
        _ => {}
    }
}

enum Out {
    Text(StringBuilder),
    Bool(BooleanBuilder),
    Int(Int32Builder),
    List(ListBuilder<StringBuilder>),
}

impl JsonFn {
    fn compute(&self, arrays: &[ArrayRef], n: usize) -> Result<ArrayRef> {
        let jsonb = self.jsonb;
        if self.f == F::Marked {
            let text = cast(&arrays[0], &DataType::Utf8)?;
            let nulls = text.nulls().cloned();
            let DataType::Struct(fields) = marked_type() else {
                unreachable!()
            };
            return Ok(Arc::new(StructArray::try_new(fields, vec![text], nulls)?));
        }
        // Builders take any values; the others read a document first.
        match self.f {
            F::BuildArray | F::BuildObject | F::ToJson | F::Member | F::AggElement => {
                return self.build(arrays, n);
            }
            F::AggArray | F::AggObject => return self.collected(&arrays[0], n),
            _ => {}
        }
        let docs = cast(&arrays[0], &DataType::Utf8)?;
        let docs = docs.as_string::<i32>();
        let second = match self.f {
            F::ExistsAny | F::ExistsAll => None,
            _ if arrays.len() > 1 => Some(cast(&arrays[1], &DataType::Utf8)?),
            _ => None,
        };
        let keys = match self.f {
            F::ExistsAny | F::ExistsAll => Some(key_lists(&arrays[1])?),
            _ => None,
        };
        let path_texts = match self.f {
            F::ExtractPath { .. } => arrays[1..]
                .iter()
                .map(|a| cast(a, &DataType::Utf8))
                .collect::<std::result::Result<Vec<_>, _>>()?,
            _ => vec![],
        };
        let mut out = match self.f {
            F::ArrayLength => Out::Int(Int32Builder::with_capacity(n)),
            F::Contains
            | F::Contained
            | F::Exists
            | F::ExistsAny
            | F::ExistsAll
            | F::PathExists => Out::Bool(BooleanBuilder::with_capacity(n)),
            F::Elements { .. } | F::Keys | F::EachKeys | F::EachValues { .. } | F::PathQuery => {
                Out::List(ListBuilder::new(StringBuilder::new()))
            }
            _ => Out::Text(StringBuilder::new()),
        };
        // A constant path is read once.
        let mut cached_path: Option<(String, Vec<PathStep>)> = None;
        for row in 0..n {
            let second_text = second
                .as_ref()
                .map(|s| s.as_string::<i32>())
                .and_then(|s| (!s.is_null(row)).then(|| s.value(row)));
            let null_second = second.is_some() && second_text.is_none()
                || keys.as_ref().is_some_and(|k| k[row].is_none());
            if docs.is_null(row) || null_second {
                match &mut out {
                    Out::Text(b) => b.append_null(),
                    Out::Bool(b) => b.append_null(),
                    Out::Int(b) => b.append_null(),
                    Out::List(b) => b.append_null(),
                }
                continue;
            }
            let src = docs.value(row);
            let doc = parse(src)?;
            match (self.f, &mut out) {
                (F::TypeOf, Out::Text(b)) => b.append_value(type_name(&doc)),
                (F::ArrayLength, Out::Int(b)) => match &doc.kind {
                    Kind::Array(items) => b.append_value(items.len() as i32),
                    Kind::Object(_) => {
                        return Err(invalid("cannot get array length of a non-array"));
                    }
                    _ => return Err(invalid("cannot get array length of a scalar")),
                },
                (F::Contains | F::Contained, Out::Bool(b)) => {
                    let other = parse(second_text.unwrap_or(""))?;
                    b.append_value(if self.f == F::Contains {
                        contains(&doc, &other, true)
                    } else {
                        contains(&other, &doc, true)
                    });
                }
                (F::Exists, Out::Bool(b)) => {
                    b.append_value(has_key(&doc, second_text.unwrap_or("")))
                }
                (F::ExistsAny | F::ExistsAll, Out::Bool(b)) => {
                    let list = keys.as_ref().and_then(|k| k[row].as_ref());
                    let list = list.map(Vec::as_slice).unwrap_or(&[]);
                    b.append_value(if self.f == F::ExistsAny {
                        list.iter().any(|k| has_key(&doc, k))
                    } else {
                        list.iter().all(|k| has_key(&doc, k))
                    });
                }
                (F::ExtractPath { text }, Out::Text(b)) => {
                    let mut at = Some(&doc);
                    for p in &path_texts {
                        let p = p.as_string::<i32>();
                        if p.is_null(row) {
                            at = None;
                            break;
                        }
                        at = at.and_then(|v| jsonb::get(v, &jsonb::Step::Part(p.value(row))));
                    }
                    let value = at.and_then(|v| {
                        if text {
                            jsonb::as_text(v, src, jsonb)
                        } else {
                            Some(value_text(v, src, jsonb))
                        }
                    });
                    match value {
                        Some(v) => b.append_value(v),
                        None => b.append_null(),
                    }
                }
                (F::PathExists | F::PathFirst | F::PathArray | F::PathQuery, _) => {
                    let path = second_text.unwrap_or("");
                    if cached_path.as_ref().is_none_or(|(p, _)| p != path) {
                        cached_path = Some((path.to_string(), parse_path(path)?));
                    }
                    let steps = &cached_path.as_ref().expect("parsed path").1;
                    let found = path_values(&doc, steps);
                    let texts = found.iter().map(|v| jsonb::jsonb_text(v));
                    match &mut out {
                        Out::Bool(b) => b.append_value(!found.is_empty()),
                        Out::List(b) => {
                            for t in texts {
                                b.values().append_value(t);
                            }
                            b.append(true);
                        }
                        Out::Text(b) if self.f == F::PathFirst => match found.first() {
                            Some(v) => b.append_value(jsonb::jsonb_text(v)),
                            None => b.append_null(),
                        },
                        Out::Text(b) => b.append_value(join_array(texts.map(Some))),
                        Out::Int(_) => unreachable!(),
                    }
                }
                (F::Elements { text }, Out::List(b)) => {
                    let Kind::Array(items) = &doc.kind else {
                        return Err(invalid(if matches!(doc.kind, Kind::Object(_)) {
                            "cannot extract elements from an object"
                        } else {
                            "cannot extract elements from a scalar"
                        }));
                    };
                    for item in items {
                        if text {
                            match jsonb::as_text(item, src, jsonb) {
                                Some(t) => b.values().append_value(t),
                                None => b.values().append_null(),
                            }
                        } else {
                            b.values().append_value(value_text(item, src, jsonb));
                        }
                    }
                    b.append(true);
                }
                (F::Keys | F::EachKeys | F::EachValues { .. }, Out::List(b)) => {
                    let Kind::Object(m) = &doc.kind else {
                        let what = if matches!(doc.kind, Kind::Array(_)) {
                            "an array"
                        } else {
                            "a scalar"
                        };
                        return Err(invalid(&if self.f == F::Keys {
                            format!("cannot call {}_object_keys on {what}", prefix(jsonb))
                        } else {
                            format!("cannot deconstruct {what} as an object")
                        }));
                    };
                    for (k, v) in members(m, jsonb) {
                        match self.f {
                            F::EachValues { text: true } => match jsonb::as_text(v, src, jsonb) {
                                Some(t) => b.values().append_value(t),
                                None => b.values().append_null(),
                            },
                            F::EachValues { text: false } => {
                                b.values().append_value(value_text(v, src, jsonb))
                            }
                            _ => b.values().append_value(k),
                        }
                    }
                    b.append(true);
                }
                _ => return Err(Error::internal(format!("{} on its arguments", self.name)).into()),
            }
        }
        Ok(match out {
            Out::Text(mut b) => Arc::new(b.finish()),
            Out::Bool(mut b) => Arc::new(b.finish()),
            Out::Int(mut b) => Arc::new(b.finish()),
            Out::List(mut b) => Arc::new(b.finish()),
        })
    }

    /// The builders: every argument converted to JSON.
    fn build(&self, arrays: &[ArrayRef], n: usize) -> Result<ArrayRef> {
        let values = arrays
            .iter()
            .map(to_json_texts)
            .collect::<Result<Vec<_>>>()?;
        let mut out = StringBuilder::new();
        if self.f == F::BuildObject && !arrays.len().is_multiple_of(2) {
            return Err(invalid("argument list must have even number of elements"));
        }
        // Object keys as text, cast once: a member's first argument, every
        // other argument of an object.
        let keys = match self.f {
            F::Member => vec![cast(&arrays[0], &DataType::Utf8)?],
            F::BuildObject => arrays
                .iter()
                .step_by(2)
                .map(|a| cast(a, &DataType::Utf8))
                .collect::<std::result::Result<Vec<_>, _>>()?,
            _ => vec![],
        };
        for row in 0..n {
            let text = match self.f {
                F::ToJson => values[0][row]
                    .as_deref()
                    .map(|t| normal(t, self.jsonb))
                    .transpose()?,
                F::AggElement => {
                    let structured = matches!(
                        arrays[0].data_type(),
                        DataType::List(_)
                            | DataType::LargeList(_)
                            | DataType::FixedSizeList(..)
                            | DataType::Struct(_)
                    ) && !is_marked(arrays[0].data_type());
                    values[0][row].as_deref().map(|t| {
                        if structured {
                            format!("\n {t}")
                        } else {
                            t.to_string()
                        }
                    })
                }
                F::Member => {
                    let key = keys[0].as_string::<i32>();
                    if key.is_null(row) {
                        return Err(Error::new(
                            ErrorKind::InvalidParameter,
                            "field name must not be null",
                        )
                        .into());
                    }
                    let mut t = String::from("[");
                    quote(&mut t, key.value(row));
                    t.push_str(", ");
                    t.push_str(values[1][row].as_deref().unwrap_or("null"));
                    t.push(']');
                    Some(t)
                }
                F::BuildArray => {
                    let t = join_array(values.iter().map(|v| v[row].clone()));
                    Some(normal(&t, self.jsonb)?)
                }
                _ => {
                    let mut t = String::from("{");
                    for (i, (pair, key)) in values.chunks(2).zip(&keys).enumerate() {
                        let key = key.as_string::<i32>();
                        if key.is_null(row) {
                            return Err(Error::new(
                                ErrorKind::NullValueNotAllowed,
                                format!("argument {}: key must not be null", 2 * i + 1),
                            )
                            .into());
                        }
                        if i > 0 {
                            t.push_str(", ");
                        }
                        quote(&mut t, key.value(row));
                        // json keeps PostgreSQL's text (`{"a" : 1}`);
                        // jsonb prints its own (`{"a": 1}`).
                        t.push_str(if self.jsonb { ": " } else { " : " });
                        t.push_str(pair[1][row].as_deref().unwrap_or("null"));
                    }
                    t.push('}');
                    Some(normal(&t, self.jsonb)?)
                }
            };
            match text {
                Some(t) => out.append_value(t),
                None => out.append_null(),
            }
        }
        Ok(Arc::new(out.finish()))
    }

    /// `jsonb_agg` / `jsonb_object_agg` over the list `array_agg` collected
    /// (of JSON texts, or of `["key", value]` members).
    fn collected(&self, list: &ArrayRef, n: usize) -> Result<ArrayRef> {
        let l = cast(list, &text_list())?;
        let l = l.as_list::<i32>();
        let mut out = StringBuilder::new();
        for row in 0..n {
            if l.is_null(row) {
                out.append_null();
                continue;
            }
            let items = l.value(row);
            let items = items.as_string::<i32>();
            let text = if self.f == F::AggArray {
                // The first element has no newline before it.
                let t = join_array(items.iter().enumerate().map(|(k, i)| {
                    i.map(|t| {
                        if k == 0 {
                            t.strip_prefix("\n ").unwrap_or(t)
                        } else {
                            t
                        }
                    })
                    .map(str::to_string)
                }));
                normal(&t, self.jsonb)?
            } else {
                let mut t = String::from(if self.jsonb { "{" } else { "{ " });
                for (k, item) in items.iter().enumerate() {
                    let member = parse(item.unwrap_or("null"))?;
                    let Kind::Array(kv) = &member.kind else {
                        return Err(Error::internal("object_agg member").into());
                    };
                    let (Kind::String(key), Some(v)) = (&kv[0].kind, kv.get(1)) else {
                        return Err(Error::internal("object_agg member").into());
                    };
                    if k > 0 {
                        t.push_str(", ");
                    }
                    quote(&mut t, key);
                    t.push_str(" : ");
                    t.push_str(&value_text(v, item.unwrap_or(""), false));
                }
                t.push_str(if self.jsonb { "}" } else { " }" });
                normal(&t, self.jsonb)?
            };
            out.append_value(text);
        }
        Ok(Arc::new(out.finish()))
    }
}

fn prefix(jsonb: bool) -> &'static str {
    if jsonb { "jsonb" } else { "json" }
}

fn invalid(msg: &str) -> DataFusionError {
    Error::new(ErrorKind::InvalidParameter, msg).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(t: &str) -> Value {
        jsonb::parse(t).unwrap()
    }

    #[test]
    fn containment_follows_postgres() {
        let yes = [
            (r#"{"a":1,"b":[1,2,3]}"#, r#"{"b":[3,1]}"#),
            (r#"[1,2,[3,4]]"#, r#"[[3]]"#),
            (r#"[1,"a"]"#, r#""a""#),
            (r#"{"a":{"b":1.0}}"#, r#"{"a":{"b":1}}"#),
            (r#"{"a":1}"#, r#"{}"#),
            (r#"[1,1]"#, r#"[1]"#),
        ];
        for (a, b) in yes {
            assert!(contains(&v(a), &v(b), true), "{a} @> {b}");
        }
        let no = [
            (r#"{"a":1}"#, r#"{"a":2}"#),
            (r#"[1,[2]]"#, r#"[2]"#),
            (r#""a""#, r#"["a"]"#),
            (r#"{"a":[1]}"#, r#"{"a":1}"#),
            (r#"{"a":{"b":1}}"#, r#"{"b":1}"#),
        ];
        for (a, b) in no {
            assert!(!contains(&v(a), &v(b), true), "not {a} @> {b}");
        }
    }

    #[test]
    fn paths_select_in_lax_mode() {
        let doc = v(r#"{"a": [{"b": 1}, {"b": 2}, {"c": 3}], "d": {"e": "x"}}"#);
        let texts = |p: &str| {
            path_values(&doc, &parse_path(p).unwrap())
                .into_iter()
                .map(jsonb::jsonb_text)
                .collect::<Vec<_>>()
        };
        assert_eq!(texts("$.a[*].b"), ["1", "2"]);
        assert_eq!(texts("$.a.b"), ["1", "2"]);
        assert_eq!(texts("$.a[last].c"), ["3"]);
        assert_eq!(texts("$.\"d\".e"), ["\"x\""]);
        assert_eq!(texts("$.d.*"), ["\"x\""]);
        assert_eq!(texts("$.zz"), Vec::<String>::new());
        assert!(parse_path("a.b").is_err());
        assert!(parse_path("$.a ? (@ > 1)").is_err());
    }
}
