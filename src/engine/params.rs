//! Bind extended-protocol parameters by replacing `$n` placeholders with
//! typed literals, so every statement kind (not only queries DataFusion can
//! plan with placeholders) accepts parameters.

use std::ops::ControlFlow;

use crate::visit::{visit_expressions, visit_expressions_mut};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::sql::sqlparser::ast::{
    CastKind, DataType as SqlType, ExactNumberInfo, Expr, Statement, TimezoneInfo, Value,
};

use crate::error::{Error, ErrorKind, Result};
use crate::frontend::Stmt;

/// Number of distinct `$n` placeholders (the highest n).
pub fn count_placeholders(stmt: &Statement) -> usize {
    let mut max = 0;
    let _ = visit_expressions(stmt, |e| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(p) = &v.value
            && let Ok(n) = p.trim_start_matches('$').parse::<usize>()
        {
            max = max.max(n);
        }
        ControlFlow::<()>::Continue(())
    });
    max
}

/// Bind the parameters of a MERGE (which is ours, not sqlparser's).
pub fn bind_merge(m: &mut crate::frontend::MergeStmt, params: &ParamValues) -> Result<()> {
    use crate::frontend::merge::MergeAction;
    let values = match params {
        ParamValues::List(v) if !v.is_empty() => v,
        _ => return Ok(()),
    };
    bind_node(&mut m.source, values)?;
    bind_node(&mut m.on, values)?;
    for c in m.clauses.iter_mut() {
        if let Some(cond) = c.condition.as_mut() {
            bind_node(cond, values)?;
        }
        match &mut c.action {
            MergeAction::Update(assignments) => {
                for a in assignments.iter_mut() {
                    bind_node(&mut a.value, values)?;
                }
            }
            MergeAction::Insert {
                values: Some(row), ..
            } => {
                for v in row.iter_mut() {
                    bind_node(v, values)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn bind(stmt: Stmt, params: &ParamValues) -> Result<Stmt> {
    let values = match params {
        ParamValues::List(v) if !v.is_empty() => v,
        _ => return Ok(stmt),
    };
    let Stmt::Sql(mut s) = stmt else {
        return Ok(stmt);
    };
    bind_node(&mut *s, values)?;
    Ok(Stmt::Sql(s))
}

/// Replace the `$n` placeholders in `node` by literals of `values`.
fn bind_node<T: datafusion::sql::sqlparser::ast::VisitMut>(
    node: &mut T,
    values: &[datafusion::common::metadata::ScalarAndMetadata],
) -> Result<()> {
    let mut err = None;
    let _ = visit_expressions_mut(node, |e| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(p) = &v.value
        {
            match p.trim_start_matches('$').parse::<usize>() {
                Ok(n) if n >= 1 && n <= values.len() => match literal(&values[n - 1].value) {
                    Ok(lit) => *e = lit,
                    Err(x) => err = Some(x),
                },
                _ => {
                    err = Some(Error::new(
                        ErrorKind::InvalidParameter,
                        format!("there is no parameter {p}"),
                    ))
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn sql_type(dt: &DataType) -> Option<SqlType> {
    Some(match dt {
        DataType::Boolean => SqlType::Boolean,
        DataType::Int8 | DataType::Int16 => SqlType::SmallInt(None),
        DataType::Int32 => SqlType::Integer(None),
        DataType::Int64 => SqlType::BigInt(None),
        DataType::Float32 => SqlType::Real,
        DataType::Float64 => SqlType::DoublePrecision,
        DataType::Decimal128(p, s) => {
            SqlType::Numeric(ExactNumberInfo::PrecisionAndScale(*p as u64, *s as i64))
        }
        DataType::Date32 => SqlType::Date,
        DataType::Timestamp(_, None) => SqlType::Timestamp(Some(6), TimezoneInfo::None),
        DataType::Timestamp(_, Some(_)) => SqlType::Timestamp(Some(6), TimezoneInfo::WithTimeZone),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::Text,
        DataType::Binary | DataType::LargeBinary => SqlType::Bytea,
        _ => return None,
    })
}

fn cast(expr: Expr, dt: &DataType) -> Expr {
    match sql_type(dt) {
        Some(t) => Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(expr),
            data_type: t,
            array: false,
            format: None,
        },
        None => expr,
    }
}

fn string(s: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(s.to_string()))
}

/// A SQL literal with the parameter's value and type.
fn literal(v: &ScalarValue) -> Result<Expr> {
    if v.is_null() {
        return Ok(cast(Expr::value(Value::Null), &v.data_type()));
    }
    Ok(match v {
        ScalarValue::Boolean(Some(b)) => Expr::value(Value::Boolean(*b)),
        ScalarValue::Int8(_)
        | ScalarValue::Int16(_)
        | ScalarValue::Int32(_)
        | ScalarValue::Int64(_)
        | ScalarValue::UInt8(_)
        | ScalarValue::UInt16(_)
        | ScalarValue::UInt32(_)
        | ScalarValue::UInt64(_) => cast(
            Expr::value(Value::Number(v.to_string(), false)),
            &v.data_type(),
        ),
        ScalarValue::Float32(Some(f)) if f.is_finite() => cast(
            Expr::value(Value::Number(v.to_string(), false)),
            &v.data_type(),
        ),
        ScalarValue::Float64(Some(f)) if f.is_finite() => cast(
            Expr::value(Value::Number(v.to_string(), false)),
            &v.data_type(),
        ),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => string(s),
        ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Expr::value(Value::HexStringLiteral(hex))
        }
        ScalarValue::List(_) | ScalarValue::LargeList(_) => {
            return Err(Error::not_supported("array parameters"));
        }
        // Dates and times as text the cast reads back (`to_string` of a
        // timestamp scalar is its raw count of microseconds).
        other => {
            let array = other.to_array()?;
            let text = datafusion::arrow::util::display::ArrayFormatter::try_new(
                array.as_ref(),
                &datafusion::arrow::util::display::FormatOptions::default(),
            )?
            .value(0)
            .to_string();
            cast(string(&text), &other.data_type())
        }
    })
}
