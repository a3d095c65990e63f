//! `parse_ident(text [, strict])`: a qualified name written as text split
//! into its identifiers, by PostgreSQL's rules. Quoted parts keep their
//! case and may hold dots and doubled quotes; unquoted parts fold to lower
//! case; whitespace may surround the dots (`"public" . "t"`, the form the
//! ADBC driver writes when it checks the columns of a table it appends to).
//! The `::regclass` lookup of a name given as a value reads the name
//! through this function, so the two agree.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use crate::error::{Error, ErrorKind};

/// PostgreSQL's `scanner_isspace`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_cont(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '$'
}

/// PostgreSQL 15's key words other than the unreserved ones (reserved,
/// type or function name, column name): `quote_identifier` quotes an
/// identifier spelled like one.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    // Column-name key words: no function or type name.
    "between",
    "bigint",
    "bit",
    "boolean",
    "char",
    "character",
    "coalesce",
    "dec",
    "decimal",
    "exists",
    "extract",
    "float",
    "greatest",
    "grouping",
    "inout",
    "int",
    "integer",
    "interval",
    "least",
    "national",
    "nchar",
    "none",
    "normalize",
    "nullif",
    "numeric",
    "out",
    "overlay",
    "position",
    "precision",
    "real",
    "row",
    "setof",
    "smallint",
    "substring",
    "time",
    "timestamp",
    "treat",
    "trim",
    "values",
    "varchar",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// An identifier as PostgreSQL prints one (`quote_ident`): quoted only
/// when it is not all lower case letters, digits and underscores, or is
/// a reserved key word (`"order"`).
pub fn quote_ident_if_needed(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RESERVED.contains(&s);
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// Split `text` into identifiers as PostgreSQL's `parse_ident` does. With
/// `strict` false, whatever follows the last identifier is ignored.
pub fn parse_ident(text: &str, strict: bool) -> Result<Vec<String>, Error> {
    let invalid = |detail: Option<&str>| {
        let e = Error::new(
            ErrorKind::InvalidParameter,
            format!("string is not a valid identifier: \"{text}\""),
        );
        match detail {
            Some(d) => e.with_detail(d),
            None => e,
        }
    };
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < chars.len() && is_space(chars[*i]) {
            *i += 1;
        }
    };
    skip_space(&mut i);
    let mut parts = Vec::new();
    let mut after_dot = false;
    loop {
        match chars.get(i) {
            Some('"') => {
                let mut part = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(invalid(Some("String has unclosed double quotes."))),
                        Some('"') if chars.get(i + 1) == Some(&'"') => {
                            part.push('"');
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            part.push(c);
                            i += 1;
                        }
                    }
                }
                if part.is_empty() {
                    return Err(invalid(Some("Quoted identifier must not be empty.")));
                }
                parts.push(part);
            }
            Some(&c) if is_ident_start(c) => {
                let start = i;
                while i < chars.len() && is_ident_cont(chars[i]) {
                    i += 1;
                }
                parts.push(
                    chars[start..i]
                        .iter()
                        .collect::<String>()
                        .to_ascii_lowercase(),
                );
            }
            next => {
                return Err(if next == Some(&'.') {
                    invalid(Some("No valid identifier before \".\"."))
                } else if after_dot {
                    invalid(Some("No valid identifier after \".\"."))
                } else {
                    invalid(None)
                });
            }
        }
        skip_space(&mut i);
        match chars.get(i) {
            Some('.') => {
                after_dot = true;
                i += 1;
                skip_space(&mut i);
            }
            None => break,
            Some(_) if strict => return Err(invalid(None)),
            Some(_) => break,
        }
    }
    Ok(parts)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ParseIdent {
    signature: Signature,
}

impl ScalarUDFImpl for ParseIdent {
    fn name(&self) -> &str {
        "parse_ident"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::new_list(DataType::Utf8, true))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        datafusion::functions::utils::make_scalar_function(parse_ident_array, vec![])(&args.args)
    }
}

/// `parse_ident` of each row: the text and, when given, `strict`.
fn parse_ident_array(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let n = args[0].len();
    let text = datafusion::arrow::compute::cast(&args[0], &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    let strict = args.get(1).map(|a| a.as_boolean());
    let mut out = ListBuilder::new(StringBuilder::new())
        .with_field(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    for row in 0..n {
        let strict = match strict {
            Some(s) if s.is_null(row) => None,
            Some(s) => Some(s.value(row)),
            None => Some(true),
        };
        match (text.is_null(row), strict) {
            (false, Some(strict)) => {
                for part in parse_ident(text.value(row), strict)? {
                    out.values().append_value(part);
                }
                out.append(true);
            }
            _ => out.append(false),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `quote_ident(text)`: the text as PostgreSQL's `quote_identifier`
/// writes an identifier (see [`quote_ident_if_needed`]); the catalog
/// library's quoted no key word.
#[derive(Debug, PartialEq, Eq, Hash)]
struct QuoteIdent {
    signature: Signature,
}

impl ScalarUDFImpl for QuoteIdent {
    fn name(&self) -> &str {
        "quote_ident"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        datafusion::functions::utils::make_scalar_function(
            |args: &[ArrayRef]| {
                let text = datafusion::arrow::compute::cast(&args[0], &DataType::Utf8)?;
                let out: datafusion::arrow::array::StringArray = text
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(quote_ident_if_needed))
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            },
            vec![],
        )(&args.args)
    }
}

/// Register `parse_ident` and `quote_ident` in place of the catalog
/// library's: its `parse_ident` split on every dot and kept the
/// whitespace around it.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(ParseIdent {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
            ],
            Volatility::Immutable,
        ),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(QuoteIdent {
        signature: Signature::uniform(1, vec![DataType::Utf8], Volatility::Immutable),
    }));
}

#[cfg(test)]
mod tests {
    use super::parse_ident;

    fn ok(s: &str) -> Vec<String> {
        parse_ident(s, true).unwrap()
    }

    fn detail(s: &str, strict: bool) -> Option<String> {
        parse_ident(s, strict).unwrap_err().detail
    }

    #[test]
    fn splits_as_postgres_does() {
        assert_eq!(ok("\"public\" . \"pl_adbc\""), ["public", "pl_adbc"]);
        assert_eq!(ok(" public .  x "), ["public", "x"]);
        assert_eq!(ok("A.\"B\""), ["a", "B"]);
        assert_eq!(ok("\"a.b\".c"), ["a.b", "c"]);
        assert_eq!(ok("\"say \"\"hi\"\"\""), ["say \"hi\""]);
        assert_eq!(ok("x1$_"), ["x1$_"]);
        assert_eq!(ok("Übung.T"), ["Übung", "t"]);
        assert_eq!(parse_ident("a.b()", false).unwrap(), ["a", "b"]);
    }

    #[test]
    fn refuses_what_postgres_refuses() {
        assert_eq!(
            detail("a.b.", true).as_deref(),
            Some("No valid identifier after \".\".")
        );
        assert_eq!(
            detail(".a", true).as_deref(),
            Some("No valid identifier before \".\".")
        );
        assert_eq!(
            detail("\"a", true).as_deref(),
            Some("String has unclosed double quotes.")
        );
        assert_eq!(
            detail("\"\".a", true).as_deref(),
            Some("Quoted identifier must not be empty.")
        );
        assert_eq!(detail("a.b()", true), None);
        assert_eq!(detail("1a", true), None);
        assert_eq!(
            parse_ident("1a", true).unwrap_err().message,
            "string is not a valid identifier: \"1a\""
        );
    }
}
