//! PostgreSQL's names for unnamed result columns: `count(*)` is `count`,
//! `a::text` is `a`, `1 + 2` is `?column?`. DataFusion names them after the
//! whole expression; clients (psql headers, drivers mapping rows to
//! records, BI tools) see PostgreSQL's names instead.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, OrderByKind, Query,
    SelectItem, SetExpr, Statement, VisitorMut,
};

const UNNAMED: &str = "?column?";

/// PostgreSQL's name for a type in a cast (`CAST(x AS integer)` is `int4`).
fn type_name(t: &datafusion::sql::sqlparser::ast::DataType) -> String {
    use datafusion::sql::sqlparser::ast::DataType as T;
    match t {
        T::Int(_) | T::Integer(_) | T::Int4(_) => "int4".into(),
        T::BigInt(_) | T::Int8(_) => "int8".into(),
        T::SmallInt(_) | T::Int2(_) => "int2".into(),
        T::Real | T::Float4 => "float4".into(),
        T::DoublePrecision | T::Float8 | T::Double(_) => "float8".into(),
        T::Float(_) => "float8".into(),
        T::Boolean | T::Bool => "bool".into(),
        T::Text => "text".into(),
        T::Varchar(_) | T::CharacterVarying(_) => "varchar".into(),
        T::Char(_) | T::Character(_) => "bpchar".into(),
        T::Numeric(_) | T::Decimal(_) | T::Dec(_) => "numeric".into(),
        T::Date => "date".into(),
        T::Timestamp(_, tz) => match tz {
            datafusion::sql::sqlparser::ast::TimezoneInfo::WithTimeZone
            | datafusion::sql::sqlparser::ast::TimezoneInfo::Tz => "timestamptz".into(),
            _ => "timestamp".into(),
        },
        T::Interval { .. } => "interval".into(),
        T::Bytea => "bytea".into(),
        T::JSON => "json".into(),
        T::JSONB => "jsonb".into(),
        T::Uuid => "uuid".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// The argument of a cast to `numeric` without a type modifier, which the
/// frontend rewrites to a call of `types::numeric::FUNCTION`.
fn unconstrained_numeric(f: &datafusion::sql::sqlparser::ast::Function) -> Option<&Expr> {
    let name = f.name.0.last().and_then(|p| p.as_ident())?;
    if name.value != crate::types::numeric::FUNCTION {
        return None;
    }
    first_argument(f)
}

/// A call's first argument, when it is a plain expression.
fn first_argument(f: &datafusion::sql::sqlparser::ast::Function) -> Option<&Expr> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    match &f.args {
        FunctionArguments::List(l) => match l.args.first() {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(a))) => Some(a),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `f` calls the function `name` (unqualified).
fn function_named(f: &datafusion::sql::sqlparser::ast::Function, name: &str) -> bool {
    matches!(f.name.0.as_slice(), [p] if p.as_ident().is_some_and(|i| i.value == name))
}

/// The type and argument of a cast rewritten to a typed-text input
/// function (`sluice_uuid_in(x)` for `x::uuid`).
fn typed_cast(
    f: &datafusion::sql::sqlparser::ast::Function,
) -> Option<(crate::types::typed::TextType, Option<&Expr>)> {
    let ty = f
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .and_then(|i| crate::types::typed::TextType::of_function(&i.value))?;
    Some((ty, first_argument(f)))
}

/// PostgreSQL's FigureColname: the name of an unaliased select item and
/// how strongly it holds (2: a column or function name, 1: a fallback such
/// as a cast's type or `case`, 0: none, `?column?`).
fn figure(e: &Expr) -> (Option<String>, u8) {
    match e {
        Expr::Identifier(id) => (Some(super::normalize_ident(id)), 2),
        Expr::CompoundIdentifier(parts) => (parts.last().map(super::normalize_ident), 2),
        Expr::Nested(inner) => figure(inner),
        // An indirection is named after its last field, else after what
        // it subscripts (`m[1]` is `m`, `(a).f[2]` is `f`).
        Expr::CompoundFieldAccess { root, access_chain } => {
            match access_chain.iter().rev().find_map(|a| match a {
                datafusion::sql::sqlparser::ast::AccessExpr::Dot(Expr::Identifier(id)) => {
                    Some(super::normalize_ident(id))
                }
                _ => None,
            }) {
                Some(field) => (Some(field), 2),
                None => figure(root),
            }
        }
        Expr::Cast {
            expr, data_type, ..
        } => match figure(expr) {
            (Some(n), 2) => (Some(n), 2),
            _ => (Some(type_name(data_type)), 1),
        },
        // The function PostgreSQL calls for it.
        Expr::AtTimeZone { .. } => (Some("timezone".to_string()), 1),
        // A cast to a type kept as text, rewritten to its input function.
        Expr::Function(f) if typed_cast(f).is_some() => {
            let (ty, arg) = typed_cast(f).expect("checked");
            match arg.map(figure) {
                Some((Some(n), 2)) => (Some(n), 2),
                _ => (Some(ty.name().to_string()), 1),
            }
        }
        // A cast to an unconstrained numeric, rewritten to keep the digits.
        Expr::Function(f) if unconstrained_numeric(f).is_some() => {
            match unconstrained_numeric(f).map(figure) {
                Some((Some(n), 2)) => (Some(n), 2),
                _ => (Some("numeric".to_string()), 1),
            }
        }
        // `ROW(a, b)`, rewritten to a record of fields f1, f2, ...
        Expr::Function(f) if function_named(f, "named_struct") => (Some("row".into()), 2),
        // `(a, b) OVERLAPS (c, d)`, rewritten to a call.
        Expr::Function(f) if function_named(f, crate::types::functions::OVERLAPS) => {
            (Some("overlaps".into()), 2)
        }
        // A name cast to regclass or regtype, looked up: named after the type.
        Expr::Function(f) if function_named(f, crate::catalog::pg_constraints::REGCLASS_FOUND) => {
            (Some("regclass".into()), 1)
        }
        Expr::Function(f) if function_named(f, crate::catalog::pg_constraints::REGTYPE_FOUND) => {
            (Some("regtype".into()), 1)
        }
        Expr::Function(f) if function_named(f, crate::catalog::pg_proc::REGPROC_FOUND) => {
            (Some("regproc".into()), 1)
        }
        Expr::Function(f) if function_named(f, crate::catalog::pg_proc::REGPROCEDURE_FOUND) => {
            (Some("regprocedure".into()), 1)
        }
        // An OID cast to regclass or regtype, shown as a name: named after
        // the OID's expression, as the cast was.
        Expr::Function(f)
            if [
                crate::catalog::pg_constraints::REGCLASS_NAME,
                crate::catalog::pg_constraints::REGTYPE_NAME,
                crate::catalog::pg_proc::REGPROC_NAME,
                crate::catalog::pg_proc::REGPROCEDURE_NAME,
            ]
            .iter()
            .any(|n| function_named(f, n)) =>
        {
            let ty = if function_named(f, crate::catalog::pg_constraints::REGTYPE_NAME) {
                "regtype"
            } else if function_named(f, crate::catalog::pg_proc::REGPROC_NAME) {
                "regproc"
            } else if function_named(f, crate::catalog::pg_proc::REGPROCEDURE_NAME) {
                "regprocedure"
            } else {
                "regclass"
            };
            match first_argument(f).map(figure) {
                Some((Some(n), 2)) => (Some(n), 2),
                _ => (Some(ty.into()), 1),
            }
        }
        Expr::Function(f) => (
            f.name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(super::normalize_ident),
            2,
        ),
        // A typed literal is a cast of a string: named after its type.
        Expr::TypedString(t) => (Some(type_name(&t.data_type)), 1),
        Expr::Interval(_) => (Some("interval".into()), 1),
        Expr::Case { else_result, .. } => match else_result.as_deref().map(figure) {
            Some((Some(n), 2)) => (Some(n), 2),
            _ => (Some("case".into()), 1),
        },
        // `NOT EXISTS` is PostgreSQL's NOT over EXISTS: an operator.
        Expr::Exists { negated: false, .. } => (Some("exists".into()), 2),
        Expr::Extract { .. } => (Some("extract".into()), 2),
        Expr::Substring {
            shorthand: true, ..
        } => (Some("substr".into()), 2),
        Expr::Substring { .. } => (Some("substring".into()), 2),
        Expr::Position { .. } => (Some("position".into()), 2),
        Expr::Overlay { .. } => (Some("overlay".into()), 2),
        Expr::Trim { .. } => (Some("btrim".into()), 2),
        Expr::Ceil { .. } => (Some("ceil".into()), 2),
        Expr::Floor { .. } => (Some("floor".into()), 2),
        Expr::Array(_) => (Some("array".into()), 2),
        // A scalar subquery is named after its one column, whatever name
        // that has (`(SELECT CASE ... END)` is `case`, `(SELECT 1 + 2)`
        // `?column?`), as PostgreSQL names it.
        Expr::Subquery(q) => match first_select(&q.body).and_then(|s| s.projection.first()) {
            Some(SelectItem::ExprWithAlias { alias, .. }) => {
                (Some(super::normalize_ident(alias)), 2)
            }
            Some(SelectItem::UnnamedExpr(e)) => (Some(pg_name(e)), 2),
            _ => (None, 0),
        },
        _ => (None, 0),
    }
}

/// The name PostgreSQL gives an unaliased select item, or `None` to keep
/// the planner's (plain column references).
fn expr_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
        _ => Some(figure(e).0.unwrap_or_else(|| UNNAMED.into())),
    }
}

/// The name PostgreSQL gives an unaliased select item, columns included.
pub fn pg_name(e: &Expr) -> String {
    figure(e).0.unwrap_or_else(|| UNNAMED.into())
}

fn is_wildcard(item: &SelectItem) -> bool {
    matches!(
        item,
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
    )
}

/// The name each item of a select list has: its alias, or the name
/// PostgreSQL gives it; `None` for a wildcard.
fn item_names(projection: &[SelectItem]) -> Vec<Option<String>> {
    projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Some(pg_name(e)),
            SelectItem::ExprWithAlias { alias, .. } => Some(super::normalize_ident(alias)),
            _ => None,
        })
        .collect()
}

/// The alias that names item `pos` of a select list whose items are named
/// `names` (see [`item_names`]) as PostgreSQL does, marked as a repeat when
/// another item has that name too, or when `marked`.
fn pg_alias(
    names: &[Option<String>],
    pos: usize,
    marked: bool,
) -> datafusion::sql::sqlparser::ast::Ident {
    let name = names[pos].clone().unwrap_or_else(|| UNNAMED.into());
    let repeated = marked
        || names
            .iter()
            .enumerate()
            .any(|(i, n)| i != pos && n.as_deref() == Some(name.as_str()));
    let alias = if repeated {
        repeated_alias(&name, pos)
    } else {
        name
    };
    datafusion::sql::sqlparser::ast::Ident::with_quote('"', alias)
}

fn first_select(body: &SetExpr) -> Option<&datafusion::sql::sqlparser::ast::Select> {
    match body {
        SetExpr::Select(s) => Some(s),
        SetExpr::SetOperation { left, .. } => first_select(left),
        SetExpr::Query(q) => first_select(&q.body),
        _ => None,
    }
}

fn first_select_mut(body: &mut SetExpr) -> Option<&mut datafusion::sql::sqlparser::ast::Select> {
    match body {
        SetExpr::Select(s) => Some(s),
        SetExpr::SetOperation { left, .. } => first_select_mut(left),
        SetExpr::Query(q) => first_select_mut(&mut q.body),
        _ => None,
    }
}

/// Gives the unnamed items of `q`'s select list the names PostgreSQL gives
/// them as aliases (`upper(s)` is `upper`, `k::text` is `k`, `count(*)`
/// is `count`), for a query kept and planned again by name: a view's or a
/// materialized view's. `schema` is its planned result.
pub fn alias_pg_names(q: &mut Query, schema: &Schema) {
    use datafusion::sql::sqlparser::ast::Ident;
    let Some(named) = query_names(q, schema) else {
        return;
    };
    let Some(select) = first_select_mut(&mut q.body) else {
        return;
    };
    // As in `query_names`: at most one wildcard, standing for the rest.
    let width = (schema.fields().len() + 1).saturating_sub(select.projection.len());
    let mut at = 0;
    for item in select.projection.iter_mut() {
        if is_wildcard(item) {
            at += width;
            continue;
        }
        if let SelectItem::UnnamedExpr(e) = item
            && let (Some(pg), Some(planned)) = (named.fields().get(at), schema.fields().get(at))
            && pg.name() != planned.name()
        {
            let name = pg
                .name()
                .split(REPEAT_MARK)
                .next()
                .unwrap_or("")
                .to_string();
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: Ident::with_quote('"', name),
            };
        }
        at += 1;
    }
}

fn query_names(q: &Query, schema: &Schema) -> Option<SchemaRef> {
    let select = first_select(&q.body)?;
    // One wildcard: it stands for the columns the other items leave.
    let wildcards = select
        .projection
        .iter()
        .filter(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        })
        .count();
    let width = match wildcards {
        0 => 1,
        1 => (schema.fields().len() + 1).checked_sub(select.projection.len())?,
        _ => return None,
    };
    if select.projection.len() + width - 1 != schema.fields().len() {
        return None;
    }
    let items = select.projection.iter().flat_map(|item| {
        let n = match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => width,
            _ => 1,
        };
        std::iter::repeat_n(item, n)
    });
    let mut changed = false;
    let mut fields = Vec::with_capacity(schema.fields().len());
    for (item, field) in items.zip(schema.fields()) {
        let name = match item {
            SelectItem::UnnamedExpr(e) => expr_name(e),
            _ => None,
        };
        match name {
            Some(n) if &n != field.name() => {
                changed = true;
                fields.push(
                    Field::new(n, field.data_type().clone(), field.is_nullable())
                        .with_metadata(field.metadata().clone()),
                );
            }
            _ => fields.push(field.as_ref().clone()),
        }
    }
    changed.then(|| Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())))
}

/// In a query with ORDER BY, an unaliased cast of a column in the select
/// list gets the name PostgreSQL gives it (the column's) as an alias. Then
/// `SELECT id::bigint FROM t ORDER BY id` (or `(id::int)::text`) sorts by the output column, as
/// PostgreSQL does, instead of failing in DataFusion because the cast and
/// the column share a name (apache/datafusion#13558). Left alone when a
/// wildcard or another item could take the same name.
pub fn alias_column_casts(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::Ident;
    let Statement::Query(q) = stmt else { return };
    if q.order_by.is_none() {
        return;
    }
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let mut names = Vec::new();
    for item in &select.projection {
        names.push(match item {
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => Some(super::normalize_ident(id)),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                parts.last().map(super::normalize_ident)
            }
            SelectItem::UnnamedExpr(e) => expr_name(e),
            SelectItem::ExprWithAlias { alias, .. } => Some(super::normalize_ident(alias)),
            _ => return,
        });
    }
    for (item, name) in select.projection.iter_mut().zip(&names) {
        let SelectItem::UnnamedExpr(e @ Expr::Cast { .. }) = item else {
            continue;
        };
        let Some(name) = name else { continue };
        // A cast of a column, or of a cast of one (`(id::int)::text`),
        // parenthesized or not: DataFusion names each after the column.
        fn of_column(e: &Expr) -> bool {
            match e {
                Expr::Cast { expr, .. } | Expr::Nested(expr) => of_column(expr),
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => true,
                _ => false,
            }
        }
        let plain_column = matches!(e, Expr::Cast { expr, .. } if of_column(expr));
        if plain_column && names.iter().filter(|n| n.as_ref() == Some(name)).count() == 1 {
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: Ident::with_quote('"', name.clone()),
            };
        }
    }
}

/// Marks an alias given to a repeated output name; the result's names drop
/// it again (see [`pg_result_names`]).
const REPEAT_MARK: char = '\u{1f}';

/// The alias of the `pos`-th output column when its `name` repeats one
/// before it (see [`alias_repeated_names`]).
pub fn repeated_alias(name: &str, pos: usize) -> String {
    format!("{name}{REPEAT_MARK}{pos}")
}

/// PostgreSQL allows result columns of one name (`SELECT id, id`,
/// `SELECT c.oid, c.*`, `SELECT 1 AS x, 2 AS x`); DataFusion requires a
/// projection's names to be unique. The later items of a name, and plain
/// columns beside a wildcard (which may expand to the same column), get an
/// alias with a mark that the result's column names drop.
///
/// The plain columns of a set operation's later branches get such an alias
/// too: the result is named after the first branch, and DataFusion's union
/// coercion names a column it casts after the column, which failed beside
/// a qualified column of that name (`SELECT a.id, 1 FROM a UNION SELECT 1,
/// b.id FROM b`: `XX000 Schema contains qualified field name b.id and
/// unqualified field name id`).
pub fn alias_repeated_names(stmt: &mut Statement) {
    // Every query, nested ones too (`SELECT count(*) FROM (SELECT DISTINCT
    // a, b, a FROM t) s` was XX000).
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            alias_repeated_in(q.body.as_mut(), false);
            ControlFlow::Continue(())
        }
    }
    if matches!(stmt, Statement::Query(_)) {
        let _ = crate::visit::walk_mut(stmt, &mut V);
    }
}

/// [`alias_repeated_names`] in every select of a set operation; `later`
/// for a branch after the first.
fn alias_repeated_in(body: &mut SetExpr, later: bool) {
    use datafusion::sql::sqlparser::ast::Ident;
    let select = match body {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { left, right, .. } => {
            alias_repeated_in(left, later);
            alias_repeated_in(right, true);
            return;
        }
        SetExpr::Query(q) => return alias_repeated_in(q.body.as_mut(), later),
        _ => return,
    };
    let wildcard = select.projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    });
    // DataFusion names a cast after what it casts: `1.5::float8` and
    // `(1.5::float8)::text` would be two columns of one name to it.
    fn uncast(e: &Expr) -> &Expr {
        match e {
            Expr::Cast { expr, .. } | Expr::Nested(expr) => uncast(expr),
            // Planned as a cast too.
            Expr::AtTimeZone { timestamp, .. } => uncast(timestamp),
            other => other,
        }
    }
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut cast_of: std::collections::HashMap<String, usize> = Default::default();
    for (pos, item) in select.projection.iter_mut().enumerate() {
        if let SelectItem::UnnamedExpr(
            e @ (Expr::Cast { .. }
            | Expr::Nested(_)
            | Expr::AtTimeZone { .. }
            | Expr::TypedString(_)),
        ) = item
        {
            let n = cast_of.entry(without_casts(uncast(e))).or_default();
            *n += 1;
            if *n > 1 {
                let alias = match figure(e) {
                    (Some(name), _) if !seen.contains_key(&name) => {
                        seen.insert(name.clone(), 1);
                        name
                    }
                    (name, _) => repeated_alias(&name.unwrap_or_else(|| UNNAMED.into()), pos),
                };
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', alias),
                };
                continue;
            }
        } else if let SelectItem::UnnamedExpr(e) = item {
            // Named as an earlier item with casts inside (`p::text || x`
            // beside `(p || x)::text`).
            let n = cast_of.entry(without_casts(e)).or_default();
            *n += 1;
            if *n > 1 && !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                let name = figure(e).0.unwrap_or_else(|| UNNAMED.into());
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', repeated_alias(&name, pos)),
                };
                continue;
            }
        }
        let (name, plain) = match item {
            SelectItem::UnnamedExpr(e @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_))) => {
                (figure(e).0.unwrap_or_default(), true)
            }
            SelectItem::UnnamedExpr(e) => (figure(e).0.unwrap_or_else(|| UNNAMED.into()), false),
            SelectItem::ExprWithAlias { alias, .. } => (super::normalize_ident(alias), false),
            _ => continue,
        };
        let count = seen.entry(name.clone()).or_default();
        *count += 1;
        if *count == 1 && !(plain && (wildcard || later)) {
            continue;
        }
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
            _ => continue,
        };
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', repeated_alias(&name, pos)),
        };
    }
}

/// Unaliased `mod(a, b)` select items keep PostgreSQL's name `mod` as an
/// alias: the function is planned as `a % b`, which DataFusion names like
/// the operator beside it (`SELECT mod(10, 3), 10 % 3` failed with two
/// columns of one name).
pub fn alias_mod_calls(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::Ident;
    /// In a set operation's later branch the name is marked (the result
    /// is named after the first branch, whose names DataFusion gives the
    /// later ones).
    fn in_body(body: &mut SetExpr, later: bool) {
        let select = match body {
            SetExpr::Select(s) => s,
            SetExpr::SetOperation { left, right, .. } => {
                in_body(left, later);
                in_body(right, true);
                return;
            }
            SetExpr::Query(q) => return in_body(q.body.as_mut(), later),
            _ => return,
        };
        for (pos, item) in select.projection.iter_mut().enumerate() {
            let is_mod = matches!(&*item, SelectItem::UnnamedExpr(Expr::Function(f))
                if f.name.0.len() == 1
                    && f.name.0[0]
                        .as_ident()
                        .is_some_and(|i| i.value.eq_ignore_ascii_case("mod")));
            if is_mod && let SelectItem::UnnamedExpr(e) = item {
                let name = if later {
                    repeated_alias("mod", pos)
                } else {
                    "mod".to_string()
                };
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', name),
                };
            }
        }
    }
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            in_body(q.body.as_mut(), false);
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V);
}

/// ORDER BY keys naming a constant select item (`SELECT 'total', sum(x)
/// ... GROUP BY k ORDER BY 1`), by position or alias, are left out:
/// sorting by a constant changes nothing, and DataFusion refuses the key
/// beside GROUP BY (42803 `must appear in the GROUP BY clause`).
pub fn drop_constant_order_keys(stmt: &mut Statement) {
    fn constant(e: &Expr) -> bool {
        match e {
            Expr::Value(v) => !matches!(
                v.value,
                datafusion::sql::sqlparser::ast::Value::Placeholder(_)
            ),
            Expr::TypedString(_) => true,
            Expr::Nested(x) | Expr::UnaryOp { expr: x, .. } | Expr::Cast { expr: x, .. } => {
                constant(x)
            }
            _ => false,
        }
    }
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            let SetExpr::Select(select) = q.body.as_ref() else {
                return ControlFlow::Continue(());
            };
            let Some(OrderByKind::Expressions(keys)) = q.order_by.as_mut().map(|o| &mut o.kind)
            else {
                return ControlFlow::Continue(());
            };
            let items = &select.projection;
            // Beside a wildcard, a position is not the item's.
            let wildcard = items.iter().any(is_wildcard);
            let names_constant = |key: &Expr| match key {
                Expr::Identifier(id) => {
                    let name = super::normalize_ident(id);
                    let mut named = items.iter().filter(|item| match item {
                        SelectItem::ExprWithAlias { alias, .. } => {
                            super::normalize_ident(alias) == name
                        }
                        SelectItem::UnnamedExpr(e) => pg_name(e) == name,
                        _ => true,
                    });
                    matches!(
                        (named.next(), named.next()),
                        (Some(SelectItem::ExprWithAlias { expr, .. }), None) if constant(expr)
                    )
                }
                key => {
                    !wildcard
                        && ordinal(key).and_then(|pos| items.get(pos)).is_some_and(
                            |item| match item {
                                SelectItem::UnnamedExpr(e)
                                | SelectItem::ExprWithAlias { expr: e, .. } => constant(e),
                                _ => false,
                            },
                        )
                }
            };
            let before = keys.len();
            keys.retain(|k| !names_constant(&k.expr));
            if keys.is_empty() && before > 0 {
                q.order_by = None;
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V);
}

/// The select item an `ORDER BY` position names (`ORDER BY 2`: 1).
fn ordinal(key: &Expr) -> Option<usize> {
    let Expr::Value(v) = key else { return None };
    let datafusion::sql::sqlparser::ast::Value::Number(n, _) = &v.value else {
        return None;
    };
    n.parse::<usize>().ok()?.checked_sub(1)
}

/// The unnamed expressions of a derived table's or a WITH query's select
/// list get the names PostgreSQL gives them as aliases, so that the outer
/// query reads them by those names (`SELECT s.count FROM (SELECT k,
/// count(*) FROM t GROUP BY k) s`) and `*` shows them (DataFusion's names
/// are `count(*)`, `upper(public.t.s)`). A name two items have is marked as
/// a repeat (the result's names drop the mark), as DataFusion requires a
/// select list's names to differ.
pub fn alias_derived_names(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::TableFactor;
    fn alias_items(body: &mut SetExpr) {
        let Some(select) = first_select_mut(body) else {
            return;
        };
        let names = item_names(&select.projection);
        // A wildcard may bring any name.
        let wildcard = select.projection.iter().any(is_wildcard);
        for (pos, item) in select.projection.iter_mut().enumerate() {
            if let SelectItem::UnnamedExpr(e) = item
                && !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
            {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: pg_alias(&names, pos, wildcard),
                };
            }
        }
    }
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            if let Some(with) = q.with.as_mut() {
                for cte in &mut with.cte_tables {
                    if cte.alias.columns.is_empty() {
                        alias_items(cte.query.body.as_mut());
                    }
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Derived {
                subquery, alias, ..
            } = t
                && alias.as_ref().is_none_or(|a| a.columns.is_empty())
            {
                alias_items(subquery.body.as_mut());
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V);
}

/// The SELECT of a query body whose list positions are its items: not a
/// set operation, and no wildcard (beside one, a position is not the
/// item's).
fn numbered_select(body: &mut SetExpr) -> Option<&mut datafusion::sql::sqlparser::ast::Select> {
    match body {
        SetExpr::Select(s) if !s.projection.iter().any(is_wildcard) => Some(s),
        _ => None,
    }
}

/// `DISTINCT ON (1)`, a position in the select list, as the item's
/// expression (DataFusion read the number itself: `XX000 SELECT DISTINCT
/// ON expressions must match initial ORDER BY expressions`).
pub fn distinct_on_positions(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::Distinct;
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            let Some(select) = numbered_select(q.body.as_mut()) else {
                return ControlFlow::Continue(());
            };
            let items = select.projection.clone();
            if let Some(Distinct::On(keys)) = select.distinct.as_mut() {
                for key in keys.iter_mut() {
                    if let Some(pos) = ordinal(key)
                        && let Some(
                            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. },
                        ) = items.get(pos)
                    {
                        *key = e.clone();
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V);
}

/// `ORDER BY 1` naming a select item that is an expression (`SELECT k + 1,
/// count(*) ... GROUP BY k ORDER BY 1`) orders by an alias of it: DataFusion
/// refuses the expression itself beside GROUP BY (42803). So does `ORDER BY
/// rank` naming an unaliased item (`rank() OVER (...)`, `count(*)`) by its
/// PostgreSQL name, which the planner did not know (42703). The alias is the
/// name PostgreSQL gives the item, marked as a repeat when another item
/// has that name too (the result's names drop the mark).
pub fn alias_ordinal_order_keys(stmt: &mut Statement) {
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            let Some(select) = numbered_select(q.body.as_mut()) else {
                return ControlFlow::Continue(());
            };
            let Some(OrderByKind::Expressions(keys)) = q.order_by.as_mut().map(|o| &mut o.kind)
            else {
                return ControlFlow::Continue(());
            };
            let names = item_names(&select.projection);
            for key in keys.iter_mut() {
                // `ORDER BY 2`, or `ORDER BY rank` naming one item by the
                // name PostgreSQL gives it (an output column's name comes
                // before an input column's; one two items share is left).
                let (pos, by_name) = match &key.expr {
                    Expr::Identifier(id) => {
                        let wanted = super::normalize_ident(id);
                        let named: Vec<usize> = names
                            .iter()
                            .enumerate()
                            .filter(|(_, n)| n.as_deref() == Some(wanted.as_str()))
                            .map(|(i, _)| i)
                            .collect();
                        // Items of one name are one key when they are one
                        // expression (`count(*), count(*) ... ORDER BY
                        // count`); two different ones were refused (see
                        // `refuse_ambiguous_order_keys`).
                        let same = named.windows(2).all(|w| {
                            match (select.projection.get(w[0]), select.projection.get(w[1])) {
                                (Some(a), Some(b)) => same_item(a, b),
                                _ => false,
                            }
                        });
                        match named.first() {
                            // Named again by the alias it gets when shared.
                            Some(&pos) if same => (pos, named.len() == 1),
                            _ => continue,
                        }
                    }
                    other => match ordinal(other) {
                        Some(pos) => (pos, false),
                        None => continue,
                    },
                };
                let Some(SelectItem::UnnamedExpr(e)) = select.projection.get(pos) else {
                    continue;
                };
                if expr_name(e).is_none() {
                    continue;
                }
                let alias = pg_alias(&names, pos, false);
                select.projection[pos] = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: alias.clone(),
                };
                if !by_name {
                    key.expr = Expr::Identifier(alias);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V);
}

/// The expression of a select item, as PostgreSQL compares two of them
/// for `ORDER BY name`: without parentheses, names folded, a qualified
/// column by its name (`t.a` is `a`); None for `*`.
fn item_key(item: &SelectItem, qualified: bool) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::Ident;
    let mut e = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
        _ => return None,
    };
    let _ = crate::visit::visit_expressions_mut(&mut e, |x| {
        match x {
            Expr::Nested(inner) => *x = inner.as_ref().clone(),
            Expr::Identifier(id) => *id = Ident::new(super::normalize_ident(id)),
            Expr::CompoundIdentifier(parts) if qualified => {
                for p in parts.iter_mut() {
                    *p = Ident::new(super::normalize_ident(p));
                }
            }
            Expr::CompoundIdentifier(parts) => {
                let last = parts.last().map(super::normalize_ident).unwrap_or_default();
                *x = Expr::Identifier(Ident::new(last));
            }
            Expr::Function(f) => {
                for part in f.name.0.iter_mut() {
                    if let Some(id) = part.as_ident() {
                        *part = datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(
                            Ident::new(super::normalize_ident(id)),
                        );
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    Some(e)
}

/// Whether two select items are one expression for `ORDER BY name`: the
/// same once names are folded, a column named bare being taken for the
/// same column qualified (`a` and `t.a`), two different qualifiers not
/// (`v.x` and `w.x`).
fn same_item(a: &SelectItem, b: &SelectItem) -> bool {
    let full = (item_key(a, true), item_key(b, true));
    if full.0 == full.1 {
        return true;
    }
    let bare_a = item_key(a, false);
    let qualified = |full: &Option<Expr>, bare: &Option<Expr>| full != bare;
    bare_a == item_key(b, false)
        && !(qualified(&full.0, &bare_a) && qualified(&full.1, &item_key(b, false)))
}

/// `ORDER BY name` where two items of the select list have that name and
/// are not the same expression (`SELECT 1 AS a, 2 AS a ORDER BY a`):
/// 42702, as PostgreSQL says (`findTargetlistEntrySQL92`).
pub fn refuse_ambiguous_order_keys(stmt: &Statement) -> crate::error::Result<()> {
    use datafusion::sql::sqlparser::ast::Visitor;
    struct V;
    impl Visitor for V {
        type Break = crate::error::Error;
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<Self::Break> {
            let SetExpr::Select(select) = q.body.as_ref() else {
                return ControlFlow::Continue(());
            };
            let Some(OrderByKind::Expressions(keys)) = q.order_by.as_ref().map(|o| &o.kind) else {
                return ControlFlow::Continue(());
            };
            let names = item_names(&select.projection);
            for key in keys {
                let Expr::Identifier(id) = &key.expr else {
                    continue;
                };
                let wanted = super::normalize_ident(id);
                let named: Vec<&SelectItem> = names
                    .iter()
                    .zip(&select.projection)
                    .filter(|(n, _)| n.as_deref() == Some(wanted.as_str()))
                    .map(|(_, item)| item)
                    .collect();
                if named.len() > 1 && named.iter().any(|e| !same_item(e, named[0])) {
                    return ControlFlow::Break(crate::error::Error::new(
                        crate::error::ErrorKind::AmbiguousColumn,
                        format!("ORDER BY \"{wanted}\" is ambiguous"),
                    ));
                }
            }
            ControlFlow::Continue(())
        }
    }
    match crate::visit::walk(stmt, &mut V) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Aggregate and window calls, and GROUP BY expressions, of one query
/// level that differ only in casts (`sum(k::numeric)` and `sum(k)`):
/// DataFusion names a cast after what it casts and refuses two of one
/// name. Every spelling after the first of such a name gets its first
/// argument (a GROUP BY expression: itself) wrapped in `same_value()`,
/// which tells the names apart and is simplified away.
pub fn distinct_cast_names(stmt: &mut Statement, is_aggregate: &dyn Fn(&str) -> bool) {
    struct V<'a> {
        is_aggregate: &'a dyn Fn(&str) -> bool,
    }
    impl VisitorMut for V<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            let order: Vec<&mut Expr> = match q.order_by.as_mut().map(|o| &mut o.kind) {
                Some(OrderByKind::Expressions(exprs)) => {
                    exprs.iter_mut().map(|o| &mut o.expr).collect()
                }
                _ => vec![],
            };
            distinct_in(q.body.as_mut(), order, self.is_aggregate);
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V { is_aggregate });
}

/// [`distinct_cast_names`] for the selects of one query body; `order`
/// is the query's ORDER BY, which reads the (first) select's output.
fn distinct_in(body: &mut SetExpr, order: Vec<&mut Expr>, is_aggregate: &dyn Fn(&str) -> bool) {
    let select = match body {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { left, right, .. } => {
            distinct_in(left, vec![], is_aggregate);
            distinct_in(right, vec![], is_aggregate);
            return;
        }
        _ => return,
    };
    // GROUP BY 2 is the second output column's expression.
    if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        let outputs: Vec<Option<&Expr>> = select
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
                _ => None,
            })
            .collect();
        let positions: Vec<Option<Expr>> = exprs
            .iter()
            .map(|e| match e {
                Expr::Value(v) => match &v.value {
                    datafusion::sql::sqlparser::ast::Value::Number(n, _) => n
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| outputs.get(i.checked_sub(1)?).copied().flatten())
                        .cloned(),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        // Spelled out only when two of them would share a name.
        let texts: Vec<String> = exprs
            .iter()
            .zip(&positions)
            .map(|(e, p)| without_casts(p.as_ref().unwrap_or(e)))
            .collect();
        let clash = texts
            .iter()
            .enumerate()
            .any(|(i, t)| texts[..i].contains(t));
        if clash {
            for (e, p) in exprs.iter_mut().zip(positions) {
                if let Some(p) = p {
                    *e = p;
                }
            }
        }
    }
    let grouped: Vec<String> = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs
            .iter()
            .filter(|e| !matches!(e, Expr::Value(_)))
            .map(|e| e.to_string())
            .collect(),
        _ => vec![],
    };
    let is_call = |e: &Expr| {
        matches!(e, Expr::Function(f) if f.over.is_some()
            || f.name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| is_aggregate(&i.value.to_lowercase())))
    };
    // Every candidate's text, by its text without casts.
    let mut parts: Vec<&mut Expr> = vec![];
    for item in select.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            parts.push(e);
        }
    }
    if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        parts.extend(exprs.iter_mut());
    }
    parts.extend(select.having.as_mut());
    parts.extend(select.qualify.as_mut());
    parts.extend(order);
    let mut by_key: Vec<(String, Vec<String>)> = vec![];
    let mut note = |e: &Expr| {
        let text = e.to_string();
        let key = without_casts(e);
        match by_key.iter_mut().find(|(k, _)| *k == key) {
            Some((_, texts)) if !texts.contains(&text) => texts.push(text),
            Some(_) => {}
            None => by_key.push((key, vec![text])),
        }
    };
    for p in parts.iter() {
        let _ = at_level(&**p, &mut |e| {
            if is_call(e) {
                note(e)
            }
        });
    }
    for g in &grouped {
        // Parsed back only to find its key: the text is the expression's.
        if let Some(e) = parts.iter().find_map(|p| find_text(p, g)) {
            note(&e);
        }
    }
    // The spelling without casts keeps its name: a bare `k` may stand
    // inside the others.
    // The n-th further spelling is wrapped n times, so that three
    // spellings get three names.
    let targets: Vec<(String, usize)> = by_key
        .into_iter()
        .flat_map(|(key, mut texts)| {
            texts.sort_by_key(|t| *t != key);
            texts.into_iter().zip(0..).skip(1)
        })
        .collect();
    let wrap = |inner: Expr, times: usize| {
        (0..times).fold(inner, |e, _| {
            crate::frontend::compat::call(crate::types::typed::SAME, vec![e], vec![])
        })
    };
    if targets.is_empty() {
        return;
    }
    for p in parts {
        let _ = at_level_mut(p, &mut |e| {
            let text = e.to_string();
            let Some(&(_, times)) = targets.iter().find(|(t, _)| *t == text) else {
                return;
            };
            if is_call(e)
                && let Expr::Function(f) = e
            {
                if let FunctionArguments::List(list) = &mut f.args
                    && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))) =
                        list.args.first_mut()
                {
                    let inner = std::mem::replace(
                        arg,
                        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
                    );
                    *arg = wrap(inner, times);
                }
            } else if grouped.contains(&text) {
                let inner =
                    std::mem::replace(e, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
                *e = wrap(inner, times);
            }
        });
    }
}

/// `e`'s text with its casts (and parentheses) left out, as DataFusion
/// names it.
fn without_casts(e: &Expr) -> String {
    let mut e = e.clone();
    let _ = crate::visit::visit_expressions_mut(&mut e, |x| {
        while let Expr::Cast { expr, .. } | Expr::Nested(expr) = x {
            let inner = std::mem::replace(
                expr.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            *x = inner;
        }
        // `DATE '...'` is planned as a cast of its text too.
        if let Expr::TypedString(t) = x {
            *x = Expr::Value(t.value.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    e.to_string()
}

/// The expression of text `text` in `e`, at its query level.
fn find_text(e: &Expr, text: &str) -> Option<Expr> {
    let mut found = None;
    let _ = at_level(e, &mut |x| {
        if found.is_none() && x.to_string() == text {
            found = Some(x.clone());
        }
    });
    found
}

pub(super) use crate::visit::{at_level, at_level_mut};

/// `schema` with its fields renamed, position by position.
pub fn with_names(schema: &Schema, names: &[String]) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(names)
        .map(|(f, n)| f.as_ref().clone().with_name(n))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `schema` with PostgreSQL's column names for the result of `stmt`, when
/// they differ from the planner's.
pub fn pg_result_names(stmt: &Statement, schema: &Schema) -> Option<SchemaRef> {
    let named = match stmt {
        Statement::Query(q) => query_names(q, schema),
        _ => None,
    };
    let base = named.as_deref().unwrap_or(schema);
    if !base.fields().iter().any(|f| f.name().contains(REPEAT_MARK)) {
        return named;
    }
    let names: Vec<String> = base
        .fields()
        .iter()
        .map(|f| f.name().split(REPEAT_MARK).next().unwrap_or("").to_string())
        .collect();
    Some(with_names(base, &names))
}

/// The names every WITH query of `stmt` defines, at any depth.
pub fn with_query_names(stmt: &Statement) -> std::collections::HashSet<String> {
    use datafusion::sql::sqlparser::ast::Visitor;
    use std::ops::ControlFlow;
    struct Withs(std::collections::HashSet<String>);
    impl Visitor for Withs {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                for cte in &with.cte_tables {
                    self.0.insert(super::normalize_ident(&cte.alias.name));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut withs = Withs(Default::default());
    let _ = crate::visit::walk(stmt, &mut withs);
    withs.0
}

/// `OVER (w ORDER BY ...)` and `OVER (w ROWS ...)`, a window that names a
/// window of the WINDOW clause and adds to it, as PostgreSQL reads them:
/// the named window's PARTITION BY, its ORDER BY unless the reference has
/// one, and its frame unless the reference has one. DataFusion dropped
/// the named window (`sum(v) OVER (w RANGE BETWEEN CURRENT ROW AND
/// UNBOUNDED FOLLOWING)` summed over no order).
pub fn inherit_named_windows(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{NamedWindowExpr, WindowSpec, WindowType};
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            let mut selects: Vec<&mut datafusion::sql::sqlparser::ast::Select> = Vec::new();
            fn collect<'a>(
                body: &'a mut SetExpr,
                out: &mut Vec<&'a mut datafusion::sql::sqlparser::ast::Select>,
            ) {
                match body {
                    SetExpr::Select(s) => out.push(s),
                    SetExpr::SetOperation { left, right, .. } => {
                        collect(left, out);
                        collect(right, out);
                    }
                    _ => {}
                }
            }
            collect(&mut q.body, &mut selects);
            for s in selects {
                // Each definition, with those it names filled in first.
                let mut defs: Vec<(String, WindowSpec)> = Vec::new();
                for def in &s.named_window {
                    let spec = match &def.1 {
                        NamedWindowExpr::WindowSpec(spec) => inherited(spec, &defs),
                        NamedWindowExpr::NamedWindow(other) => {
                            let name = crate::frontend::names::normalize_ident(other);
                            match defs.iter().find(|(n, _)| *n == name) {
                                Some((_, spec)) => spec.clone(),
                                None => continue,
                            }
                        }
                    };
                    defs.push((crate::frontend::names::normalize_ident(&def.0), spec));
                }
                if defs.is_empty() {
                    continue;
                }
                let _ = at_level_mut(s, &mut |e| {
                    if let Expr::Function(f) = e
                        && let Some(WindowType::WindowSpec(spec)) = &mut f.over
                        && spec.window_name.is_some()
                    {
                        *spec = inherited(spec, &defs);
                    }
                });
            }
            ControlFlow::Continue(())
        }
    }
    /// `spec` with the named window it refers to filled in (as it is when
    /// it names none, or one not defined here).
    fn inherited(spec: &WindowSpec, defs: &[(String, WindowSpec)]) -> WindowSpec {
        let Some(name) = &spec.window_name else {
            return spec.clone();
        };
        let name = crate::frontend::names::normalize_ident(name);
        let Some((_, base)) = defs.iter().find(|(n, _)| *n == name) else {
            return spec.clone();
        };
        WindowSpec {
            window_name: None,
            partition_by: if spec.partition_by.is_empty() {
                base.partition_by.clone()
            } else {
                spec.partition_by.clone()
            },
            order_by: if spec.order_by.is_empty() {
                base.order_by.clone()
            } else {
                spec.order_by.clone()
            },
            window_frame: spec
                .window_frame
                .clone()
                .or_else(|| base.window_frame.clone()),
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut V);
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    fn distinct(sql: &str) -> String {
        let mut stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            sql,
        )
        .unwrap()
        .remove(0);
        distinct_cast_names(&mut stmt, &|n| matches!(n, "sum" | "max"));
        stmt.to_string()
    }

    #[test]
    fn aggregates_and_groups_that_differ_in_casts_get_distinct_names() {
        assert_eq!(
            distinct("SELECT sum(k::NUMERIC), sum(k), sum(k) OVER () FROM t"),
            "SELECT sum(same_value(k::NUMERIC)), sum(k), sum(k) OVER () FROM t"
        );
        assert_eq!(
            distinct("SELECT k::TEXT AS a, k FROM t GROUP BY 1, 2 HAVING max(k) > 0"),
            "SELECT same_value(k::TEXT) AS a, k FROM t GROUP BY same_value(k::TEXT), k \
             HAVING max(k) > 0"
        );
        // Nothing alike: unchanged, positions too.
        let sql = "SELECT k::TEXT, sum(v) FROM t GROUP BY 1 ORDER BY sum(v::NUMERIC)";
        assert_eq!(
            distinct(sql),
            "SELECT k::TEXT, sum(v) FROM t GROUP BY 1 ORDER BY sum(same_value(v::NUMERIC))"
        );
        // Three spellings, three names.
        assert_eq!(
            distinct("SELECT sum(k), sum(k::NUMERIC), sum(k::FLOAT8) FROM t"),
            "SELECT sum(k), sum(same_value(k::NUMERIC)), sum(same_value(same_value(k::FLOAT8))) \
             FROM t"
        );
        // Subqueries are their own level.
        let sql = "SELECT sum(k), (SELECT sum(k::NUMERIC) FROM u) FROM t";
        assert_eq!(distinct(sql), sql);
    }

    fn names(sql: &str, n: usize) -> Vec<String> {
        let stmt = &datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            sql,
        )
        .unwrap()[0];
        let schema = Schema::new(
            (0..n)
                .map(|i| Field::new(format!("df{i}"), DataType::Int64, true))
                .collect::<Vec<_>>(),
        );
        match pg_result_names(stmt, &schema) {
            Some(s) => s.fields().iter().map(|f| f.name().clone()).collect(),
            None => schema.fields().iter().map(|f| f.name().clone()).collect(),
        }
    }

    #[test]
    fn unaliased_items_get_postgres_names() {
        assert_eq!(
            names(
                "SELECT count(*), sum(a), a, a::text, 1 + 2, b AS x, upper(c) FROM t",
                7
            ),
            ["count", "sum", "df2", "a", "?column?", "df5", "upper"]
        );
        assert_eq!(names("SELECT 1 UNION SELECT 2", 1), ["?column?"]);
        assert_eq!(
            names("SELECT a AT TIME ZONE 'UTC', a FROM t", 2),
            ["timezone", "df1"]
        );
        assert_eq!(
            names(
                "SELECT DATE '2024-02-29', TIMESTAMPTZ '2024-02-29 00:00:00+00', INTERVAL '1 day'",
                3
            ),
            ["date", "timestamptz", "interval"]
        );
        assert_eq!(
            names("SELECT *, count(*) FROM t", 3),
            ["df0", "df1", "count"]
        );
        assert_eq!(names("SELECT *, *, 1 FROM t", 3), ["df0", "df1", "df2"]);
        assert_eq!(names("SELECT CASE WHEN a THEN 1 END FROM t", 1), ["case"]);
        // A subscript is named after what it subscripts.
        assert_eq!(
            names("SELECT m[1], (m)[2], m[1][2], (a || b)[1] FROM t", 4),
            ["m", "m", "m", "?column?"]
        );
        assert_eq!(
            names(
                "SELECT (SELECT CASE WHEN a THEN 1 END), (SELECT 1 + 2), (SELECT a::text) FROM t",
                3
            ),
            ["case", "?column?", "a"]
        );
    }

    fn parsed(sql: &str) -> Statement {
        datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            sql,
        )
        .unwrap()
        .remove(0)
    }

    /// `sql` after `rewrite`, as text.
    fn rewritten(sql: &str, rewrite: fn(&mut Statement)) -> String {
        let mut stmt = parsed(sql);
        rewrite(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn kept_queries_get_postgres_names_as_aliases() {
        let aliased = |sql: &str, n: usize| {
            let Statement::Query(mut q) = parsed(sql) else {
                panic!("a query")
            };
            let schema = Schema::new(
                (0..n)
                    .map(|i| Field::new(format!("df{i}"), DataType::Int64, true))
                    .collect::<Vec<_>>(),
            );
            alias_pg_names(&mut q, &schema);
            q.to_string()
        };
        assert_eq!(
            aliased("SELECT upper(s), k::TEXT, k AS x FROM t", 3),
            "SELECT upper(s) AS \"upper\", k::TEXT AS \"k\", k AS x FROM t"
        );
        // A wildcard stands for the columns the other items leave.
        assert_eq!(
            aliased("SELECT *, count(*) FROM t", 3),
            "SELECT *, count(*) AS \"count\" FROM t"
        );
        // A union is named by its first select.
        assert_eq!(
            aliased("(SELECT lower(s) FROM t) UNION SELECT s FROM u", 1),
            "(SELECT lower(s) AS \"lower\" FROM t) UNION SELECT s FROM u"
        );
    }

    #[test]
    fn order_keys_naming_a_constant_item_are_left_out() {
        let dropped = |sql: &str| rewritten(sql, drop_constant_order_keys);
        assert_eq!(
            dropped("SELECT 'all' AS scope, k FROM t GROUP BY k ORDER BY scope, 1, 2 DESC"),
            "SELECT 'all' AS scope, k FROM t GROUP BY k ORDER BY 2 DESC"
        );
        assert_eq!(
            dropped("SELECT 1.5, k FROM t GROUP BY k ORDER BY 1"),
            "SELECT 1.5, k FROM t GROUP BY k"
        );
        // Not constants: a column, a parameter, a union's output.
        for sql in [
            "SELECT k, 1 FROM t ORDER BY 1",
            "SELECT $1 FROM t ORDER BY 1",
            "SELECT 1 UNION SELECT 2 ORDER BY 1",
            "SELECT 1 AS k, * FROM t ORDER BY k",
            // Beside a wildcard, position 2 is not the constant.
            "SELECT *, 1 FROM t ORDER BY 2",
            "SELECT 1 AS k, k FROM t ORDER BY k",
        ] {
            assert_eq!(dropped(sql), sql);
        }
    }

    #[test]
    fn ordinal_order_keys_of_expressions_order_by_an_alias() {
        let aliased = |sql: &str| rewritten(sql, alias_ordinal_order_keys);
        assert_eq!(
            aliased("SELECT k + 1, count(*) FROM t GROUP BY k ORDER BY 1 DESC, 2"),
            "SELECT k + 1 AS \"?column?\", count(*) AS \"count\" FROM t GROUP BY k \
             ORDER BY \"?column?\" DESC, \"count\""
        );
        // A name two items have is marked as a repeat.
        assert_eq!(
            aliased("SELECT k + 1, k + 2 FROM t GROUP BY k ORDER BY 2"),
            format!(
                "SELECT k + 1, k + 2 AS \"?column?{REPEAT_MARK}1\" FROM t GROUP BY k \
                 ORDER BY \"?column?{REPEAT_MARK}1\""
            )
        );
        // Columns and aliased items are left as they are, and positions
        // beside a wildcard, which are not the items'.
        for sql in [
            "SELECT k, k + 1 AS x FROM t ORDER BY 1, 2",
            "SELECT *, k * 10 FROM t ORDER BY 2",
        ] {
            assert_eq!(aliased(sql), sql);
        }
    }

    #[test]
    fn derived_tables_and_with_queries_name_their_columns_as_postgres_does() {
        let aliased = |sql: &str| rewritten(sql, alias_derived_names);
        assert_eq!(
            aliased("SELECT s.count FROM (SELECT k, count(*), k::TEXT FROM t GROUP BY k) AS s"),
            format!(
                "SELECT s.count FROM (SELECT k, count(*) AS \"count\", k::TEXT AS \"k{REPEAT_MARK}2\" \
                 FROM t GROUP BY k) AS s"
            )
        );
        assert_eq!(
            aliased("WITH c AS (SELECT upper(s) FROM t) SELECT * FROM c"),
            "WITH c AS (SELECT upper(s) AS \"upper\" FROM t) SELECT * FROM c"
        );
        // Names given by a column list, and subqueries that are values, stay.
        for sql in [
            "SELECT * FROM (SELECT count(*) FROM t) AS s (n)",
            "SELECT (SELECT count(*) FROM t)",
        ] {
            assert_eq!(aliased(sql), sql);
        }
    }

    #[test]
    fn repeated_names_are_aliased_and_come_back_unmarked() {
        let mut stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            "SELECT id, t.id, 1, 1, x AS n, y AS n, c.oid, c.* FROM t, c",
        )
        .unwrap()
        .remove(0);
        alias_repeated_names(&mut stmt);
        let text = stmt.to_string();
        assert!(text.starts_with(
            "SELECT id AS \"id\u{1f}0\", t.id AS \"id\u{1f}1\", 1, 1 AS \"?column?\u{1f}3\""
        ));
        assert!(text.contains("y AS \"n\u{1f}5\", c.oid AS \"oid\u{1f}6\", c.*"));
        // The plain columns of a later branch of a set operation.
        let mut stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            "SELECT a.id, 1 FROM a UNION SELECT 1, b.id FROM b",
        )
        .unwrap()
        .remove(0);
        alias_repeated_names(&mut stmt);
        assert_eq!(
            stmt.to_string(),
            "SELECT a.id, 1 FROM a UNION SELECT 1, b.id AS \"id\u{1f}1\" FROM b"
        );
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("id\u{1f}1", DataType::Int64, true),
        ]);
        let stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            "SELECT id, t.id AS \"id\u{1f}1\" FROM t",
        )
        .unwrap()
        .remove(0);
        let named = pg_result_names(&stmt, &schema).unwrap();
        let names: Vec<_> = named.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "id"]);
    }

    #[test]
    fn casts_and_case_take_names_as_figure_colname_does() {
        assert_eq!(
            names(
                "SELECT (1 + 2)::int, CAST(d + 1 AS text), CAST(CAST(x AS date) AS text), \
                 CAST(count(*) AS bigint), CASE WHEN a THEN 1 ELSE k END, \
                 CASE WHEN a THEN k ELSE 1 END, (SELECT max(v) FROM u), mod(a, 2) FROM t",
                8
            ),
            ["int4", "text", "x", "count", "k", "case", "max", "mod"]
        );
        assert_eq!(
            names("SELECT CAST(1.5 AS double precision), 'a'::varchar(3)", 2),
            ["float8", "varchar"]
        );
    }
}
