//! PostgreSQL column types and their Arrow/Delta storage.
//!
//! A column keeps its declared PostgreSQL type (`varchar(20)`,
//! `numeric(12,2)`, `jsonb`) in the catalog, because Arrow cannot say
//! `varchar(20)`; the Delta table stores the Arrow type it maps to.

pub mod arrays;
pub mod averages;
pub mod boolean_tests;
pub mod bpchar;
pub mod checked;
pub mod chr;
pub mod date_comparisons;
pub mod datetime;
pub mod encoding;
pub mod float_input;
pub mod float_range;
pub mod float_zeros;
pub mod floats;
pub mod functions;
pub mod grouping_sets;
pub mod guarded_conditions;
pub mod ident;
pub mod integers;
pub mod interval;
pub mod interval_avg;
pub mod json;
pub mod json_fns;
pub mod jsonb;
pub mod jsonb_edit;
pub mod lazy_coalesce;
pub mod like;
pub mod logarithms;
pub mod numeric;
pub mod numeric_log;
pub mod ordered;
pub mod ordered_set;
pub mod output;
pub mod pg_format;
pub mod places;
pub mod quotient;
pub mod shift;
pub mod sliding_bools;
pub mod text;
pub mod typed;
pub mod uuid;
pub mod variance;
pub mod wide;
pub mod zero_products;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, CharacterLength, DataType as SqlType, ExactNumberInfo, TimezoneInfo,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// The name an analyzer rule keeps for an expression it rewrites (see
/// [`save_name`] and [`keep_name`]).
pub(crate) enum KeptName {
    One(datafusion::logical_expr::expr_rewriter::SavedName),
    /// A `GROUPING SETS` / `ROLLUP` / `CUBE` list: the names of its
    /// expressions, in order. An alias around the list would make it a
    /// single grouping key, and the aggregate's schema would no longer fit
    /// (`Aggregate schema has wrong number of fields`).
    Set(Vec<datafusion::logical_expr::expr_rewriter::SavedName>),
}

fn grouping_exprs_mut(
    g: &mut datafusion::logical_expr::expr::GroupingSet,
) -> Vec<&mut datafusion::logical_expr::Expr> {
    use datafusion::logical_expr::expr::GroupingSet as G;
    match g {
        G::Rollup(v) | G::Cube(v) => v.iter_mut().collect(),
        G::GroupingSets(sets) => sets.iter_mut().flatten().collect(),
    }
}

/// Remember `e`'s output name (its members' names for a grouping list).
pub(crate) fn save_name(
    names: &datafusion::logical_expr::expr_rewriter::NamePreserver,
    e: &datafusion::logical_expr::Expr,
) -> KeptName {
    use datafusion::logical_expr::expr::GroupingSet as G;
    match e {
        datafusion::logical_expr::Expr::GroupingSet(g) => KeptName::Set(match g {
            G::Rollup(v) | G::Cube(v) => v.iter().map(|x| names.save(x)).collect(),
            G::GroupingSets(sets) => sets.iter().flatten().map(|x| names.save(x)).collect(),
        }),
        _ => KeptName::One(names.save(e)),
    }
}

/// `e`, rewritten, under the name [`save_name`] remembered.
pub(crate) fn keep_name(
    saved: KeptName,
    e: datafusion::logical_expr::Expr,
) -> datafusion::logical_expr::Expr {
    use datafusion::logical_expr::Expr;
    match (saved, e) {
        (KeptName::Set(names), Expr::GroupingSet(mut g)) => {
            for (x, name) in grouping_exprs_mut(&mut g).into_iter().zip(names) {
                let taken = std::mem::replace(
                    x,
                    Expr::Literal(datafusion::common::ScalarValue::Null, None),
                );
                *x = name.restore(taken);
            }
            Expr::GroupingSet(g)
        }
        (KeptName::One(name), e) => name.restore(e),
        (KeptName::Set(_), e) => e,
    }
}

/// Whether `op` compares its sides: `= <> < <= > >=` and `IS [NOT]
/// DISTINCT FROM`.
pub(crate) fn is_comparison(op: &datafusion::logical_expr::Operator) -> bool {
    use datafusion::logical_expr::Operator as O;
    matches!(
        op,
        O::Eq
            | O::NotEq
            | O::Lt
            | O::LtEq
            | O::Gt
            | O::GtEq
            | O::IsDistinctFrom
            | O::IsNotDistinctFrom
    )
}

/// A rewrite of one expression given the schema of its node's inputs.
pub(crate) type ExprRewrite = fn(
    datafusion::logical_expr::Expr,
    &datafusion::common::DFSchema,
) -> datafusion::error::Result<
    datafusion::common::tree_node::Transformed<datafusion::logical_expr::Expr>,
>;

/// A function's result `out` as the value it returns: one value when its
/// arguments were (`scalar`), else the array.
pub(crate) fn columnar(
    out: datafusion::arrow::array::ArrayRef,
    scalar: bool,
) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
    use datafusion::logical_expr::ColumnarValue;
    Ok(if scalar {
        ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}

/// Every expression of every node of `plan`, subqueries' too, rewritten
/// bottom-up by `f`, which is given the schema of the node's inputs; the
/// nodes keep their output names. For analyzer rules that replace an
/// operator or a function with another.
pub(crate) fn rewrite_expressions(
    plan: datafusion::logical_expr::LogicalPlan,
    f: ExprRewrite,
) -> datafusion::error::Result<datafusion::logical_expr::LogicalPlan> {
    rewrite_plan_expressions(plan, f).map(|t| t.data)
}

/// [`rewrite_expressions`], saying whether anything changed (for
/// optimizer rules).
pub(crate) fn rewrite_plan_expressions(
    plan: datafusion::logical_expr::LogicalPlan,
    f: ExprRewrite,
) -> datafusion::error::Result<
    datafusion::common::tree_node::Transformed<datafusion::logical_expr::LogicalPlan>,
> {
    use datafusion::common::tree_node::Transformed;
    // Once an expression changed, the columns of its node and of every
    // node above are typed again: a quotient in a subquery, now of scale
    // 20, is multiplied above as such.
    let mut changed = false;
    crate::tree::transform_up_with_subqueries(plan, |node| {
        let inputs = node.inputs();
        if inputs.is_empty() {
            return Ok(Transformed::no(node));
        }
        let mut schema = datafusion::common::DFSchema::empty();
        for input in inputs {
            schema.merge(input.schema());
        }
        let names = datafusion::logical_expr::expr_rewriter::NamePreserver::new(&node);
        let rewritten = crate::tree::map_expressions(node, |e| {
            let saved = crate::types::save_name(&names, &e);
            let rewritten = crate::tree::transform_up(e, |x| f(x, &schema))?;
            Ok(rewritten.update_data(|e| keep_name(saved, e)))
        })?
        .map_data(grouping_arguments_as_grouped)?;
        changed |= rewritten.transformed;
        if changed {
            rewritten.map_data(|p| p.recompute_schema())
        } else {
            Ok(rewritten)
        }
    })
}

/// An aggregation whose grouped expressions a rule rewrote (and aliased
/// to their old names) with each argument of `GROUPING(...)` that is one
/// of them rewritten the same way: DataFusion finds the argument among
/// the grouped expressions by equality, alias included (`GROUPING(b IS
/// UNKNOWN) ... GROUP BY b IS UNKNOWN` failed with XX000).
fn grouping_arguments_as_grouped(
    plan: datafusion::logical_expr::LogicalPlan,
) -> datafusion::error::Result<datafusion::logical_expr::LogicalPlan> {
    use datafusion::logical_expr::{Expr, LogicalPlan};
    let LogicalPlan::Aggregate(agg) = plan else {
        return Ok(plan);
    };
    let aliased: Vec<&Expr> = agg
        .group_expr
        .iter()
        .flat_map(|g| match g {
            Expr::GroupingSet(set) => set.distinct_expr(),
            other => vec![other],
        })
        .filter(|g| matches!(g, Expr::Alias(_)))
        .collect();
    if aliased.is_empty() {
        return Ok(LogicalPlan::Aggregate(agg));
    }
    let as_grouped = |arg: Expr| -> Expr {
        aliased
            .iter()
            .find(|g| matches!(g, Expr::Alias(a) if *a.expr == arg))
            .map_or(arg, |g| (*g).clone())
    };
    let aggr_expr = agg
        .aggr_expr
        .iter()
        .cloned()
        .map(|e| {
            crate::tree::transform_up(e, |x| match x {
                Expr::AggregateFunction(mut call) if call.func.name() == "grouping" => {
                    call.params.args = call.params.args.into_iter().map(as_grouped).collect();
                    Ok(datafusion::common::tree_node::Transformed::yes(
                        Expr::AggregateFunction(call),
                    ))
                }
                other => Ok(datafusion::common::tree_node::Transformed::no(other)),
            })
            .map(|t| t.data)
        })
        .collect::<datafusion::error::Result<Vec<Expr>>>()?;
    let mut agg = agg;
    agg.aggr_expr = aggr_expr;
    Ok(LogicalPlan::Aggregate(agg))
}

/// `agg` (an aggregation a rule rebuilt) under a projection that shows
/// the columns `old` (the aggregation's schema before) had, with their
/// names and qualifiers: column `i` is `shown(i, column i of agg, old
/// field i)`.
pub(crate) fn shown_as(
    old: &datafusion::common::DFSchemaRef,
    agg: datafusion::logical_expr::Aggregate,
    shown: impl Fn(
        usize,
        datafusion::logical_expr::Expr,
        &datafusion::arrow::datatypes::Field,
    ) -> datafusion::error::Result<datafusion::logical_expr::Expr>,
) -> datafusion::error::Result<datafusion::logical_expr::LogicalPlan> {
    use datafusion::logical_expr::{Expr, LogicalPlan, Projection};
    let new = agg.schema.clone();
    let mut exprs = Vec::with_capacity(old.fields().len());
    for (i, (q, f)) in old.iter().enumerate() {
        let (nq, nf) = new.qualified_field(i);
        let column = Expr::Column(datafusion::common::Column::new(nq.cloned(), nf.name()));
        exprs.push(shown(i, column, f)?.alias_qualified(q.cloned(), f.name()));
    }
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        std::sync::Arc::new(LogicalPlan::Aggregate(agg)),
    )?))
}

/// A column type as declared in SQL, normalised to PostgreSQL's own spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgType {
    /// `integer`, `character varying`, `numeric`, `integer[]`, ...
    pub name: String,
    /// varchar/char length, numeric precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<i32>,
}

/// Field metadata: `oid,typmod` of the column's PostgreSQL type, read by
/// the wire layer when the Arrow type does not say it.
pub const PG_TYPE_KEY: &str = "sluice.pg_type";

/// Precision and scale used for a `numeric` declared without them. Delta
/// decimals top out at 38 digits.
pub const DEFAULT_NUMERIC: (u8, i8) = (38, 10);

impl PgType {
    pub fn simple(name: &str) -> Self {
        PgType {
            name: name.to_string(),
            length: None,
            scale: None,
        }
    }

    pub fn from_sql(ty: &SqlType) -> Result<PgType> {
        use SqlType as S;
        let char_len = |l: &Option<CharacterLength>| match l {
            Some(CharacterLength::IntegerLength { length, .. }) => Some(*length as u32),
            _ => None,
        };
        Ok(match ty {
            S::SmallInt(_) | S::Int2(_) => PgType::simple("smallint"),
            S::Int(_) | S::Integer(_) | S::Int4(_) => PgType::simple("integer"),
            S::BigInt(_) | S::Int8(_) => PgType::simple("bigint"),
            S::Real | S::Float4 => PgType::simple("real"),
            S::DoublePrecision | S::Float8 | S::Double(_) => PgType::simple("double precision"),
            S::Float(info) => match info {
                ExactNumberInfo::Precision(p) if *p <= 24 => PgType::simple("real"),
                _ => PgType::simple("double precision"),
            },
            S::Numeric(info) | S::Decimal(info) => {
                let (length, scale) = match info {
                    ExactNumberInfo::None => (None, None),
                    ExactNumberInfo::Precision(p) => (Some(*p as u32), Some(0)),
                    ExactNumberInfo::PrecisionAndScale(p, s) => (Some(*p as u32), Some(*s as i32)),
                };
                if let Some(p) = length
                    && !(1..=38).contains(&p)
                {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        format!("NUMERIC precision {p} must be between 1 and 38"),
                    ));
                }
                if let (Some(p), Some(s)) = (length, scale)
                    && (s < 0 || s as u32 > p)
                {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        format!("NUMERIC scale {s} must be between 0 and precision {p}"),
                    ));
                }
                PgType {
                    name: "numeric".into(),
                    length,
                    scale,
                }
            }
            S::Text | S::String(_) => PgType::simple("text"),
            S::Varchar(l) | S::CharacterVarying(l) => PgType {
                name: "character varying".into(),
                length: char_len(l),
                scale: None,
            },
            S::Char(l) | S::Character(l) => PgType {
                name: "character".into(),
                length: Some(char_len(l).unwrap_or(1)),
                scale: None,
            },
            S::Bool | S::Boolean => PgType::simple("boolean"),
            S::Date => PgType::simple("date"),
            S::Timestamp(_, tz) => match tz {
                TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => {
                    PgType::simple("timestamp with time zone")
                }
                _ => PgType::simple("timestamp without time zone"),
            },
            S::Bytea => PgType::simple("bytea"),
            S::JSON => PgType::simple("json"),
            S::JSONB => PgType::simple("jsonb"),
            S::Uuid => PgType::simple("uuid"),
            S::Array(elem) => {
                let inner = match elem {
                    ArrayElemTypeDef::SquareBracket(t, _)
                    | ArrayElemTypeDef::AngleBracket(t)
                    | ArrayElemTypeDef::Parenthesis(t) => PgType::from_sql(t)?,
                    ArrayElemTypeDef::None => {
                        return Err(Error::syntax("array type needs an element type"));
                    }
                };
                if inner.name.ends_with("[]") {
                    return Err(Error::not_supported("multi-dimensional array columns"));
                }
                PgType {
                    name: format!("{}[]", inner.name),
                    length: inner.length,
                    scale: inner.scale,
                }
            }
            S::Custom(name, args) if args.is_empty() => {
                let n = name.to_string().to_lowercase();
                match n.as_str() {
                    "int2" => PgType::simple("smallint"),
                    "int4" | "int" => PgType::simple("integer"),
                    "int8" => PgType::simple("bigint"),
                    "float4" => PgType::simple("real"),
                    "float8" => PgType::simple("double precision"),
                    "bool" => PgType::simple("boolean"),
                    "timestamptz" => PgType::simple("timestamp with time zone"),
                    "jsonb" => PgType::simple("jsonb"),
                    "json" => PgType::simple("json"),
                    "uuid" => PgType::simple("uuid"),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::UndefinedObject,
                            format!("type \"{n}\" does not exist"),
                        ));
                    }
                }
            }
            other => return Err(Error::not_supported(format!("column type {other}"))),
        })
    }

    /// The Arrow type this column is stored as.
    pub fn arrow_type(&self) -> DataType {
        if let Some(elem) = self.name.strip_suffix("[]") {
            let inner = PgType {
                name: elem.to_string(),
                length: self.length,
                scale: self.scale,
            };
            return DataType::List(Arc::new(Field::new("element", inner.arrow_type(), true)));
        }
        match self.name.as_str() {
            "smallint" => DataType::Int16,
            "integer" => DataType::Int32,
            "bigint" => DataType::Int64,
            "real" => DataType::Float32,
            "double precision" => DataType::Float64,
            "numeric" => {
                let (p, s) = match (self.length, self.scale) {
                    (Some(p), Some(s)) => (p as u8, s as i8),
                    (Some(p), None) => (p as u8, 0),
                    _ => DEFAULT_NUMERIC,
                };
                DataType::Decimal128(p, s)
            }
            "boolean" => DataType::Boolean,
            "date" => DataType::Date32,
            "timestamp without time zone" => DataType::Timestamp(TimeUnit::Microsecond, None),
            "timestamp with time zone" => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            "bytea" => DataType::Binary,
            _ => DataType::Utf8,
        }
    }

    /// The PostgreSQL spelling `format_type` would print: `character varying(20)`.
    pub fn display(&self) -> String {
        let (base, array) = match self.name.strip_suffix("[]") {
            Some(b) => (b, "[]"),
            None => (self.name.as_str(), ""),
        };
        let args = match (base, self.length, self.scale) {
            ("numeric", Some(p), Some(s)) => format!("({p},{s})"),
            ("character varying" | "character", Some(l), _) => format!("({l})"),
            _ => String::new(),
        };
        format!("{base}{args}{array}")
    }

    /// The type a value assigned to a column of this type is cast to in
    /// the SQL the write path builds: the character types as text (their
    /// length is checked where the value is stored, 22001, as an assignment
    /// in PostgreSQL is; DataFusion has no `character varying(n)`).
    pub fn assignment_cast(&self) -> String {
        match self.name.as_str() {
            "character varying" | "character" => "text".into(),
            _ => self.display(),
        }
    }

    /// The type OID PostgreSQL uses for this type.
    /// PostgreSQL's type modifier (`atttypmod`): the declared length of
    /// `varchar(n)` / `char(n)` plus 4, precision and scale of
    /// `numeric(p,s)` packed as `(p << 16 | s) + 4`; -1 when there is none.
    pub fn typmod(&self) -> i32 {
        let base = self.name.trim_end_matches("[]");
        match (base, self.length) {
            ("character varying" | "character", Some(n)) => n as i32 + 4,
            ("numeric", Some(p)) => ((p as i32) << 16 | self.scale.unwrap_or(0)) + 4,
            _ => -1,
        }
    }

    pub fn oid(&self) -> u32 {
        self.known_oid().unwrap_or(25)
    }

    /// The OID of a type PostgreSQL and Sluice both have; `None` for one
    /// Sluice stores as text.
    pub fn known_oid(&self) -> Option<u32> {
        Some(match self.name.as_str() {
            "smallint" => 21,
            "integer" => 23,
            "bigint" => 20,
            "real" => 700,
            "double precision" => 701,
            "numeric" => 1700,
            "text" => 25,
            "character varying" => 1043,
            "character" => 1042,
            "boolean" => 16,
            "date" => 1082,
            "timestamp without time zone" => 1114,
            "timestamp with time zone" => 1184,
            "bytea" => 17,
            "json" => 114,
            "jsonb" => 3802,
            "uuid" => 2950,
            "uuid[]" => 2951,
            "json[]" => 199,
            "jsonb[]" => 3807,
            "smallint[]" => 1005,
            "integer[]" => 1007,
            "bigint[]" => 1016,
            "text[]" => 1009,
            "real[]" => 1021,
            "double precision[]" => 1022,
            "boolean[]" => 1000,
            "numeric[]" => 1231,
            "character varying[]" => 1015,
            "date[]" => 1182,
            "timestamp without time zone[]" => 1115,
            "timestamp with time zone[]" => 1185,
            _ => return None,
        })
    }

    /// Best PostgreSQL type for a column we only know the Arrow type of
    /// (CREATE TABLE AS, tables written by other engines).
    pub fn from_arrow(dt: &DataType) -> PgType {
        match dt {
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::simple("smallint"),
            DataType::Int32 | DataType::UInt16 => PgType::simple("integer"),
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => PgType::simple("bigint"),
            DataType::Float16 | DataType::Float32 => PgType::simple("real"),
            DataType::Float64 => PgType::simple("double precision"),
            DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => PgType {
                name: "numeric".into(),
                length: Some(*p as u32),
                scale: Some(*s as i32),
            },
            DataType::Boolean => PgType::simple("boolean"),
            DataType::Date32 | DataType::Date64 => PgType::simple("date"),
            DataType::Timestamp(_, None) => PgType::simple("timestamp without time zone"),
            DataType::Timestamp(_, Some(_)) => PgType::simple("timestamp with time zone"),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                PgType::simple("bytea")
            }
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                let inner = PgType::from_arrow(f.data_type());
                PgType {
                    name: format!("{}[]", inner.name),
                    length: inner.length,
                    scale: inner.scale,
                }
            }
            _ => PgType::simple("text"),
        }
    }
}

pub use crate::error::arrow_name_to_pg;

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parse(ty: &str) -> PgType {
        let sql = format!("CREATE TABLE t (c {ty})");
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
            .unwrap()
            .remove(0);
        match stmt {
            datafusion::sql::sqlparser::ast::Statement::CreateTable(ct) => {
                PgType::from_sql(&ct.columns[0].data_type).unwrap()
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn declared_types_keep_their_postgres_spelling() {
        assert_eq!(parse("varchar(20)").display(), "character varying(20)");
        assert_eq!(parse("numeric(12,2)").display(), "numeric(12,2)");
        assert_eq!(parse("char(3)").display(), "character(3)");
        assert_eq!(parse("int4").display(), "integer");
        assert_eq!(parse("timestamptz").display(), "timestamp with time zone");
        assert_eq!(parse("integer[]").display(), "integer[]");
        assert_eq!(parse("double precision").display(), "double precision");
    }

    #[test]
    fn declared_types_map_to_arrow() {
        assert_eq!(
            parse("numeric(12,2)").arrow_type(),
            DataType::Decimal128(12, 2)
        );
        assert_eq!(parse("smallint").arrow_type(), DataType::Int16);
        assert_eq!(
            parse("timestamptz").arrow_type(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert!(matches!(parse("text[]").arrow_type(), DataType::List(_)));
        assert_eq!(parse("jsonb").arrow_type(), DataType::Utf8);
    }

    #[test]
    fn arrow_types_round_trip_through_pg() {
        for ty in [
            "smallint",
            "bigint",
            "numeric(10,3)",
            "boolean",
            "date",
            "bytea",
            "real",
        ] {
            let pg = parse(ty);
            assert_eq!(PgType::from_arrow(&pg.arrow_type()).display(), pg.display());
        }
    }
}
