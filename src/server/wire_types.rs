//! The wire types of the types Sluice keeps as text or decimal: result
//! columns described with their declared PostgreSQL type and modifier
//! (traced by `engine::result_types`), `uuid` and `jsonb` values in their
//! binary formats, and parameters a client sends as `uuid`, `json` or
//! `jsonb` read as the text they are stored as.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder};
use datafusion::arrow::datatypes::Schema;
use pgwire::api::Type;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::stmt::StoredStatement;
use pgwire::error::PgWireResult;
use pgwire::types::format::FormatOptions;

use crate::engine::result_types::{ORIGIN_KEY, PARAM_KEY, PG_TYPE_KEY};

/// datafusion-pg-catalog's field metadata on oid columns of the catalog.
const OID_ALIAS_KEY: &str = "pg.oid_alias";

/// The RowDescription fields of `schema`. `params` are the parameter
/// types the client declared, for columns that pass a parameter through.
pub fn fields(
    schema: &Schema,
    format: &Format,
    options: Option<Arc<FormatOptions>>,
    params: &[Option<Type>],
) -> PgWireResult<Vec<FieldInfo>> {
    // PostgreSQL's arrays have any number of dimensions in one type
    // (`int4[]`); the wire encoder knows lists of one level only.
    if let Some(f) = schema.fields().iter().find(|f| {
        matches!(f.data_type(), datafusion::arrow::datatypes::DataType::List(e)
            if matches!(e.data_type(), datafusion::arrow::datatypes::DataType::List(_)))
    }) {
        return Err(pgwire::error::PgWireError::UserError(Box::new(
            pgwire::error::ErrorInfo::new(
                "ERROR".into(),
                "0A000".into(),
                format!(
                    "column \"{}\" is a multi-dimensional array, which Sluice cannot send as a result yet; unnest it or send array_to_string(...)",
                    f.name()
                ),
            ),
        )));
    }
    let mut fields = arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, options)?;
    for (info, field) in fields.iter_mut().zip(schema.fields()) {
        let meta = field.metadata();
        let declared = if let Some(t) = meta.get(PG_TYPE_KEY) {
            t.split_once(',').and_then(|(oid, typmod)| {
                Some((Type::from_oid(oid.parse().ok()?)?, typmod.parse().ok()?))
            })
        } else if let Some(n) = meta.get(PARAM_KEY) {
            // A parameter of a type kept as text is that type; one whose
            // type nothing in the statement decides (`SELECT $1`, when
            // described) is the type the client declared, which is also
            // the type its value is read as.
            let untyped = field.data_type() == &datafusion::arrow::datatypes::DataType::Null;
            let declared = n
                .parse::<usize>()
                .ok()
                .and_then(|n| params.get(n.checked_sub(1)?).cloned().flatten())
                .filter(|t| *t != Type::UNKNOWN);
            match declared {
                Some(t) if untyped || matches!(t, Type::UUID | Type::JSON | Type::JSONB) => {
                    Some((t, -1))
                }
                // An unknown-typed parameter PostgreSQL resolves as text.
                None if untyped => Some((Type::TEXT, -1)),
                _ => None,
            }
        } else if meta.contains_key(OID_ALIAS_KEY)
            && field.data_type() == &datafusion::arrow::datatypes::DataType::Int32
        {
            // A catalog column marked as naming a relation, type or schema
            // (so that `relnamespace = 'public'` compares as PostgreSQL
            // does) is of type oid in PostgreSQL, a number to clients.
            Some((Type::OID, -1))
        } else {
            None
        };
        if let Some((ty, typmod)) = declared {
            *info = FieldInfo::new(info.name().to_string(), None, None, ty, info.format())
                .with_format_options(info.format_options().clone())
                .with_type_modifier(typmod);
        }
        // The relation column a result column is (pgjdbc's getTableName and
        // isNullable look it up in pg_class and pg_attribute).
        if let Some((oid, attnum)) = meta
            .get(ORIGIN_KEY)
            .and_then(|o| o.split_once(','))
            .and_then(|(oid, n)| Some((oid.parse::<i32>().ok()?, n.parse::<i16>().ok()?)))
        {
            *info = FieldInfo::new(
                info.name().to_string(),
                Some(oid),
                Some(attnum),
                info.datatype().clone(),
                info.format(),
            )
            .with_format_options(info.format_options().clone())
            .with_type_modifier(info.type_modifier());
        }
    }
    Ok(fields)
}

/// A text column of a binary-format `uuid` or `jsonb` field in that
/// type's binary form: 16 bytes, or a version byte and the text.
pub fn binary_value(col: &ArrayRef, field: &FieldInfo) -> Option<ArrayRef> {
    if field.format() != FieldFormat::Binary {
        return None;
    }
    let ty = field.datatype();
    if *ty == Type::NUMERIC {
        return crate::types::output::numeric_binary(col)
            .or_else(|| crate::types::output::numeric_text_binary(col));
    }
    if *ty != Type::UUID && *ty != Type::JSONB {
        return None;
    }
    let strings =
        datafusion::arrow::compute::cast(col, &datafusion::arrow::datatypes::DataType::Utf8)
            .ok()?;
    let strings = strings.as_string::<i32>();
    let mut out = BinaryBuilder::new();
    for v in strings.iter() {
        match v {
            None => out.append_null(),
            Some(s) if *ty == Type::UUID => match crate::types::uuid::bytes(s) {
                Some(b) => out.append_value(b),
                None => out.append_value(s.as_bytes()),
            },
            Some(s) => {
                let mut b = Vec::with_capacity(s.len() + 1);
                b.push(1u8);
                b.extend_from_slice(s.as_bytes());
                out.append_value(b);
            }
        }
    }
    let array: ArrayRef = Arc::new(out.finish());
    (array.len() == col.len()).then_some(array)
}

/// PostgreSQL's binary form of the `text[]` whose text form is `text`
/// (None when it is not one: the text decoder then reports it).
fn binary_text_array(text: &[u8]) -> Option<Bytes> {
    let items = crate::types::text::parse_array_text(std::str::from_utf8(text).ok()?).ok()?;
    let mut out = Vec::new();
    let dims: i32 = if items.is_empty() { 0 } else { 1 };
    out.extend_from_slice(&dims.to_be_bytes());
    out.extend_from_slice(&i32::from(items.iter().any(Option::is_none)).to_be_bytes());
    out.extend_from_slice(&Type::TEXT.oid().to_be_bytes());
    if dims == 1 {
        out.extend_from_slice(&i32::try_from(items.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    for item in &items {
        match item {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(s) => {
                out.extend_from_slice(&i32::try_from(s.len()).ok()?.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    Some(Bytes::from(out))
}

/// The array literal `text` (of numbers, dates, times: no element is an
/// empty string) with no blank around an element, each quoted only when it
/// holds a blank or a character the literal's syntax uses (`{1, NULL}` is
/// `{1,NULL}`), the form the text decoder reads right.
fn plain_array_text(text: &[u8]) -> Option<Bytes> {
    let items = crate::types::text::parse_array_text(std::str::from_utf8(text).ok()?).ok()?;
    let items: Vec<String> = items
        .into_iter()
        .map(|item| match item {
            None => "NULL".to_string(),
            Some(s)
                if s.is_empty()
                    || s.eq_ignore_ascii_case("null")
                    || s.chars().any(|c| {
                        c.is_whitespace() || matches!(c, '{' | '}' | ',' | '"' | '\\')
                    }) =>
            {
                format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
            }
            Some(s) => s,
        })
        .collect();
    Some(Bytes::from(format!("{{{}}}", items.join(","))))
}

/// `portal` with its `uuid`, `json` and `jsonb` parameters as text
/// (the client's binary forms decoded), which the rest of the parameter
/// path reads as the text Sluice stores, its `text[]` parameters sent as
/// text in the binary form (the text form's decoder keeps the blanks
/// between elements and reads `""` as NULL: ADBC's `{"r", "v"}` matched
/// nothing), and other arrays sent as text respelled without blanks
/// (`{1, 3}` failed to parse); `None` when it has none. `server` is the types Sluice
/// inferred, for parameters the client left untyped.
pub fn text_parameters<S: Clone>(portal: &Portal<S>, server: &[Type]) -> Option<Portal<S>> {
    let types = &portal.statement.parameter_types;
    let typed = |i: usize| {
        types
            .get(i)
            .cloned()
            .flatten()
            .or_else(|| server.get(i).cloned())
    };
    let is_text_kept =
        |t: &Option<Type>| matches!(t, Some(Type::UUID) | Some(Type::JSON) | Some(Type::JSONB));
    let is_text_array = |i: usize| {
        !portal.parameter_format.is_binary(i)
            && matches!(typed(i), Some(Type::TEXT_ARRAY) | Some(Type::VARCHAR_ARRAY))
    };
    // Any other array sent as text: its literal respelled without blanks.
    let is_other_array = |i: usize| {
        !portal.parameter_format.is_binary(i)
            && !is_text_array(i)
            && typed(i).is_some_and(|t| matches!(t.kind(), postgres_types::Kind::Array(_)))
    };
    if !(0..portal.parameters.len())
        .any(|i| is_text_kept(&typed(i)) || is_text_array(i) || is_other_array(i))
    {
        return None;
    }
    let mut formats = Vec::with_capacity(portal.parameters.len());
    let mut values = Vec::with_capacity(portal.parameters.len());
    let mut declared = types.clone();
    for (i, v) in portal.parameters.iter().enumerate() {
        let binary = portal.parameter_format.is_binary(i);
        let t = typed(i);
        if is_text_array(i)
            && let Some(encoded) = v.as_ref().and_then(|b| binary_text_array(b))
        {
            formats.push(1);
            values.push(Some(encoded));
            if let Some(d) = declared.get_mut(i) {
                *d = t;
            }
            continue;
        }
        if is_other_array(i)
            && let Some(respelled) = v.as_ref().and_then(|b| plain_array_text(b))
        {
            formats.push(0);
            values.push(Some(respelled));
            continue;
        }
        if !is_text_kept(&t) {
            formats.push(if binary { 1 } else { 0 });
            values.push(v.clone());
            continue;
        }
        let text = v.as_ref().map(|b| match (&t, binary) {
            (Some(Type::UUID), true) => crate::types::uuid::from_bytes(b)
                .map(Bytes::from)
                .unwrap_or_else(|| b.clone()),
            (Some(Type::JSONB), true) if b.first() == Some(&1) => b.slice(1..),
            _ => b.clone(),
        });
        formats.push(0);
        values.push(text);
        if let Some(d) = declared.get_mut(i) {
            *d = Some(Type::TEXT);
        }
    }
    let statement = StoredStatement::new(
        portal.statement.id.clone(),
        portal.statement.statement.clone(),
        declared,
    );
    let mut typed = Portal::new_cursor(portal.name.clone(), Arc::new(statement));
    typed.parameter_format = Format::Individual(formats);
    typed.parameters = values;
    typed.result_column_format = portal.result_column_format.clone();
    typed.state = portal.state.clone();
    Some(typed)
}
