//! `LIKE ... ESCAPE 'c'` with any escape character. DataFusion runs only
//! the backslash; PostgreSQL takes any (`ESCAPE '!'`, SQLAlchemy's `'/'`).
//! The pattern is rewritten to backslash escapes when the statement runs,
//! so it may be a literal, a parameter or a column.
//!
//! `SIMILAR TO`, which DataFusion runs as a regular expression match of
//! the pattern as it is (`'abc' SIMILAR TO 'a%'` was false, `'xabcx'
//! SIMILAR TO 'abc'` true), is matched with the regular expression
//! PostgreSQL's `similar_to_escape(pattern [, escape])` makes of it: the
//! whole string, `%` and `_` as wildcards, `.` literal.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::Like;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, cast,
};

/// `pattern` with `escape` escapes turned into backslash escapes (and its
/// own backslashes made literal).
pub fn to_backslash_escapes(pattern: &str, escape: char) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            match chars.next() {
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => return Err("LIKE pattern must not end with escape character".into()),
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// The regular expression a `SIMILAR TO` pattern stands for, as
/// PostgreSQL's `similar_to_escape` makes it: anchored at both ends, `%`
/// any string, `_` any character, `(` a group, `| * + ? { }` and bracket
/// expressions as in a regular expression, every other character
/// (`.`, `^`, `$`, a backslash) literal, and the escape character making
/// the next one literal.
pub fn similar_to_regex(pattern: &str, escape: Option<char>) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 10);
    out.push_str("^(?:");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                // SUBSTRING's separators mean nothing to a match.
                Some('"') => {}
                Some(next) => out.push_str(&regex_syntax_escape(next)),
                None => {
                    return Err("SIMILAR TO pattern must not end with escape character".into());
                }
            }
            continue;
        }
        match c {
            '[' => {
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                // A `]` first in a bracket expression is one of its characters.
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
                for inner in chars.by_ref() {
                    match inner {
                        ']' => break,
                        '\\' | '[' | '&' | '~' => {
                            out.push('\\');
                            out.push(inner);
                        }
                        other => out.push(other),
                    }
                }
                out.push(']');
            }
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '(' => out.push_str("(?:"),
            '|' | '*' | '+' | '?' | '{' | '}' | ')' => out.push(c),
            other => out.push_str(&regex_syntax_escape(other)),
        }
    }
    out.push_str(")$");
    Ok(out)
}

/// `c` as a literal in a regular expression.
fn regex_syntax_escape(c: char) -> String {
    let mut buf = [0u8; 4];
    regex::escape(c.encode_utf8(&mut buf))
}

/// `similar_to_escape(pattern [, escape])`: the regular expression of a
/// `SIMILAR TO` pattern (see [`similar_to_regex`]); NULL for a NULL
/// pattern, no escape character for an empty one.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SimilarToEscape {
    signature: Signature,
}

/// The function `similar_to_escape`.
pub fn similar_to_escape_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(SimilarToEscape {
        signature: Signature::one_of(
            vec![
                datafusion::logical_expr::TypeSignature::String(1),
                datafusion::logical_expr::TypeSignature::String(2),
            ],
            Volatility::Immutable,
        ),
    })
}

impl ScalarUDFImpl for SimilarToEscape {
    fn name(&self) -> &str {
        "similar_to_escape"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let text = |i: usize| -> DfResult<Option<ArrayRef>> {
            match args.args.get(i) {
                Some(a) => Ok(Some(datafusion::arrow::compute::cast(
                    &a.to_array(n)?,
                    &DataType::Utf8,
                )?)),
                None => Ok(None),
            }
        };
        let patterns = text(0)?.expect("one argument or two");
        let patterns = patterns.as_string::<i32>();
        let escapes = text(1)?;
        let escapes = escapes.as_ref().map(|e| e.as_string::<i32>());
        let invalid = |m: String| {
            datafusion::error::DataFusionError::External(Box::new(crate::error::Error::new(
                crate::error::ErrorKind::InvalidEscapeSequence,
                m,
            )))
        };
        let mut out = datafusion::arrow::array::StringBuilder::new();
        for i in 0..n {
            let escape = match escapes {
                None => Some(Some('\\')),
                Some(e) if e.is_null(i) => None,
                Some(e) => {
                    let mut cs = e.value(i).chars();
                    match (cs.next(), cs.next()) {
                        (None, _) => Some(None),
                        (Some(c), None) => Some(Some(c)),
                        _ => return Err(invalid("invalid escape string".into())),
                    }
                }
            };
            match (patterns.is_null(i), escape) {
                (false, Some(escape)) => {
                    out.append_value(similar_to_regex(patterns.value(i), escape).map_err(invalid)?)
                }
                _ => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LikeEscape {
    escape: char,
    signature: Signature,
}

impl ScalarUDFImpl for LikeEscape {
    fn name(&self) -> &str {
        "sluice_like_escape"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        let input = input.as_string::<i32>();
        let out = (0..input.len())
            .map(|i| {
                (!input.is_null(i))
                    .then(|| to_backslash_escapes(input.value(i), self.escape))
                    .transpose()
            })
            .collect::<Result<StringArray, String>>()
            .map_err(|m| {
                datafusion::error::DataFusionError::External(Box::new(crate::error::Error::new(
                    crate::error::ErrorKind::InvalidEscapeSequence,
                    m,
                )))
            })?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// Rewrites every `LIKE`/`ILIKE` whose escape is not the backslash to
/// backslash escapes. An analyzer rule, so that every plan the session runs
/// (queries, DML, checks of the write path) gets it.
#[derive(Debug, Default)]
pub struct LikeEscapes;

impl datafusion::optimizer::AnalyzerRule for LikeEscapes {
    fn name(&self) -> &str {
        "sluice_like_escapes"
    }

    fn analyze(
        &self,
        plan: LogicalPlan,
        _: &datafusion::common::config::ConfigOptions,
    ) -> DfResult<LogicalPlan> {
        rewrite_plan(plan)
    }
}

fn rewrite_plan(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    crate::tree::transform_up_with_subqueries(plan, |node| {
        let names = NamePreserver::new(&node);
        crate::tree::map_expressions(node, |e| {
            let saved = crate::types::save_name(&names, &e);
            let rewritten = crate::tree::transform_up(e, |x| match x {
                Expr::Like(like) if like.escape_char.is_some_and(|c| c != '\\') => {
                    let escape = like.escape_char.unwrap_or('\\');
                    let udf = ScalarUDF::new_from_impl(LikeEscape {
                        escape,
                        signature: Signature::any(1, Volatility::Immutable),
                    });
                    let pattern = udf.call(vec![cast(*like.pattern, DataType::Utf8)]);
                    Ok(Transformed::yes(Expr::Like(Like {
                        pattern: Box::new(pattern),
                        escape_char: None,
                        ..like
                    })))
                }
                // The pattern as the regular expression it stands for.
                Expr::SimilarTo(like) => {
                    let mut args = vec![cast(*like.pattern, DataType::Utf8)];
                    if let Some(e) = like.escape_char {
                        args.push(Expr::Literal(
                            datafusion::common::ScalarValue::Utf8(Some(e.to_string())),
                            None,
                        ));
                    }
                    let pattern = Arc::new(similar_to_escape_udf()).call(args);
                    Ok(Transformed::yes(Expr::SimilarTo(Like {
                        pattern: Box::new(pattern),
                        escape_char: None,
                        ..like
                    })))
                }
                other => Ok(Transformed::no(other)),
            })?;
            Ok(rewritten.update_data(|x| crate::types::keep_name(saved, x)))
        })
    })
    .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_to_patterns_become_anchored_regular_expressions() {
        let re = |p: &str| similar_to_regex(p, Some('\\')).unwrap();
        assert_eq!(re("a%"), "^(?:a.*)$");
        assert_eq!(re("a_c"), "^(?:a.c)$");
        assert_eq!(re("a.c"), "^(?:a\\.c)$");
        assert_eq!(re("(b|c)+%"), "^(?:(?:b|c)+.*)$");
        assert_eq!(re("[^]a-c]x"), "^(?:[^\\]a-c]x)$");
        assert_eq!(re("100\\%"), "^(?:100%)$");
        assert_eq!(similar_to_regex("a#_", Some('#')).unwrap(), "^(?:a_)$");
        assert!(similar_to_regex("a\\", Some('\\')).is_err());
        for (text, pattern, matches) in [
            ("abc", "a%", true),
            ("abc", "%c", true),
            ("abc", "a_c", true),
            ("abcdefg", "_bcd%", true),
            ("xabcx", "abc", false),
            ("abc", "abc|xyz", true),
            ("a.c", "a.c", true),
            ("abc", "a.c", false),
        ] {
            let r = regex::Regex::new(&re(pattern)).unwrap();
            assert_eq!(r.is_match(text), matches, "{text} SIMILAR TO {pattern}");
        }
    }

    #[test]
    fn escapes_become_backslashes() {
        assert_eq!(to_backslash_escapes("pg!_%", '!').unwrap(), "pg\\_%");
        assert_eq!(to_backslash_escapes("a\\b", '/').unwrap(), "a\\\\b");
        assert_eq!(to_backslash_escapes("//x", '/').unwrap(), "\\/x");
        assert!(to_backslash_escapes("ab!", '!').is_err());
    }
}
