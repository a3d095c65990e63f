//! `LIKE ... ESCAPE 'c'` with any escape character. DataFusion runs only
//! the backslash; PostgreSQL takes any (`ESCAPE '!'`, SQLAlchemy's `'/'`).
//! The pattern is rewritten to backslash escapes when the statement runs,
//! so it may be a literal, a parameter or a column.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
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
    fn escapes_become_backslashes() {
        assert_eq!(to_backslash_escapes("pg!_%", '!').unwrap(), "pg\\_%");
        assert_eq!(to_backslash_escapes("a\\b", '/').unwrap(), "a\\\\b");
        assert_eq!(to_backslash_escapes("//x", '/').unwrap(), "\\/x");
        assert!(to_backslash_escapes("ab!", '!').is_err());
    }
}
