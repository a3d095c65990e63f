//! jsonb's editing operators and functions, as PostgreSQL defines them:
//! `a || b` (`jsonb_concat`), `a - key`, `a - index`, `a - keys`
//! (`jsonb_delete`), `a #- path` (`jsonb_delete_path`), `jsonb_set`,
//! `jsonb_insert`, `jsonb_strip_nulls` and `jsonb_pretty`. Documents are
//! text (see [`super::jsonb`]); results are jsonb's normal text.
//!
//! The operators reach these functions from the planner: `#-` directly,
//! `||` and `-` when one side is known to be jsonb (the analyzer rule that
//! knows declared types rewrites them; on text they keep their meaning).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::json_fns::parse;
use super::jsonb::{self, Kind, Value};
use crate::error::{Error, ErrorKind};

/// What a function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum E {
    Concat,
    Delete,
    DeletePath,
    Set,
    Insert,
    StripNulls,
    Pretty,
}

/// Every function of this module, by name; all but `jsonb_pretty` give jsonb.
const FUNCTIONS: &[(&str, E)] = &[
    (CONCAT, E::Concat),
    (DELETE, E::Delete),
    (DELETE_PATH, E::DeletePath),
    ("jsonb_set", E::Set),
    ("jsonb_insert", E::Insert),
    ("jsonb_strip_nulls", E::StripNulls),
    ("jsonb_pretty", E::Pretty),
];

/// `a || b` on jsonb.
pub const CONCAT: &str = "jsonb_concat";
/// `a - b` on jsonb.
pub const DELETE: &str = "jsonb_delete";
/// `a #- path`.
pub const DELETE_PATH: &str = "jsonb_delete_path";

/// Does the function called `name` give a jsonb document?
pub fn gives_jsonb(name: &str) -> bool {
    FUNCTIONS.iter().any(|(n, e)| *n == name && *e != E::Pretty)
}

/// Register every function of this module.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    for &(name, _) in FUNCTIONS {
        ctx.register_udf(udf(name));
    }
}

/// The function called `name` (one of this module's).
pub fn udf(name: &str) -> ScalarUDF {
    let &(name, e) = FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a jsonb function of this module");
    let signature = match e {
        E::StripNulls | E::Pretty => Signature::any(1, Volatility::Immutable),
        E::Concat | E::Delete | E::DeletePath => Signature::any(2, Volatility::Immutable),
        E::Set | E::Insert => Signature::one_of(
            vec![TypeSignature::Any(3), TypeSignature::Any(4)],
            Volatility::Immutable,
        ),
    };
    ScalarUDF::new_from_impl(Edit { name, e, signature })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Edit {
    name: &'static str,
    e: E,
    signature: Signature,
}

impl ScalarUDFImpl for Edit {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        make_scalar_function(
            |arrays: &[ArrayRef]| self.compute(arrays, arrays[0].len()),
            vec![],
        )(&args.args)
    }
}

/// One argument, read row by row as the function needs it.
enum Arg {
    Docs(ArrayRef),
    Ints(ArrayRef),
    Lists(Vec<Option<Vec<Option<String>>>>),
    Bools(ArrayRef),
}

impl Arg {
    fn is_null(&self, row: usize) -> bool {
        match self {
            Arg::Docs(a) | Arg::Ints(a) | Arg::Bools(a) => a.is_null(row),
            Arg::Lists(l) => l[row].is_none(),
        }
    }
}

/// A text array argument: an array, or its literal text (`'{a,b}'`).
fn lists(a: &ArrayRef) -> Result<Vec<Option<Vec<Option<String>>>>> {
    let n = a.len();
    if let DataType::List(_) | DataType::LargeList(_) = a.data_type() {
        let l = cast(
            a,
            &DataType::List(Arc::new(
                datafusion::arrow::datatypes::Field::new_list_field(DataType::Utf8, true),
            )),
        )?;
        let l = l.as_list::<i32>();
        return Ok((0..n)
            .map(|i| {
                (!l.is_null(i)).then(|| {
                    let v = l.value(i);
                    let v = v.as_string::<i32>();
                    v.iter().map(|s| s.map(str::to_string)).collect()
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
            super::text::parse_array_text(t.value(i))
                .map(Some)
                .map_err(|m| Error::new(ErrorKind::InvalidText, m).into())
        })
        .collect()
}

impl Edit {
    fn compute(&self, arrays: &[ArrayRef], n: usize) -> Result<ArrayRef> {
        let text = |a: &ArrayRef| cast(a, &DataType::Utf8).map(Arg::Docs);
        let mut args = vec![text(&arrays[0])?];
        match self.e {
            E::Concat => args.push(text(&arrays[1])?),
            E::Delete => args.push(match arrays[1].data_type() {
                t if t.is_integer() => Arg::Ints(cast(&arrays[1], &DataType::Int64)?),
                DataType::List(_) | DataType::LargeList(_) => Arg::Lists(lists(&arrays[1])?),
                _ => text(&arrays[1])?,
            }),
            E::DeletePath => args.push(Arg::Lists(lists(&arrays[1])?)),
            E::Set | E::Insert => {
                args.push(Arg::Lists(lists(&arrays[1])?));
                args.push(text(&arrays[2])?);
                if let Some(flag) = arrays.get(3) {
                    args.push(Arg::Bools(cast(flag, &DataType::Boolean)?));
                }
            }
            E::StripNulls | E::Pretty => {}
        }
        let mut out = StringBuilder::with_capacity(n, n * 16);
        for row in 0..n {
            // Every one of these functions is strict: NULL in, NULL out.
            if args.iter().any(|a| a.is_null(row)) {
                out.append_null();
                continue;
            }
            let doc = |i: usize| -> Result<Value> {
                let Arg::Docs(a) = &args[i] else {
                    unreachable!("a document argument")
                };
                parse(a.as_string::<i32>().value(row))
            };
            let path = |i: usize| -> &[Option<String>] {
                let Arg::Lists(l) = &args[i] else {
                    unreachable!("a path argument")
                };
                l[row].as_deref().unwrap_or(&[])
            };
            let flag = |default: bool| match args.get(3) {
                Some(Arg::Bools(b)) => b.as_boolean().value(row),
                _ => default,
            };
            let target = doc(0)?;
            let result = match self.e {
                E::Concat => Some(concat(target, doc(1)?)),
                E::Delete => Some(match &args[1] {
                    Arg::Ints(i) => delete_index(
                        target,
                        i.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                            .value(row),
                    )?,
                    Arg::Lists(_) => {
                        let keys: Vec<&str> =
                            path(1).iter().flatten().map(String::as_str).collect();
                        delete_keys(target, &keys)?
                    }
                    Arg::Docs(a) => delete_keys(target, &[a.as_string::<i32>().value(row)])?,
                    Arg::Bools(_) => unreachable!("no flag here"),
                }),
                E::DeletePath => Some(delete_path(target, path(1))?),
                E::Set => Some(set_path(
                    target,
                    path(1),
                    doc(2)?,
                    Mode::Set { create: flag(true) },
                )?),
                E::Insert => Some(set_path(
                    target,
                    path(1),
                    doc(2)?,
                    Mode::Insert { after: flag(false) },
                )?),
                E::StripNulls => Some(strip_nulls(target)),
                E::Pretty => {
                    let mut s = String::new();
                    pretty(&mut s, &target, 0);
                    out.append_value(s);
                    None
                }
            };
            if let Some(v) = result {
                out.append_value(jsonb::jsonb_text(&v));
            }
        }
        Ok(Arc::new(out.finish()))
    }
}

fn invalid(msg: &str) -> DataFusionError {
    Error::new(ErrorKind::InvalidParameter, msg).into()
}

fn value(kind: Kind) -> Value {
    Value { kind, span: (0, 0) }
}

/// `a || b`: objects merge (b's keys win), arrays append, and any other
/// value counts as an array of itself.
fn concat(a: Value, b: Value) -> Value {
    match (a.kind, b.kind) {
        (Kind::Object(mut x), Kind::Object(y)) => {
            // jsonb keeps the last of duplicate keys: b's.
            x.extend(y);
            value(Kind::Object(x))
        }
        (x, y) => {
            let items = |k: Kind| match k {
                Kind::Array(items) => items,
                other => vec![value(other)],
            };
            let mut all = items(x);
            all.extend(items(y));
            value(Kind::Array(all))
        }
    }
}

/// `a - key` and `a - keys`: an object without those keys, an array
/// without those strings.
fn delete_keys(a: Value, keys: &[&str]) -> Result<Value> {
    Ok(value(match a.kind {
        Kind::Object(m) => Kind::Object(
            m.into_iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .collect(),
        ),
        Kind::Array(items) => Kind::Array(
            items
                .into_iter()
                .filter(|v| !matches!(&v.kind, Kind::String(s) if keys.contains(&s.as_str())))
                .collect(),
        ),
        _ => return Err(invalid("cannot delete from scalar")),
    }))
}

/// `a - index`: an array without that element (negative counts from the end).
fn delete_index(a: Value, index: i64) -> Result<Value> {
    match a.kind {
        Kind::Array(mut items) => {
            let at = if index < 0 {
                items.len() as i64 + index
            } else {
                index
            };
            if (0..items.len() as i64).contains(&at) {
                items.remove(at as usize);
            }
            Ok(value(Kind::Array(items)))
        }
        Kind::Object(_) => Err(invalid("cannot delete from object using integer index")),
        _ => Err(invalid("cannot delete from scalar")),
    }
}

/// The path element at `level` (counted from 0), which must not be NULL.
fn step(path: &[Option<String>], level: usize) -> Result<&str> {
    path[level].as_deref().ok_or_else(|| {
        Error::new(
            ErrorKind::NullValueNotAllowed,
            format!("path element at position {} is null", level + 1),
        )
        .into()
    })
}

/// An array index from a path element: 22P02 when it is not an integer.
fn index(path: &[Option<String>], level: usize) -> Result<i64> {
    let s = step(path, level)?;
    s.trim().parse::<i64>().map_err(|_| {
        Error::new(
            ErrorKind::InvalidText,
            format!(
                "path element at position {} is not an integer: \"{s}\"",
                level + 1
            ),
        )
        .into()
    })
}

/// What `set_path` does at the end of the path.
#[derive(Clone, Copy)]
enum Mode {
    /// `jsonb_set`: replace the value there, or add it when `create`.
    Set { create: bool },
    /// `jsonb_insert`: add the value before (or `after`) the element
    /// there; an object's existing key is an error.
    Insert { after: bool },
    /// `#-`: remove the value there.
    Delete,
}

fn delete_path(a: Value, path: &[Option<String>]) -> Result<Value> {
    if !matches!(a.kind, Kind::Object(_) | Kind::Array(_)) {
        return Err(invalid("cannot delete path in scalar"));
    }
    let mut a = a;
    edit(&mut a, path, 0, None, Mode::Delete)?;
    Ok(a)
}

fn set_path(a: Value, path: &[Option<String>], new: Value, mode: Mode) -> Result<Value> {
    if !matches!(a.kind, Kind::Object(_) | Kind::Array(_)) {
        return Err(invalid("cannot set path in scalar"));
    }
    let mut a = a;
    edit(&mut a, path, 0, Some(new), mode)?;
    Ok(a)
}

/// Apply `mode` at `path[level..]` inside the container `at`. A path that
/// leads nowhere (a missing key before the end, a scalar in the way)
/// leaves the document as it is, as PostgreSQL does.
fn edit(
    at: &mut Value,
    path: &[Option<String>],
    level: usize,
    new: Option<Value>,
    mode: Mode,
) -> Result<()> {
    if level >= path.len() {
        return Ok(());
    }
    // PostgreSQL checks the step for NULL on reaching any value, a scalar too.
    step(path, level)?;
    let last = level + 1 == path.len();
    match &mut at.kind {
        Kind::Object(members) => {
            let key = step(path, level)?;
            let found = members.iter().rposition(|(k, _)| k == key);
            match (found, last, mode) {
                (Some(i), false, _) => edit(&mut members[i].1, path, level + 1, new, mode),
                (Some(_), true, Mode::Insert { .. }) => Err(Error::new(
                    ErrorKind::InvalidParameter,
                    "cannot replace existing key",
                )
                .with_hint("Try using the function jsonb_set to replace key value.")
                .into()),
                (Some(_), true, Mode::Delete) => {
                    members.retain(|(k, _)| k != key);
                    Ok(())
                }
                (Some(i), true, Mode::Set { .. }) => {
                    members[i].1 = new.expect("a new value");
                    Ok(())
                }
                (None, true, Mode::Set { create: true } | Mode::Insert { .. }) => {
                    members.push((key.to_string(), new.expect("a new value")));
                    Ok(())
                }
                (None, _, _) => Ok(()),
            }
        }
        Kind::Array(items) => {
            let i = index(path, level)?;
            let len = items.len() as i64;
            let at = if i < 0 { len + i } else { i };
            let inside = (0..len).contains(&at);
            if !last {
                if inside {
                    edit(&mut items[at as usize], path, level + 1, new, mode)?;
                }
                return Ok(());
            }
            match mode {
                Mode::Delete => {
                    if inside {
                        items.remove(at as usize);
                    }
                }
                Mode::Set { create } => {
                    let new = new.expect("a new value");
                    if inside {
                        items[at as usize] = new;
                    } else if create && at < 0 {
                        items.insert(0, new);
                    } else if create {
                        items.push(new);
                    }
                }
                Mode::Insert { after } => {
                    let new = new.expect("a new value");
                    if inside {
                        items.insert(at as usize + usize::from(after), new);
                    } else if at < 0 {
                        items.insert(0, new);
                    } else {
                        items.push(new);
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Objects without their members whose value is null, at every depth.
fn strip_nulls(v: Value) -> Value {
    value(match v.kind {
        // Of duplicate keys the last counts, as jsonb keeps it.
        Kind::Object(m) => Kind::Object(
            jsonb::jsonb_members(&m)
                .into_iter()
                .filter(|(_, v)| !matches!(v.kind, Kind::Null))
                .map(|(k, v)| (k.clone(), strip_nulls(v.clone())))
                .collect(),
        ),
        Kind::Array(items) => Kind::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    })
}

/// `jsonb_pretty`: one member or element per line, four spaces a level.
fn pretty(out: &mut String, v: &Value, level: usize) {
    let indent = |out: &mut String, level: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("    ", level));
    };
    match &v.kind {
        Kind::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                pretty(out, item, level + 1);
            }
            indent(out, level);
            out.push(']');
        }
        Kind::Object(members) => {
            out.push('{');
            for (i, (k, item)) in jsonb::jsonb_members(members).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                jsonb::quote(out, k);
                out.push_str(": ");
                pretty(out, item, level + 1);
            }
            indent(out, level);
            out.push('}');
        }
        _ => out.push_str(&jsonb::jsonb_text(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(t: &str) -> Value {
        jsonb::parse(t).expect("JSON")
    }

    fn text(v: Value) -> String {
        jsonb::jsonb_text(&v)
    }

    fn path(p: &[&str]) -> Vec<Option<String>> {
        p.iter()
            .map(|s| (*s != "NULL").then(|| s.to_string()))
            .collect()
    }

    #[test]
    fn concat_follows_postgresql() {
        assert_eq!(
            text(concat(v(r#"{"a":1,"b":2}"#), v(r#"{"b":3}"#))),
            r#"{"a": 1, "b": 3}"#
        );
        assert_eq!(text(concat(v(r#"{"a":1}"#), v("2"))), r#"[{"a": 1}, 2]"#);
        assert_eq!(text(concat(v("1"), v("[2]"))), "[1, 2]");
        assert_eq!(text(concat(v("[]"), v("{}"))), "[{}]");
        assert_eq!(text(concat(v(r#""x""#), v(r#""y""#))), r#"["x", "y"]"#);
    }

    #[test]
    fn delete_by_key_index_and_path() {
        assert_eq!(
            text(delete_keys(v(r#"["a","b",1]"#), &["a"]).unwrap()),
            r#"["b", 1]"#
        );
        assert_eq!(
            text(delete_keys(v(r#"{"a":1,"b":2,"c":3}"#), &["a", "c"]).unwrap()),
            r#"{"b": 2}"#
        );
        assert!(delete_keys(v(r#""a""#), &["a"]).is_err());
        assert_eq!(text(delete_index(v("[1,2,3]"), -1).unwrap()), "[1, 2]");
        assert_eq!(text(delete_index(v("[1,2,3]"), 7).unwrap()), "[1, 2, 3]");
        assert!(delete_index(v(r#"{"a":1}"#), 0).is_err());
        assert_eq!(
            text(delete_path(v("[1,[2,3]]"), &path(&["1", "0"])).unwrap()),
            "[1, [3]]"
        );
        assert!(delete_path(v(r#"{"a":[1]}"#), &path(&["a", "x"])).is_err());
        assert!(delete_path(v("1"), &path(&["a"])).is_err());
        assert!(delete_path(v(r#"{"a":1}"#), &path(&["a", "NULL"])).is_err());
    }

    #[test]
    fn set_and_insert_follow_postgresql() {
        let set = |d: &str, p: &[&str], n: &str, create| {
            set_path(v(d), &path(p), v(n), Mode::Set { create }).map(text)
        };
        assert_eq!(
            set(r#"{"a":1}"#, &["a", "b"], "2", true).unwrap(),
            r#"{"a": 1}"#
        );
        assert_eq!(set("[1,2]", &["-5"], "0", true).unwrap(), "[0, 1, 2]");
        assert_eq!(set("[1,2]", &["5"], "0", true).unwrap(), "[1, 2, 0]");
        assert_eq!(set("[1,2]", &["5"], "0", false).unwrap(), "[1, 2]");
        assert_eq!(set(r#"{"a":1}"#, &[], "2", true).unwrap(), r#"{"a": 1}"#);
        assert!(set("[1,2]", &["x"], "2", true).is_err());
        assert!(set("1", &["b"], "2", true).is_err());
        let insert = |d: &str, p: &[&str], after| {
            set_path(v(d), &path(p), v("9"), Mode::Insert { after }).map(text)
        };
        assert_eq!(
            insert(r#"{"a":[1,2]}"#, &["a", "1"], false).unwrap(),
            r#"{"a": [1, 9, 2]}"#
        );
        assert_eq!(
            insert(r#"{"a":[1,2]}"#, &["a", "1"], true).unwrap(),
            r#"{"a": [1, 2, 9]}"#
        );
        assert_eq!(insert("[1,2]", &["-1"], false).unwrap(), "[1, 9, 2]");
        assert_eq!(insert("[1,2]", &["-9"], false).unwrap(), "[9, 1, 2]");
        assert!(insert(r#"{"a":1}"#, &["a"], false).is_err());
    }

    #[test]
    fn strip_nulls_and_pretty() {
        assert_eq!(
            text(strip_nulls(v(r#"{"a":null,"b":[null,{"c":null}]}"#))),
            r#"{"b": [null, {}]}"#
        );
        assert_eq!(text(strip_nulls(v(r#"{"a":1,"a":null}"#))), "{}");
        let mut s = String::new();
        pretty(&mut s, &v(r#"{"a":[1,{"b":null}],"c":{},"d":[]}"#), 0);
        assert_eq!(
            s,
            "{\n    \"a\": [\n        1,\n        {\n            \"b\": null\n        }\n    ],\n    \"c\": {\n    },\n    \"d\": [\n    ]\n}"
        );
    }
}
