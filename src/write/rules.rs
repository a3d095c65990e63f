//! The table's column rules applied to rows on their way in: each value
//! cast to its column's type, `varchar(n)` lengths, NOT NULL, defaults for
//! the columns a statement does not set, and the CHECK constraints.

use std::ops::ControlFlow;

use crate::visit::visit_expressions;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{
    ColumnarValue, Expr as DfExpr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, cast, lit,
};
use datafusion::sql::sqlparser::ast::Expr;

use super::WriteContext;
use crate::catalog::TableDef;
use crate::error::{Error, ErrorKind, Result};

/// Does an expression contain a subquery?
pub fn has_subquery(e: &Expr) -> bool {
    visit_expressions(e, |x| match x {
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Whether delta-rs' delete and update builders cannot take `pred` over a
/// table of `def`: they evaluate no subqueries, and they skip files by the
/// column statistics the Delta kernel keeps, which array columns do not
/// have (`a IS NULL` was "Predicate references unknown column"). Such a
/// statement rewrites the table's rows itself.
pub fn builder_refuses(pred: &Expr, def: &crate::catalog::TableDef) -> bool {
    has_subquery(pred)
        || visit_expressions(pred, |x| {
            let name = match x {
                Expr::Identifier(i) => Some(i),
                Expr::CompoundIdentifier(parts) => parts.last(),
                _ => None,
            };
            match name.and_then(|n| def.column(&crate::frontend::names::normalize_ident(n))) {
                Some(c) if c.ty.name.ends_with("[]") => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        })
        .is_break()
}

/// Fails a statement when a NOT NULL column gets a NULL; otherwise passes
/// its input through. Runs inside the write plan, batch by batch.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AssertNotNull {
    signature: Signature,
}

impl ScalarUDFImpl for AssertNotNull {
    fn name(&self) -> &str {
        "sluice_assert_not_null"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(args[0].clone())
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let text = |i: usize| match &args.args[i] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))) => s.clone(),
            _ => String::new(),
        };
        let has_null = match &args.args[0] {
            ColumnarValue::Array(a) => a.null_count() > 0,
            ColumnarValue::Scalar(s) => s.is_null(),
        };
        if has_null {
            let (column, table) = (text(1), text(2));
            return Err(datafusion::error::DataFusionError::External(Box::new(
                Error::new(
                    ErrorKind::NotNullViolation,
                    format!(
                        "null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"
                    ),
                )
                .with_table(&table, Some(&column)),
            )));
        }
        Ok(args.args[0].clone())
    }
}

/// Enforces `varchar(n)` / `char(n)`: a longer value fails with 22001,
/// unless the excess characters are all spaces, which are cut off, as in
/// PostgreSQL. A `char(n)` value is stored without its trailing spaces
/// (`trim`): they carry no meaning there (PostgreSQL compares, concatenates
/// and measures it without them), and the value is padded to `n` where it
/// is shown (see [`crate::types::bpchar`]).
#[derive(Debug, PartialEq, Eq, Hash)]
struct FitLength {
    signature: Signature,
    trim: bool,
}

impl ScalarUDFImpl for FitLength {
    fn name(&self) -> &str {
        if self.trim {
            "sluice_fit_char"
        } else {
            "sluice_fit_length"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, StringArray};
        let (max, type_name) = match (&args.args[1], &args.args[2]) {
            (
                ColumnarValue::Scalar(ScalarValue::Int64(Some(n))),
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(t))),
            ) => (*n as usize, t.clone()),
            _ => return datafusion::common::exec_err!("sluice_fit_length needs literal arguments"),
        };
        let input = args.args[0].to_array(args.number_rows)?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        let strings = input.as_string::<i32>();
        // No value has more bytes than the limit has characters: all fit;
        // and none ends in a space: nothing to trim.
        let offsets = strings.value_offsets();
        let fit = offsets.windows(2).all(|w| (w[1] - w[0]) as usize <= max);
        if fit && !(self.trim && strings.iter().flatten().any(|v| v.ends_with(' '))) {
            return Ok(ColumnarValue::Array(input));
        }
        let trim = self.trim;
        let kept = |v: &str| -> String {
            if trim {
                v.trim_end_matches(' ').to_string()
            } else {
                v.to_string()
            }
        };
        let mut out = Vec::with_capacity(strings.len());
        for i in 0..strings.len() {
            if strings.is_null(i) {
                out.push(None);
                continue;
            }
            let v = strings.value(i);
            match v.char_indices().nth(max) {
                None => out.push(Some(kept(v))),
                Some((cut, _)) if v[cut..].chars().all(|c| c == ' ') => {
                    out.push(Some(kept(&v[..cut])))
                }
                Some(_) => {
                    return Err(datafusion::error::DataFusionError::External(Box::new(
                        Error::new(
                            ErrorKind::StringTooLong,
                            format!("value too long for type {type_name}"),
                        ),
                    )));
                }
            }
        }
        Ok(ColumnarValue::Array(std::sync::Arc::new(
            StringArray::from(out),
        )))
    }
}

fn assert_not_null(e: DfExpr, column: &str, table: &str) -> DfExpr {
    let udf = ScalarUDF::new_from_impl(AssertNotNull {
        signature: Signature::any(3, Volatility::Volatile),
    });
    udf.call(vec![e, lit(column), lit(table)])
}

/// The expression that stores `e` into column `c` of `def`: cast to the
/// column type, with the NOT NULL check when declared.
pub fn store_expr(e: DfExpr, def: &TableDef, column: &str, table: &str) -> DfExpr {
    let c = def.column(column).expect("column exists");
    let mut e = cast(e, c.ty.arrow_type());
    if let Some(t) = crate::types::typed::TextType::of(&c.ty.name) {
        e = t.udf().call(vec![e]);
    }
    if let ("character varying" | "character", Some(n)) = (c.ty.name.as_str(), c.ty.length) {
        let fit = ScalarUDF::new_from_impl(FitLength {
            signature: Signature::any(3, Volatility::Immutable),
            trim: c.ty.name == "character",
        });
        e = fit.call(vec![e, lit(n as i64), lit(c.ty.display())]);
    }
    if c.not_null {
        assert_not_null(e, column, table)
    } else {
        e
    }
}

/// Each column's value in the new row: the assigned expression, or the
/// column as it is (`old`).
pub fn new_row(
    def: &TableDef,
    sets: &[(String, DfExpr)],
    old: impl Fn(&str) -> DfExpr,
) -> Vec<DfExpr> {
    def.columns
        .iter()
        .map(|c| match sets.iter().find(|(n, _)| n == &c.name) {
            Some((_, v)) => v.clone(),
            None => old(&c.name),
        })
        .collect()
}

/// Reshape `df` into the table's columns: `targets[i]` names the table
/// column the i-th input column fills; the others get their DEFAULT or NULL.
pub fn conform(
    wc: &WriteContext,
    df: DataFrame,
    def: &TableDef,
    targets: &[String],
    table: &str,
) -> Result<DataFrame> {
    let input: Vec<DfExpr> = df
        .schema()
        .columns()
        .into_iter()
        .map(DfExpr::Column)
        .collect();
    let mut exprs = Vec::with_capacity(def.columns.len());
    for c in &def.columns {
        if c.generated.is_some() {
            // Computed below, from the row's stored values.
            exprs.push(cast(lit(ScalarValue::Null), c.ty.arrow_type()).alias(&c.name));
            continue;
        }
        let source = match targets.iter().position(|t| t == &c.name) {
            Some(i) => input[i].clone(),
            None => match &c.default {
                Some(sql) => crate::frontend::generated::plan_text(&wc.ctx, sql, df.schema())?,
                None => lit(ScalarValue::Null),
            },
        };
        exprs.push(store_expr(source, def, &c.name, table).alias(&c.name));
    }
    let mut df = df.select(exprs)?;
    if def.columns.iter().any(|c| c.generated.is_some()) {
        // Generated columns over the values as stored: a default is
        // evaluated once (`nextval`), and read as its column holds it.
        let mut exprs = Vec::with_capacity(def.columns.len());
        for c in &def.columns {
            let column = DfExpr::Column(datafusion::common::Column::new_unqualified(&c.name));
            exprs.push(match &c.generated {
                Some(sql) => {
                    let e = crate::frontend::generated::plan_text(&wc.ctx, sql, df.schema())?;
                    store_expr(e, def, &c.name, table).alias(&c.name)
                }
                None => column,
            });
        }
        df = df.select(exprs)?;
    }
    crate::quality::filter(&wc.ctx, df, def, table)
}
