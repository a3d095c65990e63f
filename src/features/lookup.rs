//! Online lookups: `SELECT cols FROM online.<view or service> WHERE <every
//! entity key> = value`, recognized from the statement's syntax and
//! answered from the online store's indexes without planning a query.
//!
//! ```text
//!  Statement ──recognize──▶ Lookup { target, columns, keys = values }
//!  Lookup + Target (indexes) + parameters ──answer──▶ RecordBatch
//! ```
//!
//! A value is a literal, `$n`, a list (`k IN (1, 2)`) or an array parameter
//! (`k = ANY($1)`): every combination of the keys' values is looked up, as
//! the conjunction of the conditions asks. A feature view answers one row
//! per entity found (within its TTL); a feature service one row per
//! combination asked for, with NULL features where a view has no live row.
//! Any other shape is not a lookup: the caller plans it as a query.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, Query, SelectItem, SetExpr, Statement, TableFactor,
    Value,
};

use super::online::ViewIndex;
use crate::error::{Error, ErrorKind, Result};
use crate::frontend::names::{name_parts, normalize_ident};

/// The schema whose relations are online lookups.
pub const SCHEMA: &str = "online";

/// A value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// An integer or string literal.
    Literal(ScalarValue),
    /// `$n` (1-based).
    Param(usize),
}

/// The values one key column may take.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// `k = v`
    One(Operand),
    /// `k IN (v, ...)`
    List(Vec<Operand>),
    /// `k = ANY($n)`: every element of an array.
    Any(Operand),
}

/// A recognized lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// The view or service name after `online.` (possibly schema-qualified).
    pub target: Vec<String>,
    /// `(column, output name)`; `None` for `*`.
    pub columns: Option<Vec<(String, String)>>,
    /// Each constrained column, once.
    pub keys: Vec<(String, Values)>,
}

/// The indexes a lookup reads, with the columns it answers with and the
/// entity keys it is looked up by.
pub struct Target {
    source: Source,
    schema: SchemaRef,
    keys: Vec<String>,
}

enum Source {
    View(Arc<ViewIndex>),
    /// A service: each of its views' index with the features it serves.
    Service(Vec<(Arc<ViewIndex>, Vec<String>)>),
}

/// A lookup asks for more key combinations than this: refused (a batch
/// lookup is for a page of entities, not a table's worth).
pub const MAX_COMBINATIONS: usize = 100_000;

impl Target {
    /// A feature view: its own columns, by its entity keys.
    pub fn view(ix: Arc<ViewIndex>) -> Target {
        Target {
            schema: ix.schema(),
            keys: ix.feature.entity.clone(),
            source: Source::View(ix),
        }
    }

    /// A service: its views' entity keys (in order of first appearance),
    /// then `view__feature` per feature it serves.
    pub fn service(views: Vec<(Arc<ViewIndex>, Vec<String>)>) -> Target {
        let keys = service_keys(&views);
        let mut fields: Vec<Field> = keys
            .iter()
            .map(|(k, ty)| Field::new(k, ty.clone(), true))
            .collect();
        for (ix, features) in &views {
            let schema = ix.schema();
            for f in features {
                if let Ok(field) = schema.field_with_name(f) {
                    fields.push(Field::new(
                        format!("{}__{f}", ix.view.name),
                        field.data_type().clone(),
                        true,
                    ));
                }
            }
        }
        Target {
            schema: Arc::new(Schema::new(fields)),
            keys: keys.into_iter().map(|(k, _)| k).collect(),
            source: Source::Service(views),
        }
    }
}

fn operand(e: &Expr) -> Option<Operand> {
    match e {
        Expr::Nested(e) => operand(e),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse::<i64>().ok().map(|i| Operand::Literal(i.into())),
            Value::SingleQuotedString(s) => Some(Operand::Literal(ScalarValue::from(s.as_str()))),
            Value::Placeholder(p) => p
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n >= 1)
                .map(Operand::Param),
            _ => None,
        },
        Expr::UnaryOp {
            op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus,
            expr,
        } => match operand(expr)? {
            Operand::Literal(ScalarValue::Int64(Some(i))) => Some(Operand::Literal((-i).into())),
            _ => None,
        },
        _ => None,
    }
}

/// The column `e` names, if it is a column of the lookup's relation
/// (`qualifiers` are the names the relation goes by).
fn column(e: &Expr, qualifiers: &[Vec<String>]) -> Option<String> {
    match e {
        Expr::Nested(e) => column(e, qualifiers),
        Expr::Identifier(id) => Some(normalize_ident(id)),
        Expr::CompoundIdentifier(ids) => {
            let (col, q) = ids.split_last()?;
            let q: Vec<String> = q.iter().map(normalize_ident).collect();
            qualifiers.contains(&q).then(|| normalize_ident(col))
        }
        _ => None,
    }
}

fn condition(e: &Expr, q: &[Vec<String>]) -> Option<(String, Values)> {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => match (column(left, q), column(right, q)) {
            (Some(c), None) => Some((c, Values::One(operand(right)?))),
            (None, Some(c)) => Some((c, Values::One(operand(left)?))),
            _ => None,
        },
        Expr::AnyOp {
            left,
            compare_op: BinaryOperator::Eq,
            right,
            ..
        } => match operand(right)? {
            p @ Operand::Param(_) => Some((column(left, q)?, Values::Any(p))),
            Operand::Literal(_) => None,
        },
        Expr::InList {
            expr,
            list,
            negated: false,
        } => Some((
            column(expr, q)?,
            Values::List(list.iter().map(operand).collect::<Option<Vec<_>>>()?),
        )),
        _ => None,
    }
}

/// The lookup `stmt` is, if it has the shape of one.
pub fn recognize(stmt: &Statement) -> Option<Lookup> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    let Query {
        with: None,
        body,
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks,
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators,
    } = q.as_ref()
    else {
        return None;
    };
    if !locks.is_empty() || !pipe_operators.is_empty() {
        return None;
    }
    let SetExpr::Select(s) = body.as_ref() else {
        return None;
    };
    let plain = s.distinct.is_none()
        && s.top.is_none()
        && s.into.is_none()
        && s.exclude.is_none()
        && s.select_modifiers.is_none()
        && s.lateral_views.is_empty()
        && s.prewhere.is_none()
        && s.connect_by.is_empty()
        && matches!(&s.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
        && s.cluster_by.is_empty()
        && s.distribute_by.is_empty()
        && s.sort_by.is_empty()
        && s.having.is_none()
        && s.named_window.is_empty()
        && s.qualify.is_none()
        && s.from.len() == 1
        && s.from[0].joins.is_empty();
    if !plain {
        return None;
    }
    let TableFactor::Table {
        name,
        alias,
        args: None,
        with_hints,
        version: None,
        with_ordinality: false,
        partitions,
        json_path: None,
        sample: None,
        index_hints,
    } = &s.from[0].relation
    else {
        return None;
    };
    if !with_hints.is_empty() || !partitions.is_empty() || !index_hints.is_empty() {
        return None;
    }
    let parts = name_parts(name);
    let target = match parts.as_slice() {
        [schema, rest @ ..] if schema == SCHEMA && (1..=2).contains(&rest.len()) => rest.to_vec(),
        _ => return None,
    };
    let mut qualifiers = vec![parts.clone(), vec![parts.last()?.clone()]];
    if let Some(a) = alias {
        if !a.columns.is_empty() {
            return None;
        }
        // An alias hides the table's own name, as in PostgreSQL.
        qualifiers = vec![vec![normalize_ident(&a.name)]];
    }
    let columns = projection(&s.projection, &qualifiers)?;
    let found = crate::visit::conjuncts(s.selection.as_ref()?);
    let mut keys: Vec<(String, Values)> = Vec::new();
    for e in found {
        let (c, v) = condition(e, &qualifiers)?;
        if keys.iter().any(|(k, _)| k == &c) {
            return None;
        }
        keys.push((c, v));
    }
    Some(Lookup {
        target,
        columns,
        keys,
    })
}

fn projection(items: &[SelectItem], q: &[Vec<String>]) -> Option<Option<Vec<(String, String)>>> {
    if let [SelectItem::Wildcard(opts)] = items {
        let plain = opts.opt_ilike.is_none()
            && opts.opt_exclude.is_none()
            && opts.opt_except.is_none()
            && opts.opt_replace.is_none()
            && opts.opt_rename.is_none();
        return plain.then_some(None);
    }
    let mut out = Vec::new();
    for item in items {
        match item {
            SelectItem::UnnamedExpr(e) => {
                let c = column(e, q)?;
                out.push((c.clone(), c));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                out.push((column(expr, q)?, alias_name(alias)));
            }
            _ => return None,
        }
    }
    Some(Some(out))
}

fn alias_name(a: &Ident) -> String {
    normalize_ident(a)
}

fn service_keys(views: &[(Arc<ViewIndex>, Vec<String>)]) -> Vec<(String, DataType)> {
    let mut keys: Vec<(String, DataType)> = Vec::new();
    for (ix, _) in views {
        for (k, t) in ix.feature.entity.iter().zip(ix.key_types().iter().cloned()) {
            if !keys.iter().any(|(n, _)| n == k) {
                keys.push((k.clone(), t));
            }
        }
    }
    keys
}

impl Lookup {
    /// Does this lookup constrain exactly the target's entity keys, and
    /// name only its columns? Otherwise it is planned as a query.
    pub fn fits(&self, t: &Target) -> bool {
        let schema = &t.schema;
        self.keys.len() == t.keys.len()
            && self.keys.iter().all(|(k, _)| t.keys.contains(k))
            && self
                .columns
                .as_ref()
                .is_none_or(|cols| cols.iter().all(|(c, _)| schema.field_with_name(c).is_ok()))
    }

    /// The result's columns (for Describe).
    pub fn schema(&self, t: &Target) -> Result<SchemaRef> {
        let full = &t.schema;
        Ok(match &self.columns {
            None => full.clone(),
            Some(cols) => Arc::new(Schema::new(
                cols.iter()
                    .map(|(c, out)| {
                        let f = full.field_with_name(c)?;
                        Ok(Field::new(out, f.data_type().clone(), true))
                    })
                    .collect::<Result<Vec<_>>>()?,
            )),
        })
    }

    /// The type of each parameter `$1..`, where a key decides it.
    pub fn param_types(&self, t: &Target) -> Vec<Option<DataType>> {
        let full = &t.schema;
        let mut types: Vec<Option<DataType>> = Vec::new();
        let mut set = |n: usize, ty: DataType| {
            if types.len() < n {
                types.resize(n, None);
            }
            types[n - 1] = Some(ty);
        };
        for (k, v) in &self.keys {
            let Ok(f) = full.field_with_name(k) else {
                continue;
            };
            let ty = f.data_type().clone();
            match v {
                Values::One(Operand::Param(n)) => set(*n, ty),
                Values::Any(Operand::Param(n)) => {
                    set(*n, DataType::new_list(ty, true));
                }
                Values::List(items) => {
                    for i in items {
                        if let Operand::Param(n) = i {
                            set(*n, ty.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        types
    }

    /// Answer the lookup from the indexes at time `now` (microseconds).
    pub fn answer(&self, t: &Target, params: &ParamValues, now: i64) -> Result<RecordBatch> {
        let full = &t.schema;
        // The values each key takes, in the order the target lists its keys.
        let key_names = &t.keys;
        let mut value_sets: Vec<Vec<ScalarValue>> = Vec::new();
        for k in key_names {
            let (_, v) = self
                .keys
                .iter()
                .find(|(c, _)| c == k)
                .ok_or_else(|| Error::internal(format!("lookup without key {k}")))?;
            let ty = full.field_with_name(k)?.data_type().clone();
            let mut set: Vec<ScalarValue> = Vec::new();
            for value in values(v, params)? {
                if let Some(value) = typed(value, &ty, k)?
                    && !set.contains(&value)
                {
                    set.push(value);
                }
            }
            value_sets.push(set);
        }
        let count = value_sets
            .iter()
            .try_fold(1usize, |n, set| n.checked_mul(set.len()));
        if count.is_none_or(|n| n > MAX_COMBINATIONS) {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!(
                    "an online lookup may ask for at most {MAX_COMBINATIONS} key combinations; \
                     this one asks for more (ask in pages)"
                ),
            ));
        }
        let combos = combinations(&value_sets);
        let batch = match &t.source {
            Source::View(ix) => {
                let mut rows = Vec::new();
                for c in &combos {
                    if let Some(r) = ix.find(c, now)? {
                        rows.push(Some(r));
                    }
                }
                ix.take(&rows)?
            }
            Source::Service(views) => {
                let mut columns: Vec<ArrayRef> = Vec::new();
                for (i, k) in key_names.iter().enumerate() {
                    let ty = full.field_with_name(k)?.data_type().clone();
                    // A vector, not a mapped iterator: `iter_to_array` is compiled once
                    // per iterator type, some 1,400 functions each.
                    let vals: Vec<ScalarValue> = combos.iter().map(|c| c[i].clone()).collect();
                    columns.push(if combos.is_empty() {
                        datafusion::arrow::array::new_empty_array(&ty)
                    } else {
                        ScalarValue::iter_to_array(vals)?
                    });
                }
                for (ix, features) in views {
                    let positions: Vec<usize> = ix
                        .feature
                        .entity
                        .iter()
                        .map(|k| key_names.iter().position(|n| n == k).unwrap_or(0))
                        .collect();
                    let mut rows = Vec::with_capacity(combos.len());
                    for c in &combos {
                        let key: Vec<ScalarValue> =
                            positions.iter().map(|&p| c[p].clone()).collect();
                        rows.push(ix.find(&key, now)?);
                    }
                    let taken = ix.take(&rows)?;
                    for f in features {
                        if let Some(col) = taken.column_by_name(f) {
                            columns.push(col.clone());
                        }
                    }
                }
                RecordBatch::try_new(full.clone(), columns)?
            }
        };
        let out = self.schema(t)?;
        let columns = match &self.columns {
            None => batch.columns().to_vec(),
            Some(cols) => cols
                .iter()
                .map(|(c, _)| Ok(batch.column(batch.schema().index_of(c)?).clone()))
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(RecordBatch::try_new(out, columns)?)
    }
}

/// The values a condition gives, parameters put in.
fn values(v: &Values, params: &ParamValues) -> Result<Vec<ScalarValue>> {
    let one = |o: &Operand| -> Result<ScalarValue> {
        match o {
            Operand::Literal(s) => Ok(s.clone()),
            Operand::Param(n) => param(params, *n),
        }
    };
    match v {
        Values::One(o) => Ok(vec![one(o)?]),
        Values::List(items) => items.iter().map(one).collect(),
        Values::Any(o) => match one(o)? {
            ScalarValue::List(list) => {
                if list.is_null(0) {
                    return Ok(vec![]);
                }
                let items = list.value(0);
                (0..items.len())
                    .map(|i| Ok(ScalarValue::try_from_array(&items, i)?))
                    .collect()
            }
            ScalarValue::Null => Ok(vec![]),
            other => Err(Error::new(
                ErrorKind::DatatypeMismatch,
                format!("= ANY needs an array, not {}", other.data_type()),
            )),
        },
    }
}

fn param(params: &ParamValues, n: usize) -> Result<ScalarValue> {
    match params {
        ParamValues::List(list) => list.get(n - 1).map(|p| p.value.clone()).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidParameter,
                format!("there is no parameter ${n}"),
            )
        }),
        ParamValues::Map(_) => Err(Error::internal("named parameters in a lookup")),
    }
}

/// `value` as the key column's type; `None` when it matches no key (NULL,
/// or an integer out of the key's range). Text that is not a value of the
/// type is an error (PostgreSQL's `invalid input syntax`), not a miss.
fn typed(value: ScalarValue, ty: &DataType, column: &str) -> Result<Option<ScalarValue>> {
    if value.is_null() {
        return Ok(None);
    }
    if &value.data_type() == ty {
        return Ok(Some(value));
    }
    if value.data_type().is_integer() && ty.is_integer() {
        return Ok(value.cast_to(ty).ok().filter(|v| !v.is_null()));
    }
    let from_text = matches!(value.data_type(), DataType::Utf8 | DataType::Utf8View);
    let converted = if from_text {
        value.cast_to(ty).ok().filter(|v| !v.is_null())
    } else {
        None
    };
    converted.map(Some).ok_or_else(|| {
        Error::new(
            if from_text {
                ErrorKind::InvalidText
            } else {
                ErrorKind::DatatypeMismatch
            },
            format!("{value} is not a valid value of key column \"{column}\" ({ty})"),
        )
    })
}

/// Every combination of one value from each set, the first set varying
/// slowest.
fn combinations(sets: &[Vec<ScalarValue>]) -> Vec<Vec<ScalarValue>> {
    let mut out: Vec<Vec<ScalarValue>> = vec![vec![]];
    for set in sets {
        let mut next = Vec::with_capacity(out.len() * set.len());
        for prefix in &out {
            for v in set {
                let mut c = prefix.clone();
                c.push(v.clone());
                next.push(c);
            }
        }
        out = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(sql: &str) -> Statement {
        match crate::frontend::parse(sql).unwrap().pop().unwrap() {
            crate::frontend::Stmt::Sql(s) => *s,
            _ => panic!("not sql"),
        }
    }

    #[test]
    fn recognizes_lookups() {
        let l = recognize(&stmt("SELECT * FROM online.fv WHERE user_id = $1")).unwrap();
        assert_eq!(l.target, vec!["fv"]);
        assert_eq!(l.columns, None);
        assert_eq!(
            l.keys,
            vec![("user_id".into(), Values::One(Operand::Param(1)))]
        );
        let l = recognize(&stmt(
            "select f.a, b as bee from online.s.fv f where (f.k = 'x' and 7 = k2) and k3 = any($2) and k4 in (1, $1)",
        ))
        .unwrap();
        assert_eq!(l.target, vec!["s", "fv"]);
        assert_eq!(
            l.columns,
            Some(vec![("a".into(), "a".into()), ("b".into(), "bee".into())])
        );
        assert_eq!(l.keys.len(), 4);
        assert_eq!(l.keys[2], ("k3".into(), Values::Any(Operand::Param(2))));
    }

    #[test]
    fn other_shapes_are_queries() {
        for sql in [
            "SELECT * FROM fv WHERE k = 1",
            "SELECT * FROM online.fv",
            "SELECT * FROM online.fv WHERE k = 1 OR k = 2",
            "SELECT * FROM online.fv WHERE k > 1",
            "SELECT * FROM online.fv WHERE k = 1 AND k = 2",
            "SELECT * FROM online.fv WHERE k = 1.5",
            "SELECT count(*) FROM online.fv WHERE k = 1",
            "SELECT * FROM online.fv WHERE k = 1 ORDER BY k",
            "SELECT * FROM online.fv WHERE k = 1 LIMIT 1",
            "SELECT * FROM online.fv f WHERE online.fv.k = 1",
            "SELECT * FROM online.fv, t WHERE k = 1",
            "SELECT DISTINCT * FROM online.fv WHERE k = 1",
            "SELECT * FROM online.fv WHERE k NOT IN (1)",
        ] {
            assert_eq!(recognize(&stmt(sql)), None, "{sql}");
        }
    }

    #[test]
    fn combinations_cross_the_sets() {
        let s = |v: &[i64]| v.iter().map(|&i| ScalarValue::from(i)).collect::<Vec<_>>();
        let c = combinations(&[s(&[1, 2]), s(&[3])]);
        assert_eq!(c, vec![s(&[1, 3]), s(&[2, 3])]);
        assert!(combinations(&[s(&[1]), s(&[])]).is_empty());
    }

    #[test]
    fn values_must_fit_the_key() {
        assert_eq!(
            typed(ScalarValue::from("12"), &DataType::Int64, "k").unwrap(),
            Some(ScalarValue::Int64(Some(12)))
        );
        assert_eq!(
            typed(ScalarValue::Int64(Some(1 << 40)), &DataType::Int32, "k").unwrap(),
            None
        );
        assert_eq!(
            typed(ScalarValue::from("x"), &DataType::Int64, "k")
                .unwrap_err()
                .kind,
            ErrorKind::InvalidText
        );
        assert!(typed(ScalarValue::Float64(Some(1.5)), &DataType::Int64, "k").is_err());
    }
}
